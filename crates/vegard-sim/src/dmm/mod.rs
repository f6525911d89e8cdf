//! The SCPI digitizing multimeter emulator (Keysight 34465A subset) on a
//! loopback TCP socket.
//!
//! Owns: the TCP listener and one thread per connection, the meter's
//! settings, its acquisition state machine (idle -> waiting for trigger ->
//! sampling on its own timebase), its reading memory and its error queue.
//! Readings are produced lazily: whenever a query needs them (and on the
//! bench's tick) every reading whose true instant has passed is taken from
//! the lever through the world's history, so the meter never reports a
//! sample from the future.

mod commands;

use crate::SimError;
use crate::bench::Shared;
use crate::clock::DeviceClock;
use crate::journal::{Device, Direction, SampleTruth, lock};
use crate::line_server::write_patiently;
use scpi::error::{Error, ErrorCode};
use scpi::prelude::Context;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use vegard_core::keysight_34465a::QUES_MEMORY_OVERFLOW;
use vegard_recipe::SimParams;

/// Poll period of the accept loop and the connection reads, wall time:
/// bounds how long a shutdown waits for them.
const POLL: Duration = Duration::from_millis(20);
/// Wall-time pause between two looks at an acquisition a query waits for.
const WAIT_POLL: Duration = Duration::from_millis(2);
const STREAM_JITTER: u64 = 0x444d_4d00_0000_0001;
/// Reading memory of the meter (no MEM option, as `*OPT?` says); when
/// full the oldest reading is overwritten and the Questionable Data
/// register's bit 14 is set.
pub(crate) const MEMORY_READINGS: usize = vegard_core::keysight_34465a::MEMORY_READINGS;
/// Largest `SAMP:COUN` (shared with the driver and recipe validation).
pub(crate) const MAX_SAMPLE_COUNT: u64 = vegard_core::keysight_34465a::SAMPLE_COUNT_MAX;
/// Largest finite `TRIG:COUN` of the 34465A.
pub(crate) const MAX_TRIGGER_COUNT: u64 = vegard_core::keysight_34465a::TRIGGER_COUNT_MAX;
/// Depth of the SCPI error queue; a further error replaces the last entry
/// with -350 "Queue overflow", as SCPI-99 prescribes.
const ERROR_QUEUE_DEPTH: usize = 20;
/// DC voltage ranges, V; a reading beyond 120 % of the range is an overload.
pub(crate) const RANGES_V: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
const OVERRANGE: f64 = 1.2;
/// The meter's overload reading (also its "infinite" in `TRIG:COUN?`).
pub(crate) const OVERLOAD: f64 = 9.9e37;
/// Mains frequency the NPLC setting refers to, Hz (`SYST:LFR?`).
pub(crate) const MAINS_HZ: f64 = 50.0;
/// The 34465A's integration times in power-line cycles (with the DIG
/// option, which firmware 3 enables), and the resolution each gives as a
/// fraction of the range (Truevolt resolution table).
pub(crate) const NPLC_VALUES: [f64; 9] = [0.001, 0.002, 0.006, 0.02, 0.06, 0.2, 1.0, 10.0, 100.0];
pub(crate) const RESOLUTION_PER_RANGE: [f64; 9] = [
    30e-6, 15e-6, 6e-6, 3e-6, 1.5e-6, 0.7e-6, 0.3e-6, 0.1e-6, 0.03e-6,
];
/// Longest `SAMP:TIM` / `TRIG:DEL`, s.
pub(crate) const MAX_TIME_S: f64 = 3600.0;
/// Level-trigger search step: the input is compared with `TRIG:LEV` at
/// least this often (and at most once per integration time), s.
const LEVEL_STEP_MAX_S: f64 = 1e-3;
/// Upper bound of level comparisons per update, so a long unattended
/// level-triggered arm cannot stall the bench's tick.
const LEVEL_STEPS_PER_UPDATE: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrigSource {
    Immediate,
    Bus,
    External,
    /// Level triggering on the input (`TRIG:SOUR INT`, DIG option).
    Internal,
}

