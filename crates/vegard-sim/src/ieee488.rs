//! The IEEE 488.2 common commands of the line-server emulators (SR860,
//! Lake Shore 336): `*IDN?`, `*RST`, `*CLS`, `*ESR?` and `*OPC?` behave the
//! same on both, so they are answered here once, together with the
//! standard event status register they read and clear.
//!
//! The 34465A emulator (`dmm`) is built on the `scpi` parser and takes the
//! same commands from `scpi-contrib`'s `IEEE4882` handlers; it shares only
//! the register's bit names from here.

/// Bits of the standard event status register.
pub(crate) const ESR_OPC: u8 = 1 << 0;
pub(crate) const ESR_EXE: u8 = 1 << 4;
pub(crate) const ESR_CME: u8 = 1 << 5;

/// The identity and the standard event status register of an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ieee488Status {
    /// The `*IDN?` reply.
    idn: &'static str,
    esr: u8,
}

impl Ieee488Status {
    pub(crate) const fn new(idn: &'static str) -> Self {
        Ieee488Status { idn, esr: 0 }
    }

    /// Sets `bits` in the event status register (a refused command).
    pub(crate) fn set(&mut self, bits: u8) {
        self.esr |= bits;
    }
}

/// An instrument that answers program lines of `;`-separated commands.
pub(crate) trait Ieee488Instrument {
    /// Whether a failed command drops the rest of its line (the SR860) or
    /// the line goes on (the 336, which ignores what it does not know).
    const STOP_LINE_AT_ERROR: bool;

    fn status(&mut self) -> &mut Ieee488Status;

    /// `*RST`: the instrument's settings back to their defaults.
    fn reset(&mut self);

    /// One instrument-specific command (upper-cased mnemonic with `?` for a
    /// query, trimmed arguments): its reply, or `Err(bits)` to set in the
    /// event status register.
    fn command(&mut self, head: &str, args: &[String]) -> Result<Option<String>, u8>;
}

/// `Some(reply)` for a common command, `None` when `head` is not one.
fn common_command<I: Ieee488Instrument>(inst: &mut I, head: &str) -> Option<Option<String>> {
    Some(match head {
        "*IDN?" => Some(inst.status().idn.to_string()),
        "*RST" => {
            inst.reset();
            None
        }
        "*CLS" => {
            inst.status().esr = 0;
            None
        }
        "*ESR?" => Some(std::mem::take(&mut inst.status().esr).to_string()),
        "*OPC?" => Some("1".into()),
        _ => return None,
    })
}

/// Runs every command of one program line in order: common commands here,
/// the rest through [`Ieee488Instrument::command`]. The replies are joined
/// with `;`; `None` when no command asked for one.
pub(crate) fn handle_line<I: Ieee488Instrument>(inst: &mut I, line: &str) -> Option<String> {
    let mut replies = Vec::new();
    for (head, args) in crate::line_server::split_commands(line) {
        let result = match common_command(inst, &head) {
            Some(reply) => Ok(reply),
            None => inst.command(&head, &args),
        };
        match result {
            Ok(Some(reply)) => replies.push(reply),
            Ok(None) => {}
            Err(bits) => {
                inst.status().set(bits);
                if I::STOP_LINE_AT_ERROR {
                    break;
                }
            }
        }
    }
    (!replies.is_empty()).then(|| replies.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in instrument with one setting and one query.
    struct Probe {
        status: Ieee488Status,
        level: u8,
        resets: u32,
    }

    impl Ieee488Instrument for Probe {
        const STOP_LINE_AT_ERROR: bool = true;
        fn status(&mut self) -> &mut Ieee488Status {
            &mut self.status
        }
        fn reset(&mut self) {
            self.level = 0;
            self.resets += 1;
        }
        fn command(&mut self, head: &str, args: &[String]) -> Result<Option<String>, u8> {
            match head {
                "LVL" => {
                    self.level = args.first().and_then(|a| a.parse().ok()).ok_or(ESR_CME)?;
                    Ok(None)
                }
                "LVL?" => Ok(Some(self.level.to_string())),
                _ => Err(ESR_CME),
            }
        }
    }

    #[test]
    fn common_commands_and_the_event_status_register() {
        let mut p = Probe {
            status: Ieee488Status::new("ACME,PROBE,0,1"),
            level: 0,
            resets: 0,
        };
        assert_eq!(
            handle_line(&mut p, "*idn?;LVL 7;lvl?;*OPC?").as_deref(),
            Some("ACME,PROBE,0,1;7;1")
        );
        // An unknown command sets CME and drops the rest of the line.
        assert_eq!(handle_line(&mut p, "BOGUS;LVL?"), None);
        assert_eq!(handle_line(&mut p, "*ESR?").as_deref(), Some("32"));
        assert_eq!(handle_line(&mut p, "*ESR?").as_deref(), Some("0"));
        p.status.set(ESR_EXE);
        assert_eq!(handle_line(&mut p, "*CLS;*ESR?").as_deref(), Some("0"));
        assert_eq!(handle_line(&mut p, "*RST;LVL?").as_deref(), Some("0"));
        assert_eq!(p.resets, 1);
    }
}
