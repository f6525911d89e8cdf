//! What the bench records about itself for tests and reports.
//!
//! Owns: the line log (every line each emulator received and sent, stamped
//! with true time) and the truth log (the true instant of every trigger edge
//! and of every sample an emulator emitted). Drivers never see either; tests
//! and the engine's known-answer checks compare the recorded data with them.

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

/// True instants of everything the instruments timed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TruthLog {
    /// Rising edges on the trigger line, s.
    pub triggers_s: Vec<f64>,
    pub potentiostat: Vec<SampleTruth>,
    pub deflection: Vec<SampleTruth>,
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

/// Lines and sample instants, appended by the emulator threads.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    lines: Mutex<Vec<LogEntry>>,
    potentiostat: Mutex<Vec<SampleTruth>>,
    deflection: Mutex<Vec<SampleTruth>>,
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
        lock(&self.lines).push(LogEntry {
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

    pub(crate) fn lines(&self) -> Vec<LogEntry> {
        lock(&self.lines).clone()
    }

    pub(crate) fn received(&self, device: Device, needle: &str) -> bool {
        lock(&self.lines).iter().any(|e| {
            e.device == device && e.direction == Direction::Received && e.line.contains(needle)
        })
    }

    pub(crate) fn truth(&self, triggers_s: Vec<f64>) -> TruthLog {
        TruthLog {
            triggers_s,
            potentiostat: lock(&self.potentiostat).clone(),
            deflection: lock(&self.deflection).clone(),
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
