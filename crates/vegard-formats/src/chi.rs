//! CH Instruments text exports.
//!
//! Layout: a date line (`Feb. 20, 2020   15:55:08`), the technique
//! (`A.C. Impedance`, `Cyclic Voltammetry`, ...), `Key: value` and
//! `Key = value` parameter lines, then a comma-separated header naming the
//! columns (`Freq/Hz, Z'/ohm, Z"/ohm, Z/ohm, Phase/deg`;
//! `Potential/V, Current/A`; `Time/sec, Current/A`), a blank line and the
//! data. CHI writes Z" with its physical sign (the impedance.py example's
//! low-frequency points are negative), so it is taken as is. A CV export
//! has no time column: the time is derived from the scan rate, said in
//! `meta`.

use std::collections::BTreeMap;

use crate::csv::{Delim, Header, Quantity, impedance_from_header, numbered_lines, read_columns};
use crate::text::{decode, number};
use crate::{EcSeries, Format, FormatError, ImagSign, ImpedanceData, unrecognised};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whether a line is CHI's date line: a month abbreviation, a day, a
/// 4-digit year after a comma, and a clock time.
fn is_date_line(line: &str) -> bool {
    let l = line.trim();
    MONTHS.iter().any(|m| l.starts_with(m))
        && l.contains(", ")
        && l.contains(':')
        && l.split(", ")
            .nth(1)
            .is_some_and(|rest| rest.len() >= 4 && rest.chars().take(4).all(|c| c.is_ascii_digit()))
}

/// Whether a line could be a technique name (words, no digits or `:`).
fn is_technique_line(line: &str) -> bool {
    let l = line.trim();
    !l.is_empty()
        && l.len() <= 60
        && l.chars().any(|c| c.is_alphabetic())
        && l.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '.' | '-' | '/' | '(' | ')'))
}

/// Whether the content is this format: the date line, a technique line,
/// and CHI's `Instrument Model:`/`Data Source:`/`File:` lines near the top.
pub fn sniff(bytes: &[u8]) -> bool {
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or(bytes);
    let text = decode(head);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(date), Some(tech)) = (lines.next(), lines.next()) else {
        return false;
    };
    is_date_line(date)
        && is_technique_line(tech)
        && lines.take(12).any(|l| {
            l.starts_with("Instrument Model:")
                || l.starts_with("Data Source:")
                || l.starts_with("File:")
        })
}

/// Technique, parameters and the data table of a CHI export.
struct Chi<'a> {
    technique: String,
    meta: BTreeMap<String, String>,
    header: Header,
    data: Vec<(usize, &'a str)>,
}

fn parse<'a>(text: &'a str, source: &str, expected: &str) -> Result<Chi<'a>, FormatError> {
    let lines: Vec<(usize, &str)> = numbered_lines(text);
    let nonblank: Vec<(usize, &str)> = lines
        .iter()
        .copied()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut meta = BTreeMap::new();
    let date = nonblank
        .first()
        .map(|(_, l)| l.trim().to_string())
        .unwrap_or_default();
    let technique = nonblank
        .get(1)
        .map(|(_, l)| l.trim().to_string())
        .unwrap_or_default();
    meta.insert("date".to_string(), date);
    meta.insert("technique".to_string(), technique.clone());
    // The header is the first non-numeric line followed by numeric rows
    // with as many comma-separated fields.
    let mut header_at = None;
    for (k, (_, line)) in nonblank.iter().enumerate().skip(2) {
        let fields = Delim::Comma.split(line);
        let numeric = |fs: &[&str]| !fs.is_empty() && fs.iter().all(|f| number(f).is_some());
        if fields.len() >= 2 && !numeric(&fields) {
            if let Some((_, next)) = nonblank.get(k + 1) {
                let nf = Delim::Comma.split(next);
                if nf.len() == fields.len() && numeric(&nf) {
                    header_at = Some(k);
                    break;
                }
            }
        }
        for sep in [" = ", ": "] {
            if let Some((key, value)) = line.split_once(sep) {
                meta.insert(key.trim().to_string(), value.trim().to_string());
                break;
            }
        }
    }
    let Some(h) = header_at else {
        return Err(unrecognised(
            source,
            format!("CH Instruments '{technique}' export without a data table"),
            expected,
        ));
    };
    let Some(&(hline_no, hline)) = nonblank.get(h) else {
        return Err(unrecognised(source, "no header".to_string(), expected));
    };
    let header = Header::parse(hline_no, hline, Delim::Comma);
    let data: Vec<(usize, &str)> = lines
        .iter()
        .copied()
        .filter(|(n, l)| *n > hline_no && !l.trim().is_empty())
        .collect();
    Ok(Chi {
        technique,
        meta,
        header,
        data,
    })
}

