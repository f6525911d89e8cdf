//! The Lake Shore 336 temperature controller emulator (a subset of its
//! remote command set) on a loopback TCP socket.
//!
//! Owns: the controller's stored settings that the world does not model
//! (ramp, PID, the settings of output 2), its sensor noise stream and its
//! standard event status register. The stage itself (temperature, setpoint
//! and heater range of output 1) lives in the world, so the electrode sees
//! the same temperature the sensor reads.
//!
//! Errors: the real 336 silently ignores a command it cannot parse or whose
//! parameter is out of range. The emulator does the same (no reply, setting
//! unchanged) and, like the real one, sets the command-error (bit 5) or
//! execution-error (bit 4) bit of the event status register, readable
//! with `*ESR?`. A driver detects a failed setting by reading it back
//! (`SETP? 1`, `RANGE? 1`).

use crate::SimError;
use crate::bench::Shared;
use crate::ieee488::{self, ESR_CME, ESR_EXE, Ieee488Instrument, Ieee488Status};
use crate::journal::{Device, lock};
use crate::line_server::{self, Framing, LineInstrument};
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
/// Sensor inputs; only A has a sensor on the virtual stage.
const INPUTS: [&str; 4] = ["A", "B", "C", "D"];

/// Settings the world does not hold, per output (index 0 = output 1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OutputSettings {
    ramp_on: bool,
    ramp_K_per_min: f64,
    pid: [f64; 3],
    /// Output 2 only (output 1's live in the world).
    setpoint_K: f64,
    range: u8,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            ramp_on: false,
            ramp_K_per_min: 0.0,
            pid: [50.0, 20.0, 0.0],
            setpoint_K: 0.0,
            range: 0,
        }
    }
}

pub(crate) struct TempController {
    shared: Arc<Shared>,
    noise: Option<Normal<f64>>,
    rng: StdRng,
    outputs: [OutputSettings; 2],
    status: Ieee488Status,
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
        Ok(TempController {
            shared,
            noise,
            rng: StdRng::seed_from_u64(params.seed ^ STREAM_SENSOR),
            outputs: [OutputSettings::default(); 2],
            status: Ieee488Status::new(IDN),
        })
    }

    /// One sensor reading of input A, K: the stage's true temperature now
    /// plus the sensor's white noise.
    fn reading_K(&mut self) -> f64 {
        let t = lock(&self.shared.world).stage_temperature_K();
        t + self.noise.map_or(0.0, |n| n.sample(&mut self.rng))
    }

    /// `*RST`: heater off, setpoints, ramps and PID to their defaults.
    fn reset_settings(&mut self) {
        let mut world = lock(&self.shared.world);
        world.set_stage_heater_range(0);
        drop(world);
        self.outputs = [OutputSettings::default(); 2];
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
        let arg = |i: usize| args.get(i).map(String::as_str).ok_or(ESR_CME);
        let num = |i: usize| -> Result<f64, u8> {
            let v: f64 = arg(i)?.parse().map_err(|_| ESR_CME)?;
            if v.is_finite() { Ok(v) } else { Err(ESR_CME) }
        };
        let output = |i: usize| -> Result<usize, u8> {
            match arg(i)? {
                "1" => Ok(0),
                "2" => Ok(1),
                _ => Err(ESR_EXE),
            }
        };
        let input = |i: usize| -> Result<usize, u8> {
            let a = arg(i).unwrap_or("A").to_ascii_uppercase();
            INPUTS
                .iter()
                .position(|n| *n == a)
                .or((a == "0").then_some(usize::MAX))
                .ok_or(ESR_EXE)
        };
        match head {
            "KRDG?" | "CRDG?" => {
                let offset = if head == "CRDG?" { 273.15 } else { 0.0 };
                let which = input(0)?;
                let reading = |c: &mut Self, i: usize| {
                    if i == 0 {
                        fmt_reading(c.reading_K() - offset)
                    } else {
                        fmt_reading(0.0)
                    }
                };
                if which == usize::MAX {
                    let all: Vec<String> = (0..INPUTS.len()).map(|i| reading(self, i)).collect();
                    Ok(Some(all.join(",")))
                } else {
                    Ok(Some(reading(self, which)))
                }
            }
            "SETP" => {
                let o = output(0)?;
                let k = num(1)?;
                if !(SETP_MIN_K..=SETP_MAX_K).contains(&k) {
                    return Err(ESR_EXE);
                }
                if o == 0 {
                    lock(&self.shared.world).set_stage_setpoint_K(k);
                } else {
                    self.outputs[1].setpoint_K = k;
                }
                Ok(None)
            }
            "SETP?" => {
                let o = output(0)?;
                let k = if o == 0 {
                    lock(&self.shared.world).stage_setpoint_K()
                } else {
                    self.outputs[1].setpoint_K
                };
                Ok(Some(fmt_reading(k)))
            }
            "RANGE" => {
                let o = output(0)?;
                let r = num(1)?;
                if r.fract() != 0.0 || !(0.0..=f64::from(RANGE_MAX)).contains(&r) {
                    return Err(ESR_EXE);
                }
                let r = r as u8;
                if o == 0 {
                    lock(&self.shared.world).set_stage_heater_range(r);
                } else {
                    self.outputs[1].range = r;
                }
                Ok(None)
            }
            "RANGE?" => {
                let o = output(0)?;
                let r = if o == 0 {
                    lock(&self.shared.world).stage_heater_range()
                } else {
                    self.outputs[1].range
                };
                Ok(Some(r.to_string()))
            }
            "HTR?" => {
                let o = output(0)?;
                let pct = if o == 0 {
                    lock(&self.shared.world).stage_heater_percent()
                } else {
                    0.0
                };
                Ok(Some(format!("{pct:+06.1}")))
            }
            "RAMP" => {
                let o = output(0)?;
                let on = match arg(1)? {
                    "0" => false,
                    "1" => true,
                    _ => return Err(ESR_EXE),
                };
                let rate = num(2)?;
                if !(0.0..=RAMP_MAX_K_PER_MIN).contains(&rate) {
                    return Err(ESR_EXE);
                }
                self.outputs[o].ramp_on = on;
                self.outputs[o].ramp_K_per_min = rate;
                Ok(None)
            }
            "RAMP?" => {
                let o = &self.outputs[output(0)?];
                Ok(Some(format!(
                    "{},{:+.1}",
                    u8::from(o.ramp_on),
                    o.ramp_K_per_min
                )))
            }
            "PID" => {
                let o = output(0)?;
                let pid = [num(1)?, num(2)?, num(3)?];
                let limits = [(0.1, 1000.0), (0.1, 1000.0), (0.0, 200.0)];
                if pid
                    .iter()
                    .zip(limits)
                    .any(|(v, (lo, hi))| !(lo..=hi).contains(v))
                {
                    return Err(ESR_EXE);
                }
                self.outputs[o].pid = pid;
                Ok(None)
            }
            "PID?" => {
                let [p, i, d] = self.outputs[output(0)?].pid;
                Ok(Some(format!("{p:+.1},{i:+.1},{d:+.1}")))
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
