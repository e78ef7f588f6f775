//! Constructors of `AttributeProto` values: `attr::int("axis", 1)`, `attr::tensor("value", t)`, ...
//!
//! Each sets `name`, the `type` discriminator and the one value field, as proto3 readers expect.

use bytes::Bytes;

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, GraphProto, TensorProto};

fn base(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: ty as i32,
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: value,
        ..base(name, AttributeType::Int)
    }
}

/// A `FLOAT` attribute.
pub fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        f: value,
        ..base(name, AttributeType::Float)
    }
}

/// A `STRING` attribute (UTF-8).
pub fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        s: Bytes::copy_from_slice(value.as_bytes()),
        ..base(name, AttributeType::String)
    }
}

/// An `INTS` attribute.
pub fn ints(name: &str, values: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto {
        ints: values.into_iter().collect(),
        ..base(name, AttributeType::Ints)
    }
}

/// A `FLOATS` attribute.
pub fn floats(name: &str, values: impl IntoIterator<Item = f32>) -> AttributeProto {
    AttributeProto {
        floats: values.into_iter().collect(),
        ..base(name, AttributeType::Floats)
    }
}

/// A `STRINGS` attribute (UTF-8).
pub fn strings<S: AsRef<str>>(name: &str, values: impl IntoIterator<Item = S>) -> AttributeProto {
    AttributeProto {
        strings: values
            .into_iter()
            .map(|s| Bytes::copy_from_slice(s.as_ref().as_bytes()))
            .collect(),
        ..base(name, AttributeType::Strings)
    }
}

/// A `TENSOR` attribute (the `value` of a `Constant` node, the `value` of `ConstantOfShape`).
pub fn tensor(name: &str, value: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(value),
        ..base(name, AttributeType::Tensor)
    }
}

/// A `GRAPH` attribute (the branches of `If`, the body of `Loop` and `Scan`).
pub fn graph(name: &str, value: GraphProto) -> AttributeProto {
    AttributeProto {
        g: Some(value),
        ..base(name, AttributeType::Graph)
    }
}
