//! The shared physical world behind every emulator.
//!
//! Owns: the electrode and the lever, the temperature stage under the cell,
//! the true time up to which they have been integrated, the potentiostat's
//! control program (what the cell is driven with, as a function of true
//! time), the lock-in's sine out (wired to the potentiostat's external
//! input, gain 1), a history of cell states so an emulator can read the
//! state at any recent instant, and the trigger line (the BNC cable from the
//! potentiostat's GPIO to the digitizer's external trigger input). It lives
//! behind one mutex; integration is lazy: whoever needs a state at an
//! instant that has passed advances the world to it.
//!
//! Temperature: the stage is advanced exactly with each chunk and the film
//! is put at the chunk's mean stage temperature before the chunk is
//! integrated, so D(T), k0(T) and RT/F follow the stage with a lag of at
//! most one chunk (2 ms against a stage time constant of tens of seconds).
//!
//! External sine: with the cell on under potentiostatic control the applied
//! potential is the program's plus `A sin(phase(t))`. It is integrated as a
//! smooth drive ([`Electrode::step_smooth`]): a few solver sub-steps per
//! chunk, instead of the kink restarts a chain of short ramps would cost.

use crate::SimError;
use crate::clock::BenchClock;
use crate::model::{CellState, Control, Electrode, Lever, ThermalStage};
use std::f64::consts::TAU;
use std::collections::VecDeque;
use vegard_recipe::SimParams;

/// Longest integration chunk, true seconds. Also the spacing of the history
/// that emulators interpolate in: short against every sample interval the
/// driver uses (ms), while the solver sub-steps inside as it needs.
const CHUNK_S: f64 = 2e-3;
/// How much true time of history is kept. Emulators read at most a few
/// wall-clock ticks into the past; this is a wide margin.
const HISTORY_S: f64 = 60.0;
/// Solver sub-steps per period of the external sine (at most): backward
/// Euler then lags the sine by `pi / 400` rad = 0.45 deg at any frequency;
/// below ~2.5 Hz the solver's own 1 ms cap is the tighter one.
const SINE_SUBSTEPS_PER_PERIOD: f64 = 400.0;

/// A cyclic-voltammetry waveform on a device's timeline: a linear ramp
/// begin -> vertex 1 -> vertex 2 -> begin, repeated `n_scans` times, then held
/// at the begin potential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CvWave {
    pub E_begin_V: f64,
    pub E_vertex1_V: f64,
    pub E_vertex2_V: f64,
    pub scan_rate_V_per_s: f64,
    pub n_scans: u32,
}

impl CvWave {
    fn legs_V(&self) -> [f64; 3] {
        [
            (self.E_vertex1_V - self.E_begin_V).abs(),
            (self.E_vertex2_V - self.E_vertex1_V).abs(),
            (self.E_begin_V - self.E_vertex2_V).abs(),
        ]
    }

    /// Potential travelled in one scan, V.
    pub fn span_V(&self) -> f64 {
        self.legs_V().iter().sum()
    }

    /// Device time of one scan, s.
    pub fn scan_duration_s(&self) -> f64 {
        self.span_V() / self.scan_rate_V_per_s
    }

    /// Device time of all scans, s.
    pub fn duration_s(&self) -> f64 {
        self.scan_duration_s() * f64::from(self.n_scans)
    }

    /// Applied potential `t_dev_s` device seconds after the ramp started
    /// (clamped to the ramp: the begin potential before and after).
    pub fn potential_V(&self, t_dev_s: f64) -> f64 {
        let t = t_dev_s.clamp(0.0, self.duration_s());
        let span = self.span_V();
        if span <= 0.0 {
            return self.E_begin_V;
        }
        let travelled = self.scan_rate_V_per_s * t;
        let s = travelled - (travelled / span).floor() * span;
        let [l1, l2, _] = self.legs_V();
        let toward = |from: f64, to: f64, d: f64| from + (to - from).signum() * d;
        if s <= l1 {
            toward(self.E_begin_V, self.E_vertex1_V, s)
        } else if s <= l1 + l2 {
            toward(self.E_vertex1_V, self.E_vertex2_V, s - l1)
        } else {
            toward(self.E_vertex2_V, self.E_begin_V, s - l1 - l2)
        }
    }

