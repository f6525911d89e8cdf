//! The typed shape of recipes and bench configs. Units live in key names.
//! Parsing, position-carrying errors and physical validation live in the
//! sibling modules; these types are what the rest of vegard sees after a file
//! has been accepted ("parse, don't validate").

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
        }
    }
    /// Nominal duration, s.
    pub fn duration_s(&self) -> f64 {
        match self {
            Step::Ocp(s) => s.duration_s,
            Step::Cv(s) => s.duration_s(),
            Step::Steps(s) => s.hold_s.iter().sum(),
            Step::Wait(s) => s.duration_s,
        }
    }
    /// Whether the step records data (and therefore triggers the digitizer).
    pub fn records(&self) -> bool {
        !matches!(self, Step::Wait(_))
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
    #[serde(default)]
    pub lockin: Option<LockInConfig>,
    #[serde(default)]
    pub temperature: Option<TemperatureConfig>,
}

// Minimal copies (instruments helper); the recipe helper's version wins at merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInConfig {
    pub driver: String,
    pub resource: String,
    #[serde(default = "default_sine_to_cell")]
    pub sine_to_cell_V_per_V: f64,
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureConfig {
    pub driver: String,
    pub resource: String,
    #[serde(default = "default_output")]
    pub output: u8,
    #[serde(default = "default_input")]
    pub input: String,
    #[serde(default = "default_heater_range")]
    pub heater_range: u8,
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_sine_to_cell() -> f64 {
    1.0
}
fn default_output() -> u8 {
    1
}
fn default_input() -> String {
    "A".into()
}
fn default_heater_range() -> u8 {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotentiostatConfig {
    /// Driver name from the registry, e.g. `"methodscript"`.
    pub driver: String,
    /// VISA-style resource: `"sim"`, `"ASRL/dev/ttyACM0::INSTR"`, ...
    pub resource: String,
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
    pub resource: String,
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
    pub noise: NoiseParams,
    pub drift: DriftParams,
    pub clocks: SimClocks,
    pub faults: SimFaults,
    pub thermal: ThermalParams,
    pub eis: EisNoiseParams,
}

/// The virtual temperature stage: second order, so it overshoots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThermalParams {
    /// Natural time 1/omega_n of the stage, s.
    pub tau_s: f64,
    /// Damping ratio zeta; < 1 overshoots (~9.5 % at 0.6).
    pub damping: f64,
    pub sensor_noise_K_rms: f64,
}

/// Noise on the impedance the virtual potentiostat reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EisNoiseParams {
    /// Relative complex gaussian noise on reported Z.
    pub noise_rel: f64,
}

/// Frequencies log-spaced from `f_start_Hz` to `f_end_Hz` inclusive,
/// `f_k = f_start (f_end/f_start)^(k/(n-1))`; `n = 1` gives `[f_start]`.
pub fn log_frequencies_Hz(f_start_Hz: f64, f_end_Hz: f64, n: u32) -> Vec<f64> {
    if n <= 1 {
        return vec![f_start_Hz; n as usize];
    }
    let ratio = f_end_Hz / f_start_Hz;
    (0..n)
        .map(|k| f_start_Hz * ratio.powf(f64::from(k) / f64::from(n - 1)))
        .collect()
}

/// Device time of one EIS frequency point, s: one period settling, one
/// measured, 50 ms overhead.
pub fn eis_point_duration_s(f_Hz: f64) -> f64 {
    2.0 / f_Hz + 0.05
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
    /// Partial molar volume of the inserted ion, m^3/mol.
    pub Omega_m3_per_mol: f64,
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
}
