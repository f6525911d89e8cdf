//! The shared physical world behind every emulator.
//!
//! Owns: the electrode and the lever, the true time up to which the electrode
//! has been integrated, the potentiostat's control program (what the cell is
//! driven with, as a function of true time), a history of cell states so an
//! emulator can read the state at any recent instant, and the trigger line
//! (the BNC cable from the potentiostat's GPIO to the digitizer's external
//! trigger input). It lives behind one mutex; integration is lazy: whoever
//! needs a state at an instant that has passed advances the world to it.

use crate::SimError;
use crate::clock::BenchClock;
use crate::model::{CellState, Control, Electrode, Lever};
use std::collections::VecDeque;
use vegard_recipe::SimParams;

/// Longest integration chunk, true seconds. Also the spacing of the history
/// that emulators interpolate in: short against every sample interval the
/// driver uses (ms), while the solver sub-steps inside as it needs.
const CHUNK_S: f64 = 2e-3;
/// How much true time of history is kept. Emulators read at most a few
/// wall-clock ticks into the past; this is a wide margin.
const HISTORY_S: f64 = 60.0;

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

/// What the potentiostat drives the cell with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Program {
    /// Cell switched off.
    OpenCircuit,
    /// Cell on, potential held.
    Hold { E_V: f64 },
    /// Cell on, CV ramp started at true time `start_true_s` on a device
    /// clock running `rate` device seconds per true second.
    Ramp {
        start_true_s: f64,
        rate: f64,
        wave: CvWave,
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

    /// Integrates the electrode up to true time `t_true_s` under the current
    /// program, in chunks no longer than [`CHUNK_S`] that end on every kink.
    pub(crate) fn advance_to(&mut self, t_true_s: f64) {
        while self.tau_s < t_true_s {
            let mut t_next = (self.tau_s + CHUNK_S).min(t_true_s);
            if let Some(k) = self.program.next_kink_true_s(self.tau_s)
                && k > self.tau_s
                && k < t_next
            {
                t_next = k;
            }
            let dt_s = t_next - self.tau_s;
            let state = match self.program {
                Program::OpenCircuit => self.electrode.step(dt_s, Control::OpenCircuit),
                Program::Hold { E_V } => self
                    .electrode
                    .step(dt_s, Control::Potential { E_app_V: E_V }),
                Program::Ramp { .. } => {
                    let from = self.program.potential_at(self.tau_s).unwrap_or(0.0);
                    let to = self.program.potential_at(t_next).unwrap_or(from);
                    self.electrode.step_ramp(dt_s, from, to)
                }
            };
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
