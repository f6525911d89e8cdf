//! BioLogic EC-Lab: text exports (.mpt) and binary files (.mpr).
//!
//! **.mpt** (EC-Lab's "Export as text"): latin-1, tab-separated, numbers
//! possibly with a decimal comma (the exporting PC's locale). The first line
//! is `EC-Lab ASCII FILE`, the second `Nb header lines : N`; line N names
//! the columns and the data start on line N + 1. Lines 3 .. N - 1 hold the
//! technique name and `key : value` settings, of which a few are kept in
//! `meta`. EC-Lab can also export the table alone ("headerless"): the
//! first line is then the column header itself (`freq/Hz\tRe(Z)/Ohm...` or
//! `mode\tox/red...`) and no metadata is available.
//!
//! **.mpr** (EC-Lab's own binary file): no public specification exists.
//! The layout below is what the open-source readers galvani
//! (echemdata/galvani, `BioLogic.py`) and yadg (dgbowl/yadg,
//! `extractors/eclab`) document from reverse engineering; it is restated
//! here as facts, and checked against EC-Lab's own text export of the same
//! files (tests/data/biologic/*.mpr vs *.mpt):
//!
//! - 52 bytes of file magic: `BIO-LOGIC MODULAR FILE\x1a`, spaces to 48
//!   bytes, 4 zero bytes.
//! - Then modules, each `MODULE` + header + data. Header (little endian):
//!   short name (10 bytes), long name (25), then either (EC-Lab < 11.50)
//!   length u32, version u32, date (8 ASCII, MM/DD/YY) = 51 bytes, or
//!   (EC-Lab >= 11.50, recognised by 0xFFFFFFFF right after the long name)
//!   max length u32, length u32, version u32, an unknown u32, date (8) =
//!   59 bytes. `length` bytes of module data follow.
//! - "VMP Set": settings; its first data byte is the technique ID.
//! - "VMP data": n_points u32 at 0, n_columns u8 at 4, column IDs from 5.
//!   Module version 0: if byte 5 is non-zero, the IDs are u8 and the
//!   records start at 100 (old EC-Lab), else they are big-endian u16 and
//!   the records start at 0x3EF; version 2: little-endian u16 IDs, records
//!   at 0x195; version 3: the same, records at 0x196. Records are
//!   row-major, packed, each column's type given by its ID; the IDs 1, 2,
//!   3, 21, 31, 65 are bit fields sharing one "flags" byte, placed where
//!   the first of them appears.
//! - "VMP LOG": an OLE automation date (f64, days since 1899-12-30) of the
//!   acquisition start at data offset 0x249 (yadg; galvani also tries 465,
//!   469 and 473).
//!
//! Every count read from a file is checked against the bytes that remain
//! before anything is sized by it, and every slice is taken with `get`, so
//! no input can make a reader panic or allocate more than its size.

use std::collections::BTreeMap;

use crate::text::{decode, number};
use crate::{EcSeries, Format, FormatError, ImagSign, ImpedanceData};

/// First line of an EC-Lab (and BT-Lab, same layout) text export.
const MPT_MAGICS: [&str; 2] = ["EC-Lab ASCII FILE", "BT-Lab ASCII FILE"];

/// Start of an .mpr file; the full magic is [`MPR_MAGIC_BYTES`] long.
const MPR_MAGIC: &[u8] = b"BIO-LOGIC MODULAR FILE";
/// Length of the file magic, after which the first module starts.
#[allow(dead_code)]
const MPR_MAGIC_BYTES: usize = 52;

const IMPEDANCE_EXPECTED_MPT: &str =
    "an impedance spectrum: an EC-Lab PEIS/GEIS export with columns freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm";
const SERIES_EXPECTED_MPT: &str = "a potentiostat time series: an EC-Lab export with columns time/s, Ewe/V (or <Ewe>/V) and <I>/mA (or I/mA)";
const IMPEDANCE_EXPECTED_MPR: &str = "an impedance spectrum: an EC-Lab PEIS/GEIS .mpr with the columns freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm";
const SERIES_EXPECTED_MPR: &str = "a potentiostat time series: an EC-Lab .mpr with the columns time/s, Ewe/V (or <Ewe>/V) and <I>/mA (or I/mA)";

