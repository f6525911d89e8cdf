//! What the bench records about itself for tests and reports.
//!
//! Owns: the line log (every line each emulator received and sent, stamped
//! with true time) and the truth log (the true instant of every trigger edge
//! and of every sample an emulator emitted). Drivers never see either; tests
//! and the engine's known-answer checks compare the recorded data with them.
//!
//! Both are bounded, so that a bench serving an hours-long run does not
//! grow without end (25 bytes per deflection sample made a day at 1 kS/s
//! 2 GB): the line log keeps the latest [`MAX_LINES`] lines, and each
//! sample log keeps every sample up to [`MAX_SAMPLES_KEPT`], then thins
//! itself to every 2nd, 4th, ... sample in the order emitted (a kept entry
//! is still the exact truth of its sample; [`TruthLog::deflection_stride`]
//! says how many samples each kept one stands for).

use serde::Serialize;
use std::sync::{Mutex, MutexGuard};

/// Which emulated instrument a log line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Potentiostat,
    Deflection,
    /// SR860 lock-in (sim-emu).
    #[serde(rename = "lockin")]
    LockIn,
    /// Lake Shore 336 temperature controller (sim-emu).
    #[serde(rename = "temperature")]
    TemperatureStage,
}

/// Seen from the emulator: a line it received from the host or sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Received,
    Sent,
}

/// One line on a wire. Binary replies are summarised (`#3800 <800 bytes>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub device: Device,
    pub direction: Direction,
    pub line: String,
    /// True (simulated) time the line was handled, s.
    pub t_true_s: f64,
}

/// Most wire lines the journal keeps (the latest; ~100 bytes each).
pub const MAX_LINES: usize = 100_000;

/// Most sample truths kept per instrument before the log thins itself to
/// every other one (24 bytes each: 48 MB at most per instrument).
pub const MAX_SAMPLES_KEPT: usize = 1 << 21;

/// True instants of everything the instruments timed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TruthLog {
    /// Rising edges on the trigger line, s.
    pub triggers_s: Vec<f64>,
    /// The potentiostat's samples, every [`TruthLog::potentiostat_stride`]-th
    /// in the order emitted.
    pub potentiostat: Vec<SampleTruth>,
    /// The digitizer's samples, every [`TruthLog::deflection_stride`]-th.
    pub deflection: Vec<SampleTruth>,
    /// 1 while every potentiostat sample is kept; 2^k after k thinnings.
    pub potentiostat_stride: u64,
    /// 1 while every deflection sample is kept; 2^k after k thinnings.
    pub deflection_stride: u64,
    /// Wire lines dropped from the start of the line log (beyond
    /// [`MAX_LINES`]).
    pub lines_dropped: u64,
    /// Every EIS point the potentiostat reported, with the noiseless
    /// impedance of the model it was drawn from (the known answer).
    pub impedance: Vec<ImpedanceTruth>,
}

/// One EIS frequency point as the virtual potentiostat produced it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImpedanceTruth {
    /// As in [`SampleTruth`]: the loop's trigger edge or `NO_TRIGGER`.
    pub segment: usize,
    /// Point index within the loop (0-based).
    pub index: u64,
    /// True instant the point ended (its package became due), s.
    pub t_true_s: f64,
    pub f_Hz: f64,
    /// Stage (= film) temperature the impedance was evaluated at, K.
    pub T_K: f64,
    /// The dc potential of the loop, V.
    pub E_dc_V: f64,
    /// Noiseless small-signal impedance of the cell, Ohm.
    pub Z_re_ohm: f64,
    pub Z_im_ohm: f64,
}

/// When one emitted sample was really taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleTruth {
    /// Index into [`TruthLog::triggers_s`] of the edge that started the loop
    /// or acquisition, or [`SampleTruth::NO_TRIGGER`].
    pub segment: usize,
    /// Sample index within the loop / acquisition (0-based).
    pub index: u64,
    pub t_true_s: f64,
}

impl SampleTruth {
    /// Segment of samples not started by an edge on the trigger line (a
    /// potentiostat loop without a preceding `set_gpio` edge; a digitizer
    /// started by `*TRG` or `TRIG:SOUR IMM`).
    pub const NO_TRIGGER: usize = usize::MAX;
}

/// A log of at most `cap` entries that keeps every `stride`-th one pushed:
/// when full it drops every other entry it holds and doubles the stride,
/// so what it keeps stays evenly spread over everything pushed.
#[derive(Debug)]
struct Thinned<T> {
    kept: Vec<T>,
    cap: usize,
    stride: u64,
    pushed: u64,
}

impl<T> Thinned<T> {
    fn new(cap: usize) -> Self {
        Thinned {
            kept: Vec::new(),
            cap: cap.max(2),
            stride: 1,
            pushed: 0,
        }
    }

    fn push(&mut self, v: T) {
        if self.pushed.is_multiple_of(self.stride) {
            if self.kept.len() >= self.cap {
                let mut i = 0;
                self.kept.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            // After thinning, this push may be off the new grid.
            if self.pushed.is_multiple_of(self.stride) {
                self.kept.push(v);
            }
        }
        self.pushed += 1;
    }
}

impl<T> Default for Thinned<T> {
    fn default() -> Self {
        Thinned::new(MAX_SAMPLES_KEPT)
    }
}

/// The latest [`MAX_LINES`] wire lines and how many were dropped before.
#[derive(Debug, Default)]
struct Lines {
    kept: std::collections::VecDeque<LogEntry>,
    dropped: u64,
}

/// Lines and sample instants, appended by the emulator threads.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    lines: Mutex<Lines>,
    potentiostat: Mutex<Thinned<SampleTruth>>,
    deflection: Mutex<Thinned<SampleTruth>>,
    impedance: Mutex<Vec<ImpedanceTruth>>,
}