    /// The first kink of the waveform (vertex, scan end, ramp end) strictly
    /// after `t_dev_s`, device seconds; `None` once the ramp has ended.
    pub fn next_kink_s(&self, t_dev_s: f64) -> Option<f64> {
        let scan = self.scan_duration_s();
        if scan <= 0.0 || t_dev_s >= self.duration_s() {
            return None;
        }
        let [l1, l2, _] = self.legs_V();
        let offsets = [
            l1 / self.scan_rate_V_per_s,
            (l1 + l2) / self.scan_rate_V_per_s,
            scan,
        ];
        let first = (t_dev_s.max(0.0) / scan).floor();
        (0..2)
            .flat_map(|i| {
                let base = (first + f64::from(i)) * scan;
                offsets.map(|o| base + o)
            })
            .find(|&k| k > t_dev_s)
    }
}

/// A linear sweep on a device's timeline: begin -> end at the scan rate,
/// then held at the end potential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearWave {
    pub E_begin_V: f64,
    pub E_end_V: f64,
    pub scan_rate_V_per_s: f64,
}

impl LinearWave {
    /// Device time of the sweep, s.
    pub fn duration_s(&self) -> f64 {
        (self.E_end_V - self.E_begin_V).abs() / self.scan_rate_V_per_s
    }

    /// Applied potential `t_dev_s` device seconds after the sweep started
    /// (begin before, end after).
    pub fn potential_V(&self, t_dev_s: f64) -> f64 {
        let t = t_dev_s.clamp(0.0, self.duration_s());
        self.E_begin_V + (self.E_end_V - self.E_begin_V).signum() * self.scan_rate_V_per_s * t
    }

    fn next_kink_s(&self, t_dev_s: f64) -> Option<f64> {
        let end = self.duration_s();
        (t_dev_s < end).then_some(end)
    }
}

/// A potential waveform the potentiostat scans in analog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wave {
    Cv(CvWave),
    Linear(LinearWave),
}

impl Wave {
    pub fn potential_V(&self, t_dev_s: f64) -> f64 {
        match self {
            Wave::Cv(w) => w.potential_V(t_dev_s),
            Wave::Linear(w) => w.potential_V(t_dev_s),
        }
    }

    fn next_kink_s(&self, t_dev_s: f64) -> Option<f64> {
        match self {
            Wave::Cv(w) => w.next_kink_s(t_dev_s),
            Wave::Linear(w) => w.next_kink_s(t_dev_s),
        }
    }
}

/// The lock-in's sine out as the potentiostat's external input sees it:
/// `V(t) = amplitude sin(phase_0 + 2 pi f (t - t_0))`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ExtSine {
    f_Hz: f64,
    amplitude_V: f64,
    phase_0_rad: f64,
    t_0_s: f64,
}

impl ExtSine {
    fn phase_rad(&self, t_true_s: f64) -> f64 {
        self.phase_0_rad + TAU * self.f_Hz * (t_true_s - self.t_0_s)
    }

    fn is_on(&self) -> bool {
        self.amplitude_V != 0.0 && self.f_Hz > 0.0
    }

    fn volts(&self, t_true_s: f64) -> f64 {
        if self.is_on() {
            self.amplitude_V * self.phase_rad(t_true_s).sin()
        } else {
            0.0
        }
    }
}

/// What the potentiostat drives the cell with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Program {
    /// Cell switched off.
    OpenCircuit,
    /// Cell on, potential held.
    Hold { E_V: f64 },
    /// Cell on, a CV or linear sweep started at true time `start_true_s` on
    /// a device clock running `rate` device seconds per true second.
    Ramp {
        start_true_s: f64,
        rate: f64,
        wave: Wave,
    },
}

impl Program {
    fn potential_at(&self, t_true_s: f64) -> Option<f64> {
        match *self {
            Program::OpenCircuit => None,
            Program::Hold { E_V } => Some(E_V),
            Program::Ramp {
                start_true_s,
                rate,
                wave,
            } => Some(wave.potential_V((t_true_s - start_true_s) * rate)),
        }
    }

    /// Next instant after `t_true_s` where the drive has a kink, so the
    /// integration never smears a vertex across a chunk.
    fn next_kink_true_s(&self, t_true_s: f64) -> Option<f64> {
        match *self {
            Program::Ramp {
                start_true_s,
                rate,
                wave,
            } => wave
                .next_kink_s((t_true_s - start_true_s) * rate)
                .map(|t_dev| start_true_s + t_dev / rate),
            _ => None,
        }
    }
}

