//! Element types of tensors, declared or inferred from the producing op ([`ElemTypes`]), and typed
//! graph outputs for intermediate tensors ([`add_output`], [`add_outputs`]).
//!
//! ONNX Runtime returns an intermediate tensor only when it is declared as a graph output with an
//! element type, which is why calibration needs the element type of every tensor it exposes.

use std::collections::{HashMap, HashSet};

use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::type_proto::{self, Value};
use crate::proto::{GraphProto, NodeProto, TensorShapeProto, TypeProto, ValueInfoProto};

use super::error::GraphError;
use super::index::GraphIndex;
use super::node::{NodeExt, is_default_domain};
use super::topo::order_with;

/// One dimension of a tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Value(i64),
    /// A named symbolic size (`"N"`, `"height"`).
    Param(String),
    /// Unknown.
    Unknown,
}

/// The type of a tensor value: element type and, when known, its dims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    /// The element type (never `UNDEFINED`).
    pub elem_type: DataType,
    /// The dims, `None` when the rank is unknown.
    pub dims: Option<Vec<Dim>>,
}

impl TensorType {
    /// Reads a tensor `TypeProto`; `None` for other types and for an undefined element type.
    pub fn from_proto(ty: &TypeProto) -> Option<Self> {
        let Some(Value::TensorType(t)) = &ty.value else {
            return None;
        };
        let elem_type = DataType::try_from(t.elem_type)
            .ok()
            .filter(|d| *d != DataType::Undefined)?;
        let dims = t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(v)) => Dim::Value(*v),
                    Some(dimension::Value::DimParam(p)) => Dim::Param(p.clone()),
                    None => Dim::Unknown,
                })
                .collect()
        });
        Some(Self { elem_type, dims })
    }

    /// The `TypeProto` of this tensor type.
    pub fn to_proto(&self) -> TypeProto {
        let shape = self.dims.as_ref().map(|dims| TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| Dimension {
                    value: match d {
                        Dim::Value(v) => Some(dimension::Value::DimValue(*v)),
                        Dim::Param(p) => Some(dimension::Value::DimParam(p.clone())),
                        Dim::Unknown => None,
                    },
                    ..Default::default()
                })
                .collect(),
        });
        TypeProto {
            value: Some(Value::TensorType(type_proto::Tensor {
                elem_type: self.elem_type as i32,
                shape,
            })),
            ..Default::default()
        }
    }
}

