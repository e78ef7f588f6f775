//! The background machinery: retries with backoff, failures surfaced by `wait_for_uploads`
//! (injected, and a real `file://` destination that breaks), timeouts, the in-flight limit,
//! and weights updates landing in call order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kiln_tracking_client::{
    ModelProperties, OutputModel, OutputModelOptions, TrackingError, UpdateWeightsOptions,
    WEIGHTS_ROLE, WaitOptions,
};

use crate::common::{Fixture, Wrapped, quick_policy, task_with};

#[tokio::test]
async fn transient_failures_are_retried() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()).failing(2, true));
    let task = task_with(wrapped.clone(), quick_policy(3)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let file = fx.file("w.bin", b"eventually stored");
    model
        .update_weights(UpdateWeightsOptions::file(&file))
        .await
        .expect("start");
    let uris = task
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect("the third attempt succeeds");
    assert_eq!(wrapped.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(model.url().as_deref(), Some(uris[0].as_str()));
    assert!(!file.exists(), "deleted after the successful upload");
}

#[tokio::test]
async fn exhausted_retries_are_reported_with_every_failure() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()).failing(100, true));
    let task = task_with(wrapped.clone(), quick_policy(3)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let a = fx.file("a.bin", b"a");
    let b = fx.file("b.bin", b"b");
    for file in [&a, &b] {
        model
            .update_weights(UpdateWeightsOptions::file(file))
            .await
            .expect("start");
    }
    let err = task
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect_err("both fail");
    let TrackingError::UploadsFailed(failures) = &err else {
        panic!("expected UploadsFailed, got {err}");
    };
    assert_eq!(failures.len(), 2, "every failure is returned");
    for failure in failures {
        assert_eq!(failure.attempts, 3);
        assert_eq!(failure.model, model.id());
        assert!(failure.error.is_transient());
    }
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(wrapped.attempts.load(Ordering::SeqCst), 6);
    assert!(
        a.exists() && b.exists(),
        "files are kept when the upload fails"
    );
    assert_eq!(model.url(), None);
    assert_eq!(fx.stored(model.id()).await.record.uri, None);
    assert_eq!(
        task.pending_uploads(),
        0,
        "a reported failure is not reported again"
    );
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()).failing(1, false));
    let task = task_with(wrapped.clone(), quick_policy(5)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let file = fx.file("w.bin", b"w");
    let upload = model
        .update_weights(UpdateWeightsOptions::file(&file))
        .await
        .expect("start");
    let err = upload.wait().await.expect_err("fails at once");
    let TrackingError::UploadsFailed(failures) = &err else {
        panic!("expected UploadsFailed, got {err}");
    };
    assert_eq!(failures[0].attempts, 1);
    assert_eq!(wrapped.attempts.load(Ordering::SeqCst), 1);

    // A synchronous upload returns the error itself.
    wrapped.failures_left.store(1, Ordering::SeqCst);
    let err = model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            ..UpdateWeightsOptions::file(&file)
        })
        .await
        .expect_err("sync failure");
    assert!(
        matches!(
            err,
            TrackingError::Backend {
                transient: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(file.exists());
}

#[tokio::test]
async fn a_broken_file_destination_surfaces_in_wait_for_uploads() {
    let fx = Fixture::new().await;
    let task = task_with(fx.backend(), quick_policy(2)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let dest = fx.dir.path().join("dest");
    let dest_url = url::Url::from_directory_path(&dest)
        .expect("url")
        .to_string();
    model
        .set_upload_destination(&dest_url)
        .await
        .expect("the destination works now");
    // Then the destination's directory becomes a regular file.
    std::fs::remove_dir_all(&dest).expect("remove the store directory");
    std::fs::write(&dest, b"not a directory").expect("a file in its place");

    let file = fx.file("w.bin", b"weights");
    model
        .update_weights(UpdateWeightsOptions::file(&file))
        .await
        .expect("start");
    let err = model
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect_err("the upload fails");
    let TrackingError::UploadsFailed(failures) = &err else {
        panic!("expected UploadsFailed, got {err}");
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].destination.as_deref(), Some(dest_url.as_str()));
    assert!(failures[0].source.contains("w.bin"), "{}", failures[0]);
    assert!(
        matches!(*failures[0].error, TrackingError::Blob(_)),
        "{}",
        failures[0]
    );
    assert!(file.exists(), "kept after a failed upload");
    assert_eq!(fx.stored(model.id()).await.record.uri, None);
}

#[tokio::test]
async fn a_timeout_leaves_uploads_pending() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()));
    let task = task_with(wrapped.clone(), quick_policy(1)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let file = fx.file("gated.bin", b"held at the gate");
    model
        .update_weights(UpdateWeightsOptions::file(&file))
        .await
        .expect("start");
    let err = task
        .wait_for_uploads(WaitOptions {
            timeout: Some(Duration::from_millis(20)),
            ..WaitOptions::default()
        })
        .await
        .expect_err("times out");
    assert!(
        matches!(err, TrackingError::WaitTimeout { pending: 1, .. }),
        "{err}"
    );
    assert_eq!(task.pending_uploads(), 1);
    wrapped.open_gate();
    let uris = task
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect("then finishes");
    assert_eq!(model.url().as_deref(), Some(uris[0].as_str()));
}

#[tokio::test]
async fn at_most_two_uploads_per_model_are_in_flight() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()).holding(Duration::from_millis(30)));
    let task = task_with(wrapped.clone(), quick_policy(1)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    for i in 0..6 {
        let file = fx.file(&format!("w{i}.bin"), format!("weights {i}").as_bytes());
        model
            .update_weights(UpdateWeightsOptions::file(file))
            .await
            .expect("start");
    }
    let uris = task
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect("all");
    assert_eq!(uris.len(), 6);
    let max = wrapped.max_running.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} uploads ran at once");
    assert_eq!(model.url().as_deref(), uris.last().map(String::as_str));
}

#[tokio::test]
async fn a_slow_earlier_upload_does_not_replace_later_weights() {
    let fx = Fixture::new().await;
    let wrapped = Arc::new(Wrapped::new(fx.local.clone()));
    let task = task_with(wrapped.clone(), quick_policy(1)).await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let slow = fx.file("gated-old.bin", b"old weights");
    let fast = fx.file("new.bin", b"new weights");
    let old = model
        .update_weights(UpdateWeightsOptions::file(&slow))
        .await
        .expect("start old");
    let new_uri = model
        .update_weights(UpdateWeightsOptions::file(&fast))
        .await
        .expect("start new")
        .wait()
        .await
        .expect("new stored");
    assert!(old.is_pending());
    wrapped.open_gate();
    let old_uri = old.wait().await.expect("old stored as a blob");
    assert_ne!(old_uri, new_uri);
    assert_eq!(model.url().as_deref(), Some(new_uri.as_str()));
    let stored = fx.stored(model.id()).await;
    assert_eq!(stored.record.uri.as_deref(), Some(new_uri.as_str()));
    assert_eq!(
        stored.blob(WEIGHTS_ROLE).map(|b| b.uri.as_str()),
        Some(new_uri.as_str())
    );
}