/// Edges seen on the trigger line, true seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct TriggerLine {
    high: bool,
    pub rising_s: Vec<f64>,
    pub falling_s: Vec<f64>,
}

/// A rising edge on the trigger line: its index (the segment number) and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edge {
    pub index: usize,
    pub t_true_s: f64,
}

pub(crate) struct World {
    clock: BenchClock,
    electrode: Electrode,
    lever: Lever,
    stage: ThermalStage,
    ext_sine: ExtSine,
    /// The last chunk ended on a kink of the program (a CV vertex).
    at_kink: bool,
    /// True time the electrode has been integrated to.
    tau_s: f64,
    program: Program,
    history: VecDeque<(f64, CellState)>,
    pub trigger: TriggerLine,
}

impl World {
    pub(crate) fn new(params: &SimParams, clock: BenchClock) -> Result<Self, SimError> {
        let electrode = Electrode::new(params)?;
        let lever = Lever::new(params);
        let mut history = VecDeque::new();
        history.push_back((0.0, electrode.state()));
        Ok(World {
            clock,
            electrode,
            lever,
            stage: ThermalStage::new(&params.thermal, params.cell.T_K),
            ext_sine: ExtSine {
                f_Hz: 0.0,
                amplitude_V: 0.0,
                phase_0_rad: 0.0,
                t_0_s: 0.0,
            },
            at_kink: false,
            tau_s: 0.0,
            program: Program::OpenCircuit,
            history,
            trigger: TriggerLine::default(),
        })
    }

    /// True time now, never behind what the world has already integrated
    /// (two threads may read the wall clock in a different order than they
    /// take the lock).
    pub(crate) fn now_s(&self) -> f64 {
        self.clock.now_s().max(self.tau_s)
    }

    /// Integrates the stage and the electrode up to true time `t_true_s`
    /// under the current program, in chunks no longer than [`CHUNK_S`] that
    /// end on every kink.
    pub(crate) fn advance_to(&mut self, t_true_s: f64) {
        while self.tau_s < t_true_s {
            let mut t_next = (self.tau_s + CHUNK_S).min(t_true_s);
            let mut kink_next = false;
            if let Some(k) = self.program.next_kink_true_s(self.tau_s)
                && k > self.tau_s
                && k <= t_next
            {
                t_next = k;
                kink_next = true;
            }
            let dt_s = t_next - self.tau_s;
            let T_start_K = self.stage.temperature_K();
            self.stage.advance(dt_s);
            self.electrode
                .set_temperature_K(0.5 * (T_start_K + self.stage.temperature_K()));
            let t0 = self.tau_s;
            let state = match self.program {
                Program::OpenCircuit => self.electrode.step(dt_s, Control::OpenCircuit),
                program if self.ext_sine.is_on() => {
                    if self.at_kink {
                        self.electrode.restart_substeps();
                    }
                    let ext = self.ext_sine;
                    let E_at = |t: f64| {
                        let t_abs = t0 + t;
                        program.potential_at(t_abs).unwrap_or(0.0) + ext.volts(t_abs)
                    };
                    self.electrode.step_smooth(
                        dt_s,
                        E_at,
                        1.0 / (ext.f_Hz * SINE_SUBSTEPS_PER_PERIOD),
                    )
                }
                Program::Hold { E_V } => self
                    .electrode
                    .step(dt_s, Control::Potential { E_app_V: E_V }),
                Program::Ramp { .. } => {
                    let from = self.program.potential_at(self.tau_s).unwrap_or(0.0);
                    let to = self.program.potential_at(t_next).unwrap_or(from);
                    self.electrode.step_ramp(dt_s, from, to)
                }
            };
            self.at_kink = kink_next;
            self.tau_s = t_next;
            self.history.push_back((t_next, state));
        }
        let keep_from = self.tau_s - HISTORY_S;
        while self.history.len() > 2 && self.history[1].0 < keep_from {
            self.history.pop_front();
        }
    }

    /// Integrates up to now.
    pub(crate) fn advance_to_now(&mut self) {
        let now = self.now_s();
        self.advance_to(now);
    }

    /// Switches the drive at the current instant; returns that instant.
    pub(crate) fn set_program_now(&mut self, program: Program) -> f64 {
        let now = self.now_s();
        self.advance_to(now);
        self.program = program;
        now
    }

    pub(crate) fn program(&self) -> Program {
        self.program
    }