/// A tensor `TypeProto` with an element type and exact dims.
pub fn tensor_type_proto(elem_type: i32, dims: &[i64]) -> TypeProto {
    TypeProto {
        value: Some(Value::TensorType(type_proto::Tensor {
            elem_type,
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(dimension::Value::DimValue(d)),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    }
}

/// A tensor `TypeProto` with an element type and no shape.
fn elem_only_proto(elem_type: DataType) -> TypeProto {
    TypeProto {
        value: Some(Value::TensorType(type_proto::Tensor {
            elem_type: elem_type as i32,
            shape: None,
        })),
        ..Default::default()
    }
}

/// The element type of every tensor of a graph that has one: declared types first (initializers,
/// `Constant` nodes, graph inputs/outputs, `value_info`), then per-op rules in topological order.
///
/// Rules: most ops keep the element type of their first input (Conv, Relu, Add, Mul, Sigmoid,
/// HardSwish, Concat, Reshape, Transpose, MaxPool, Resize, Split, Slice, ...); `Where` and
/// `CastLike` take input 1, `OneHot` input 2; Shape, Size, NonZero, ArgMax, ArgMin,
/// NonMaxSuppression and the index outputs of MaxPool, TopK and Unique give INT64; comparison and
/// logic ops give BOOL; `Cast` gives its `to`; `QuantizeLinear` the type of its zero point (else
/// `output_dtype`, else UINT8); `DequantizeLinear` the type of its scale (else FLOAT);
/// `ConstantOfShape` the type of its `value` (else FLOAT); `If`/`Loop`/`Scan` the declared outputs
/// of their subgraphs.
#[derive(Debug, Clone, Default)]
pub struct ElemTypes {
    known: HashMap<String, DataType>,
    unknown: HashMap<String, String>,
}

impl ElemTypes {
    /// Infers the element types of `graph`; fails on a cycle or a missing producer.
    pub fn infer(graph: &GraphProto) -> Result<Self, GraphError> {
        let index = GraphIndex::new(graph)?;
        Self::infer_with(graph, &index)
    }

    /// Like [`ElemTypes::infer`] with an index already built from `graph`.
    pub fn infer_with(graph: &GraphProto, index: &GraphIndex) -> Result<Self, GraphError> {
        let order = order_with(graph, index)?;
        let mut types = Self::default();
        for name in index.tensor_names() {
            if let Some(elem) = index.elem_type(name) {
                types.known.insert(name.to_owned(), elem);
            }
        }
        for n in order {
            let Some(node) = graph.node.get(n) else {
                continue;
            };
            let lookup = |name: &str| types.known.get(name).copied();
            let inferred: Vec<(String, Result<DataType, String>)> = node
                .output
                .iter()
                .enumerate()
                .filter(|(_, out)| !out.is_empty() && !types.known.contains_key(out.as_str()))
                .map(|(o, out)| (out.clone(), infer_output(node, o, &lookup)))
                .collect();
            for (out, result) in inferred {
                match result {
                    Ok(elem) => {
                        types.known.insert(out, elem);
                    }
                    Err(reason) => {
                        types.unknown.insert(out, reason);
                    }
                }
            }
        }
        for name in index.tensor_names() {
            if !types.known.contains_key(name) && !types.unknown.contains_key(name) {
                types.unknown.insert(
                    name.to_owned(),
                    "no tensor element type is declared for it".to_owned(),
                );
            }
        }
        Ok(types)
    }

    /// The element type of `tensor`, if known.
    pub fn get(&self, tensor: &str) -> Option<DataType> {
        self.known.get(tensor).copied()
    }

    /// The element type of `tensor`, or why it is unknown.
    pub fn require(&self, tensor: &str) -> Result<DataType, GraphError> {
        if let Some(elem) = self.get(tensor) {
            return Ok(elem);
        }
        match self.unknown.get(tensor) {
            Some(reason) => Err(GraphError::UnknownElemType {
                tensor: tensor.to_owned(),
                reason: reason.clone(),
            }),
            None => Err(GraphError::UnknownTensor {
                tensor: tensor.to_owned(),
            }),
        }
    }
}

/// How an op's output element type follows from the node.
enum Rule {
    /// The type of input `n`.
    Input(usize),
    /// Always this type.
    Fixed(DataType),
    /// The `to` attribute (`Cast`).
    CastTo,
    /// Zero-point type, else `output_dtype`, else UINT8 (`QuantizeLinear`).
    Quantize,
    /// Scale type, else FLOAT (`DequantizeLinear`).
    Dequantize,
    /// The `value` tensor's type, else FLOAT (`ConstantOfShape`).
    ConstantOfShape,
    /// The `dtype` attribute, else input 0 (`EyeLike`, `*Like` random ops, `Bernoulli`).
    DtypeOrInput0,
    /// The `dtype` attribute, else this type (`RandomNormal`, `RandomUniform`, `Multinomial`).
    DtypeOr(DataType),
    /// The declared type of output `output + offset` of the subgraph attribute.
    Subgraph(&'static str, usize),
    /// No rule.
    Unknown,
}

/// Ops whose outputs have the element type of their first input.
const SAME_AS_FIRST_INPUT: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "AffineGrid",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "Ceil",
    "Celu",
    "CenterCropPad",
    "Clip",
    "Col2Im",
    "Compress",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DeformConv",
    "DepthToSpace",
    "Det",
    "Div",
    "Dropout",
    "Einsum",
    "Elu",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "GridSample",
    "GroupNormalization",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "InstanceNormalization",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "Max",
    "MaxPool",
    "MaxRoiPool",
    "MaxUnpool",
    "Mean",
    "MeanVarianceNormalization",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "RNN",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "Round",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unique",
    "Unsqueeze",
    "Upsample",
];

/// Ops whose outputs are BOOL.
const BOOL_OUTPUT: &[&str] = &[
    "And",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "IsInf",
    "IsNaN",
    "Less",
    "LessOrEqual",
    "Not",
    "Or",
    "Xor",
];

/// Ops whose outputs are INT64.
const INT64_OUTPUT: &[&str] = &[
    "ArgMax",
    "ArgMin",
    "NonMaxSuppression",
    "NonZero",
    "Shape",
    "Size",
];

/// `com.microsoft` ops with a rule (the contrib Q/DQ and common fused float ops).
const MICROSOFT_SAME_AS_FIRST_INPUT: &[&str] = &[
    "BiasGelu",
    "FastGelu",
    "FusedConv",
    "FusedGemm",
    "FusedMatMul",
    "Gelu",
    "QuickGelu",
];

fn rule(node: &NodeProto, output: usize) -> Rule {
    let op = node.op_type.as_str();
    if node.domain == "com.microsoft" {
        return match op {
            "QuantizeLinear" => Rule::Quantize,
            "DequantizeLinear" => Rule::Dequantize,
            _ if MICROSOFT_SAME_AS_FIRST_INPUT.contains(&op) => Rule::Input(0),
            _ => Rule::Unknown,
        };
    }
    if !is_default_domain(&node.domain) {
        return Rule::Unknown;
    }
    match (op, output) {
        ("MaxPool" | "TopK", 1) | ("Unique", 1..) => Rule::Fixed(DataType::Int64),
        ("Dropout", 1) => Rule::Fixed(DataType::Bool),
        // Mean and InvStdDev use `stash_type`, FLOAT by default.
        ("LayerNormalization", 1..) => Rule::Fixed(DataType::Float),
        ("Cast", _) => Rule::CastTo,
        ("CastLike" | "Where", _) => Rule::Input(1),
        ("OneHot", _) => Rule::Input(2),
        ("QuantizeLinear", _) => Rule::Quantize,
        ("DequantizeLinear", _) => Rule::Dequantize,
        ("DynamicQuantizeLinear", 1) => Rule::Fixed(DataType::Float),
        ("DynamicQuantizeLinear", _) => Rule::Fixed(DataType::Uint8),
        // y_zero_point is input 7 of both.
        ("QLinearConv" | "QLinearMatMul", _) => Rule::Input(7),
        ("ConvInteger" | "MatMulInteger", _) => Rule::Fixed(DataType::Int32),
        ("ConstantOfShape", _) => Rule::ConstantOfShape,
        ("EyeLike" | "RandomNormalLike" | "RandomUniformLike" | "Bernoulli", _) => {
            Rule::DtypeOrInput0
        }
        ("RandomNormal" | "RandomUniform", _) => Rule::DtypeOr(DataType::Float),
        ("Multinomial", _) => Rule::DtypeOr(DataType::Int32),
        ("If", _) => Rule::Subgraph("then_branch", 0),
        // Loop body outputs are (cond, carried..., scan...); Loop outputs skip cond.
        ("Loop", _) => Rule::Subgraph("body", 1),
        ("Scan", _) => Rule::Subgraph("body", 0),
        _ if BOOL_OUTPUT.contains(&op) => Rule::Fixed(DataType::Bool),
        _ if INT64_OUTPUT.contains(&op) => Rule::Fixed(DataType::Int64),
        _ if SAME_AS_FIRST_INPUT.contains(&op) => Rule::Input(0),
        _ => Rule::Unknown,
    }
}

fn data_type(value: i64, what: &str) -> Result<DataType, String> {
    i32::try_from(value)
        .ok()
        .and_then(|v| DataType::try_from(v).ok())
        .filter(|d| *d != DataType::Undefined)
        .ok_or_else(|| format!("its {what} {value} is not an ONNX element type"))
}

/// The element type of output `output` of `node`, given the known types of other tensors.
fn infer_output(
    node: &NodeProto,
    output: usize,
    known: &dyn Fn(&str) -> Option<DataType>,
) -> Result<DataType, String> {
    let op = &node.op_type;
    let input_name = |i: usize| node.input.get(i).filter(|n| !n.is_empty());
    let input = |i: usize| -> Result<DataType, String> {
        let name = input_name(i).ok_or_else(|| format!("its producer {op} has no input {i}"))?;
        known(name).ok_or_else(|| {
            format!("the element type of input {name:?} of its producer {op} is unknown")
        })
    };
    let dtype_attr = || node.attr_i("dtype").filter(|d| *d != 0);
    match rule(node, output) {
        Rule::Input(i) => input(i),
        Rule::Fixed(elem) => Ok(elem),
        Rule::CastTo => {
            let to = node
                .attr_i("to")
                .ok_or_else(|| format!("its producer {op} has no `to` attribute"))?;
            data_type(to, "`to`")
        }
        Rule::Quantize => {
            if input_name(2).is_some() {
                input(2)
            } else if let Some(out) = node.attr_i("output_dtype").filter(|d| *d != 0) {
                data_type(out, "`output_dtype`")
            } else {
                Ok(DataType::Uint8)
            }
        }
        Rule::Dequantize => Ok(input(1).unwrap_or(DataType::Float)),
        Rule::ConstantOfShape => match node.attr_tensor("value") {
            Some(t) => data_type(i64::from(t.data_type), "`value` data type"),
            None => Ok(DataType::Float),
        },
        Rule::DtypeOrInput0 => match dtype_attr() {
            Some(d) => data_type(d, "`dtype`"),
            None => input(0),
        },
        Rule::DtypeOr(default) => dtype_attr().map_or(Ok(default), |d| data_type(d, "`dtype`")),
        Rule::Subgraph(attr, offset) => {
            let graph = node
                .attr_graph(attr)
                .ok_or_else(|| format!("its producer {op} has no `{attr}` subgraph"))?;
            graph
                .output
                .get(output + offset)
                .and_then(|v| v.r#type.as_ref())
                .and_then(TensorType::from_proto)
                .map(|t| t.elem_type)
                .ok_or_else(|| {
                    format!("the `{attr}` subgraph of its producer {op} declares no tensor type for output {}", output + offset)
                })
        }
        Rule::Unknown => Err(format!(
            "no element-type rule for its producer op {op:?} of domain {:?}",
            node.domain
        )),
    }
}

/// What to do with a tensor whose element type cannot be determined, in [`add_outputs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnUnknownType {
    /// Fail with [`GraphError::UnknownElemType`] and change nothing.
    #[default]
    Error,
    /// Leave it out and list it in [`AddedOutputs::skipped`].
    Skip,
}

/// Options of [`add_outputs`].
#[derive(Debug, Clone, Default)]
pub struct AddOutputsOptions {
    /// What to do with a tensor whose element type cannot be determined.
    pub on_unknown: OnUnknownType,
}

/// What [`add_outputs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddedOutputs {
    /// Tensors appended to the graph outputs, in request order.
    pub added: Vec<String>,
    /// Tensors that already were graph outputs (or were requested twice).
    pub existing: Vec<String>,
    /// Tensors left out, with the reason (only with [`OnUnknownType::Skip`]).
    pub skipped: Vec<(String, String)>,
}

/// Declares `tensor` as a graph output with its element type (and shape when declared).
/// Returns `false` when it already was an output.
pub fn add_output(graph: &mut GraphProto, tensor: &str) -> Result<bool, GraphError> {
    let report = add_outputs(graph, [tensor], &AddOutputsOptions::default())?;
    Ok(!report.added.is_empty())
}

/// Declares many tensors as graph outputs at once, each once, with their element types.
///
/// The declared type is copied when there is one (keeping its shape); otherwise the output gets
/// the inferred element type and no shape. A name the graph does not define is an error in any
/// mode; on error nothing is changed.
pub fn add_outputs<S: AsRef<str>>(
    graph: &mut GraphProto,
    tensors: impl IntoIterator<Item = S>,
    options: &AddOutputsOptions,
) -> Result<AddedOutputs, GraphError> {
    let index = GraphIndex::new(graph)?;
    let types = ElemTypes::infer_with(graph, &index)?;
    let mut present: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut report = AddedOutputs::default();
    let mut new_outputs = Vec::new();
    for tensor in tensors {
        let name = tensor.as_ref();
        if present.contains(name) {
            report.existing.push(name.to_owned());
            continue;
        }
        if !index.contains(name) {
            return Err(GraphError::UnknownTensor {
                tensor: name.to_owned(),
            });
        }
        let declared = index.value_type(name);
        let ty = match declared {
            Some(ty) if TensorType::from_proto(ty).is_some() => ty.clone(),
            // Sequences, maps, optionals: the declaration is all there is.
            Some(ty) if !matches!(ty.value, Some(Value::TensorType(_)) | None) => ty.clone(),
            _ => match types.require(name) {
                Ok(elem) => with_elem_type(declared, elem),
                Err(GraphError::UnknownElemType { reason, .. })
                    if options.on_unknown == OnUnknownType::Skip =>
                {
                    report.skipped.push((name.to_owned(), reason));
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        present.insert(name.to_owned());
        report.added.push(name.to_owned());
        new_outputs.push(ValueInfoProto {
            name: name.to_owned(),
            r#type: Some(ty),
            ..Default::default()
        });
    }
    graph.output.extend(new_outputs);
    Ok(report)
}

/// `declared` (a tensor type without element type, or nothing) with `elem` filled in.
fn with_elem_type(declared: Option<&TypeProto>, elem: DataType) -> TypeProto {
    match declared {
        Some(TypeProto {
            value: Some(Value::TensorType(t)),
            denotation,
        }) => TypeProto {
            value: Some(Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: t.shape.clone(),
            })),
            denotation: denotation.clone(),
        },
        _ => elem_only_proto(elem),
    }
}
