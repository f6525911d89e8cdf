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
//!   Module version 0: if byte 5 is non-zero, the IDs are u8 from byte 5
//!   and the records start at 100 (old EC-Lab, galvani), else byte 5 is a
//!   zero pad, the IDs are little-endian u16 from byte 6 and the records
//!   start at 0x3EF (yadg reads the same bytes as big-endian u16 from byte
//!   5, which needs alias IDs such as 295 for "I Range"; the little-endian
//!   reading gives galvani's IDs for both test files, 434/435/467/468 and
//!   39, and is what the .mpt comparison confirms); version 2:
//!   little-endian u16 IDs from byte 5, records at 0x195; version 3: the
//!   same, records at 0x196. Records are
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
        let mut first_text_line = true;
        for raw in body {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            // The technique's name is the first text of the header body
            // (line 4 in every export seen), a line without `:`.
            if std::mem::take(&mut first_text_line) && !line.contains(':') {
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
    if let Some(note) = mpt.start_note {
        meta.insert("start_note".into(), note);
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

/// How one column of an .mpr data record is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    F32,
    F64,
    U16,
    U32,
    /// A bit field of the shared flags byte (mask).
    Flag(u8),
}

impl Kind {
    fn size_bytes(self) -> usize {
        match self {
            Kind::F32 | Kind::U32 => 4,
            Kind::F64 => 8,
            Kind::U16 => 2,
            Kind::Flag(_) => 1,
        }
    }
}

/// Column IDs of the data module: name (as EC-Lab's text export prints
/// it) and storage. Only IDs on which galvani and yadg agree (name and
/// type), plus those in the test files, are listed; any other ID is an
/// error rather than a guessed size that would shift every later column.
const MPR_COLUMNS: &[(u16, &str, Kind)] = &[
    (1, "mode", Kind::Flag(0x03)),
    (2, "ox/red", Kind::Flag(0x04)),
    (3, "error", Kind::Flag(0x08)),
    (4, "time/s", Kind::F64),
    (5, "control/V/mA", Kind::F32),
    (6, "Ewe/V", Kind::F32),
    (7, "dq/mA.h", Kind::F64),
    (8, "I/mA", Kind::F32),
    (9, "Ece/V", Kind::F32),
    (11, "<I>/mA", Kind::F64),
    (13, "(Q-Qo)/mA.h", Kind::F64),
    (16, "Analog IN 1/V", Kind::F32),
    (17, "Analog IN 2/V", Kind::F32),
    (19, "control/V", Kind::F32),
    (20, "control/mA", Kind::F32),
    (21, "control changes", Kind::Flag(0x10)),
    (23, "dQ/mA.h", Kind::F64),
    (24, "cycle number", Kind::F64),
    (31, "Ns changes", Kind::Flag(0x20)),
    (32, "freq/Hz", Kind::F32),
    (33, "|Ewe|/V", Kind::F32),
    (34, "|I|/A", Kind::F32),
    (35, "Phase(Z)/deg", Kind::F32),
    (36, "|Z|/Ohm", Kind::F32),
    (37, "Re(Z)/Ohm", Kind::F32),
    (38, "-Im(Z)/Ohm", Kind::F32),
    (39, "I Range", Kind::U16),
    (65, "counter inc.", Kind::Flag(0x80)),
    (69, "R/Ohm", Kind::F32),
    (70, "P/W", Kind::F32),
    (74, "|Energy|/W.h", Kind::F64),
    (75, "Analog OUT/V", Kind::F32),
    (76, "<I>/mA", Kind::F32),
    (77, "<Ewe>/V", Kind::F32),
    (78, "Cs-2/µF-2", Kind::F32),
    (96, "|Ece|/V", Kind::F32),
    (98, "Phase(Zce)/deg", Kind::F32),
    (99, "|Zce|/Ohm", Kind::F32),
    (100, "Re(Zce)/Ohm", Kind::F32),
    (101, "-Im(Zce)/Ohm", Kind::F32),
    (123, "Energy charge/W.h", Kind::F64),
    (124, "Energy discharge/W.h", Kind::F64),
    (125, "Capacitance charge/µF", Kind::F64),
    (126, "Capacitance discharge/µF", Kind::F64),
    (131, "Ns", Kind::U16),
    (163, "|Estack|/V", Kind::F32),
    (168, "Rcmp/Ohm", Kind::F32),
    (169, "Cs/µF", Kind::F32),
    (172, "Cp/µF", Kind::F32),
    (173, "Cp-2/µF-2", Kind::F32),
    (174, "<Ewe>/V", Kind::F32),
    (178, "(Q-Qo)/C", Kind::F32),
    (179, "dQ/C", Kind::F32),
    (211, "Q charge/discharge/mA.h", Kind::F64),
    (212, "half cycle", Kind::U32),
    (213, "z cycle", Kind::U32),
    (217, "THD Ewe/%", Kind::F32),
    (242, "|E2|/V", Kind::F32),
    (271, "Phase(Z1)/deg", Kind::F32),
    (272, "Phase(Z2)/deg", Kind::F32),
    (301, "|Z1|/Ohm", Kind::F32),
    (302, "|Z2|/Ohm", Kind::F32),
    (331, "Re(Z1)/Ohm", Kind::F32),
    (332, "Re(Z2)/Ohm", Kind::F32),
    (361, "-Im(Z1)/Ohm", Kind::F32),
    (362, "-Im(Z2)/Ohm", Kind::F32),
    (391, "<E1>/V", Kind::F32),
    (392, "<E2>/V", Kind::F32),
    (422, "Phase(Zstack)/deg", Kind::F32),
    (423, "|Zstack|/Ohm", Kind::F32),
    (424, "Re(Zstack)/Ohm", Kind::F32),
    (425, "-Im(Zstack)/Ohm", Kind::F32),
    (426, "<Estack>/V", Kind::F32),
    (430, "Phase(Zwe-ce)/deg", Kind::F32),
    (431, "|Zwe-ce|/Ohm", Kind::F32),
    (432, "Re(Zwe-ce)/Ohm", Kind::F32),
    (433, "-Im(Zwe-ce)/Ohm", Kind::F32),
    (434, "(Q-Qo)/C", Kind::F32),
    (435, "dQ/C", Kind::F32),
    (462, "Temperature/°C", Kind::F32),
    (467, "Q charge/discharge/mA.h", Kind::F64),
    (468, "half cycle", Kind::U32),
    (469, "z cycle", Kind::U32),
    (471, "<Ece>/V", Kind::F32),
    (473, "THD Ewe/%", Kind::F32),
    (474, "THD I/%", Kind::F32),
    (476, "NSD Ewe/%", Kind::F32),
    (477, "NSD I/%", Kind::F32),
    (479, "NSR Ewe/%", Kind::F32),
    (480, "NSR I/%", Kind::F32),
    (486, "|Ewe h2|/V", Kind::F32),
    (487, "|Ewe h3|/V", Kind::F32),
    (488, "|Ewe h4|/V", Kind::F32),
    (489, "|Ewe h5|/V", Kind::F32),
    (490, "|Ewe h6|/V", Kind::F32),
    (491, "|Ewe h7|/V", Kind::F32),
    (492, "|I h2|/A", Kind::F32),
    (493, "|I h3|/A", Kind::F32),
    (494, "|I h4|/A", Kind::F32),
    (495, "|I h5|/A", Kind::F32),
    (496, "|I h6|/A", Kind::F32),
    (497, "|I h7|/A", Kind::F32),
];

/// Technique IDs (first byte of the settings module), named as EC-Lab's
/// text export names the technique; from yadg's technique table.
const MPR_TECHNIQUES: &[(u8, &str)] = &[
    (0x04, "Galvanostatic Cycling with Potential Limitation"),
    (0x06, "Cyclic Voltammetry"),
    (0x0B, "Open Circuit Voltage"),
    (0x18, "Chronoamperometry / Chronocoulometry"),
    (0x19, "Chronopotentiometry"),
    (0x1C, "Wait"),
    (0x1D, "Potentio Electrochemical Impedance Spectroscopy"),
    (0x1E, "Galvano Electrochemical Impedance Spectroscopy"),
    (0x30, "Cyclic Voltammetry"),
    (0x32, "IR compensation (PEIS)"),
    (0x33, "Cyclic Voltammetry Advanced"),
    (0x6C, "Linear Sweep Voltammetry"),
    (0x7F, "Modulo Bat"),
];

fn le_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let b: [u8; 4] = bytes.get(offset..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn le_f64(bytes: &[u8], offset: usize) -> Option<f64> {
    let end = offset.checked_add(8)?;
    let b: [u8; 8] = bytes.get(offset..end)?.try_into().ok()?;
    Some(f64::from_le_bytes(b))
}

/// One module of an .mpr file; offsets are from the start of the file.
struct Module<'b> {
    short_name: String,
    version: u32,
    /// The header's date field (ASCII, MM/DD/YY).
    date: String,
    data: &'b [u8],
    data_offset: usize,
}

/// Split an .mpr file into its modules, every length checked.
fn mpr_modules<'b>(bytes: &'b [u8], source: &str) -> Result<Vec<Module<'b>>, FormatError> {
    if bytes.len() < MPR_MAGIC_BYTES {
        return Err(bin_err(
            source,
            bytes.len(),
            format!(
                "file ends inside the {MPR_MAGIC_BYTES}-byte file magic ({} bytes)",
                bytes.len()
            ),
        ));
    }
    let ascii = |b: &[u8]| -> String {
        b.iter()
            .map(|&c| char::from(c))
            .collect::<String>()
            .trim_matches(|c: char| c == ' ' || c == '\0')
            .to_string()
    };
    let mut modules = Vec::new();
    let mut pos = MPR_MAGIC_BYTES;
    while pos < bytes.len() {
        if bytes.get(pos..pos.saturating_add(6)) != Some(b"MODULE".as_slice()) {
            return Err(bin_err(source, pos, "expected the start of a MODULE"));
        }
        let h = pos + 6;
        let too_short = |need: usize| {
            bin_err(
                source,
                h,
                format!(
                    "module header needs {need} bytes, {} remain",
                    bytes.len().saturating_sub(h)
                ),
            )
        };
        let names = bytes.get(h..h + 35).ok_or_else(|| too_short(51))?;
        let short_name = ascii(names.get(..10).unwrap_or_default());
        // EC-Lab >= 11.50 writes a max-length field of 0xFFFFFFFF here.
        let v2 = bytes.get(h + 35..h + 39) == Some([0xFF; 4].as_slice());
        let (header_bytes, length_at, version_at, date_at) = if v2 {
            (59, h + 39, h + 43, h + 51)
        } else {
            (51, h + 35, h + 39, h + 43)
        };
        if bytes.len() < h + header_bytes {
            return Err(too_short(header_bytes));
        }
        let length = le_u32(bytes, length_at).ok_or_else(|| too_short(header_bytes))? as usize;
        let version = le_u32(bytes, version_at).ok_or_else(|| too_short(header_bytes))?;
        let date = ascii(bytes.get(date_at..date_at + 8).unwrap_or_default());
        let data_offset = h + header_bytes;
        let data = data_offset
            .checked_add(length)
            .and_then(|end| bytes.get(data_offset..end))
            .ok_or_else(|| {
                bin_err(
                    source,
                    length_at,
                    format!(
                        "module `{short_name}` declares {length} bytes of data but {} remain",
                        bytes.len() - data_offset
                    ),
                )
            })?;
        modules.push(Module {
            short_name,
            version,
            date,
            data,
            data_offset,
        });
        pos = data_offset + length;
    }
    Ok(modules)
}

