//! Driver for SCPI digital multimeters used as a triggered digitizer
//! (Keysight 34465A family, and the virtual bench's emulation), over a raw
//! LAN socket.
//!
//! The meter stamps nothing: after the external trigger edge it takes
//! `SAMP:COUN` readings, reading j at `TRIG:DEL + j * SAMP:TIM` on its own
//! timebase. `TRIG:DEL` is set to 0 so reading 0 coincides with the edge.

use tokio::net::TcpStream;
use vegard_recipe::DeflectionConfig;

use crate::device::{BoxFut, DeflectionProbe, DigitizerSetup, DigitizerTrigger};
use crate::error::{Fault, InstrumentError};
use crate::scpi::{ScpiClient, decode_real64, scpi_number};
use crate::transport::lan_address;
use vegard_core::keysight_34465a;
use vegard_recipe::Resource;

const ROLE: &str = "dmm";

/// A SCPI DMM on a TCP socket.
pub struct ScpiDmm {
    client: ScpiClient<TcpStream>,
    resource: String,
    max_samples: u64,
}

impl ScpiDmm {
    /// Connect (within `cfg.timeout_s`) to a `TCPIP::host::port::SOCKET`
    /// resource. Nothing is sent yet.
    pub async fn connect(
        cfg: &DeflectionConfig,
        resource: &Resource,
    ) -> Result<ScpiDmm, InstrumentError> {
        let name = resource.to_string();
        let err = |fault| InstrumentError::Device {
            role: ROLE,
            resource: name.clone(),
            fault,
        };
        let (host, port) = lan_address(resource, "scpi-dmm", "<port>").map_err(err)?;
        let client = ScpiClient::connect_tcp(host, port, cfg.timeout_s, "\n")
            .await
            .map_err(err)?;
        Ok(ScpiDmm {
            client,
            resource: name,
            max_samples: cfg.max_samples,
        })
    }

    fn err(&self, fault: Fault) -> InstrumentError {
        InstrumentError::Device {
            role: ROLE,
            resource: self.resource.clone(),
            fault,
        }
    }

    /// The command sequence for `setup`, checked before anything is sent.
    pub fn configure_commands(&self, setup: &DigitizerSetup) -> Result<Vec<String>, Fault> {
        configure_commands(setup, self.max_samples)
    }

    async fn configure_impl(&mut self, setup: DigitizerSetup) -> Result<(), InstrumentError> {
        let commands = self.configure_commands(&setup).map_err(|f| self.err(f))?;
        // Each command checked on its own, so a refused one is named.
        for cmd in &commands {
            self.client
                .write_checked(cmd)
                .await
                .map_err(|f| self.err(f))?;
        }
        Ok(())
    }

    async fn arm_impl(&mut self) -> Result<(), InstrumentError> {
        self.client.write("INIT").await.map_err(|f| self.err(f))?;
        // A query right behind INIT proves the meter processed it (commands
        // are executed in order) and surfaces e.g. "Init ignored". Not
        // `*OPC?`: on Keysight meters it waits for the whole acquisition,
        // i.e. until after the trigger we are about to send.
        self.client
            .check_errors("INIT")
            .await
            .map_err(|f| self.err(f))
    }

    /// `STAT:QUES?` (the event register, cleared by reading it and by the
    /// `*CLS` of configure): bit 14 is a reading-memory overflow.
    async fn readings_lost_impl(&mut self) -> Result<bool, InstrumentError> {
        const Q: &str = "STAT:QUES?";
        let reply = self.client.query(Q).await.map_err(|f| self.err(f))?;
        let bits: u16 = reply.trim().trim_start_matches('+').parse().map_err(|e| {
            self.err(Fault::BadReply {
                command: Q.into(),
                reply: reply.clone(),
                reason: format!("not a register value: {e}"),
            })
        })?;
        Ok(bits & keysight_34465a::QUES_MEMORY_OVERFLOW != 0)
    }

    async fn fetch_impl(&mut self) -> Result<Vec<f64>, InstrumentError> {
        let payload = self
            .client
            .query_block("R?")
            .await
            .map_err(|f| self.err(f))?;
        decode_real64(&payload).map_err(|e| {
            self.err(Fault::BadReply {
                command: "R?".into(),
                reply: format!("<{} bytes>", payload.len()),
                reason: e.to_string(),
            })
        })
    }
}

