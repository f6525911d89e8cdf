//! vegard-analysis turns aligned samples into physical numbers: charge,
//! double-layer capacitance, faradaic charge, deformation vs charge (the
//! Vegard coefficient kappa) and the apparent partial molar volume.
//!
//! It works on plain slices and never knows whether the data came from the
//! simulator or from hardware. The same code serves live summaries and
//! post-run analysis.
//!
//! Sign conventions (shared with the whole project): current is IUPAC,
//! anodic positive; Q(t) = integral of I dt; deflection u is positive when
//! the surface moves up. A film that expands on cation insertion (cathodic
//! charge) therefore has kappa = du/dQ_F < 0.
//!
//! Units are in the names: `t_s`, `E_V`, `I_A`, `deflection_nm`, `Q_F_C`,
//! `slope_nm_per_mC`.

mod arrhenius;
mod charge;
mod cv;
mod deformation;
mod eis;
mod error;
mod esm_fit;
mod fit;
mod harmonic;
mod linalg;
mod nonlinearity;
mod origin;
mod scan_rate;

pub use arrhenius::{Arrhenius, EaDifference, compare, fit_arrhenius};
pub use charge::{
    CdlEstimate, CdlOptions, cumulative_charge_C, estimate_C_dl_F, estimate_C_dl_F_with,
    faradaic_charge_C,
};
pub use cv::{ChargeSummary, CvAnalysis, analyze_cv, analyze_cv_taking_current};
pub use deformation::{
    CdlSource, CvInput, CycleFit, DeformationVsCharge, HalfCycleFit, MIN_POINTS_PER_CYCLE,
    SkippedCycle, SweepDirection, apparent_partial_molar_volume_cm3_per_mol, deformation_vs_charge,
};
pub use eis::{
    ALPHA_BOUND_TOL, ArcSummary, ArrheniusLine, C64, Circuit, CircuitElement, DEFAULT_CANDIDATES,
    DEFAULT_LM_STARTS, EisFit, EisSeries, ElementKind, FitOptions as EisFitOptions, FitProblem,
    FitStatus, Geometry, LinKk, LinKkOptions, MAX_CIRCUIT_DEPTH, MAX_CIRCUIT_ELEMENTS,
    MAX_CONDITION, MAX_FIT_POINTS, MAX_RELATIVE_SE, Quality as EisQuality, SeriesArrhenius,
    SeriesPoint, SeriesSpectrum, Spectrum, Weighting as EisWeighting, fit_arrhenius_line,
    fit_circuit, fit_circuit_with, fit_series, initial_guess, lin_kk, lin_kk_with, parse_eis_text,
    read_eis_csv, series_arrhenius,
};
pub use error::AnalysisError;
pub use esm_fit::{
    CellCorrection, EsmFit, EsmFitOptions, Weighting as EsmWeighting,
    deflection_per_faradaic_charge, film_drive_V, film_transfer_H, fit_esm_h, fit_esm_h_corrected,
};
pub use harmonic::{EsmPoint, Harmonics, Phasor, esm_point, harmonics};
pub use nonlinearity::{
    HarmonicRow, LoopArea, Nonlinearity, NonlinearityFlags, NonlinearityInput, NonlinearityOptions,
    QuadraticRegression, analyze_nonlinearity,
};
pub use origin::{
    CV_HARMONICS, ESM_HARMONICS, Estimate, Mechanism, MechanismTest, OriginCell,
    OriginCoefficients, OriginStep, OriginStepKind, OriginWindow, Share, SignalOrigin, VerdictKind,
    WindowShares, separate_origins,
};
pub use scan_rate::{DunnSplit, PowerLaw, b_value, dunn_split};
