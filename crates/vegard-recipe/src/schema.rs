//! The typed shape of recipes and bench configs. Units live in key names.
//! Parsing, position-carrying errors and physical validation live in the
//! sibling modules; these types are what the rest of vegard sees after a file
//! has been accepted ("parse, don't validate").

use crate::resource::Resource;
use serde::{Deserialize, Serialize};

/// A recipe file: `[run]`, `[limits]` and an ordered list of `[[step]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub run: RunInfo,
    pub limits: Limits,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub name: String,
    #[serde(default)]
    pub sample: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub notes: String,
    /// Digitizer sample period for this recipe, s, overriding the bench's
    /// `instruments.deflection.sample_interval_s`: long campaigns need a
    /// slower digitizer to fit every step into its buffer, and the right
    /// rate is a property of the experiment, not of the bench.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deflection_sample_interval_s: Option<f64>,
}

/// Safety limits the engine enforces while the cell is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Absolute current above which the run is aborted and the cell switched off.
    pub current_max_A: f64,
    /// `[low, high]`: every commanded potential must lie inside (checked
    /// before the run). While running, a reported potential more than 5 % of
    /// the window outside it aborts the run; in a CV that is the set
    /// potential the instrument reports, at open circuit the measured one.
    pub potential_window_V: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    Ocp(OcpStep),
    Cv(CvStep),
    Steps(PotentialSteps),
    Wait(WaitStep),
    Lsv(LsvStep),
    Eis(EisStep),
    #[serde(rename = "esm_sweep")]
    EsmSweep(EsmSweepStep),
    Temperature(TemperatureStep),
    Sweep(SweepStep),
}

/// Open-circuit potential recording (cell off, potential measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcpStep {
    pub duration_s: f64,
    pub sample_interval_s: f64,
}

/// Cyclic voltammetry: begin -> vertex_V[0] -> vertex_V[1] -> begin, `cycles` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvStep {
    pub begin_V: f64,
    pub vertex_V: [f64; 2],
    pub scan_rate_V_per_s: f64,
    /// Potential increment of the staircase; sample interval = step_V / scan_rate.
    pub step_V: f64,
    pub cycles: u32,
}

/// Potential steps (chronoamperometry / PITT): each level is held for its
/// hold time, back to back with the cell on throughout, the current sampled
/// every `sample_interval_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotentialSteps {
    pub levels_V: Vec<f64>,
    /// One hold time per level, s.
    pub hold_s: Vec<f64>,
    pub sample_interval_s: f64,
}

/// Idle time with the cell off; nothing is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub duration_s: f64,
}

/// Linear sweep voltammetry: one sweep begin -> end, one sample per `step_V`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LsvStep {
    pub begin_V: f64,
    pub end_V: f64,
    pub scan_rate_V_per_s: f64,
    /// Potential increment of the staircase; sample interval = step_V / scan_rate.
    pub step_V: f64,
}

/// Electrochemical impedance spectroscopy: a sine of `amplitude_V` (peak, at
/// the cell) around `dc_V`, frequencies log-spaced from `freq_Hz[0]` (high)
/// down to `freq_Hz[1]` (low), high first because the fast points settle the
/// cell before the slow ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EisStep {
    pub dc_V: f64,
    /// Peak amplitude at the cell, V (the driver converts to the RMS the
    /// instrument wants).
    pub amplitude_V: f64,
    /// `[high, low]`, Hz.
    pub freq_Hz: [f64; 2],
    pub points_per_decade: u32,
    /// Hold at `dc_V` with the cell on before the first point, s, so the
    /// film relaxes to the dc state the spectrum is linearised around.
    #[serde(default)]
    pub equilibrate_s: f64,
}

/// Electrochemical strain microscopy spectrum: the lock-in's sine out drives
/// the potentiostat's external input around `dc_V`, one frequency after the
/// other, while the potentiostat streams potential and current (a CA loop
/// per frequency) and the digitizer the deflection.
///
/// Frequencies are EITHER the explicit list `freq_Hz` (run in that order)
/// OR `freq_range_Hz = [high, low]` with `points_per_decade` (run high to
/// low); validation enforces exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsmSweepStep {
    pub dc_V: f64,
    /// Peak amplitude at the cell, V.
    pub amplitude_V: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq_Hz: Option<Vec<f64>>,
    /// `[high, low]`, Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq_range_Hz: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_per_decade: Option<u32>,
    /// Whole periods analysed per frequency.
    pub periods: u32,
    /// Whole periods discarded before the analysed ones, so the transient
    /// of the frequency change does not leak into the spectrum.
    #[serde(default = "default_settle_periods")]
    pub settle_periods: u32,
    /// Potentiostat CA sample interval, s; see
    /// [`EsmSweepStep::ca_sample_interval_s`] for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_s: Option<f64>,
}

fn default_settle_periods() -> u32 {
    1
}

/// Bring the temperature stage to a setpoint and wait until it is stable:
/// within `tolerance_K` for `hold_s` without interruption. Not stable after
/// `timeout_s` is a fault (run aborted, cell off). Records nothing itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureStep {
    /// Exactly one of `setpoint_C` / `setpoint_K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setpoint_C: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setpoint_K: Option<f64>,
    pub tolerance_K: f64,
    pub hold_s: f64,
    pub timeout_s: f64,
}

/// A loop, written `kind = "sweep"`: over stage temperatures
/// ([`TemperatureSweep`]) or over the values of one numeric step parameter
/// ([`ParameterSweep`]). Sweeps nest up to [`MAX_SWEEP_DEPTH`] levels (e.g.
/// temperature x `dc_V`); a temperature sweep or step never sits inside a
/// temperature sweep (it would fight the sweep's setpoint), and a parameter
/// is swept by at most one enclosing sweep.
///
/// Untagged so that serde sees the file's flat keys: a table with
/// `parameter` is a parameter sweep, one with `temperature_C`/`_K` a
/// temperature sweep. Recipe files are read by `parse_recipe`, which
/// dispatches on `parameter` itself and keeps positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepStep {
    Temperature(TemperatureSweep),
    Parameter(ParameterSweep),
}

