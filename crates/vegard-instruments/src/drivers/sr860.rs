//! Driver for Stanford Research SR860-family lock-in amplifiers (SR860,
//! SR865, SR865A) over a raw LAN socket, and for the virtual bench's
//! emulation of them. Commands and replies end in `\n` (the instrument's
//! LF terminator setting).
//!
//! Amplitudes: the [`LockIn`] trait speaks PEAK volts at the sine output,
//! while `SLVL` takes the sine-out amplitude in V RMS (like the SR830's
//! `SLVL`; `X`, `Y`, `R` are RMS as well), so the driver sends
//! `peak / sqrt 2`. The SR860 accepts 1 nV to 2 V RMS.
//!
//! The SR860 does not answer set commands; refused values are only visible
//! in its standard event status register. The driver range-checks every
//! value before it goes on the wire and reads `*ESR?` after every setting
//! (the reply also proves the setting was carried out), so a refused command
//! fails naming it; readings that do not parse are errors naming the command
//! and the reply.

use tokio::net::TcpStream;
use vegard_recipe::LockInConfig;

use crate::device::{BoxFut, LockIn, LockInReading};
use crate::error::{Fault, InstrumentError};
use crate::scpi::{ScpiClient, scpi_number};
use crate::transport::lan_address;
use vegard_recipe::Resource;

const ROLE: &str = "lock-in";

/// Time constants selectable with `OFLT i`, s: 1 us to 30 ks in 1-3-10
/// steps (index = position in this table).
pub const TIME_CONSTANTS_S: [f64; 22] = [
    1e-6, 3e-6, 10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3, 100e-3, 300e-3, 1.0, 3.0,
    10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 10e3, 30e3,
];
/// Sine-out amplitude limits of `SLVL`, V RMS.
pub const SLVL_MIN_V_RMS: f64 = 1e-9;
pub const SLVL_MAX_V_RMS: f64 = 2.0;
/// Internal reference frequency limits of `FREQ` (SR860), Hz: the driver
/// table's, which bench validation checks recipes against.
pub const FREQ_MIN_HZ: f64 = vegard_recipe::SR860_FREQ_RANGE_HZ[0];
pub const FREQ_MAX_HZ: f64 = vegard_recipe::SR860_FREQ_RANGE_HZ[1];
/// `SNAP?` parameters: X (0), Y (1) and the internal reference frequency
/// (15), taken at the same instant.
pub const SNAP_XY_FREQ: &str = "SNAP? 0,1,15";

/// `OFLT` index of the shortest time constant >= `tc_s` (with a 1e-9
/// relative allowance so 0.1 maps to the 100 ms entry, not 300 ms).
pub fn time_constant_index(tc_s: f64) -> Result<usize, Fault> {
    if !(tc_s.is_finite() && tc_s > 0.0) {
        return Err(Fault::InvalidSetting(format!(
            "time constant {tc_s} s must be > 0"
        )));
    }
    TIME_CONSTANTS_S
        .iter()
        .position(|&t| t >= tc_s * (1.0 - 1e-9))
        .ok_or_else(|| {
            Fault::InvalidSetting(format!(
                "time constant {tc_s} s exceeds the SR860's longest (30 ks)"
            ))
        })
}

/// A PEAK amplitude as the `SLVL` argument (V RMS), range-checked.
pub fn slvl_from_peak(amplitude_V_peak: f64) -> Result<f64, Fault> {
    let rms = amplitude_V_peak / std::f64::consts::SQRT_2;
    if !(rms.is_finite() && (SLVL_MIN_V_RMS * (1.0 - 1e-9)..=SLVL_MAX_V_RMS).contains(&rms)) {
        return Err(Fault::InvalidSetting(format!(
            "sine amplitude {amplitude_V_peak} V peak ({rms} V RMS) outside the SR860's {SLVL_MIN_V_RMS}..{SLVL_MAX_V_RMS} V RMS"
        )));
    }
    Ok(rms)
}

/// An SR860 on a TCP socket.
pub struct Sr860 {
    client: ScpiClient<TcpStream>,
    resource: String,
    /// `RSRC 0` (internal reference) and `SYNC 1` (synchronous filter) are
    /// sent with the first `set_sine`.
    reference_internal: bool,
}

