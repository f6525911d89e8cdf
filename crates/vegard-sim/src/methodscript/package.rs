//! MethodSCRIPT data-package values: `<7 hex digits><SI prefix>`, value =
//! (hex - 0x8000000) x prefix, `     nan` for NaN.

/// SI prefixes from the finest up; the encoder takes the first that fits.
const PREFIXES: [(char, f64); 13] = [
    ('a', 1e-18),
    ('f', 1e-15),
    ('p', 1e-12),
    ('n', 1e-9),
    ('u', 1e-6),
    ('m', 1e-3),
    (' ', 1.0),
    ('k', 1e3),
    ('M', 1e6),
    ('G', 1e9),
    ('T', 1e12),
    ('P', 1e15),
    ('E', 1e18),
];
const OFFSET: i64 = 0x800_0000;
/// The 8-character encoding of a value the device could not measure.
const NAN: &str = "     nan";

/// Encodes `value` with the finest prefix whose mantissa still fits in
/// 7 hex digits around the offset (maximum resolution, as the firmware does).
pub(crate) fn encode_value(value: f64) -> String {
    if !value.is_finite() {
        return NAN.to_string();
    }
    for (prefix, scale) in PREFIXES {
        let mantissa = (value / scale).round();
        if mantissa.abs() < OFFSET as f64 {
            return format!("{:07X}{prefix}", mantissa as i64 + OFFSET);
        }
    }
    // Beyond 1.3e26 in any unit: saturate rather than wrap.
    let m = if value > 0.0 { OFFSET - 1 } else { 1 - OFFSET };
    format!("{:07X}E", m + OFFSET)
}

/// Decodes one `<7 hex><prefix>` value (the inverse of [`encode_value`]);
/// the drivers have their own decoder, this one checks the encoder.
#[cfg(test)]
fn decode_value(s: &str) -> Option<f64> {
    if s == NAN {
        return Some(f64::NAN);
    }
    let hex = s.get(..7)?;
    let prefix = s.get(7..)?.chars().next()?;
    if s.len() != 8 {
        return None;
    }
    let raw = i64::from_str_radix(hex, 16).ok()?;
    let scale = match prefix {
        'i' => 1.0,
        p => PREFIXES.iter().find(|(c, _)| *c == p)?.1,
    };
    Some((raw - OFFSET) as f64 * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_examples_decode_to_their_values() {
        let cases = [
            ("7F85F3Fu", -0.499905, 1e-12),
            ("48D503Dp", -5.7847747e-5, 1e-18),
            ("84E63DAn", 5.13737e-3, 1e-15),
            ("82AB973f", 2.799987e-9, 1e-21),
            ("DF5DFF4u", 99.999732, 1e-9),
            ("896D904m", 9885.956, 1e-9),
            ("82DB1A8u", 2.9946, 1e-12),
            ("8061A80u", 0.4, 1e-12),
        ];
        for (s, v, tol) in cases {
            let got = decode_value(s).unwrap();
            assert!((got - v).abs() < tol, "{s}: {got} vs {v}");
        }
    }

    #[test]
    fn encoder_picks_the_published_prefix_and_round_trips() {
        for s in ["7F85F3Fu", "48D503Dp", "84E63DAn", "8061A80u", "DF5DFF4u"] {
            assert_eq!(encode_value(decode_value(s).unwrap()), s);
        }
        assert_eq!(encode_value(0.0), "8000000a");
        assert_eq!(encode_value(f64::NAN), "     nan");
        assert!(decode_value("     nan").unwrap().is_nan());
    }

    #[test]
    fn resolution_is_half_a_count_of_the_smallest_mantissa() {
        // The finest prefix leaves a mantissa of at least 0x8000000 / 1000 =
        // 134218 counts, so rounding costs at most 0.5 / 134218 = 3.7e-6.
        for v in [
            1.234_567_89e-7,
            -0.912_345_678,
            0.134_3,
            3.3e-3,
            42.0,
            -7.77e4,
        ] {
            let back = decode_value(&encode_value(v)).unwrap();
            assert!(((back - v) / v).abs() < 3.8e-6, "{v} -> {back}");
        }
    }
}