/// The data table of an .mpr: column layout and the packed records.
struct MprTable<'b> {
    /// (column ID, offset in record, storage) in record order; the flags
    /// share one byte.
    columns: Vec<(u16, usize, Kind)>,
    record_bytes: usize,
    n_points: usize,
    records: &'b [u8],
    /// File offset of the first record (for error messages).
    records_offset: usize,
}

impl MprTable<'_> {
    fn find(&self, ids: &[u16]) -> Option<u16> {
        ids.iter()
            .copied()
            .find(|id| self.columns.iter().any(|c| c.0 == *id))
    }

    /// All values of column `id` as f64 (none if absent). The record
    /// count was checked against the bytes when the table was built.
    fn values(&self, id: u16) -> Option<Vec<f64>> {
        let &(_, at, kind) = self.columns.iter().find(|c| c.0 == id)?;
        let size = kind.size_bytes();
        let mut out = Vec::with_capacity(self.n_points);
        for record in self.records.chunks_exact(self.record_bytes) {
            let field = record.get(at..at + size)?;
            let v = match kind {
                Kind::F32 => f64::from(f32::from_le_bytes(field.try_into().ok()?)),
                Kind::F64 => f64::from_le_bytes(field.try_into().ok()?),
                Kind::U16 => f64::from(u16::from_le_bytes(field.try_into().ok()?)),
                Kind::U32 => f64::from(u32::from_le_bytes(field.try_into().ok()?)),
                Kind::Flag(mask) => {
                    let b = *field.first()?;
                    f64::from((b & mask) >> mask.trailing_zeros())
                }
            };
            out.push(v);
        }
        Some(out)
    }

    fn names(&self) -> String {
        self.columns
            .iter()
            .map(|(id, _, _)| MPR_COLUMNS.iter().find(|c| c.0 == *id).map_or("?", |c| c.1))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parse the "VMP data" module: column IDs, record layout, records.
fn mpr_table<'b>(module: &Module<'b>, source: &str) -> Result<MprTable<'b>, FormatError> {
    let d = module.data;
    let base = module.data_offset;
    let n_points = le_u32(d, 0)
        .ok_or_else(|| bin_err(source, base, "data module too short for its point count"))?
        as usize;
    let n_columns = usize::from(*d.get(4).ok_or_else(|| {
        bin_err(
            source,
            base + 4,
            "data module too short for its column count",
        )
    })?);
    if n_columns == 0 {
        return Err(bin_err(source, base + 4, "data module with 0 columns"));
    }
    // (IDs as u8?, first ID at, records start)
    let (ids_u8, ids_at, records_at) = match module.version {
        0 if d.get(5).is_some_and(|&b| b != 0) => (true, 5, 100),
        0 => (false, 6, 0x3EF),
        2 => (false, 5, 0x195),
        3 => (false, 5, 0x196),
        v => {
            return Err(bin_err(
                source,
                base,
                format!("data module version {v} is not known (0, 2 and 3 are)"),
            ));
        }
    };
    let id_bytes = if ids_u8 { 1 } else { 2 };
    let ids_end = ids_at + n_columns * id_bytes;
    if ids_end > records_at || d.len() < records_at {
        return Err(bin_err(
            source,
            base + ids_at,
            format!(
                "data module of {} bytes too short for {n_columns} column IDs and its {records_at}-byte header",
                d.len()
            ),
        ));
    }
    let mut columns = Vec::with_capacity(n_columns);
    let mut record_bytes = 0usize;
    let mut flags_at: Option<usize> = None;
    for k in 0..n_columns {
        let at = ids_at + k * id_bytes;
        let id = if ids_u8 {
            d.get(at).map(|&b| u16::from(b))
        } else {
            d.get(at..at + 2)
                .and_then(|b| Some(u16::from_le_bytes(b.try_into().ok()?)))
        }
        .ok_or_else(|| bin_err(source, base + at, "column ID beyond the module"))?;
        let Some(&(_, _, kind)) = MPR_COLUMNS.iter().find(|c| c.0 == id) else {
            return Err(bin_err(
                source,
                base + at,
                format!(
                    "column ID {id} (column {} of {n_columns}) is not known, so the record layout is unknown",
                    k + 1
                ),
            ));
        };
        if let Kind::Flag(_) = kind {
            let shared = *flags_at.get_or_insert_with(|| {
                record_bytes += 1;
                record_bytes - 1
            });
            columns.push((id, shared, kind));
        } else {
            columns.push((id, record_bytes, kind));
            record_bytes += kind.size_bytes();
        }
    }
    let records = d.get(records_at..).unwrap_or_default();
    let need = n_points.checked_mul(record_bytes);
    if need != Some(records.len()) {
        return Err(bin_err(
            source,
            base + records_at,
            format!(
                "{n_points} points of {record_bytes} bytes need {} bytes but the data module holds {} after its header",
                need.map_or_else(|| "more than addressable".to_string(), |n| n.to_string()),
                records.len()
            ),
        ));
    }
    if n_points == 0 {
        return Err(bin_err(source, base, "data module with 0 points"));
    }
    Ok(MprTable {
        columns,
        record_bytes,
        n_points,
        records,
        records_offset: base + records_at,
    })
}

