//! [`ModelSummary`]: what `kiln inspect` shows about a model — inputs and outputs with symbolic
//! shapes, opsets, operators, parameters, metadata — as plain serializable data and as a compact
//! text table ([`Display`](std::fmt::Display)).
//!
//! Counting rules:
//!
//! - **Nodes and operators** count every node of the main graph and of all its subgraphs (the
//!   bodies of `If`, `Loop`, `Scan`, ...), merged into one map; `subgraph_count` says how many
//!   subgraphs there were. Nodes inside model-local functions are not counted (they are
//!   definitions; the calling node is counted). Operators outside the default ONNX domain are
//!   keyed `domain:OpType` (`com.microsoft:FusedConv`).
//! - **Parameters** are the elements of every initializer (main graph and subgraphs; for sparse
//!   initializers, the stored values) plus the values of `Constant` nodes (`value`,
//!   `sparse_value`, `value_float(s)`, `value_int(s)`, `value_string(s)`). Other attribute
//!   tensors (`ConstantOfShape.value`) are not parameters. Bytes are the packed data size (string
//!   lengths for strings, values + indices for sparse tensors), computed from dims and types, so a
//!   summary never reads external data.
//! - **Inputs** are graph inputs that are not initializers (IR < 4 models list weights as inputs).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Model;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::dimension;
use crate::proto::{
    GraphProto, NodeProto, SparseTensorProto, TensorProto, TypeProto, ValueInfoProto, type_proto,
};
use crate::{external, tensor, walk};

/// The longest `doc_string` kept in a summary, in characters.
pub const DOC_STRING_MAX_CHARS: usize = 200;

/// A model at a glance. Plain data: serialize it for `kiln inspect --json`, print it for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Size of the model file (or bytes) it was decoded from; `None` when built in memory.
    pub file_size: Option<u64>,
    /// The IR version.
    pub ir_version: i64,
    /// Operator sets imported: domain -> version, the default domain shown as `ai.onnx`.
    pub opsets: BTreeMap<String, i64>,
    /// The exporting tool (`pytorch`), may be empty.
    pub producer_name: String,
    /// Its version, may be empty.
    pub producer_version: String,
    /// The model's domain (reverse-DNS), may be empty.
    pub domain: String,
    /// The model's own version number.
    pub model_version: i64,
    /// The model's doc string, cut to [`DOC_STRING_MAX_CHARS`] characters.
    pub doc_string: String,
    /// Graph inputs a caller feeds (initializers excluded).
    pub inputs: Vec<ValueSummary>,
    /// Graph outputs.
    pub outputs: Vec<ValueSummary>,
    /// Nodes in the main graph and all subgraphs.
    pub node_count: u64,
    /// Subgraphs (attribute graphs of `If`, `Loop`, `Scan`, ...), at any depth.
    pub subgraph_count: u64,
    /// Nodes by operator, subgraphs included.
    pub op_counts: BTreeMap<String, u64>,
    /// Parameters: initializers and `Constant` values.
    pub parameters: ParameterSummary,
    /// Tensors whose data lives in external files.
    pub external_tensors: u64,
    /// Model-local functions.
    pub function_count: u64,
    /// `metadata_props`: key -> value (the last one wins for a repeated key).
    pub metadata: BTreeMap<String, String>,
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueSummary {
    /// The value's name.
    pub name: String,
    /// The element type (`float32`, `int64`); for non-tensor values an ONNX-style type
    /// (`seq(tensor(float32))`, `map(int64,tensor(float32))`, `optional(...)`,
    /// `sparse_tensor(float32)`); `unknown` when absent.
    pub elem_type: String,
    /// The shape; `None` when the rank is unknown or the value is not a tensor.
    pub shape: Option<Vec<Dim>>,
}

/// One dimension of a shape. Serialized untagged: `3`, `"batch"`, `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A known size.
    Fixed(i64),
    /// A named size (`batch`, `height`).
    Symbolic(String),
    /// Neither.
    Unknown,
}