    /// The potential the drive applies at `t_true_s` (None with the cell off).
    pub(crate) fn applied_potential_V(&self, t_true_s: f64) -> Option<f64> {
        self.program.potential_at(t_true_s)
    }

    pub(crate) fn cell_is_on(&self) -> bool {
        !matches!(self.program, Program::OpenCircuit)
    }

    /// Cell state at true instant `t_true_s`, linearly interpolated in the
    /// history. Instants that have not been integrated yet are integrated
    /// first, so callers must only ask for instants that have passed.
    /// Instants older than the history return its oldest entry.
    pub(crate) fn state_at(&mut self, t_true_s: f64) -> CellState {
        if t_true_s > self.tau_s {
            self.advance_to(t_true_s);
        }
        let i = self.history.partition_point(|(t, _)| *t < t_true_s);
        match (
            i.checked_sub(1).and_then(|j| self.history.get(j)),
            self.history.get(i),
        ) {
            (Some(&(t0, s0)), Some(&(t1, s1))) if t1 > t0 => {
                interpolate(&s0, &s1, (t_true_s - t0) / (t1 - t0))
            }
            (_, Some(&(_, s))) | (Some(&(_, s)), None) => s,
            (None, None) => self.electrode.state(),
        }
    }

    /// One photodetector reading of the lever at true instant `t_true_s`, V.
    pub(crate) fn deflection_volts_at(&mut self, t_true_s: f64) -> f64 {
        let state = self.state_at(t_true_s);
        self.lever.measured_volts(t_true_s, &state)
    }

    /// Sets the trigger line's level now; a low-to-high change is a rising
    /// edge and is returned.
    pub(crate) fn set_trigger_level_now(&mut self, high: bool) -> Option<Edge> {
        let now = self.now_s();
        let was = self.trigger.high;
        self.trigger.high = high;
        match (was, high) {
            (false, true) => {
                self.trigger.rising_s.push(now);
                Some(Edge {
                    index: self.trigger.rising_s.len() - 1,
                    t_true_s: now,
                })
            }
            (true, false) => {
                self.trigger.falling_s.push(now);
                None
            }
            _ => None,
        }
    }
}

/// The stage and the lock-in's sine out: the contract's World API for the
/// SR860 and LS336 emulators (merged from another branch; until then only
/// the tests call some of it).
#[allow(dead_code)]
impl World {
    /// True stage (= cell) temperature at the current instant, K (advances
    /// the world to now first). The electrode uses it for D(T), k0(T), RT/F.
    pub(crate) fn stage_temperature_K(&mut self) -> f64 {
        self.advance_to_now();
        self.stage.temperature_K()
    }

    pub(crate) fn stage_setpoint_K(&self) -> f64 {
        self.stage.setpoint_K()
    }

    /// New controller setpoint, K; takes effect now (non-positive or
    /// non-finite values are ignored).
    pub(crate) fn set_stage_setpoint_K(&mut self, setpoint_K: f64) {
        self.advance_to_now();
        self.stage.set_setpoint_K(setpoint_K);
    }

    pub(crate) fn stage_heater_range(&self) -> u8 {
        self.stage.heater_range()
    }

    /// Heater range 0..3 (larger values clamp to 3), now; 0 switches the
    /// heater off and the stage relaxes to ambient (`cell.T_K`).
    pub(crate) fn set_stage_heater_range(&mut self, range: u8) {
        self.advance_to_now();
        self.stage.set_heater_range(range);
    }

    /// Heater output now, percent of the range's full scale (for `HTR?`).
    pub(crate) fn stage_heater_percent(&mut self) -> f64 {
        self.advance_to_now();
        self.stage.heater_percent()
    }

    /// Lock-in sine out from now on: `f_Hz`, `amplitude_V_peak` (0 = off).
    /// The phase is continuous across changes of frequency or amplitude, as
    /// on a lock-in's internal oscillator. The potentiostat adds this
    /// voltage (gain 1) to its set potential while the cell is on.
    pub(crate) fn set_ext_sine_now(&mut self, f_Hz: f64, amplitude_V_peak: f64) {
        let now = self.now_s();
        self.advance_to(now);
        let phase = self.ext_sine.phase_rad(now).rem_euclid(TAU);
        let usable = f_Hz.is_finite() && f_Hz > 0.0 && amplitude_V_peak.is_finite();
        self.ext_sine = ExtSine {
            f_Hz: if usable { f_Hz } else { 0.0 },
            amplitude_V: if usable { amplitude_V_peak } else { 0.0 },
            phase_0_rad: if phase.is_finite() { phase } else { 0.0 },
            t_0_s: now,
        };
    }

