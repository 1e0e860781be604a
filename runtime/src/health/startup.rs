//! The startup gate: the startup probe fails until initialisation says it is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Closed until [`complete`](StartupGate::complete) is called, once initialisation is done (configuration
/// loaded, migrations run, caches warm); the startup probe fails while it is closed. Clones share the gate.
#[derive(Debug, Clone, Default)]
pub struct StartupGate {
    complete: Arc<AtomicBool>,
}

impl StartupGate {
    /// A gate that is not complete yet.
    #[must_use]
    pub fn new() -> StartupGate {
        StartupGate::default()
    }

    /// Marks startup as done; the startup probe passes from now on.
    pub fn complete(&self) {
        self.complete.store(true, Ordering::Release);
    }

    /// Whether startup is done.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }
}