/// Settings that `*RST` restores (values as after the meter's `*RST`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Config {
    /// `None` = autorange.
    pub range_V: Option<f64>,
    /// `VOLT:APER` value, kept also while aperture mode is off.
    pub aperture_s: f64,
    /// Integration time set in seconds (`VOLT:APER`) rather than in power
    /// line cycles (`VOLT:NPLC`); the last of the two sent wins.
    pub aperture_enabled: bool,
    pub nplc: f64,
    /// Auto-zero: a zero measurement after every reading, which doubles the
    /// time a reading takes.
    pub autozero: bool,
    /// `VOLT:IMP:AUTO`: >10 GOhm input on the low ranges; the photodetector
    /// output has a low source impedance, so readings do not change.
    pub impedance_auto: bool,
    pub trig_source: TrigSource,
    pub trig_slope_rising: bool,
    pub trig_delay_s: f64,
    pub trig_delay_auto: bool,
    pub trig_level_V: f64,
    /// `None` = `INFinity`.
    pub trig_count: Option<u64>,
    pub sample_timer: bool,
    pub samp_tim_s: f64,
    pub samp_count: u64,
    /// `SAMP:COUN:PRET`: of the `samp_count` readings, how many may come
    /// from before the trigger (the meter digitizes while it waits).
    pub pretrigger: u64,
    pub ascii: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            range_V: None,
            aperture_s: 0.1,
            aperture_enabled: false,
            nplc: 10.0,
            autozero: true,
            impedance_auto: false,
            trig_source: TrigSource::Immediate,
            trig_slope_rising: false,
            trig_delay_s: 0.0,
            trig_delay_auto: true,
            trig_level_V: 0.0,
            trig_count: Some(1),
            sample_timer: false,
            samp_tim_s: 1.0,
            samp_count: 1,
            pretrigger: 0,
            ascii: true,
        }
    }
}

impl Config {
    /// Integration time of one reading, s.
    pub(crate) fn integration_s(&self) -> f64 {
        if self.aperture_enabled {
            self.aperture_s
        } else {
            self.nplc / MAINS_HZ
        }
    }

    /// The recommended minimum sample interval (`SAMP:TIM? MIN`): the
    /// integration time, twice with auto-zero (the zero reading takes as
    /// long), plus one more for a range change per reading with autorange;
    /// on the meter's 1 us grid.
    pub(crate) fn min_interval_s(&self) -> f64 {
        let mut t = self.integration_s();
        if self.autozero {
            t += self.integration_s();
        }
        if self.range_V.is_none() {
            t += self.integration_s();
        }
        (t * 1e6 - 1e-6).ceil() / 1e6
    }

    /// Trigger delay in use: with `TRIG:DEL:AUTO ON` the automatic DC-volts
    /// delay of the meter (160 us from 1 PLC up, 130 us at 0.06-0.2 PLC,
    /// 100 us below).
    pub(crate) fn delay_s(&self) -> f64 {
        if !self.trig_delay_auto {
            return self.trig_delay_s;
        }
        let plc = self.integration_s() * MAINS_HZ;
        if plc >= 1.0 - 1e-9 {
            160e-6
        } else if plc >= 0.06 - 1e-9 {
            130e-6
        } else {
            100e-6
        }
    }

