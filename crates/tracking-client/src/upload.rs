//! Background uploads: the retry policy, the handle `update_weights` returns, and the tracker
//! `wait_for_uploads` drains.
//!
//! Every upload started with `async_enable` is registered in its task's tracker until a wait
//! observes its end, so a failure is never dropped: it is returned by exactly one
//! `wait_for_uploads` (or [`WeightsUpload::wait`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kiln_entities::ModelId;

use crate::error::{TrackingError, UploadFailure};

/// How uploads are run: how many at once per model, and how transient failures are retried.
///
/// Only errors for which [`TrackingError::is_transient`] holds are retried; the delay before
/// retry `n` (1-based) is `initial_backoff × multiplier^(n-1)`, capped at `max_backoff`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadPolicy {
    /// At most this many uploads per model are in flight (ClearML: 2). At least 1.
    pub max_in_flight: usize,
    /// Attempts per upload, the first included. At least 1.
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// How much the delay grows after each retry.
    pub multiplier: u32,
}

impl Default for UploadPolicy {
    /// Two uploads per model in flight, 5 attempts, 0.5 s doubling up to 30 s.
    fn default() -> Self {
        Self {
            max_in_flight: 2,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2,
        }
    }
}

impl UploadPolicy {
    /// The delay before retry `retry` (1 = the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1)
            .saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// How long `wait_for_uploads` waits, and for how many uploads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long ([`TrackingError::WaitTimeout`]); `None`: wait as long as it
    /// takes.
    pub timeout: Option<Duration>,
    /// Wait for at most this many uploads, oldest first; `None`: all pending ones.
    pub max_num_uploads: Option<usize>,
}

/// What a finished upload gives: the weights URI, or the failure.
pub(crate) type UploadResult = Result<String, UploadFailure>;
type SharedUpload = Shared<BoxFuture<'static, UploadResult>>;

/// What `update_weights` returns: the weights URI at once (synchronous uploads, registered
/// URIs), or a pending background upload.
///
/// kiln's blobs are content-addressed, so the URI of uploaded weights is known only once the
/// content has been hashed and stored; for a background upload, [`WeightsUpload::wait`] gives it
/// (or [`crate::Task::wait_for_uploads`] collects it with the others).
pub struct WeightsUpload {
    id: u64,
    model: ModelId,
    state: UploadState,
}

enum UploadState {
    Done(String),
    Pending {
        future: SharedUpload,
        tracker: std::sync::Arc<UploadTracker>,
    },
}

impl fmt::Debug for WeightsUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            UploadState::Done(uri) => format!("done: {uri}"),
            UploadState::Pending { future, .. } => match future.peek() {
                None => "running".to_owned(),
                Some(Ok(uri)) => format!("finished: {uri}"),
                Some(Err(failure)) => format!("failed: {failure}"),
            },
        };
        f.debug_struct("WeightsUpload")
            .field("id", &self.id)
            .field("model", &self.model)
            .field("state", &state)
            .finish()
    }
}

impl WeightsUpload {
    /// A finished update (synchronous upload or registered URI).
    pub(crate) fn done(id: u64, model: ModelId, uri: String) -> Self {
        Self {
            id,
            model,
            state: UploadState::Done(uri),
        }
    }

    /// The upload's number, unique within its task.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The model the weights are for.
    pub fn model(&self) -> ModelId {
        self.model
    }

    /// The weights URI, when the update has finished successfully.
    pub fn uri(&self) -> Option<&str> {
        match &self.state {
            UploadState::Done(uri) => Some(uri),
            UploadState::Pending { future, .. } => match future.peek() {
                Some(Ok(uri)) => Some(uri),
                _ => None,
            },
        }
    }

    /// Whether a background upload is still running.
    pub fn is_pending(&self) -> bool {
        match &self.state {
            UploadState::Done(_) => false,
            UploadState::Pending { future, .. } => future.peek().is_none(),
        }
    }

