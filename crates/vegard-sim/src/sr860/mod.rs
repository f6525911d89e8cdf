//! The SR860 lock-in amplifier emulator (a subset of its remote command set)
//! on a loopback TCP socket.
//!
//! Owns: the lock-in's settings (reference frequency, sine-out level, phase,
//! time constant, slope, sensitivity, synchronous filter), its demodulator
//! and the standard event status register. The sine out drives the
//! potentiostat's external input through the world
//! ([`World::set_ext_sine_now`](crate::world::World)); the signal input reads
//! the photodetector ([`World::deflection_volts_at`](crate::world::World)).
//! The demodulator is fed on a grid of true instants (see [`demod`]) up to
//! now on every bench tick and before every data query, so a reading is
//! always current.
//!
//! Parsing is a small hand parser rather than the `scpi` crate tree the
//! digitizer uses: the SR860's commands are flat mnemonics (`CAPTURESTART`,
//! `OUTP? 0`), some arguments are numbers-or-mnemonics with the SR860's own
//! tables, and the instrument reports errors through the status byte
//! (`*ESR?`) rather than a SCPI-99 error queue, which the crate would impose.

pub(crate) mod capture;
pub(crate) mod demod;

use crate::SimError;
use crate::bench::Shared;
use crate::ieee488::{self, ESR_CME, ESR_EXE, Ieee488Instrument, Ieee488Status};
use crate::journal::{Device, lock};
use crate::line_server::{self, Framing, LineInstrument};
use capture::{Capture, Outputs, rate_max_Hz};
use demod::{Demodulator, sample_interval_s};
use std::f64::consts::SQRT_2;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vegard_recipe::SimParams;

/// `*IDN?` reply.
const IDN: &str = "Stanford_Research_Systems,SR860,SIM00001,v1.51-vegard";
/// Reference frequency limits, Hz (the detection frequency, `HARM` times
/// the reference, is limited to the same maximum).
const F_MIN_HZ: f64 = 1e-3;
const F_MAX_HZ: f64 = 500e3;
/// Sine-out amplitude limits, V rms.
pub(crate) const SLVL_MIN_V: f64 = 1e-9;
pub(crate) const SLVL_MAX_V: f64 = 2.0;
/// Sine-out DC level limits, V.
const SOFF_MAX_V: f64 = 5.0;
/// Phase entry limits, degrees.
const PHAS_MAX_DEG: f64 = 360_000.0;
/// Highest `OFLT` index (30 ks).
pub(crate) const OFLT_MAX: u8 = 21;
/// Highest `SCAL` index (0 = 1 V, 1 = 500 mV, 2 = 200 mV, ... 27 = 1 nV).
const SCAL_MAX: u8 = 27;
/// Highest `HARM`/`HARMDUAL`.
const HARM_MAX: u8 = 99;
/// Voltage input ranges of `IRNG` 0..4, V.
const IRNG_V: [f64; 5] = [1.0, 0.3, 0.1, 0.03, 0.01];
/// Aux output limits, V.
const AUXV_MAX_V: f64 = 10.5;
/// Channel offset limits, percent of full scale.
const COFP_MAX_PCT: f64 = 999.99;
/// Decay time of the input level the signal-strength indicator shows,
/// true s.
const ILVL_DECAY_S: f64 = 0.1;
/// Signal-strength thresholds, fraction of the input range: `ILVL?` is
/// the number of thresholds the input's peak reaches (4 = overload).
const ILVL_THRESHOLDS: [f64; 4] = [0.03, 0.1, 0.3, 1.0];
/// Most samples one update takes; a longer backlog (an unaddressed lock-in
/// coming back to life) skips ahead on the grid, keeping the phase grid.
const MAX_BACKLOG_SAMPLES: f64 = 200_000.0;

/// Time constant of `OFLT` index `i` (0 = 1 us ... 21 = 30 ks), s.
pub(crate) fn time_constant_s(index: u8) -> f64 {
    let mantissa = if index.is_multiple_of(2) { 1.0 } else { 3.0 };
    mantissa * 10f64.powi(i32::from(index / 2) - 6)
}

/// Full scale of `SCAL` index `i` (voltage input), V: 1, 0.5, 0.2, 0.1 ...
pub(crate) fn sensitivity_V(index: u8) -> f64 {
    let mantissa = [1.0, 0.5, 0.2][usize::from(index % 3)];
    mantissa * 10f64.powi(-i32::from(index / 3))
}

