//! Delimited text: named columns (impedance, time series, traces) and the
//! headerless 3-column spectrum (f, Z', Z'') of impedance.py's exampleData.
//!
//! Why columns are found by name: a file whose header names other
//! quantities (a CV export `time,E,I`, a Parstat run with potential,
//! current and time first) must be refused, never read as f, Z', Z''. Only
//! a file without any header is read by position, and then only when it
//! has exactly three numeric columns.
//!
//! The column-name matching and the row reader here are shared with the
//! vendor readers (Parstat, VersaStudio, Autolab NOVA, CHI), which are
//! tables with named columns behind a vendor header.

use std::collections::BTreeMap;

use crate::text::{decode, number};
use crate::{EcSeries, Format, FormatError, ImagSign, ImpedanceData, Trace, unrecognised};

const IMPEDANCE_EXPECTED: &str = "a header naming a frequency column (f, freq, frequency [Hz]) and Z', Z'' (Zre/Re(Z)/Zreal, Zim/-Z''/-Im(Z)/Zimag) or |Z| and phase; or exactly 3 numeric columns f, Z', Z'' without a header";
const SERIES_EXPECTED: &str =
    "a header naming time (s), potential (E/Ewe/V) and current (I, A or mA), optionally cycle";
const TRACE_EXPECTED: &str = "a header naming a time column (t/time, s or ms) and a deflection column (deflection/defl/signal/value), optionally sync/trigger";

/// Column delimiter of a delimited text table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delim {
    Tab,
    Semicolon,
    Comma,
    /// Runs of spaces (fixed-width exports).
    Space,
}

impl Delim {
    /// The delimiter a line uses: tab, else `;`, else `,`, else spaces.
    /// (`;` before `,` because decimal-comma locales delimit with `;`.)
    pub(crate) fn detect(line: &str) -> Delim {
        if line.contains('\t') {
            Delim::Tab
        } else if line.contains(';') {
            Delim::Semicolon
        } else if line.contains(',') {
            Delim::Comma
        } else {
            Delim::Space
        }
    }

    /// Split a line into trimmed, unquoted fields; empty fields at the end
    /// (a trailing delimiter) are dropped.
    pub(crate) fn split(self, line: &str) -> Vec<&str> {
        let mut fields: Vec<&str> = match self {
            Delim::Tab => line.split('\t').map(unquote).collect(),
            Delim::Semicolon => line.split(';').map(unquote).collect(),
            Delim::Comma => line.split(',').map(unquote).collect(),
            Delim::Space => line.split_whitespace().map(unquote).collect(),
        };
        while fields.last().is_some_and(|f| f.is_empty()) {
            fields.pop();
        }
        fields
    }

    fn name(self) -> &'static str {
        match self {
            Delim::Tab => "tab",
            Delim::Semicolon => "semicolon",
            Delim::Comma => "comma",
            Delim::Space => "whitespace",
        }
    }
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
        f[1..f.len() - 1].trim()
    } else {
        f
    }
}

/// The lines of a text with their 1-based numbers; `\r\n`, `\n` and a
/// lone `\r` (old Mac, Igor notes) all end a line.
pub(crate) fn numbered_lines(text: &str) -> Vec<(usize, &str)> {
    let split: Vec<&str> = if text.contains('\n') {
        text.split('\n').map(|l| l.trim_end_matches('\r')).collect()
    } else {
        text.split('\r').collect()
    };
    split
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect()
}

/// What a column holds, as its header names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantity {
    Freq,
    ZRe,
    /// Z'' with its physical sign.
    ZIm,
    /// A column named -Z'' (or -Im(Z)).
    ZImNeg,
    ZMod,
    Phase,
    PhaseNeg,
    Time,
    Potential,
    Current,
    Cycle,
    Deflection,
    Sync,
}

/// A classified column: its position, its name as written, and the factor
/// to SI (phase: to degrees).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Column {
    pub index: usize,
    pub name: String,
    pub quantity: Quantity,
    pub scale: f64,
    pub unit: String,
}