/// Deepest nesting of sweeps (a sweep in a sweep in a sweep): 3. Two levels
/// cover temperature x potential; a third (x amplitude) is the most a plan
/// of at most [`crate::MAX_PLAN_STEPS`] steps can usefully hold, and the
/// step labels keep one value per level in a fixed array.
pub const MAX_SWEEP_DEPTH: usize = 3;

/// A loop over temperatures: for each one a temperature step (this sweep's
/// tolerance, hold and timeout), then the nested `[[step.step]]` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureSweep {
    /// Exactly one of `temperature_C` / `temperature_K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_C: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_K: Option<Vec<f64>>,
    pub tolerance_K: f64,
    pub hold_s: f64,
    pub timeout_s: f64,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

/// A loop over the values of one numeric step parameter: for each value,
/// the nested `[[step.step]]` list (recursively, nested sweeps included)
/// with the value substituted into every step that takes the parameter
/// ([`SweepParameter::step_kinds`]); the other nested steps run unchanged.
/// No instrument action of its own.
///
/// In a recipe file the nested steps omit the swept key (giving it is an
/// error: the sweep sets it); after parsing, each nested step holds the
/// sweep's first value there, and [`Recipe::plan`] substitutes every value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSweep {
    pub parameter: SweepParameter,
    /// In run order, in the parameter's unit.
    pub values: Vec<f64>,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

/// A numeric step parameter a [`ParameterSweep`] varies. The names are the
/// step keys they set, units in the name as everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SweepParameter {
    /// `dc_V` of `eis` and `esm_sweep`: the potential the small signal is
    /// centred on (no other step kind has a dc potential).
    #[serde(rename = "dc_V")]
    DcV,
    /// `amplitude_V` (peak, at the cell) of `eis` and `esm_sweep`.
    #[serde(rename = "amplitude_V")]
    AmplitudeV,
    /// `scan_rate_V_per_s` of `cv` and `lsv`.
    #[serde(rename = "scan_rate_V_per_s")]
    ScanRateVPerS,
    /// One ESM frequency: `esm_sweep` gets `freq_Hz = [value]` (its
    /// `freq_Hz`, `freq_range_Hz` and `points_per_decade` are the sweep's).
    /// Not EIS: its `freq_Hz` is a `[high, low]` range of a spectrum, and a
    /// one-point spectrum per step is what a single `eis` step over the
    /// range already measures.
    #[serde(rename = "freq_Hz")]
    FreqHz,
}

impl SweepParameter {
    /// Every parameter, in the order the docs list them.
    pub const ALL: [SweepParameter; 4] = [
        SweepParameter::DcV,
        SweepParameter::AmplitudeV,
        SweepParameter::ScanRateVPerS,
        SweepParameter::FreqHz,
    ];
    /// The name written in `parameter = "..."`.
    pub fn name(self) -> &'static str {
        match self {
            SweepParameter::DcV => "dc_V",
            SweepParameter::AmplitudeV => "amplitude_V",
            SweepParameter::ScanRateVPerS => "scan_rate_V_per_s",
            SweepParameter::FreqHz => "freq_Hz",
        }
    }
    /// Unit of the values, for messages and progress lines.
    pub fn unit(self) -> &'static str {
        match self {
            SweepParameter::DcV | SweepParameter::AmplitudeV => "V",
            SweepParameter::ScanRateVPerS => "V/s",
            SweepParameter::FreqHz => "Hz",
        }
    }
    /// Step kinds that take the parameter.
    pub fn step_kinds(self) -> &'static [&'static str] {
        match self {
            SweepParameter::DcV | SweepParameter::AmplitudeV => &["eis", "esm_sweep"],
            SweepParameter::ScanRateVPerS => &["cv", "lsv"],
            SweepParameter::FreqHz => &["esm_sweep"],
        }
    }
    /// Keys of a step of `kind` that the sweep sets, so the step must not
    /// give them (empty when the kind does not take the parameter).
    pub fn keys_in(self, kind: &str) -> &'static [&'static str] {
        if !self.step_kinds().contains(&kind) {
            return &[];
        }
        match self {
            SweepParameter::DcV => &["dc_V"],
            SweepParameter::AmplitudeV => &["amplitude_V"],
            SweepParameter::ScanRateVPerS => &["scan_rate_V_per_s"],
            SweepParameter::FreqHz => &["freq_Hz", "freq_range_Hz", "points_per_decade"],
        }
    }
    /// `dc_V (eis, esm_sweep), amplitude_V (...), ...` for messages.
    pub fn valid_list() -> String {
        SweepParameter::ALL
            .iter()
            .map(|p| format!("{} ({})", p.name(), p.step_kinds().join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One enclosing parameter sweep's value at a planned step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepValue {
    pub parameter: SweepParameter,
    pub value: f64,
}

impl SweepStep {
    /// The nested steps.
    pub fn steps(&self) -> &[Step] {
        match self {
            SweepStep::Temperature(t) => &t.steps,
            SweepStep::Parameter(p) => &p.steps,
        }
    }
    /// Number of iterations (temperatures or values).
    pub fn iterations(&self) -> usize {
        match self {
            SweepStep::Temperature(t) => t.temperatures_K().len(),
            SweepStep::Parameter(p) => p.values.len(),
        }
    }
}

/// 0 degC in kelvin.
pub const ZERO_C_IN_K: f64 = 273.15;

/// `n` frequencies log-spaced from `f_start_Hz` to `f_end_Hz`, both included:
/// `f_k = f_start (f_end/f_start)^(k/(n-1))`, the spacing the MethodSCRIPT
/// device itself uses for `meas_loop_eis`, so the recipe's list and the
/// device's points agree. `n = 1` gives `[f_start]`, `n = 0` nothing. The
/// last point is `f_end_Hz` exactly (not `f_start * ratio`, which may be an
/// ulp off).
pub fn log_frequencies_Hz(f_start_Hz: f64, f_end_Hz: f64, n: u32) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![f_start_Hz],
        _ => {
            let ratio = f_end_Hz / f_start_Hz;
            let last = f64::from(n - 1);
            (0..n)
                .map(|k| {
                    if k == n - 1 {
                        f_end_Hz
                    } else {
                        f_start_Hz * ratio.powf(f64::from(k) / last)
                    }
                })
                .collect()
        }
    }
}