/// Equivalent noise bandwidth of the time-constant filter, Hz:
/// `OFSL + 1` cascaded first-order sections of time constant `tc_s` have
/// ENBW 1/(4 tc), 1/(8 tc), 3/(32 tc), 5/(64 tc) (6 ... 24 dB/oct).
pub(crate) fn enbw_Hz(tc_s: f64, ofsl: u8) -> f64 {
    const FACTOR: [f64; 4] = [1.0 / 4.0, 1.0 / 8.0, 3.0 / 32.0, 5.0 / 64.0];
    FACTOR[usize::from(ofsl.min(3))] / tc_s
}

/// Reference source (`RSRC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefSource {
    Internal = 0,
    External = 1,
    Dual = 2,
    Chop = 3,
}

/// Settings that `*RST` restores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    f_Hz: f64,
    slvl_V_rms: f64,
    soff_V: f64,
    phase_deg: f64,
    oflt: u8,
    ofsl: u8,
    scal: u8,
    sync: bool,
    rsrc: RefSource,
    harm: u8,
    harm_dual: u8,
    /// External reference trigger: 0 sine, 1 TTL rising, 2 TTL falling.
    rtrg: u8,
    /// External reference input impedance: 0 50 ohm, 1 1 Mohm.
    refz: u8,
    /// 0 voltage input, 1 current input.
    ivmd: u8,
    /// 0 A, 1 A-B.
    isrc: u8,
    /// 0 AC, 1 DC.
    icpl: u8,
    /// 0 float, 1 ground.
    ignd: u8,
    irng: u8,
    /// Current gain: 0 1 Mohm (1 uA), 1 100 Mohm (10 nA).
    icur: u8,
    advfilt: bool,
    /// `COFP` offsets of X, Y, R, percent of full scale.
    offset_pct: [f64; 3],
    /// `CEXP` expands of X, Y, R: 0 off, 1 x10, 2 x100.
    expand: [u8; 3],
    aux_out_V: [f64; 4],
    /// Sine out DC mode (`REFM`): 0 common, 1 difference.
    refm: u8,
    /// 10 MHz timebase (`TBMODE`): 0 auto, 1 internal.
    tbmode: u8,
    /// `CDSP`: the parameter shown by data channels 1..4.
    cdsp: [u8; 4],
}

impl Default for Settings {
    /// The emulator's power-on state: 1 kHz, the smallest sine level (the
    /// cell is not modulated before a host asks), 100 ms, 12 dB/oct, 1 V,
    /// internal reference, first harmonic, voltage input A, 1 V range.
    fn default() -> Self {
        Settings {
            f_Hz: 1e3,
            slvl_V_rms: SLVL_MIN_V,
            soff_V: 0.0,
            phase_deg: 0.0,
            oflt: 10,
            ofsl: 1,
            scal: 0,
            sync: false,
            rsrc: RefSource::Internal,
            harm: 1,
            harm_dual: 1,
            rtrg: 0,
            refz: 1,
            ivmd: 0,
            isrc: 0,
            icpl: 0,
            ignd: 0,
            irng: 0,
            icur: 0,
            advfilt: false,
            offset_pct: [0.0; 3],
            expand: [0; 3],
            aux_out_V: [0.0; 4],
            refm: 0,
            tbmode: 0,
            cdsp: [0, 1, 2, 3],
        }
    }
}

impl Settings {
    /// The frequency the lock-in detects at, Hz.
    fn detection_Hz(&self) -> f64 {
        self.f_Hz * f64::from(self.harm)
    }

    /// Whether the signal reaches the demodulator with a reference to
    /// lock to: the bench wires the photodetector to voltage input A and
    /// nothing to the reference input or the current input.
    fn demodulates_input(&self) -> bool {
        self.rsrc == RefSource::Internal && self.ivmd == 0
    }
}

