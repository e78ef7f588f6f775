//! Operator-set awareness: the opset a model imports per domain, the requirements of Q/DQ edits
//! (per-channel `axis` needs opset 13), and [`upgrade_opset_to_13`] for opset 11/12 models.
//!
//! # The 11/12 -> 13 table
//!
//! Only the default domain changes; nodes of other domains are left alone. Per op:
//!
//! | op | change | conversion |
//! |---|---|---|
//! | `Squeeze`, `Unsqueeze`, `ReduceSum` | `axes` attribute -> input (13) | an INT64 initializer appended as input 1; without `axes`, nothing (an `Unsqueeze` without `axes` is an error) |
//! | `Split` | `split` attribute -> input (13) | an INT64 initializer appended as input 1 |
//! | `Softmax`, `LogSoftmax`, `Hardmax` | 2-D coercion at `axis` (default 1) -> one `axis` (default -1) (13) | `axis = -1` when it was -1 or rank-1 of a known rank; else `Shape`+`Flatten(axis)` before and `Reshape` after (exact for any rank), or an error when [`UpgradeOptions::rewrite_softmax`] is off |
//! | `Dropout` (from 11) | `ratio` attribute -> input (12) | a FLOAT scalar initializer appended as input 1 |
//! | `Resize` | `tf_half_pixel_for_nn` removed; `scales` optional (13) | that mode is an error; with `sizes` given, `scales` becomes `""` |
//! | all others | types added, or unchanged since 11 (`Clip` and `Pad` take inputs since 11) | none |
//!
//! Subgraphs (`If`, `Loop`, `Scan`) are converted too; model-local functions are not.

use crate::proto::{GraphProto, ModelProto, NodeProto};

use super::attr;
use super::edit::{NameGen, QdqSpec};
use super::error::{GraphError, OpsetError};
use super::index::GraphIndex;
use super::node::{NodeBuilder, NodeExt, describe, is_default_domain};
use super::values::{scalar_tensor, tensor_from_values};

/// The default-domain opset from which `QuantizeLinear`/`DequantizeLinear` exist.
pub const QDQ_MIN_OPSET: i64 = 10;

/// The default-domain opset from which `QuantizeLinear`/`DequantizeLinear` take an `axis`
/// (per-channel parameters). ONNX Runtime refuses per-channel Q/DQ in opset 11/12 models.
pub const PER_CHANNEL_QDQ_MIN_OPSET: i64 = 13;

/// The opset version `model` imports for `domain` (`""` and `"ai.onnx"` both mean the default
/// domain); the highest one if listed twice.
pub fn opset_version(model: &ModelProto, domain: &str) -> Option<i64> {
    let default = is_default_domain(domain);
    model
        .opset_import
        .iter()
        .filter(|o| {
            if default {
                is_default_domain(&o.domain)
            } else {
                o.domain == domain
            }
        })
        .map(|o| o.version)
        .max()
}

/// Fails with [`OpsetError::TooOld`] unless `model` imports at least opset `required` of
/// `domain`; `feature` says what needs it.
pub fn require_opset(
    model: &ModelProto,
    domain: &str,
    required: i64,
    feature: &str,
) -> Result<(), OpsetError> {
    let found = opset_version(model, domain);
    if found.is_some_and(|v| v >= required) {
        Ok(())
    } else {
        Err(OpsetError::TooOld {
            feature: feature.to_owned(),
            domain: domain.to_owned(),
            required,
            found,
        })
    }
}

/// Whether `model` may carry per-channel `QuantizeLinear`/`DequantizeLinear` (`axis`).
pub fn supports_per_channel_qdq(model: &ModelProto) -> bool {
    opset_version(model, "").is_some_and(|v| v >= PER_CHANNEL_QDQ_MIN_OPSET)
}

/// Checks that `model`'s opset allows a Q/DQ pair with these parameters.
pub fn require_qdq_opset(model: &ModelProto, spec: &QdqSpec) -> Result<(), OpsetError> {
    if spec.axis.is_some() {
        require_opset(
            model,
            "",
            PER_CHANNEL_QDQ_MIN_OPSET,
            "per-channel QuantizeLinear/DequantizeLinear (axis)",
        )
    } else {
        require_opset(model, "", QDQ_MIN_OPSET, "QuantizeLinear/DequantizeLinear")
    }
}

