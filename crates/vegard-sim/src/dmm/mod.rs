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
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vegard_recipe::SimParams;

/// Poll period of the accept loop and the connection reads, wall time:
/// bounds how long a shutdown waits for them.
const POLL: Duration = Duration::from_millis(20);
const STREAM_JITTER: u64 = 0x444d_4d00_0000_0001;
/// Reading memory of the meter; when full the oldest reading is overwritten.
const MEMORY_READINGS: usize = 1_000_000;
/// Largest `SAMP:COUN`.
pub(crate) const MAX_SAMPLE_COUNT: u64 = 1_000_000;
/// Depth of the SCPI error queue; a further error replaces the last entry
/// with -350 "Queue overflow", as SCPI-99 prescribes.
const ERROR_QUEUE_DEPTH: usize = 20;
/// DC voltage ranges, V; a reading beyond 120 % of the range is an overload.
const RANGES_V: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
const OVERRANGE: f64 = 1.2;
/// The meter's overload reading.
const OVERLOAD: f64 = 9.9e37;
/// Mains frequency the NPLC setting refers to, Hz.
const MAINS_HZ: f64 = 50.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrigSource {
    Immediate,
    Bus,
    External,
}

/// Settings that `*RST` restores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Config {
    /// `None` = autorange.
    pub range_V: Option<f64>,
    /// `Some` when the integration time was set by `VOLT:DC:APER`.
    pub aperture_s: Option<f64>,
    pub nplc: f64,
    pub trig_source: TrigSource,
    pub trig_slope_rising: bool,
    pub trig_delay_s: f64,
    pub sample_timer: bool,
    pub samp_tim_s: f64,
    pub samp_count: u64,
    pub ascii: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            range_V: None,
            aperture_s: None,
            nplc: 10.0,
            trig_source: TrigSource::Immediate,
            trig_slope_rising: true,
            trig_delay_s: 0.0,
            sample_timer: false,
            samp_tim_s: 1e-3,
            samp_count: 1,
            ascii: true,
        }
    }
}

impl Config {
    fn integration_s(&self) -> f64 {
        self.aperture_s.unwrap_or(self.nplc / MAINS_HZ)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Acquisition {
    Idle,
    /// `INIT` done, waiting for the trigger. For an external trigger,
    /// `first_edge` is the index of the first edge on the line that counts
    /// (edges before `INIT` do not).
    Armed {
        first_edge: usize,
    },
    Sampling(Sampling),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sampling {
    trigger_true_s: f64,
    segment: usize,
    next_index: u64,
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
    readings: VecDeque<f64>,
    errors: VecDeque<Error>,
    esr: u8,
    ese: u8,
    sre: u8,
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
            readings: VecDeque::new(),
            errors: VecDeque::new(),
            esr: 0,
            ese: 0,
            sre: 0,
        })
    }