impl Sr860 {
    /// Connect (within `cfg.timeout_s`) to a `TCPIP::host::port::SOCKET`
    /// resource. Nothing is sent yet.
    pub async fn connect(
        cfg: &LockInConfig,
        resource: &Resource,
    ) -> Result<Sr860, InstrumentError> {
        let name = resource.to_string();
        let err = |fault| InstrumentError::Device {
            role: ROLE,
            resource: name.clone(),
            fault,
        };
        let (host, port) = lan_address(resource, "sr860", "<port>").map_err(err)?;
        let client = ScpiClient::connect_tcp(host, port, cfg.timeout_s, "\n")
            .await
            .map_err(err)?;
        Ok(Sr860 {
            client,
            resource: name,
            reference_internal: false,
        })
    }

    fn err(&self, fault: Fault) -> InstrumentError {
        InstrumentError::Device {
            role: ROLE,
            resource: self.resource.clone(),
            fault,
        }
    }

    /// A setting, then `*ESR?`: fails naming `cmd` if the lock-in refused it.
    async fn set(&mut self, cmd: &str) -> Result<(), InstrumentError> {
        self.client
            .write_checked_esr(cmd)
            .await
            .map_err(|f| self.err(f))
    }

    async fn identify_impl(&mut self) -> Result<String, InstrumentError> {
        let idn = self.client.idn().await.map_err(|f| self.err(f))?;
        let model = idn.split(',').nth(1).unwrap_or("").trim();
        if !model.to_ascii_uppercase().starts_with("SR86") {
            return Err(self.err(Fault::BadReply {
                command: "*IDN?".into(),
                reply: idn,
                reason: "wrong instrument: expected an SR860-family lock-in \
                         (Stanford_Research_Systems,SR86x,...)"
                    .into(),
            }));
        }
        Ok(idn)
    }

    async fn set_sine_impl(
        &mut self,
        f_Hz: f64,
        amplitude_V_peak: f64,
    ) -> Result<(), InstrumentError> {
        if !(f_Hz.is_finite() && (FREQ_MIN_HZ..=FREQ_MAX_HZ).contains(&f_Hz)) {
            return Err(self.err(Fault::InvalidSetting(format!(
                "reference frequency {f_Hz} Hz outside the SR860's {FREQ_MIN_HZ}..{FREQ_MAX_HZ} Hz"
            ))));
        }
        let rms = slvl_from_peak(amplitude_V_peak).map_err(|f| self.err(f))?;
        if !self.reference_internal {
            self.set("RSRC 0").await?;
            // Synchronous filter: averages the products over whole
            // reference periods, removing the 2f ripple, so a short time
            // constant settles within an ESM dwell of a few periods.
            self.set("SYNC 1").await?;
            self.reference_internal = true;
        }
        self.set(&format!("FREQ {}", scpi_number(f_Hz))).await?;
        // The `*ESR?` after it is the proof the sine is at its new
        // frequency and amplitude before the potentiostat's loop starts.
        self.set(&format!("SLVL {}", scpi_number(rms))).await
    }

    /// `SLVL` to its minimum, `*ESR?`, then `SLVL?` must read the minimum
    /// back: the sine is reported off only when the lock-in says so.
    async fn sine_off_impl(&mut self) -> Result<(), InstrumentError> {
        let min = scpi_number(SLVL_MIN_V_RMS);
        self.set(&format!("SLVL {min}")).await?;
        let reply = self.client.query("SLVL?").await.map_err(|f| self.err(f))?;
        match reply.trim().parse::<f64>() {
            Ok(v) if (v - SLVL_MIN_V_RMS).abs() <= SLVL_MIN_V_RMS * 1e-3 => Ok(()),
            _ => Err(self.err(Fault::BadReply {
                command: "SLVL?".into(),
                reply,
                reason: format!("sine still on: expected {min} V RMS after SLVL {min}"),
            })),
        }
    }

    async fn set_time_constant_impl(&mut self, tc_s: f64) -> Result<f64, InstrumentError> {
        let i = time_constant_index(tc_s).map_err(|f| self.err(f))?;
        self.set(&format!("OFLT {i}")).await?;
        Ok(TIME_CONSTANTS_S[i])
    }

