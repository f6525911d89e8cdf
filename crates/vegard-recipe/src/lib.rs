//! Recipe and bench-config schema, parsing with `FILE:LINE:COL` errors, and
//! physical validation before anything touches hardware.
//!
//! Typical use: `load_bench`, then `Source::read` + `parse_recipe` +
//! `validate_with_bench`. Every error names the file, line and column of the
//! key to fix.

mod doc;
mod error;
mod parse;
pub mod schema;
mod sim_defaults;
mod validate;

pub use error::{RecipeError, Source, error_at};
pub use parse::{STEP_KINDS, load_bench, load_recipe, parse_bench, parse_recipe};
pub use schema::*;
pub use validate::{
    KNOWN_DEFLECTION_DRIVERS, KNOWN_LOCKIN_DRIVERS, KNOWN_POTENTIOSTAT_DRIVERS,
    KNOWN_TEMPERATURE_DRIVERS, LOCKIN_MAX_SINE_V_PEAK, LS336_INPUTS, MAX_AMPLITUDE_V,
    MAX_EIS_FREQUENCY_HZ, MAX_SETPOINT_K, MAX_SLUG_LEN, MAX_TIME_ACCELERATION,
    MIN_SAMPLE_INTERVAL_S, MIN_SETPOINT_K, MIN_SIM_NODES, SAMPLE_COUNT_MARGIN, SR860_FREQ_RANGE_HZ,
    deflection_samples, slug, validate_with_bench,
};