/// Parameter counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterSummary {
    /// Elements of all parameter tensors.
    pub count: u64,
    /// Bytes those elements occupy.
    pub bytes: u64,
    /// Elements from initializers.
    pub from_initializers: u64,
    /// Elements from `Constant` nodes.
    pub from_constants: u64,
    /// Parameter tensors (initializers + `Constant` nodes).
    pub tensors: u64,
    /// Count and bytes by element type name (`float32`).
    pub by_type: BTreeMap<String, TypeCount>,
}

/// Elements and bytes of one element type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    /// Elements.
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
}

impl ParameterSummary {
    fn add(&mut self, elem_type: String, count: u64, bytes: u64, constant: bool) {
        self.count = self.count.saturating_add(count);
        self.bytes = self.bytes.saturating_add(bytes);
        let source = if constant {
            &mut self.from_constants
        } else {
            &mut self.from_initializers
        };
        *source = source.saturating_add(count);
        self.tensors += 1;
        let entry = self.by_type.entry(elem_type).or_default();
        entry.count = entry.count.saturating_add(count);
        entry.bytes = entry.bytes.saturating_add(bytes);
    }

    fn add_tensor(&mut self, t: &TensorProto, constant: bool) {
        let count = tensor::numel(&t.dims).unwrap_or(0);
        let bytes = tensor::data_size(t).unwrap_or(0);
        self.add(tensor::elem_type_label(t.data_type), count, bytes, constant);
    }

