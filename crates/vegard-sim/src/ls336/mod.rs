//! The Lake Shore 336 temperature controller emulator (its documented
//! remote command set for inputs A-D and outputs 1-4) on a loopback TCP
//! socket.
//!
//! Owns: the controller's input setup (names, sensor types, curves,
//! temperature limits), its output setup (control mode, heater range and
//! setup, setpoints and their ramps, PID, manual output), its sensor noise
//! stream and its standard event status register. The stage itself lives
//! in the world, so the electrode sees the temperature the sensor reads:
//! output 1, in closed-loop (or zone) control on input A, drives the
//! world's stage with its present (possibly ramping) setpoint and heater
//! range; anything else leaves the stage's heater off. Input A holds a
//! PT100 (DIN 43760); inputs B-D have no sensor and are disabled; outputs
//! 2-4 are wired to nothing.
//!
//! Errors: the real 336 silently ignores a command it cannot parse or whose
//! parameter is out of range. The emulator does the same (no reply, setting
//! unchanged) and sets the command-error (bit 5) or execution-error
//! (bit 4) bit of the event status register, readable with `*ESR?`. A
//! driver detects a failed setting by reading it back (`SETP? 1`).

mod curves;

use crate::SimError;
use crate::bench::Shared;
use crate::ieee488::{self, ESR_CME, ESR_EXE, Ieee488Instrument, Ieee488Status};
use crate::journal::{Device, lock};
use crate::line_server::{self, Framing, LineInstrument};
use curves::{Curve, PTC_RANGES_OHM, curve};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use std::sync::{Arc, Mutex};
use vegard_recipe::SimParams;

/// `*IDN?` reply.
const IDN: &str = "LSCI,MODEL336,SIM0001/0000001,2.9";
const STREAM_SENSOR: u64 = 0x4c53_3336_0000_0001;
/// Setpoint limits, K (the 336's default setpoint limit is far above any
/// electrochemical stage; the emulator refuses what no stage reaches).
const SETP_MIN_K: f64 = 0.0;
const SETP_MAX_K: f64 = 1000.0;
/// Highest heater range (0 off, 1 low, 2 medium, 3 high).
const RANGE_MAX: u8 = 3;
const RAMP_MAX_K_PER_MIN: f64 = 100.0;
/// Highest temperature limit, K (`TLIMIT`; 0 switches the limit off).
const TLIMIT_MAX_K: f64 = 2000.0;
/// Longest input name (`INNAME`).
const NAME_MAX_CHARS: usize = 15;
/// Sensor inputs; only A has a sensor on the virtual stage.
const INPUTS: [&str; 4] = ["A", "B", "C", "D"];
/// Control outputs 1-4 (1, 2 heaters; 3, 4 unpowered analog outputs).
const OUTPUTS: usize = 4;

/// Sensor types (`INTYPE`): 0 disabled, 1 diode, 2 platinum RTD, 3 NTC
/// RTD (4 thermocouple and 5 capacitance need option cards the virtual
/// controller does not have).
const TYPE_DISABLED: u8 = 0;
const TYPE_DIODE: u8 = 1;
const TYPE_PLATINUM: u8 = 2;
const TYPE_NTC: u8 = 3;
/// Highest range of each sensor type (diode 0-1, PTC 0-6, NTC 0-8).
const RANGE_MAX_OF_TYPE: [u8; 4] = [0, 1, 6, 8];

/// Reading status bits (`RDGST?`).
const RDG_INVALID: u8 = 1;
const RDG_T_UNDER: u8 = 16;
const RDG_T_OVER: u8 = 32;
const RDG_SENSOR_OVER: u8 = 128;

/// Preferred units (`INTYPE` last field).
const UNITS_KELVIN: u8 = 1;
const UNITS_CELSIUS: u8 = 2;
const UNITS_SENSOR: u8 = 3;
const ZERO_C_K: f64 = 273.15;

