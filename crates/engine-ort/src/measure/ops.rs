//! [`executed_ops`]: the operators ONNX Runtime really executes, counted in the optimized graph it
//! writes (`SessionOptions::optimized_model_path`) — the proof that a QDQ model runs integer
//! kernels rather than float ones with extra Q/DQ work.

use std::collections::BTreeMap;

use kiln_onnx::proto::GraphProto;

use super::{MeasureError, ModelSource};
use crate::runtime;
use crate::session::{OptimizationLevel, SessionOptions};

/// Integer kernels ONNX Runtime's CPU provider fuses QDQ models into.
pub const INTEGER_OPS: &[&str] = &[
    "QLinearConv",
    "ConvInteger",
    "MatMulInteger",
    "QLinearMatMul",
    "DynamicQuantizeMatMul",
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearConcat",
    "QLinearGlobalAveragePool",
    "QLinearAveragePool",
    "QLinearSoftmax",
    "QLinearWhere",
    "DynamicQuantizeLinear",
];

/// Convolutions that run in float (`Conv`, ONNX Runtime's fused `FusedConv`, `NhwcFusedConv`;
/// the NCHWc layout's convolution is a `Conv` of domain `com.microsoft.nchwc`).
pub const FLOAT_CONV_OPS: &[&str] = &["Conv", "FusedConv", "NhwcFusedConv"];

/// The operators of the graph ONNX Runtime executes, by operator type (whatever the domain, as the
/// peer harness counts them), subgraphs included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedOps {
    /// The optimization level of the counted graph: the one asked for, or
    /// [`OptimizationLevel::Extended`] when the graph optimized at [`OptimizationLevel::All`]
    /// could not be written or read back (layout-specific NCHWc nodes, in some builds).
    pub optimization_level: OptimizationLevel,
    /// Node count by operator type.
    pub ops: BTreeMap<String, usize>,
}

impl ExecutedOps {
    /// Nodes of type `op`.
    pub fn count(&self, op: &str) -> usize {
        self.ops.get(op).copied().unwrap_or(0)
    }

    /// Nodes of any of `ops`.
    pub fn count_any(&self, ops: &[&str]) -> usize {
        ops.iter().map(|op| self.count(op)).sum()
    }

    /// Convolutions in integer kernels: `QLinearConv` and `ConvInteger`.
    pub fn integer_convs(&self) -> usize {
        self.count_any(&["QLinearConv", "ConvInteger"])
    }

    /// Convolutions still in float ([`FLOAT_CONV_OPS`]).
    pub fn float_convs(&self) -> usize {
        self.count_any(FLOAT_CONV_OPS)
    }

    /// Nodes in integer kernels ([`INTEGER_OPS`]), by type; types with no node are left out.
    pub fn integer_kernels(&self) -> BTreeMap<&str, usize> {
        INTEGER_OPS
            .iter()
            .filter_map(|op| Some((*op, self.ops.get(*op).copied().filter(|n| *n > 0)?)))
            .collect()
    }

    /// `QuantizeLinear` and `DequantizeLinear` nodes left unfused.
    pub fn remaining_qdq(&self) -> usize {
        self.count_any(&["QuantizeLinear", "DequantizeLinear"])
    }

    /// Every node.
    pub fn total(&self) -> usize {
        self.ops.values().sum()
    }
}

/// Counts the operators ONNX Runtime executes for `model` with `options` (the graph after its
/// optimizations and QDQ fusions), by writing the optimized graph to a temporary directory and
/// decoding it with kiln-onnx. `options.optimized_model_path` is ignored.
///
/// At [`OptimizationLevel::All`], ONNX Runtime may produce layout-specific (NCHWc) nodes; if the
/// graph cannot be written or read back at that level, the count falls back to
/// [`OptimizationLevel::Extended`] (every QDQ fusion, no layout change), which
/// [`ExecutedOps::optimization_level`] records.
pub fn executed_ops<'a>(
    model: impl Into<ModelSource<'a>>,
    options: &SessionOptions,
) -> Result<ExecutedOps, MeasureError> {
    let model = model.into();
    match count_at(model, options, options.optimization_level) {
        Err(error) if options.optimization_level == OptimizationLevel::All => {
            tracing::debug!(
                %model,
                %error,
                "the graph optimized at level All could not be counted; counting at Extended"
            );
            count_at(model, options, OptimizationLevel::Extended)
        }
        result => result,
    }
}

fn count_at(
    model: ModelSource<'_>,
    options: &SessionOptions,
    level: OptimizationLevel,
) -> Result<ExecutedOps, MeasureError> {
    let dir = tempfile::tempdir().map_err(|source| MeasureError::Io {
        op: "creating a temporary directory for",
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("optimized.onnx");
    let options = SessionOptions {
        optimization_level: level,
        optimized_model_path: Some(path.clone()),
        ..options.clone()
    };
    drop(model.session(runtime::global()?, &options)?);
    let optimized = kiln_onnx::Model::open(&path)?;
    let mut ops = BTreeMap::new();
    count_graph(optimized.graph(), &mut ops);
    Ok(ExecutedOps {
        optimization_level: level,
        ops,
    })
}

/// Adds the nodes of `graph` and of its subgraphs (`If`/`Loop`/`Scan` bodies) to `ops`.
fn count_graph(graph: &GraphProto, ops: &mut BTreeMap<String, usize>) {
    for node in &graph.node {
        *ops.entry(node.op_type.clone()).or_insert(0) += 1;
        for attribute in &node.attribute {
            for sub in attribute.g.iter().chain(&attribute.graphs) {
                count_graph(sub, ops);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kiln_onnx::graph::NodeBuilder;
    use kiln_onnx::proto::AttributeProto;

    use super::*;

    #[test]
    fn counts_include_subgraphs_and_helpers_group_kinds() {
        let body = GraphProto {
            node: vec![NodeBuilder::new("QLinearConv").output("a").build()],
            ..Default::default()
        };
        let mut cond = NodeBuilder::new("If").output("c").build();
        cond.attribute.push(AttributeProto {
            name: "then_branch".into(),
            g: Some(body.clone()),
            ..Default::default()
        });
        cond.attribute.push(AttributeProto {
            name: "else_branch".into(),
            g: Some(body),
            ..Default::default()
        });
        let graph = GraphProto {
            node: vec![
                NodeBuilder::new("Conv").output("x").build(),
                NodeBuilder::new("FusedConv").output("y").build(),
                NodeBuilder::new("DequantizeLinear").output("z").build(),
                cond,
            ],
            ..Default::default()
        };
        let mut ops = BTreeMap::new();
        count_graph(&graph, &mut ops);
        let executed = ExecutedOps {
            optimization_level: OptimizationLevel::All,
            ops,
        };
        assert_eq!(executed.count("QLinearConv"), 2);
        assert_eq!(executed.integer_convs(), 2);
        assert_eq!(executed.float_convs(), 2);
        assert_eq!(executed.remaining_qdq(), 1);
        assert_eq!(executed.total(), 6);
        assert_eq!(
            executed.integer_kernels().into_iter().collect::<Vec<_>>(),
            [("QLinearConv", 2)]
        );
        assert_eq!(executed.count("MatMul"), 0);
    }
}
