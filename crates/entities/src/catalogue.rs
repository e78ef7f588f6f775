//! The model catalogue of the Encord models SDK: model rows, the model types a row can have, the
//! pre-trained weights a training run can start from, and which weights fit which model.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::macros::wire_enum;
use crate::params::ValidationError;

wire_enum! {
    /// What a model predicts.
    pub enum TaskKind ("task kind") {
        /// One or more labels per image.
        Classification => "classification",
        /// Boxes.
        ObjectDetection => "object_detection",
        /// Masks (sent back as polygons).
        InstanceSegmentation => "instance_segmentation",
    }
}

wire_enum! {
    /// The architecture of a model row (Encord `encord.constants.model`).
    pub enum ModelType ("model type") {
        /// fast.ai classifier.
        FastAi => "fast_ai",
        /// ResNet-18 classifier.
        Resnet18 => "resnet18",
        /// ResNet-34 classifier.
        Resnet34 => "resnet34",
        /// ResNet-50 classifier.
        Resnet50 => "resnet50",
        /// ResNet-101 classifier.
        Resnet101 => "resnet101",
        /// ResNet-152 classifier.
        Resnet152 => "resnet152",
        /// VGG-16 classifier.
        Vgg16 => "vgg16",
        /// VGG-19 classifier.
        Vgg19 => "vgg19",
        /// YOLOv5 detector.
        Yolov5 => "yolov5",
        /// Faster R-CNN detector.
        FasterRcnn => "faster_rcnn",
        /// Mask R-CNN instance segmenter.
        MaskRcnn => "mask_rcnn",
    }
}

impl ModelType {
    /// What the model predicts.
    pub const fn task(self) -> TaskKind {
        match self {
            Self::FastAi
            | Self::Resnet18
            | Self::Resnet34
            | Self::Resnet50
            | Self::Resnet101
            | Self::Resnet152
            | Self::Vgg16
            | Self::Vgg19 => TaskKind::Classification,
            Self::Yolov5 | Self::FasterRcnn => TaskKind::ObjectDetection,
            Self::MaskRcnn => TaskKind::InstanceSegmentation,
        }
    }

    /// The weights a training run of this model may start from, in catalogue order.
    pub fn compatible_weights(self) -> impl Iterator<Item = ModelWeights> {
        ModelWeights::ALL
            .iter()
            .copied()
            .filter(move |w| w.is_compatible_with(self))
    }
}

wire_enum! {
    /// The family of a set of pre-trained weights.
    pub enum WeightsFamily ("weights family") {
        /// fast.ai (classification).
        FastAi => "fast_ai",
        /// YOLOv5 (object detection).
        Yolov5 => "yolov5",
        /// Faster R-CNN (object detection).
        FasterRcnn => "faster_rcnn",
        /// Mask R-CNN (instance segmentation).
        MaskRcnn => "mask_rcnn",
    }
}

impl WeightsFamily {
    /// What models trained from this family predict.
    pub const fn task(self) -> TaskKind {
        match self {
            Self::FastAi => TaskKind::Classification,
            Self::Yolov5 | Self::FasterRcnn => TaskKind::ObjectDetection,
            Self::MaskRcnn => TaskKind::InstanceSegmentation,
        }
    }
}

