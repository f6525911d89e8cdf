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
use std::collections::VecDeque;
use std::f64::consts::TAU;
use vegard_recipe::SimParams;

/// Longest integration chunk, true seconds. Also the spacing of the history
/// that emulators interpolate in: short against every sample interval the
/// driver uses (ms), while the solver sub-steps inside as it needs.
const CHUNK_S: f64 = 2e-3;
/// How much true time of history is kept. Emulators read at most a few
/// wall-clock ticks into the past; this is a wide margin.
pub(crate) const HISTORY_S: f64 = 60.0;
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

    /// Below 1 uV the sine is "off": that is the SR860's parking level
    /// (1 nV, it has no off state), far below the potentiostat's 50 uV
    /// noise, and integrating it would cost the smooth solver mode (sub-steps
    /// of a fraction of a period at the power-up 1 kHz) for nothing.
    fn is_on(&self) -> bool {
        self.amplitude_V.abs() >= 1e-6 && self.f_Hz > 0.0
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
    /// Instants asked for after they left the history: the bench fell
    /// behind (an emulator thread starved at a high `--speed`), and what it
    /// answered for them is not the model's.
    pub stale: StaleReads,
}

/// Reads of the cell state older than the history (see [`World::stale`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StaleReads {
    pub count: u64,
    /// True instant of the first stale read, s.
    pub first_t_true_s: f64,
    /// Largest distance behind the integrated time, true s.
    pub worst_lag_s: f64,
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
            stale: StaleReads::default(),
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
                        // Floor: a kHz sine is not worth 2.5 us sub-steps
                        // (the film's response there is ~0; only the phase
                        // accuracy above ~250 Hz suffers).
                        (1.0 / (ext.f_Hz * SINE_SUBSTEPS_PER_PERIOD)).max(1e-5),
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

    /// [`World::state_at`] for a sample an instrument records (a potentiostat
    /// sample): an instant older than the history is counted in
    /// [`World::stale`], as the bench fell behind. Reads that only keep a
    /// filter fed (the idle lock-in catching up) use `state_at`.
    pub(crate) fn recorded_state_at(&mut self, t_true_s: f64) -> CellState {
        self.note_if_stale(t_true_s);
        self.state_at(t_true_s)
    }

    /// [`World::deflection_volts_at`] for a digitizer reading (see
    /// [`World::recorded_state_at`]).
    pub(crate) fn recorded_deflection_volts_at(&mut self, t_true_s: f64) -> f64 {
        self.note_if_stale(t_true_s);
        self.deflection_volts_at(t_true_s)
    }

    fn note_if_stale(&mut self, t_true_s: f64) {
        if let Some(&(t_oldest, _)) = self.history.front()
            && t_true_s < t_oldest - 1e-9
        {
            if self.stale.count == 0 {
                self.stale.first_t_true_s = t_true_s;
            }
            self.stale.count += 1;
            self.stale.worst_lag_s = self.stale.worst_lag_s.max(self.tau_s - t_true_s);
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
        self.set_trigger_level_at(high, now)
    }

    /// Sets the trigger line's level at `t_true_s` (not before the line's
    /// last change): a write from inside a measurement loop happens at the
    /// sample's instant on the device's timeline, however late the emulator
    /// gets to it in wall time.
    pub(crate) fn set_trigger_level_at(&mut self, high: bool, t_true_s: f64) -> Option<Edge> {
        let last = self
            .trigger
            .rising_s
            .last()
            .copied()
            .into_iter()
            .chain(self.trigger.falling_s.last().copied())
            .fold(f64::NEG_INFINITY, f64::max);
        let now = t_true_s.max(last);
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
/// SR860 and LS336 emulators.
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
    #[cfg(test)]
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
        dT_joule_K: lerp(a.dT_joule_K, b.dT_joule_K),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::testutil::{demodulate, lstsq};
    use crate::model::{C64, SmallSignal, diffusion_m2_per_s_at};
    use std::time::Instant;
    use vegard_core::constants::{FARADAY_C_PER_MOL, GAS_CONSTANT_J_PER_MOL_K};

    /// A world whose wall clock practically stands still, so `now_s` is the
    /// integrated time and the tests drive time with `advance_to`.
    fn world(p: &SimParams) -> World {
        World::new(p, BenchClock::start(1e-12)).unwrap()
    }

    const T_HOT_K: f64 = 338.15;

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

    /// Instants that already left the history are counted as stale (the
    /// bench fell behind); instants inside it are not.
    #[test]
    fn reads_older_than_the_history_are_counted_as_stale() {
        let p = SimParams::default();
        let mut w = World::new(&p, BenchClock::start(1.0)).unwrap();
        w.program = Program::Hold { E_V: 0.3 };
        w.advance_to(HISTORY_S + 40.0);
        let _ = w.recorded_state_at(50.0);
        let _ = w.recorded_deflection_volts_at(HISTORY_S + 39.0);
        // A read that only feeds a filter is not a recorded sample.
        let _ = w.deflection_volts_at(5.0);
        assert_eq!(w.stale, StaleReads::default(), "inside the history");
        let _ = w.recorded_state_at(10.0);
        let _ = w.recorded_deflection_volts_at(20.0);
        assert_eq!(w.stale.count, 2);
        assert_eq!(w.stale.first_t_true_s, 10.0);
        assert!((w.stale.worst_lag_s - (HISTORY_S + 30.0)).abs() < 1e-9);
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

    #[test]
    fn stage_overshoots_and_settles_through_the_world_api() {
        let p = SimParams::default();
        let mut w = world(&p);
        assert_eq!(w.stage_temperature_K(), 298.15);
        assert_eq!(w.stage_heater_range(), 0);
        w.set_stage_setpoint_K(T_HOT_K);
        // Heater off: nothing happens.
        w.advance_to(10.0);
        assert_eq!(w.stage_temperature_K(), 298.15);
        assert_eq!(w.stage_setpoint_K(), T_HOT_K);
        w.set_stage_heater_range(3);
        let t_on = w.now_s();
        let mut peak = 0.0f64;
        let mut t = t_on;
        while t < t_on + 200.0 {
            t += 0.5;
            w.advance_to(t);
            peak = peak.max(w.stage_temperature_K());
        }
        // zeta = 0.6: exp(-0.6 pi / 0.8) = 9.48 % of the 40 K step.
        let overshoot = (peak - T_HOT_K) / 40.0;
        assert!((overshoot - 0.0948).abs() < 0.002, "overshoot {overshoot}");
        w.advance_to(t_on + 500.0);
        let T = w.stage_temperature_K();
        assert!((T - T_HOT_K).abs() < 0.01, "T = {T}");
        assert!((w.stage_heater_percent() - 20.0).abs() < 0.1);
        // The film is at the stage temperature (the state records it).
        let s = w.state_at(w.now_s());
        assert!((s.T_K - T).abs() < 1e-6, "film {} vs stage {T}", s.T_K);
        // Heater off: back to ambient.
        w.set_stage_heater_range(0);
        assert_eq!(w.stage_heater_percent(), 0.0);
        w.advance_to(t_on + 1000.0);
        assert!((w.stage_temperature_K() - 298.15).abs() < 0.01);
    }

    /// Ideal film (no R_s, no C_dl, fast kinetics) on a fast stage, so the
    /// tests can heat it in simulated seconds.
    fn ideal_fast_stage() -> SimParams {
        let mut p = SimParams::default();
        p.cell.R_s_ohm = 0.0;
        p.cell.C_dl_F = 0.0;
        p.kinetics.k0_m_per_s = 1e-3;
        p.thermal.tau_s = 2.0;
        p
    }

    /// Heats the stage of `w` to `T_K` and waits until it has settled.
    fn heat(w: &mut World, T_K: f64) {
        w.set_stage_setpoint_K(T_K);
        w.set_stage_heater_range(3);
        let t = w.now_s() + 60.0;
        w.advance_to(t);
        assert!((w.stage_temperature_K() - T_K).abs() < 1e-3);
    }

    #[test]
    fn potential_step_charge_matches_the_isotherm_at_the_stage_temperature() {
        // Hold E0 + 50 mV until the film has equilibrated (20 L^2/D): the
        // charge is zFALc_max (x0 - x_eq(E, T)) with x_eq from RT/F at the
        // stage temperature: x_eq = 0.1250 at 25 C, 0.1523 at 65 C.
        let p = ideal_fast_stage();
        let f = &p.film;
        let E = f.E0_V + 0.05;
        let full = f.z * FARADAY_C_PER_MOL * f.area_m2 * f.thickness_m * f.c_max_mol_per_m3;
        let mut charges = Vec::new();
        for T_K in [298.15, T_HOT_K] {
            let mut w = world(&p);
            if T_K != 298.15 {
                heat(&mut w, T_K);
            }
            let q0 = w.state_at(w.now_s()).Q_F_C;
            let tau = f.thickness_m.powi(2) / diffusion_m2_per_s_at(&p, T_K);
            w.program = Program::Hold { E_V: E };
            let t_end = w.now_s() + 20.0 * tau;
            w.advance_to(t_end);
            let q = w.state_at(t_end).Q_F_C - q0;
            let fT = f.z * FARADAY_C_PER_MOL / (GAS_CONSTANT_J_PER_MOL_K * T_K);
            let x_eq = 1.0 / (1.0 + (fT * (E - f.E0_V)).exp());
            let expected = full * (f.x_initial - x_eq);
            eprintln!("T = {T_K} K: Q_F {q:.6e} C, isotherm {expected:.6e} C");
            assert!((q / expected - 1.0).abs() < 1e-4, "{q} vs {expected}");
            charges.push(q);
        }
        // The test can tell the temperatures apart: 5.7 % less charge at 65 C.
        assert!(charges[1] / charges[0] < 0.95);
    }

    #[test]
    fn pitt_decay_follows_d_of_the_stage_temperature() {
        // Reversible kinetics: the surface is pinned at x_eq(E), so after a
        // step the current decays as exp(-t / tau_1), tau_1 = 4 L^2/(pi^2 D),
        // at long times (PHYSICS.md section 4): 1.36 s at 65 C against
        // 10.8 s at 25 C.
        let p = ideal_fast_stage();
        let mut w = world(&p);
        heat(&mut w, T_HOT_K);
        let D = diffusion_m2_per_s_at(&p, T_HOT_K);
        let tau_1 = 4.0 * p.film.thickness_m.powi(2) / (std::f64::consts::PI.powi(2) * D);
        w.program = Program::Hold {
            E_V: p.film.E0_V + 0.05,
        };
        let t0 = w.now_s();
        let (ta, tb) = (t0 + 2.0 * tau_1, t0 + 4.0 * tau_1);
        let ia = w.state_at(ta).I_A;
        let ib = w.state_at(tb).I_A;
        let measured = (tb - ta) / (ia / ib).ln();
        eprintln!("PITT at 65 C: tau_1 {measured:.4} s vs 4L^2/(pi^2 D(T)) {tau_1:.4} s");
        // Next mode is 9x faster: exp(-8 * 2) leaves nothing at 2 tau_1.
        assert!(
            (measured / tau_1 - 1.0).abs() < 0.01,
            "{measured} vs {tau_1}"
        );
    }

    /// Drives the world with the program `Hold { E_dc }` plus the external
    /// sine (after `equilibrate_s` of the hold alone) and demodulates the applied potential, the current and the true
    /// deflection over `measure` whole periods after `settle` periods.
    /// Returns Z, u/V, the solver's sub-steps and the wall time spent.
    /// `equilibrate_s` of the hold pass before the sine starts.
    fn world_sine(
        p: &SimParams,
        E_dc_V: f64,
        equilibrate_s: f64,
        amp_V: f64,
        f_Hz: f64,
        settle: usize,
        measure: usize,
    ) -> (C64, C64, u64, f64) {
        let mut w = world(p);
        w.program = Program::Hold { E_V: E_dc_V };
        w.advance_to(equilibrate_s);
        let started = Instant::now();
        let steps0 = w.electrode.substeps();
        w.set_ext_sine_now(f_Hz, amp_V);
        let t0 = w.now_s();
        let period = 1.0 / f_Hz;
        let per_period = 400;
        let (mut t, mut e, mut i, mut u) = (vec![], vec![], vec![], vec![]);
        w.advance_to(t0 + settle as f64 * period);
        for k in 1..=measure * per_period {
            let tk = t0 + settle as f64 * period + k as f64 * period / per_period as f64;
            let s = w.state_at(tk);
            t.push(tk - t0);
            e.push(s.E_app_V);
            i.push(s.I_A);
            u.push(w.lever.true_deflection_nm(&s));
        }
        let wall = started.elapsed().as_secs_f64();
        let omega = 2.0 * std::f64::consts::PI * f_Hz;
        // The sine started at phase 0 at t0: sample times are relative to it.
        let v = demodulate(&t, &e, omega);
        let z = v / demodulate(&t, &i, omega);
        let uv = demodulate(&t, &u, omega) / v;
        (z, uv, w.electrode.substeps() - steps0, wall)
    }

    /// The same sine fed to the electrode the old way, one `step_ramp` per
    /// 2 ms chunk (a kink at every chunk), for the cost comparison.
    fn ramp_chain_substeps(
        p: &SimParams,
        E_dc_V: f64,
        amp_V: f64,
        f_Hz: f64,
        t_s: f64,
    ) -> (u64, f64) {
        let mut el = Electrode::new(p).unwrap();
        let started = Instant::now();
        let omega = 2.0 * std::f64::consts::PI * f_Hz;
        let n = (t_s / CHUNK_S).round() as usize;
        let E = |k: usize| E_dc_V + amp_V * (omega * k as f64 * CHUNK_S).sin();
        for k in 0..n {
            el.step_ramp(CHUNK_S, E(k), E(k + 1));
        }
        (el.substeps(), started.elapsed().as_secs_f64())
    }

    /// The time-domain world under the external sine agrees with the
    /// small-signal model (2 % and 2 deg, as the model's own check) and
    /// costs a few solver sub-steps per 2 ms chunk.
    fn assert_ext_sine_agrees(f_Hz: f64, settle: usize, measure: usize) {
        let p = SimParams::default();
        let E_dc = p.film.E0_V;
        let (z, uv, substeps, wall) = world_sine(&p, E_dc, 0.0, 5e-3, f_Hz, settle, measure);
        let ss = SmallSignal::new(&p, E_dc);
        let (z_ss, uv_ss) = (ss.impedance_ohm(f_Hz), ss.strain_transfer_nm_per_V(f_Hz));
        let ez = z.norm() / z_ss.norm() - 1.0;
        let pz = (z / z_ss).arg().to_degrees();
        let eu = uv.norm() / uv_ss.norm() - 1.0;
        let pu = (uv / uv_ss).arg().to_degrees();
        let sim_s = (settle + measure) as f64 / f_Hz;
        let chunks = sim_s / CHUNK_S;
        let (ramp_steps, ramp_wall) = ramp_chain_substeps(&p, E_dc, 5e-3, f_Hz, sim_s.min(20.0));
        let ramp_chunks = sim_s.min(20.0) / CHUNK_S;
        eprintln!(
            "ext sine {f_Hz} Hz: |Z| err {:+.3} %, {pz:+.3} deg; u/V err {:+.3} %, {pu:+.3} deg; \
             smooth: {:.2} sub-steps/chunk, {:.2} ms wall per simulated s; \
             ramp chain: {:.1} sub-steps/chunk, {:.2} ms wall per simulated s",
            100.0 * ez,
            100.0 * eu,
            substeps as f64 / chunks,
            1e3 * wall / sim_s,
            ramp_steps as f64 / ramp_chunks,
            1e3 * ramp_wall / sim_s.min(20.0),
        );
        assert!(ez.abs() < 0.02 && pz.abs() < 2.0, "Z {z:?} vs {z_ss:?}");
        assert!(eu.abs() < 0.02 && pu.abs() < 2.0, "u/V {uv:?} vs {uv_ss:?}");
        // A few sub-steps per chunk: 2 (the 1 ms cap) up to ~2.5 Hz, then
        // 400 per period.
        let cap = (CHUNK_S * f_Hz * SINE_SUBSTEPS_PER_PERIOD).ceil().max(2.0) + 1.0;
        assert!(
            (substeps as f64 / chunks) < cap,
            "{} sub-steps per chunk",
            substeps as f64 / chunks
        );
        // Below ~0.05 Hz the slope changes by less than the kink threshold
        // per chunk and the ramp chain is as cheap; above, it restarts at
        // every chunk (80-95 sub-steps per chunk measured at 0.1-10 Hz).
        if f_Hz >= 0.1 {
            assert!(ramp_steps as f64 / ramp_chunks > 5.0 * substeps as f64 / chunks);
        }
    }

    #[test]
    fn ext_sine_matches_small_signal_at_0_01_hz() {
        assert_ext_sine_agrees(0.01, 1, 1);
    }

    #[test]
    fn ext_sine_matches_small_signal_at_0_1_hz() {
        assert_ext_sine_agrees(0.1, 1, 1);
    }

    #[test]
    fn ext_sine_matches_small_signal_at_1_hz() {
        assert_ext_sine_agrees(1.0, 1, 2);
    }

    #[test]
    fn ext_sine_matches_small_signal_at_10_hz() {
        assert_ext_sine_agrees(10.0, 2, 2);
    }

    #[test]
    fn ext_sine_phase_is_continuous_and_only_drives_a_cell_that_is_on() {
        let p = SimParams::default();
        let mut w = world(&p);
        w.advance_to(1.0);
        w.set_ext_sine_now(2.0, 0.01);
        let t1 = w.now_s();
        assert!((w.ext_sine_phase_rad(t1 + 0.1) - 0.2 * TAU).abs() < 1e-9);
        w.advance_to(t1 + 0.3);
        let before = w.ext_sine_phase_rad(t1 + 0.3);
        w.set_ext_sine_now(5.0, 0.02);
        let t2 = w.now_s();
        let after = w.ext_sine_phase_rad(t2);
        assert!(((before - after).rem_euclid(TAU)).min((after - before).rem_euclid(TAU)) < 1e-9);
        assert!((w.ext_sine_phase_rad(t2 + 0.05) - after - 0.25 * TAU).abs() < 1e-9);
        // Cell off: the sine does not reach the film (open circuit, I = 0).
        w.advance_to(t2 + 1.0);
        assert!(w.state_at(t2 + 1.0).I_A.abs() < 1e-15);
        // Cell on: the applied potential is the program plus the sine.
        w.program = Program::Hold { E_V: 0.4 };
        w.advance_to(t2 + 2.0);
        let s = w.state_at(t2 + 2.0);
        let expected = 0.4 + 0.02 * w.ext_sine_phase_rad(t2 + 2.0).sin();
        assert!(
            (s.E_app_V - expected).abs() < 1e-12,
            "{} vs {expected}",
            s.E_app_V
        );
        assert!((w.ext_sine_volts(t2 + 2.0) - (expected - 0.4)).abs() < 1e-12);
        // Amplitude 0 switches it off.
        w.set_ext_sine_now(5.0, 0.0);
        w.advance_to(t2 + 3.0);
        assert!((w.state_at(t2 + 3.0).E_app_V - 0.4).abs() < 1e-15);
    }

    #[test]
    fn ext_sine_on_a_cv_restarts_the_solver_at_the_vertices() {
        // A CV with a small sine on top: the vertex is a kink of the drive
        // that the smooth mode cannot see; the world restarts the sub-step
        // there, so the result matches a run cut at the vertex.
        let p = SimParams::default();
        let mut w = world(&p);
        let wave = CvWave {
            E_begin_V: 0.4,
            E_vertex1_V: 0.5,
            E_vertex2_V: 0.3,
            scan_rate_V_per_s: 0.2,
            n_scans: 1,
        };
        w.program = Program::Ramp {
            start_true_s: 0.0,
            rate: 1.0,
            wave: Wave::Cv(wave),
        };
        w.set_ext_sine_now(1.0, 0.005);
        w.advance_to(2.0);
        let s = w.state_at(2.0);
        assert!(s.I_A.is_finite());
        let expected = wave.potential_V(2.0) + 0.005 * w.ext_sine_phase_rad(2.0).sin();
        assert!((s.E_app_V - expected).abs() < 1e-12);
    }

    /// The deflection settings of configs/sim-nonideal.toml, without noise
    /// or drift.
    fn non_ideal_quiet() -> SimParams {
        let mut p = SimParams::default();
        p.strain.dOmega_dx_m3_per_mol = 3e-6;
        p.electrostatic.dC_dz_F_per_m = 2e-9;
        p.electrostatic.V_cpd_V = -0.1;
        p.noise.deflection_nm_rms = 0.0;
        p.drift.holder_nm_per_min = 0.0;
        p.drift.random_walk_nm_per_sqrt_min = 0.0;
        p
    }

    /// The eigenstrain integral behind the quadratic term, numerically:
    /// height change in nm when the film's mean mole fraction goes from
    /// `x_initial` to `x`, `(G L c_max / 3) integral Omega(x') dx'` by
    /// composite Simpson over `Omega(x')` written out from the parameters.
    fn eigenstrain_height_nm(p: &SimParams, x: f64) -> f64 {
        let (x0, s) = (p.film.x_initial, &p.strain);
        let Omega = |xi: f64| s.Omega_m3_per_mol + s.dOmega_dx_m3_per_mol * (xi - x0);
        let n = 200;
        let h = (x - x0) / n as f64;
        let integral = (0..=n)
            .map(|k| {
                let weight = if k == 0 || k == n {
                    1.0
                } else if k % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                weight * Omega(x0 + k as f64 * h)
            })
            .sum::<f64>()
            * h
            / 3.0;
        let nu = s.poisson_ratio;
        let G = (1.0 + nu) / (1.0 - nu);
        G * p.film.thickness_m * p.film.c_max_mol_per_m3 / 3.0 * integral * 1e9
    }

    /// Runs a 2-scan CV of the demo (0.4 -> 0.9 -> -0.1 -> 0.4 V, 0.2 V/s)
    /// on a fresh world and returns every 10 ms the state and the lever's
    /// reading in nm (the digitizer's volts times the InvOLS).
    fn cv_run(p: &SimParams) -> Vec<(CellState, f64)> {
        let mut w = world(p);
        let cv = CvWave {
            n_scans: 2,
            ..wave()
        };
        let t0 = w.now_s();
        w.program = Program::Ramp {
            start_true_s: t0,
            rate: 1.0,
            wave: Wave::Cv(cv),
        };
        (1..=2000)
            .map(|k| {
                let t = t0 + k as f64 * 0.01;
                let s = w.state_at(t);
                let u_nm = w.deflection_volts_at(t) * p.lever.invols_nm_per_V;
                (s, u_nm)
            })
            .collect()
    }

    #[test]
    fn cv_deflection_is_vegard_plus_quadratic_plus_electrostatic() {
        let p = non_ideal_quiet();
        let run = cv_run(&p);
        let V_cpd = p.electrostatic.V_cpd_V;
        let q: Vec<f64> = run.iter().map(|(s, _)| s.Q_F_C).collect();
        let q2: Vec<f64> = q.iter().map(|x| x * x).collect();
        let dv2: Vec<f64> = run
            .iter()
            .map(|(s, _)| (s.E_app_V - V_cpd).powi(2))
            .collect();
        let u: Vec<f64> = run.iter().map(|(_, u)| *u).collect();
        let ones = vec![1.0; u.len()];
        let (q_min, q_max) = q
            .iter()
            .fold((0.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let (u_min, u_max) = u
            .iter()
            .fold((0.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        eprintln!(
            "CV: Q_F {:.3} .. {:.3} mC, u {u_min:.3} .. {u_max:.3} nm",
            q_min * 1e3,
            q_max * 1e3
        );
        // Both sides of the rest state and a wide swing: the three columns
        // are well separated.
        assert!(q_min < -5e-3 && q_max > 5e-3, "{q_min} .. {q_max}");

        // Independent truth: kappa and kappa2 as the odd and even parts of
        // the numerically integrated eigenstrain at dx = -+Q/(zFAL c_max),
        // the electrostatic coefficient from the force balance u = -F/k.
        let f = &p.film;
        let charge_per_x_C =
            f.z * FARADAY_C_PER_MOL * f.area_m2 * f.thickness_m * f.c_max_mol_per_m3;
        let Q = 1e-2;
        let up = eigenstrain_height_nm(&p, f.x_initial - Q / charge_per_x_C);
        let down = eigenstrain_height_nm(&p, f.x_initial + Q / charge_per_x_C);
        let kappa_int = (up - down) / (2.0 * Q);
        let kappa2_int = (up + down) / (2.0 * Q * Q);
        let es_force = -0.5 * p.electrostatic.dC_dz_F_per_m / p.lever.spring_constant_N_per_m * 1e9;
        let t = crate::model::truth(&p).unwrap();
        eprintln!(
            "eigenstrain integral: kappa {kappa_int:.9e} nm/C (truth {:.9e}), \
             kappa2 {kappa2_int:.9e} nm/C^2 (truth {:.9e}); electrostatic {es_force} nm/V^2",
            t.kappa_nm_per_mC * 1e3,
            t.kappa2_nm_per_mC2 * 1e6
        );
        let rel = |a: f64, b: f64| (a / b - 1.0).abs();
        // Simpson is exact for a linear Omega: only rounding remains.
        assert!(rel(kappa_int, t.kappa_nm_per_mC * 1e3) < 1e-9);
        assert!(rel(kappa2_int, t.kappa2_nm_per_mC2 * 1e6) < 1e-9);
        assert!(rel(es_force, t.electrostatic_nm_per_V2) < 1e-12);

        // Least squares over the run: u = c + kappa Q + kappa2 Q^2 + e (E - V_cpd)^2.
        let b = lstsq(&[ones, q.clone(), q2, dv2], &u);
        eprintln!(
            "fit: offset {:.2e} nm, kappa {:.9e}, kappa2 {:.9e}, electrostatic {:.9e}",
            b[0], b[1], b[2], b[3]
        );
        assert!(b[0].abs() < 1e-9 * (u_max - u_min), "offset {}", b[0]);
        assert!(rel(b[1], kappa_int) < 1e-9, "kappa {} vs {kappa_int}", b[1]);
        assert!(
            rel(b[2], kappa2_int) < 1e-9,
            "kappa2 {} vs {kappa2_int}",
            b[2]
        );
        assert!(rel(b[3], es_force) < 1e-9, "{} vs {es_force}", b[3]);
        let model = |s: &CellState| {
            kappa_int * s.Q_F_C
                + kappa2_int * s.Q_F_C * s.Q_F_C
                + es_force * (s.E_app_V - V_cpd).powi(2)
        };
        let worst = run
            .iter()
            .map(|(s, u)| (u - model(s)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-9 * (u_max - u_min), "worst residual {worst} nm");

        // The solver's own composition agrees with the lever's charge-based
        // strain: the eigenstrain integral at the state's mean mole fraction
        // reproduces kappa Q_F + kappa2 Q_F^2 (this ties dx = -Q_F/(zFAL c_max),
        // and so the signs, to the diffusion solver).
        let worst_x = run
            .iter()
            .map(|(s, _)| {
                let strain = kappa_int * s.Q_F_C + kappa2_int * s.Q_F_C * s.Q_F_C;
                (eigenstrain_height_nm(&p, s.x_mean) - strain).abs()
            })
            .fold(0.0, f64::max);
        eprintln!("eigenstrain at x_mean vs charge form: worst {worst_x:.2e} nm");
        assert!(worst_x < 1e-9 * (u_max - u_min), "{worst_x} nm");

        // Sizes on the demo CV: the electrostatic term spans 0 (at -0.1 V =
        // V_cpd) to -1.25 nm (at 0.9 V).
        let es: Vec<f64> = run
            .iter()
            .map(|(s, _)| es_force * (s.E_app_V - V_cpd).powi(2))
            .collect();
        let es_min = es.iter().copied().fold(0.0, f64::min);
        assert!((es_min + 1.25).abs() < 1e-3, "{es_min}");
    }

    #[test]
    fn default_bench_cv_deflection_is_exactly_kappa_times_charge() {
        let mut p = SimParams::default();
        p.noise.deflection_nm_rms = 0.0;
        p.drift.holder_nm_per_min = 0.0;
        p.drift.random_walk_nm_per_sqrt_min = 0.0;
        let kappa = crate::model::kappa_nm_per_C(&p);
        let w = world(&p);
        for (s, _) in cv_run(&p) {
            // Bit for bit the old pure-Vegard formula.
            assert_eq!(w.lever.true_deflection_nm(&s), kappa * s.Q_F_C);
        }
    }

    #[test]
    fn ext_sine_off_centre_with_non_ideal_terms_matches_small_signal() {
        // Hold 40 mV above E0 until the film has equilibrated (x_eq = 0.174,
        // Q_F,dc = 14.9 mC from the rest state), then a 1 mV sine at 0.1 Hz.
        // The first harmonic of u/V must be the small-signal model's with
        // the local slope kappa + 2 kappa2 Q_F,dc and the flat electrostatic
        // term -C' (E_dc - V_cpd)/k.
        //
        // 1 mV, not the 5 mV of the tests at E0: off-centre the isotherm is
        // asymmetric, the current has a second harmonic proportional to the
        // amplitude, and over one period it leaks into `demodulate`'s
        // fundamental through the fitted t, t^2 trend. Measured |Z| error:
        // 2.1 % at 5 mV, 0.42 % at 1 mV, 0.08 % at 0.2 mV (linear in the
        // amplitude: leakage, not the model); u/V: -0.93, -0.19, -0.03 %.
        let p = non_ideal_quiet();
        let E_dc = p.film.E0_V + 0.04;
        let tau = p.film.thickness_m.powi(2) / p.film.D_m2_per_s;
        let f_Hz = 0.1;
        let (z, uv, _, _) = world_sine(&p, E_dc, 20.0 * tau, 1e-3, f_Hz, 4, 1);
        let ss = SmallSignal::new(&p, E_dc);
        let uv_ss = ss.strain_transfer_nm_per_V(f_Hz);
        let ez = z.norm() / ss.impedance_ohm(f_Hz).norm() - 1.0;
        let eu = uv.norm() / uv_ss.norm() - 1.0;
        let pu = (uv / uv_ss).arg().to_degrees();
        // What the model would say without each non-ideal part.
        let no_slope = SmallSignal {
            kappa2_nm_per_C2: 0.0,
            ..ss
        }
        .strain_transfer_nm_per_V(f_Hz);
        let no_es = SmallSignal {
            electrostatic_nm_per_V: 0.0,
            ..ss
        }
        .strain_transfer_nm_per_V(f_Hz);
        eprintln!(
            "off-centre, 0.1 Hz: Q_F,dc {:.3} mC, local kappa {:.4} nm/mC (kappa {:.4}), \
             electrostatic {:.4} nm/V; u/V {:.3} nm/V @ {:.2} deg, err {:+.3} %, {pu:+.3} deg; \
             |Z| err {:+.3} %; without the slope correction {:.3} nm/V, without electrostatics {:.3} nm/V",
            ss.Q_F_dc_C * 1e3,
            ss.local_kappa_nm_per_C() * 1e-3,
            ss.kappa_nm_per_C * 1e-3,
            ss.electrostatic_nm_per_V,
            uv_ss.norm(),
            uv_ss.arg().to_degrees(),
            100.0 * eu,
            100.0 * ez,
            no_slope.norm(),
            no_es.norm(),
        );
        assert!(ez.abs() < 0.01, "|Z| err {ez}");
        assert!(eu.abs() < 0.01 && pu.abs() < 1.0, "u/V {uv:?} vs {uv_ss:?}");
        // The test can tell: each omitted part is off by far more than 1 %
        // (|u/V| 5.53 nm/V; 7.63 without the slope correction, 4.87 without
        // the electrostatic term).
        assert!((uv - no_slope).norm() > 0.2 * uv.norm());
        assert!((uv - no_es).norm() > 0.05 * uv.norm());
        // The local slope: kappa + 2 kappa2 Q_F,dc with Q_F,dc from x_eq.
        let Q_dc = 0.045_676_156 * (0.5 - ss.x_eq);
        assert!((ss.Q_F_dc_C / Q_dc - 1.0).abs() < 1e-6);
    }
}
