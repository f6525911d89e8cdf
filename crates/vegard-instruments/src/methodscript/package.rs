//! MethodSCRIPT data packages (`P` lines): decoding to typed values and the
//! inverse encoding (used by test peers and emulators).
//!
//! Wire format per variable: two-letter type, 7 hex digits offset by
//! 0x8000000, one SI-prefix character (`a f p n u m`, space, `k M G T P E`, or
//! `i` for an integer), then optional `,`-separated metadata: `1h` status
//! nibble, `2hh` current-range index. The 8 characters `     nan` mean NaN.

use std::fmt;

use super::MsError;

/// Offset of the 28-bit two's-complement-like encoding.
const OFFSET: i64 = 0x800_0000;

/// Status nibble bits (metadata `1h`).
pub mod status {
    pub const TIMING_ERROR: u8 = 0x1;
    pub const OVERLOAD: u8 = 0x2;
    pub const UNDERLOAD: u8 = 0x4;
    pub const OVERLOAD_WARNING: u8 = 0x8;
}

/// What a package variable measures (its two-letter type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    /// `da`: set (applied) potential, V.
    SetPotential,
    /// `ab`: measured working-electrode potential, V.
    MeasuredPotential,
    /// `ba`: working-electrode current, A.
    Current,
    /// `dc`: applied frequency, Hz.
    Frequency,
    /// `cc`: impedance real part Z', ohm.
    ZReal,
    /// `cd`: impedance imaginary part Z'', ohm.
    ZImag,
    /// `eb`: time, s.
    Time,
    /// Any other two-character type code, kept verbatim.
    Other([u8; 2]),
}

impl VarType {
    pub fn from_code(code: [u8; 2]) -> VarType {
        match &code {
            b"da" => VarType::SetPotential,
            b"ab" => VarType::MeasuredPotential,
            b"ba" => VarType::Current,
            b"dc" => VarType::Frequency,
            b"cc" => VarType::ZReal,
            b"cd" => VarType::ZImag,
            b"eb" => VarType::Time,
            _ => VarType::Other(code),
        }
    }

    pub fn code(self) -> [u8; 2] {
        match self {
            VarType::SetPotential => *b"da",
            VarType::MeasuredPotential => *b"ab",
            VarType::Current => *b"ba",
            VarType::Frequency => *b"dc",
            VarType::ZReal => *b"cc",
            VarType::ZImag => *b"cd",
            VarType::Time => *b"eb",
            VarType::Other(c) => c,
        }
    }
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.code();
        write!(f, "{}{}", char::from(c[0]), char::from(c[1]))
    }
}

/// One decoded variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub kind: VarType,
    /// SI base units (V, A, Hz, ohm, s); NaN when the device sent `nan`.
    pub value: f64,
    /// Status nibble (see [`status`]), when the device sent one.
    pub status: Option<u8>,
    /// Current-range index, when the device sent one.
    pub range: Option<u8>,
}

/// One `P` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub vars: Vec<Var>,
}

impl Package {
    /// The first variable of `kind`.
    pub fn get(&self, kind: VarType) -> Option<&Var> {
        self.vars.iter().find(|v| v.kind == kind)
    }

    /// OR of all variables' status nibbles (0 when none was sent).
    pub fn status(&self) -> u8 {
        self.vars
            .iter()
            .filter_map(|v| v.status)
            .fold(0, |a, s| a | s)
    }
}

/// SI prefix character -> power of ten. Space and `i` (integer) are 10^0.
fn prefix_exp(c: u8) -> Option<i32> {
    Some(match c {
        b'a' => -18,
        b'f' => -15,
        b'p' => -12,
        b'n' => -9,
        b'u' => -6,
        b'm' => -3,
        b' ' | b'i' => 0,
        b'k' => 3,
        b'M' => 6,
        b'G' => 9,
        b'T' => 12,
        b'P' => 15,
        b'E' => 18,
        _ => return None,
    })
}

/// Scale an integer count by 10^exp. Dividing by an exact power of ten (not
/// multiplying by the inexact 1e-6) gives the correctly rounded value, so
/// -499905u decodes to exactly the double nearest -0.499905.
fn scale(n: i64, exp: i32) -> f64 {
    if exp < 0 {
        n as f64 / 10f64.powi(-exp)
    } else {
        n as f64 * 10f64.powi(exp)
    }
}

/// Decode a `P` line (with its leading `P`).
pub fn parse_package(line: &str) -> Result<Package, MsError> {
    let bad = |reason: String| MsError::BadPackage {
        line: line.to_string(),
        reason,
    };
    let body = line
        .strip_prefix('P')
        .ok_or_else(|| bad("does not start with 'P'".into()))?;
    if body.is_empty() {
        return Err(bad("no variables".into()));
    }
    let mut vars = Vec::new();
    for (i, field) in body.split(';').enumerate() {
        vars.push(parse_var(field).map_err(|r| bad(format!("variable {}: {r}", i + 1)))?);
    }
    Ok(Package { vars })
}