/// Everything the readers take from an .mpr.
struct Mpr<'b> {
    table: MprTable<'b>,
    technique: Option<String>,
    start_unix_ns: Option<i64>,
    start_note: String,
    meta: BTreeMap<String, String>,
}

/// OLE automation date (days since 1899-12-30) as Unix ns, rounded to
/// the microsecond (an f64 of ~45000 days resolves about 1 µs).
fn ole_days_unix_ns(days: f64) -> Option<i64> {
    // 1990-01-01 ..= 2100-01-01: anything else is not a plausible start.
    if !(32_874.0..=73_051.0).contains(&days) {
        return None;
    }
    let whole = days.floor();
    let frac_us = ((days - whole) * 86_400e6).round() as i64;
    let unix_days = whole as i64 - 25_569;
    Some((unix_days * 86_400_000_000 + frac_us) * 1000)
}

fn parse_mpr<'b>(bytes: &'b [u8], source: &str, expected: &str) -> Result<Mpr<'b>, FormatError> {
    if !sniff_mpr(bytes) {
        return Err(unrecognised(
            source,
            "not an EC-Lab binary file (no `BIO-LOGIC MODULAR FILE` magic)",
            expected,
        ));
    }
    let modules = mpr_modules(bytes, source)?;
    let mut meta = BTreeMap::new();
    let mut data_modules = modules.iter().filter(|m| m.short_name == "VMP data");
    let data = data_modules
        .next()
        .ok_or_else(|| bin_err(source, bytes.len(), "no `VMP data` module in the file"))?;
    if let Some(second) = data_modules.next() {
        return Err(bin_err(
            source,
            second.data_offset,
            "a second `VMP data` module; one is expected",
        ));
    }
    let table = mpr_table(data, source)?;
    meta.insert("columns".into(), table.names());
    meta.insert("data_module_version".into(), data.version.to_string());

    let mut technique = None;
    if let Some(set) = modules.iter().find(|m| m.short_name == "VMP Set") {
        if let Some(&id) = set.data.first() {
            meta.insert("technique_id".into(), id.to_string());
            technique = MPR_TECHNIQUES
                .iter()
                .find(|t| t.0 == id)
                .map(|t| t.1.to_string());
        }
        if !set.date.is_empty() {
            meta.insert("settings_date".into(), set.date.clone());
        }
    }
    if let Some(t) = &technique {
        meta.insert("technique".into(), t.clone());
    }

    let (start_unix_ns, start_note) = match modules.iter().find(|m| m.short_name == "VMP LOG") {
        None => (
            None,
            "the file has no `VMP LOG` module, so no acquisition start".to_string(),
        ),
        Some(log) => {
            // 0x249 per yadg; 465, 469, 473 are galvani's alternatives.
            let found = [0x249usize, 465, 469, 473].into_iter().find_map(|at| {
                le_f64(log.data, at)
                    .and_then(ole_days_unix_ns)
                    .map(|ns| (at, ns))
            });
            match found {
                Some((at, ns)) => (
                    Some(ns),
                    format!(
                        "from the OLE date at byte {} (VMP LOG module); {START_NOTE_ZONE}",
                        log.data_offset + at
                    ),
                ),
                None => (
                    None,
                    "no plausible OLE date (1990-2100) in the `VMP LOG` module, so no acquisition start"
                        .to_string(),
                ),
            }
        }
    };
    Ok(Mpr {
        table,
        technique,
        start_unix_ns,
        start_note,
        meta,
    })
}

