//! Recipe and bench-config schema, parsing with `FILE:LINE:COL` errors, and
//! physical validation before anything touches hardware.
//!
//! Typical use: `load_bench`, then `Source::read` + `parse_recipe` +
//! `validate_with_bench`. Every error names the file, line and column of the
//! key to fix.

mod doc;
pub use doc::did_you_mean;
pub mod drivers;
mod error;
mod parse;
mod plan_rows;
pub mod resource;
pub mod schema;
mod sim_defaults;
mod validate;

pub use drivers::{
    DRIVERS, DriverLimits, DriverSpec, LS336_HEATER_RANGES, LS336_INPUTS, LS336_OUTPUTS,
    MIN_SAMPLE_INTERVAL_S, Role, SR860_FREQ_RANGE_HZ, Transport, driver, driver_names,
};
pub use error::{RecipeError, Source, error_at};
pub use parse::{STEP_KINDS, load_bench, load_recipe, parse_bench, parse_recipe};
pub use plan_rows::{counter_name, plan_rows, step_cycles, step_label};
pub use resource::{Resource, ResourceError};
pub use schema::*;
pub use validate::{
    DeflectionAcquisition, MAX_AMPLITUDE_V, MAX_EIS_FREQUENCY_HZ, MAX_EQUILIBRATE_S,
    MAX_PLAN_STEPS, MAX_SAMPLE_INTERVAL_S, MAX_SETPOINT_K, MAX_SIM_CLOCK_OFFSET_S,
    MAX_SIM_FAULT_AFTER_S, MAX_SIM_JITTER_S, MAX_SIM_NODES, MAX_SIM_THERMAL_TAU_S, MAX_SLUG_LEN,
    MAX_STAGE_WAIT_S, MAX_STEP_DURATION_S, MAX_SWEEP_POINTS, MAX_TIME_ACCELERATION, MAX_TIMEOUT_S,
    MAX_TRIGGER_GPIO_PIN, MAX_TRIGGER_LATENCY_S, MIN_SETPOINT_K, MIN_SIM_NODES,
    SAMPLE_COUNT_MARGIN, deflection_acquisition, deflection_samples, slug, validate_with_bench,
};