/// Device time per EIS frequency point, s: one period to settle, one period
/// measured, 50 ms of overhead (the contract the emulator implements and the
/// duration estimate relies on).
pub fn eis_point_duration_s(f_Hz: f64) -> f64 {
    2.0 / f_Hz + 0.05
}

/// Points of a log sweep from `high` to `low` at `per_decade`, both ends
/// included: `round(decades x per_decade) + 1`, at least 1.
fn log_points(high_Hz: f64, low_Hz: f64, per_decade: u32) -> u32 {
    let decades = (high_Hz / low_Hz).log10().abs();
    let steps = (decades * f64::from(per_decade)).round();
    if steps.is_finite() && steps >= 0.0 {
        // Saturating: validation keeps this far below u32::MAX.
        (steps as u32).saturating_add(1)
    } else {
        1
    }
}

impl LsvStep {
    /// Time between two samples, s.
    pub fn sample_interval_s(&self) -> f64 {
        self.step_V / self.scan_rate_V_per_s
    }
    /// Nominal duration of the sweep, s.
    pub fn duration_s(&self) -> f64 {
        (self.end_V - self.begin_V).abs() / self.scan_rate_V_per_s
    }
}

impl EisStep {
    /// Number of frequency points: `round(decades x points_per_decade) + 1`,
    /// at least 1 (10 kHz -> 0.01 Hz at 5 per decade: 31).
    pub fn n_points(&self) -> u32 {
        log_points(self.freq_Hz[0], self.freq_Hz[1], self.points_per_decade)
    }
    /// The frequencies the device measures, high to low, Hz.
    pub fn frequencies_Hz(&self) -> Vec<f64> {
        log_frequencies_Hz(self.freq_Hz[0], self.freq_Hz[1], self.n_points())
    }
    /// `equilibrate_s` plus [`eis_point_duration_s`] of every point, s.
    pub fn duration_s(&self) -> f64 {
        self.equilibrate_s
            + self
                .frequencies_Hz()
                .into_iter()
                .map(eis_point_duration_s)
                .sum::<f64>()
    }
}

/// Samples per period the default ESM CA sample interval aims for.
pub const ESM_DEFAULT_SAMPLES_PER_PERIOD: f64 = 40.0;
/// Fewest samples per period of the highest ESM frequency: below 4 the
/// software lock-in cannot separate the fundamental from its harmonics.
pub const ESM_MIN_SAMPLES_PER_PERIOD: f64 = 4.0;

impl EsmSweepStep {
    /// Frequencies in run order, Hz: the explicit list as written, or the
    /// range high to low. Empty if neither is given (rejected by validation).
    pub fn frequencies_Hz(&self) -> Vec<f64> {
        if let Some(list) = &self.freq_Hz {
            return list.clone();
        }
        match (self.freq_range_Hz, self.points_per_decade) {
            (Some([high_Hz, low_Hz]), Some(ppd)) => {
                log_frequencies_Hz(high_Hz, low_Hz, log_points(high_Hz, low_Hz, ppd))
            }
            _ => Vec::new(),
        }
    }
    /// Number of frequencies [`EsmSweepStep::frequencies_Hz`] gives,
    /// without building the list (validation bounds it first).
    pub fn frequencies_count(&self) -> u32 {
        if let Some(list) = &self.freq_Hz {
            return u32::try_from(list.len()).unwrap_or(u32::MAX);
        }
        match (self.freq_range_Hz, self.points_per_decade) {
            (Some([high_Hz, low_Hz]), Some(ppd)) => log_points(high_Hz, low_Hz, ppd),
            _ => 0,
        }
    }
    /// Time at each frequency, s: `(settle_periods + periods) / f`, whole
    /// periods so the analysis windows start and end at the same phase.
    pub fn dwell_s(&self) -> Vec<f64> {
        let periods = f64::from(self.settle_periods) + f64::from(self.periods);
        self.frequencies_Hz()
            .into_iter()
            .map(|f_Hz| periods / f_Hz)
            .collect()
    }
    /// Potentiostat CA sample interval, s: `sample_interval_s` if given, else
    /// [`ESM_DEFAULT_SAMPLES_PER_PERIOD`] samples per period of the highest
    /// frequency, but never below [`crate::MIN_SAMPLE_INTERVAL_S`].
    pub fn ca_sample_interval_s(&self) -> f64 {
        if let Some(interval_s) = self.sample_interval_s {
            return interval_s;
        }
        let f_max_Hz = self.frequencies_Hz().into_iter().fold(0.0, f64::max);
        (1.0 / (ESM_DEFAULT_SAMPLES_PER_PERIOD * f_max_Hz)).max(crate::MIN_SAMPLE_INTERVAL_S)
    }
    /// Sum of the dwell times, s.
    pub fn duration_s(&self) -> f64 {
        self.dwell_s().iter().sum()
    }
}

impl TemperatureStep {
    /// The setpoint in kelvin (`setpoint_K`, or `setpoint_C + 273.15`; NaN
    /// when neither is given, which validation rejects).
    pub fn target_K(&self) -> f64 {
        match (self.setpoint_K, self.setpoint_C) {
            (Some(k), _) => k,
            (None, Some(c)) => c + ZERO_C_IN_K,
            (None, None) => f64::NAN,
        }
    }
}

