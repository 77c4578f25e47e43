//! Opt-in wall-time accounting of the custom ops (forward and backward separately), for the
//! benchmark's "where does the time go" table. Off by default; when off, a timer costs one
//! relaxed atomic load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The timed op phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Convolution forward.
    ConvForward = 0,
    /// Convolution backward (both gradients).
    ConvBackward,
    /// BatchNorm forward (training).
    NormForward,
    /// BatchNorm backward.
    NormBackward,
    /// Residual join forward and backward, eval-mode affine.
    Elementwise,
    /// Convolutions of the direct path whose shape its kernels do not cover, run through im2col
    /// (layout conversions included).
    DirectFallback,
}

const NAMES: [&str; 6] = [
    "conv forward",
    "conv backward",
    "batch-norm forward",
    "batch-norm backward",
    "add+relu / affine",
    "im2col fallback (direct)",
];
static NANOS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Turns the accounting on or off.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Returns the accumulated `(phase name, seconds)` and resets the counters.
pub fn take() -> Vec<(&'static str, f64)> {
    NAMES.iter().zip(&NANOS).map(|(n, a)| (*n, a.swap(0, Ordering::Relaxed) as f64 * 1e-9)).collect()
}

/// Times a scope when enabled.
pub(crate) struct Timer(Option<(Phase, Instant)>);

impl Timer {
    pub(crate) fn start(phase: Phase) -> Self {
        Timer(ENABLED.load(Ordering::Relaxed).then(|| (phase, Instant::now())))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((p, t)) = self.0 {
            NANOS[p as usize].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}
