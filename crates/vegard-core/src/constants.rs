//! Physical constants (CODATA 2018 exact SI values) shared by the simulator and
//! the analysis, so both sides of a known-answer test use identical numbers.

/// Faraday constant, C/mol.
pub const FARADAY_C_PER_MOL: f64 = 96_485.332_12;
/// Molar gas constant, J/(mol K).
pub const GAS_CONSTANT_J_PER_MOL_K: f64 = 8.314_462_618;
/// Boltzmann constant, eV/K.
pub const BOLTZMANN_EV_PER_K: f64 = 8.617_333_262e-5;