/// Split `Freq/Hz`, `Z' (Ω)`, `E [V]`, `Re(Z)/Ohm` into a normalised base
/// name (lower case, no spaces or `_`) and the unit as written.
pub(crate) fn split_name_unit(raw: &str) -> (String, String) {
    let s = raw.trim();
    let mut base = s;
    let mut unit = "";
    if let Some(close) = s.chars().last().filter(|c| *c == ')' || *c == ']') {
        let open = if close == ')' { '(' } else { '[' };
        if let Some(pos) = s.rfind(open) {
            let inner = s[pos + 1..s.len() - 1].trim();
            let b = s[..pos].trim();
            let nb = normalise(b);
            let footnote = (nb == "z'" || nb == "z''") && (inner == "a" || inner == "b");
            if !b.is_empty() && !inner.eq_ignore_ascii_case("z") && !footnote {
                base = b;
                unit = inner;
            } else if footnote {
                base = b;
            }
        }
    } else if let Some(pos) = s.rfind('/') {
        let right = s[pos + 1..].trim();
        let unit_like = !right.is_empty()
            && right.chars().count() <= 8
            && right
                .chars()
                .all(|c| c.is_alphabetic() || matches!(c, 'µ' | 'Ω' | '°' | '%'));
        if unit_like && pos > 0 {
            base = &s[..pos];
            unit = right;
        }
    }
    (normalise(base), unit.to_string())
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .map(|c| match c {
            '\u{2212}' => '-',
            '\u{2019}' | '\u{2032}' => '\'',
            '\u{2033}' => '"',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn base_quantity(base: &str) -> Option<Quantity> {
    let (neg, b) = match base.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, base),
    };
    let q = match b {
        "f" | "freq" | "frequency" | "freq." => Quantity::Freq,
        "z'" | "zre" | "re(z)" | "zreal" | "real(z)" | "zr" | "rez" | "realz" => Quantity::ZRe,
        "z''" | "z\"" | "zim" | "im(z)" | "zimag" | "imag(z)" | "zi" | "imz" | "zimg" | "imagz" => {
            Quantity::ZIm
        }
        "|z|" | "zmod" | "mod(z)" | "abs(z)" | "z" | "zmag" | "|z|(ohm)" => Quantity::ZMod,
        "phase" | "phase(z)" | "zphz" | "phz" | "phi" | "theta" | "arg(z)" | "phaseangle" => {
            Quantity::Phase
        }
        "t" | "time" | "elapsedtime" => Quantity::Time,
        "e" | "ewe" | "potential" | "voltage" | "vf" | "u" | "ecell" | "e(v)" => {
            Quantity::Potential
        }
        "i" | "current" | "<i>" | "iwe" | "im" => Quantity::Current,
        "cycle" | "cyclenumber" | "cycle#" | "cycleno" | "cycleno." => Quantity::Cycle,
        "deflection" | "defl" | "signal" | "value" | "deflectionsignal" => Quantity::Deflection,
        "sync" | "trigger" | "trig" | "syncsignal" | "syncin" => Quantity::Sync,
        _ => return None,
    };
    match (neg, q) {
        (false, q) => Some(q),
        (true, Quantity::ZIm) => Some(Quantity::ZImNeg),
        (true, Quantity::Phase) => Some(Quantity::PhaseNeg),
        (true, _) => None,
    }
}

/// The factor from `unit` to the SI unit of `q` (phase: to degrees);
/// `None` when the unit does not belong to the quantity.
fn unit_scale(q: Quantity, unit: &str) -> Option<f64> {
    let u = unit.trim();
    let lower = u.to_lowercase();
    match q {
        Quantity::Freq => match u {
            "" | "Hz" | "hz" | "HZ" => Some(1.0),
            "kHz" | "khz" => Some(1e3),
            "MHz" => Some(1e6),
            "mHz" => Some(1e-3),
            _ => None,
        },
        Quantity::ZRe | Quantity::ZIm | Quantity::ZImNeg | Quantity::ZMod => match u {
            "" | "Ω" | "\u{2126}" => Some(1.0),
            "kΩ" | "kOhm" | "kohm" => Some(1e3),
            "mΩ" | "mOhm" | "mohm" => Some(1e-3),
            "MΩ" | "MOhm" => Some(1e6),
            _ if lower == "ohm" || lower == "ohms" => Some(1.0),
            _ => None,
        },
        Quantity::Phase | Quantity::PhaseNeg => match lower.as_str() {
            "" | "deg" | "°" | "degree" | "degrees" | "deg." => Some(1.0),
            "rad" => Some(180.0 / std::f64::consts::PI),
            _ => None,
        },
        Quantity::Time => match lower.as_str() {
            "" | "s" | "sec" | "secs" | "seconds" => Some(1.0),
            "ms" => Some(1e-3),
            "us" | "µs" | "μs" => Some(1e-6),
            "min" => Some(60.0),
            "h" => Some(3600.0),
            _ => None,
        },
        Quantity::Potential => match u {
            "" | "V" | "v" => Some(1.0),
            "mV" | "mv" => Some(1e-3),
            "µV" | "uV" | "μV" => Some(1e-6),
            _ if lower.starts_with("v vs") => Some(1.0),
            _ => None,
        },
        Quantity::Current => match u {
            "" | "A" | "a" => Some(1.0),
            "mA" | "ma" => Some(1e-3),
            "µA" | "uA" | "μA" => Some(1e-6),
            "nA" => Some(1e-9),
            "pA" => Some(1e-12),
            _ => None,
        },
        Quantity::Cycle => u.is_empty().then_some(1.0),
        Quantity::Deflection | Quantity::Sync => Some(1.0),
    }
}

/// Classify one header field; `None` for a column of no interest.
pub(crate) fn classify(index: usize, raw: &str) -> Option<Column> {
    let (base, unit) = split_name_unit(raw);
    let quantity = base_quantity(&base)?;
    let scale = unit_scale(quantity, &unit)?;
    Some(Column {
        index,
        name: raw.trim().to_string(),
        quantity,
        scale,
        unit,
    })
}

/// A header line split and classified.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub delim: Delim,
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub line: usize,
}

