//! Gamry Framework EXPLAIN files (.DTA): ZCURVE (impedance) and CURVE /
//! CURVEn (CV, CA, OCP) tables.
//!
//! Layout: the first line is `EXPLAIN`; header lines are
//! `KEY<tab>TYPE<tab>value<tab>label`; a table starts with
//! `NAME<tab>TABLE[<tab>count]`, followed by a tab-led line of column
//! names, a tab-led line of units, and tab-led data rows (the first column
//! `Pt` is the row index). Gamry writes Zimag with its physical sign
//! (negative for a capacitive arc), so it is taken as is. Numbers may use a
//! decimal comma on European Windows locales.

use std::collections::BTreeMap;

use crate::csv::numbered_lines;
use crate::text::{decode, number};
use crate::{EcSeries, Format, FormatError, ImagSign, ImpedanceData, unrecognised};

/// Whether the content is this format: the first line is `EXPLAIN`.
pub fn sniff(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match b.strip_prefix(b"EXPLAIN") {
        Some(rest) => rest.is_empty() || rest.starts_with(b"\r") || rest.starts_with(b"\n"),
        None => false,
    }
}

/// One table of the file.
struct Table<'a> {
    name: String,
    line: usize,
    names: Vec<String>,
    units: Vec<String>,
    rows: Vec<(usize, &'a str)>,
}

impl Table<'_> {
    fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Header values (`KEY` → value) and tables, in file order.
struct Explain<'a> {
    header: BTreeMap<String, String>,
    tables: Vec<Table<'a>>,
}

fn parse(text: &str) -> Explain<'_> {
    let lines = numbered_lines(text);
    let mut header = BTreeMap::new();
    let mut tables = Vec::new();
    let mut k = 0;
    while let Some(&(line_no, line)) = lines.get(k) {
        k += 1;
        if line.starts_with('\t') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let key = fields.first().map(|s| s.trim()).unwrap_or("");
        let kind = fields.get(1).map(|s| s.trim()).unwrap_or("");
        if kind == "TABLE" {
            let split = |l: &str| -> Vec<String> {
                l.strip_prefix('\t')
                    .unwrap_or(l)
                    .split('\t')
                    .map(|s| s.trim().to_string())
                    .collect()
            };
            let names = lines.get(k).map(|(_, l)| split(l)).unwrap_or_default();
            let units = lines.get(k + 1).map(|(_, l)| split(l)).unwrap_or_default();
            k += 2;
            let mut rows = Vec::new();
            while let Some(&(n, l)) = lines.get(k) {
                if !l.starts_with('\t') {
                    break;
                }
                rows.push((n, l));
                k += 1;
            }
            tables.push(Table {
                name: key.to_string(),
                line: line_no,
                names,
                units,
                rows,
            });
        } else if !key.is_empty() {
            let value = match kind {
                // `TAG<tab>EISPOT` has no type field.
                _ if fields.len() == 2 => kind,
                _ => fields.get(2).map(|s| s.trim()).unwrap_or(""),
            };
            header.insert(key.to_string(), value.to_string());
        }
    }
    Explain { header, tables }
}

fn read_cols(
    table: &Table<'_>,
    cols: &[usize],
    source: &str,
) -> Result<Vec<Vec<f64>>, FormatError> {
    let mut out: Vec<Vec<f64>> = cols
        .iter()
        .map(|_| Vec::with_capacity(table.rows.len()))
        .collect();
    for &(n, l) in &table.rows {
        let fields: Vec<&str> = l.strip_prefix('\t').unwrap_or(l).split('\t').collect();
        for (slot, &c) in out.iter_mut().zip(cols) {
            let name = table.names.get(c).map(String::as_str).unwrap_or("?");
            let v = fields
                .get(c)
                .and_then(|f| number(f))
                .filter(|v| v.is_finite())
                .ok_or_else(|| FormatError::Text {
                    path: source.to_string(),
                    line: n,
                    why: format!(
                        "{} table: '{}' in column '{name}' is not a finite number",
                        table.name,
                        fields.get(c).copied().unwrap_or("")
                    ),
                })?;
            slot.push(v);
        }
    }
    Ok(out)
}

