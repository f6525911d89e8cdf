//! MethodSCRIPT numeric literals: a decimal mantissa with an SI-prefix
//! suffix (`400m`, `-100m`, `10n`, `1.6k`), integers with `i` (`3i`) and hex
//! (`0x01`, `0x01i`). Scripts are generated with [`format_si`], and
//! [`parse_literal`] exists so tests (and emulators) can check that what goes
//! on the wire means the number that was intended.

use super::MsError;

/// Engineering prefixes usable in literals, with their decimal exponent.
const PREFIXES: [(i32, &str); 13] = [
    (-18, "a"),
    (-15, "f"),
    (-12, "p"),
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

/// Decimals kept in the mantissa: mantissas lie in [1, 1000), so this keeps
/// 12-14 significant digits (far below any instrument's resolution) while
/// rounding away binary noise such as 0.4 * 1000 = 400.00000000000006.
const MANTISSA_DECIMALS: usize = 11;

/// Format `x` as an SI-suffixed literal with the mantissa in [1, 1000):
/// 0.4 -> `400m`, -0.1 -> `-100m`, 1e-8 -> `10n`, 400 -> `400`.
pub fn format_si(x: f64) -> Result<String, MsError> {
    if !x.is_finite() {
        return Err(MsError::BadLiteral {
            text: x.to_string(),
            reason: "not a finite number".into(),
        });
    }
    if x == 0.0 {
        return Ok("0".into());
    }
    let mag = x.abs();
    if !(1e-18..1e21).contains(&mag) {
        return Err(MsError::BadLiteral {
            text: x.to_string(),
            reason: "outside the SI prefix range a..E".into(),
        });
    }
    let mut exp3 = ((mag.log10() / 3.0).floor() as i32 * 3).clamp(-18, 18);
    loop {
        let text = mantissa_text(x, exp3);
        // log10 rounding or mantissa rounding can land on 1000.0 or 0.999...
        let m: f64 = text.parse().unwrap_or(0.0);
        if m.abs() >= 1000.0 && exp3 < 18 {
            exp3 += 3;
            continue;
        }
        if m.abs() < 1.0 && exp3 > -18 {
            exp3 -= 3;
            continue;
        }
        let suffix = PREFIXES
            .iter()
            .find(|(e, _)| *e == exp3)
            .map(|(_, s)| *s)
            .unwrap_or("");
        return Ok(format!("{text}{suffix}"));
    }
}

fn mantissa_text(x: f64, exp3: i32) -> String {
    // Multiplying by an exact power of ten keeps 0.4 -> 400 exact where
    // dividing by the inexact 1e-3 would not.
    let m = if exp3 < 0 {
        x * 10f64.powi(-exp3)
    } else {
        x / 10f64.powi(exp3)
    };
    let s = format!("{m:.MANTISSA_DECIMALS$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// An integer literal, `3i`.
pub fn format_int(n: i64) -> String {
    format!("{n}i")
}

/// Parse a literal as a device would: decimal with optional SI suffix, `i`
/// integers, `0x` hex (optionally with a trailing `i`).
pub fn parse_literal(text: &str) -> Result<f64, MsError> {
    let bad = |reason: &str| MsError::BadLiteral {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let hex = hex.strip_suffix('i').unwrap_or(hex);
        return u64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .map_err(|_| bad("bad hex digits"));
    }
    let Some(last) = t.chars().last() else {
        return Err(bad("empty"));
    };
    if last == 'i' {
        let body = &t[..t.len() - 1];
        return body
            .parse::<i64>()
            .map(|v| v as f64)
            .map_err(|_| bad("bad integer before 'i'"));
    }
    let (body, exp) = if last.is_ascii_alphabetic() {
        let exp = PREFIXES
            .iter()
            .find(|(_, s)| s.len() == 1 && s.starts_with(last))
            .map(|(e, _)| *e)
            .ok_or_else(|| bad("unknown SI prefix"))?;
        (&t[..t.len() - 1], exp)
    } else {
        (t, 0)
    };
    let digits = body.strip_prefix(['-', '+']).unwrap_or(body);
    let well_formed = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if !well_formed {
        return Err(bad("expected [-]digits[.digits][SI prefix]"));
    }
    // Parse mantissa and exponent together so the decimal is rounded once.
    format!("{body}e{exp}")
        .parse::<f64>()
        .map_err(|_| bad("not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_examples() {
        for (x, s) in [
            (0.4, "400m"),
            (-0.1, "-100m"),
            (0.002, "2m"),
            (0.2, "200m"),
            (0.9, "900m"),
            (1e-8, "10n"),
            (1e-9, "1n"),
            (0.01, "10m"),
            (400.0, "400"),
            (2.0, "2"),
            (1600.0, "1.6k"),
            (0.0125, "12.5m"),
            (0.0, "0"),
            (-0.0, "0"),
            (1e-4, "100u"),
        ] {
            assert_eq!(format_si(x).unwrap(), s, "{x}");
        }
        assert_eq!(format_int(3), "3i");
        assert!(format_si(f64::NAN).is_err());
        assert!(format_si(1e-20).is_err());
    }

    #[test]
    fn round_trip_keeps_digits() {
        // Relative error bound: >= 12 significant digits -> < 1e-11.
        let mut x = 1.234_567_890_123e-15;
        while x < 1e17 {
            for v in [x, -x, x * 0.999_999_999_7, x * 7.654_321] {
                let s = format_si(v).unwrap();
                let back = parse_literal(&s).unwrap();
                assert!(((back - v) / v).abs() < 1e-11, "{v} -> {s} -> {back}");
            }
            x *= 3.3;
        }
        // The rounding edge: mantissa rounds to 1000 -> next prefix.
        assert_eq!(format_si(0.999_999_999_999_999e-3).unwrap(), "1m");
        assert_eq!(format_si(0.999_999_999_9e-3).unwrap(), "999.9999999u");
    }

    #[test]
    fn parses_device_literals() {
        assert_eq!(parse_literal("500m").unwrap(), 0.5);
        assert_eq!(parse_literal("-100m").unwrap(), -0.1);
        assert_eq!(parse_literal("1k").unwrap(), 1000.0);
        assert_eq!(parse_literal("2i").unwrap(), 2.0);
        assert_eq!(parse_literal("0x01").unwrap(), 1.0);
        assert_eq!(parse_literal("0x1Fi").unwrap(), 31.0);
        assert_eq!(parse_literal("0.5").unwrap(), 0.5);
        assert_eq!(parse_literal("12.5m").unwrap(), 0.0125);
        for bad in ["", "m", "1.2.3m", "1x", "abc", "1e5", "0xzz", "-"] {
            assert!(parse_literal(bad).is_err(), "{bad:?} accepted");
        }
    }
}