    pub(crate) fn push_error(&mut self, err: Error) {
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

    /// `*RST`: default settings, acquisition stopped, memory cleared.
    pub(crate) fn reset(&mut self) {
        self.cfg = Config::default();
        self.acquisition = Acquisition::Idle;
        self.readings.clear();
    }

    /// `CONF:VOLT:DC`: the function's defaults for triggering, like the real
    /// meter (trigger source IMM, delay 0, one sample, sample source IMM).
    pub(crate) fn configure_dcv(&mut self, range_V: Option<f64>) {
        self.acquisition = Acquisition::Idle;
        self.cfg.range_V = range_V;
        self.cfg.trig_source = TrigSource::Immediate;
        self.cfg.trig_delay_s = 0.0;
        self.cfg.samp_count = 1;
        self.cfg.sample_timer = false;
    }

    pub(crate) fn is_busy(&self) -> bool {
        !matches!(self.acquisition, Acquisition::Idle)
    }

    /// `INIT`: clears memory and arms the trigger (or starts at once).
    pub(crate) fn initiate(&mut self) -> Result<(), Error> {
        if self.is_busy() {
            return Err(ErrorCode::InitIgnored.into());
        }
        self.readings.clear();
        match self.cfg.trig_source {
            TrigSource::Immediate => {
                let now = self.shared.clock.now_s();
                self.start_sampling(now, SampleTruth::NO_TRIGGER);
            }
            TrigSource::Bus => self.acquisition = Acquisition::Armed { first_edge: 0 },
            TrigSource::External => {
                let world = lock(&self.shared.world);
                let first_edge = if self.cfg.trig_slope_rising {
                    world.trigger.rising_s.len()
                } else {
                    world.trigger.falling_s.len()
                };
                drop(world);
                self.acquisition = Acquisition::Armed { first_edge };
            }
        }
        Ok(())
    }

    /// `*TRG`: starts an acquisition armed with `TRIG:SOUR BUS`.
    pub(crate) fn bus_trigger(&mut self) -> Result<(), Error> {
        match (self.acquisition, self.cfg.trig_source) {
            (Acquisition::Armed { .. }, TrigSource::Bus) => {
                let now = self.shared.clock.now_s();
                self.start_sampling(now, SampleTruth::NO_TRIGGER);
                Ok(())
            }
            _ => Err(ErrorCode::TriggerIgnored.into()),
        }
    }

    pub(crate) fn abort(&mut self) {
        self.acquisition = Acquisition::Idle;
    }

    fn start_sampling(&mut self, trigger_true_s: f64, segment: usize) {
        let interval_s = if self.cfg.sample_timer {
            self.cfg.samp_tim_s
        } else {
            self.cfg.integration_s()
        };
        self.acquisition = Acquisition::Sampling(Sampling {
            trigger_true_s,
            segment,
            next_index: 0,
            count: self.cfg.samp_count,
            delay_s: self.cfg.trig_delay_s,
            interval_s,
            next_true_s: None,
        });
    }

    /// Takes every reading whose true instant has passed. Called before
    /// every query that looks at memory, and on the bench tick.
    pub(crate) fn update(&mut self) {
        let now = self.shared.clock.now_s();
        let shared = self.shared.clone();
        let mut world = lock(&shared.world);
        if let Acquisition::Armed { first_edge } = self.acquisition
            && self.cfg.trig_source == TrigSource::External
        {
            let edges = if self.cfg.trig_slope_rising {
                &world.trigger.rising_s
            } else {
                &world.trigger.falling_s
            };
            if let Some(&t) = edges.get(first_edge) {
                self.start_sampling(t, first_edge);
            }
        }
        let Acquisition::Sampling(mut s) = self.acquisition else {
            return;
        };
        while s.next_index < s.count {
            let t = match s.next_true_s {
                Some(t) => t,
                None => {
                    let t = self.clock.event_true_s(
                        s.trigger_true_s,
                        s.delay_s + s.next_index as f64 * s.interval_s,
                    );
                    s.next_true_s = Some(t);
                    t
                }
            };
            if t > now {
                break;
            }
            let volts = world.deflection_volts_at(t);
            if self.readings.len() >= MEMORY_READINGS {
                self.readings.pop_front();
            }
            self.readings.push_back(self.ranged(volts));
            shared.journal.sample(
                Device::Deflection,
                SampleTruth {
                    segment: s.segment,
                    index: s.next_index,
                    t_true_s: t,
                },
            );
            s.next_index += 1;
            s.next_true_s = None;
        }
        self.acquisition = if s.next_index >= s.count {
            Acquisition::Idle
        } else {
            Acquisition::Sampling(s)
        };
    }

    /// The reading as the meter reports it on its range: overloads become
    /// +-9.9E+37.
    fn ranged(&self, volts: f64) -> f64 {
        let range = self.cfg.range_V.unwrap_or_else(|| {
            RANGES_V
                .into_iter()
                .find(|r| volts.abs() <= r * OVERRANGE)
                .unwrap_or(RANGES_V[RANGES_V.len() - 1])
        });
        if volts.abs() > range * OVERRANGE || !volts.is_finite() {
            OVERLOAD.copysign(volts)
        } else {
            volts
        }
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
                    .spawn(move || serve(stream, &dmm, &shared))
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
/// command tree with the meter locked, write the response (if any).
fn serve(mut stream: TcpStream, dmm: &Mutex<Dmm>, shared: &Shared) {
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)))
        .and_then(|()| stream.set_nodelay(true))
    {
        tracing::warn!("digitizer connection setup: {e}");
        return;
    }
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
            let ok = {
                let mut dmm = lock(dmm);
                commands::TREE
                    .run(message, &mut *dmm, &mut Context::default(), &mut response)
                    .is_ok()
            };
            if !ok || response.is_empty() {
                continue;
            }
            if !write_patiently(&mut stream, &response, shared) {
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