    /// Phase of the sine out at true instant `t_true_s` (since its last
    /// change), rad, unwrapped: `V_ext = amplitude sin(phase)`. The lock-in
    /// emulator references its demodulation to this.
    pub(crate) fn ext_sine_phase_rad(&self, t_true_s: f64) -> f64 {
        self.ext_sine.phase_rad(t_true_s)
    }

    /// Voltage of the sine out at `t_true_s`, V (0 when off).
    pub(crate) fn ext_sine_volts(&self, t_true_s: f64) -> f64 {
        self.ext_sine.volts(t_true_s)
    }
}

fn interpolate(a: &CellState, b: &CellState, w: f64) -> CellState {
    let lerp = |x: f64, y: f64| x + (y - x) * w;
    CellState {
        E_app_V: lerp(a.E_app_V, b.E_app_V),
        E_int_V: lerp(a.E_int_V, b.E_int_V),
        I_A: lerp(a.I_A, b.I_A),
        I_F_A: lerp(a.I_F_A, b.I_F_A),
        Q_F_C: lerp(a.Q_F_C, b.Q_F_C),
        Q_C: lerp(a.Q_C, b.Q_C),
        x_surface: lerp(a.x_surface, b.x_surface),
        x_mean: lerp(a.x_mean, b.x_mean),
        T_K: lerp(a.T_K, b.T_K),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave() -> CvWave {
        CvWave {
            E_begin_V: 0.4,
            E_vertex1_V: 0.9,
            E_vertex2_V: -0.1,
            scan_rate_V_per_s: 0.2,
            n_scans: 3,
        }
    }

    #[test]
    fn cv_wave_visits_the_vertices_at_the_right_times() {
        let w = wave();
        assert!((w.span_V() - 2.0).abs() < 1e-12);
        assert!((w.duration_s() - 30.0).abs() < 1e-12);
        let cases = [
            (0.0, 0.4),
            (1.0, 0.6),
            (2.5, 0.9),
            (5.0, 0.4),
            (7.5, -0.1),
            (10.0, 0.4),
            (12.5, 0.9),
            (31.0, 0.4),
        ];
        for (t, e) in cases {
            assert!(
                (w.potential_V(t) - e).abs() < 1e-12,
                "E({t}) = {}",
                w.potential_V(t)
            );
        }
        assert_eq!(w.next_kink_s(0.0), Some(2.5));
        assert_eq!(w.next_kink_s(2.5), Some(7.5));
        assert_eq!(w.next_kink_s(8.0), Some(10.0));
        assert_eq!(w.next_kink_s(10.0), Some(12.5));
        assert_eq!(w.next_kink_s(29.0), Some(30.0));
        assert_eq!(w.next_kink_s(30.0), None);
    }

    #[test]
    fn history_interpolates_between_chunks() {
        let p = SimParams::default();
        let clock = BenchClock::start(1.0);
        let mut w = World::new(&p, clock).unwrap();
        w.program = Program::Hold { E_V: 0.3 };
        w.advance_to(0.1);
        let a = w.state_at(0.002);
        let b = w.state_at(0.004);
        let mid = w.state_at(0.003);
        assert!(b.Q_C != a.Q_C, "the held potential must draw current");
        assert!((mid.Q_C - 0.5 * (a.Q_C + b.Q_C)).abs() <= 1e-9 * (b.Q_C - a.Q_C).abs());
        // Asking for a later instant integrates up to it.
        let _ = w.state_at(0.25);
        assert!((w.tau_s - 0.25).abs() < 1e-12);
    }

    #[test]
    fn trigger_line_reports_only_rising_edges() {
        let p = SimParams::default();
        let mut w = World::new(&p, BenchClock::start(1.0)).unwrap();
        assert_eq!(w.set_trigger_level_now(false), None);
        let e = w.set_trigger_level_now(true).unwrap();
        assert_eq!(e.index, 0);
        assert_eq!(w.set_trigger_level_now(true), None);
        assert_eq!(w.set_trigger_level_now(false), None);
        assert_eq!(w.set_trigger_level_now(true).unwrap().index, 1);
        assert_eq!(w.trigger.rising_s.len(), 2);
        assert_eq!(w.trigger.falling_s.len(), 1);
    }
}
