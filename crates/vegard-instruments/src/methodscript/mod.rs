//! The PalmSens MethodSCRIPT protocol, independent of any port: numeric
//! literals, script generation for the techniques vegard runs, the device's
//! output lines and its data packages. The driver that puts this on a serial
//! port is [`crate::drivers::methodscript`]; the wire contract is described in
//! `protocols/methodscript.md`.

mod literal;
mod package;
mod script;

pub use literal::{format_int, format_si, parse_literal};
pub use package::{Package, Var, VarType, encode_package, encode_value, parse_package, status};
pub use script::{ScriptFrame, build_script};

use thiserror::Error;

/// Protocol-level errors (no device name yet; drivers add it).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MsError {
    #[error("bad literal {text:?}: {reason}")]
    BadLiteral { text: String, reason: String },
    #[error("bad data package {line:?}: {reason}")]
    BadPackage { line: String, reason: String },
    #[error("bad line {line:?}: {reason}")]
    BadLine { line: String, reason: String },
    #[error("cannot build script: {0}")]
    Script(String),
}

/// One line of device output, classified by its first character.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `e`: the script was accepted and is running.
    ScriptAccepted,
    /// `M` + 4 hex digits: a measurement loop started.
    LoopStart(u16),
    /// `*`: the measurement loop ended.
    LoopEnd,
    /// `C` + 4 hex digits: a scan started (inside `nscans`).
    ScanStart(u16),
    /// `-`: a scan ended (inside `nscans`).
    ScanEnd,
    /// `P...`: one data package.
    Data(Package),
    /// `T...`: free text from the script.
    Text(String),
    /// A line containing `!XXXX` (optionally `:detail`).
    DeviceError { code: u16, detail: String },
    /// `Z`: the running script was aborted on request.
    Abort,
    /// The empty line: the script (incl. `on_finished`) is done.
    EndOfScript,
    /// Anything else (version lines, `L`/`+` plain loops, ...).
    Other(String),
}

/// Classify one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(raw: &str) -> Result<Line, MsError> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    let bad = |reason: &str| MsError::BadLine {
        line: line.to_string(),
        reason: reason.to_string(),
    };
    if line.is_empty() {
        return Ok(Line::EndOfScript);
    }
    if let Some(text) = line.strip_prefix('T') {
        return Ok(Line::Text(text.to_string()));
    }
    if let Some((code, detail)) = find_error(line).map_err(bad)? {
        return Ok(Line::DeviceError { code, detail });
    }
    match line {
        "e" => return Ok(Line::ScriptAccepted),
        "*" => return Ok(Line::LoopEnd),
        "-" => return Ok(Line::ScanEnd),
        "Z" => return Ok(Line::Abort),
        _ => {}
    }
    if line.starts_with('P') {
        return parse_package(line).map(Line::Data);
    }
    if let Some(hex) = line.strip_prefix('M') {
        return hex4(hex)
            .map(Line::LoopStart)
            .ok_or_else(|| bad("expected M + 4 hex digits"));
    }
    if let Some(hex) = line.strip_prefix('C') {
        return hex4(hex)
            .map(Line::ScanStart)
            .ok_or_else(|| bad("expected C + 4 hex digits"));
    }
    Ok(Line::Other(line.to_string()))
}

fn hex4(s: &str) -> Option<u16> {
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u16::from_str_radix(s, 16).ok())
        .flatten()
}

/// An error report: `!XXXX` at the start of the line, or right after the
/// one-letter echo of a host command (`Z!0006`, `e!2001`), then the end of
/// the line or a detail after `:` or a space (`!4004: measurement fault`).
/// `Err` for a line with a `!` anywhere else: noise that happens to contain
/// `!` and four hex digits (`Pda7F!2DDCu`) is a garbled line, not a device
/// error.
fn find_error(line: &str) -> Result<Option<(u16, String)>, &'static str> {
    let Some(at) = line.find('!') else {
        return Ok(None);
    };
    let prefix_ok = at == 0 || (at == 1 && line.as_bytes()[0].is_ascii_alphabetic());
    let rest = &line[at + 1..];
    let code = rest.get(..4).and_then(hex4);
    let tail = rest.get(4..).unwrap_or("");
    match code {
        Some(code) if prefix_ok && (tail.is_empty() || tail.starts_with([':', ' '])) => {
            let detail = tail.strip_prefix(':').unwrap_or(tail).trim().to_string();
            Ok(Some((code, detail)))
        }
        _ => Err("garbled: '!' outside an error report (!XXXX at the line's start)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(parse_line("e").unwrap(), Line::ScriptAccepted);
        assert_eq!(parse_line("M0000").unwrap(), Line::LoopStart(0));
        assert_eq!(parse_line("M00A1\r").unwrap(), Line::LoopStart(0xA1));
        assert_eq!(parse_line("C0002").unwrap(), Line::ScanStart(2));
        assert_eq!(parse_line("*").unwrap(), Line::LoopEnd);
        assert_eq!(parse_line("-").unwrap(), Line::ScanEnd);
        assert_eq!(parse_line("Z").unwrap(), Line::Abort);
        assert_eq!(parse_line("").unwrap(), Line::EndOfScript);
        assert_eq!(parse_line("\r").unwrap(), Line::EndOfScript);
        assert_eq!(parse_line("Thello!").unwrap(), Line::Text("hello!".into()));
        assert_eq!(parse_line("L").unwrap(), Line::Other("L".into()));
        assert_eq!(
            parse_line("R1.4.0#vegard virtual bench*").unwrap(),
            Line::Other("R1.4.0#vegard virtual bench*".into())
        );
        match parse_line("Pda7F85F3Fu;ba48D503Dp,10,288").unwrap() {
            Line::Data(p) => assert_eq!(p.vars.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn device_errors() {
        assert_eq!(
            parse_line("!4004: measurement fault").unwrap(),
            Line::DeviceError {
                code: 0x4004,
                detail: "measurement fault".into()
            }
        );
        assert_eq!(
            parse_line("Z!0006").unwrap(),
            Line::DeviceError {
                code: 6,
                detail: String::new()
            }
        );
        assert_eq!(
            parse_line("!2001:syntax error").unwrap(),
            Line::DeviceError {
                code: 0x2001,
                detail: "syntax error".into()
            }
        );
        // A '!' anywhere else is noise, not an error report.
        for garbled in ["hey!", "Pda7F!2DDCu;ba48D503Dp", "ab!2DDC", "!2DDCx", "!2D"] {
            let e = parse_line(garbled).unwrap_err().to_string();
            assert!(e.contains("garbled"), "{garbled}: {e}");
        }
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_line("M12").is_err());
        assert!(parse_line("Mzzzz").is_err());
        assert!(parse_line("C00000").is_err());
        let e = parse_line("Pxx").unwrap_err().to_string();
        assert!(e.starts_with("bad data package \"Pxx\""), "{e}");
    }
}