/// Read an A.C. Impedance export: Freq/Hz, Z'/ohm, Z"/ohm by name.
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let expected = "a CH Instruments A.C. Impedance export (Freq/Hz, Z'/ohm, Z\"/ohm)";
    let text = decode(bytes);
    let chi = parse(&text, source, expected)?;
    let mut z = impedance_from_header(Format::ChiText, &chi.header, &chi.data, source, expected)?;
    if z.imag_sign == ImagSign::AsIs {
        z.sign_note = "CH Instruments writes Z\" with its physical sign (negative for a capacitive arc); taken as is".to_string();
    }
    let mut meta = chi.meta;
    meta.append(&mut z.meta);
    z.meta = meta;
    Ok(z)
}

/// Read a CV / i-t / OCP-t export: potential and current by name; time
/// from a Time column, else derived from the scan rate (|ΔE| summed over
/// the sweep divided by `Scan Rate (V/s)`); a constant-potential run
/// without a potential column takes `Init E (V)`.
pub fn series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    let expected =
        "a CH Instruments CV / i-t export (Potential/V, Current/A or Time/sec, Current/A)";
    let text = decode(bytes);
    let chi = parse(&text, source, expected)?;
    let h = &chi.header;
    let mut meta = chi.meta.clone();
    meta.insert("columns".to_string(), h.names.join(" | "));
    let cur = h.find(Quantity::Current).ok_or_else(|| {
        unrecognised(
            source,
            format!(
                "the header (line {}) names {} but no current",
                h.line,
                h.names_joined()
            ),
            expected,
        )
    })?;
    let t_col = h.find(Quantity::Time);
    let e_col = h.find(Quantity::Potential);
    let mut cols = vec![cur];
    cols.extend(t_col);
    cols.extend(e_col);
    let mut v = read_columns(&chi.data, h.delim, &cols, source)?.into_iter();
    let i_a = v.next().unwrap_or_default();
    let t_read = t_col.and_then(|_| v.next());
    let e_read = e_col.and_then(|_| v.next());
    let last = chi.data.last().map(|(n, _)| *n).unwrap_or(h.line);
    if i_a.is_empty() {
        return Err(FormatError::Text {
            path: source.to_string(),
            line: last,
            why: "no data rows".to_string(),
        });
    }
    let params = chi.meta.clone();
    let param = |key: &str| params.get(key).and_then(|v| number(v));
    let e_v = match e_read {
        Some(e) => e,
        None => {
            let e0 = param("Init E (V)").ok_or_else(|| FormatError::Text {
                path: source.to_string(),
                line: h.line,
                why: "no potential column and no 'Init E (V)' parameter".to_string(),
            })?;
            meta.insert(
                "E_note".to_string(),
                "no potential column: E = Init E (V) throughout".to_string(),
            );
            vec![e0; i_a.len()]
        }
    };
    let t_s = match t_read {
        Some(t) => t,
        None => {
            let rate = param("Scan Rate (V/s)")
                .filter(|r| *r > 0.0)
                .ok_or_else(|| FormatError::Text {
                    path: source.to_string(),
                    line: h.line,
                    why: "no time column and no positive 'Scan Rate (V/s)' to derive it from"
                        .to_string(),
                })?;
            let mut t = Vec::with_capacity(e_v.len());
            let mut acc = 0.0;
            let mut prev = e_v.first().copied().unwrap_or(0.0);
            for e in &e_v {
                acc += (e - prev).abs() / rate;
                prev = *e;
                t.push(acc);
            }
            meta.insert(
                "t_note".to_string(),
                format!(
                    "no time column: t derived from the scan rate {rate} V/s as the summed |ΔE| / rate from the first point (quiet time not included)"
                ),
            );
            t
        }
    };
    meta.insert(
        "I_note".to_string(),
        "current as CHI writes it (its sign convention is a software setting not stated in the file)"
            .to_string(),
    );
    let (start_unix_ns, start_note) = match meta.get("date").and_then(|d| chi_date_ns(d)) {
        Some(ns) => (
            Some(ns),
            Some("the date line is the local time of the acquiring PC, no time zone in the file; read as UTC".to_string()),
        ),
        None => (None, None),
    };
    Ok(EcSeries {
        format: Format::ChiText,
        t_s,
        E_V: e_v,
        I_A: i_a,
        cycle: None,
        technique: Some(chi.technique),
        start_unix_ns,
        start_note,
        meta,
    })
}

/// `Feb. 20, 2020   15:55:08` as ns since the epoch (wall clock as UTC).
fn chi_date_ns(line: &str) -> Option<i64> {
    let l = line.trim();
    let m = MONTHS.iter().position(|m| l.starts_with(m))? as i64 + 1;
    let rest = l.get(3..)?.trim_start_matches('.').trim();
    let (day, rest) = rest.split_once(',')?;
    let day: i64 = day.trim().parse().ok()?;
    let mut parts = rest.split_whitespace();
    let year: i64 = parts.next()?.parse().ok()?;
    let hms: Vec<i64> = parts
        .next()?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<i64>>>()?;
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    if !(1900..=9999).contains(&year)
        || !(1..=31).contains(&day)
        || !(0..24).contains(h)
        || !(0..60).contains(mi)
        || !(0..61).contains(s)
    {
        return None;
    }
    let days = crate::gamry::days_from_civil(year, m, day);
    Some((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000_000)
}
