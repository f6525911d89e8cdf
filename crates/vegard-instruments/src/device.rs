//! The device traits the engine programs against, and the values that cross
//! them. Traits are small (probe-rs style): one per instrument role, only
//! what a run needs; drivers live in [`mod@crate::drivers`] and are chosen by
//! name in [`crate::registry`].
//!
//! The potentiostat is blocking (a serial port on its own thread); the
//! deflection digitizer, the lock-in and the temperature stage are async (TCP
//! sockets on the runtime). Async methods return boxed futures so the traits
//! stay dyn-compatible.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use vegard_recipe::{PotentiostatConfig, Step};

use crate::error::InstrumentError;

/// A boxed, sendable future returning `Result<T, InstrumentError>`.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, InstrumentError>> + Send + 'a>>;

/// One measurement the potentiostat runs, in SI units.
#[derive(Debug, Clone, PartialEq)]
pub enum Technique {
    /// Open-circuit potential: cell off, potential sampled every
    /// `sample_interval_s` for `duration_s`.
    Ocp {
        duration_s: f64,
        sample_interval_s: f64,
    },
    /// Cyclic voltammetry begin -> `vertex_V[0]` -> `vertex_V[1]` -> begin,
    /// `cycles` times, one sample per `step_V`.
    Cv {
        begin_V: f64,
        vertex_V: [f64; 2],
        scan_rate_V_per_s: f64,
        step_V: f64,
        cycles: u32,
        /// Largest current range the device may use (and start in), A.
        current_range_A: f64,
    },
    /// Potential steps (chronoamperometry / PITT): `levels_V[i]` held for
    /// `hold_s[i]`, back to back, one sample per `sample_interval_s`.
    Steps {
        levels_V: Vec<f64>,
        hold_s: Vec<f64>,
        sample_interval_s: f64,
        /// Largest current range the device may use (and start in), A.
        current_range_A: f64,
    },
    /// Linear sweep voltammetry: one sweep `begin_V` -> `end_V` (either
    /// direction), one sample per `step_V` (the magnitude of the step).
    Lsv {
        begin_V: f64,
        end_V: f64,
        scan_rate_V_per_s: f64,
        step_V: f64,
        /// Largest current range the device may use (and start in), A.
        current_range_A: f64,
    },
    /// Potentiostatic impedance spectroscopy at `dc_V` with a sine of PEAK
    /// amplitude `amplitude_V`, `n_points` frequencies log-spaced by the
    /// device from `f_start_Hz` to `f_end_Hz` (either direction). The cell is
    /// held at `dc_V` for `equilibrate_s` before the first point.
    Eis {
        dc_V: f64,
        amplitude_V: f64,
        f_start_Hz: f64,
        f_end_Hz: f64,
        n_points: u32,
        equilibrate_s: f64,
        /// Largest current range the device may use (and start in), A.
        current_range_A: f64,
    },
}

impl Technique {
    /// The technique for a recipe step; `None` for steps the potentiostat
    /// has no part in (`wait`, `temperature`, and `sweep`, which the plan
    /// expands). The current range comes from the bench config.
    pub fn from_step(step: &Step, cfg: &PotentiostatConfig) -> Option<Technique> {
        match step {
            Step::Ocp(s) => Some(Technique::Ocp {
                duration_s: s.duration_s,
                sample_interval_s: s.sample_interval_s,
            }),
            Step::Cv(s) => Some(Technique::Cv {
                begin_V: s.begin_V,
                vertex_V: s.vertex_V,
                scan_rate_V_per_s: s.scan_rate_V_per_s,
                step_V: s.step_V,
                cycles: s.cycles,
                current_range_A: cfg.current_range_max_A,
            }),
            Step::Steps(s) => Some(Technique::Steps {
                levels_V: s.levels_V.clone(),
                hold_s: s.hold_s.clone(),
                sample_interval_s: s.sample_interval_s,
                current_range_A: cfg.current_range_max_A,
            }),
            Step::Lsv(s) => Some(Technique::Lsv {
                begin_V: s.begin_V,
                end_V: s.end_V,
                scan_rate_V_per_s: s.scan_rate_V_per_s,
                step_V: s.step_V,
                current_range_A: cfg.current_range_max_A,
            }),
            Step::Eis(s) => Some(Technique::Eis {
                dc_V: s.dc_V,
                amplitude_V: s.amplitude_V,
                f_start_Hz: s.freq_Hz[0],
                f_end_Hz: s.freq_Hz[1],
                n_points: s.n_points(),
                equilibrate_s: s.equilibrate_s,
                current_range_A: cfg.current_range_max_A,
            }),
            // An ESM sweep on the potentiostat is a hold at dc_V, one CA
            // loop per frequency (the lock-in's sine arrives through the
            // external input); the loops mark the frequency changes.
            Step::EsmSweep(s) => {
                let dwell_s = s.dwell_s();
                Some(Technique::Steps {
                    levels_V: vec![s.dc_V; dwell_s.len()],
                    hold_s: dwell_s,
                    sample_interval_s: s.ca_sample_interval_s(),
                    current_range_A: cfg.current_range_max_A,
                })
            }
            Step::Wait(_) | Step::Temperature(_) | Step::Sweep(_) => None,
        }
    }