/// Said of every EC-Lab acquisition time: the file holds the recording
/// PC's wall-clock time without a zone.
const START_NOTE_ZONE: &str = "EC-Lab writes the recording PC's local time without a time zone; taken as UTC unless the user says otherwise";

const SIGN_NOTE: &str = "EC-Lab stores -Im(Z)/Ohm (capacitive points positive); negated on reading to Z'' with its physical sign";

// ---------------------------------------------------------------- sniffers

/// Whether the content is an EC-Lab text export: the `EC-Lab ASCII FILE`
/// first line, or (headerless export) a first line that is EC-Lab's own
/// column header of an impedance or a time-series table.
pub fn sniff_mpt(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => bytes.get(..end).unwrap_or(bytes),
        None => bytes,
    };
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if MPT_MAGICS
        .iter()
        .any(|m| first.trim_ascii_end() == m.as_bytes())
    {
        return true;
    }
    first.starts_with(b"freq/Hz\tRe(Z)/Ohm\t") || first.starts_with(b"mode\tox/red\t")
}

/// Whether the content is an EC-Lab binary file (its magic).
pub fn sniff_mpr(bytes: &[u8]) -> bool {
    bytes.starts_with(MPR_MAGIC)
}

// ---------------------------------------------------------------- .mpt

/// An .mpt file split into its header facts and its table lines.
struct Mpt<'t> {
    /// Column names as the header line states them (trailing empty field dropped).
    columns: Vec<&'t str>,
    /// 1-based line number of the column header.
    header_line: usize,
    /// All lines of the file (index = line number - 1).
    lines: Vec<&'t str>,
    technique: Option<String>,
    start_unix_ns: Option<i64>,
    start_note: Option<String>,
    meta: BTreeMap<String, String>,
}

fn text_err(source: &str, line: usize, why: impl Into<String>) -> FormatError {
    FormatError::Text {
        path: source.to_string(),
        line,
        why: why.into(),
    }
}

#[allow(dead_code)]
fn bin_err(source: &str, offset: usize, why: impl Into<String>) -> FormatError {
    FormatError::Binary {
        path: source.to_string(),
        offset,
        why: why.into(),
    }
}

fn unrecognised(source: &str, why: impl Into<String>, expected: &str) -> FormatError {
    crate::unrecognised(source, why.into(), expected)
}