/// Output control modes (`OUTMODE`): 0 off, 1 closed loop PID, 2 zone,
/// 3 open loop; outputs 3 and 4 also 4 monitor out, 5 warm-up supply.
const MODE_CLOSED_LOOP: u8 = 1;
const MODE_ZONE: u8 = 2;
const MODE_OPEN_LOOP: u8 = 3;

/// One sensor input's setup (`INNAME`, `INTYPE`, `INCRV`, `TLIMIT`).
#[derive(Debug, Clone, PartialEq)]
struct InputSetup {
    name: String,
    sensor_type: u8,
    autorange: bool,
    range: u8,
    compensation: bool,
    units: u8,
    curve: u8,
    tlimit_K: f64,
}

impl InputSetup {
    /// Input A: the stage's PT100 on the standard PT-100 curve (6),
    /// autoranging, kelvin. B-D: disabled, the same curve assigned.
    fn power_on(i: usize) -> Self {
        let sensor = i == 0;
        InputSetup {
            name: format!("Input {}", INPUTS[i]),
            sensor_type: if sensor { TYPE_PLATINUM } else { TYPE_DISABLED },
            autorange: sensor,
            range: 0,
            compensation: sensor,
            units: UNITS_KELVIN,
            curve: curves::PT100,
            tlimit_K: 0.0,
        }
    }
}

/// A setpoint ramp in progress: from `from_K` at true instant `t0_s`
/// towards the output's target at the output's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ramp {
    from_K: f64,
    t0_s: f64,
}

/// Heater setup of outputs 1 and 2 (`HTRSET`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeaterSetup {
    /// 1 = 25 ohm, 2 = 50 ohm.
    resistance: u8,
    /// 0 user, 1 0.707 A, 2 1 A, 3 1.141 A, 4 2 A.
    max_current: u8,
    max_user_current_A: f64,
    /// 1 current, 2 power.
    display: u8,
}

/// One control output's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OutputSetup {
    mode: u8,
    /// Control input: 0 none, 1-4 = A-D.
    input: u8,
    powerup_enable: bool,
    range: u8,
    /// Where the setpoint is heading (the setpoint itself without a ramp).
    target_K: f64,
    ramp_on: bool,
    ramp_K_per_min: f64,
    ramp: Option<Ramp>,
    pid: [f64; 3],
    manual_pct: f64,
    heater: HeaterSetup,
}

impl OutputSetup {
    /// Output n (0-based) at power-on: 1 in closed loop on A, 2 in closed
    /// loop on B, 3 and 4 off.
    fn power_on(n: usize, setpoint_K: f64, range: u8) -> Self {
        OutputSetup {
            mode: if n < 2 { MODE_CLOSED_LOOP } else { 0 },
            input: if n < 2 { n as u8 + 1 } else { 0 },
            powerup_enable: false,
            range,
            target_K: setpoint_K,
            ramp_on: false,
            ramp_K_per_min: 0.0,
            ramp: None,
            pid: [50.0, 20.0, 0.0],
            manual_pct: 0.0,
            heater: HeaterSetup {
                resistance: 2,
                max_current: 1,
                max_user_current_A: 0.0,
                display: 1,
            },
        }
    }

    /// The setpoint at true instant `now_s`, K: the ramp's value while it
    /// runs, the target otherwise.
    fn setpoint_at(&self, now_s: f64) -> f64 {
        match self.ramp {
            Some(r) if self.ramp_K_per_min > 0.0 => {
                let moved = self.ramp_K_per_min / 60.0 * (now_s - r.t0_s).max(0.0);
                let gap = self.target_K - r.from_K;
                if moved >= gap.abs() {
                    self.target_K
                } else {
                    r.from_K + moved.copysign(gap)
                }
            }
            _ => self.target_K,
        }
    }

    fn ramping_at(&self, now_s: f64) -> bool {
        self.ramp.is_some() && self.setpoint_at(now_s) != self.target_K
    }
}

pub(crate) struct TempController {
    shared: Arc<Shared>,
    noise: Option<Normal<f64>>,
    rng: StdRng,
    inputs: [InputSetup; 4],
    outputs: [OutputSetup; OUTPUTS],
    status: Ieee488Status,
}

