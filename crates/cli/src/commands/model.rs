//! A model file opened for a command, with the facts the commands need about its inputs and
//! outputs (names and shapes, `None` for an open dimension).

use std::fmt;
use std::path::{Path, PathBuf};

use kiln_onnx::Model;
use kiln_onnx::graph::{Dim, TensorType};
use kiln_onnx::proto::ValueInfoProto;

use super::errors::InputError;

/// A graph input or output: its name and shape (`None` for a dimension the model leaves open;
/// no shape at all when the rank is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The name.
    pub name: String,
    /// The dimensions, when the rank is known.
    pub shape: Option<Vec<Option<usize>>>,
}

impl Value {
    fn of(info: &ValueInfoProto) -> Value {
        let shape = info
            .r#type
            .as_ref()
            .and_then(TensorType::from_proto)
            .and_then(|t| t.dims)
            .map(|dims| {
                dims.iter()
                    .map(|d| match d {
                        Dim::Value(v) if *v > 0 => usize::try_from(*v).ok(),
                        _ => None,
                    })
                    .collect()
            });
        Value {
            name: info.name.clone(),
            shape,
        }
    }

    /// The number of classes when this looks like a classifier's output: `[N, C]` or
    /// `[N, C, 1, 1]` with `C` fixed.
    pub fn classes(&self) -> Option<usize> {
        match self.shape.as_deref()? {
            [_, c] => *c,
            [_, c, Some(1), Some(1)] => *c,
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ", self.name)?;
        match &self.shape {
            None => f.write_str("[?]"),
            Some(dims) => {
                let dims: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
                    .collect();
                write!(f, "[{}]", dims.join(", "))
            }
        }
    }
}

/// An opened model and its interface.
#[derive(Debug)]
pub struct ModelFile {
    /// The file.
    pub path: PathBuf,
    /// The decoded model.
    pub model: Model,
    /// Inputs a caller feeds (initializers excluded), in order.
    pub inputs: Vec<Value>,
    /// Outputs, in order.
    pub outputs: Vec<Value>,
}

impl ModelFile {
    /// Opens and decodes `path`; a missing, truncated or non-ONNX file is an
    /// [`InputError::Model`] naming it.
    pub fn open(path: &Path) -> Result<ModelFile, InputError> {
        let model = Model::open(path).map_err(|source| InputError::Model {
            path: path.to_owned(),
            source,
        })?;
        let graph = model.graph();
        let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(&i.name.as_str()))
            .map(Value::of)
            .collect();
        let outputs = graph.output.iter().map(Value::of).collect();
        Ok(ModelFile {
            path: path.to_owned(),
            model,
            inputs,
            outputs,
        })
    }

    /// The one input images feed; an error naming the model when it has several (or none).
    pub fn image_input(&self) -> Result<&Value, InputError> {
        match self.inputs.as_slice() {
            [one] => Ok(one),
            other => Err(InputError::ModelInputs {
                path: self.path.clone(),
                reason: format!(
                    "images feed one input, but the model has {} ({}); give the inputs as an .npz \
                     file with one array per input",
                    other.len(),
                    self.inputs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// The first output (the one metrics read).
    pub fn first_output(&self) -> Result<&Value, InputError> {
        self.outputs.first().ok_or_else(|| InputError::ModelInputs {
            path: self.path.clone(),
            reason: "the model has no outputs".into(),
        })
    }

    /// The file stem (`yolov8n` for `models/yolov8n.onnx`).
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
    }
}