/// Split the text into header facts and the table; no data parsed yet.
fn parse_mpt_layout<'t>(text: &'t str, source: &str) -> Result<Mpt<'t>, FormatError> {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.first().map(|l| l.trim_end()).unwrap_or("");
    let mut meta = BTreeMap::new();
    let mut technique = None;
    let mut start_unix_ns = None;
    let mut start_note = None;

    let header_line = if MPT_MAGICS.contains(&first) {
        let second = lines.get(1).copied().unwrap_or("");
        let n_header_lines = second
            .split_once(':')
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("Nb header lines"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .ok_or_else(|| {
                text_err(
                    source,
                    2,
                    format!("expected `Nb header lines : N`, found {:?}", clip(second)),
                )
            })?;
        if n_header_lines < 3 || n_header_lines > lines.len() {
            return Err(text_err(
                source,
                2,
                format!(
                    "`Nb header lines : {n_header_lines}` but the file has {} lines (the column header must be line 3 or later)",
                    lines.len()
                ),
            ));
        }
        meta.insert("nb_header_lines".into(), n_header_lines.to_string());
        // Header body: lines 3 .. N-1 (1-based), i.e. indexes 2 .. N-2.
        let body = lines.get(2..n_header_lines - 1).unwrap_or(&[]);
        for raw in body {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if technique.is_none() && !line.contains(':') {
                technique = Some(line.to_string());
                continue;
            }
            if line.ends_with("(software)") {
                meta.insert("software".into(), line.to_string());
                continue;
            }
            let Some((key, value)) = line.split_once(" : ") else {
                continue;
            };
            let value = value.trim();
            let key = key.trim();
            let name = match key {
                "Acquisition started on" => "acquisition_started_on",
                "Technique started on" => "technique_started_on",
                "Device" => "device",
                "Run on channel" => "channel",
                "File" => "original_file",
                "Electrode surface area" => "electrode_surface_area",
                "Characteristic mass" => "characteristic_mass",
                "Reference electrode" => "reference_electrode",
                _ => continue,
            };
            if value.is_empty() || meta.contains_key(name) {
                continue;
            }
            meta.insert(name.to_string(), value.to_string());
            if name == "acquisition_started_on" {
                match eclab_datetime_unix_ns(value) {
                    Some(ns) => {
                        start_unix_ns = Some(ns);
                        start_note = Some(format!(
                            "from the header line `Acquisition started on : {value}` read as MM/DD/YYYY HH:MM:SS; {START_NOTE_ZONE}"
                        ));
                    }
                    None => {
                        start_note = Some(format!(
                            "the header line `Acquisition started on : {value}` could not be read as MM/DD/YYYY HH:MM:SS, so no start time"
                        ));
                    }
                }
            }
        }
        if let Some(t) = &technique {
            meta.insert("technique".into(), t.clone());
        }
        n_header_lines
    } else {
        meta.insert(
            "header".into(),
            "none (headerless export: the first line is the column header)".into(),
        );
        1
    };

    let header = lines.get(header_line - 1).copied().unwrap_or("");
    let mut columns: Vec<&str> = header.split('\t').map(str::trim).collect();
    while columns.last().is_some_and(|c| c.is_empty()) {
        columns.pop();
    }
    if columns.len() < 2 {
        return Err(text_err(
            source,
            header_line,
            format!(
                "expected the tab-separated column header here, found {:?}",
                clip(header)
            ),
        ));
    }
    Ok(Mpt {
        columns,
        header_line,
        lines,
        technique,
        start_unix_ns,
        start_note,
        meta,
    })
}

impl Mpt<'_> {
    fn column(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.columns.iter().position(|c| c == n))
    }

    /// The values of the columns at `idx`, one Vec per column, over all
    /// non-empty data lines; an unreadable field is an error at its line.
    fn read_columns(&self, idx: &[usize], source: &str) -> Result<Vec<Vec<f64>>, FormatError> {
        let mut out: Vec<Vec<f64>> = idx.iter().map(|_| Vec::new()).collect();
        let data = self.lines.get(self.header_line..).unwrap_or(&[]);
        for (k, line) in data.iter().enumerate() {
            let line_no = self.header_line + 1 + k;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            for (col, &i) in out.iter_mut().zip(idx) {
                let name = self.columns.get(i).copied().unwrap_or("?");
                let field = fields.get(i).ok_or_else(|| {
                    text_err(
                        source,
                        line_no,
                        format!(
                            "{} fields, but column `{name}` is field {}",
                            fields.len(),
                            i + 1
                        ),
                    )
                })?;
                let v = number(field).ok_or_else(|| {
                    text_err(
                        source,
                        line_no,
                        format!("column `{name}`: {:?} is not a number", clip(field)),
                    )
                })?;
                col.push(v);
            }
        }
        if out.first().is_none_or(|c| c.is_empty()) {
            return Err(text_err(
                source,
                self.header_line,
                "no data rows after the column header",
            ));
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        match &self.technique {
            Some(t) => format!("this EC-Lab export ({t})"),
            None => "this EC-Lab export".to_string(),
        }
    }
}