/// Why one variable of a package does not decode; the text becomes the
/// `reason` of [`MsError::BadPackage`] after `variable N: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum VarError {
    #[error("{0:?} is shorter than type + 8 value characters")]
    Short(String),
    #[error("bad type code {0:?}")]
    TypeCode(String),
    #[error("bad hex digits in {0:?}")]
    HexDigits(String),
    #[error("{0}")]
    Value(#[from] std::num::ParseIntError),
    #[error("unknown SI prefix {0:?}")]
    Prefix(char),
    #[error("unexpected {0:?} after the value")]
    Trailing(String),
    #[error("bad metadata entry {0:?}")]
    Metadata(String),
}

fn parse_var(field: &str) -> Result<Var, VarError> {
    let b = field.as_bytes();
    if b.len() < 10 {
        return Err(VarError::Short(field.to_string()));
    }
    if !b[..2].iter().all(u8::is_ascii_alphanumeric) {
        return Err(VarError::TypeCode(
            String::from_utf8_lossy(&b[..2]).into_owned(),
        ));
    }
    let kind = VarType::from_code([b[0], b[1]]);
    let value_text = &b[2..10];
    let value = if value_text == b"     nan" {
        f64::NAN
    } else {
        let hex = std::str::from_utf8(&value_text[..7])
            .ok()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| VarError::HexDigits(field.to_string()))?;
        let raw = i64::from_str_radix(hex, 16)?;
        let exp = prefix_exp(value_text[7]).ok_or(VarError::Prefix(char::from(value_text[7])))?;
        scale(raw - OFFSET, exp)
    };
    let mut var = Var {
        kind,
        value,
        status: None,
        range: None,
    };
    let meta = &field[10..];
    if meta.is_empty() {
        return Ok(var);
    }
    let Some(meta) = meta.strip_prefix(',') else {
        return Err(VarError::Trailing(meta.to_string()));
    };
    for entry in meta.split(',') {
        let hex_of =
            |s: &str| u8::from_str_radix(s, 16).map_err(|_| VarError::Metadata(entry.to_string()));
        match entry.as_bytes().first() {
            Some(b'1') if entry.len() == 2 => var.status = Some(hex_of(&entry[1..])?),
            Some(b'2') if entry.len() == 3 => var.range = Some(hex_of(&entry[1..])?),
            // Other metadata ids exist on newer firmware; none is used here.
            Some(c) if c.is_ascii_hexdigit() && entry.len() >= 2 => {}
            _ => return Err(VarError::Metadata(entry.to_string())),
        }
    }
    Ok(var)
}

/// Encode one value as 7 hex digits + prefix, choosing the smallest prefix
/// whose count still fits (maximum resolution), or `     nan`.
pub fn encode_value(value: f64) -> Result<String, MsError> {
    if value.is_nan() {
        return Ok("     nan".into());
    }
    const ORDER: [(u8, i32); 13] = [
        (b'a', -18),
        (b'f', -15),
        (b'p', -12),
        (b'n', -9),
        (b'u', -6),
        (b'm', -3),
        (b' ', 0),
        (b'k', 3),
        (b'M', 6),
        (b'G', 9),
        (b'T', 12),
        (b'P', 15),
        (b'E', 18),
    ];
    for (c, exp) in ORDER {
        let n = if exp < 0 {
            value * 10f64.powi(-exp)
        } else {
            value / 10f64.powi(exp)
        }
        .round();
        if n.is_finite() && n.abs() < OFFSET as f64 {
            let raw = n as i64 + OFFSET;
            return Ok(format!("{raw:07X}{}", char::from(c)));
        }
    }
    Err(MsError::BadLiteral {
        text: value.to_string(),
        reason: "too large for a package variable".into(),
    })
}