/// The lock-in's state, one per bench, shared by all connections.
pub(crate) struct LockIn {
    shared: Arc<Shared>,
    s: Settings,
    demod: Demodulator,
    /// Demodulation starts with the first command a host sends: a lock-in
    /// nobody talks to does not draw on the lever's noise stream, so benches
    /// without one behave exactly as before it existed.
    active: bool,
    next_sample_s: f64,
    sample_dt_s: f64,
    /// Peak of the input, decaying with `ILVL_DECAY_S`, V.
    input_peak_V: f64,
    capture: Capture,
    /// Front panel locked out (`OVRM 0`) or not; stored only.
    front_panel: bool,
    /// Display settings, stored only: blanking (`DBLK`), screen layout
    /// (`DLAY` 0..5), strip chart time per division (`GSPD` 0..16).
    display: [u8; 3],
    status: Ieee488Status,
    /// Injected fault `faults.lockin_switch_delay_s`, in wall time.
    switch_delay: Option<Duration>,
    /// Delay every n-th `FREQ` (`faults.lockin_switch_delay_every`).
    switch_delay_every: u32,
    /// `FREQ` commands received so far.
    freq_commands: u32,
}

impl LockIn {
    fn new(shared: Arc<Shared>, params: &SimParams) -> Self {
        let s = Settings::default();
        let switch_delay = params
            .faults
            .lockin_switch_delay_s
            .map(|d| Duration::from_secs_f64((d / params.time_acceleration).clamp(0.0, 3600.0)));
        LockIn {
            switch_delay,
            switch_delay_every: params.faults.lockin_switch_delay_every.unwrap_or(1).max(1),
            freq_commands: 0,
            shared,
            s,
            demod: Demodulator::new(time_constant_s(s.oflt), usize::from(s.ofsl) + 1, s.sync),
            active: false,
            next_sample_s: 0.0,
            sample_dt_s: sample_interval_s(s.detection_Hz()),
            input_peak_V: 0.0,
            capture: Capture::default(),
            front_panel: true,
            display: [0, 0, 0],
            status: Ieee488Status::new(IDN),
        }
    }

    /// Sends the sine out (frequency, PEAK amplitude) to the world.
    fn drive_sine(&mut self) {
        let mut world = lock(&self.shared.world);
        world.set_ext_sine_now(self.s.f_Hz, self.s.slvl_V_rms * SQRT_2);
    }

    fn reset_settings(&mut self) {
        self.update();
        self.s = Settings::default();
        self.demod = Demodulator::new(
            time_constant_s(self.s.oflt),
            usize::from(self.s.ofsl) + 1,
            self.s.sync,
        );
        self.sample_dt_s = sample_interval_s(self.s.detection_Hz());
        self.capture = Capture::default();
        self.drive_sine();
    }

    /// A new detection frequency (reference or harmonic changed): a new
    /// sample grid, and the synchronous filter starts a new period.
    fn retune(&mut self) {
        self.sample_dt_s = sample_interval_s(self.s.detection_Hz());
        self.demod.restart_period();
    }

    fn now_s(&self) -> f64 {
        lock(&self.shared.world).now_s()
    }

    /// Demodulates every sample whose true instant has passed. Called on the
    /// bench tick and before every data query.
    pub(crate) fn update(&mut self) {
        if !self.active {
            return;
        }
        let shared = self.shared.clone();
        let mut world = lock(&shared.world);
        let now = world.now_s();
        let behind = (now - self.next_sample_s) / self.sample_dt_s;
        if behind > MAX_BACKLOG_SAMPLES {
            self.next_sample_s += (behind - MAX_BACKLOG_SAMPLES).floor() * self.sample_dt_s;
        }
        if self.s.slvl_V_rms < 1e-6 {
            // Parked sine (the host's "off"): nothing drives the cell, so
            // the demodulator would only integrate noise. Skipping it keeps
            // an idle lock-in from costing the bench CPU at high speed-up.
            self.next_sample_s = now;
            drop(world);
            let held = self.raw_outputs();
            self.capture.record_until(now, held);
            return;
        }
        let phase_shift = self.s.phase_deg.to_radians();
        let harm = f64::from(self.s.harm);
        let connected = self.s.demodulates_input();
        let decay = (-self.sample_dt_s / ILVL_DECAY_S).exp();
        while self.next_sample_s <= now {
            let t = self.next_sample_s;
            // Without a reference to lock to, or on the unwired current
            // input, nothing coherent reaches the filters: they decay.
            let v = if connected {
                world.deflection_volts_at(t)
            } else {
                0.0
            };
            self.input_peak_V = v.abs().max(self.input_peak_V * decay);
            let phase = harm * world.ext_sine_phase_rad(t) + phase_shift;
            self.demod.push(v, phase, self.sample_dt_s);
            self.next_sample_s += self.sample_dt_s;
            let held = self.raw_outputs();
            self.capture.record_until(t, held);
        }
    }

    fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.next_sample_s = lock(&self.shared.world).now_s();
        }
    }

    /// X, Y, R, theta of the filters as they stand.
    fn raw_outputs(&self) -> Outputs {
        let (x, y) = self.demod.xy_V_rms();
        Outputs {
            x_V: x,
            y_V: y,
            r_V: x.hypot(y),
            theta_deg: y.atan2(x).to_degrees(),
        }
    }

    /// X, Y, R, theta, current.
    fn outputs(&mut self) -> Outputs {
        self.update();
        self.raw_outputs()
    }

    /// Value of `SNAP?`/`OUTP?` parameter `index` (the SR860's table),
    /// with X, Y, R, theta from one instant (`outputs`).
    fn parameter(&self, index: u8, o: Outputs) -> f64 {
        match index {
            0 => o.x_V,
            1 => o.y_V,
            2 => o.r_V,
            3 => o.theta_deg,
            // Aux inputs: nothing is wired to them on the bench.
            4..=7 => 0.0,
            // X/Y noise: the emulator does not estimate the noise.
            8 | 9 => 0.0,
            10 | 11 => self.s.aux_out_V[usize::from(index - 10)],
            12 => wrap_deg(self.s.phase_deg),
            13 => self.s.slvl_V_rms,
            14 => self.s.soff_V,
            15 => self.s.f_Hz,
            // No external reference is connected.
            _ => 0.0,
        }
    }

    /// `ILVL?`: 0..4 from the input's recent peak against the range
    /// (4: overload).
    fn signal_level(&self) -> u8 {
        if self.s.ivmd != 0 {
            return 0;
        }
        let ratio = self.input_peak_V / IRNG_V[usize::from(self.s.irng)];
        ILVL_THRESHOLDS.iter().filter(|&&t| ratio >= t).count() as u8
    }

    fn tc_s(&self) -> f64 {
        time_constant_s(self.s.oflt)
    }
}

/// Argument `i` of `args`, or a command error.
fn arg(args: &[String], i: usize) -> Result<&str, u8> {
    args.get(i).map(String::as_str).ok_or(ESR_CME)
}

/// A finite number, or a command error (malformed).
fn num(args: &[String], i: usize) -> Result<f64, u8> {
    let v: f64 = arg(args, i)?.parse().map_err(|_| ESR_CME)?;
    if v.is_finite() { Ok(v) } else { Err(ESR_CME) }
}

/// A whole number within 0..=max: malformed is a command error, out of
/// range an execution error.
fn index(args: &[String], i: usize, max: u8) -> Result<u8, u8> {
    let v = num(args, i)?;
    if v.fract() != 0.0 {
        return Err(ESR_CME);
    }
    if v < 0.0 || v > f64::from(max) {
        return Err(ESR_EXE);
    }
    Ok(v as u8)
}

/// A number within lo..=hi (execution error outside).
fn ranged(args: &[String], i: usize, lo: f64, hi: f64) -> Result<f64, u8> {
    let v = num(args, i)?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ESR_EXE)
    }
}

/// An index given as a number or as one of `names` (short or long form,
/// any case), e.g. `RSRC INT` or `RSRC 0`.
fn choice(args: &[String], i: usize, names: &[(&str, &str)]) -> Result<u8, u8> {
    let upper = arg(args, i)?.to_ascii_uppercase();
    if let Some(k) = names
        .iter()
        .position(|(short, long)| upper == *short || upper == *long)
    {
        return u8::try_from(k).map_err(|_| ESR_EXE);
    }
    index(args, i, u8::try_from(names.len() - 1).map_err(|_| ESR_EXE)?)
}

fn int_reply(v: impl ToString) -> Result<Option<String>, u8> {
    Ok(Some(v.to_string()))
}

fn num_reply(v: f64) -> Result<Option<String>, u8> {
    Ok(Some(fmt_num(v)))
}

impl Ieee488Instrument for LockIn {
    /// The SR860 drops the rest of a line after a refused command.
    const STOP_LINE_AT_ERROR: bool = true;

    fn status(&mut self) -> &mut Ieee488Status {
        &mut self.status
    }

    fn reset(&mut self) {
        self.reset_settings();
    }

