//! Numbers and durations for people: one set of rules shared by the CLI,
//! the dashboard and the reports, so the same value reads the same
//! everywhere (and a negative zero never appears as a sign).

/// `v` with `decimals` decimals; `-0.00` (a rounding artefact, not a sign)
/// prints as `0.00`. Non-finite values give an empty string: callers choose
/// their own placeholder.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Remove trailing zeros after a decimal point (`2.50` -> `2.5`, `3.0` -> `3`).
pub fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `m e k` with as many mantissa decimals as a step of `10^step_exp`
/// resolves (axis ticks).
pub fn sci(v: f64, step_exp: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return String::new();
    }
    let mut e = v.abs().log10().floor() as i32;
    let decimals = (e - step_exp).clamp(0, 6) as usize;
    let mut m = v / 10f64.powi(e);
    let mut s = format!("{m:.decimals$}");
    if s.trim_start_matches('-').starts_with("10") {
        e += 1;
        m = v / 10f64.powi(e);
        s = format!("{m:.decimals$}");
    }
    format!("{}e{e}", trim_zeros(s))
}

/// Up to `sig` significant digits, fixed point between 1e-3 and 1e5, trailing
/// zeros dropped; an exponent outside. Empty for non-finite values.
pub fn sig(v: f64, sig: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return String::new();
    }
    let e = v.abs().log10().floor() as i32;
    if (-3..5).contains(&e) {
        let decimals = (sig - 1 - e).max(0) as usize;
        trim_zeros(fixed(v, decimals))
    } else {
        sci(v, e - (sig - 1))
    }
}

/// A measured value: `value ± se` with the error to two significant digits
/// and the value to the same decimal place, or four significant digits
/// without an error. Very large or small magnitudes use a shared exponent:
/// `(1.23 ± 0.05)e-4`. Non-finite values print as `—`.
pub fn value_se(value: f64, se: Option<f64>) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    match se {
        Some(se) if se.is_finite() && se > 0.0 => {
            let mag = value.abs().max(se);
            let exp = mag.log10().floor() as i32;
            let (scale, suffix) = if (-3..5).contains(&exp) {
                (0, String::new())
            } else {
                (exp, format!("e{exp}"))
            };
            let v = value / 10f64.powi(scale);
            let e = se / 10f64.powi(scale);
            // Decimal places that keep two significant digits of the error.
            let decimals = (1 - e.log10().floor() as i32).clamp(0, 12) as usize;
            if suffix.is_empty() {
                format!("{v:.decimals$} ± {e:.decimals$}")
            } else {
                format!("({v:.decimals$} ± {e:.decimals$}){suffix}")
            }
        }
        Some(_) => format!("{} ± —", value_se(value, None)),
        None => {
            if value == 0.0 {
                return "0".to_owned();
            }
            if value.fract() == 0.0 && value.abs() < 1e9 {
                return format!("{value:.0}");
            }
            let exp = value.abs().log10().floor() as i32;
            if (-3..5).contains(&exp) {
                let decimals = (3 - exp).clamp(0, 12) as usize;
                format!("{value:.decimals$}")
            } else {
                format!("{value:.3e}")
            }
        }
    }
}

/// A duration in words, to the second below an hour: `95 s` -> `1 min 35 s`,
/// `5400 s` -> `1 h 30 min` (plans and summaries).
pub fn duration_words(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, m, sec) => format!("{m} min {sec} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// A duration in one unit, for narrow places (dashboard): `12.3 s`,
/// `4.5 min`, `2.75 h`; `–` when unknown.
pub fn duration_short(s: f64) -> String {
    if !s.is_finite() {
        "–".into()
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.2} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(sig(1234.5678, 4), "1235");
        assert_eq!(sig(0.012345, 4), "0.01235");
        assert_eq!(sig(1.5e-7, 4), "1.5e-7");
        assert_eq!(sig(2.0e9, 4), "2e9");
        assert_eq!(sig(9.99999e-6, 4), "1e-5");
        assert_eq!(sig(f64::NAN, 4), "");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(-0.5, 2), "-0.50");
        assert_eq!(value_se(-0.205273, Some(0.000083)), "-0.205273 ± 0.000083");
        assert_eq!(value_se(0.4498, Some(0.0009)), "0.44980 ± 0.00090");
        assert_eq!(value_se(150.4e-6, Some(2.1e-6)), "(1.504 ± 0.021)e-4");
        assert_eq!(value_se(f64::NAN, Some(1.0)), "—");
        assert_eq!(value_se(1.5, Some(f64::NAN)), "1.500 ± —");
        assert_eq!(value_se(298.16, None), "298.2");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_words(95.0), "1 min 35 s");
        assert_eq!(duration_words(5400.0), "1 h 30 min");
        assert_eq!(duration_words(-3.0), "0 s");
        assert_eq!(duration_short(12.34), "12.3 s");
        assert_eq!(duration_short(270.0), "4.5 min");
        assert_eq!(duration_short(9900.0), "2.75 h");
        assert_eq!(duration_short(f64::NAN), "–");
    }
}
