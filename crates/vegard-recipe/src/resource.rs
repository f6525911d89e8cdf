//! VISA-style resource strings, the addresses users already know from
//! PyVISA / NI-MAX, parsed once into [`Resource`] when the bench config is
//! read (a bad one is a `bench.toml:LINE:COL` error like any other), so
//! nothing downstream ever sees the raw string. It lives here, in the
//! bench-config schema, rather than beside the drivers: the schema is
//! where input is parsed, and `vegard-instruments` (above) re-exports it.
//! Supported forms (VISA is case-insensitive, so are these):
//!
//! - `sim`: the built-in virtual bench (the CLI replaces it with the
//!   emulator's real resource before anything is opened);
//! - `ASRL<device path>::INSTR`: a serial port, e.g. `ASRL/dev/ttyACM0::INSTR`;
//! - `TCPIP[board]::<host>::<port>::SOCKET`: a raw TCP socket, e.g.
//!   `TCPIP::192.168.1.20::5025::SOCKET`.
//!
//! Numeric serial addresses (`ASRL3::INSTR`) need a VISA library's port table,
//! which vegard does not have, so they are rejected with a hint.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A resource string that is not one of the accepted forms: the text as
/// given and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource `{text}`: {reason}")]
pub struct ResourceError {
    pub text: String,
    pub reason: String,
}

/// Where an instrument is. In a bench config it is written as its string
/// (serde goes through [`Resource::parse`] and [`Display`](fmt::Display)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Resource {
    /// The virtual bench; must be substituted before opening.
    Sim,
    /// A serial port by device path (`/dev/ttyACM0`, `/dev/pts/7`, `COM3`).
    Serial { path: String },
    /// A raw TCP socket (SCPI over LAN, port 5025 on Keysight meters).
    Tcp { host: String, port: u16 },
}

impl Resource {
    /// Parse a resource string; see the module docs for the accepted forms.
    pub fn parse(text: &str) -> Result<Resource, ResourceError> {
        let err = |reason: &str| ResourceError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim();
        if t.eq_ignore_ascii_case("sim") {
            return Ok(Resource::Sim);
        }
        let upper = t.to_ascii_uppercase();
        if upper.starts_with("ASRL") {
            let Some(inner) = strip_suffix_ci(&t[4..], "::INSTR") else {
                return Err(err(
                    "serial resources look like ASRL/dev/ttyACM0::INSTR (missing ::INSTR)",
                ));
            };
            if inner.is_empty() {
                return Err(err(
                    "no device path after ASRL; give it like ASRL/dev/ttyACM0::INSTR",
                ));
            }
            if inner.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "numeric ASRL not supported, give the device path, e.g. ASRL/dev/ttyACM0::INSTR",
                ));
            }
            if inner.contains("::") {
                return Err(err(
                    "serial resources look like ASRL/dev/ttyACM0::INSTR (unexpected '::' in the path)",
                ));
            }
            return Ok(Resource::Serial {
                path: inner.to_string(),
            });
        }
        if upper.starts_with("TCPIP") {
            let parts: Vec<&str> = t.split("::").collect();
            let board = &parts[0][5..];
            if !board.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected TCPIP or TCPIP<n> before the first '::'"));
            }
            if parts.len() == 3 && parts[2].eq_ignore_ascii_case("INSTR") {
                return Err(err(
                    "VXI-11/HiSLIP (::INSTR) is not supported; use the raw socket form TCPIP::<host>::<port>::SOCKET",
                ));
            }
            if parts.len() != 4 || !parts[3].eq_ignore_ascii_case("SOCKET") {
                return Err(err(
                    "LAN resources look like TCPIP::192.168.1.20::5025::SOCKET",
                ));
            }
            let host = parts[1];
            if host.is_empty() {
                return Err(err("empty host name"));
            }
            let port: u16 = match parts[2].parse() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(err(&format!(
                        "port {:?} is not a number in 1..=65535",
                        parts[2]
                    )));
                }
            };
            return Ok(Resource::Tcp {
                host: host.to_string(),
                port,
            });
        }
        Err(err(
            "is not a VISA resource string; expected `sim`, `ASRL<device path>::INSTR` \
             or `TCPIP[n]::<host>::<port>::SOCKET`",
        ))
    }

    /// The virtual bench placeholder, to be replaced by the emulator's address.
    pub fn is_sim(&self) -> bool {
        *self == Resource::Sim
    }
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..cut)?, s.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

