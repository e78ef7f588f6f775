//! `--metric`: which accuracy metric judges the INT8 model, checked against the model's first
//! output and the data's labels before any work.
//!
//! | metric | needs | compared with |
//! |---|---|---|
//! | `top1` | class labels, a classifier output `[N, C]` | the labels |
//! | `map50` | a YOLOv8 head output `[N, 4+C, A]` | the FP32 model's detections (conf >= 0.25) |
//! | `agreement` | any output | the FP32 outputs: top-1 agreement for classifiers, cosine otherwise |
//!
//! Reference-based metrics read the FP32 outputs kept by an FP32 pass over the same data
//! ([`KeepOutputs`](kiln_pipeline::KeepOutputs)), keyed by sample index.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_pipeline::{
    Agreement, AgreementKind, Annotation, MeanAp50, Metric, MetricError, SampleRef, TensorMap, TopK,
};

use super::data::Dataset;
use crate::cli::MetricArg;
use crate::commands::errors::InputError;
use crate::commands::model::ModelFile;

/// FP32 outputs by sample index.
pub type Reference = Arc<BTreeMap<usize, TensorMap>>;

/// The metric chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Top1,
    Map50,
    Agreement(AgreementKind),
}

/// The metric to use, on which output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricPlan {
    choice: Choice,
    output: String,
}

impl MetricPlan {
    /// Chooses the metric (`arg`, or the default: `top1` when `eval` has class labels and the
    /// model is a classifier, else `agreement`) and checks it fits the model and the data. With
    /// `search` (the accuracy-aware search's data), the metric must fit that data too.
    pub fn choose(
        arg: Option<MetricArg>,
        model: &ModelFile,
        eval: &Dataset,
        search: Option<&Dataset>,
    ) -> Result<MetricPlan, InputError> {
        let output = model.first_output()?;
        let classes = output.classes();
        for data in std::iter::once(eval).chain(search) {
            check_labels(data, classes, &output.to_string())?;
        }
        let choice = match arg {
            Some(MetricArg::Top1) => {
                if classes.is_none() {
                    return Err(InputError::Metric {
                        metric: "top1",
                        reason: format!(
                            "output {output} is not a classifier's [N, classes]; use --metric \
                             agreement (or map50 for a YOLOv8 detector)"
                        ),
                    });
                }
                for data in std::iter::once(eval).chain(search) {
                    if data.labels().is_none() {
                        return Err(InputError::Metric {
                            metric: "top1",
                            reason: format!(
                                "{} has no class labels: give --labels with class sub-folders, \
                                 --rotations for an orientation classifier, labelled data (MNIST \
                                 CSV, .npz with a `labels` array), or use --metric agreement",
                                data.info.path
                            ),
                        });
                    }
                }
                Choice::Top1
            }
            Some(MetricArg::Map50) => {
                let yolo = match output.shape.as_deref() {
                    Some([_, rows, _]) => rows.is_none_or(|r| r >= 5),
                    _ => false,
                };
                if !yolo {
                    return Err(InputError::Metric {
                        metric: "map50",
                        reason: format!(
                            "output {output} is not a YOLOv8 head output [N, 4+classes, anchors]"
                        ),
                    });
                }
                Choice::Map50
            }
            Some(MetricArg::Agreement) => Choice::Agreement(agreement_kind(classes)),
            None => {
                let labelled = std::iter::once(eval)
                    .chain(search)
                    .all(|d| d.labels().is_some());
                if labelled && classes.is_some() {
                    Choice::Top1
                } else {
                    Choice::Agreement(agreement_kind(classes))
                }
            }
        };
        Ok(MetricPlan {
            choice,
            output: output.name.clone(),
        })
    }

    /// The metric's name in reports (`top1`, `map50`, `top1_agreement`, `cosine`).
    pub fn name(&self) -> &'static str {
        match self.choice {
            Choice::Top1 => "top1",
            Choice::Map50 => "map50",
            Choice::Agreement(AgreementKind::Top1) => "top1_agreement",
            Choice::Agreement(AgreementKind::Cosine) => "cosine",
            Choice::Agreement(AgreementKind::RelativeL2) => "relative_l2",
        }
    }

    /// The output the metric reads.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Whether the metric compares with FP32 outputs (which an FP32 pass must keep first).
    pub fn needs_reference(&self) -> bool {
        self.choice != Choice::Top1
    }

    /// The labelled metric, for an FP32 pass that computes it directly (`None` for
    /// reference-based metrics).
    pub fn labelled(&self) -> Option<Box<dyn Metric>> {
        (self.choice == Choice::Top1)
            .then(|| Box::new(TopK::top1().with_output(&self.output)) as Box<dyn Metric>)
    }

    /// The metric, comparing with `reference` when it is reference-based.
    pub fn build(&self, reference: &Reference) -> Box<dyn Metric> {
        let reference = Arc::clone(reference);
        match self.choice {
            Choice::Top1 => Box::new(TopK::top1().with_output(&self.output)),
            Choice::Map50 => {
                Box::new(MeanAp50::against_reference(reference).with_output(&self.output))
            }
            Choice::Agreement(kind) => {
                Box::new(Agreement::new(kind, reference).with_output(&self.output))
            }
        }
    }
}

/// Top-1 agreement for classifiers, cosine for everything else.
fn agreement_kind(classes: Option<usize>) -> AgreementKind {
    if classes.is_some() {
        AgreementKind::Top1
    } else {
        AgreementKind::Cosine
    }
}

/// Labels naming more classes than a classifier output scores are an error.
fn check_labels(data: &Dataset, classes: Option<usize>, output: &str) -> Result<(), InputError> {
    if let (Some(labels), Some(scores)) = (data.labels(), classes)
        && let Some(named) = labels.classes
        && named > scores
    {
        return Err(InputError::Labels {
            source_desc: labels.source.clone(),
            reason: format!(
                "{named} classes, but output {output} scores {scores}; the labels do not belong \
                 to this model"
            ),
        });
    }
    Ok(())
}

/// The metric over outputs already computed (the FP32 reference against itself: the self-check
/// the peers report for FP32). `None` when the metric has no value (no FP32 detection for
/// `map50`).
pub fn replay(
    metric: &mut dyn Metric,
    outputs: &BTreeMap<usize, TensorMap>,
) -> Result<Option<f64>, MetricError> {
    metric.reset();
    for (&index, sample) in outputs {
        metric.update(
            SampleRef {
                index,
                annotation: &Annotation::None,
                metadata: None,
            },
            sample,
        )?;
    }
    Ok(metric.avg_value())
}