    async fn read_xy_impl(&mut self) -> Result<LockInReading, InstrumentError> {
        let reply = self
            .client
            .query(SNAP_XY_FREQ)
            .await
            .map_err(|f| self.err(f))?;
        let values: Option<Vec<f64>> = reply
            .split(',')
            .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        match values.as_deref() {
            Some(&[x_V_rms, y_V_rms, f_Hz]) => Ok(LockInReading {
                x_V_rms,
                y_V_rms,
                f_Hz,
            }),
            _ => Err(self.err(Fault::BadReply {
                command: SNAP_XY_FREQ.into(),
                reply,
                reason: "expected three comma-separated numbers (X, Y, frequency)".into(),
            })),
        }
    }
}

impl LockIn for Sr860 {
    /// `*IDN?`; the model field must start with `SR86`.
    fn identify(&mut self) -> BoxFut<'_, String> {
        Box::pin(self.identify_impl())
    }

    /// `RSRC 0` and `SYNC 1` (first call only), `FREQ f`, `SLVL peak/sqrt 2`,
    /// each followed by `*ESR?`, so the sine has changed (and nothing was
    /// refused) before this returns.
    fn set_sine(&mut self, f_Hz: f64, amplitude_V_peak: f64) -> BoxFut<'_, ()> {
        Box::pin(self.set_sine_impl(f_Hz, amplitude_V_peak))
    }

    /// `OFLT i` with the shortest tabulated time constant >= `tc_s`, checked
    /// with `*ESR?`.
    fn set_time_constant(&mut self, tc_s: f64) -> BoxFut<'_, f64> {
        Box::pin(self.set_time_constant_impl(tc_s))
    }

    /// `SNAP? 0,1,15`: X, Y (V RMS) and the internal reference frequency.
    fn read_xy(&mut self) -> BoxFut<'_, LockInReading> {
        Box::pin(self.read_xy_impl())
    }

    /// `SLVL 1e-9` (the smallest amplitude; the SR860 has no sine-off),
    /// checked with `*ESR?` and read back with `SLVL?`.
    fn sine_off(&mut self) -> BoxFut<'_, ()> {
        Box::pin(self.sine_off_impl())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_constant_table_is_1_3_10_from_1us_to_30ks() {
        assert_eq!(TIME_CONSTANTS_S.len(), 22);
        assert_eq!(TIME_CONSTANTS_S[0], 1e-6);
        assert_eq!(TIME_CONSTANTS_S[21], 30e3);
        for w in TIME_CONSTANTS_S.windows(2) {
            let r = w[1] / w[0];
            assert!(
                (r - 3.0).abs() < 1e-9 || (r - 10.0 / 3.0).abs() < 1e-9,
                "{w:?}"
            );
        }
        // Exact entries map to themselves, in-between values round up.
        assert_eq!(time_constant_index(1e-6).unwrap(), 0);
        assert_eq!(time_constant_index(0.1).unwrap(), 10);
        assert_eq!(time_constant_index(0.1000001).unwrap(), 11);
        assert_eq!(time_constant_index(0.3).unwrap(), 11);
        assert_eq!(time_constant_index(1.0).unwrap(), 12);
        assert_eq!(time_constant_index(1.5).unwrap(), 13);
        assert_eq!(time_constant_index(1e-9).unwrap(), 0);
        assert_eq!(time_constant_index(30e3).unwrap(), 21);
        assert!(time_constant_index(30.001e3).is_err());
        assert!(time_constant_index(0.0).is_err());
        assert!(time_constant_index(f64::NAN).is_err());
    }

    #[test]
    fn slvl_is_rms_of_the_peak_amplitude() {
        assert!((slvl_from_peak(0.02).unwrap() - 0.014142135623730952).abs() < 1e-15);
        assert!((slvl_from_peak(2.0 * std::f64::consts::SQRT_2).unwrap() - 2.0).abs() < 1e-15);
        assert!(slvl_from_peak(3.0).is_err()); // 2.12 V RMS
        assert!(slvl_from_peak(0.0).is_err());
        assert!(slvl_from_peak(f64::NAN).is_err());
        assert_eq!(
            scpi_number(slvl_from_peak(0.02).unwrap()),
            "0.0141421356237"
        );
    }
}