/// Encode a whole package line (with leading `P`).
pub fn encode_package(vars: &[Var]) -> Result<String, MsError> {
    let mut out = String::from("P");
    for (i, v) in vars.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(&v.kind.to_string());
        out.push_str(&encode_value(v.value)?);
        if let Some(s) = v.status {
            out.push_str(&format!(",1{:X}", s & 0xF));
        }
        if let Some(r) = v.range {
            out.push_str(&format!(",2{r:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        ((a - b) / b).abs() <= rel
    }

    // Known answers from the public PalmSens examples (PROTOCOLS.md). The
    // hex carries more digits than the quoted values; the tolerance is the
    // quoted values' own rounding.
    #[test]
    fn known_answer_cv_package() {
        let p = parse_package("Pda7F85F3Fu;ba48D503Dp,10,288").unwrap();
        assert_eq!(p.vars.len(), 2);
        let e = &p.vars[0];
        assert_eq!(e.kind, VarType::SetPotential);
        assert_eq!(e.value, -0.499905); // exact: -499905 u
        assert_eq!((e.status, e.range), (None, None));
        let i = &p.vars[1];
        assert_eq!(i.kind, VarType::Current);
        assert!(close(i.value, -5.7848e-5, 1e-5), "{}", i.value); // -5.7847747e-5 quoted to 5 digits
        assert_eq!(i.value, -57_847_747e-12);
        assert_eq!(i.status, Some(0));
        assert_eq!(i.range, Some(0x88));
        assert_eq!(p.status(), 0);
    }

    #[test]
    fn known_answer_underload_package() {
        let p = parse_package("Pda84E63DAn;ba82AB973f,14,284").unwrap();
        assert!(close(p.vars[0].value, 5.137e-3, 1e-4)); // 5.13737 mV quoted as 5.137
        assert!(close(p.vars[0].value, 5.13737e-3, 1e-6));
        assert!(close(p.vars[1].value, 2.80e-9, 1e-3)); // 2.799987 nA quoted as 2.80
        assert_eq!(p.vars[1].value, 2_799_987e-15);
        assert_eq!(p.vars[1].status, Some(status::UNDERLOAD));
        assert_eq!(p.vars[1].range, Some(0x84));
        assert_eq!(p.status(), status::UNDERLOAD);
    }

    #[test]
    fn known_answer_eis_package() {
        let p = parse_package("PdcDF5DFF4u;cc896D904m,10,287;cd82DB1A8u,10,287").unwrap();
        let kinds: Vec<_> = p.vars.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [VarType::Frequency, VarType::ZReal, VarType::ZImag]);
        assert!(close(p.vars[0].value, 99.9997, 1e-6)); // 99.999732 Hz
        assert!(close(p.vars[1].value, 9885.956, 1e-9)); // exact in m
        assert!(close(p.vars[2].value, 2.9946, 1e-9)); // exact in u
        assert_eq!(p.vars[2].range, Some(0x87));
    }

    #[test]
    fn nan_integer_space_and_other_types() {
        let p = parse_package("Pab     nan;ja8000005i;eb8000010 ").unwrap();
        assert!(p.vars[0].value.is_nan());
        assert_eq!(p.vars[1].kind, VarType::Other(*b"ja"));
        assert_eq!(p.vars[1].kind.to_string(), "ja");
        assert_eq!(p.vars[1].value, 5.0);
        assert_eq!(p.vars[2].kind, VarType::Time);
        assert_eq!(p.vars[2].value, 16.0);
    }

    #[test]
    fn rejects_garbage() {
        for line in [
            "P",
            "Q",
            "Pda123",
            "Pda7F85F3Gu",
            "Pda7F85F3Fx",
            "Pda7F85F3Fu;",
            "Pda7F85F3Fu,1",
            "Pda7F85F3Fu,1Z",
            "Pda7F85F3Fuxx",
            "P\u{e9}a7F85F3Fu",
        ] {
            assert!(parse_package(line).is_err(), "{line:?} accepted");
        }
        let e = parse_package("Pda7F85F3Fx").unwrap_err().to_string();
        assert!(
            e.contains("Pda7F85F3Fx") && e.contains("unknown SI prefix"),
            "{e}"
        );
    }

    #[test]
    fn encoder_round_trips_with_max_resolution() {
        // The contract's emulator example `Pda8061A80u` is 0.4 V: 4e8 n
        // does not fit 27 bits, 4e5 u does.
        assert_eq!(encode_value(0.4).unwrap(), "8061A80u");
        assert_eq!(encode_value(-0.499905).unwrap(), "7F85F3Fu");
        assert_eq!(
            parse_package("Pda8061A80u;ba7FFD8F0n,10,206").unwrap().vars[1].value,
            -10000e-9
        );
        for v in [
            -0.499905, 5.13737e-3, 2.8e-9, 1.0, -1.0, 123.456, 0.0, -7.5e-11,
        ] {
            let text = encode_package(&[Var {
                kind: VarType::Current,
                value: v,
                status: Some(status::OVERLOAD),
                range: Some(0x2A),
            }])
            .unwrap();
            let back = parse_package(&text).unwrap();
            let var = &back.vars[0];
            // 27-bit counts: relative resolution better than 1e-6 for
            // |count| >= 1e6 (always true except zero with max resolution).
            assert!(var.value == v || close(var.value, v, 1e-6), "{v} -> {text}");
            assert_eq!(var.status, Some(status::OVERLOAD));
            assert_eq!(var.range, Some(0x2A));
        }
        assert_eq!(encode_value(f64::NAN).unwrap(), "     nan");
    }
}