impl TemperatureSweep {
    /// The loop's setpoints in kelvin, in run order.
    pub fn temperatures_K(&self) -> Vec<f64> {
        match (&self.temperature_K, &self.temperature_C) {
            (Some(k), _) => k.clone(),
            (None, Some(c)) => c.iter().map(|t| t + ZERO_C_IN_K).collect(),
            (None, None) => Vec::new(),
        }
    }
    /// The temperature step run before the nested steps at `setpoint_K`.
    pub fn temperature_step(&self, setpoint_K: f64) -> TemperatureStep {
        TemperatureStep {
            setpoint_C: None,
            setpoint_K: Some(setpoint_K),
            tolerance_K: self.tolerance_K,
            hold_s: self.hold_s,
            timeout_s: self.timeout_s,
        }
    }
}

/// One step of the flat plan the engine executes: sweeps expanded, so `step`
/// is never a [`Step::Sweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub step: Step,
    pub label: StepLabel,
}

/// Where a planned step comes from, for progress lines and data files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLabel {
    /// Index (0-based) of the top-level `[[step]]`.
    pub recipe_step: usize,
    /// 0-based iteration of the outermost enclosing sweep (temperature or
    /// parameter); `None` outside every sweep. Outermost so that in a
    /// campaign of temperature x `dc_V` it still says which temperature,
    /// as it did before sweeps nested (the analysis pairs an ESM sweep
    /// with the EIS of the same iteration and setpoint); the inner sweeps'
    /// positions are in `sweep_values`.
    pub sweep_iteration: Option<u32>,
    /// Stage setpoint in force: the enclosing sweep's temperature, or the
    /// last temperature step (or sweep) before this step; `None` before any.
    pub setpoint_K: Option<f64>,
    /// The values of the enclosing parameter sweeps, outermost first (a
    /// fixed array so the label stays `Copy`; at most [`MAX_SWEEP_DEPTH`]
    /// sweeps enclose a step). Outside a parameter sweep all `None`: unlike
    /// the stage setpoint, a swept value does not outlive its sweep.
    pub sweep_values: [Option<SweepValue>; MAX_SWEEP_DEPTH],
}

