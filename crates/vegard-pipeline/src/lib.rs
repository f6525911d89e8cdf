//! The post-run pipeline: everything vegard does with a run folder once the
//! instruments are done with it.
//!
//! - [`finalize_run`] / [`recover_run`]: raw streams -> clock alignment per
//!   recording segment -> `data/*.parquet` with the shared time ->
//!   `aligned.parquet` -> spectrum tables (`data/eis.parquet`,
//!   `data/esm.parquet`) -> run.toml status, per-step records, alignment.
//! - [`analyze_run`] -> [`RunAnalysis`]: deformation vs charge of every CV
//!   step, circuit fits of EIS steps, film-transfer fits of ESM sweeps, the
//!   Arrhenius comparison of tau_EIS and tau_ESM.
//! - [`import_run`]: a potentiostat file and a deflection trace recorded by
//!   other software -> the same run folder (`vegard import`), the trace's
//!   clock aligned by sync edges, start timestamps or cross-correlation.
//! - [`arrhenius_comparison`]: the same Arrhenius over fits pooled from
//!   several runs (a campaign).
//!
//! Why a crate of its own: the live engine (tokio, serial ports, drivers)
//! and the emulators are not needed to finalise, analyse or report on a
//! folder, and data recorded by other software goes through the same
//! pipeline. The engine calls [`finalize_run`] at the end of a run; the
//! report and the CLI's post-run commands depend on this crate only.

mod analyze;
mod finalize;
mod import;
mod issue;
mod origin;
mod products;
mod scan_rate;
mod spectra;
mod steps;

use std::path::PathBuf;

pub use analyze::{
    CdlLookup, CvStepAnalysis, RunAnalysis, UntrustedSegments, alignment_issues, analyze_aligned,
    analyze_run, analyze_steps, headline_cv, pooled_arrhenius, untrusted_segments,
};
pub use finalize::{FinalizeSummary, RecoverSummary, finalize_run, recover_run};
pub use import::{
    ImportError, ImportInput, ImportOptions, ImportOutcome, PotentiostatEvents, SyncChoice,
    import_run,
};
pub use issue::{AnalysisIssue, IssueKind};
pub use origin::{OriginOutcome, analyze_origin};
pub use products::{MIN_MODULATION_FRACTION, esm_flag};
pub use scan_rate::{
    Branch, DunnPoint, EsmChargePoint, MIN_SCAN_RATES, PowerLawFit, ScanRateAnalysis, ScanRateStep,
};
pub use spectra::{
    ArrheniusComparison, CELL_CIRCUIT, CircuitCheckError, EisStepFit, EsmStepFit, KappaPoint,
    KkCheck, SpectraAnalysis, SpectraOptions, analyze_spectra, arrhenius_comparison,
    arrhenius_inputs, c_dl_for_step,
};
pub use steps::{AlignedFile, CvSamples, StepIndex, rows_of_step};
pub use vegard_clock::{DRIFT_BOUND_PPM, ExternalAlignment, ExternalMethod};
pub use vegard_store::SegmentAlignment;

/// Why a run folder could not be finalised or analysed at all. A step that
/// cannot be analysed is not an error of this kind: it becomes an
/// [`AnalysisIssue`] and the rest of the run is still analysed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] vegard_store::StoreError),
    /// run.toml's `[recipe]` or `[bench]` does not parse as this version's
    /// schema.
    #[error("{}: run.toml [{table}]: {msg}", .dir.display())]
    RunToml {
        dir: PathBuf,
        table: &'static str,
        msg: String,
    },
    /// A folder of the run that cannot be created.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Spectrum-fit options whose circuit or parameter roles do not fit.
    #[error(transparent)]
    Circuit(#[from] CircuitCheckError),
}
