//! What happens in a run, as one event type: the engine reports its run
//! with it (to the CLI's progress lines and to the dashboard), and the
//! run-folder tailer of `vegard-tui` reports a recorded run with the same
//! variants. It lives here, below both, so the dashboard does not depend on
//! the engine and nobody maps one event type onto another. Plain data.

use std::path::PathBuf;

/// Everything known about a run as it goes, from the engine (live run) or
/// from a run folder (watch/replay). Times are experiment seconds on the
/// run's shared timeline (`host s × time acceleration` for the virtual bench).
/// Consumers take what they show and ignore the rest: the dashboard draws the
/// structure and the recorded data, the CLI prints the engine's reports.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum RunEvent {
    /// The run is known. Applying it again (the engine and a folder tailer
    /// may both announce the same run) updates the metadata and keeps the data.
    Started {
        run_dir: PathBuf,
        /// Total planned experiment seconds (a lower bound with temperature steps).
        total_s: f64,
        /// Time acceleration (experiment s per wall s; 1 on real hardware).
        speed: f64,
        plan: Vec<PlanRow>,
        /// (role, what it is) per instrument: the engine gives each
        /// resource, e.g. ("potentiostat", "ASRL/dev/pts/7::INSTR").
        instruments: Vec<(String, String)>,
    },
    StepStarted {
        index: usize,
        count: usize,
        kind: String,
        duration_s: f64,
        /// The values the enclosing parameter sweeps gave the step, e.g.
        /// `dc_V = 0.3 V, amplitude_V = 0.02 V`; empty outside them.
        sweep: String,
    },
    /// `elapsed_s` is run elapsed (completed steps' planned durations plus the
    /// time into this one), `eta_s` the planned remainder, both experiment s.
    /// `cycle`/`cycles` count what the step repeats: CV cycles, potential
    /// levels, ESM frequencies or impedance points.
    Progress {
        step: usize,
        count: usize,
        kind: String,
        cycle: u32,
        cycles: u32,
        elapsed_s: f64,
        eta_s: f64,
    },
    /// Potentiostat samples, experiment seconds; cycle per sample (CV cycle,
    /// 0 otherwise), plan step per sample. All vectors have the same length.
    Potentiostat {
        t_s: Vec<f64>,
        E_V: Vec<f64>,
        I_A: Vec<f64>,
        cycle: Vec<u32>,
        step: Vec<usize>,
    },
    /// Deflection samples, experiment seconds, nm.
    Deflection {
        t_s: Vec<f64>,
        deflection_nm: Vec<f64>,
    },
    /// One impedance point, Z = Z' + j Z'' (Z'' negative for a capacitive cell).
    Impedance {
        step: usize,
        f_Hz: f64,
        Z_re_ohm: f64,
        Z_im_ohm: f64,
    },
    /// One ESM point: deflection amplitude per volt of drive, and its phase.
    EsmPoint {
        step: usize,
        f_Hz: f64,
        amplitude_nm_per_V: f64,
        phase_deg: f64,
    },
    /// A stage reading; `setpoint_K` None when the heater is not controlled.
    Temperature {
        t_s: f64,
        T_K: f64,
        setpoint_K: Option<f64>,
    },
    /// Per device: offset s (device time zero on the shared timeline), drift
    /// ppm, alignment-error estimate s (None = not known yet).
    Clock {
        device: String,
        offset_s: f64,
        drift_ppm: f64,
        alignment_error_s: Option<f64>,
    },
    /// events.jsonl lines worth showing: warnings, faults, limit hits,
    /// markers, step starts/ends.
    Log {
        t_s: f64,
        level: LogLevel,
        text: String,
    },
    /// The run waits between steps (cell off) until resumed (`true`), or
    /// runs again (`false`).
    Paused(bool),
    /// The run ended: status as in run.toml (`complete`, `aborted`,
    /// `interrupted`) and why, if it did not complete.
    Finished {
        status: String,
        reason: Option<String>,
    },
    /// Engine: the newest values of the running recording step, sent right
    /// before each of its `Progress` reports (NaN when not measured yet; the
    /// current is NaN at open circuit).
    Latest {
        E_V: f64,
        I_A: f64,
        deflection_nm: f64,
    },
    /// Engine: waiting for the temperature stage to settle at a setpoint,
    /// sent with each `Progress` of a temperature step.
    TemperatureWait {
        step: usize,
        count: usize,
        setpoint_K: f64,
        T_K: f64,
        /// Experiment seconds the reading has stayed within tolerance.
        stable_s: f64,
        hold_s: f64,
        /// Experiment seconds since the setpoint was sent.
        elapsed_s: f64,
        timeout_s: f64,
    },
    /// Engine: the run is being stopped for this reason (cell off, data saved).
    Aborting { reason: String },
    /// Engine: a pause was requested (`true`) or withdrawn; it takes effect
    /// when the current step ends.
    PauseRequested(bool),
    /// Engine: a marker was written to events.jsonl (the tailer reads it
    /// back from there as a `Log`).
    Marker { note: String, step: Option<usize> },
    /// Engine: recording is over; clock alignment, Parquet, analysis.
    Finalizing,
}

/// One row of the flat plan (sweeps expanded), for the plan panel and ETA.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    /// Index in the flat plan (what `step` means everywhere else).
    pub index: usize,
    /// Technique name as in events: `ocp`, `cv`, `eis`, `esm_sweep`, ...
    pub kind: String,
    /// Human label, e.g. `cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3 @ 30.0 C`.
    pub label: String,
    /// Planned experiment seconds (a lower bound for temperature steps).
    pub duration_s: f64,
    /// What the progress counter counts in this step (CV cycles, levels,
    /// frequencies, impedance points; 1 otherwise).
    pub cycles: u32,
}

/// How a log line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    /// Shown in yellow: something to look at, the run goes on.
    Warn,
    /// Shown in red: faults, limit hits, aborts.
    Error,
    /// A user's marker note, shown in cyan.
    Marker,
}