impl Mpr<'_> {
    fn describe(&self) -> String {
        match &self.technique {
            Some(t) => format!("this EC-Lab .mpr ({t})"),
            None => "this EC-Lab .mpr".to_string(),
        }
    }
}

/// Read an impedance spectrum (PEIS/GEIS) from an EC-Lab binary file.
pub fn mpr_impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let mpr = parse_mpr(bytes, source, IMPEDANCE_EXPECTED_MPR)?;
    let t = &mpr.table;
    if t.find(&[32]).is_none() {
        return Err(unrecognised(
            source,
            format!("{} has no freq/Hz column", mpr.describe()),
            IMPEDANCE_EXPECTED_MPR,
        ));
    }
    let column = |id: u16, name: &str| {
        t.values(id).ok_or_else(|| {
            bin_err(
                source,
                t.records_offset,
                format!("impedance data without a {name} column (ID {id})"),
            )
        })
    };
    let f_Hz = column(32, "freq/Hz")?;
    let Z_re_ohm = column(37, "Re(Z)/Ohm")?;
    let minus_im = column(38, "-Im(Z)/Ohm")?;
    let mut meta = mpr.meta;
    if let Some(ns) = mpr.start_unix_ns {
        meta.insert("start_unix_ns".into(), ns.to_string());
    }
    meta.insert("start_note".into(), mpr.start_note);
    Ok(ImpedanceData {
        format: Format::BiologicMpr,
        f_Hz,
        Z_re_ohm,
        Z_im_ohm: minus_im.iter().map(|v| -v).collect(),
        imag_sign: ImagSign::Negated,
        sign_note: SIGN_NOTE.to_string(),
        meta,
    })
}

