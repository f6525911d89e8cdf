//! The analysis error type: bad input shapes, too little data, or data that
//! cannot determine the requested quantity. Never a panic.

/// Why an analysis could not produce a number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Input slices that should be parallel have different lengths.
    #[error("{name} has {got} samples but t_s has {expected}")]
    Length {
        name: &'static str,
        expected: usize,
        got: usize,
    },

    /// Time must not run backwards: every integral here assumes it.
    #[error("t_s decreases at sample {index} ({before} -> {after} s)")]
    TimeOrder {
        index: usize,
        before: f64,
        after: f64,
    },

    /// Not enough usable (finite) samples or cycles.
    #[error("not enough data: {0}")]
    Insufficient(String),

    /// Enough samples, but they cannot determine the quantity (e.g. the
    /// charge never changes, or charge and time are collinear).
    #[error("degenerate data: {0}")]
    Degenerate(String),

    /// A caller-supplied parameter outside its physical range.
    #[error("{name} = {value}: {why}")]
    Parameter {
        name: &'static str,
        value: f64,
        why: &'static str,
    },

    /// An equivalent-circuit string that does not parse. `column` is
    /// 1-based, counted in characters of the string as given.
    #[error("circuit string, column {column}: expected {expected}, found {found}")]
    CircuitSyntax {
        column: usize,
        expected: String,
        found: String,
    },

    /// More data than the analysis is bounded for (e.g. more than
    /// [`crate::MAX_FIT_POINTS`] impedance points): refused before any
    /// work, with what to do instead.
    #[error("too much data: {0}")]
    TooMuchData(String),

    /// The nonlinear fit stopped without meeting a convergence criterion.
    #[error("fit failed: {0}")]
    FitFailed(String),

    /// A data file that cannot be read or parsed; `line` is 1-based (0 when
    /// the file could not be opened at all).
    #[error("{path}:{line}: {why}")]
    File {
        path: String,
        line: usize,
        why: String,
    },
}
