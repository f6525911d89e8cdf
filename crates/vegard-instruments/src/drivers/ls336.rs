//! Driver for the Lake Shore 336 temperature controller over its LAN port
//! (TCP 7777), and for the virtual bench's emulation of it. Commands go out
//! with CR LF, replies end in CR LF.
//!
//! The 336 answers no set command; a refused or mistyped one only sets a
//! bit in its standard event status register. So every setting is followed
//! by `*ESR?` (failing naming the command) and read back: `SETP? <out>`
//! after setting the setpoint, `RANGE? <out>` after switching the heater off.

use vegard_recipe::TemperatureConfig;

use crate::device::{BoxFut, TemperatureStage};
use crate::error::{Fault, InstrumentError};
use crate::scpi::{ScpiClient, scpi_number};
use crate::transport::lan_address;
use tokio::net::TcpStream;
use vegard_recipe::{LS336_HEATER_RANGES, LS336_INPUTS, LS336_OUTPUTS, Resource};

const ROLE: &str = "temperature";
/// What `*IDN?` of a 336 starts with.
pub const IDN_PREFIX: &str = "LSCI,MODEL336";
/// Readings and setpoints outside this span are not temperatures of a
/// working 336 sensor (an open or overloaded input reads 0), K.
pub const VALID_K: std::ops::RangeInclusive<f64> = 0.001..=1505.0;
/// Setpoint read-back tolerance: the 336 keeps setpoints to 1 mK, K.
pub const SETPOINT_READBACK_TOL_K: f64 = 1e-3;

/// A Lake Shore 336 on a TCP socket.
pub struct Ls336 {
    client: ScpiClient<TcpStream>,
    resource: String,
    output: u8,
    input: String,
    heater_range: u8,
}

impl Ls336 {
    /// Check the config, then connect (within `cfg.timeout_s`) to a
    /// `TCPIP::host::port::SOCKET` resource. Nothing is sent yet.
    pub async fn connect(
        cfg: &TemperatureConfig,
        resource: &Resource,
    ) -> Result<Ls336, InstrumentError> {
        let name = resource.to_string();
        let err = |fault| InstrumentError::Device {
            role: ROLE,
            resource: name.clone(),
            fault,
        };
        let (host, port) = lan_address(resource, "ls336", "7777").map_err(err)?;
        check_config(cfg).map_err(err)?;
        let client = ScpiClient::connect_tcp(host, port, cfg.timeout_s, "\r\n")
            .await
            .map_err(err)?;
        Ok(Ls336 {
            client,
            resource: name,
            output: cfg.output,
            input: cfg.input.trim().to_ascii_uppercase(),
            heater_range: cfg.heater_range,
        })
    }

    fn err(&self, fault: Fault) -> InstrumentError {
        InstrumentError::Device {
            role: ROLE,
            resource: self.resource.clone(),
            fault,
        }
    }

    fn bad_reply(&self, command: &str, reply: String, reason: &str) -> InstrumentError {
        self.err(Fault::BadReply {
            command: command.into(),
            reply,
            reason: reason.into(),
        })
    }

    /// A setting, then `*ESR?`: fails naming `cmd` if the 336 refused it.
    async fn set(&mut self, cmd: &str) -> Result<(), InstrumentError> {
        self.client
            .write_checked_esr(cmd)
            .await
            .map_err(|f| self.err(f))
    }

    async fn query(&mut self, cmd: &str) -> Result<String, InstrumentError> {
        self.client.query(cmd).await.map_err(|f| self.err(f))
    }

    /// A temperature reply (`+298.150`), checked to be a plausible reading.
    async fn query_K(&mut self, cmd: &str) -> Result<f64, InstrumentError> {
        let reply = self.query(cmd).await?;
        match reply.trim().parse::<f64>() {
            Ok(k) if VALID_K.contains(&k) => Ok(k),
            Ok(_) => Err(self.bad_reply(
                cmd,
                reply,
                "outside 0.001..1505 K (an open or overloaded sensor reads 0)",
            )),
            Err(_) => Err(self.bad_reply(cmd, reply, "not a number")),
        }
    }

    async fn identify_impl(&mut self) -> Result<String, InstrumentError> {
        let idn = self.query("*IDN?").await?;
        if !idn.trim().starts_with(IDN_PREFIX) {
            return Err(self.bad_reply(
                "*IDN?",
                idn,
                "wrong instrument: expected a Lake Shore 336 (LSCI,MODEL336,...)",
            ));
        }
        Ok(idn.trim().to_string())
    }

