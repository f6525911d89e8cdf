//! The analysis error type: bad input shapes, too little data, or data that
//! cannot determine the requested quantity. Never a panic.

/// Why an analysis could not produce a number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Input slices that should be parallel have different lengths.
    #[error("{name} has {got} values but {reference} has {expected}")]
    Length {
        name: &'static str,
        /// The slice `name` must match (`t_s`, `f_Hz`, `T_K`).
        reference: &'static str,
        expected: usize,
        got: usize,
    },

    /// A parameter vector (an initial guess) whose length is not the
    /// circuit's number of parameters; `names` lists them in order.
    #[error(
        "the initial guess has {got} values but the circuit {circuit} has {expected} parameters ({names})"
    )]
    GuessLength {
        circuit: String,
        names: String,
        expected: usize,
        got: usize,
    },

    /// Time must not run backwards: every integral here assumes it.
    // In full: rounded, the two times could print the same.
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
    /// the file could not be opened at all: then no line is printed).
    #[error("{path}{}: {why}", at_line(.line))]
    File {
        path: String,
        line: usize,
        why: String,
    },
}

/// `:LINE`, or nothing for line 0 (a file that could not be opened has no
/// line to point at; `nope.csv:0:` read as a line number).
fn at_line(line: &usize) -> String {
    if *line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// A number in a message: six significant digits (`0.555047`, not
/// `0.5550473077848115`), non-finite values as they are (`NaN`, `inf`).
pub(crate) fn num(v: &f64) -> String {
    if v.is_finite() {
        vegard_core::format::sig(*v, 6)
    } else {
        v.to_string()
    }
}