/// Options of [`upgrade_opset_to_13`].
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// Rewrite `Softmax`/`LogSoftmax`/`Hardmax` whose axis is not provably the last one as
    /// `Flatten -> op(axis=-1) -> Reshape` (exact); when off, such nodes are an error.
    pub rewrite_softmax: bool,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        Self {
            rewrite_softmax: true,
        }
    }
}

/// How one node was converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The `axes` attribute became input 1.
    AxesToInput,
    /// The `split` attribute became input 1.
    SplitToInput,
    /// The axis was provably the last one: set to -1.
    SoftmaxLastAxis,
    /// Wrapped in `Shape`/`Flatten` ... `Reshape` to keep the 2-D semantics.
    SoftmaxFlattened,
    /// The `ratio` attribute became input 1.
    DropoutRatioToInput,
    /// `scales` became `""` because `sizes` is given.
    ResizeScalesOmitted,
}

/// One converted node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The node, described as `Op "name" (#index)` (index within its own graph).
    pub node: String,
    /// What was done.
    pub change: Change,
}

/// What [`upgrade_opset_to_13`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    /// The default-domain opset before.
    pub from: i64,
    /// The default-domain opset after (13, or `from` when it was already 13 or more).
    pub to: i64,
    /// The nodes changed, in graph order (subgraph nodes before the node holding them).
    pub converted: Vec<Converted>,
}

/// Converts a default-domain opset 11 or 12 model to opset 13 (see the module table), so that it
/// can carry per-channel Q/DQ. Also raises `ir_version` to at least 7. A model already at 13 or
/// more is left as is; other versions are [`OpsetError::UnsupportedSource`]. On error the model
/// is unchanged.
pub fn upgrade_opset_to_13(
    model: &mut ModelProto,
    options: &UpgradeOptions,
) -> Result<UpgradeReport, GraphError> {
    let from = opset_version(model, "");
    let from = match from {
        Some(v) if v >= 13 => {
            return Ok(UpgradeReport {
                from: v,
                to: v,
                converted: Vec::new(),
            });
        }
        Some(v @ (11 | 12)) => v,
        _ => return Err(OpsetError::UnsupportedSource { from }.into()),
    };
    let mut graph = model.graph.clone().ok_or(GraphError::NoGraph)?;
    let mut names = NameGen::new(&graph);
    let mut upgrader = Upgrader {
        from,
        options,
        names: &mut names,
        converted: Vec::new(),
    };
    upgrader.graph(&mut graph)?;
    let converted = upgrader.converted;
    model.graph = Some(graph);
    for import in &mut model.opset_import {
        if is_default_domain(&import.domain) {
            import.version = 13;
        }
    }
    model.ir_version = model.ir_version.max(7);
    Ok(UpgradeReport {
        from,
        to: 13,
        converted,
    })
}

struct Upgrader<'a> {
    from: i64,
    options: &'a UpgradeOptions,
    names: &'a mut NameGen,
    converted: Vec<Converted>,
}

/// The base for names derived from `node`: its name, else its first output.
fn base_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.output
            .first()
            .cloned()
            .unwrap_or_else(|| node.op_type.clone())
    } else {
        node.name.clone()
    }
}

