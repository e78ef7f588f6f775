//! [`IndicatifProgress`]: kiln-pipeline's [`Progress`] as an indicatif bar on stderr.

use std::fmt;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_pipeline::Progress;

use super::config::ProgressMode;

/// The bar's layout: what runs, elapsed time, bar, position/length, rate and ETA.
const TEMPLATE: &str =
    "{msg:>22} [{elapsed_precise}] [{wide_bar}] {pos}/{len} ({per_sec}, ETA {eta})";

/// A progress bar for [`Engine::predict`](kiln_pipeline::Engine::predict): position and length in
/// samples, the rate per second, the ETA and the run's label (`inference`, `collecting
/// statistics`). It draws on stderr only when stderr is a terminal, so piped or `--json` output
/// stays clean; a hidden bar still counts.
///
/// One bar serves many runs: [`Progress::start`] resets it, [`Progress::finish`] clears it.
#[derive(Clone)]
pub struct IndicatifProgress {
    bar: ProgressBar,
}

impl fmt::Debug for IndicatifProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndicatifProgress")
            .field("position", &self.bar.position())
            .field("length", &self.bar.length())
            .field("hidden", &self.bar.is_hidden())
            .finish()
    }
}

impl Default for IndicatifProgress {
    /// [`IndicatifProgress::new`].
    fn default() -> IndicatifProgress {
        IndicatifProgress::new()
    }
}

impl IndicatifProgress {
    /// A bar on stderr, hidden when stderr is not a terminal.
    pub fn new() -> IndicatifProgress {
        IndicatifProgress::with_mode(ProgressMode::Bar)
    }

    /// A bar that never draws (it still counts).
    pub fn hidden() -> IndicatifProgress {
        IndicatifProgress::with_mode(ProgressMode::Hidden)
    }

    /// A bar drawn as `mode` says (and only on a terminal).
    pub fn with_mode(mode: ProgressMode) -> IndicatifProgress {
        let target = match mode {
            ProgressMode::Bar if std::io::stderr().is_terminal() => ProgressDrawTarget::stderr(),
            ProgressMode::Bar | ProgressMode::Hidden => ProgressDrawTarget::hidden(),
        };
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style);
        IndicatifProgress { bar }
    }

    /// Units done in the current (or last) run.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Units of the current (or last) run.
    pub fn length(&self) -> Option<u64> {
        self.bar.length()
    }

    /// The current run's label.
    pub fn label(&self) -> String {
        self.bar.message()
    }

    /// Whether the bar draws nothing.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

impl Progress for IndicatifProgress {
    fn start(&self, total: u64, label: &str) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_message(label.to_owned());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