impl Header {
    pub(crate) fn parse(line_no: usize, line: &str, delim: Delim) -> Header {
        let names: Vec<String> = delim.split(line).iter().map(|s| s.to_string()).collect();
        let columns = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| classify(i, n))
            .collect();
        Header {
            delim,
            names,
            columns,
            line: line_no,
        }
    }

    /// The first column holding `q`.
    pub(crate) fn find(&self, q: Quantity) -> Option<&Column> {
        self.columns.iter().find(|c| c.quantity == q)
    }

    pub(crate) fn names_joined(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parse one field as a finite number, or a `Text` error naming the line
/// and the column.
pub(crate) fn field_number(
    fields: &[&str],
    col: &Column,
    line_no: usize,
    source: &str,
) -> Result<f64, FormatError> {
    let field = fields.get(col.index).ok_or_else(|| FormatError::Text {
        path: source.to_string(),
        line: line_no,
        why: format!(
            "{} fields, no column {} ('{}')",
            fields.len(),
            col.index + 1,
            col.name
        ),
    })?;
    match number(field) {
        Some(v) if v.is_finite() => Ok(v * col.scale),
        _ => Err(FormatError::Text {
            path: source.to_string(),
            line: line_no,
            why: format!(
                "'{}' in column '{}' is not a finite number",
                field, col.name
            ),
        }),
    }
}

/// Read the given columns from the data lines (blank lines skipped):
/// one vector per column, in the order of `cols`.
pub(crate) fn read_columns(
    lines: &[(usize, &str)],
    delim: Delim,
    cols: &[&Column],
    source: &str,
) -> Result<Vec<Vec<f64>>, FormatError> {
    let mut out: Vec<Vec<f64>> = cols.iter().map(|_| Vec::new()).collect();
    for &(line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields = delim.split(line);
        for (k, col) in cols.iter().enumerate() {
            let v = field_number(&fields, col, line_no, source)?;
            if let Some(o) = out.get_mut(k) {
                o.push(v);
            }
        }
    }
    Ok(out)
}

fn text_err(source: &str, line: usize, why: impl Into<String>) -> FormatError {
    FormatError::Text {
        path: source.to_string(),
        line,
        why: why.into(),
    }
}

/// Whether every field of the line is a number (a data row, not a header).
fn all_numeric(fields: &[&str]) -> bool {
    !fields.is_empty() && fields.iter().all(|f| number(f).is_some())
}

/// Impedance from a classified header and its data lines: Cartesian
/// columns where named, else |Z| and phase. Shared by the vendor readers.
pub(crate) fn impedance_from_header(
    format: Format,
    header: &Header,
    data: &[(usize, &str)],
    source: &str,
    expected: &str,
) -> Result<ImpedanceData, FormatError> {
    let f_col = header.find(Quantity::Freq);
    let re_col = header.find(Quantity::ZRe);
    let im_col = header
        .find(Quantity::ZIm)
        .or_else(|| header.find(Quantity::ZImNeg));
    let mod_col = header.find(Quantity::ZMod);
    let ph_col = header
        .find(Quantity::Phase)
        .or_else(|| header.find(Quantity::PhaseNeg));
    let Some(f_col) = f_col else {
        return Err(unrecognised(
            source,
            format!(
                "the header (line {}) names {} but no frequency column",
                header.line,
                header.names_joined()
            ),
            expected,
        ));
    };
    let mut meta = BTreeMap::new();
    meta.insert("columns".to_string(), header.names.join(" | "));
    meta.insert("delimiter".to_string(), header.delim.name().to_string());
    meta.insert("f_column".to_string(), f_col.name.clone());
    if let (Some(re_col), Some(im_col)) = (re_col, im_col) {
        let cols = read_columns(data, header.delim, &[f_col, re_col, im_col], source)?;
        let [f, re, im]: [Vec<f64>; 3] = cols
            .try_into()
            .map_err(|_| text_err(source, header.line, "internal: column count"))?;
        meta.insert("Z_re_column".to_string(), re_col.name.clone());
        meta.insert("Z_im_column".to_string(), im_col.name.clone());
        let (im, sign, note) = if im_col.quantity == Quantity::ZImNeg {
            (
                im.iter().map(|v| -v).collect(),
                ImagSign::Negated,
                format!(
                    "the header names the column '{}' (-Z''), so it was negated",
                    im_col.name
                ),
            )
        } else {
            (
                im,
                ImagSign::AsIs,
                format!(
                    "the header names the column '{}' (Z''), taken with its sign",
                    im_col.name
                ),
            )
        };
        finish(format, f, re, im, sign, note, meta, data, source)
    } else if let (Some(mod_col), Some(ph_col)) = (mod_col, ph_col) {
        let cols = read_columns(data, header.delim, &[f_col, mod_col, ph_col], source)?;
        let [f, m, ph]: [Vec<f64>; 3] = cols
            .try_into()
            .map_err(|_| text_err(source, header.line, "internal: column count"))?;
        let sign = if ph_col.quantity == Quantity::PhaseNeg {
            -1.0
        } else {
            1.0
        };
        let (re, im): (Vec<f64>, Vec<f64>) = m
            .iter()
            .zip(&ph)
            .map(|(m, p)| {
                let phi = (sign * p).to_radians();
                (m * phi.cos(), m * phi.sin())
            })
            .unzip();
        meta.insert("Z_mod_column".to_string(), mod_col.name.clone());
        meta.insert("phase_column".to_string(), ph_col.name.clone());
        let note = format!(
            "Z from |Z| ('{}') and phase ('{}'{}): Z'' = |Z| sin(phase)",
            mod_col.name,
            ph_col.name,
            if sign < 0.0 { ", negated" } else { "" }
        );
        finish(
            format,
            f,
            re,
            im,
            ImagSign::FromPolar,
            note,
            meta,
            data,
            source,
        )
    } else {
        Err(unrecognised(
            source,
            format!(
                "the header (line {}) names {}: a frequency but neither Z' and Z'' nor |Z| and phase",
                header.line,
                header.names_joined()
            ),
            expected,
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    format: Format,
    f: Vec<f64>,
    re: Vec<f64>,
    im: Vec<f64>,
    sign: ImagSign,
    note: String,
    meta: BTreeMap<String, String>,
    data: &[(usize, &str)],
    source: &str,
) -> Result<ImpedanceData, FormatError> {
    let last = data.last().map(|(n, _)| *n).unwrap_or(1);
    if f.is_empty() {
        return Err(text_err(source, last, "no data rows"));
    }
    // A frequency must be positive: a zero is a DC row the caller should
    // have dropped, a negative one a wrong column.
    let nonblank: Vec<usize> = data
        .iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, _)| *n)
        .collect();
    if let Some(k) = f.iter().position(|v| *v <= 0.0) {
        let line = nonblank.get(k).copied().unwrap_or(last);
        return Err(text_err(
            source,
            line,
            format!(
                "frequency {} Hz is not positive",
                f.get(k).copied().unwrap_or(0.0)
            ),
        ));
    }
    Ok(ImpedanceData {
        format,
        f_Hz: f,
        Z_re_ohm: re,
        Z_im_ohm: im,
        imag_sign: sign,
        sign_note: note,
        meta,
    })
}

/// Non-blank lines, skipping leading `#` comment lines; returns the last
/// comment line (without `#`) as a candidate header.
fn body(text: &str) -> (Option<(usize, String)>, Vec<(usize, &str)>) {
    let lines: Vec<(usize, &str)> = numbered_lines(text)
        .into_iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut comment = None;
    let mut start = 0;
    for (k, (n, l)) in lines.iter().enumerate() {
        if let Some(rest) = l.trim_start().strip_prefix('#') {
            comment = Some((*n, rest.trim().to_string()));
            start = k + 1;
        } else {
            break;
        }
    }
    (comment, lines.get(start..).unwrap_or(&[]).to_vec())
}

/// Read an impedance spectrum: a header naming the columns, or 3 headerless
/// numeric columns f, Z', Z'' whose sign convention is detected.
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let text = decode(bytes);
    let (comment, lines) = body(&text);
    let Some(&(first_no, first)) = lines.first() else {
        return Err(unrecognised(
            source,
            "no data lines".to_string(),
            IMPEDANCE_EXPECTED,
        ));
    };
    let delim = Delim::detect(first);
    let fields = delim.split(first);
    if !all_numeric(&fields) {
        let header = Header::parse(first_no, first, delim);
        let data = lines.get(1..).unwrap_or(&[]);
        return impedance_from_header(Format::HeaderCsv, &header, data, source, IMPEDANCE_EXPECTED);
    }
    if let Some((n, c)) = &comment {
        let header = Header::parse(*n, c, Delim::detect(c));
        if header.find(Quantity::Freq).is_some() {
            return impedance_from_header(
                Format::HeaderCsv,
                &header,
                &lines,
                source,
                IMPEDANCE_EXPECTED,
            );
        }
    }
    headerless(&lines, delim, source)
}

/// The headerless layout: exactly 3 numeric columns per row.
fn headerless(
    lines: &[(usize, &str)],
    delim: Delim,
    source: &str,
) -> Result<ImpedanceData, FormatError> {
    let (mut f, mut re, mut im) = (Vec::new(), Vec::new(), Vec::new());
    for &(n, line) in lines {
        let fields = delim.split(line);
        if fields.len() != 3 {
            if n == lines.first().map(|x| x.0).unwrap_or(0) {
                return Err(unrecognised(
                    source,
                    format!(
                        "line {n} has {} numeric columns and no header names them",
                        fields.len()
                    ),
                    IMPEDANCE_EXPECTED,
                ));
            }
            return Err(text_err(
                source,
                n,
                format!("{} fields where the file has 3 (f, Z', Z'')", fields.len()),
            ));
        }
        let mut vals = [0.0; 3];
        for (k, field) in fields.iter().enumerate() {
            match number(field) {
                Some(v) if v.is_finite() => {
                    if let Some(slot) = vals.get_mut(k) {
                        *slot = v;
                    }
                }
                _ => {
                    return Err(text_err(
                        source,
                        n,
                        format!("'{field}' in column {} is not a finite number", k + 1),
                    ));
                }
            }
        }
        let [a, b, c] = vals;
        if a <= 0.0 {
            return Err(text_err(
                source,
                n,
                format!("frequency {a} Hz is not positive"),
            ));
        }
        f.push(a);
        re.push(b);
        im.push(c);
    }
    let positive = im.iter().filter(|v| **v > 0.0).count();
    let negative = im.iter().filter(|v| **v < 0.0).count();
    let n_points = im.len();
    let mut meta = BTreeMap::new();
    meta.insert("delimiter".to_string(), delim.name().to_string());
    meta.insert(
        "columns".to_string(),
        "f (Hz) | Z' (ohm) | Z'' (ohm), by position (no header)".to_string(),
    );
    let (im, sign, note) = if positive > negative {
        (
            im.iter().map(|v| -v).collect(),
            ImagSign::Negated,
            format!(
                "no header: {positive} of {} points have a positive third column; a capacitive spectrum has Z'' < 0, so the column was read as -Z'' and negated",
                n_points
            ),
        )
    } else {
        (
            im,
            ImagSign::AsIs,
            format!(
                "no header: {negative} of {} points have a negative third column (capacitive), so it was read as Z'' with its sign",
                n_points
            ),
        )
    };
    Ok(ImpedanceData {
        format: Format::PlainCsv,
        f_Hz: f,
        Z_re_ohm: re,
        Z_im_ohm: im,
        imag_sign: sign,
        sign_note: note,
        meta,
    })
}

/// The header line and the data lines after it; a headerless file is
/// refused (a time series or trace is never read by position).
fn header_and_data<'a>(
    text: &'a str,
    source: &str,
    expected: &str,
) -> Result<(Header, Vec<(usize, &'a str)>), FormatError> {
    let (comment, lines) = body(text);
    let Some(&(first_no, first)) = lines.first() else {
        return Err(unrecognised(source, "no data lines".to_string(), expected));
    };
    let delim = Delim::detect(first);
    if all_numeric(&delim.split(first)) {
        if let Some((n, c)) = comment {
            let header = Header::parse(n, &c, Delim::detect(&c));
            return Ok((header, lines));
        }
        return Err(unrecognised(
            source,
            format!("line {first_no} is numeric: no header names the columns"),
            expected,
        ));
    }
    let header = Header::parse(first_no, first, delim);
    Ok((header, lines.get(1..).unwrap_or(&[]).to_vec()))
}

fn missing(source: &str, header: &Header, what: &str, expected: &str) -> FormatError {
    unrecognised(
        source,
        format!(
            "the header (line {}) names {} but no {what} column",
            header.line,
            header.names_joined()
        ),
        expected,
    )
}

/// Read a potentiostat time series: time, potential and current by name
/// (mA, µA converted to A; ms to s), cycle where named.
pub fn series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    let text = decode(bytes);
    let (header, data) = header_and_data(&text, source, SERIES_EXPECTED)?;
    series_from_header(Format::HeaderCsv, &header, &data, source, SERIES_EXPECTED)
}