    fn add_sparse(&mut self, s: &SparseTensorProto, constant: bool) {
        let Some(values) = &s.values else { return };
        let count = tensor::numel(&values.dims).unwrap_or(0);
        let bytes = [Some(values), s.indices.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(tensor::data_size)
            .fold(0u64, u64::saturating_add);
        self.add(
            tensor::elem_type_label(values.data_type),
            count,
            bytes,
            constant,
        );
    }

    /// Adds the value of a `Constant` node (whichever of its value attributes it has).
    fn add_constant(&mut self, node: &NodeProto) {
        for attr in &node.attribute {
            let scalar = |ty: DataType, n: usize, bytes: u64| {
                (tensor::elem_type_label(ty as i32), n as u64, bytes)
            };
            let (ty, count, bytes) = match attr.name.as_str() {
                "value" => match &attr.t {
                    Some(t) => {
                        self.add_tensor(t, true);
                        continue;
                    }
                    None => continue,
                },
                "sparse_value" => match &attr.sparse_tensor {
                    Some(s) => {
                        self.add_sparse(s, true);
                        continue;
                    }
                    None => continue,
                },
                "value_float" => scalar(DataType::Float, 1, 4),
                "value_floats" => scalar(
                    DataType::Float,
                    attr.floats.len(),
                    4 * attr.floats.len() as u64,
                ),
                "value_int" => scalar(DataType::Int64, 1, 8),
                "value_ints" => {
                    scalar(DataType::Int64, attr.ints.len(), 8 * attr.ints.len() as u64)
                }
                "value_string" => scalar(DataType::String, 1, attr.s.len() as u64),
                "value_strings" => scalar(
                    DataType::String,
                    attr.strings.len(),
                    attr.strings.iter().map(|s| s.len() as u64).sum(),
                ),
                _ => continue,
            };
            self.add(ty, count, bytes, true);
        }
    }
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn op_key(node: &NodeProto) -> String {
    if is_default_domain(&node.domain) {
        node.op_type.clone()
    } else {
        format!("{}:{}", node.domain, node.op_type)
    }
}

impl ModelSummary {
    /// Summarizes `model`; `file_size` comes from the bytes it was decoded from.
    pub fn of(model: &Model) -> ModelSummary {
        let proto = model.proto();
        let graph = model.graph();

        let mut op_counts = BTreeMap::new();
        let mut parameters = ParameterSummary::default();
        let (mut node_count, mut subgraph_count) = (0u64, 0u64);
        walk::graphs(graph, &mut |g: &GraphProto, depth| {
            if depth > 0 {
                subgraph_count += 1;
            }
            node_count += g.node.len() as u64;
            for node in &g.node {
                *op_counts.entry(op_key(node)).or_insert(0u64) += 1;
                if node.op_type == "Constant" && is_default_domain(&node.domain) {
                    parameters.add_constant(node);
                }
            }
            g.initializer
                .iter()
                .for_each(|t| parameters.add_tensor(t, false));
            g.sparse_initializer
                .iter()
                .for_each(|s| parameters.add_sparse(s, false));
        });

        let mut external_tensors = 0u64;
        walk::tensors(proto, &mut |t, _| {
            external_tensors += u64::from(external::is_external(t));
        });

        let initializers: std::collections::HashSet<&str> = graph
            .initializer
            .iter()
            .map(|t| t.name.as_str())
            .chain(
                graph
                    .sparse_initializer
                    .iter()
                    .filter_map(|s| s.values.as_ref().map(|v| v.name.as_str())),
            )
            .collect();

        ModelSummary {
            file_size: model.source_len(),
            ir_version: proto.ir_version,
            opsets: proto
                .opset_import
                .iter()
                .map(|o| {
                    let domain = if o.domain.is_empty() {
                        "ai.onnx"
                    } else {
                        &o.domain
                    };
                    (domain.to_owned(), o.version)
                })
                .collect(),
            producer_name: proto.producer_name.clone(),
            producer_version: proto.producer_version.clone(),
            domain: proto.domain.clone(),
            model_version: proto.model_version,
            doc_string: proto
                .doc_string
                .chars()
                .take(DOC_STRING_MAX_CHARS)
                .collect(),
            inputs: graph
                .input
                .iter()
                .filter(|v| !initializers.contains(v.name.as_str()))
                .map(ValueSummary::of)
                .collect(),
            outputs: graph.output.iter().map(ValueSummary::of).collect(),
            node_count,
            subgraph_count,
            op_counts,
            parameters,
            external_tensors,
            function_count: proto.functions.len() as u64,
            metadata: proto
                .metadata_props
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
        }
    }
}

impl ValueSummary {
    /// Summarizes one graph input or output.
    pub fn of(value: &ValueInfoProto) -> ValueSummary {
        let ty = value.r#type.as_ref();
        let shape = match ty.and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref(),
            Some(type_proto::Value::SparseTensorType(t)) => t.shape.as_ref(),
            _ => None,
        };
        ValueSummary {
            name: value.name.clone(),
            elem_type: ty.map_or_else(|| "unknown".to_owned(), type_name),
            shape: shape.map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(dimension::Value::DimValue(v)) => Dim::Fixed(*v),
                        Some(dimension::Value::DimParam(p)) if !p.is_empty() => {
                            Dim::Symbolic(p.clone())
                        }
                        _ => Dim::Unknown,
                    })
                    .collect()
            }),
        }
    }
}

/// `float32` for a tensor type, an ONNX-style type string for the others.
fn type_name(ty: &TypeProto) -> String {
    let inner = |t: &Option<Box<TypeProto>>| {
        t.as_deref()
            .map_or_else(|| "unknown".to_owned(), tensor_or_type)
    };
    match &ty.value {
        Some(type_proto::Value::TensorType(t)) => tensor::elem_type_label(t.elem_type),
        Some(type_proto::Value::SparseTensorType(t)) => {
            format!("sparse_tensor({})", tensor::elem_type_label(t.elem_type))
        }
        Some(type_proto::Value::SequenceType(s)) => format!("seq({})", inner(&s.elem_type)),
        Some(type_proto::Value::OptionalType(o)) => format!("optional({})", inner(&o.elem_type)),
        Some(type_proto::Value::MapType(m)) => format!(
            "map({},{})",
            tensor::elem_type_label(m.key_type),
            inner(&m.value_type)
        ),
        Some(type_proto::Value::OpaqueType(o)) => format!("opaque({}.{})", o.domain, o.name),
        None => "unknown".to_owned(),
    }
}