    /// Resolution of a reading on `range_V` with the present integration
    /// time: the resolution-table entry of the longest NPLC not above it.
    pub(crate) fn resolution_V(&self, range_V: f64) -> f64 {
        let plc = self.integration_s() * MAINS_HZ;
        let i = NPLC_VALUES
            .iter()
            .rposition(|&n| n <= plc * (1.0 + 1e-9))
            .unwrap_or(0);
        RESOLUTION_PER_RANGE[i] * range_V
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Acquisition {
    Idle,
    /// Waiting for the trigger (after `INIT`, or between the bursts of a
    /// trigger count above 1).
    Armed(Arm),
    Sampling(Sampling),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Arm {
    /// External trigger: index of the first edge on the line that counts
    /// (edges before `INIT` do not).
    first_edge: usize,
    /// Armed at: the trigger cannot come before this instant, nor a
    /// pretrigger reading.
    since_true_s: f64,
    /// Level trigger: how far the input has been compared with the level,
    /// and the input there, once read.
    searched_true_s: f64,
    last_V: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sampling {
    trigger_true_s: f64,
    segment: usize,
    /// Readings from before the trigger at the start of the burst (0 ..
    /// `pretrigger`: only as many as fit between arming and the trigger).
    pre: u64,
    next_index: u64,
    /// Journal index of reading 0 (readings not tied to an edge are
    /// numbered on from one burst to the next).
    index_base: u64,
    count: u64,
    delay_s: f64,
    interval_s: f64,
    /// True instant of reading `next_index`, once drawn (jitter is drawn
    /// once per reading).
    next_true_s: Option<f64>,
}

/// The meter's state, one per bench, shared by all connections.
pub(crate) struct Dmm {
    shared: Arc<Shared>,
    clock: DeviceClock,
    pub(crate) cfg: Config,
    acquisition: Acquisition,
    /// Bursts finished since `INIT` (compared with `TRIG:COUN`).
    bursts_done: u64,
    /// Readings taken without an edge so far (journal numbering).
    untriggered_readings: u64,
    /// An acquisition was started since `*RST` / `CONF`: `FETC?` has data
    /// to wait for or return.
    initiated: bool,
    /// The range autorange chose for the last reading.
    auto_range_V: f64,
    readings: VecDeque<f64>,
    /// Questionable Data event register (latched; read and cleared by
    /// `STAT:QUES?`, cleared by `*CLS`).
    pub(crate) ques_event: u16,
    /// Questionable Data condition register: bit 14 while readings lost
    /// since the memory was last cleared.
    pub(crate) ques_condition: u16,
    errors: VecDeque<Error>,
    esr: u8,
    ese: u8,
    sre: u8,
    pub(crate) display_on: bool,
    pub(crate) display_text: String,
    /// Injected fault `faults.digitizer_stall_*`: (seconds after a
    /// trigger, length), true s; once per bench.
    stall: Option<(f64, f64)>,
    /// True-time window of the stall once it has begun.
    stall_window: Option<(f64, f64)>,
    /// True instant of the first trigger since `INIT` (the stall counts
    /// from it, whatever the blocks after it).
    first_trigger_true_s: Option<f64>,
}

impl Dmm {
    fn new(shared: Arc<Shared>, params: &SimParams) -> Result<Self, SimError> {
        Ok(Dmm {
            shared,
            clock: DeviceClock::new(
                "clocks.deflection",
                &params.clocks.deflection,
                params.seed ^ STREAM_JITTER,
            )?,
            cfg: Config::default(),
            acquisition: Acquisition::Idle,
            bursts_done: 0,
            untriggered_readings: 0,
            initiated: false,
            auto_range_V: 10.0,
            readings: VecDeque::new(),
            ques_event: 0,
            ques_condition: 0,
            errors: VecDeque::new(),
            esr: 0,
            ese: 0,
            sre: 0,
            display_on: true,
            display_text: String::new(),
            stall: params
                .faults
                .digitizer_stall_after_s
                .filter(|_| params.faults.digitizer_stall_s > 0.0)
                .map(|after_s| (after_s, params.faults.digitizer_stall_s)),
            stall_window: None,
            first_trigger_true_s: None,
        })
    }

    pub(crate) fn push_error(&mut self, err: Error) {
        self.esr |= err.esr_mask();
        if self.errors.len() >= ERROR_QUEUE_DEPTH {
            self.errors.pop_back();
            self.errors.push_back(ErrorCode::QueueOverflow.into());
        } else {
            self.errors.push_back(err);
        }
    }

    pub(crate) fn pop_error(&mut self) -> Option<Error> {
        self.errors.pop_front()
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `*RST`: default settings, acquisition stopped, memory cleared.
    pub(crate) fn reset(&mut self) {
        self.cfg = Config::default();
        self.acquisition = Acquisition::Idle;
        self.readings.clear();
        self.initiated = false;
        self.auto_range_V = 10.0;
        self.display_on = true;
        self.display_text.clear();
    }

    /// `CONF:VOLT:DC`: the range, the integration time for the resolution
    /// (10 PLC by default) and the function's defaults for triggering, like
    /// the real meter (trigger source IMM, automatic delay, one trigger of
    /// one sample, sample source IMM). Memory is cleared.
    pub(crate) fn configure_dcv(&mut self, range_V: Option<f64>, nplc: f64) {
        self.acquisition = Acquisition::Idle;
        self.readings.clear();
        self.initiated = false;
        self.cfg.range_V = range_V;
        self.cfg.nplc = nplc;
        self.cfg.aperture_enabled = false;
        self.cfg.trig_source = TrigSource::Immediate;
        self.cfg.trig_delay_auto = true;
        self.cfg.trig_count = Some(1);
        self.cfg.samp_count = 1;
        self.cfg.sample_timer = false;
    }

    pub(crate) fn is_busy(&self) -> bool {
        !matches!(self.acquisition, Acquisition::Idle)
    }

    /// The range in use: the fixed one, or the one autorange last chose.
    pub(crate) fn range_in_use_V(&self) -> f64 {
        self.cfg.range_V.unwrap_or(self.auto_range_V)
    }

    /// `INIT`: clears memory and arms the trigger (or starts at once).
    pub(crate) fn initiate(&mut self) -> Result<(), Error> {
        if self.is_busy() {
            return Err(ErrorCode::InitIgnored.into());
        }
        self.readings.clear();
        self.ques_condition &= !QUES_MEMORY_OVERFLOW;
        self.initiated = true;
        self.bursts_done = 0;
        self.first_trigger_true_s = None;
        let now = self.shared.clock.now_s();
        let first_edge = {
            let world = lock(&self.shared.world);
            if self.cfg.trig_slope_rising {
                world.trigger.rising_s.len()
            } else {
                world.trigger.falling_s.len()
            }
        };
        self.arm(now, first_edge);
        Ok(())
    }

    /// Waits for the next trigger from `since_true_s` on; an immediate
    /// trigger starts the burst at once.
    fn arm(&mut self, since_true_s: f64, first_edge: usize) {
        if self.cfg.trig_source == TrigSource::Immediate {
            self.start_sampling(since_true_s, since_true_s, SampleTruth::NO_TRIGGER);
        } else {
            self.acquisition = Acquisition::Armed(Arm {
                first_edge,
                since_true_s,
                searched_true_s: since_true_s,
                last_V: None,
            });
        }
    }

    /// `*TRG`: starts a burst armed with `TRIG:SOUR BUS`.
    pub(crate) fn bus_trigger(&mut self) -> Result<(), Error> {
        self.update();
        match (self.acquisition, self.cfg.trig_source) {
            (Acquisition::Armed(arm), TrigSource::Bus) => {
                let now = self.shared.clock.now_s().max(arm.since_true_s);
                self.start_sampling(now, arm.since_true_s, SampleTruth::NO_TRIGGER);
                Ok(())
            }
            _ => Err(ErrorCode::TriggerIgnored.into()),
        }
    }

    pub(crate) fn abort(&mut self) {
        self.update();
        self.acquisition = Acquisition::Idle;
    }

    /// A burst on a trigger at `trigger_true_s`, armed since `since_true_s`
    /// (pretrigger readings can only come from after that).
    fn start_sampling(&mut self, trigger_true_s: f64, since_true_s: f64, segment: usize) {
        self.first_trigger_true_s.get_or_insert(trigger_true_s);
        let delay_s = self.cfg.delay_s();
        // Timer pacing: reading j at delay + j * SAMP:TIM. Immediate: one
        // reading after the other, the trigger delay before each.
        let interval_s = if self.cfg.sample_timer {
            self.cfg.samp_tim_s
        } else {
            self.cfg.min_interval_s() + delay_s
        };
        let pretrigger = self
            .cfg
            .pretrigger
            .min(self.cfg.samp_count.saturating_sub(1));
        let waited = ((trigger_true_s - since_true_s) / interval_s).floor();
        let pre = if waited >= 1.0 {
            pretrigger.min(waited as u64)
        } else {
            0
        };
        let index_base = if segment == SampleTruth::NO_TRIGGER {
            self.untriggered_readings + pre
        } else {
            0
        };
        self.acquisition = Acquisition::Sampling(Sampling {
            trigger_true_s,
            segment,
            pre,
            next_index: 0,
            index_base,
            count: pre + self.cfg.samp_count - pretrigger,
            delay_s,
            interval_s,
            next_true_s: None,
        });
    }

    /// Takes every reading whose true instant has passed, and every trigger
    /// that has come. Called before every query that looks at memory, and
    /// on the bench tick.
    pub(crate) fn update(&mut self) {
        let now = self.shared.clock.now_s();
        // Injected stall: the readings stay due and are taken late, from
        // whatever the model still holds for their instants.
        if let (Some((after_s, length_s)), None, Some(first_s)) =
            (self.stall, self.stall_window, self.first_trigger_true_s)
            && matches!(self.acquisition, Acquisition::Sampling(_))
            && now >= first_s + after_s
        {
            self.stall_window = Some((now, now + length_s));
        }
        if self
            .stall_window
            .is_some_and(|(from, until)| now >= from && now < until)
        {
            return;
        }
        let shared = self.shared.clone();
        let mut world = lock(&shared.world);
        loop {
            match self.acquisition {
                Acquisition::Idle => return,
                Acquisition::Armed(mut arm) => match self.cfg.trig_source {
                    TrigSource::External => {
                        let edges = if self.cfg.trig_slope_rising {
                            &world.trigger.rising_s
                        } else {
                            &world.trigger.falling_s
                        };
                        let Some(&t) = edges.get(arm.first_edge) else {
                            return;
                        };
                        // An edge during the previous burst is kept and
                        // acted on when the burst is over.
                        self.start_sampling(
                            t.max(arm.since_true_s),
                            arm.since_true_s,
                            arm.first_edge,
                        );
                    }
                    TrigSource::Internal => {
                        let step_s = self.cfg.integration_s().min(LEVEL_STEP_MAX_S);
                        let level = self.cfg.trig_level_V;
                        let mut last = match arm.last_V {
                            Some(v) => v,
                            None => world.deflection_volts_at(arm.searched_true_s),
                        };
                        let mut hit = None;
                        for _ in 0..LEVEL_STEPS_PER_UPDATE {
                            let t = arm.searched_true_s + step_s;
                            if t > now {
                                break;
                            }
                            let v = world.deflection_volts_at(t);
                            arm.searched_true_s = t;
                            let crossed = if self.cfg.trig_slope_rising {
                                last < level && v >= level
                            } else {
                                last > level && v <= level
                            };
                            last = v;
                            if crossed {
                                hit = Some(t);
                                break;
                            }
                        }
                        arm.last_V = Some(last);
                        match hit {
                            Some(t) => {
                                self.start_sampling(t, arm.since_true_s, SampleTruth::NO_TRIGGER);
                            }
                            None => {
                                self.acquisition = Acquisition::Armed(arm);
                                return;
                            }
                        }
                    }
                    // Immediate never waits; bus waits for `*TRG`.
                    TrigSource::Immediate | TrigSource::Bus => return,
                },
                Acquisition::Sampling(mut s) => {
                    while s.next_index < s.count {
                        let t = match s.next_true_s {
                            Some(t) => t,
                            None => {
                                // Pretrigger readings on the same grid,
                                // ending one interval before the trigger.
                                let device_s = if s.next_index < s.pre {
                                    -((s.pre - s.next_index) as f64) * s.interval_s
                                } else {
                                    s.delay_s + (s.next_index - s.pre) as f64 * s.interval_s
                                };
                                let t = self.clock.event_true_s(s.trigger_true_s, device_s);
                                s.next_true_s = Some(t);
                                t
                            }
                        };
                        if t > now {
                            self.acquisition = Acquisition::Sampling(s);
                            return;
                        }
                        let volts = world.recorded_deflection_volts_at(t);
                        let reading = self.ranged(volts);
                        if self.readings.len() >= MEMORY_READINGS {
                            self.readings.pop_front();
                            self.ques_event |= QUES_MEMORY_OVERFLOW;
                            self.ques_condition |= QUES_MEMORY_OVERFLOW;
                        }
                        self.readings.push_back(reading);
                        // A pretrigger reading belongs to no trigger edge:
                        // the journal numbers it with the untriggered ones,
                        // so index j of an edge stays at edge + j * interval.
                        let truth = if s.next_index < s.pre {
                            self.untriggered_readings += 1;
                            SampleTruth {
                                segment: SampleTruth::NO_TRIGGER,
                                index: self.untriggered_readings - 1,
                                t_true_s: t,
                            }
                        } else {
                            if s.segment == SampleTruth::NO_TRIGGER {
                                self.untriggered_readings += 1;
                            }
                            SampleTruth {
                                segment: s.segment,
                                index: s.index_base + s.next_index - s.pre,
                                t_true_s: t,
                            }
                        };
                        shared.journal.sample(Device::Deflection, truth);
                        s.next_index += 1;
                        s.next_true_s = None;
                    }
                    // Burst over: the next trigger counts from the end of
                    // the last reading.
                    self.bursts_done += 1;
                    let end_s = s.trigger_true_s
                        + s.delay_s
                        + (s.count - s.pre).saturating_sub(1) as f64 * s.interval_s
                        + self.cfg.integration_s();
                    let done = self.cfg.trig_count.is_some_and(|n| self.bursts_done >= n);
                    if done {
                        self.acquisition = Acquisition::Idle;
                        return;
                    }
                    let next_edge = if s.segment == SampleTruth::NO_TRIGGER {
                        0
                    } else {
                        s.segment + 1
                    };
                    self.arm(end_s, next_edge);
                }
            }
        }
    }

    /// The reading as the meter reports it on its range: overloads become
    /// +-9.9E+37. Autorange picks the smallest range that holds it.
    fn ranged(&mut self, volts: f64) -> f64 {
        let range = match self.cfg.range_V {
            Some(r) => r,
            None => {
                let r = RANGES_V
                    .into_iter()
                    .find(|r| volts.abs() <= r * OVERRANGE)
                    .unwrap_or(RANGES_V[RANGES_V.len() - 1]);
                self.auto_range_V = r;
                r
            }
        };
        if volts.abs() > range * OVERRANGE || !volts.is_finite() {
            OVERLOAD.copysign(volts)
        } else {
            volts
        }
    }

    /// `RANG:AUTO ONCE`: the range autorange would pick for the input now,
    /// fixed from then on.
    pub(crate) fn autorange_once(&mut self) {
        let now = self.shared.clock.now_s();
        let volts = lock(&self.shared.world).deflection_volts_at(now);
        let r = RANGES_V
            .into_iter()
            .find(|r| volts.abs() <= r * OVERRANGE)
            .unwrap_or(RANGES_V[RANGES_V.len() - 1]);
        self.auto_range_V = r;
        self.cfg.range_V = Some(r);
    }

    pub(crate) fn points(&mut self) -> usize {
        self.update();
        self.readings.len()
    }

    /// Removes and returns up to `max` readings, oldest first.
    pub(crate) fn take_readings(&mut self, max: Option<usize>) -> Vec<f64> {
        self.update();
        let n = max.unwrap_or(usize::MAX).min(self.readings.len());
        self.readings.drain(..n).collect()
    }

    /// Every reading in memory, oldest first, left in memory (`FETC?`).
    pub(crate) fn all_readings(&mut self) -> Vec<f64> {
        self.update();
        self.readings.iter().copied().collect()
    }

    /// The newest reading (`DATA:LAST?`).
    pub(crate) fn last_reading(&mut self) -> Option<f64> {
        self.update();
        self.readings.back().copied()
    }
}

/// One client's view of the meter: the command tree runs on this, and each
/// handler locks the meter only while it works on it, so a query that waits
/// for an acquisition (`READ?`, `FETC?`) leaves the bench's tick and the
/// other connections free.
pub(crate) struct Session {
    dmm: Arc<Mutex<Dmm>>,
    shared: Arc<Shared>,
    /// The client's socket, to notice a client that hung up while a query
    /// waited for it.
    peer: Option<TcpStream>,
}

impl Session {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Dmm> {
        lock(&self.dmm)
    }

    /// Blocks until the acquisition is over (as `READ?` and `FETC?` do on
    /// the meter), or until `enough` says there is what the query needs.
    /// Gives up with -410 "Query INTERRUPTED" when the client hung up or
    /// the bench shuts down.
    pub(crate) fn wait_until(&self, enough: impl Fn(&mut Dmm) -> bool) -> Result<(), Error> {
        loop {
            {
                let mut dmm = self.lock();
                dmm.update();
                if !dmm.is_busy() || enough(&mut dmm) {
                    return Ok(());
                }
            }
            if self.shared.shutdown.load(Ordering::Relaxed) {
                return Err(ErrorCode::QueryInterrupted.into());
            }
            if let Some(peer) = &self.peer {
                let mut probe = [0u8; 1];
                match peer.peek(&mut probe) {
                    Ok(0) => return Err(ErrorCode::QueryInterrupted.into()),
                    Err(e)
                        if !matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) =>
                    {
                        return Err(ErrorCode::QueryInterrupted.into());
                    }
                    _ => {}
                }
            }
            std::thread::sleep(WAIT_POLL);
        }
    }
}

/// The smallest DC range that holds `volts` (for `CONF:VOLT:DC <expected>`).
pub(crate) fn range_for(volts: f64) -> Option<f64> {
    RANGES_V.into_iter().find(|r| volts.abs() <= *r)
}

/// Keysight's ASCII number format: `+1.23456789012345E-01`.
pub(crate) fn format_number(v: f64) -> String {
    let s = format!("{:+.14E}", v);
    // Rust prints `+1.23456789012345E-1`; the meter pads the exponent.
    match s.split_once('E') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}E{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Keysight's ASCII format of a setting: `+1.00000000E-01`.
pub(crate) fn format_setting(v: f64) -> String {
    let s = format!("{:+.8E}", v);
    match s.split_once('E') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}E{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// The meter as the bench keeps it.
pub(crate) struct Meter {
    pub addr: SocketAddr,
    pub dmm: Arc<Mutex<Dmm>>,
    pub thread: JoinHandle<()>,
}

pub(crate) fn start(shared: Arc<Shared>, params: &SimParams) -> Result<Meter, SimError> {
    let io = |what| move |source| SimError::Io { what, source };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("digitizer listener"))?;
    let addr = listener.local_addr().map_err(io("digitizer listener"))?;
    listener
        .set_nonblocking(true)
        .map_err(io("digitizer listener"))?;
    let dmm = Arc::new(Mutex::new(Dmm::new(shared.clone(), params)?));
    let accept_dmm = dmm.clone();
    let thread = std::thread::Builder::new()
        .name("vegard-sim-dmm".into())
        .spawn(move || accept_loop(&listener, &accept_dmm, &shared))
        .map_err(io("digitizer thread"))?;
    Ok(Meter { addr, dmm, thread })
}

fn accept_loop(listener: &TcpListener, dmm: &Arc<Mutex<Dmm>>, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (dmm, shared) = (dmm.clone(), shared.clone());
                match std::thread::Builder::new()
                    .name("vegard-sim-dmm-conn".into())
                    .spawn(move || serve(stream, dmm, shared))
                {
                    Ok(handle) => connections.push(handle),
                    Err(e) => tracing::warn!("digitizer connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!("digitizer accept: {e}");
                std::thread::sleep(POLL);
            }
        }
        connections.retain(|h| !h.is_finished());
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// One client: read `\n`-terminated program messages, run each through the
/// command tree (each handler locks the meter while it works), write the
/// response (if any). A message that fails sends nothing: the error is in
/// the queue, as on the meter.
fn serve(mut stream: TcpStream, dmm: Arc<Mutex<Dmm>>, shared: Arc<Shared>) {
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)))
        .and_then(|()| stream.set_nodelay(true))
    {
        tracing::warn!("digitizer connection setup: {e}");
        return;
    }
    let mut session = Session {
        dmm,
        shared: shared.clone(),
        peer: stream.try_clone().ok(),
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while !shared.shutdown.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=pos).collect();
            let message = raw[..raw.len() - 1]
                .strip_suffix(b"\r")
                .unwrap_or(&raw[..raw.len() - 1]);
            shared.journal.line(
                Device::Deflection,
                Direction::Received,
                String::from_utf8_lossy(message).into_owned(),
                shared.clock.now_s(),
            );
            let mut response: Vec<u8> = Vec::new();
            let ok = commands::TREE
                .run(
                    message,
                    &mut session,
                    &mut Context::default(),
                    &mut response,
                )
                .is_ok();
            if !ok || response.is_empty() {
                continue;
            }
            if !write_patiently(&mut stream, &response, &shared) {
                return;
            }
            shared.journal.line(
                Device::Deflection,
                Direction::Sent,
                summarise(&response),
                shared.clock.now_s(),
            );
        }
    }
}

/// A reply as a log line: text as is (without the terminator), a binary
/// block as its header and length.
fn summarise(response: &[u8]) -> String {
    let body = response.strip_suffix(b"\n").unwrap_or(response);
    if body.iter().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        return String::from_utf8_lossy(body).into_owned();
    }
    let header_len = match body {
        [b'#', d, ..] if d.is_ascii_digit() => 2 + usize::from(d - b'0'),
        _ => 0,
    };
    let header = String::from_utf8_lossy(&body[..header_len.min(body.len())]);
    format!(
        "{header} <{} bytes binary>",
        body.len() - header_len.min(body.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_numbers_look_like_the_meters() {
        assert_eq!(format_number(0.123456789012345), "+1.23456789012345E-01");
        assert_eq!(format_number(-2.5e-7), "-2.50000000000000E-07");
        assert_eq!(format_number(9.9e37), "+9.90000000000000E+37");
        assert_eq!(format_number(0.0), "+0.00000000000000E+00");
        assert_eq!(format_number(1e-100), "+1.00000000000000E-100");
    }

    #[test]
    fn settings_look_like_the_meters() {
        assert_eq!(format_setting(0.1), "+1.00000000E-01");
        assert_eq!(format_setting(3600.0), "+3.60000000E+03");
        assert_eq!(format_setting(9.9e37), "+9.90000000E+37");
        assert_eq!(format_setting(-1.2), "-1.20000000E+00");
    }

    #[test]
    fn sample_timer_minimum_and_resolution_follow_the_integration_time() {
        let mut cfg = Config {
            range_V: Some(10.0),
            autozero: false,
            ..Config::default()
        };
        assert_eq!(cfg.min_interval_s(), 0.2);
        cfg.autozero = true;
        assert_eq!(cfg.min_interval_s(), 0.4);
        cfg.range_V = None;
        assert_eq!(cfg.min_interval_s(), 0.6);
        cfg.aperture_enabled = true;
        cfg.aperture_s = 1e-3;
        assert_eq!(cfg.min_interval_s(), 3e-3);
        // 1 ms = 0.05 PLC: the resolution of the 0.02 PLC entry, 3 ppm.
        assert!((cfg.resolution_V(10.0) - 3e-5).abs() < 1e-15);
        assert_eq!(cfg.delay_s(), 100e-6);
    }

    #[test]
    fn binary_replies_are_summarised() {
        let mut r = b"#216".to_vec();
        r.extend_from_slice(&1.5f64.to_be_bytes());
        r.extend_from_slice(&(-2.0f64).to_be_bytes());
        r.push(b'\n');
        assert_eq!(summarise(&r), "#216 <16 bytes binary>");
        assert_eq!(summarise(b"+0,\"No error\"\n"), "+0,\"No error\"");
    }

    #[test]
    fn ranges() {
        assert_eq!(range_for(0.05), Some(0.1));
        assert_eq!(range_for(10.0), Some(10.0));
        assert_eq!(range_for(-11.0), Some(100.0));
        assert_eq!(range_for(1001.0), None);
    }
}