    /// Device time between two samples, s.
    pub fn sample_interval_s(&self) -> f64 {
        match self {
            Technique::Ocp {
                sample_interval_s, ..
            }
            | Technique::Steps {
                sample_interval_s, ..
            } => *sample_interval_s,
            Technique::Cv {
                scan_rate_V_per_s,
                step_V,
                ..
            }
            | Technique::Lsv {
                scan_rate_V_per_s,
                step_V,
                ..
            } => step_V / scan_rate_V_per_s,
            // EIS has no fixed sample interval (each point lasts a few of its
            // own periods); the first point's device time is the closest
            // meaning: 2 periods + 50 ms, the contract's per-point model.
            Technique::Eis { f_start_Hz, .. } => 2.0 / f_start_Hz + 0.05,
        }
    }
}

/// What the potentiostat reported, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PstatEvent {
    /// The measurement loop started (the trigger edge was just sent).
    Started,
    /// One sample. `index` counts from 0 across all scans of the loop;
    /// `t_dev_s` is the device-clock time since the trigger edge
    /// (`trigger_latency_s + (index + 1) * interval`), since the device sends
    /// no timestamps of its own.
    Sample {
        index: u64,
        t_dev_s: f64,
        E_V: f64,
        I_A: Option<f64>,
        /// OR of the package's status nibbles (0 = OK; see
        /// [`crate::methodscript::status`]).
        status: u8,
        /// 0-based scan (CV cycle) the sample belongs to.
        scan: u32,
    },
    /// One impedance point (EIS). `index` counts frequency points from 0;
    /// Z = `Z_re_ohm` + j `Z_im_ohm`, so `Z_im_ohm` is negative for a
    /// capacitive cell. The device reports no time; points follow each other
    /// as fast as their periods allow.
    Impedance {
        index: u64,
        f_Hz: f64,
        Z_re_ohm: f64,
        Z_im_ohm: f64,
        /// OR of the package's status nibbles (0 = OK).
        status: u8,
    },
    /// Scan `scan` (0-based) is complete.
    ScanEnd { scan: u32 },
    /// The measurement loop ended.
    LoopEnd,
    /// The script finished (the cell is off again); no more events.
    Finished,
    /// The device reported an error; it stops the loop, switches the cell
    /// off and then reports `Finished`.
    DeviceError { code: u16, detail: String },
}

/// A potentiostat. Blocking: the engine runs it on its own thread.
pub trait Potentiostat: Send {
    /// A one-line description: model/firmware and serial number.
    fn identify(&mut self) -> Result<String, InstrumentError>;
    /// Send the technique and wait until the device accepted it. The device
    /// raises its trigger output at the start of the measurement loop.
    fn start(&mut self, technique: &Technique) -> Result<(), InstrumentError> {
        self.start_synced(technique, None)
    }
    /// [`Potentiostat::start`], and with `Some(K)` the trigger output rises
    /// again after every K-th sample, so a digitizer that takes one block
    /// per edge stays pinned to the potentiostat's clock over any step
    /// length (`vegard_core::sync_blocks`).
    fn start_synced(
        &mut self,
        technique: &Technique,
        sync_every_samples: Option<u64>,
    ) -> Result<(), InstrumentError>;
    /// The next event, or `None` if nothing arrived within `timeout`.
    fn read_event(&mut self, timeout: Duration) -> Result<Option<PstatEvent>, InstrumentError>;
    /// A handle that can switch the cell off from any thread, even while
    /// another thread is blocked in [`Potentiostat::read_event`].
    fn safety(&self) -> Result<Box<dyn CellSafety>, InstrumentError>;
}