/// A reading of one input: status bits, sensor units, kelvin.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    status: u8,
    sensor: f64,
    kelvin: f64,
}

impl TempController {
    fn new(shared: Arc<Shared>, params: &SimParams) -> Result<Self, SimError> {
        let sigma = params.thermal.sensor_noise_K_rms;
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(SimError::InvalidParam {
                name: "thermal.sensor_noise_K_rms",
                reason: format!("must be a finite number >= 0, got {sigma}"),
            });
        }
        let noise = if sigma > 0.0 {
            Normal::new(0.0, sigma).ok()
        } else {
            None
        };
        let (setpoint_K, range) = {
            let world = lock(&shared.world);
            (world.stage_setpoint_K(), world.stage_heater_range())
        };
        let outputs = std::array::from_fn(|n| {
            let sp = if n == 0 { setpoint_K } else { 0.0 };
            OutputSetup::power_on(n, sp, if n == 0 { range } else { 0 })
        });
        Ok(TempController {
            shared,
            noise,
            rng: StdRng::seed_from_u64(params.seed ^ STREAM_SENSOR),
            inputs: std::array::from_fn(InputSetup::power_on),
            outputs,
            status: Ieee488Status::new(IDN),
        })
    }

    fn now_s(&self) -> f64 {
        lock(&self.shared.world).now_s()
    }

    /// Brings the world's stage in line with output 1 and the temperature
    /// limits, at every command the controller receives: the ramped
    /// setpoint advances, the heater runs only in closed-loop or zone
    /// control on input A, and an input over its `TLIMIT` switches every
    /// output off (as the 336 does).
    fn sync(&mut self) {
        let shared = self.shared.clone();
        let mut world = lock(&shared.world);
        let now_s = world.now_s();
        // Only a set limit needs the stage's temperature now: advancing the
        // world costs time at high speed-ups, and most commands need not.
        let limited = self
            .inputs
            .iter()
            .any(|i| i.sensor_type != TYPE_DISABLED && i.tlimit_K > 0.0);
        let tripped = limited && {
            let true_K = world.stage_temperature_K();
            self.inputs
                .iter()
                .any(|i| i.sensor_type != TYPE_DISABLED && i.tlimit_K > 0.0 && true_K > i.tlimit_K)
        };
        if tripped {
            for o in &mut self.outputs {
                o.range = 0;
            }
        }
        for o in &mut self.outputs {
            if o.ramp.is_some() && !o.ramping_at(now_s) {
                o.ramp = None;
            }
        }
        let o = &self.outputs[0];
        let controls_stage = matches!(o.mode, MODE_CLOSED_LOOP | MODE_ZONE) && o.input == 1;
        let range = if controls_stage { o.range } else { 0 };
        let setpoint_K = o.setpoint_at(now_s);
        if world.stage_setpoint_K() != setpoint_K {
            world.set_stage_setpoint_K(setpoint_K);
        }
        if world.stage_heater_range() != range {
            world.set_stage_heater_range(range);
        }
    }

    /// One reading of input `i` (0 = A): input A's PT100 at the stage's
    /// true temperature plus the sensor's white noise, converted with the
    /// input's curve; B-D have no sensor.
    fn reading(&mut self, i: usize) -> Reading {
        let setup = &self.inputs[i];
        if setup.sensor_type == TYPE_DISABLED {
            return Reading {
                status: RDG_INVALID,
                sensor: 0.0,
                kelvin: 0.0,
            };
        }
        if i != 0 || setup.sensor_type != TYPE_PLATINUM {
            // No sensor wired (B-D), or the PT100 read as another type.
            return Reading {
                status: RDG_INVALID | RDG_SENSOR_OVER,
                sensor: 0.0,
                kelvin: 0.0,
            };
        }
        let t = lock(&self.shared.world).stage_temperature_K();
        let t = t + self.noise.map_or(0.0, |n| n.sample(&mut self.rng));
        let ohm = curves::pt100_ohm(t);
        let range_ohm = PTC_RANGES_OHM[usize::from(self.input_range(0, ohm))];
        if ohm > range_ohm {
            return Reading {
                status: RDG_SENSOR_OVER,
                sensor: 0.0,
                kelvin: 0.0,
            };
        }
        let Some(c) = curve(setup.curve) else {
            // No curve: sensor units only.
            return Reading {
                status: 0,
                sensor: ohm,
                kelvin: 0.0,
            };
        };
        let kelvin = c.kelvin_from_sensor(ohm);
        let status = if kelvin < c.low_K {
            RDG_T_UNDER
        } else if kelvin > c.limit_K {
            RDG_T_OVER
        } else {
            0
        };
        Reading {
            status,
            sensor: ohm,
            kelvin,
        }
    }

    /// The range input `i` uses for a sensor of `ohm`: the set one, or with
    /// autorange the smallest that holds the reading.
    fn input_range(&self, i: usize, ohm: f64) -> u8 {
        let s = &self.inputs[i];
        if !s.autorange || s.sensor_type != TYPE_PLATINUM {
            return s.range;
        }
        PTC_RANGES_OHM
            .iter()
            .position(|&r| ohm <= r)
            .unwrap_or(PTC_RANGES_OHM.len() - 1) as u8
    }

    /// The curve and units setpoints of output `o` are given in: those of
    /// its control input (kelvin without one).
    fn setpoint_units(&self, o: usize) -> (u8, Option<Curve>) {
        match usize::from(self.outputs[o].input).checked_sub(1) {
            Some(i) if i < INPUTS.len() => {
                let s = &self.inputs[i];
                (s.units, curve(s.curve))
            }
            _ => (UNITS_KELVIN, None),
        }
    }

    /// A setpoint given in output `o`'s units, in K.
    fn setpoint_to_K(&self, o: usize, v: f64) -> Result<f64, u8> {
        match self.setpoint_units(o) {
            (UNITS_CELSIUS, _) => Ok(v + ZERO_C_K),
            (UNITS_SENSOR, Some(c)) => Ok(c.kelvin_from_sensor(v)),
            (UNITS_SENSOR, None) => Err(ESR_EXE),
            _ => Ok(v),
        }
    }

    /// A setpoint in K, in output `o`'s units.
    fn setpoint_from_K(&self, o: usize, k: f64) -> f64 {
        match self.setpoint_units(o) {
            (UNITS_CELSIUS, _) => k - ZERO_C_K,
            (UNITS_SENSOR, Some(c)) => c.sensor_from_kelvin(k),
            _ => k,
        }
    }

    /// Heater output of output `o` (0-based) now, percent: the stage's
    /// heater for output 1 in control, the manual output in open loop,
    /// nothing otherwise (outputs 2-4 drive nothing on the bench).
    fn output_pct(&mut self, o: usize) -> f64 {
        let out = self.outputs[o];
        if out.mode == MODE_OPEN_LOOP {
            return out.manual_pct;
        }
        if o == 0 && out.range > 0 && matches!(out.mode, MODE_CLOSED_LOOP | MODE_ZONE) {
            return lock(&self.shared.world).stage_heater_percent();
        }
        0.0
    }

    /// `*RST`: every heater off, ramps off, PID and manual output to their
    /// defaults; setpoints, input setup and names are kept.
    fn reset_settings(&mut self) {
        for o in &mut self.outputs {
            o.range = 0;
            o.ramp_on = false;
            o.ramp_K_per_min = 0.0;
            o.ramp = None;
            o.pid = [50.0, 20.0, 0.0];
            o.manual_pct = 0.0;
        }
        self.sync();
    }
}