    fn command(&mut self, head: &str, args: &[String]) -> Result<Option<String>, u8> {
        let a = args;
        match head {
            // --- Reference and sine out ---
            "FREQ" | "FREQINT" => {
                let f = ranged(a, 0, F_MIN_HZ, F_MAX_HZ)?;
                if f * f64::from(self.s.harm) > F_MAX_HZ {
                    return Err(ESR_EXE);
                }
                self.update();
                self.s.f_Hz = f;
                self.retune();
                self.drive_sine();
                Ok(None)
            }
            "FREQ?" | "FREQINT?" => num_reply(self.s.f_Hz),
            "FREQEXT?" => num_reply(0.0),
            "FREQDET?" => num_reply(if self.s.rsrc == RefSource::Internal {
                self.s.detection_Hz()
            } else {
                0.0
            }),
            "HARM" => {
                let h = index(a, 0, HARM_MAX)?;
                if h == 0 || self.s.f_Hz * f64::from(h) > F_MAX_HZ {
                    return Err(ESR_EXE);
                }
                self.update();
                self.s.harm = h;
                self.retune();
                Ok(None)
            }
            "HARM?" => int_reply(self.s.harm),
            "HARMDUAL" => {
                let h = index(a, 0, HARM_MAX)?;
                if h == 0 {
                    return Err(ESR_EXE);
                }
                self.s.harm_dual = h;
                Ok(None)
            }
            "HARMDUAL?" => int_reply(self.s.harm_dual),
            "RSRC" => {
                let r = choice(
                    a,
                    0,
                    &[
                        ("INT", "INTERNAL"),
                        ("EXT", "EXTERNAL"),
                        ("DUAL", "DUAL"),
                        ("CHOP", "CHOP"),
                    ],
                )?;
                self.update();
                self.s.rsrc = match r {
                    0 => RefSource::Internal,
                    1 => RefSource::External,
                    2 => RefSource::Dual,
                    _ => RefSource::Chop,
                };
                self.retune();
                Ok(None)
            }
            "RSRC?" => int_reply(self.s.rsrc as u8),
            "RTRG" => {
                self.s.rtrg = choice(
                    a,
                    0,
                    &[("SIN", "SINE"), ("POS", "POSTTL"), ("NEG", "NEGTTL")],
                )?;
                Ok(None)
            }
            "RTRG?" => int_reply(self.s.rtrg),
            "REFZ" => {
                self.s.refz = choice(a, 0, &[("50", "50OHMS"), ("1M", "1MEG")])?;
                Ok(None)
            }
            "REFZ?" => int_reply(self.s.refz),
            "SLVL" => {
                let v = ranged(a, 0, SLVL_MIN_V, SLVL_MAX_V)?;
                self.update();
                self.s.slvl_V_rms = v;
                self.drive_sine();
                Ok(None)
            }
            "SLVL?" => num_reply(self.s.slvl_V_rms),
            "SOFF" => {
                self.s.soff_V = ranged(a, 0, -SOFF_MAX_V, SOFF_MAX_V)?;
                Ok(None)
            }
            "SOFF?" => num_reply(self.s.soff_V),
            "PHAS" => {
                let p = ranged(a, 0, -PHAS_MAX_DEG, PHAS_MAX_DEG)?;
                self.update();
                self.s.phase_deg = p;
                Ok(None)
            }
            "PHAS?" => num_reply(wrap_deg(self.s.phase_deg)),
            "REFM" => {
                self.s.refm = choice(a, 0, &[("COM", "COMMON"), ("DIF", "DIFFERENCE")])?;
                Ok(None)
            }
            "REFM?" => int_reply(self.s.refm),
            "TBMODE" => {
                self.s.tbmode = choice(a, 0, &[("AUTO", "AUTO"), ("INT", "INTERNAL")])?;
                Ok(None)
            }
            "TBMODE?" => int_reply(self.s.tbmode),
            // Timebase in use: 1 internal (no external 10 MHz is wired).
            "TBSTAT?" => int_reply(1),
            "APHS" => {
                // Auto phase: shift the reference so that theta reads 0.
                let o = self.outputs();
                self.s.phase_deg = wrap_deg(self.s.phase_deg + o.theta_deg);
                Ok(None)
            }
            "TRIG" => {
                let now_s = self.now_s();
                let o = self.outputs();
                self.capture.trigger(now_s, o);
                Ok(None)
            }
            // --- Signal input ---
            "IVMD" => {
                self.update();
                self.s.ivmd = choice(a, 0, &[("VOLT", "VOLTAGE"), ("CURR", "CURRENT")])?;
                Ok(None)
            }
            "IVMD?" => int_reply(self.s.ivmd),
            "ISRC" => {
                self.s.isrc = choice(a, 0, &[("A", "A"), ("A-B", "AMB")])?;
                Ok(None)
            }
            "ISRC?" => int_reply(self.s.isrc),
            "ICPL" => {
                self.s.icpl = choice(a, 0, &[("AC", "AC"), ("DC", "DC")])?;
                Ok(None)
            }
            "ICPL?" => int_reply(self.s.icpl),
            "IGND" => {
                self.s.ignd = choice(a, 0, &[("FLO", "FLOAT"), ("GND", "GROUND")])?;
                Ok(None)
            }
            "IGND?" => int_reply(self.s.ignd),
            "IRNG" => {
                self.s.irng = index(a, 0, 4)?;
                Ok(None)
            }
            "IRNG?" => int_reply(self.s.irng),
            "ICUR" => {
                self.s.icur = choice(a, 0, &[("1MEG", "1MEG"), ("100MEG", "100MEG")])?;
                Ok(None)
            }
            "ICUR?" => int_reply(self.s.icur),
            "ILVL?" => {
                self.update();
                int_reply(self.signal_level())
            }
            "ARNG" => {
                // Auto range: the smallest input range above the peak.
                self.update();
                let peak = self.input_peak_V;
                let fits = IRNG_V.iter().rposition(|&r| peak < r).unwrap_or(0);
                self.s.irng = u8::try_from(fits).map_err(|_| ESR_EXE)?;
                Ok(None)
            }
            // --- Filters and gain ---
            "OFLT" => {
                let i = index(a, 0, OFLT_MAX)?;
                self.update();
                self.s.oflt = i;
                self.demod.set_time_constant_s(time_constant_s(i));
                Ok(None)
            }
            "OFLT?" => int_reply(self.s.oflt),
            "OFSL" => {
                let i = index(a, 0, 3)?;
                self.update();
                self.s.ofsl = i;
                self.demod.set_stages(usize::from(i) + 1);
                Ok(None)
            }
            "OFSL?" => int_reply(self.s.ofsl),
            "SYNC" => {
                let i = choice(a, 0, &[("OFF", "OFF"), ("ON", "ON")])?;
                self.update();
                self.s.sync = i == 1;
                self.demod.set_sync(self.s.sync);
                Ok(None)
            }
            "SYNC?" => int_reply(u8::from(self.s.sync)),
            "ADVFILT" => {
                self.s.advfilt = choice(a, 0, &[("OFF", "OFF"), ("ON", "ON")])? == 1;
                Ok(None)
            }
            "ADVFILT?" => int_reply(u8::from(self.s.advfilt)),
            "ENBW?" => num_reply(enbw_Hz(self.tc_s(), self.s.ofsl)),
            "SCAL" => {
                self.s.scal = index(a, 0, SCAL_MAX)?;
                Ok(None)
            }
            "SCAL?" => int_reply(self.s.scal),
            "ASCL" => {
                // Auto scale: the most sensitive full scale above R.
                let r = self.outputs().r_V;
                let best = (0..=SCAL_MAX)
                    .rev()
                    .find(|&i| sensitivity_V(i) > r)
                    .unwrap_or(0);
                self.s.scal = best;
                Ok(None)
            }
            // --- Channel offsets and expands (X, Y, R) ---
            "COFP" => {
                let i = usize::from(index(a, 0, 2)?);
                self.s.offset_pct[i] = ranged(a, 1, -COFP_MAX_PCT, COFP_MAX_PCT)?;
                Ok(None)
            }
            "COFP?" => num_reply(self.s.offset_pct[usize::from(index(a, 0, 2)?)]),
            "COFA" => {
                // Auto offset: the offset that brings the output to zero.
                let i = index(a, 0, 2)?;
                let now = self.outputs();
                let value = self.parameter(i, now);
                let pct = 100.0 * value / sensitivity_V(self.s.scal);
                self.s.offset_pct[usize::from(i)] = pct.clamp(-COFP_MAX_PCT, COFP_MAX_PCT);
                Ok(None)
            }
            "CEXP" => {
                let i = usize::from(index(a, 0, 2)?);
                self.s.expand[i] =
                    choice(a, 1, &[("OFF", "OFF"), ("X10", "X10"), ("X100", "X100")])?;
                Ok(None)
            }
            "CEXP?" => int_reply(self.s.expand[usize::from(index(a, 0, 2)?)]),
            // --- Aux inputs and outputs ---
            "OAUX?" => {
                index(a, 0, 3)?;
                num_reply(0.0)
            }
            "AUXV" => {
                let i = usize::from(index(a, 0, 3)?);
                self.s.aux_out_V[i] = ranged(a, 1, -AUXV_MAX_V, AUXV_MAX_V)?;
                Ok(None)
            }
            "AUXV?" => num_reply(self.s.aux_out_V[usize::from(index(a, 0, 3)?)]),
            // --- Outputs ---
            "OUTP?" => {
                let i = output_index(arg(a, 0)?, 3)?;
                let now = self.outputs();
                num_reply(self.parameter(i, now))
            }
            "SNAP?" => {
                if !(2..=3).contains(&a.len()) {
                    return Err(ESR_CME);
                }
                let indices = a
                    .iter()
                    .map(|x| output_index(x, 16))
                    .collect::<Result<Vec<u8>, u8>>()?;
                // One snapshot: every value from the same instant.
                let now = self.outputs();
                let values: Vec<String> = indices
                    .into_iter()
                    .map(|i| fmt_num(self.parameter(i, now)))
                    .collect();
                Ok(Some(values.join(",")))
            }
            "CDSP" => {
                let j = usize::from(index(a, 0, 3)?);
                self.s.cdsp[j] = output_index(arg(a, 1)?, 16)?;
                Ok(None)
            }
            "CDSP?" => int_reply(self.s.cdsp[usize::from(index(a, 0, 3)?)]),
            "SNAPD?" => {
                let now = self.outputs();
                let values: Vec<String> = self
                    .s
                    .cdsp
                    .iter()
                    .map(|&i| fmt_num(self.parameter(i, now)))
                    .collect();
                Ok(Some(values.join(",")))
            }
            // --- Capture buffer ---
            "CAPTURELEN" => {
                self.capture.set_len_kB(num(a, 0)?)?;
                Ok(None)
            }
            "CAPTURELEN?" => int_reply(self.capture.len_kB()),
            "CAPTURECFG" => {
                self.capture.set_cfg(arg(a, 0)?)?;
                Ok(None)
            }
            "CAPTURECFG?" => int_reply(self.capture.cfg()),
            "CAPTURERATEMAX?" => num_reply(rate_max_Hz(self.tc_s())),
            "CAPTURERATE" => {
                self.capture.set_rate_n(num(a, 0)?)?;
                Ok(None)
            }
            "CAPTURERATE?" => num_reply(self.capture.rate_Hz(rate_max_Hz(self.tc_s()))),
            "CAPTURESTART" => {
                self.update();
                let now_s = self.now_s();
                let max = rate_max_Hz(self.tc_s());
                self.capture.start(a, now_s, max)?;
                Ok(None)
            }
            "CAPTURESTOP" => {
                self.update();
                self.capture.stop();
                Ok(None)
            }
            "CAPTURESTAT?" => {
                self.update();
                int_reply(self.capture.status())
            }
            "CAPTUREBYTES?" => {
                self.update();
                int_reply(self.capture.bytes())
            }
            "CAPTUREPROG?" => int_reply(self.capture.progress_kB()?),
            "CAPTUREVAL?" => {
                self.update();
                let values = self.capture.value(num(a, 0)?)?;
                Ok(Some(
                    values
                        .into_iter()
                        .map(fmt_num)
                        .collect::<Vec<_>>()
                        .join(","),
                ))
            }
            // --- Interface ---
            "OVRM" => {
                self.front_panel = index(a, 0, 1)? == 1;
                Ok(None)
            }
            "OVRM?" => int_reply(u8::from(self.front_panel)),
            // --- Display (stored: the emulator has no screen) ---
            "DBLK" | "DLAY" | "GSPD" => {
                let (slot, max) = match head {
                    "DBLK" => (0, 1),
                    "DLAY" => (1, 5),
                    _ => (2, 16),
                };
                self.display[slot] = index(a, 0, max)?;
                Ok(None)
            }
            "DBLK?" => int_reply(self.display[0]),
            "DLAY?" => int_reply(self.display[1]),
            "GSPD?" => int_reply(self.display[2]),
            _ => Err(ESR_CME),
        }
    }
}

