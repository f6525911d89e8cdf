//! The run engine: executes a checked recipe on a bench.
//!
//! Owns: opening the devices named by the bench config (starting the virtual
//! bench in-process when a resource is `sim`), one task per device (the
//! potentiostat on its own thread because serial I/O is blocking, the
//! digitizer as a tokio task), limit enforcement, the safe state (the cell is
//! switched off on every exit path), and streaming every sample to the run
//! folder. At the end of a run it hands the folder to the post-run pipeline
//! (`vegard_pipeline::finalize_run`), which owns everything after the
//! instruments: alignment, Parquet, analysis.

mod run;
mod stage;

pub use run::{EngineFault, Progress, RunControl, RunOutcome, RunRequest, run};

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
    Sim(#[from] vegard_sim::SimError),
    #[error(transparent)]
    Instrument(#[from] vegard_instruments::InstrumentError),
    #[error("{0}")]
    Setup(String),
    #[error("cancelled before the run started: nothing was recorded")]
    Cancelled,
    #[error(transparent)]
    Pipeline(#[from] vegard_pipeline::PipelineError),
}
