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

pub(crate) mod demod;

use crate::SimError;
use crate::bench::Shared;
use crate::ieee488::{self, ESR_CME, ESR_EXE, Ieee488Instrument, Ieee488Status};
use crate::journal::{Device, lock};
use crate::line_server::{self, Framing, LineInstrument};
use demod::{Demodulator, sample_interval_s};
use std::f64::consts::SQRT_2;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vegard_recipe::SimParams;

/// `*IDN?` reply.
const IDN: &str = "Stanford_Research_Systems,SR860,SIM00001,v1.51-vegard";
/// Reference frequency limits, Hz.
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
/// Most samples one update takes; a longer backlog (an unaddressed lock-in
/// coming back to life) skips ahead on the grid, keeping the phase grid.
const MAX_BACKLOG_SAMPLES: f64 = 200_000.0;

/// Time constant of `OFLT` index `i` (0 = 1 us ... 21 = 30 ks), s.
pub(crate) fn time_constant_s(index: u8) -> f64 {
    let mantissa = if index.is_multiple_of(2) { 1.0 } else { 3.0 };
    mantissa * 10f64.powi(i32::from(index / 2) - 6)
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
}

impl Default for Settings {
    /// The emulator's power-on state: 1 kHz, the smallest sine level (the
    /// cell is not modulated before a host asks), 100 ms, 12 dB/oct, 1 V.
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
        }
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
            sample_dt_s: sample_interval_s(s.f_Hz),
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
        self.sample_dt_s = sample_interval_s(self.s.f_Hz);
        self.drive_sine();
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
            return;
        }
        let phase_shift = self.s.phase_deg.to_radians();
        while self.next_sample_s <= now {
            let t = self.next_sample_s;
            let v = world.deflection_volts_at(t);
            let phase = world.ext_sine_phase_rad(t) + phase_shift;
            self.demod.push(v, phase, self.sample_dt_s);
            self.next_sample_s += self.sample_dt_s;
        }
    }

    fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.next_sample_s = lock(&self.shared.world).now_s();
        }
    }

    /// (X, Y, R, theta in degrees), current.
    fn outputs(&mut self) -> (f64, f64, f64, f64) {
        self.update();
        let (x, y) = self.demod.xy_V_rms();
        (x, y, x.hypot(y), y.atan2(x).to_degrees())
    }

    /// Value of `SNAP?`/`OUTP?` parameter `index` (the SR860's table),
    /// with X, Y, R, theta from one instant (`outputs`).
    fn parameter(&self, index: u8, outputs: (f64, f64, f64, f64)) -> f64 {
        let (x, y, r, theta) = outputs;
        match index {
            0 => x,
            1 => y,
            2 => r,
            3 => theta,
            12 => wrap_deg(self.s.phase_deg),
            13 => self.s.slvl_V_rms,
            14 => self.s.soff_V,
            15 | 16 => self.s.f_Hz,
            // Aux inputs / outputs and the noise estimates: nothing is
            // connected and no noise is estimated.
            _ => 0.0,
        }
    }
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
        let arg = |i: usize| args.get(i).map(String::as_str).ok_or(ESR_CME);
        let num = |i: usize| -> Result<f64, u8> {
            let v: f64 = arg(i)?.parse().map_err(|_| ESR_CME)?;
            if v.is_finite() { Ok(v) } else { Err(ESR_CME) }
        };
        let index = |i: usize, max: u8| -> Result<u8, u8> {
            let v = num(i)?;
            if v.fract() != 0.0 {
                return Err(ESR_CME);
            }
            if v < 0.0 || v > f64::from(max) {
                return Err(ESR_EXE);
            }
            Ok(v as u8)
        };
        let ranged = |i: usize, lo: f64, hi: f64| -> Result<f64, u8> {
            let v = num(i)?;
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ESR_EXE)
            }
        };
        match head {
            "FREQ" | "FREQINT" => {
                let f = ranged(0, F_MIN_HZ, F_MAX_HZ)?;
                self.update();
                self.s.f_Hz = f;
                self.sample_dt_s = sample_interval_s(f);
                self.demod.restart_period();
                self.drive_sine();
                Ok(None)
            }
            "FREQ?" | "FREQINT?" | "FREQDET?" => Ok(Some(fmt_num(self.s.f_Hz))),
            "SLVL" => {
                let v = ranged(0, SLVL_MIN_V, SLVL_MAX_V)?;
                self.update();
                self.s.slvl_V_rms = v;
                self.drive_sine();
                Ok(None)
            }
            "SLVL?" => Ok(Some(fmt_num(self.s.slvl_V_rms))),
            "SOFF" => {
                self.s.soff_V = ranged(0, -SOFF_MAX_V, SOFF_MAX_V)?;
                Ok(None)
            }
            "SOFF?" => Ok(Some(fmt_num(self.s.soff_V))),
            "PHAS" => {
                let p = ranged(0, -PHAS_MAX_DEG, PHAS_MAX_DEG)?;
                self.update();
                self.s.phase_deg = p;
                Ok(None)
            }
            "PHAS?" => Ok(Some(fmt_num(wrap_deg(self.s.phase_deg)))),
            "OFLT" => {
                let i = index(0, OFLT_MAX)?;
                self.update();
                self.s.oflt = i;
                self.demod.set_time_constant_s(time_constant_s(i));
                Ok(None)
            }
            "OFLT?" => Ok(Some(self.s.oflt.to_string())),
            "OFSL" => {
                let i = index(0, 3)?;
                self.update();
                self.s.ofsl = i;
                self.demod.set_stages(usize::from(i) + 1);
                Ok(None)
            }
            "OFSL?" => Ok(Some(self.s.ofsl.to_string())),
            "SYNC" => {
                let i = index(0, 1)?;
                self.update();
                self.s.sync = i == 1;
                self.demod.set_sync(self.s.sync);
                Ok(None)
            }
            "SYNC?" => Ok(Some(u8::from(self.s.sync).to_string())),
            "SCAL" => {
                self.s.scal = index(0, SCAL_MAX)?;
                Ok(None)
            }
            "SCAL?" => Ok(Some(self.s.scal.to_string())),
            "OUTP?" => {
                let i = output_index(arg(0)?, 3)?;
                let now = self.outputs();
                Ok(Some(fmt_num(self.parameter(i, now))))
            }
            "SNAP?" => {
                if !(2..=3).contains(&args.len()) {
                    return Err(ESR_CME);
                }
                let indices = args
                    .iter()
                    .map(|a| output_index(a, 16))
                    .collect::<Result<Vec<u8>, u8>>()?;
                // One snapshot: every value from the same instant.
                let now = self.outputs();
                let values: Vec<String> = indices
                    .into_iter()
                    .map(|i| fmt_num(self.parameter(i, now)))
                    .collect();
                Ok(Some(values.join(",")))
            }
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
