//! [`InputModel`]: a registered model loaded read-only, by id or by name (ClearML's
//! `InputModel(model_id=…)` / `InputModel(name=…, project=…)`), with its weights.

use std::path::PathBuf;
use std::sync::Arc;

use kiln_entities::ModelId;

use crate::backend::{ModelFilter, ModelSnapshot, TrackingBackend};
use crate::error::TrackingError;
use crate::properties::ModelProperties;
use crate::task::Task;
use crate::weights::{self, GetWeightsOptions, GetWeightsPackageOptions, WeightsPackage};

/// Which model [`InputModel::find`] loads: the newest one matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputModelQuery {
    /// The model's name: matched exactly (case-sensitive), or as a pattern when it holds `*` or
    /// `?` (`*` any run of characters, `?` one, case-insensitive).
    pub name: String,
    /// Only in this project (id or name).
    pub project: Option<String>,
    /// Tags the model must all have (a leading `-` excludes a tag).
    pub tags: Vec<String>,
    /// Only published models.
    pub only_published: bool,
    /// Consider archived models too.
    pub include_archived: bool,
}

/// A registered model, read-only: the properties of [`ModelProperties`] and its weights.
#[derive(Debug, Clone)]
pub struct InputModel {
    backend: Arc<dyn TrackingBackend>,
    snapshot: ModelSnapshot,
}

impl InputModel {
    /// The model with id `id` ([`TrackingError::ModelNotFound`] when there is none).
    pub async fn load(
        backend: Arc<dyn TrackingBackend>,
        id: ModelId,
    ) -> Result<Self, TrackingError> {
        let snapshot = backend.model(id).await?;
        Ok(Self { backend, snapshot })
    }

    /// The newest model matching `query` ([`TrackingError::NoModelNamed`] when none does).
    pub async fn find(
        backend: Arc<dyn TrackingBackend>,
        query: &InputModelQuery,
    ) -> Result<Self, TrackingError> {
        if query.name.is_empty() {
            return Err(TrackingError::InvalidArgument {
                field: "name",
                reason: "the model name to look for is empty".into(),
            });
        }
        let pattern = query.name.contains(['*', '?']);
        let mut filter = ModelFilter {
            project: query.project.clone(),
            name_pattern: Some(query.name.clone()),
            tags: query.tags.clone(),
            only_published: query.only_published,
            include_archived: query.include_archived,
            ..ModelFilter::default()
        };
        loop {
            let page = backend.query_models(&filter).await?;
            // Pages are newest first: the first match is the newest.
            if let Some(snapshot) = page
                .items
                .into_iter()
                .find(|m| pattern || m.record.name == query.name)
            {
                return Ok(Self { backend, snapshot });
            }
            match page.next {
                Some(cursor) => filter.cursor = Some(cursor),
                None => {
                    return Err(TrackingError::NoModelNamed {
                        name: query.name.clone(),
                        project: query.project.clone(),
                    });
                }
            }
        }
    }

    /// Re-reads the model from the backend.
    pub async fn reload(&mut self) -> Result<(), TrackingError> {
        self.snapshot = self.backend.model(self.snapshot.id()).await?;
        Ok(())
    }

    /// Lists the model among `task`'s connected models under `name` (default: the model's name),
    /// in this process (ClearML's `InputModel.connect`).
    pub fn connect(&self, task: &Task, name: Option<&str>) {
        task.connect_model(
            name.map_or_else(|| self.name(), str::to_owned),
            self.snapshot.id(),
        );
    }

    /// Downloads the weights into the verified cache and returns the local path; see
    /// [`crate::OutputModel::get_weights`].
    pub async fn get_weights(
        &self,
        options: GetWeightsOptions,
    ) -> Result<Option<PathBuf>, TrackingError> {
        weights::get_weights(self.backend.as_ref(), &self.snapshot, options).await
    }

    /// Downloads the weights package; see [`crate::OutputModel::get_weights_package`].
    pub async fn get_weights_package(
        &self,
        options: GetWeightsPackageOptions,
    ) -> Result<Option<WeightsPackage>, TrackingError> {
        weights::get_weights_package(self.backend.as_ref(), &self.snapshot, options).await
    }
}

impl ModelProperties for InputModel {
    fn with_snapshot<R>(&self, f: impl FnOnce(&ModelSnapshot) -> R) -> R {
        f(&self.snapshot)
    }
}