/// Time series from a classified header; shared with the vendor readers.
pub(crate) fn series_from_header(
    format: Format,
    header: &Header,
    data: &[(usize, &str)],
    source: &str,
    expected: &str,
) -> Result<EcSeries, FormatError> {
    let t = header
        .find(Quantity::Time)
        .ok_or_else(|| missing(source, header, "time", expected))?;
    let e = header
        .find(Quantity::Potential)
        .ok_or_else(|| missing(source, header, "potential", expected))?;
    let i = header
        .find(Quantity::Current)
        .ok_or_else(|| missing(source, header, "current", expected))?;
    let mut cols = vec![t, e, i];
    let cycle_col = header.find(Quantity::Cycle);
    if let Some(c) = cycle_col {
        cols.push(c);
    }
    let mut vals = read_columns(data, header.delim, &cols, source)?.into_iter();
    let t_s = vals.next().unwrap_or_default();
    if t_s.is_empty() {
        let last = data.last().map(|(n, _)| *n).unwrap_or(header.line);
        return Err(text_err(source, last, "no data rows"));
    }
    let E_V = vals.next().unwrap_or_default();
    let I_A = vals.next().unwrap_or_default();
    let cycle = vals
        .next()
        .map(|c| c.iter().map(|v| v.round() as i64).collect());
    let mut meta = BTreeMap::new();
    meta.insert("columns".to_string(), header.names.join(" | "));
    for (key, c) in [("t_column", t), ("E_column", e), ("I_column", i)] {
        let unit = if c.unit.is_empty() {
            " (no unit in the header: SI assumed)".to_string()
        } else {
            String::new()
        };
        meta.insert(key.to_string(), format!("{}{unit}", c.name));
    }
    Ok(EcSeries {
        format,
        t_s,
        E_V,
        I_A,
        cycle,
        technique: None,
        start_unix_ns: None,
        start_note: None,
        meta,
    })
}