/// Read an impedance spectrum from an EC-Lab text export (PEIS/GEIS).
pub fn mpt_impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    if !sniff_mpt(bytes) {
        return Err(unrecognised(
            source,
            "not an EC-Lab text export (no `EC-Lab ASCII FILE` first line)",
            IMPEDANCE_EXPECTED_MPT,
        ));
    }
    let text = decode(bytes);
    let mpt = parse_mpt_layout(&text, source)?;
    let Some(f_col) = mpt.column(&["freq/Hz"]) else {
        return Err(unrecognised(
            source,
            format!("{} has no freq/Hz column", mpt.describe()),
            IMPEDANCE_EXPECTED_MPT,
        ));
    };
    let missing = |name: &str| {
        text_err(
            source,
            mpt.header_line,
            format!("impedance export without a `{name}` column"),
        )
    };
    let re_col = mpt
        .column(&["Re(Z)/Ohm"])
        .ok_or_else(|| missing("Re(Z)/Ohm"))?;
    let im_col = mpt
        .column(&["-Im(Z)/Ohm"])
        .ok_or_else(|| missing("-Im(Z)/Ohm"))?;
    let mut cols = mpt.read_columns(&[f_col, re_col, im_col], source)?;
    let minus_im = cols.pop().unwrap_or_default();
    let Z_re_ohm = cols.pop().unwrap_or_default();
    let f_Hz = cols.pop().unwrap_or_default();
    let mut meta = mpt.meta;
    if let Some(ns) = mpt.start_unix_ns {
        meta.insert("start_unix_ns".into(), ns.to_string());
    }
    Ok(ImpedanceData {
        format: Format::BiologicMpt,
        f_Hz,
        Z_re_ohm,
        Z_im_ohm: minus_im.iter().map(|v| -v).collect(),
        imag_sign: ImagSign::Negated,
        sign_note: SIGN_NOTE.to_string(),
        meta,
    })
}

/// Read a potentiostat time series (CV, CA, OCV, ...) from an EC-Lab text
/// export. Current is converted from mA to A.
pub fn mpt_series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    if !sniff_mpt(bytes) {
        return Err(unrecognised(
            source,
            "not an EC-Lab text export (no `EC-Lab ASCII FILE` first line)",
            SERIES_EXPECTED_MPT,
        ));
    }
    let text = decode(bytes);
    let mpt = parse_mpt_layout(&text, source)?;
    if mpt.column(&["freq/Hz"]).is_some() {
        return Err(unrecognised(
            source,
            format!(
                "{} is an impedance spectrum (freq/Hz column), not a time series",
                mpt.describe()
            ),
            SERIES_EXPECTED_MPT,
        ));
    }
    let missing = |what: &str| {
        text_err(
            source,
            mpt.header_line,
            format!("time series without {what}"),
        )
    };
    let t_col = mpt
        .column(&["time/s"])
        .ok_or_else(|| missing("a `time/s` column"))?;
    let e_col = mpt
        .column(&["Ewe/V", "<Ewe>/V"])
        .ok_or_else(|| missing("an `Ewe/V` or `<Ewe>/V` column"))?;
    // Current: EC-Lab writes mA; an `/A` column is accepted too.
    let (i_col, i_scale_A) = match (
        mpt.column(&["<I>/mA", "I/mA"]),
        mpt.column(&["<I>/A", "I/A"]),
    ) {
        (Some(c), _) => (Some(c), 1e-3),
        (None, Some(c)) => (Some(c), 1.0),
        (None, None) => (None, 0.0),
    };
    let is_ocv = mpt.technique.as_deref() == Some("Open Circuit Voltage");
    if i_col.is_none() && !is_ocv {
        return Err(missing("a current column (`<I>/mA` or `I/mA`)"));
    }
    let cycle_col = mpt.column(&["cycle number"]);
    let mut idx = vec![t_col, e_col];
    idx.extend(i_col);
    idx.extend(cycle_col);
    let cols = mpt.read_columns(&idx, source)?;
    let mut cols = cols.into_iter();
    let t_s = cols.next().unwrap_or_default();
    let E_V = cols.next().unwrap_or_default();
    let mut meta = mpt.meta;
    let I_A = match i_col {
        Some(_) => cols
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v * i_scale_A)
            .collect(),
        None => {
            meta.insert(
                "I_note".into(),
                "open-circuit technique without a current column: I = 0".into(),
            );
            vec![0.0; t_s.len()]
        }
    };
    let cycle = match cycle_col {
        Some(c) => {
            let values = cols.next().unwrap_or_default();
            let line = mpt.header_line;
            let name = mpt.columns.get(c).copied().unwrap_or("cycle number");
            Some(cycles_from_f64(&values).map_err(|k| {
                text_err(
                    source,
                    line,
                    format!("column `{name}`: data row {} is not a whole number", k + 1),
                )
            })?)
        }
        None => None,
    };
    Ok(EcSeries {
        format: Format::BiologicMpt,
        t_s,
        E_V,
        I_A,
        cycle,
        technique: mpt.technique,
        start_unix_ns: mpt.start_unix_ns,
        start_note: mpt.start_note,
        meta,
    })
}