/// Like [`type_name`], but tensors nested in another type read `tensor(float32)`.
fn tensor_or_type(ty: &TypeProto) -> String {
    match &ty.value {
        Some(type_proto::Value::TensorType(t)) => {
            format!("tensor({})", tensor::elem_type_label(t.elem_type))
        }
        _ => type_name(ty),
    }
}

// ---- Display -----------------------------------------------------------------------------------

/// `1234567` -> `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `11.6 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The first line of `s`, at most `max` characters (an ellipsis marks a cut).
fn short(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= max && line.len() == s.trim_end().len() {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(s) => f.write_str(&short(s, 24)),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

impl ValueSummary {
    fn shape_text(&self) -> String {
        match &self.shape {
            None => "(unknown rank)".to_owned(),
            Some(dims) => {
                let dims: Vec<String> = dims.iter().map(Dim::to_string).collect();
                format!("[{}]", dims.join(", "))
            }
        }
    }
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{d} {v}"))
            .collect();
        writeln!(
            f,
            "{:<12}IR {}, opset {}",
            "format",
            self.ir_version,
            opsets.join(", ")
        )?;
        let producer = format!("{} {}", self.producer_name, self.producer_version);
        if !producer.trim().is_empty() {
            writeln!(f, "{:<12}{}", "producer", producer.trim())?;
        }
        if !self.domain.is_empty() || self.model_version != 0 {
            writeln!(f, "{:<12}{} v{}", "model", self.domain, self.model_version)?;
        }
        if !self.doc_string.is_empty() {
            writeln!(f, "{:<12}{}", "doc", short(&self.doc_string, 80))?;
        }
        if let Some(size) = self.file_size {
            writeln!(
                f,
                "{:<12}{} ({} bytes)",
                "file size",
                human_bytes(size),
                grouped(size)
            )?;
        }
        let p = &self.parameters;
        let by_type: Vec<String> = p
            .by_type
            .iter()
            .map(|(ty, c)| format!("{ty} {}", grouped(c.count)))
            .collect();
        writeln!(
            f,
            "{:<12}{} in {} tensors, {} ({})",
            "parameters",
            grouped(p.count),
            grouped(p.tensors),
            human_bytes(p.bytes),
            by_type.join(", ")
        )?;
        if self.external_tensors > 0 {
            writeln!(
                f,
                "{:<12}{} tensors",
                "external",
                grouped(self.external_tensors)
            )?;
        }
        let subgraphs = match self.subgraph_count {
            0 => String::new(),
            n => format!(", {n} subgraphs"),
        };
        writeln!(
            f,
            "{:<12}{} ({} operator types{subgraphs})",
            "nodes",
            grouped(self.node_count),
            self.op_counts.len()
        )?;

        for (title, values) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            writeln!(f, "\n{title}")?;
            let names: Vec<String> = values.iter().map(|v| short(&v.name, 40)).collect();
            let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
            let type_width = values.iter().map(|v| v.elem_type.len()).max().unwrap_or(0);
            for (name, v) in names.iter().zip(values) {
                writeln!(
                    f,
                    "  {name:<width$}  {:<type_width$}  {}",
                    v.elem_type,
                    v.shape_text()
                )?;
            }
        }

        if !self.op_counts.is_empty() {
            writeln!(f, "\noperators")?;
            let mut ops: Vec<(&String, &u64)> = self.op_counts.iter().collect();
            ops.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            let names: Vec<String> = ops.iter().map(|(op, _)| short(op, 32)).collect();
            let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
            let count_width = ops
                .iter()
                .map(|(_, n)| n.to_string().len())
                .max()
                .unwrap_or(0);
            let columns = (96 / (name_width + count_width + 5)).clamp(1, 4);
            let cells: Vec<String> = names
                .iter()
                .zip(&ops)
                .map(|(name, (_, n))| format!("{name:<name_width$} {n:>count_width$}"))
                .collect();
            for row in cells.chunks(columns) {
                writeln!(f, "  {}", row.join("    ").trim_end())?;
            }
        }

        if !self.metadata.is_empty() {
            writeln!(f, "\nmetadata")?;
            let width = self
                .metadata
                .keys()
                .map(|k| k.chars().count().min(24))
                .max()
                .unwrap_or(0);
            for (key, value) in &self.metadata {
                let value = value.replace('\r', "").replace('\n', "\\n");
                writeln!(f, "  {:<width$}  {}", short(key, 24), short(&value, 60))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AttributeProto;

    #[test]
    fn formatting_helpers() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_009_250), "3,009,250");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12_037_248), "11.5 MiB");
        assert_eq!(short("abc", 5), "abc");
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("one\ntwo", 10), "one…");
    }

    #[test]
    fn dims_serialize_untagged() {
        let dims = vec![Dim::Fixed(3), Dim::Symbolic("batch".into()), Dim::Unknown];
        let json = serde_json::to_string(&dims).expect("serialize");
        assert_eq!(json, r#"[3,"batch",null]"#);
        let back: Vec<Dim> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, dims);
    }

    #[test]
    fn non_tensor_types_are_named() {
        use type_proto::{Map, Sequence, Tensor, Value};
        let tensor = |elem_type| TypeProto {
            value: Some(Value::TensorType(Tensor {
                elem_type,
                shape: None,
            })),
            ..Default::default()
        };
        let seq = TypeProto {
            value: Some(Value::SequenceType(Box::new(Sequence {
                elem_type: Some(Box::new(tensor(1))),
            }))),
            ..Default::default()
        };
        assert_eq!(type_name(&seq), "seq(tensor(float32))");
        let map = TypeProto {
            value: Some(Value::MapType(Box::new(Map {
                key_type: 7,
                value_type: Some(Box::new(tensor(1))),
            }))),
            ..Default::default()
        };
        assert_eq!(type_name(&map), "map(int64,tensor(float32))");
        assert_eq!(type_name(&tensor(16)), "bfloat16");
        assert_eq!(type_name(&TypeProto::default()), "unknown");
    }

    #[test]
    fn constant_forms_count_as_parameters() {
        let attr = |name: &str, edit: &dyn Fn(&mut AttributeProto)| {
            let mut a = AttributeProto {
                name: name.into(),
                ..Default::default()
            };
            edit(&mut a);
            a
        };
        let node = NodeProto {
            op_type: "Constant".into(),
            attribute: vec![
                attr("value_floats", &|a| a.floats = vec![1.0, 2.0, 3.0]),
                attr("value_int", &|a| a.i = 5),
                attr("value_strings", &|a| {
                    a.strings = vec!["ab".into(), "c".into()]
                }),
                attr("value", &|a| {
                    a.t = Some(TensorProto {
                        data_type: DataType::Float16 as i32,
                        dims: vec![2, 2],
                        ..Default::default()
                    });
                }),
            ],
            ..Default::default()
        };
        let mut p = ParameterSummary::default();
        p.add_constant(&node);
        assert_eq!(p.count, 3 + 1 + 2 + 4);
        assert_eq!(p.bytes, 12 + 8 + 3 + 8);
        assert_eq!(p.from_constants, p.count);
        assert_eq!(
            p.by_type["float32"],
            TypeCount {
                count: 3,
                bytes: 12
            }
        );
        assert_eq!(p.by_type["string"], TypeCount { count: 2, bytes: 3 });
        assert_eq!(p.by_type["float16"], TypeCount { count: 4, bytes: 8 });
    }
}