/// Read a deflection trace: a time column (s or ms) and a deflection
/// column named deflection/defl/signal/value (or the only other column),
/// its unit taken from the header; a sync/trigger column where named.
pub fn trace(bytes: &[u8], source: &str) -> Result<Trace, FormatError> {
    let text = decode(bytes);
    let (header, data) = header_and_data(&text, source, TRACE_EXPECTED)?;
    let t = header
        .find(Quantity::Time)
        .ok_or_else(|| missing(source, &header, "time", TRACE_EXPECTED))?;
    let sync = header.find(Quantity::Sync);
    let mut meta = BTreeMap::new();
    let value = match header.find(Quantity::Deflection) {
        Some(v) => v.clone(),
        None => {
            // The only column that is neither time nor sync is unambiguous.
            let others: Vec<usize> = (0..header.names.len())
                .filter(|k| *k != t.index && Some(*k) != sync.map(|s| s.index))
                .collect();
            match others.as_slice() {
                [k] => {
                    let raw = header.names.get(*k).cloned().unwrap_or_default();
                    let (_, unit) = split_name_unit(&raw);
                    meta.insert(
                        "value_column_note".to_string(),
                        format!("'{raw}' is the only column besides time and sync"),
                    );
                    Column {
                        index: *k,
                        name: raw,
                        quantity: Quantity::Deflection,
                        scale: 1.0,
                        unit,
                    }
                }
                _ => return Err(missing(source, &header, "deflection", TRACE_EXPECTED)),
            }
        }
    };
    let mut cols = vec![t, &value];
    if let Some(s) = sync {
        cols.push(s);
    }
    let mut vals = read_columns(&data, header.delim, &cols, source)?.into_iter();
    let t_s = vals.next().unwrap_or_default();
    if t_s.is_empty() {
        let last = data.last().map(|(n, _)| *n).unwrap_or(header.line);
        return Err(text_err(source, last, "no data rows"));
    }
    let value_v = vals.next().unwrap_or_default();
    let sync_v = vals.next();
    meta.insert("columns".to_string(), header.names.join(" | "));
    meta.insert("t_column".to_string(), t.name.clone());
    if t.unit.is_empty() {
        meta.insert(
            "t_unit_note".to_string(),
            "no unit in the time column's name: seconds assumed".to_string(),
        );
    }
    meta.insert("value_column".to_string(), value.name.clone());
    if let Some(s) = sync {
        meta.insert("sync_column".to_string(), s.name.clone());
    }
    Ok(Trace {
        format: Format::HeaderCsv,
        t_s,
        value: value_v,
        unit: value.unit.clone(),
        sync: sync_v,
        start_unix_ns: None,
        start_note: None,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_units() {
        assert_eq!(split_name_unit("Freq/Hz"), ("freq".into(), "Hz".into()));
        assert_eq!(split_name_unit("Re(Z)/Ohm"), ("re(z)".into(), "Ohm".into()));
        assert_eq!(split_name_unit("-Im(Z)"), ("-im(z)".into(), "".into()));
        assert_eq!(split_name_unit("Z'(a)"), ("z'".into(), "".into()));
        assert_eq!(split_name_unit("-Z'' (Ω)"), ("-z''".into(), "Ω".into()));
        assert_eq!(split_name_unit("Z\"/ohm"), ("z\"".into(), "ohm".into()));
        assert_eq!(
            split_name_unit("Elapsed Time (s)"),
            ("elapsedtime".into(), "s".into())
        );
        let c = classify(0, "<I>/mA").unwrap();
        assert_eq!(c.quantity, Quantity::Current);
        assert_eq!(c.scale, 1e-3);
        assert_eq!(
            classify(0, "-Phase (°)").unwrap().quantity,
            Quantity::PhaseNeg
        );
        assert!(classify(0, "Freq (ohm)").is_none());
        assert!(classify(0, "I/E Range").is_none());
    }

    #[test]
    fn cv_csv_is_not_a_spectrum() {
        let e = impedance(b"time,E,I\n0,0.1,1e-6\n1,0.2,2e-6\n", "cv.csv").unwrap_err();
        assert!(matches!(e, FormatError::Unrecognised { .. }), "{e}");
    }
}