impl StepLabel {
    /// The enclosing parameter sweeps' values, outermost first.
    pub fn sweep_values(&self) -> impl Iterator<Item = SweepValue> + '_ {
        self.sweep_values.iter().flatten().copied()
    }
    /// The value of `parameter` set by an enclosing sweep.
    pub fn sweep_value(&self, parameter: SweepParameter) -> Option<f64> {
        self.sweep_values()
            .find(|v| v.parameter == parameter)
            .map(|v| v.value)
    }
    /// `dc_V = 0.3 V, amplitude_V = 0.02 V` (empty outside parameter
    /// sweeps), for progress lines and the plan `vegard validate` prints.
    pub fn sweep_values_text(&self) -> String {
        self.sweep_values()
            .map(|v| {
                format!(
                    "{} = {} {}",
                    v.parameter.name(),
                    v.value,
                    v.parameter.unit()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Recipe {
    /// The flat list of steps the engine runs. A temperature sweep over N
    /// temperatures becomes, per temperature, a temperature step then its
    /// nested steps, all labelled with that setpoint. A parameter sweep
    /// becomes, per value, its nested steps with the value substituted
    /// ([`Step::set_parameter`]) and recorded in the label. Nested sweeps
    /// expand recursively. After a temperature sweep the stage stays at its
    /// last temperature, so later steps keep that label, as they keep the
    /// label of a standalone temperature step.
    pub fn plan(&self) -> Vec<PlannedStep> {
        let mut plan = Vec::new();
        let mut setpoint_K = None;
        for (recipe_step, step) in self.steps.iter().enumerate() {
            let label = StepLabel {
                recipe_step,
                sweep_iteration: None,
                setpoint_K: None,
                sweep_values: [None; MAX_SWEEP_DEPTH],
            };
            expand(step, label, 0, &mut setpoint_K, &mut plan);
        }
        plan
    }

    /// Nominal experiment duration, s: the sum of [`Step::duration_s`]. A
    /// lower bound when the recipe changes temperature (see there).
    pub fn duration_s(&self) -> f64 {
        self.steps.iter().map(Step::duration_s).sum()
    }
}

/// [`Recipe::plan`] of one step under `label` (`depth` parameter sweeps
/// enclose it); `setpoint_K` is the stage setpoint in force, updated by
/// temperature steps and sweeps as the plan goes.
fn expand(
    step: &Step,
    label: StepLabel,
    depth: usize,
    setpoint_K: &mut Option<f64>,
    plan: &mut Vec<PlannedStep>,
) {
    match step {
        Step::Sweep(SweepStep::Temperature(sweep)) => {
            for (iteration, t_K) in (0u32..).zip(sweep.temperatures_K()) {
                *setpoint_K = Some(t_K);
                let label = StepLabel {
                    sweep_iteration: label.sweep_iteration.or(Some(iteration)),
                    setpoint_K: *setpoint_K,
                    ..label
                };
                plan.push(PlannedStep {
                    step: Step::Temperature(sweep.temperature_step(t_K)),
                    label,
                });
                for nested in &sweep.steps {
                    expand(nested, label, depth, setpoint_K, plan);
                }
            }
        }
        Step::Sweep(SweepStep::Parameter(sweep)) => {
            for (iteration, &value) in (0u32..).zip(&sweep.values) {
                let mut label = StepLabel {
                    sweep_iteration: label.sweep_iteration.or(Some(iteration)),
                    ..label
                };
                // Validation keeps the depth within the array; deeper
                // values (an unvalidated recipe) are substituted, not labelled.
                if let Some(slot) = label.sweep_values.get_mut(depth) {
                    *slot = Some(SweepValue {
                        parameter: sweep.parameter,
                        value,
                    });
                }
                for nested in &sweep.steps {
                    let mut nested = nested.clone();
                    nested.set_parameter(sweep.parameter, value);
                    expand(&nested, label, depth + 1, setpoint_K, plan);
                }
            }
        }
        other => {
            if let Step::Temperature(t) = other {
                *setpoint_K = Some(t.target_K());
            }
            plan.push(PlannedStep {
                step: other.clone(),
                label: StepLabel {
                    setpoint_K: *setpoint_K,
                    ..label
                },
            });
        }
    }
}

/// Largest clock alignment error estimate, as a fraction of the period it
/// is compared with ([`Step::fastest_period_s`], or an ESM frequency's own
/// period), that a result is reported as a plain number: 1 %, 3.6 degrees
/// of phase. Beyond it an ESM frequency (whose phase it shifts, to first
/// order) is left out of the fit with a warning; another step's segment
/// gets an alignment warning with the bound on kappa's bias (a slope over
/// whole cycles, biased only to second order).
pub const MAX_ALIGNMENT_PERIOD_FRACTION: f64 = 0.01;

impl CvStep {
    /// Time between two samples, s.
    pub fn sample_interval_s(&self) -> f64 {
        self.step_V / self.scan_rate_V_per_s
    }
    /// Potential travelled in one cycle, V.
    pub fn cycle_span_V(&self) -> f64 {
        (self.vertex_V[0] - self.begin_V).abs()
            + (self.vertex_V[1] - self.vertex_V[0]).abs()
            + (self.begin_V - self.vertex_V[1]).abs()
    }
    /// Samples per cycle (one per staircase step).
    pub fn samples_per_cycle(&self) -> u64 {
        (self.cycle_span_V() / self.step_V).round() as u64
    }
    /// Nominal duration of the whole step, s.
    pub fn duration_s(&self) -> f64 {
        self.cycle_span_V() / self.scan_rate_V_per_s * f64::from(self.cycles)
    }
}

impl Step {
    /// Short lowercase name used in progress lines and events.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Step::Ocp(_) => "ocp",
            Step::Cv(_) => "cv",
            Step::Steps(_) => "steps",
            Step::Wait(_) => "wait",
            Step::Lsv(_) => "lsv",
            Step::Eis(_) => "eis",
            Step::EsmSweep(_) => "esm_sweep",
            Step::Temperature(_) => "temperature",
            Step::Sweep(_) => "sweep",
        }
    }
    /// Nominal duration, s. A temperature step counts its `hold_s` only: how
    /// long the stage takes to get there depends on the stage, so this is a
    /// lower bound (the timeout is the upper one). A sweep is the sum over
    /// its temperatures of `hold_s` plus the nested steps.
    pub fn duration_s(&self) -> f64 {
        match self {
            Step::Ocp(s) => s.duration_s,
            Step::Cv(s) => s.duration_s(),
            Step::Steps(s) => s.hold_s.iter().sum(),
            Step::Wait(s) => s.duration_s,
            Step::Lsv(s) => s.duration_s(),
            Step::Eis(s) => s.duration_s(),
            Step::EsmSweep(s) => s.duration_s(),
            Step::Temperature(s) => s.hold_s,
            Step::Sweep(SweepStep::Temperature(s)) => {
                let per_iteration_s = s.hold_s + s.steps.iter().map(Step::duration_s).sum::<f64>();
                per_iteration_s * s.temperatures_K().len() as f64
            }
            Step::Sweep(SweepStep::Parameter(s)) => s
                .values
                .iter()
                .map(|&value| {
                    s.steps
                        .iter()
                        .map(|nested| {
                            let mut nested = nested.clone();
                            nested.set_parameter(s.parameter, value);
                            nested.duration_s()
                        })
                        .sum::<f64>()
                })
                .sum(),
        }
    }
    /// Set `parameter` to `value` where this step takes it (see
    /// [`SweepParameter::step_kinds`]); in a sweep, in every nested step,
    /// recursively. Other steps are left as they are.
    pub fn set_parameter(&mut self, parameter: SweepParameter, value: f64) {
        match (self, parameter) {
            (Step::Eis(s), SweepParameter::DcV) => s.dc_V = value,
            (Step::EsmSweep(s), SweepParameter::DcV) => s.dc_V = value,
            (Step::Eis(s), SweepParameter::AmplitudeV) => s.amplitude_V = value,
            (Step::EsmSweep(s), SweepParameter::AmplitudeV) => s.amplitude_V = value,
            (Step::Cv(s), SweepParameter::ScanRateVPerS) => s.scan_rate_V_per_s = value,
            (Step::Lsv(s), SweepParameter::ScanRateVPerS) => s.scan_rate_V_per_s = value,
            (Step::EsmSweep(s), SweepParameter::FreqHz) => {
                s.freq_Hz = Some(vec![value]);
                s.freq_range_Hz = None;
                s.points_per_decade = None;
            }
            (Step::Sweep(SweepStep::Temperature(s)), _) => {
                for nested in &mut s.steps {
                    nested.set_parameter(parameter, value);
                }
            }
            (Step::Sweep(SweepStep::Parameter(s)), _) => {
                for nested in &mut s.steps {
                    nested.set_parameter(parameter, value);
                }
            }
            _ => {}
        }
    }
    /// Whether this step, or any step nested in it, takes `parameter`.
    pub fn takes(&self, parameter: SweepParameter) -> bool {
        match self {
            Step::Sweep(s) => s.steps().iter().any(|n| n.takes(parameter)),
            other => parameter.step_kinds().contains(&other.kind_name()),
        }
    }
    /// The shortest period of the signal the step's analysis works on, s:
    /// the highest ESM frequency's period, a CV cycle, an LSV sweep, the
    /// shortest potential-step hold. A clock alignment error that is a
    /// sizeable fraction of it shifts the response against the excitation
    /// (phase, hysteresis), so finalisation compares the two
    /// ([`MAX_ALIGNMENT_PERIOD_FRACTION`]). `None` where no period applies
    /// (OCP, EIS: the potentiostat's own DFT needs no alignment).
    pub fn fastest_period_s(&self) -> Option<f64> {
        match self {
            Step::EsmSweep(s) => {
                let f_max_Hz = s.frequencies_Hz().into_iter().fold(0.0, f64::max);
                (f_max_Hz > 0.0).then(|| 1.0 / f_max_Hz)
            }
            Step::Cv(s) => Some(s.cycle_span_V() / s.scan_rate_V_per_s),
            Step::Lsv(s) => Some(s.duration_s()),
            Step::Steps(s) => s.hold_s.iter().copied().reduce(f64::min),
            Step::Ocp(_) | Step::Eis(_) | Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_) => {
                None
            }
        }
    }
    /// The potentiostat's sample interval in a time-domain step, s: its
    /// measurement loop's body runs once per sample, which is where the
    /// repeated sync edge is counted. `None` for EIS (one body per
    /// frequency) and for steps that do not record.
    pub fn potentiostat_interval_s(&self) -> Option<f64> {
        match self {
            Step::Ocp(s) => Some(s.sample_interval_s),
            Step::Cv(s) => Some(s.sample_interval_s()),
            Step::Steps(s) => Some(s.sample_interval_s),
            Step::Lsv(s) => Some(s.sample_interval_s()),
            Step::EsmSweep(s) => Some(s.ca_sample_interval_s()),
            Step::Eis(_) | Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_) => None,
        }
    }
    /// Whether the step records data through the potentiostat (and therefore
    /// triggers the digitizer). Temperature steps only talk to the stage;
    /// a sweep records through its nested steps, not itself.
    pub fn records(&self) -> bool {
        !matches!(self, Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_))
    }
    /// Whether the potentiostat switches the cell on (the current limit
    /// matters); for a sweep, whether any nested step does.
    pub fn cell_on(&self) -> bool {
        match self {
            Step::Cv(_) | Step::Steps(_) | Step::Lsv(_) | Step::Eis(_) | Step::EsmSweep(_) => true,
            Step::Ocp(_) | Step::Wait(_) | Step::Temperature(_) => false,
            Step::Sweep(s) => s.steps().iter().any(Step::cell_on),
        }
    }
}

