//! The dashboard's contract with the outside world: the events it learns
//! from (the engine live, or a run folder: [`RunEvent`], defined in
//! `vegard-core` so the engine emits it directly), the commands it sends
//! back, and the two modes it runs in. Plain data, no behaviour.

pub use vegard_core::event::{LogLevel, PlanRow, RunEvent};

/// The name the dashboard's code has used for [`RunEvent`]; the same type.
pub type DashEvent = RunEvent;

/// Sent by the dashboard to the engine (Run mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    TogglePause,
    /// Write a marker with this note into events.jsonl.
    Marker(String),
    /// Stop the run through the safe path (cell off, finalise).
    Abort,
}

/// Whether the dashboard drives a run or only looks at one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live run: `p`, `m`, `a` send commands; `q` asks whether to abort.
    Run,
    /// Attached to a run folder (running or finished): read-only, `q` leaves.
    Watch,
}