impl Upgrader<'_> {
    fn graph(&mut self, graph: &mut GraphProto) -> Result<(), GraphError> {
        let index = GraphIndex::new(graph)?;
        let old = std::mem::take(&mut graph.node);
        let mut nodes = Vec::with_capacity(old.len());
        for (i, mut node) in old.into_iter().enumerate() {
            for sub in node.subgraphs_mut() {
                self.graph(sub)?;
            }
            if !is_default_domain(&node.domain) {
                nodes.push(node);
                continue;
            }
            let label = describe(&node, i);
            let unconvertible = |node: &NodeProto, reason: String| OpsetError::Unconvertible {
                node: label.clone(),
                op_type: node.op_type.clone(),
                reason,
            };
            let mut change = None;
            let mut before = Vec::new();
            let mut after = Vec::new();
            let op_type = node.op_type.clone();
            match op_type.as_str() {
                op @ ("Squeeze" | "Unsqueeze" | "ReduceSum" | "Split") => {
                    let attr_name = if op == "Split" { "split" } else { "axes" };
                    if let Some(values) = node.attr_ints(attr_name).map(<[i64]>::to_vec) {
                        if node.input.len() != 1 {
                            return Err(unconvertible(
                                &node,
                                format!(
                                    "it has `{attr_name}` and {} inputs, expected 1",
                                    node.input.len()
                                ),
                            )
                            .into());
                        }
                        let name = self
                            .names
                            .fresh(&format!("{}_{attr_name}", base_name(&node)));
                        let len = i64::try_from(values.len()).unwrap_or(i64::MAX);
                        graph
                            .initializer
                            .push(tensor_from_values(&name, &[len], &values)?);
                        node.remove_attr(attr_name);
                        node.input.push(name);
                        change = Some(if op == "Split" {
                            Change::SplitToInput
                        } else {
                            Change::AxesToInput
                        });
                    } else if op == "Unsqueeze" {
                        return Err(unconvertible(&node, "it has no `axes`".to_owned()).into());
                    }
                }
                "Softmax" | "LogSoftmax" | "Hardmax" => {
                    let axis = node.attr_i("axis").unwrap_or(1);
                    let Some(input) = node.input.first().cloned() else {
                        return Err(unconvertible(&node, "it has no input".to_owned()).into());
                    };
                    let rank = index
                        .rank(&input)
                        .or_else(|| node.output.first().and_then(|o| index.rank(o)))
                        .and_then(|r| i64::try_from(r).ok());
                    let last = axis == -1
                        || rank.is_some_and(|r| (if axis < 0 { axis + r } else { axis }) == r - 1);
                    if last {
                        node.set_attr(attr::int("axis", -1));
                        change = Some(Change::SoftmaxLastAxis);
                    } else if self.options.rewrite_softmax {
                        let Some(output) = node.output.first().cloned() else {
                            return Err(unconvertible(&node, "it has no output".to_owned()).into());
                        };
                        let base = base_name(&node);
                        let shape = self.names.fresh(&format!("{output}_shape"));
                        let flat = self.names.fresh(&format!("{output}_flat"));
                        let flat_out = self.names.fresh(&format!("{output}_2d"));
                        before.push(
                            NodeBuilder::new("Shape")
                                .name(self.names.fresh(&format!("{base}_Shape")))
                                .input(input.clone())
                                .output(shape.clone())
                                .build(),
                        );
                        before.push(
                            NodeBuilder::new("Flatten")
                                .name(self.names.fresh(&format!("{base}_Flatten")))
                                .input(input)
                                .output(flat.clone())
                                .attr_i("axis", axis)
                                .build(),
                        );
                        after.push(
                            NodeBuilder::new("Reshape")
                                .name(self.names.fresh(&format!("{base}_Reshape")))
                                .inputs([flat_out.clone(), shape])
                                .output(output)
                                .build(),
                        );
                        node.input[0] = flat;
                        node.output[0] = flat_out;
                        node.set_attr(attr::int("axis", -1));
                        change = Some(Change::SoftmaxFlattened);
                    } else {
                        return Err(unconvertible(
                            &node,
                            format!(
                                "axis {axis} is not provably the last axis (input rank {}), and opset 13 changed its meaning; enable rewrite_softmax",
                                rank.map_or_else(|| "unknown".to_owned(), |r| r.to_string())
                            ),
                        )
                        .into());
                    }
                }
                "Dropout" if self.from < 12 => {
                    if let Some(ratio) = node.attr_f("ratio") {
                        if node.input.len() != 1 {
                            return Err(unconvertible(
                                &node,
                                format!(
                                    "it has `ratio` and {} inputs, expected 1",
                                    node.input.len()
                                ),
                            )
                            .into());
                        }
                        let name = self.names.fresh(&format!("{}_ratio", base_name(&node)));
                        graph.initializer.push(scalar_tensor(&name, ratio));
                        node.remove_attr("ratio");
                        node.input.push(name);
                        change = Some(Change::DropoutRatioToInput);
                    }
                }
                "Resize" => {
                    if node.attr_s("coordinate_transformation_mode") == Some("tf_half_pixel_for_nn")
                    {
                        return Err(unconvertible(
                            &node,
                            "coordinate_transformation_mode tf_half_pixel_for_nn does not exist in opset 13".to_owned(),
                        )
                        .into());
                    }
                    let has_sizes = node.input.get(3).is_some_and(|s| !s.is_empty());
                    if let Some(scales) =
                        node.input.get_mut(2).filter(|s| has_sizes && !s.is_empty())
                    {
                        scales.clear();
                        change = Some(Change::ResizeScalesOmitted);
                    }
                }
                _ => {}
            }
            if let Some(change) = change {
                self.converted.push(Converted {
                    node: label.clone(),
                    change,
                });
            }
            nodes.extend(before);
            nodes.push(node);
            nodes.extend(after);
        }
        graph.node = nodes;
        Ok(())
    }
}