/// Locks a mutex, recovering from a thread that panicked while holding it:
/// the bench's state stays usable for the other instruments and for the
/// post-mortem in a failing test.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Journal {
    pub(crate) fn line(&self, device: Device, direction: Direction, line: String, t_true_s: f64) {
        let mut lines = lock(&self.lines);
        if lines.kept.len() >= MAX_LINES {
            lines.kept.pop_front();
            lines.dropped += 1;
        }
        lines.kept.push_back(LogEntry {
            device,
            direction,
            line,
            t_true_s,
        });
    }

    pub(crate) fn sample(&self, device: Device, sample: SampleTruth) {
        match device {
            Device::Potentiostat => lock(&self.potentiostat).push(sample),
            Device::Deflection => lock(&self.deflection).push(sample),
            // sim-emu: the lock-in and the temperature controller time no
            // samples the truth log tracks.
            Device::LockIn | Device::TemperatureStage => {}
        }
    }

    pub(crate) fn impedance_point(&self, point: ImpedanceTruth) {
        lock(&self.impedance).push(point);
    }

    /// Empties every log and frees its memory (up to ~110 MB once an
    /// hours-long run has filled them).
    pub(crate) fn release(&self) {
        *lock(&self.lines) = Lines::default();
        *lock(&self.potentiostat) = Thinned::default();
        *lock(&self.deflection) = Thinned::default();
        *lock(&self.impedance) = Vec::new();
    }

    pub(crate) fn lines(&self) -> Vec<LogEntry> {
        lock(&self.lines).kept.iter().cloned().collect()
    }

    /// Among the kept lines (the latest [`MAX_LINES`]).
    pub(crate) fn received(&self, device: Device, needle: &str) -> bool {
        lock(&self.lines).kept.iter().any(|e| {
            e.device == device && e.direction == Direction::Received && e.line.contains(needle)
        })
    }

    pub(crate) fn truth(&self, triggers_s: Vec<f64>) -> TruthLog {
        let (potentiostat, potentiostat_stride) = {
            let p = lock(&self.potentiostat);
            (p.kept.clone(), p.stride)
        };
        let (deflection, deflection_stride) = {
            let d = lock(&self.deflection);
            (d.kept.clone(), d.stride)
        };
        TruthLog {
            triggers_s,
            potentiostat,
            deflection,
            potentiostat_stride,
            deflection_stride,
            lines_dropped: lock(&self.lines).dropped,
            impedance: lock(&self.impedance).clone(),
        }
    }
}

/// `[   12.345 s] potentiostat <- cell_off` (`<-` received from the host,
/// `->` sent to it), for `vegard sim`'s human output.
impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dev = match self.device {
            Device::Potentiostat => "potentiostat",
            Device::Deflection => "deflection  ",
            Device::LockIn => "lock-in     ",
            Device::TemperatureStage => "temperature ",
        };
        let arrow = match self.direction {
            Direction::Received => "<-",
            Direction::Sent => "->",
        };
        write!(f, "[{:>10.3} s] {dev} {arrow} {}", self.t_true_s, self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sample_log_thins_to_an_even_grid_of_exact_entries() {
        let mut t = Thinned::new(8);
        for i in 0..100u64 {
            t.push(i);
        }
        // 100 pushes into 8 slots: stride 16, entries 0, 16, ..., 96.
        assert_eq!(t.stride, 16);
        assert_eq!(t.kept, vec![0, 16, 32, 48, 64, 80, 96]);
        assert!(t.kept.len() <= 8);
        let mut small = Thinned::new(8);
        for i in 0..8u64 {
            small.push(i);
        }
        assert_eq!((small.stride, small.kept.len()), (1, 8), "nothing thinned");
    }

    #[test]
    fn the_line_log_keeps_the_latest_lines() {
        let j = Journal::default();
        for i in 0..(MAX_LINES + 5) {
            j.line(
                Device::Deflection,
                Direction::Received,
                format!("L{i}"),
                0.0,
            );
        }
        let lines = j.lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0].line, "L5");
        assert!(j.received(Device::Deflection, &format!("L{}", MAX_LINES + 4)));
        assert_eq!(j.truth(Vec::new()).lines_dropped, 5);
    }

    #[test]
    fn a_released_journal_is_empty_and_keeps_recording() {
        let j = Journal::default();
        for i in 0..1000u64 {
            let s = SampleTruth {
                segment: 0,
                index: i,
                t_true_s: i as f64 * 1e-3,
            };
            j.sample(Device::Deflection, s);
            j.sample(Device::Potentiostat, s);
            j.line(Device::Deflection, Direction::Sent, format!("{i}"), 0.0);
        }
        j.release();
        let t = j.truth(Vec::new());
        assert!(t.deflection.is_empty() && t.potentiostat.is_empty());
        assert!(j.lines().is_empty());
        assert_eq!(lock(&j.deflection).kept.capacity(), 0, "memory freed");
        j.sample(
            Device::Deflection,
            SampleTruth {
                segment: 1,
                index: 0,
                t_true_s: 2.0,
            },
        );
        assert_eq!(j.truth(Vec::new()).deflection.len(), 1);
    }
}