/// `*CLS`, range, aperture, trigger, timer sampling, count, binary format.
fn configure_commands(setup: &DigitizerSetup, max_samples: u64) -> Result<Vec<String>, Fault> {
    let interval = setup.sample_interval_s;
    if !(interval.is_finite() && interval > 0.0) {
        return Err(Fault::InvalidSetting(format!(
            "sample_interval_s = {interval} must be > 0"
        )));
    }
    let max_samples = max_samples.min(keysight_34465a::SAMPLE_COUNT_MAX);
    if setup.count == 0 || setup.count > max_samples {
        return Err(Fault::InvalidSetting(format!(
            "sample count {} outside 1..={max_samples} (max_samples)",
            setup.count
        )));
    }
    if setup.triggers == 0 || setup.triggers > keysight_34465a::TRIGGER_COUNT_MAX {
        return Err(Fault::InvalidSetting(format!(
            "trigger count {} outside 1..={}",
            setup.triggers,
            keysight_34465a::TRIGGER_COUNT_MAX
        )));
    }
    if !(setup.range_V.is_finite() && setup.range_V > 0.0) {
        return Err(Fault::InvalidSetting(format!(
            "range_V = {} must be > 0",
            setup.range_V
        )));
    }
    // The limits vegard validate checks too (vegard_core::keysight_34465a).
    let aperture_s = keysight_34465a::aperture_for_interval_s(interval)
        .map_err(|why| Fault::InvalidSetting(format!("sample_interval_s = {interval} s: {why}")))?;
    let mut cmds = vec![
        "*CLS".to_string(),
        format!("CONF:VOLT:DC {}", scpi_number(setup.range_V)),
        format!("VOLT:DC:APER {}", scpi_number(aperture_s)),
        // Auto-zero off: a reading then takes its aperture, which fits the
        // sample period (on, the zero reading doubles it).
        "VOLT:DC:ZERO:AUTO OFF".to_string(),
    ];
    match setup.trigger {
        DigitizerTrigger::External => {
            cmds.push("TRIG:SOUR EXT".into());
            cmds.push("TRIG:SLOP POS".into());
        }
        DigitizerTrigger::Immediate => cmds.push("TRIG:SOUR IMM".into()),
    }
    cmds.extend([
        format!("TRIG:COUN {}", setup.triggers),
        "TRIG:DEL 0".to_string(),
        "SAMP:SOUR TIM".to_string(),
        format!("SAMP:TIM {}", scpi_number(interval)),
        format!("SAMP:COUN {}", setup.count),
        "FORM:DATA REAL,64".to_string(),
    ]);
    Ok(cmds)
}

impl DeflectionProbe for ScpiDmm {
    fn identify(&mut self) -> BoxFut<'_, String> {
        Box::pin(async move { self.client.idn().await.map_err(|f| self.err(f)) })
    }

    fn configure(&mut self, setup: DigitizerSetup) -> BoxFut<'_, ()> {
        Box::pin(self.configure_impl(setup))
    }

    fn arm(&mut self) -> BoxFut<'_, ()> {
        Box::pin(self.arm_impl())
    }

    fn fetch(&mut self) -> BoxFut<'_, Vec<f64>> {
        Box::pin(self.fetch_impl())
    }

    fn abort(&mut self) -> BoxFut<'_, ()> {
        Box::pin(async move { self.client.write("ABOR").await.map_err(|f| self.err(f)) })
    }

    fn readings_lost(&mut self) -> BoxFut<'_, bool> {
        Box::pin(self.readings_lost_impl())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_sequence() {
        let setup = DigitizerSetup {
            sample_interval_s: 0.01,
            count: 500,
            triggers: 1,
            range_V: 10.0,
            trigger: DigitizerTrigger::External,
        };
        assert_eq!(
            configure_commands(&setup, 1_000_000).unwrap(),
            [
                "*CLS",
                "CONF:VOLT:DC 10",
                "VOLT:DC:APER 0.008",
                "VOLT:DC:ZERO:AUTO OFF",
                "TRIG:SOUR EXT",
                "TRIG:SLOP POS",
                "TRIG:COUN 1",
                "TRIG:DEL 0",
                "SAMP:SOUR TIM",
                "SAMP:TIM 0.01",
                "SAMP:COUN 500",
                "FORM:DATA REAL,64",
            ]
        );
        // Slow sampling: aperture capped at 1 s.
        let slow = DigitizerSetup {
            sample_interval_s: 5.0,
            ..setup
        };
        assert_eq!(
            configure_commands(&slow, 1_000_000).unwrap()[2],
            "VOLT:DC:APER 1"
        );
    }

    #[test]
    fn configure_refuses_impossible_setups() {
        let ok = DigitizerSetup {
            sample_interval_s: 0.001,
            count: 10,
            triggers: 1,
            range_V: 1.0,
            trigger: DigitizerTrigger::External,
        };
        for bad in [
            DigitizerSetup {
                sample_interval_s: 0.0,
                ..ok
            },
            DigitizerSetup {
                sample_interval_s: 1e-6,
                ..ok
            },
            // Below 20 us (50 kSa/s): the meter cannot.
            DigitizerSetup {
                sample_interval_s: 19e-6,
                ..ok
            },
            DigitizerSetup { count: 0, ..ok },
            DigitizerSetup { triggers: 0, ..ok },
            DigitizerSetup {
                triggers: 2_000_000_000,
                ..ok
            },
            DigitizerSetup { count: 11, ..ok },
            DigitizerSetup {
                range_V: f64::NAN,
                ..ok
            },
        ] {
            assert!(configure_commands(&bad, 10).is_err(), "{bad:?}");
        }
        let e = configure_commands(&DigitizerSetup { count: 11, ..ok }, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting: sample count 11 outside 1..=10 (max_samples)"
        );
    }
}