impl LineInstrument for LockIn {
    fn handle_line(&mut self, line: &str) -> Option<String> {
        self.activate();
        ieee488::handle_line(self, line)
    }

    /// The injected late switch: every n-th line that sets the reference
    /// frequency waits before it is carried out (and so does every reply
    /// after it, since one connection handles its lines in order).
    fn hold_before(&mut self, line: &str) -> Option<Duration> {
        let delay = self.switch_delay?;
        let sets_freq = line_server::split_commands(line)
            .iter()
            .any(|(head, _)| head == "FREQ" || head == "FREQINT");
        if !sets_freq {
            return None;
        }
        self.freq_commands += 1;
        self.freq_commands
            .is_multiple_of(self.switch_delay_every)
            .then_some(delay)
    }
}

/// Index of an `OUTP?`/`SNAP?` parameter: its number or its mnemonic
/// (short form or long form, any case), at most `max`.
fn output_index(arg: &str, max: u8) -> Result<u8, u8> {
    const NAMES: [(&str, &str); 17] = [
        ("X", "X"),
        ("Y", "Y"),
        ("R", "R"),
        ("TH", "THETA"),
        ("IN1", "IN1"),
        ("IN2", "IN2"),
        ("IN3", "IN3"),
        ("IN4", "IN4"),
        ("XNO", "XNOISE"),
        ("YNO", "YNOISE"),
        ("OUT1", "OUT1"),
        ("OUT2", "OUT2"),
        ("PHA", "PHASE"),
        ("SAM", "SAMP"),
        ("LEV", "LEVEL"),
        ("FINT", "FINT"),
        ("FEXT", "FEXT"),
    ];
    let upper = arg.to_ascii_uppercase();
    let i = match upper.parse::<u8>() {
        Ok(i) => i,
        Err(_) => NAMES
            .iter()
            .position(|(short, long)| upper == *short || upper == *long)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or(ESR_CME)?,
    };
    if i > max { Err(ESR_EXE) } else { Ok(i) }
}