impl TryFrom<String> for Resource {
    type Error = ResourceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Resource::parse(&s)
    }
}

impl From<Resource> for String {
    fn from(r: Resource) -> String {
        r.to_string()
    }
}

impl FromStr for Resource {
    type Err = ResourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::parse(s)
    }
}

/// The canonical string, used in every error message about the device.
impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Sim => write!(f, "sim"),
            Resource::Serial { path } => write!(f, "ASRL{path}::INSTR"),
            Resource::Tcp { host, port } => write!(f, "TCPIP::{host}::{port}::SOCKET"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(Resource::parse("sim").unwrap(), Resource::Sim);
        assert_eq!(Resource::parse(" SIM ").unwrap(), Resource::Sim);
        assert_eq!(
            Resource::parse("ASRL/dev/ttyACM0::INSTR").unwrap(),
            Resource::Serial {
                path: "/dev/ttyACM0".into()
            }
        );
        assert_eq!(
            Resource::parse("asrl/dev/pts/7::instr").unwrap(),
            Resource::Serial {
                path: "/dev/pts/7".into()
            }
        );
        assert_eq!(
            Resource::parse("TCPIP::192.168.1.20::5025::SOCKET").unwrap(),
            Resource::Tcp {
                host: "192.168.1.20".into(),
                port: 5025
            }
        );
        assert_eq!(
            Resource::parse("TCPIP0::meter.lab::5025::SOCKET").unwrap(),
            Resource::Tcp {
                host: "meter.lab".into(),
                port: 5025
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sim",
            "ASRL/dev/ttyACM0::INSTR",
            "TCPIP::127.0.0.1::40123::SOCKET",
        ] {
            assert_eq!(Resource::parse(s).unwrap().to_string(), s);
        }
        // The board number is dropped: vegard has one LAN "board".
        assert_eq!(
            Resource::parse("TCPIP0::h::1::SOCKET").unwrap().to_string(),
            "TCPIP::h::1::SOCKET"
        );
    }

    #[test]
    fn rejected_forms_explain_themselves() {
        let msg = |s: &str| Resource::parse(s).unwrap_err().to_string();
        assert!(
            msg("ASRL3::INSTR").contains("numeric ASRL not supported, give the device path"),
            "{}",
            msg("ASRL3::INSTR")
        );
        assert!(msg("ASRL/dev/ttyACM0").contains("missing ::INSTR"));
        assert!(msg("ASRL::INSTR").contains("no device path"));
        assert!(msg("TCPIP::10.0.0.1::INSTR").contains("raw socket form"));
        assert!(msg("TCPIP::10.0.0.1::0::SOCKET").contains("port \"0\""));
        assert!(msg("TCPIP::10.0.0.1::http::SOCKET").contains("port \"http\""));
        assert!(msg("TCPIPx::h::1::SOCKET").contains("TCPIP<n>"));
        assert!(msg("TCPIP::::5025::SOCKET").contains("empty host"));
        assert!(msg("GPIB0::22::INSTR").contains("is not a VISA resource string; expected `sim`"));
        assert!(msg("ASRL3::INSTR").starts_with("resource `ASRL3::INSTR`: "));
        assert!(msg("TCPIP::host::99999::SOCKET").contains("port \"99999\""));
        assert!(msg("/dev/ttyACM0").contains("is not a VISA resource string"));
        assert!(msg("").contains("is not a VISA resource string"));
    }
}