/// The safe-state path: independent of the reader, usable from a signal
/// handler task or a limit watchdog.
pub trait CellSafety: Send + Sync {
    /// Abort whatever runs and switch the cell off.
    fn switch_off(&self) -> Result<(), InstrumentError>;
}

/// What starts a digitizer acquisition once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitizerTrigger {
    /// Rising edge on the external trigger input (wired to the
    /// potentiostat's trigger output): the shared time origin of a step.
    External,
    /// Start as soon as armed (bench checks; no shared time origin).
    Immediate,
}

/// A timed acquisition: `triggers` bursts of `count` readings, reading j of
/// a burst at its trigger + j * `sample_interval_s` on the digitizer's own
/// timebase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DigitizerSetup {
    pub sample_interval_s: f64,
    /// Readings per trigger (`SAMP:COUN`).
    pub count: u64,
    /// Triggers (blocks) per acquisition (`TRIG:COUN`): the readings of
    /// block b start at the b-th edge.
    pub triggers: u64,
    pub range_V: f64,
    pub trigger: DigitizerTrigger,
}

/// The deflection signal digitizer (photodetector voltage). Async.
pub trait DeflectionProbe: Send {
    /// The instrument's identification string (`*IDN?`).
    fn identify(&mut self) -> BoxFut<'_, String>;
    /// Program a timed acquisition; errors reported by the instrument are
    /// returned, not just logged.
    fn configure(&mut self, setup: DigitizerSetup) -> BoxFut<'_, ()>;
    /// Arm: wait for the trigger. Returns once the instrument processed it.
    fn arm(&mut self) -> BoxFut<'_, ()>;
    /// Readings taken since the last fetch, in volts (removed from the
    /// instrument); empty if none are ready yet.
    fn fetch(&mut self) -> BoxFut<'_, Vec<f64>>;
    /// Stop an acquisition in progress.
    fn abort(&mut self) -> BoxFut<'_, ()>;
    /// Whether readings were lost since `configure`: the reading memory
    /// overflowed (the oldest readings overwritten) because they were not
    /// fetched in time. Readings after a loss are no longer where their
    /// index says.
    fn readings_lost(&mut self) -> BoxFut<'_, bool>;
}

/// One lock-in reading: the demodulated signal at the reference frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockInReading {
    /// In-phase component, V RMS.
    pub x_V_rms: f64,
    /// Quadrature component, V RMS.
    pub y_V_rms: f64,
    /// Reference frequency the reading belongs to, Hz.
    pub f_Hz: f64,
}

/// A lock-in amplifier whose sine output modulates the cell (ESM sweeps)
/// and whose signal input reads the deflection. Async, TCP.
pub trait LockIn: Send {
    /// The instrument's identification string (`*IDN?`).
    fn identify(&mut self) -> BoxFut<'_, String>;
    /// Reference = internal oscillator; sine out at `f_Hz` with this PEAK
    /// amplitude (the driver converts to what the instrument expects).
    fn set_sine(&mut self, f_Hz: f64, amplitude_V_peak: f64) -> BoxFut<'_, ()>;
    /// The nearest available time constant >= `tc_s`; returns the one set, s.
    fn set_time_constant(&mut self, tc_s: f64) -> BoxFut<'_, f64>;
    /// X, Y and the reference frequency, taken at one instant.
    fn read_xy(&mut self) -> BoxFut<'_, LockInReading>;
    /// The smallest sine amplitude the instrument allows (the safe state at
    /// the end of a run: the sine out feeds the potentiostat's input).
    fn sine_off(&mut self) -> BoxFut<'_, ()>;
}

/// A temperature controller driving the cell stage. Async, TCP.
pub trait TemperatureStage: Send {
    /// The instrument's identification string (`*IDN?`).
    fn identify(&mut self) -> BoxFut<'_, String>;
    /// Set the control setpoint and switch the heater on (the configured
    /// heater range); read back so a refused setting is an error.
    fn set_setpoint_K(&mut self, setpoint_K: f64) -> BoxFut<'_, ()>;
    /// The control sensor's temperature, K.
    fn read_K(&mut self) -> BoxFut<'_, f64>;
    /// Heater range 0 (off), verified.
    fn heater_off(&mut self) -> BoxFut<'_, ()>;
}