    /// Waits for the upload and returns the weights URI. A failure is
    /// [`TrackingError::UploadsFailed`] with this one upload; once waited for here, the upload
    /// is no longer reported by `wait_for_uploads`.
    pub async fn wait(self) -> Result<String, TrackingError> {
        match self.state {
            UploadState::Done(uri) => Ok(uri),
            UploadState::Pending { future, tracker } => {
                let result = future.await;
                tracker.forget(&[self.id]);
                result.map_err(|failure| TrackingError::UploadsFailed(vec![failure]))
            }
        }
    }
}

struct Entry {
    id: u64,
    model: ModelId,
    future: SharedUpload,
}

/// The uploads of one task that no wait has observed yet.
#[derive(Default)]
pub(crate) struct UploadTracker {
    next_id: AtomicU64,
    pending: Mutex<Vec<Entry>>,
}

impl fmt::Debug for UploadTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadTracker")
            .field("pending", &self.entries().len())
            .finish()
    }
}

impl UploadTracker {
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh upload number.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Tracks a background upload until a wait observes it.
    pub(crate) fn register(
        self: &std::sync::Arc<Self>,
        id: u64,
        model: ModelId,
        future: BoxFuture<'static, UploadResult>,
    ) -> WeightsUpload {
        let future = future.shared();
        self.entries().push(Entry {
            id,
            model,
            future: future.clone(),
        });
        WeightsUpload {
            id,
            model,
            state: UploadState::Pending {
                future,
                tracker: std::sync::Arc::clone(self),
            },
        }
    }

    fn forget(&self, ids: &[u64]) {
        self.entries().retain(|e| !ids.contains(&e.id));
    }

    /// How many uploads (of `model`, or all) no wait has observed yet.
    pub(crate) fn pending(&self, model: Option<ModelId>) -> usize {
        self.entries()
            .iter()
            .filter(|e| model.is_none_or(|m| e.model == m))
            .count()
    }

    /// Waits for the pending uploads (of `model`, or all), oldest first, and returns their URIs;
    /// every failure among them is in [`TrackingError::UploadsFailed`]. On timeout nothing is
    /// forgotten: a later wait reports the same uploads.
    pub(crate) async fn wait(
        &self,
        model: Option<ModelId>,
        options: WaitOptions,
    ) -> Result<Vec<String>, TrackingError> {
        let selected: Vec<(u64, SharedUpload)> = self
            .entries()
            .iter()
            .filter(|e| model.is_none_or(|m| e.model == m))
            .take(options.max_num_uploads.unwrap_or(usize::MAX))
            .map(|e| (e.id, e.future.clone()))
            .collect();
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let all = futures::future::join_all(selected.iter().map(|(_, f)| f.clone()));
        let results = match options.timeout {
            None => all.await,
            Some(timeout) => match tokio::time::timeout(timeout, all).await {
                Ok(results) => results,
                Err(_) => {
                    let pending = selected.iter().filter(|(_, f)| f.peek().is_none()).count();
                    return Err(TrackingError::WaitTimeout { timeout, pending });
                }
            },
        };
        let ids: Vec<u64> = selected.iter().map(|(id, _)| *id).collect();
        self.forget(&ids);
        let mut uris = Vec::new();
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(uri) => uris.push(uri),
                Err(failure) => failures.push(failure),
            }
        }
        if failures.is_empty() {
            Ok(uris)
        } else {
            Err(TrackingError::UploadsFailed(failures))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = UploadPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..UploadPolicy::default()
        };
        let delays: Vec<u128> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350, 350]);
    }

    #[test]
    fn backoff_with_multiplier_one_is_constant() {
        let policy = UploadPolicy {
            initial_backoff: Duration::from_millis(10),
            multiplier: 1,
            ..UploadPolicy::default()
        };
        assert_eq!(policy.backoff(1), policy.backoff(40));
    }
}