/// Read a potentiostat time series from an EC-Lab binary file; current
/// converted from mA to A.
pub fn mpr_series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    let mpr = parse_mpr(bytes, source, SERIES_EXPECTED_MPR)?;
    let t = &mpr.table;
    if t.find(&[32]).is_some() {
        return Err(unrecognised(
            source,
            format!(
                "{} is an impedance spectrum (freq/Hz column), not a time series",
                mpr.describe()
            ),
            SERIES_EXPECTED_MPR,
        ));
    }
    let missing = |what: &str| {
        bin_err(
            source,
            t.records_offset,
            format!("time series without {what}"),
        )
    };
    let t_s = t
        .values(4)
        .ok_or_else(|| missing("a time/s column (ID 4)"))?;
    let E_V = t
        .find(&[6, 77, 174])
        .and_then(|id| t.values(id))
        .ok_or_else(|| missing("an Ewe/V or <Ewe>/V column (ID 6, 77 or 174)"))?;
    let mut meta = mpr.meta;
    let I_A = match t.find(&[11, 76, 8]).and_then(|id| t.values(id)) {
        Some(mA) => mA.into_iter().map(|v| v * 1e-3).collect(),
        None if mpr.technique.as_deref() == Some("Open Circuit Voltage") => {
            meta.insert(
                "I_note".into(),
                "open-circuit technique without a current column: I = 0".into(),
            );
            vec![0.0; t_s.len()]
        }
        None => return Err(missing("a current column <I>/mA or I/mA (ID 11, 76 or 8)")),
    };
    let cycle = match t.values(24) {
        Some(values) => Some(cycles_from_f64(&values).map_err(|k| {
            bin_err(
                source,
                t.records_offset + k * t.record_bytes,
                format!("cycle number of point {} is not a whole number", k + 1),
            )
        })?),
        None => None,
    };
    Ok(EcSeries {
        format: Format::BiologicMpr,
        t_s,
        E_V,
        I_A,
        cycle,
        technique: mpr.technique,
        start_unix_ns: mpr.start_unix_ns,
        start_note: Some(mpr.start_note),
        meta,
    })
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