/// Cycle numbers are stored as floats; each must be a whole number that
/// fits an i64. The error is the index of the first bad value.
fn cycles_from_f64(values: &[f64]) -> Result<Vec<i64>, usize> {
    values
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(k)
            }
        })
        .collect()
}

/// A field shortened for an error message.
fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", s.get(..i).unwrap_or(s)),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------- dates

/// Days from 1970-01-01 to the civil date (proleptic Gregorian); the
/// well-known days-from-civil algorithm.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// `MM/DD/YY` or `MM/DD/YYYY` as days since 1970-01-01.
fn eclab_date_days(date: &str) -> Option<i64> {
    let mut parts = date.trim().split('/');
    let month: i64 = parts.next()?.trim().parse().ok()?;
    let day: i64 = parts.next()?.trim().parse().ok()?;
    let year_text = parts.next()?.trim();
    if parts.next().is_some() {
        return None;
    }
    let mut year: i64 = year_text.parse().ok()?;
    if year_text.len() <= 2 {
        year += 2000;
    }
    if !(1900..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// EC-Lab's `MM/DD/YYYY HH:MM:SS(.fff)` as Unix ns, the wall-clock time
/// taken as UTC (the caller says so in `start_note`).
fn eclab_datetime_unix_ns(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let days = eclab_date_days(parts.next()?)?;
    let time = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let sec_text = hms.next()?;
    if hms.next().is_some() {
        return None;
    }
    let (whole, frac) = match sec_text.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (sec_text, ""),
    };
    let s: i64 = whole.parse().ok()?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut frac_ns: i64 = 0;
    for (k, b) in frac.bytes().enumerate() {
        frac_ns += i64::from(b - b'0') * 10_i64.pow(8 - k as u32);
    }
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + s)?;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

// ---------------------------------------------------------------- .mpr

/// Read an impedance spectrum from an EC-Lab binary file.
pub fn mpr_impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    Err(unrecognised(
        source,
        format!("the .mpr reader is not written yet ({} bytes)", bytes.len()),
        IMPEDANCE_EXPECTED_MPR,
    ))
}

/// Read a potentiostat time series from an EC-Lab binary file.
pub fn mpr_series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    Err(unrecognised(
        source,
        format!("the .mpr reader is not written yet ({} bytes)", bytes.len()),
        SERIES_EXPECTED_MPR,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn eclab_dates() {
        // 2020-07-29 10:31:01 UTC = 1596018661 s.
        assert_eq!(
            eclab_datetime_unix_ns("07/29/2020 10:31:01"),
            Some(1_596_018_661_000_000_000)
        );
        assert_eq!(
            eclab_datetime_unix_ns("01/10/2024 11:02:29.886"),
            Some(1_704_884_549_886_000_000)
        );
        assert_eq!(eclab_datetime_unix_ns("13/10/2024 11:02:29"), None);
        assert_eq!(eclab_datetime_unix_ns("02/30/2024 11:02:29"), None);
        assert_eq!(eclab_datetime_unix_ns("02/29/2024 24:00:00"), None);
        assert_eq!(eclab_datetime_unix_ns("garbage"), None);
        assert_eq!(eclab_date_days("12/31/24"), eclab_date_days("12/31/2024"));
        assert_eq!(eclab_date_days("01/01/1970"), Some(0));
    }

    #[test]
    fn sniffing() {
        assert!(sniff_mpt(b"EC-Lab ASCII FILE\r\nNb header lines : 3\r\n"));
        assert!(sniff_mpt(b"freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\n1\t2\t3\n"));
        assert!(sniff_mpt(b"mode\tox/red\terror\n"));
        assert!(!sniff_mpt(b"freq,re,im\n"));
        assert!(!sniff_mpt(b""));
        assert!(sniff_mpr(b"BIO-LOGIC MODULAR FILE\x1a"));
        assert!(!sniff_mpr(b"BIO-LOGIC"));
    }
}