/// A bench config: which instrument is where, how it is calibrated, and, for
/// the virtual bench, the physics behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchConfig {
    #[serde(default)]
    pub bench: BenchInfo,
    pub instruments: Instruments,
    /// Present when any instrument has `resource = "sim"`.
    #[serde(default)]
    pub sim: Option<SimParams>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instruments {
    pub potentiostat: PotentiostatConfig,
    pub deflection: DeflectionConfig,
    /// Needed by `esm_sweep` steps only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockin: Option<LockInConfig>,
    /// Needed by `temperature` and `sweep` steps only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<TemperatureConfig>,
}

impl Instruments {
    /// Whether any instrument is on the virtual bench (`resource = "sim"`).
    pub fn uses_sim(&self) -> bool {
        self.potentiostat.resource.is_sim()
            || self.deflection.resource.is_sim()
            || self.lockin.as_ref().is_some_and(|l| l.resource.is_sim())
            || self
                .temperature
                .as_ref()
                .is_some_and(|t| t.resource.is_sim())
    }
}

/// Lock-in amplifier whose sine out drives the potentiostat's external
/// (analog modulation) input for ESM spectra.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInConfig {
    /// Driver name from the registry, e.g. `"sr860"`.
    pub driver: String,
    pub resource: Resource,
    /// Gain of the potentiostat's external input: volts at the cell per volt
    /// of sine out. The engine divides the recipe's cell amplitude by it.
    #[serde(default = "default_sine_gain")]
    pub sine_to_cell_V_per_V: f64,
    /// Reply timeout, s.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

/// Temperature controller of the cell stage (Lake Shore 336 family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureConfig {
    /// Driver name from the registry, e.g. `"ls336"`.
    pub driver: String,
    pub resource: Resource,
    /// Control loop / heater output that heats the stage (1 or 2).
    #[serde(default = "default_output")]
    pub output: u8,
    /// Sensor input the loop controls on and vegard reads (`"A"`..`"D"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Heater range used while controlling (1 low .. 3 high); 0 is off.
    #[serde(default = "default_heater_range")]
    pub heater_range: u8,
    /// Reply timeout, s.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotentiostatConfig {
    /// Driver name from the registry, e.g. `"methodscript"`.
    pub driver: String,
    /// VISA-style resource: `"sim"`, `"ASRL/dev/ttyACM0::INSTR"`, ...
    pub resource: Resource,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Largest current range the driver may select, A.
    pub current_range_max_A: f64,
    /// Smallest current range for autoranging, A.
    #[serde(default = "default_current_range_min")]
    pub current_range_min_A: f64,
    /// Digital output wired to the digitizer's external trigger input.
    #[serde(default)]
    pub trigger_gpio_pin: u8,
    /// Delay between the trigger edge and the first sample of a loop, s
    /// (0 for the emulator; measure it once for real hardware).
    #[serde(default)]
    pub trigger_latency_s: f64,
    /// Reply timeout, s.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeflectionConfig {
    /// Driver name from the registry, e.g. `"scpi-dmm"`.
    pub driver: String,
    pub resource: Resource,
    /// Digitizer sample period (`SAMP:TIM`), s.
    pub sample_interval_s: f64,
    /// DC voltage range, V.
    #[serde(default = "default_range_V")]
    pub range_V: f64,
    /// Largest `SAMP:COUN` the instrument accepts.
    #[serde(default = "default_max_samples")]
    pub max_samples: u64,
    /// Photodetector sensitivity calibration, nm of deflection per volt.
    pub invols_nm_per_V: f64,
    /// Cantilever spring constant, N/m.
    pub spring_constant_N_per_m: f64,
    /// Reply timeout, s.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_sine_gain() -> f64 {
    1.0
}
fn default_output() -> u8 {
    1
}
fn default_input() -> String {
    "A".to_owned()
}
fn default_heater_range() -> u8 {
    3
}
fn default_baud() -> u32 {
    230_400
}
fn default_current_range_min() -> f64 {
    1e-9
}
fn default_timeout() -> f64 {
    2.0
}
fn default_range_V() -> f64 {
    10.0
}
fn default_max_samples() -> u64 {
    1_000_000
}