wire_enum! {
    /// Pre-trained weights a training run starts from (Encord `encord.constants.model_weights`).
    /// The Detectron2 names read `<arch>_<backbone>_<variant>_<schedule>`, e.g. ResNet-50 with a
    /// C4 head trained on the 1x schedule.
    #[allow(non_camel_case_types)]
    pub enum ModelWeights ("model weights") {
        /// fast.ai (classification).
        FastAi => "fast_ai",
        /// YOLOv5 extra large.
        Yolov5x => "yolov5x",
        /// YOLOv5 small.
        Yolov5s => "yolov5s",
        /// Faster R-CNN, ResNet-50 C4, 1x.
        FasterRcnnR50C4_1x => "faster_rcnn_R_50_C4_1x",
        /// Faster R-CNN, ResNet-50 DC5, 1x.
        FasterRcnnR50Dc5_1x => "faster_rcnn_R_50_DC5_1x",
        /// Faster R-CNN, ResNet-50 FPN, 1x.
        FasterRcnnR50Fpn_1x => "faster_rcnn_R_50_FPN_1x",
        /// Faster R-CNN, ResNet-50 C4, 3x.
        FasterRcnnR50C4_3x => "faster_rcnn_R_50_C4_3x",
        /// Faster R-CNN, ResNet-50 DC5, 3x.
        FasterRcnnR50Dc5_3x => "faster_rcnn_R_50_DC5_3x",
        /// Faster R-CNN, ResNet-50 FPN, 3x.
        FasterRcnnR50Fpn_3x => "faster_rcnn_R_50_FPN_3x",
        /// Faster R-CNN, ResNet-101 C4, 3x.
        FasterRcnnR101C4_3x => "faster_rcnn_R_101_C4_3x",
        /// Faster R-CNN, ResNet-101 DC5, 3x.
        FasterRcnnR101Dc5_3x => "faster_rcnn_R_101_DC5_3x",
        /// Faster R-CNN, ResNet-101 FPN, 3x.
        FasterRcnnR101Fpn_3x => "faster_rcnn_R_101_FPN_3x",
        /// Faster R-CNN, ResNeXt-101 32x8d FPN, 3x.
        FasterRcnnX101_32x8dFpn_3x => "faster_rcnn_X_101_32x8d_FPN_3x",
        /// Mask R-CNN, ResNeXt-101 32x8d FPN, 3x.
        MaskRcnnX101_32x8dFpn_3x => "mask_rcnn_X_101_32x8d_FPN_3x",
        /// Mask R-CNN, ResNet-50 C4, 1x.
        MaskRcnnR50C4_1x => "mask_rcnn_R_50_C4_1x",
        /// Mask R-CNN, ResNet-50 C4, 3x.
        MaskRcnnR50C4_3x => "mask_rcnn_R_50_C4_3x",
        /// Mask R-CNN, ResNet-101 FPN, 3x.
        MaskRcnnR101Fpn_3x => "mask_rcnn_R_101_FPN_3x",
    }
}

impl ModelWeights {
    /// The family of these weights.
    pub const fn family(self) -> WeightsFamily {
        match self {
            Self::FastAi => WeightsFamily::FastAi,
            Self::Yolov5x | Self::Yolov5s => WeightsFamily::Yolov5,
            Self::FasterRcnnR50C4_1x
            | Self::FasterRcnnR50Dc5_1x
            | Self::FasterRcnnR50Fpn_1x
            | Self::FasterRcnnR50C4_3x
            | Self::FasterRcnnR50Dc5_3x
            | Self::FasterRcnnR50Fpn_3x
            | Self::FasterRcnnR101C4_3x
            | Self::FasterRcnnR101Dc5_3x
            | Self::FasterRcnnR101Fpn_3x
            | Self::FasterRcnnX101_32x8dFpn_3x => WeightsFamily::FasterRcnn,
            Self::MaskRcnnX101_32x8dFpn_3x
            | Self::MaskRcnnR50C4_1x
            | Self::MaskRcnnR50C4_3x
            | Self::MaskRcnnR101Fpn_3x => WeightsFamily::MaskRcnn,
        }
    }

    /// What models trained from these weights predict.
    pub const fn task(self) -> TaskKind {
        self.family().task()
    }

    /// Whether a model of type `model` can be trained from these weights.
    ///
    /// The rule: fast.ai weights (the SDK's only classification weights, "Fast AI
    /// (classification)") fit every classification model — fast_ai, the ResNets and the VGGs,
    /// which would otherwise have no weights at all; YOLOv5 weights fit `yolov5`, Faster R-CNN
    /// weights `faster_rcnn` and Mask R-CNN weights `mask_rcnn` — the SDK's "a `faster_rcnn`
    /// model should use `faster_rcnn` weights".
    pub const fn is_compatible_with(self, model: ModelType) -> bool {
        match self.family() {
            WeightsFamily::FastAi => matches!(model.task(), TaskKind::Classification),
            WeightsFamily::Yolov5 => matches!(model, ModelType::Yolov5),
            WeightsFamily::FasterRcnn => matches!(model, ModelType::FasterRcnn),
            WeightsFamily::MaskRcnn => matches!(model, ModelType::MaskRcnn),
        }
    }
}

/// A model row: a model of one type over some features (ontology feature hashes) of a project,
/// which training runs then fill with iterations (Encord `create_model_row`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRow {
    /// The row's id.
    pub uid: Uuid,
    /// The title.
    pub title: String,
    /// An optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// The feature hashes (ontology features) the model predicts.
    pub features: Vec<String>,
    /// The architecture.
    pub model: ModelType,
}

impl ModelRow {
    /// A row with a fresh (UUID v7) uid and no description.
    pub fn new(title: impl Into<String>, features: Vec<String>, model: ModelType) -> Self {
        Self {
            uid: Uuid::now_v7(),
            title: title.into(),
            description: None,
            features,
            model,
        }
    }

    /// Checks that the title is not blank and that there is at least one feature, none blank.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.title.trim().is_empty() {
            return Err(ValidationError::EmptyField {
                field: "title".into(),
            });
        }
        crate::params::check_list("features", &self.features)
    }
}
