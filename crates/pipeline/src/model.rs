//! [`CompressedModel`] (POT's `CompressedModel`): one ONNX model or a named cascade of them, with
//! [`load_model`] / [`save_model`] over POT's model config shape:
//!
//! ```json
//! {"model_name": "mobilenet_v2", "model": "models/mobilenet_v2.onnx"}
//! {"model_name": "mtcnn", "cascade": [{"name": "pnet", "model": "pnet.onnx"}, {"name": "rnet", "model": "rnet.onnx"}]}
//! ```
//!
//! POT's `weights` (the IR's `.bin`) is accepted: ONNX keeps weights in the model or in external
//! data files named by the model, so `weights`, when given, must exist and names the directory
//! external data is read from; a model without external data ignores it (with a warning).
//! Saving writes each model atomically through kiln-onnx ([`kiln_onnx::Model::save`]).

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use kiln_onnx::Model;
use kiln_onnx::proto::tensor_proto::DataLocation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::PipelineError;

/// One model of a [`CompressedModel`], with its name in the cascade (the model name for a single
/// model).
#[derive(Debug, Clone)]
pub struct NamedModel {
    /// The name (`pnet`).
    pub name: String,
    /// The model.
    pub model: Model,
}

/// A model under optimization: one ONNX model, or a cascade of named models run one after the
/// other by a cascade-aware engine.
#[derive(Debug, Clone)]
pub struct CompressedModel {
    name: String,
    models: Vec<NamedModel>,
    cascade: bool,
}

impl CompressedModel {
    /// A single model called `name`.
    pub fn single(name: impl Into<String>, model: Model) -> CompressedModel {
        let name = name.into();
        CompressedModel {
            models: vec![NamedModel {
                name: name.clone(),
                model,
            }],
            name,
            cascade: false,
        }
    }

    /// A cascade called `name`: at least one model, names distinct and usable in file names.
    pub fn cascade(
        name: impl Into<String>,
        models: Vec<NamedModel>,
    ) -> Result<CompressedModel, PipelineError> {
        let name = name.into();
        check_name("model_name", &name)?;
        if models.is_empty() {
            return Err(PipelineError::Model {
                reason: format!("cascade {name:?} has no models"),
            });
        }
        for (i, m) in models.iter().enumerate() {
            check_name(&format!("cascade[{i}].name"), &m.name)?;
            if models[..i].iter().any(|o| o.name == m.name) {
                return Err(PipelineError::Model {
                    reason: format!("cascade {name:?} has two models named {:?}", m.name),
                });
            }
        }
        Ok(CompressedModel {
            name,
            models,
            cascade: true,
        })
    }

    /// The model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The models, in cascade order (one for a single model).
    pub fn models(&self) -> &[NamedModel] {
        &self.models
    }

    /// The models, for editing.
    pub fn models_mut(&mut self) -> &mut [NamedModel] {
        &mut self.models
    }

    /// The models, giving up the wrapper.
    pub fn into_models(self) -> Vec<NamedModel> {
        self.models
    }

    /// Whether this is a cascade (loaded from a `cascade` config or built with
    /// [`CompressedModel::cascade`]), even of one model.
    pub fn is_cascade(&self) -> bool {
        self.cascade
    }

    /// The model of a single-model `CompressedModel`; `None` for a cascade.
    pub fn model(&self) -> Option<&Model> {
        match (self.cascade, self.models.as_slice()) {
            (false, [only]) => Some(&only.model),
            _ => None,
        }
    }