fn base_meta(ex: &Explain<'_>) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    for key in [
        "TAG",
        "TITLE",
        "DATE",
        "TIME",
        "PSTAT",
        "FRAMEWORKVERSION",
        "EXPERIMENTABORTED",
        "VDC",
        "VAC",
        "AREA",
        "SCANRATE",
    ] {
        if let Some(v) = ex.header.get(key) {
            meta.insert(key.to_string(), v.clone());
        }
    }
    meta.insert(
        "tables".to_string(),
        ex.tables
            .iter()
            .map(|t| format!("{} ({} rows)", t.name, t.rows.len()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    meta
}

fn missing_col(source: &str, table: &Table<'_>, col: &str) -> FormatError {
    FormatError::Text {
        path: source.to_string(),
        line: table.line + 1,
        why: format!(
            "{} table has no '{col}' column (it has {})",
            table.name,
            table.names.join(", ")
        ),
    }
}

/// Read the ZCURVE table: Freq, Zreal, Zimag by name (Zimag as is).
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let text = decode(bytes);
    let ex = parse(&text);
    let tag = ex.header.get("TAG").cloned().unwrap_or_default();
    let Some(table) = ex.tables.iter().find(|t| t.name == "ZCURVE") else {
        return Err(unrecognised(
            source,
            format!("Gamry file (TAG {tag}) without a ZCURVE table"),
            "a Gamry impedance run (EISPOT/EISGALV) with a ZCURVE table",
        ));
    };
    let col = |n: &str| table.col(n).ok_or_else(|| missing_col(source, table, n));
    let cols = [col("Freq")?, col("Zreal")?, col("Zimag")?];
    let mut v = read_cols(table, &cols, source)?.into_iter();
    let f = v.next().unwrap_or_default();
    let re = v.next().unwrap_or_default();
    let im = v.next().unwrap_or_default();
    if f.is_empty() {
        return Err(FormatError::Text {
            path: source.to_string(),
            line: table.line,
            why: "ZCURVE table without data rows".to_string(),
        });
    }
    if let Some(k) = f.iter().position(|x| *x <= 0.0) {
        return Err(FormatError::Text {
            path: source.to_string(),
            line: table.rows.get(k).map(|r| r.0).unwrap_or(table.line),
            why: "frequency is not positive".to_string(),
        });
    }
    let mut meta = base_meta(&ex);
    meta.insert("ZCURVE_units".to_string(), table.units.join(" | "));
    Ok(ImpedanceData {
        format: Format::GamryDta,
        f_Hz: f,
        Z_re_ohm: re,
        Z_im_ohm: im,
        imag_sign: ImagSign::AsIs,
        sign_note:
            "Gamry writes Zimag with its physical sign (negative for a capacitive arc); taken as is"
                .to_string(),
        meta,
    })
}

/// Whether a table name is CURVE or CURVEn (n digits).
fn is_curve(name: &str) -> Option<Option<i64>> {
    let rest = name.strip_prefix("CURVE")?;
    if rest.is_empty() {
        Some(None)
    } else if rest.chars().all(|c| c.is_ascii_digit()) {
        Some(rest.parse().ok())
    } else {
        None
    }
}

/// Read the CURVE/CURVEn tables (CV, CA, OCP): T (s), Vf (V), Im (A) and
/// Cycle where present; CURVEn without a Cycle column gives cycle n.
/// A table without Im (open-circuit runs) gives I = 0, said in `meta`.
pub fn series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    let text = decode(bytes);
    let ex = parse(&text);
    let tag = ex.header.get("TAG").cloned();
    let curves: Vec<(&Table<'_>, Option<i64>)> = ex
        .tables
        .iter()
        .filter_map(|t| is_curve(&t.name).map(|n| (t, n)))
        .collect();
    if curves.is_empty() {
        return Err(unrecognised(
            source,
            format!(
                "Gamry file (TAG {}) without a CURVE table",
                tag.as_deref().unwrap_or("?")
            ),
            "a Gamry CV/CA/OCP run with CURVE or CURVEn tables",
        ));
    }
    let mut meta = base_meta(&ex);
    let (mut t_s, mut e_v, mut i_a, mut cycle) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut any_cycle = false;
    for (table, n) in &curves {
        let t = table
            .col("T")
            .ok_or_else(|| missing_col(source, table, "T"))?;
        let e = table
            .col("Vf")
            .ok_or_else(|| missing_col(source, table, "Vf"))?;
        let i = table.col("Im");
        let c = table.col("Cycle");
        let mut cols = vec![t, e];
        cols.extend(i);
        cols.extend(c);
        let mut v = read_cols(table, &cols, source)?.into_iter();
        let tv = v.next().unwrap_or_default();
        let len = tv.len();
        t_s.extend(tv);
        e_v.extend(v.next().unwrap_or_default());
        if i.is_some() {
            i_a.extend(v.next().unwrap_or_default());
        } else {
            i_a.extend(std::iter::repeat_n(0.0, len));
            meta.insert(
                "I_note".to_string(),
                format!(
                    "table {} has no Im column (open circuit): I = 0",
                    table.name
                ),
            );
        }
        if c.is_some() {
            any_cycle = true;
            cycle.extend(
                v.next()
                    .unwrap_or_default()
                    .iter()
                    .map(|x| x.round() as i64),
            );
        } else if let Some(n) = n {
            any_cycle = true;
            cycle.extend(std::iter::repeat_n(*n, len));
        } else {
            cycle.extend(std::iter::repeat_n(0, len));
        }
    }
    if t_s.is_empty() {
        let line = curves.first().map(|(t, _)| t.line).unwrap_or(1);
        return Err(FormatError::Text {
            path: source.to_string(),
            line,
            why: "CURVE tables without data rows".to_string(),
        });
    }
    let (start_unix_ns, start_note) = match (ex.header.get("DATE"), ex.header.get("TIME")) {
        (Some(d), Some(t)) => match local_date_time_ns(d, t) {
            Some(ns) => (
                Some(ns),
                Some(format!(
                    "DATE {d} TIME {t} as Gamry writes them: local time of the acquiring PC, no time zone in the file; read as UTC (M/D/Y when '/', D.M.Y when '.')"
                )),
            ),
            None => (None, Some(format!("DATE {d} TIME {t} not understood"))),
        },
        _ => (None, None),
    };
    Ok(EcSeries {
        format: Format::GamryDta,
        t_s,
        E_V: e_v,
        I_A: i_a,
        cycle: any_cycle.then_some(cycle),
        technique: tag,
        start_unix_ns,
        start_note,
        meta,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// days-from-civil).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `4/23/2018` (M/D/Y), `23.04.2018` (D.M.Y) or `2018-04-23`, with
/// `16:43:15`, as ns since the epoch, the wall clock read as UTC.
fn local_date_time_ns(date: &str, time: &str) -> Option<i64> {
    let nums = |s: &str, sep: char| -> Option<Vec<i64>> {
        s.trim()
            .split(sep)
            .map(|p| p.trim().parse::<i64>().ok())
            .collect()
    };
    let (y, m, d) = if date.contains('/') {
        match nums(date, '/')?.as_slice() {
            [m, d, y] => (*y, *m, *d),
            _ => return None,
        }
    } else if date.contains('.') {
        match nums(date, '.')?.as_slice() {
            [d, m, y] => (*y, *m, *d),
            _ => return None,
        }
    } else {
        match nums(date, '-')?.as_slice() {
            [y, m, d] => (*y, *m, *d),
            _ => return None,
        }
    };
    let y = if y < 100 { y + 2000 } else { y };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1900..=9999).contains(&y) {
        return None;
    }
    let hms: Vec<f64> = time
        .trim()
        .split(':')
        .map(|p| p.trim().parse::<f64>().ok())
        .collect::<Option<Vec<f64>>>()?;
    let secs = match hms.as_slice() {
        [h, mi, s] => h * 3600.0 + mi * 60.0 + s,
        [h, mi] => h * 3600.0 + mi * 60.0,
        _ => return None,
    };
    if !(0.0..86_401.0).contains(&secs) {
        return None;
    }
    let day_s = days_from_civil(y, m, d) * 86_400;
    Some(day_s * 1_000_000_000 + (secs * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // 2018-04-23T16:43:15Z
        assert_eq!(
            local_date_time_ns("4/23/2018", "16:43:15"),
            Some(1_524_501_795_000_000_000)
        );
        assert_eq!(
            local_date_time_ns("23.04.2018", "16:43:15"),
            Some(1_524_501_795_000_000_000)
        );
        assert_eq!(local_date_time_ns("13/40/2018", "1:00:00"), None);
    }
}