/// Argument `i`, or a command error.
fn arg(args: &[String], i: usize) -> Result<&str, u8> {
    args.get(i).map(String::as_str).ok_or(ESR_CME)
}

/// A finite number, or a command error.
fn num(args: &[String], i: usize) -> Result<f64, u8> {
    let v: f64 = arg(args, i)?.parse().map_err(|_| ESR_CME)?;
    if v.is_finite() { Ok(v) } else { Err(ESR_CME) }
}

/// A whole number within lo..=hi (execution error outside).
fn int(args: &[String], i: usize, lo: u8, hi: u8) -> Result<u8, u8> {
    let v = num(args, i)?;
    if v.fract() != 0.0 {
        return Err(ESR_CME);
    }
    if v < f64::from(lo) || v > f64::from(hi) {
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

/// Output number 1..=`max` at argument `i`, 0-based.
fn output(args: &[String], i: usize, max: u8) -> Result<usize, u8> {
    Ok(usize::from(int(args, i, 1, max)? - 1))
}

/// Input letter A-D at argument `i`, 0-based.
fn input(args: &[String], i: usize) -> Result<usize, u8> {
    let a = arg(args, i)?.to_ascii_uppercase();
    INPUTS.iter().position(|n| *n == a).ok_or(ESR_EXE)
}

/// Input letter A-D or `0` (all four) at argument `i`, default A.
fn inputs_or_all(args: &[String], i: usize) -> Result<Vec<usize>, u8> {
    match args.get(i).map(|a| a.to_ascii_uppercase()) {
        None => Ok(vec![0]),
        Some(a) if a == "0" => Ok((0..INPUTS.len()).collect()),
        Some(_) => Ok(vec![input(args, i)?]),
    }
}

impl Ieee488Instrument for TempController {
    /// The 336 goes on with the rest of a line after a refused command.
    const STOP_LINE_AT_ERROR: bool = false;

    fn status(&mut self) -> &mut Ieee488Status {
        &mut self.status
    }

    fn reset(&mut self) {
        self.reset_settings();
    }

    fn command(&mut self, head: &str, args: &[String]) -> Result<Option<String>, u8> {
        self.sync();
        let a = args;
        let reply = |s: String| Ok(Some(s));
        match head {
            // --- Readings ---
            "KRDG?" | "CRDG?" | "SRDG?" => {
                let which = inputs_or_all(a, 0)?;
                let values: Vec<String> = which
                    .into_iter()
                    .map(|i| {
                        let r = self.reading(i);
                        let v = match head {
                            "KRDG?" => r.kelvin,
                            // No temperature, no Celsius: an invalid reading
                            // is 0 in every unit.
                            "CRDG?" if r.kelvin > 0.0 => r.kelvin - ZERO_C_K,
                            "CRDG?" => 0.0,
                            _ => r.sensor,
                        };
                        fmt_reading(v)
                    })
                    .collect();
                reply(values.join(","))
            }
            "RDGST?" => {
                let i = input(a, 0)?;
                reply(format!("{:03}", self.reading(i).status))
            }
            // --- Input setup ---
            "INNAME" => {
                let i = input(a, 0)?;
                let raw = a[1..].join(",");
                let name = raw.trim().trim_matches('"').trim();
                if raw.trim().is_empty() {
                    return Err(ESR_CME);
                }
                self.inputs[i].name = name.chars().take(NAME_MAX_CHARS).collect();
                Ok(None)
            }
            "INNAME?" => reply(self.inputs[input(a, 0)?].name.clone()),
            "INTYPE" => {
                let i = input(a, 0)?;
                if a.len() != 6 {
                    return Err(ESR_CME);
                }
                let sensor_type = int(a, 1, 0, TYPE_NTC)?;
                let autorange = int(a, 2, 0, 1)? == 1;
                let range = int(a, 3, 0, RANGE_MAX_OF_TYPE[usize::from(sensor_type)])?;
                let compensation = int(a, 4, 0, 1)? == 1;
                let units = int(a, 5, UNITS_KELVIN, UNITS_SENSOR)?;
                let s = &mut self.inputs[i];
                if s.sensor_type != sensor_type
                    && !curve(s.curve).is_some_and(|c| c.suits(sensor_type))
                {
                    // The assigned curve no longer matches the sensor type.
                    s.curve = 0;
                }
                s.sensor_type = sensor_type;
                s.autorange = autorange && sensor_type != TYPE_DIODE;
                s.range = range;
                s.compensation = compensation && sensor_type != TYPE_DIODE;
                s.units = units;
                Ok(None)
            }
            "INTYPE?" => {
                let i = input(a, 0)?;
                let ohm = curves::pt100_ohm(lock(&self.shared.world).stage_temperature_K());
                let range = self.input_range(i, ohm);
                let s = &self.inputs[i];
                reply(format!(
                    "{},{},{},{},{}",
                    s.sensor_type,
                    u8::from(s.autorange),
                    range,
                    u8::from(s.compensation),
                    s.units
                ))
            }
            "INCRV" => {
                let i = input(a, 0)?;
                let n = int(a, 1, 0, curves::CURVE_MAX)?;
                let Some(c) = curve(n) else {
                    if n == 0 {
                        self.inputs[i].curve = 0;
                        return Ok(None);
                    }
                    // An empty curve slot: nothing to convert with.
                    return Err(ESR_EXE);
                };
                // A curve of the wrong kind for the sensor type: the 336
                // falls back to no curve.
                self.inputs[i].curve = if c.suits(self.inputs[i].sensor_type) {
                    n
                } else {
                    0
                };
                Ok(None)
            }
            "INCRV?" => reply(format!("{:02}", self.inputs[input(a, 0)?].curve)),
            "CRVHDR?" => {
                let n = int(a, 0, 1, curves::CURVE_MAX)?;
                reply(curves::header(n))
            }
            "TLIMIT" => {
                let i = input(a, 0)?;
                self.inputs[i].tlimit_K = ranged(a, 1, 0.0, TLIMIT_MAX_K)?;
                Ok(None)
            }
            "TLIMIT?" => reply(fmt_reading(self.inputs[input(a, 0)?].tlimit_K)),
            // --- Outputs ---
            "OUTMODE" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                let max_mode = if o < 2 { MODE_OPEN_LOOP } else { 5 };
                let mode = int(a, 1, 0, max_mode)?;
                let input = int(a, 2, 0, INPUTS.len() as u8)?;
                let powerup = int(a, 3, 0, 1)? == 1;
                let out = &mut self.outputs[o];
                out.mode = mode;
                out.input = input;
                out.powerup_enable = powerup;
                self.sync();
                Ok(None)
            }
            "OUTMODE?" => {
                let o = &self.outputs[output(a, 0, OUTPUTS as u8)?];
                reply(format!(
                    "{},{},{}",
                    o.mode,
                    o.input,
                    u8::from(o.powerup_enable)
                ))
            }
            "SETP" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                let k = self.setpoint_to_K(o, num(a, 1)?)?;
                if !(SETP_MIN_K..=SETP_MAX_K).contains(&k) {
                    return Err(ESR_EXE);
                }
                let now_s = self.now_s();
                let out = &mut self.outputs[o];
                // With the ramp on, the setpoint runs from where it is now.
                out.ramp = (out.ramp_on && out.ramp_K_per_min > 0.0).then(|| Ramp {
                    from_K: out.setpoint_at(now_s),
                    t0_s: now_s,
                });
                out.target_K = k;
                self.sync();
                Ok(None)
            }
            "SETP?" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                let k = self.outputs[o].setpoint_at(self.now_s());
                reply(fmt_reading(self.setpoint_from_K(o, k)))
            }
            "RANGE" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                self.outputs[o].range = int(a, 1, 0, RANGE_MAX)?;
                self.sync();
                Ok(None)
            }
            "RANGE?" => reply(self.outputs[output(a, 0, OUTPUTS as u8)?].range.to_string()),
            // HTR? is documented for the heaters 1 and 2 (AOUT? reads 3
            // and 4); QCoDeS's driver asks it of all four, so 3 and 4
            // answer with their analog output too.
            "HTR?" | "AOUT?" => {
                let lo = if head == "AOUT?" { 3 } else { 1 };
                let o = usize::from(int(a, 0, lo, OUTPUTS as u8)? - 1);
                reply(format!("{:+06.1}", self.output_pct(o)))
            }
            "HTRST?" => {
                output(a, 0, 2)?;
                reply("0".into())
            }
            "HTRSET" => {
                let o = output(a, 0, 2)?;
                if a.len() != 5 {
                    return Err(ESR_CME);
                }
                let heater = HeaterSetup {
                    resistance: int(a, 1, 1, 2)?,
                    max_current: int(a, 2, 0, 4)?,
                    max_user_current_A: ranged(a, 3, 0.0, 2.0)?,
                    display: int(a, 4, 1, 2)?,
                };
                self.outputs[o].heater = heater;
                Ok(None)
            }
            "HTRSET?" => {
                let h = self.outputs[output(a, 0, 2)?].heater;
                reply(format!(
                    "{},{},{:+.3},{}",
                    h.resistance, h.max_current, h.max_user_current_A, h.display
                ))
            }
            "MOUT" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                self.outputs[o].manual_pct = ranged(a, 1, 0.0, 100.0)?;
                Ok(None)
            }
            "MOUT?" => reply(format!(
                "{:+07.2}",
                self.outputs[output(a, 0, OUTPUTS as u8)?].manual_pct
            )),
            "RAMP" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                let on = int(a, 1, 0, 1)? == 1;
                let rate = ranged(a, 2, 0.0, RAMP_MAX_K_PER_MIN)?;
                let now_s = self.now_s();
                let out = &mut self.outputs[o];
                if !on || rate == 0.0 {
                    // Ramp off (a rate of 0 is "infinitely fast"): the
                    // setpoint goes straight to its target.
                    out.ramp = None;
                } else if let Some(r) = out.ramp {
                    // A new rate continues from where the ramp is.
                    let here = out.setpoint_at(now_s);
                    out.ramp = Some(Ramp {
                        from_K: here,
                        t0_s: now_s.max(r.t0_s),
                    });
                }
                out.ramp_on = on;
                out.ramp_K_per_min = rate;
                self.sync();
                Ok(None)
            }
            "RAMP?" => {
                let o = &self.outputs[output(a, 0, OUTPUTS as u8)?];
                reply(format!("{},{:+.1}", u8::from(o.ramp_on), o.ramp_K_per_min))
            }
            "RAMPST?" => {
                let o = output(a, 0, OUTPUTS as u8)?;
                let now_s = self.now_s();
                reply(u8::from(self.outputs[o].ramping_at(now_s)).to_string())
            }
            "PID" => {
                let o = output(a, 0, 2)?;
                let pid = [
                    ranged(a, 1, 0.1, 1000.0)?,
                    ranged(a, 2, 0.1, 1000.0)?,
                    ranged(a, 3, 0.0, 200.0)?,
                ];
                self.outputs[o].pid = pid;
                Ok(None)
            }
            "PID?" => {
                let [p, i, d] = self.outputs[output(a, 0, 2)?].pid;
                reply(format!("{p:+.1},{i:+.1},{d:+.1}"))
            }
            _ => Err(ESR_CME),
        }
    }
}

impl LineInstrument for TempController {
    fn handle_line(&mut self, line: &str) -> Option<String> {
        ieee488::handle_line(self, line)
    }
}

/// The 336's reading format: sign and three decimals (`+298.150`).
fn fmt_reading(v: f64) -> String {
    format!("{v:+.3}")
}

/// The controller as the bench keeps it.
pub(crate) struct Ls336 {
    pub server: line_server::Server,
}

pub(crate) fn start(shared: Arc<Shared>, params: &SimParams) -> Result<Ls336, SimError> {
    let controller = Arc::new(Mutex::new(TempController::new(shared.clone(), params)?));
    let server = line_server::start(
        shared,
        controller,
        Framing {
            device: Device::TemperatureStage,
            reply_terminator: "\r\n",
            name: "temperature",
        },
    )?;
    Ok(Ls336 { server })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_have_a_sign_and_three_decimals() {
        assert_eq!(fmt_reading(298.15), "+298.150");
        assert_eq!(fmt_reading(-1.0), "-1.000");
        assert_eq!(format!("{:+06.1}", 45.24), "+045.2");
    }
}