    async fn set_setpoint_impl(&mut self, setpoint_K: f64) -> Result<(), InstrumentError> {
        if !VALID_K.contains(&setpoint_K) {
            return Err(self.err(Fault::InvalidSetting(format!(
                "setpoint {setpoint_K} K outside 0.001..1505 K"
            ))));
        }
        let out = self.output;
        // Rounded to the 336's 1 mK resolution, so the read-back can match.
        let rounded_K = (setpoint_K * 1e3).round() / 1e3;
        let setp = format!("SETP {out},{}", scpi_number(rounded_K));
        self.set(&setp).await?;
        self.set(&format!("RANGE {out},{}", self.heater_range))
            .await?;
        let query = format!("SETP? {out}");
        let back_K = self.query_K(&query).await?;
        if (back_K - rounded_K).abs() > SETPOINT_READBACK_TOL_K {
            return Err(self.bad_reply(
                &query,
                scpi_number(back_K),
                &format!("instrument kept {back_K} K after {setp} (setting refused?)"),
            ));
        }
        Ok(())
    }

    async fn heater_off_impl(&mut self) -> Result<(), InstrumentError> {
        let out = self.output;
        self.set(&format!("RANGE {out},0")).await?;
        let query = format!("RANGE? {out}");
        let reply = self.query(&query).await?;
        match reply.trim().parse::<u8>() {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.bad_reply(&query, reply, "heater still on after RANGE <out>,0")),
            Err(_) => Err(self.bad_reply(&query, reply, "not a heater range (0..3)")),
        }
    }
}

/// Output, input and heater range the 336 has, checked before connecting.
/// The limits are the driver table's (`vegard_recipe::LS336_*`), which bench
/// validation applies too; checked again here because a config can be built
/// in code without validation.
fn check_config(cfg: &TemperatureConfig) -> Result<(), Fault> {
    let [out_lo, out_hi] = LS336_OUTPUTS;
    if !(out_lo..=out_hi).contains(&cfg.output) {
        return Err(Fault::InvalidSetting(format!(
            "output {} is not a 336 heater output ({out_lo} or {out_hi})",
            cfg.output
        )));
    }
    let [range_lo, range_hi] = LS336_HEATER_RANGES;
    if !(range_lo..=range_hi).contains(&cfg.heater_range) {
        return Err(Fault::InvalidSetting(format!(
            "heater_range {} outside {range_lo}..={range_hi} (low, medium, high)",
            cfg.heater_range
        )));
    }
    let input = cfg.input.trim().to_ascii_uppercase();
    if !LS336_INPUTS.contains(&input.as_str()) {
        return Err(Fault::InvalidSetting(format!(
            "input {:?} is not a 336 sensor input (A, B, C, D, D1..D5)",
            cfg.input
        )));
    }
    Ok(())
}

impl TemperatureStage for Ls336 {
    /// `*IDN?`; must start with `LSCI,MODEL336`.
    fn identify(&mut self) -> BoxFut<'_, String> {
        Box::pin(self.identify_impl())
    }

    /// `SETP <out>,<K>`, `RANGE <out>,<heater_range>` (each checked with
    /// `*ESR?`), then `SETP? <out>` must read back the setpoint.
    fn set_setpoint_K(&mut self, setpoint_K: f64) -> BoxFut<'_, ()> {
        Box::pin(self.set_setpoint_impl(setpoint_K))
    }

    /// `KRDG? <input>`.
    fn read_K(&mut self) -> BoxFut<'_, f64> {
        Box::pin(async move {
            let cmd = format!("KRDG? {}", self.input);
            self.query_K(&cmd).await
        })
    }

    /// `RANGE <out>,0` (checked with `*ESR?`), then `RANGE? <out>` must
    /// read 0.
    fn heater_off(&mut self) -> BoxFut<'_, ()> {
        Box::pin(self.heater_off_impl())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(output: u8, input: &str, heater_range: u8) -> TemperatureConfig {
        TemperatureConfig {
            driver: "ls336".into(),
            resource: Resource::Sim,
            output,
            input: input.into(),
            heater_range,
            timeout_s: 2.0,
        }
    }

    #[test]
    fn config_is_checked_against_the_336() {
        check_config(&cfg(1, "A", 3)).unwrap();
        check_config(&cfg(2, "d3", 1)).unwrap();
        let e = |c| check_config(&c).unwrap_err().to_string();
        assert_eq!(
            e(cfg(3, "A", 3)),
            "invalid setting: output 3 is not a 336 heater output (1 or 2)"
        );
        assert!(e(cfg(1, "A", 0)).contains("heater_range 0 outside 1..=3"));
        assert!(e(cfg(1, "E", 3)).contains("input \"E\" is not a 336 sensor input"));
    }
}
