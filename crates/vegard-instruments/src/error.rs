//! The crate's error types. [`Fault`] is what went wrong on one link (a
//! timeout, a device error line, a garbled reply); [`InstrumentError`] adds
//! which instrument it happened on, so a message read in a log or a terminal
//! names the device, its address and the offending reply without context:
//! `potentiostat ASRL/dev/pts/3::INSTR: device error !4004: measurement fault`.

use thiserror::Error;

/// What went wrong talking to one instrument. Protocol clients return this;
/// drivers wrap it into [`InstrumentError::Device`] with the device's name.
#[derive(Debug, Error)]
pub enum Fault {
    /// No (complete) reply within the per-reply timeout.
    #[error("timeout after {after_s:.1} s waiting for {waiting_for}")]
    Timeout { waiting_for: String, after_s: f64 },
    /// The instrument reported an error line (`!XXXX` in MethodSCRIPT).
    #[error("device error !{code:04X}{}", detail_suffix(detail))]
    DeviceError { code: u16, detail: String },
    /// The SCPI error queue (`SYST:ERR?`) was not empty after `after`.
    #[error("instrument reported {} error(s) after {after}: {}", errors.len(), errors.join("; "))]
    ErrorQueue { after: String, errors: Vec<String> },
    /// The instrument's status register says it refused `command`.
    #[error("instrument rejected {command:?}: {detail}")]
    Rejected { command: String, detail: String },
    /// A reply that does not follow the protocol.
    #[error("unexpected reply to {command}: {reply:?} ({reason})")]
    BadReply {
        command: String,
        reply: String,
        reason: String,
    },
    /// A setting the driver refuses to send (would not fit the protocol or the
    /// instrument), caught before anything goes on the wire.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The safety path switched the cell off on this instrument; the driver
    /// refuses to start anything after that (open the instrument again).
    #[error("cell was switched off by the safety path; not starting a new script")]
    SwitchedOff,
    /// The switch-off was sent but the instrument did not acknowledge it in
    /// time: it may be hung, and the cell (sine, heater) may still be on.
    #[error("switch-off not confirmed: no {waiting_for} from the instrument within {after_s:.1} s")]
    SwitchOffNotConfirmed { waiting_for: String, after_s: f64 },
    /// A line that is neither a valid reply nor an error report (noise on
    /// the line, a baud-rate mismatch): reported as such, never as a device
    /// error, whatever characters it happens to contain.
    #[error(
        "garbled line from the instrument while waiting for {waiting_for}: {line:?} ({reason})"
    )]
    Garbled {
        waiting_for: String,
        line: String,
        reason: String,
    },
    /// The resource kind does not fit this driver (e.g. a serial port given to
    /// a LAN-only driver).
    #[error("unsupported resource: {0}")]
    UnsupportedResource(String),
    /// The port or socket could not be opened.
    #[error("cannot open {target}: {reason}")]
    Open { target: String, reason: String },
    /// The peer closed the link.
    #[error("connection closed by the instrument while waiting for {waiting_for}")]
    Closed { waiting_for: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Every error this crate returns.
#[derive(Debug, Error)]
pub enum InstrumentError {
    /// A resource string that cannot be used.
    #[error("resource {text:?}: {reason}")]
    Resource { text: String, reason: String },
    /// A driver name that is not in the registry.
    #[error("unknown {role} driver {name:?}; known {role} drivers: {known}")]
    UnknownDriver {
        role: &'static str,
        name: String,
        known: String,
    },
    /// Something went wrong on a named instrument.
    #[error("{role} {resource}: {fault}")]
    Device {
        /// `potentiostat`, `dmm`, ...
        role: &'static str,
        /// The resource string of the instrument, canonical form.
        resource: String,
        fault: Fault,
    },
}

impl InstrumentError {
    /// The fault of a device error, for callers that react to the kind
    /// (e.g. retry on timeout).
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            InstrumentError::Device { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

pub type Result<T, E = InstrumentError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_device_and_reply() {
        let e = InstrumentError::Device {
            role: "potentiostat",
            resource: "ASRL/dev/pts/3::INSTR".into(),
            fault: Fault::DeviceError {
                code: 0x4004,
                detail: "measurement fault".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "potentiostat ASRL/dev/pts/3::INSTR: device error !4004: measurement fault"
        );
        let e = InstrumentError::Device {
            role: "dmm",
            resource: "TCPIP::127.0.0.1::5025::SOCKET".into(),
            fault: Fault::Timeout {
                waiting_for: "reply to R?".into(),
                after_s: 2.0,
            },
        };
        assert_eq!(
            e.to_string(),
            "dmm TCPIP::127.0.0.1::5025::SOCKET: timeout after 2.0 s waiting for reply to R?"
        );
        let f = Fault::DeviceError {
            code: 6,
            detail: String::new(),
        };
        assert_eq!(f.to_string(), "device error !0006");
    }
}