/// Physical parameters of the virtual bench (../PHYSICS.md sections 1-3).
/// Every table is optional in the file and falls back to a realistic default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimParams {
    /// Seed of every random stream (noise, jitter, drift random walk).
    pub seed: u64,
    /// Simulated seconds per wall-clock second (1 = real time).
    pub time_acceleration: f64,
    pub film: FilmParams,
    pub kinetics: KineticsParams,
    pub cell: CellParams,
    pub strain: StrainParams,
    pub lever: LeverParams,
    pub electrostatic: ElectrostaticParams,
    pub electrostriction: ElectrostrictionParams,
    pub joule_heating: JouleHeatingParams,
    pub noise: NoiseParams,
    pub drift: DriftParams,
    pub clocks: SimClocks,
    pub faults: SimFaults,
    pub thermal: ThermalParams,
    pub eis: EisNoiseParams,
}

/// Upper bound (exclusive) of the activation energies `film.Ea_D_eV` and
/// `kinetics.Ea_k0_eV`, eV: far above any ion-transport barrier (0.3-0.6 eV
/// for Li in oxides), so a larger value is a unit mistake (J/mol, kJ/mol).
pub const MAX_ACTIVATION_ENERGY_EV: f64 = 3.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilmParams {
    pub thickness_m: f64,
    pub area_m2: f64,
    /// Concentration of insertion sites (x = 1), mol/m^3.
    pub c_max_mol_per_m3: f64,
    /// Initial mole fraction of inserted ion, uniform through the film.
    pub x_initial: f64,
    /// Chemical diffusion coefficient at the reference temperature
    /// `cell.T_ref_K`, m^2/s.
    pub D_m2_per_s: f64,
    /// Activation energy of diffusion, eV: the simulator uses
    /// `D(T) = D_m2_per_s exp(-Ea_D_eV / k_B (1/T - 1/T_ref_K))`
    /// at `T = cell.T_K` (PHYSICS.md section 1). 0 = temperature-independent.
    pub Ea_D_eV: f64,
    /// Standard potential of the insertion isotherm, V.
    pub E0_V: f64,
    /// Ion charge number.
    pub z: f64,
    /// Finite-difference nodes across the film.
    pub nodes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KineticsParams {
    /// Butler-Volmer standard rate constant at `cell.T_ref_K`, m/s.
    pub k0_m_per_s: f64,
    /// Activation energy of the rate constant, eV (Arrhenius law like
    /// `film.Ea_D_eV`).
    pub Ea_k0_eV: f64,
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CellParams {
    pub R_s_ohm: f64,
    pub C_dl_F: f64,
    /// Temperature of the cell on the bench, K.
    pub T_K: f64,
    /// Temperature at which `film.D_m2_per_s` and `kinetics.k0_m_per_s` are
    /// given, K.
    pub T_ref_K: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrainParams {
    /// Partial molar volume of the inserted ion at `film.x_initial`, m^3/mol.
    pub Omega_m3_per_mol: f64,
    /// Concentration dependence of the partial molar volume, m^3/mol per
    /// unit mole fraction: `Omega(x) = Omega + dOmega_dx (x - x_initial)`
    /// (PHYSICS.md section 2). Non-zero adds a `kappa2 Q_F^2` term to the
    /// deflection; 0 (the default, the ideal bench) keeps pure Vegard strain.
    /// Validation keeps `Omega(x) > 0` over the whole range `0 <= x <= 1`.
    pub dOmega_dx_m3_per_mol: f64,
    pub poisson_ratio: f64,
    /// Film clamped on a rigid substrate (G = (1+nu)/(1-nu)) or free (G = 1).
    pub clamped: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeverParams {
    /// True detector sensitivity of the virtual lever, nm/V.
    pub invols_nm_per_V: f64,
    pub spring_constant_N_per_m: f64,
}

impl StrainParams {
    /// Partial molar volume at mole fraction `x`, m^3/mol: linear in `x`
    /// around its value at `x_initial` (the film's composition when the
    /// bench starts, where `Omega_m3_per_mol` is given).
    pub fn Omega_at_m3_per_mol(&self, x: f64, x_initial: f64) -> f64 {
        self.Omega_m3_per_mol + self.dOmega_dx_m3_per_mol * (x - x_initial)
    }

    /// Open interval `(lo, hi)` of `dOmega_dx_m3_per_mol` that keeps
    /// `Omega(x) > 0` for every `0 <= x <= 1`: `Omega(x)` is linear, so only
    /// the ends matter, `Omega(0) > 0` gives `hi = Omega / x_initial` and
    /// `Omega(1) > 0` gives `lo = -Omega / (1 - x_initial)`. Empty
    /// (`lo >= hi`) when `Omega_m3_per_mol <= 0`. `x_initial` must lie in
    /// (0, 1), as validation ensures.
    pub fn dOmega_dx_range_m3_per_mol(&self, x_initial: f64) -> (f64, f64) {
        (
            -self.Omega_m3_per_mol / (1.0 - x_initial),
            self.Omega_m3_per_mol / x_initial,
        )
    }
}

/// Electrostatic force between the probe and the sample (PHYSICS.md
/// section 2): `F = 0.5 dC_dz (V - V_cpd)^2` pulls the tip toward the
/// surface, so the lever reads `u = -F / k` on top of the film's strain. `V`
/// is the working electrode's potential as the cell reports it (applied
/// potential, or the OCP with the cell off). Off (`dC_dz_F_per_m = 0`) in
/// the ideal bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElectrostaticParams {
    /// Gradient of the tip-sample capacitance with separation, F/m (>= 0;
    /// the magnitude, the force is always attractive).
    pub dC_dz_F_per_m: f64,
    /// Contact potential difference between tip and sample, V: the
    /// potential at which the force vanishes.
    pub V_cpd_V: f64,
}

/// Electrostriction of the film (PHYSICS.md sections 2 and 7): a strain
/// quadratic in the field across it, so the deflection is
/// `u = coefficient_nm_per_V2 (E_int - E_zero_V)^2` with `E_int = E - I R_s`
/// the potential across the interface. Flat in frequency and in phase with
/// `E`, quadratic in the drive like the electrostatic force, but zero where
/// the field across the film vanishes, not at the contact potential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElectrostrictionParams {
    /// Deflection per squared volt across the film, nm/V^2 (either sign:
    /// the film thickens or thins under a field). 0 = off (the ideal bench).
    pub coefficient_nm_per_V2: f64,
    /// Interface potential at which the field across the film vanishes, V.
    pub E_zero_V: f64,
}

/// Thermal expansion from Joule heating in the electrolyte (PHYSICS.md
/// section 7): the power `P = I^2 R_s` heats the spot under the tip through
/// a first-order thermal lag, `dT + tau_s d(dT)/dt = R_th_K_per_W P`, and
/// the film and holder expand by `u = expansion_nm_per_K dT`. Under a sine
/// drive that is a dc offset plus a second harmonic lagging by
/// `atan(2 w tau_s)`, growing with the current amplitude squared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JouleHeatingParams {
    /// Thermal resistance from the heated spot to the holder, K/W (>= 0).
    /// 0 = off (the ideal bench).
    pub R_th_K_per_W: f64,
    /// Thermal time constant of the heated spot, s (>= 0; 0 = no lag).
    pub tau_s: f64,
    /// Deflection per kelvin of temperature rise, nm/K (thermal expansion
    /// coefficient times the heated height).
    pub expansion_nm_per_K: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseParams {
    /// White detector noise, nm rms per sample.
    pub deflection_nm_rms: f64,
    /// White current noise, A rms per sample.
    pub current_A_rms: f64,
    /// White potential noise, V rms per sample.
    pub potential_V_rms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftParams {
    /// Linear thermal drift of the holder, nm/min.
    pub holder_nm_per_min: f64,
    /// Random-walk part of the holder drift, nm per sqrt(min).
    pub random_walk_nm_per_sqrt_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimClocks {
    pub potentiostat: ClockParams,
    pub deflection: ClockParams,
}

/// A device oscillator: device time = (true time - offset_s) * (1 + drift_ppm 1e-6),
/// each sample instant further disturbed by white jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockParams {
    pub offset_s: f64,
    pub drift_ppm: f64,
    pub jitter_s: f64,
}

/// The virtual temperature stage: a second-order response of the stage
/// (= cell) temperature to the controller's setpoint, so it overshoots like
/// a real PID-controlled stage. It starts at `cell.T_K`, and with the heater
/// off (range 0) relaxes back to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThermalParams {
    /// Natural time 1/omega_n of the stage, s.
    pub tau_s: f64,
    /// Damping ratio zeta; below 1 the stage overshoots.
    pub damping: f64,
    /// White noise of the sensor reading, K rms.
    pub sensor_noise_K_rms: f64,
}

/// Noise of the virtual potentiostat's impedance readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EisNoiseParams {
    /// Relative complex gaussian noise on each reported Z (rms of
    /// |dZ| / |Z|).
    pub noise_rel: f64,
}

/// Faults the virtual bench injects, for testing the engine's safe paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimFaults {
    /// The potentiostat reports `!4004` this many simulated seconds into a
    /// measurement loop and stops the script.
    pub potentiostat_error_after_s: Option<f64>,
    /// The potentiostat stops talking this many simulated seconds into a
    /// loop (a hung instrument or a pulled cable); only `Z` brings it back.
    pub potentiostat_silent_after_s: Option<f64>,
    /// Add this current, A, to every reported sample after this many seconds
    /// into a loop (drives the engine's current limit).
    pub current_spike_after_s: Option<f64>,
    pub current_spike_A: f64,
    /// The lock-in carries out `FREQ` this many simulated seconds late (and
    /// answers the `*OPC?` that follows as late), as on a host too busy to
    /// switch on time: the previous frequency runs on into the next dwell.
    /// Must stay below the lock-in's `timeout_s` in wall time.
    pub lockin_switch_delay_s: Option<f64>,
    /// Which `FREQ` commands are late: every n-th one sent to the lock-in
    /// (1st, 2nd, ... counted over the whole run). Absent: every one.
    pub lockin_switch_delay_every: Option<u32>,
    /// The digitizer takes no readings for `digitizer_stall_s` simulated
    /// seconds from this many simulated seconds after an acquisition's
    /// first trigger, then catches up: the virtual bench falling behind, as
    /// its emulator threads do when the host cannot serve the `--speed`.
    /// Catching up on more readings than the meter's memory holds (50 000)
    /// overflows it: the oldest are lost (run.toml
    /// `deflection_readings_lost`).
    pub digitizer_stall_after_s: Option<f64>,
    /// How long the stall lasts, simulated seconds (0: none). Beyond the
    /// model's 60 s of history the readings it catches up on are stale,
    /// and the run is flagged (run.toml `bench_overrun`).
    pub digitizer_stall_s: f64,
}