    /// The model of a single-model `CompressedModel`, for editing; `None` for a cascade.
    pub fn model_mut(&mut self) -> Option<&mut Model> {
        match (self.cascade, self.models.as_mut_slice()) {
            (false, [only]) => Some(&mut only.model),
            _ => None,
        }
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedModel> {
        self.models.iter().find(|m| m.name == name)
    }

    /// A digest of every model and its name (see [`model_digest`]).
    pub fn digest(&self) -> Result<String, PipelineError> {
        let mut parts = vec![self.name.clone().into_bytes()];
        for m in &self.models {
            parts.push(m.name.clone().into_bytes());
            parts.push(model_digest(&m.model)?.into_bytes());
        }
        Ok(crate::stats::fingerprint(parts))
    }
}

/// The hex SHA-256 of a model's content: its encoded proto, then the bytes of every initializer
/// kept in external data (read through the model's resolver). Two files with the same graph and
/// weights have the same digest wherever they live.
pub fn model_digest(model: &Model) -> Result<String, PipelineError> {
    let mut hasher = Sha256::new();
    hasher.update(b"kiln-model");
    hasher.update(model.encode()?);
    for tensor in &model.graph().initializer {
        if tensor.data_location == DataLocation::External as i32 {
            let bytes = model.tensor_bytes(tensor)?;
            hasher.update((tensor.name.len() as u64).to_le_bytes());
            hasher.update(tensor.name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// POT's model config: a single model (`model`, optional `weights`) or a `cascade`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model name (file stem when saving).
    pub model_name: String,
    /// The ONNX file of a single model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// POT's weights file: for ONNX, an external data file (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// The models of a cascade, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Vec<CascadeEntry>>,
}

/// One model of a cascade in a [`ModelConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeEntry {
    /// Its name in the cascade.
    pub name: String,
    /// The ONNX file.
    pub model: PathBuf,
    /// POT's weights file (see [`ModelConfig::weights`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

impl ModelConfig {
    /// A single-model config.
    pub fn single(model_name: impl Into<String>, model: impl Into<PathBuf>) -> ModelConfig {
        ModelConfig {
            model_name: model_name.into(),
            model: Some(model.into()),
            weights: None,
            cascade: None,
        }
    }

    /// Parses POT's JSON shape.
    pub fn from_json(value: &serde_json::Value) -> Result<ModelConfig, PipelineError> {
        let config = ModelConfig::deserialize(value).map_err(|e| PipelineError::Config {
            field: "model_config".into(),
            reason: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the shape: a usable name, exactly one of `model` and `cascade`, a non-empty cascade
    /// with distinct names, `weights` only next to `model`.
    pub fn validate(&self) -> Result<(), PipelineError> {
        check_name("model_config.model_name", &self.model_name)?;
        let config_error = |field: &str, reason: &str| PipelineError::Config {
            field: format!("model_config.{field}"),
            reason: reason.to_owned(),
        };
        match (&self.model, &self.cascade) {
            (Some(_), Some(_)) => Err(config_error(
                "cascade",
                "give either `model` or `cascade`, not both",
            )),
            (None, None) => Err(config_error("model", "give `model` (or `cascade`)")),
            (None, Some(_)) if self.weights.is_some() => Err(config_error(
                "weights",
                "a cascade gives `weights` per model, not at the top level",
            )),
            (None, Some(entries)) => {
                if entries.is_empty() {
                    return Err(config_error("cascade", "is empty"));
                }
                for (i, e) in entries.iter().enumerate() {
                    check_name(&format!("model_config.cascade[{i}].name"), &e.name)?;
                    if entries[..i].iter().any(|o| o.name == e.name) {
                        return Err(config_error(
                            &format!("cascade[{i}].name"),
                            &format!("{:?} is used twice", e.name),
                        ));
                    }
                }
                Ok(())
            }
            (Some(_), None) => Ok(()),
        }
    }
}

/// A name used in file names: non-empty, no path separators, not `.` or `..`.
fn check_name(field: &str, name: &str) -> Result<(), PipelineError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.trim() != name;
    if bad {
        return Err(PipelineError::Config {
            field: field.to_owned(),
            reason: format!(
                "{name:?} is not usable as a file name (empty, `.`/`..`, a path separator or surrounding spaces)"
            ),
        });
    }
    Ok(())
}

/// Opens one model, applying POT's `weights`.
fn open(path: &Path, weights: Option<&Path>) -> Result<Model, PipelineError> {
    let model = Model::open(path)?;
    let Some(weights) = weights else {
        return Ok(model);
    };
    if !weights.is_file() {
        return Err(PipelineError::Io {
            op: "reading weights",
            path: weights.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    if !model.has_external_data() {
        tracing::warn!(
            model = %path.display(),
            weights = %weights.display(),
            "the model keeps its weights inline; `weights` is ignored"
        );
        return Ok(model);
    }
    let dir = match weights.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(model.with_base_dir(dir))
}

/// Loads the model(s) a config names (POT's `load_model`).
pub fn load_model(config: &ModelConfig) -> Result<CompressedModel, PipelineError> {
    config.validate()?;
    match (&config.model, &config.cascade) {
        (Some(path), _) => Ok(CompressedModel::single(
            config.model_name.clone(),
            open(path, config.weights.as_deref())?,
        )),
        (None, Some(entries)) => {
            let models = entries
                .iter()
                .map(|e| {
                    Ok(NamedModel {
                        name: e.name.clone(),
                        model: open(&e.model, e.weights.as_deref())?,
                    })
                })
                .collect::<Result<Vec<_>, PipelineError>>()?;
            CompressedModel::cascade(config.model_name.clone(), models)
        }
        // `validate` rules this out.
        (None, None) => Err(PipelineError::Config {
            field: "model_config.model".into(),
            reason: "give `model` (or `cascade`)".into(),
        }),
    }
}

/// Where [`save_model`] wrote one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedModel {
    /// The model's name (its cascade name, or the model name).
    pub name: String,
    /// The ONNX file.
    pub model: PathBuf,
}

/// Saves `model` into the directory `save_path` (created if needed) as `<model_name>.onnx`, or
/// `<model_name>_<name>.onnx` per cascade model (POT's `save_model`); `model_name` defaults to the
/// model's name. Each file is replaced atomically; large weights go to external data as kiln-onnx
/// decides ([`kiln_onnx::SaveOptions::default`]).
pub fn save_model(
    model: &CompressedModel,
    save_path: impl AsRef<Path>,
    model_name: Option<&str>,
) -> Result<Vec<SavedModel>, PipelineError> {
    let dir = save_path.as_ref();
    let stem = model_name.unwrap_or(model.name());
    check_name("model_name", stem)?;
    std::fs::create_dir_all(dir).map_err(PipelineError::io("creating directory", dir))?;
    model
        .models()
        .iter()
        .map(|m| {
            let file = if model.is_cascade() {
                format!("{stem}_{}.onnx", m.name)
            } else {
                format!("{stem}.onnx")
            };
            let path = dir.join(file);
            m.model.save(&path)?;
            Ok(SavedModel {
                name: if model.is_cascade() {
                    m.name.clone()
                } else {
                    stem.to_owned()
                },
                model: path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The shared `y = x * s` test model.
    fn tiny(scale: f32) -> Model {
        crate::engine::tests::mul_model(scale)
    }

    fn scale_of(model: &Model) -> Vec<f32> {
        kiln_onnx::graph::tensor_to_f32(&model.graph().initializer[0]).expect("f32")
    }

    #[test]
    fn single_model_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = CompressedModel::single("tiny", tiny(2.0));
        assert!(!model.is_cascade());
        assert!(model.model().is_some());
        let saved = save_model(&model, dir.path().join("out"), None).expect("saved");
        assert_eq!(
            saved,
            [SavedModel {
                name: "tiny".into(),
                model: dir.path().join("out/tiny.onnx")
            }]
        );
        let config = ModelConfig::from_json(&json!({
            "model_name": "tiny",
            "model": saved[0].model,
        }))
        .expect("config");
        let back = load_model(&config).expect("loaded");
        assert_eq!(back.name(), "tiny");
        assert!(!back.is_cascade());
        assert_eq!(scale_of(back.model().expect("single")), [2.0]);
        assert_eq!(
            back.digest().expect("digest"),
            model.digest().expect("digest")
        );
        // Saved again under another name.
        let renamed = save_model(&back, dir.path(), Some("other")).expect("saved");
        assert_eq!(renamed[0].model, dir.path().join("other.onnx"));
    }

    #[test]
    fn cascade_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = CompressedModel::cascade(
            "mtcnn",
            vec![
                NamedModel {
                    name: "pnet".into(),
                    model: tiny(1.0),
                },
                NamedModel {
                    name: "rnet".into(),
                    model: tiny(3.0),
                },
            ],
        )
        .expect("cascade");
        assert!(model.is_cascade());
        assert!(model.model().is_none());
        let saved = save_model(&model, dir.path(), None).expect("saved");
        let names: Vec<_> = saved
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.model.file_name().and_then(|f| f.to_str()),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("pnet", Some("mtcnn_pnet.onnx")),
                ("rnet", Some("mtcnn_rnet.onnx"))
            ]
        );
        let config = ModelConfig::from_json(&json!({
            "model_name": "mtcnn",
            "cascade": saved.iter().map(|s| json!({"name": s.name, "model": s.model})).collect::<Vec<_>>(),
        }))
        .expect("config");
        let back = load_model(&config).expect("loaded");
        assert!(back.is_cascade());
        assert_eq!(back.models().len(), 2);
        assert_eq!(scale_of(&back.get("rnet").expect("rnet").model), [3.0]);
        assert_eq!(
            back.digest().expect("digest"),
            model.digest().expect("digest")
        );
    }

    #[test]
    fn digests_follow_content() {
        let a = model_digest(&tiny(1.0)).expect("digest");
        assert_eq!(a, model_digest(&tiny(1.0)).expect("digest"));
        assert_ne!(a, model_digest(&tiny(1.5)).expect("digest"));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let cases = [
            (json!({"model_name": "m"}), "model_config.model"),
            (
                json!({"model_name": "m", "model": "a.onnx", "cascade": [{"name": "a", "model": "a.onnx"}]}),
                "model_config.cascade",
            ),
            (
                json!({"model_name": "m", "cascade": []}),
                "model_config.cascade",
            ),
            (
                json!({"model_name": "m", "cascade": [{"name": "a", "model": "a.onnx"}, {"name": "a", "model": "b.onnx"}]}),
                "model_config.cascade[1].name",
            ),
            (
                json!({"model_name": "a/b", "model": "a.onnx"}),
                "model_config.model_name",
            ),
            (
                json!({"model_name": "m", "model": "a.onnx", "extra": 1}),
                "model_config",
            ),
            (
                json!({"model_name": "m", "weights": "w.bin", "cascade": [{"name": "a", "model": "a.onnx"}]}),
                "model_config.weights",
            ),
        ];
        for (config, field) in cases {
            match ModelConfig::from_json(&config) {
                Err(PipelineError::Config { field: got, .. }) => {
                    assert_eq!(got, field, "{config}")
                }
                other => panic!("{config}: expected a config error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn weights_must_exist_and_are_ignored_for_inline_models() {
        let dir = tempfile::tempdir().expect("tempdir");
        let saved =
            save_model(&CompressedModel::single("m", tiny(2.0)), dir.path(), None).expect("saved");
        let mut config = ModelConfig::single("m", &saved[0].model);
        config.weights = Some(dir.path().join("missing.bin"));
        assert!(matches!(
            load_model(&config),
            Err(PipelineError::Io {
                op: "reading weights",
                ..
            })
        ));
        let weights = dir.path().join("m.bin");
        std::fs::write(&weights, b"").expect("write");
        config.weights = Some(weights);
        assert_eq!(
            scale_of(
                load_model(&config)
                    .expect("loaded")
                    .model()
                    .expect("single")
            ),
            [2.0]
        );
    }

    #[test]
    fn missing_model_files_are_onnx_errors() {
        let config = ModelConfig::single("m", "/nonexistent/m.onnx");
        assert!(matches!(load_model(&config), Err(PipelineError::Onnx(_))));
    }
}
