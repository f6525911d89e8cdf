//! The run engine: executes a checked recipe on a bench.
//!
//! Owns: opening the devices named by the bench config at the resolved
//! resources it is given ([`Resources`]: live instruments only; whoever
//! starts the virtual bench resolves `sim` before calling [`run`]), one task per device (the
//! potentiostat on its own thread because serial I/O is blocking, the
//! digitizer as a tokio task), limit enforcement, the safe state (the cell is
//! switched off on every exit path), and streaming every sample to the run
//! folder. At the end of a run it hands the folder to the post-run pipeline
//! (`vegard_pipeline::finalize_run`), which owns everything after the
//! instruments: alignment, Parquet, analysis.

mod abort;
mod run;
mod stage;

pub use abort::{AbortReason, Device, StopCause, StopRx};
pub use run::{
    BenchHealth, BenchRelease, EngineFault, Resources, RunControl, RunOutcome, RunRequest, run,
};
pub use stage::StageError;

/// Errors that stop a run before it starts or while finalising it. Faults
/// *during* a run do not surface here: they end the run with status
/// `aborted` and a reason, because the recorded data must still be saved.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Recipe(#[from] vegard_recipe::RecipeError),
    #[error(transparent)]
    Store(#[from] vegard_store::StoreError),
    #[error(transparent)]
    Instrument(#[from] vegard_instruments::InstrumentError),
    /// The bench config says `sim` and no virtual bench's resources were
    /// given to resolve it.
    #[error(
        "[instruments.{role}] resource = \"sim\": start the virtual bench and pass its resources"
    )]
    UnresolvedSim { role: &'static str },
    /// The bench config has this instrument but no resource was given for it.
    #[error("[instruments.{role}]: no resource given for it")]
    MissingResource { role: &'static str },
    #[error("cancelled before the run started: nothing was recorded")]
    Cancelled,
    #[error(transparent)]
    Pipeline(#[from] vegard_pipeline::PipelineError),
}
