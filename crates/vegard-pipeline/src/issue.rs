//! Analysis issues as data: which step, what kind of problem, and the words
//! for a person. Code that decides (the report's status, whether a step an
//! aborted run never reached is a failure) matches on [`IssueKind`], never
//! on the message, so rewording a message cannot change a decision.

use serde::{Deserialize, Serialize};
use vegard_store::RecordedIssue;

/// What went wrong, or deserves a look, in the analysis of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The step has no (or too few) recorded points to analyse: e.g. a step
    /// an aborted run never reached, or an ESM sweep with fewer than four
    /// demodulated frequencies.
    NoData,
    /// The data are there but the analysis or fit did not succeed.
    FitFailed,
    /// The lin-KK test could not be run.
    KramersKronig,
    /// The spectrum failed the lin-KK test (the cell drifted or responded
    /// nonlinearly); the fit was done.
    KramersKronigFailed,
    /// An ESM sweep fitted without an EIS at the same temperature: tau is
    /// uncorrected for R_s + R_ct (biased long).
    EsmUncorrected,
    /// An ESM frequency whose analysed window is compromised (lock-in
    /// switched late, dwell shorter than the analysed periods).
    EsmWindow,
    /// Arrhenius fits with points left out, or that failed.
    Arrhenius,
    /// A sweep (EIS or ESM) that recorded fewer points than planned (a run
    /// stopped or killed during it): fitted, but left out of the Arrhenius
    /// fits unless asked for.
    SweepCutShort,
    /// A recording segment whose clock alignment is weaker than usual.
    Alignment,
    /// A step recorded in a segment whose fitted clock drift is beyond
    /// ±[`vegard_clock::DRIFT_BOUND_PPM`]: the clock model, not the
    /// oscillator, is wrong (typically a virtual bench at another speed than
    /// the run assumed), so the step's time alignment is not trustworthy
    /// and nothing derived from it (charge, deformation vs charge κ,
    /// nonlinearity, ESM demodulation) is reported. An error, not a
    /// warning: the result is withheld.
    Clock,
    /// A kind this version does not know (recorded by another version).
    #[serde(other)]
    Other,
}

impl IssueKind {
    /// Whether an issue of this kind leaves a result standing (a warning)
    /// rather than a step unanalysed (an error).
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            IssueKind::KramersKronigFailed
                | IssueKind::EsmUncorrected
                | IssueKind::EsmWindow
                | IssueKind::SweepCutShort
                | IssueKind::Alignment
                | IssueKind::Other
        )
    }
}

/// One issue of a run's analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisIssue {
    /// Plan step (0-based), `None` for issues of the whole run (Arrhenius).
    pub step: Option<i64>,
    pub kind: IssueKind,
    /// The issue in words, naming the step (`step 3 (cv): ...`).
    pub message: String,
}

impl AnalysisIssue {
    pub fn new(step: impl Into<Option<i64>>, kind: IssueKind, message: impl Into<String>) -> Self {
        AnalysisIssue {
            step: step.into(),
            kind,
            message: message.into(),
        }
    }
}

impl AnalysisIssue {
    /// As run.toml's `[[data_issues]]` entry.
    pub fn to_recorded(&self) -> RecordedIssue {
        RecordedIssue {
            step: self.step,
            kind: serde_json::to_value(self.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            message: self.message.clone(),
        }
    }

    /// Back from run.toml; an unknown kind reads as [`IssueKind::Other`].
    pub fn from_recorded(r: &RecordedIssue) -> Self {
        AnalysisIssue {
            step: r.step,
            kind: serde_json::from_value(serde_json::Value::String(r.kind.clone()))
                .unwrap_or(IssueKind::Other),
            message: r.message.clone(),
        }
    }
}

impl std::fmt::Display for AnalysisIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