/// Degrees wrapped to (-180, 180].
fn wrap_deg(deg: f64) -> f64 {
    let w = deg.rem_euclid(360.0);
    if w > 180.0 { w - 360.0 } else { w }
}

/// The SR860's float format: 7 significant digits, two-digit exponent
/// (`1.2345678e-03` style: `-7.0710678e-02`).
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.7e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// The lock-in as the bench keeps it.
pub(crate) struct Sr860 {
    pub server: line_server::Server,
    pub lockin: Arc<Mutex<LockIn>>,
}

pub(crate) fn start(shared: Arc<Shared>, params: &SimParams) -> Result<Sr860, SimError> {
    let lockin = Arc::new(Mutex::new(LockIn::new(shared.clone(), params)));
    let server = line_server::start(
        shared,
        lockin.clone(),
        Framing {
            device: Device::LockIn,
            reply_terminator: "\n",
            name: "lockin",
        },
    )?;
    Ok(Sr860 { server, lockin })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_constant_table_runs_1_us_to_30_ks() {
        assert!((time_constant_s(0) - 1e-6).abs() < 1e-18);
        assert!((time_constant_s(1) - 3e-6).abs() < 1e-18);
        assert!((time_constant_s(10) - 0.1).abs() < 1e-15);
        assert!((time_constant_s(13) - 3.0).abs() < 1e-12);
        assert!((time_constant_s(OFLT_MAX) - 3e4).abs() < 1e-8);
    }

    #[test]
    fn numbers_and_phases_look_like_the_instruments() {
        assert_eq!(fmt_num(-0.070710678118), "-7.0710678e-02");
        assert_eq!(fmt_num(1000.0), "1.0000000e+03");
        assert_eq!(fmt_num(0.0), "0.0000000e+00");
        assert_eq!(wrap_deg(190.0), -170.0);
        assert_eq!(wrap_deg(-180.0), 180.0);
        assert_eq!(output_index("theta", 3), Ok(3));
        assert_eq!(output_index("FInt", 16), Ok(15));
        assert_eq!(output_index("15", 3), Err(ESR_EXE));
        assert_eq!(output_index("Z", 16), Err(ESR_CME));
    }
}
