//! Readers of files written by other software: vendor impedance spectra
//! (EC-Lab, Gamry, CHI, ZPlot, Autolab, VersaStudio/Parstat, CSV with named
//! columns), potentiostat time series (CV, CA, OCP) and AFM deflection
//! traces (CSV/TSV, Igor binary waves).
//!
//! Why a crate of its own: the post-run pipeline must accept data recorded
//! by other software (`vegard import`, `vegard fit-eis`), and a reader must
//! never guess. The format is recognised from the content (never from the
//! extension alone); a file no reader recognises is refused with what was
//! expected, never read as the wrong columns. Every reader works on bytes
//! already in memory, so it is fuzzed without touching the disk, and no
//! allocation is sized by a count the file declares without checking it
//! against the bytes that remain.
//!
//! Layout: one module per vendor family; each exposes `sniff(&[u8]) -> bool`
//! (cheap, content based) and the readers it supports. The dispatch below
//! tries the sniffers in a fixed order, most specific first.

use std::collections::BTreeMap;
use std::path::Path;

pub mod autolab;
pub mod biologic;
pub mod chi;
pub mod csv;
pub mod gamry;
pub mod igor;
pub mod parstat;
pub mod text;
pub mod zplot;

/// Which reader produced the data; printed by `fit-eis --json` and kept in
/// an imported run's provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// BioLogic EC-Lab text export (.mpt).
    BiologicMpt,
    /// BioLogic EC-Lab binary settings + data file (.mpr).
    BiologicMpr,
    /// Gamry Framework EXPLAIN file (.DTA): ZCURVE or CURVE tables.
    GamryDta,
    /// CH Instruments text export.
    ChiText,
    /// Scribner ZPlot (.z).
    Zplot,
    /// Metrohm Autolab (NOVA / GPES) text export.
    AutolabText,
    /// Princeton Applied Research VersaStudio / Parstat text export.
    ParstatText,
    /// Delimited text whose header names the columns.
    HeaderCsv,
    /// Headerless three-column text: f (Hz), Z' (ohm), Z'' (ohm).
    PlainCsv,
    /// Igor binary wave (.ibw), as Asylum Research software writes it.
    IgorIbw,
}

impl Format {
    /// Human name, as used in messages and the README's formats table.
    pub fn name(self) -> &'static str {
        match self {
            Format::BiologicMpt => "BioLogic EC-Lab text (.mpt)",
            Format::BiologicMpr => "BioLogic EC-Lab binary (.mpr)",
            Format::GamryDta => "Gamry Framework (.DTA)",
            Format::ChiText => "CH Instruments text",
            Format::Zplot => "Scribner ZPlot (.z)",
            Format::AutolabText => "Metrohm Autolab text",
            Format::ParstatText => "PAR VersaStudio/Parstat text",
            Format::HeaderCsv => "CSV/TSV with named columns",
            Format::PlainCsv => "3-column text (f, Z', Z'')",
            Format::IgorIbw => "Igor binary wave (.ibw)",
        }
    }
}

/// Why a file could not be read. Every variant names the file; text
/// formats name the line (1-based), binary formats the byte offset.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened or read.
    #[error("{path}: {why}")]
    Io { path: String, why: String },
    /// A recognised text format with bad content at `line`.
    #[error("{path}:{line}: {why}")]
    Text {
        path: String,
        line: usize,
        why: String,
    },
    /// A recognised binary format with bad content at byte `offset`.
    #[error("{path}: byte {offset}: {why}")]
    Binary {
        path: String,
        offset: usize,
        why: String,
    },
    /// The file is over a size limit ([`MAX_FILE_BYTES`], or a binary
    /// file's points over [`MAX_SPECTRUM_POINTS`] / [`MAX_SERIES_POINTS`]).
    #[error("{path}: {why}")]
    TooLarge { path: String, why: String },
    /// No reader recognises the content, or the recognised file holds a
    /// different kind of data (a CV given where a spectrum is expected).
    #[error("{path}: {why}; expected {expected}")]
    Unrecognised {
        path: String,
        why: String,
        expected: String,
    },
}

/// How the file stored the imaginary part, as detected; vegard always
/// hands on Z'' with its physical sign (negative for a capacitive arc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImagSign {
    /// The file's column is Z'' (capacitive points negative).
    AsIs,
    /// The file's column is -Z'' (capacitive points positive); negated on reading.
    Negated,
    /// Derived from |Z| and phase.
    FromPolar,
}

/// An impedance spectrum as read, in file order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImpedanceData {
    pub format: Format,
    pub f_Hz: Vec<f64>,
    pub Z_re_ohm: Vec<f64>,
    /// Physical sign: negative for capacitive behaviour.
    pub Z_im_ohm: Vec<f64>,
    pub imag_sign: ImagSign,
    /// A sentence on how the sign convention was decided (shown to the user).
    pub sign_note: String,
    /// The file's own metadata worth keeping (technique, instrument, dates).
    pub meta: BTreeMap<String, String>,
}

/// A potentiostat time series (CV, CA, OCP, ...) as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EcSeries {
    pub format: Format,
    /// Time since the acquisition start (s), as the file states it.
    pub t_s: Vec<f64>,
    pub E_V: Vec<f64>,
    pub I_A: Vec<f64>,
    /// Cycle number per row, where the file has one.
    pub cycle: Option<Vec<i64>>,
    /// Technique as the file names it (e.g. "Cyclic Voltammetry", "CV", "CA").
    pub technique: Option<String>,
    /// Acquisition start as Unix time in ns (UTC), where the file states
    /// it; `start_note` says how it was read (time zone assumptions).
    pub start_unix_ns: Option<i64>,
    pub start_note: Option<String>,
    pub meta: BTreeMap<String, String>,
}

/// A deflection (or any other) trace from the AFM side.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trace {
    pub format: Format,
    /// Sample times (s) from the trace's own start.
    pub t_s: Vec<f64>,
    /// The signal, in `unit`.
    pub value: Vec<f64>,
    /// Unit of `value` as the file states it ("V", "m", "nm", ...), or "" if unknown.
    pub unit: String,
    /// A sync/trigger channel recorded beside the signal, where present.
    pub sync: Option<Vec<f64>>,
    pub start_unix_ns: Option<i64>,
    pub start_note: Option<String>,
    pub meta: BTreeMap<String, String>,
}

/// Largest file any reader accepts (bytes): far above any real export, and
/// a bound on the memory a reader can be made to use.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Longest line of a text data file, bytes: 64 KiB. A data row is tens of
/// bytes and EC-Lab's column header, the longest line any vendor writes,
/// about 1 kB; a longer line is not a table (a binary file, or a file
/// without line ends), and error messages quote lines.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Most points of an impedance spectrum, 100 000: an analyser measures
/// 10-1000 frequencies per spectrum. The bound keeps a mislabelled time
/// series (millions of rows) from being read as a spectrum; the fit has a
/// lower limit of its own (`vegard_analysis::MAX_FIT_POINTS`), with a
/// decimation hint.
pub const MAX_SPECTRUM_POINTS: usize = 100_000;

/// Most points of a potentiostat time series or a deflection trace,
/// 20 000 000: 5.5 h at 1 kHz, 2.3 days at 100 Hz. The import keeps about
/// six columns of that length in memory (~1 GB at the limit); longer
/// recordings are split or decimated first.
pub const MAX_SERIES_POINTS: usize = 20_000_000;

/// What a limit is checked for: the points allowed and the words used.
#[derive(Clone, Copy)]
struct DataKind {
    max_points: usize,
    what: &'static str,
}

const SPECTRUM: DataKind = DataKind {
    max_points: MAX_SPECTRUM_POINTS,
    what: "an impedance spectrum (a measured one has 10-1000)",
};
const SERIES: DataKind = DataKind {
    max_points: MAX_SERIES_POINTS,
    what: "a time series or trace",
};

/// The limits of a text file, checked in one pass before any reader
/// parses it: every line at most [`MAX_LINE_BYTES`], and at most
/// `kind.max_points` data rows (lines whose first non-blank character
/// starts a number; the readers' rows are a subset of them). Lines end at
/// `\n`, or at `\r` in a file without any `\n` (as the readers split).
/// The error names the line where the limit was crossed.
fn check_text_limits(bytes: &[u8], source: &str, kind: DataKind) -> Result<(), FormatError> {
    let end = if bytes.contains(&b'\n') { b'\n' } else { b'\r' };
    let mut rows = 0usize;
    for (i, line) in bytes.split(|&b| b == end).enumerate() {
        let err = |why: String| FormatError::Text {
            path: source.to_string(),
            line: i + 1,
            why,
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(err(format!(
                "line of {} bytes: at most {MAX_LINE_BYTES} bytes per line (a data row is \
                 tens of bytes)",
                line.len()
            )));
        }
        let first = line
            .iter()
            .find(|b| !b.is_ascii_whitespace() && **b != b'"');
        if first.is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.')) {
            rows += 1;
            if rows > kind.max_points {
                return Err(err(format!(
                    "more than {} data rows: {} has at most {} points here; decimate it \
                     or split it",
                    kind.max_points, kind.what, kind.max_points
                )));
            }
        }
    }
    Ok(())
}

/// The formats read as bytes, not lines: the text limits do not apply.
fn is_binary(format: Option<Format>) -> bool {
    matches!(format, Some(Format::BiologicMpr | Format::IgorIbw))
}

/// A binary file's point count within the limit (its counts are checked
/// against its bytes by the reader; this bounds what comes after).
fn check_points(n: usize, source: &str, kind: DataKind) -> Result<(), FormatError> {
    if n <= kind.max_points {
        return Ok(());
    }
    Err(FormatError::TooLarge {
        path: source.to_string(),
        why: format!(
            "{n} points: {} has at most {} points here; decimate it or split it",
            kind.what, kind.max_points
        ),
    })
}

/// Read a whole file, with the size bound and an error naming it.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, FormatError> {
    let io = |why: String| FormatError::Io {
        path: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
    if meta.is_dir() {
        return Err(io("is a folder, not a file".into()));
    }
    let too_large = |size: String| FormatError::TooLarge {
        path: path.display().to_string(),
        why: format!("{size} is more than any reader accepts ({MAX_FILE_BYTES} bytes)"),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(format!("{} bytes", meta.len())));
    }
    // The read stops one byte past the limit: a device or a pipe has no
    // size, and a file may grow while it is read.
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| io(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large("the content".to_string()));
    }
    Ok(bytes)
}

const IMPEDANCE_EXPECTED: &str = "an impedance spectrum: EC-Lab .mpt/.mpr (PEIS/GEIS), Gamry .DTA (ZCURVE), CH Instruments text, ZPlot .z, Autolab text, VersaStudio/Parstat text, CSV/TSV whose header names f and Z', Z'' (or |Z| and phase), or 3 numeric columns f, Z', Z''";
const SERIES_EXPECTED: &str = "a potentiostat time series: EC-Lab .mpt/.mpr, Gamry .DTA (CURVE), CH Instruments text, or CSV/TSV whose header names time, E and I";
const TRACE_EXPECTED: &str =
    "a deflection trace: CSV/TSV with a time column, or an Igor binary wave (.ibw)";

/// Which vendor format the content is, most specific first; `None` when no
/// sniffer recognises it (the generic CSV readers decide for themselves).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if biologic::sniff_mpr(bytes) {
        Some(Format::BiologicMpr)
    } else if biologic::sniff_mpt(bytes) {
        Some(Format::BiologicMpt)
    } else if igor::sniff(bytes) {
        Some(Format::IgorIbw)
    } else if gamry::sniff(bytes) {
        Some(Format::GamryDta)
    } else if chi::sniff(bytes) {
        Some(Format::ChiText)
    } else if zplot::sniff(bytes) {
        Some(Format::Zplot)
    } else if parstat::sniff(bytes) {
        Some(Format::ParstatText)
    } else if autolab::sniff(bytes) {
        Some(Format::AutolabText)
    } else {
        None
    }
}

/// Read an impedance spectrum from any supported format.
pub fn read_impedance(path: &Path) -> Result<ImpedanceData, FormatError> {
    let bytes = read_bytes(path)?;
    parse_impedance(&bytes, &path.display().to_string())
}

/// [`read_impedance`] on bytes in memory; `source` names them in errors.
pub fn parse_impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let format = sniff(bytes);
    if !is_binary(format) {
        check_text_limits(bytes, source, SPECTRUM)?;
    }
    let data = match format {
        Some(Format::BiologicMpr) => biologic::mpr_impedance(bytes, source),
        Some(Format::BiologicMpt) => biologic::mpt_impedance(bytes, source),
        Some(Format::GamryDta) => gamry::impedance(bytes, source),
        Some(Format::ChiText) => chi::impedance(bytes, source),
        Some(Format::Zplot) => zplot::impedance(bytes, source),
        Some(Format::ParstatText) => parstat::impedance(bytes, source),
        Some(Format::AutolabText) => autolab::impedance(bytes, source),
        Some(other) => Err(unrecognised(
            source,
            format!("this is {}, not an impedance spectrum", other.name()),
            IMPEDANCE_EXPECTED,
        )),
        None => csv::impedance(bytes, source),
    }?;
    check_points(data.f_Hz.len(), source, SPECTRUM)?;
    Ok(data)
}

/// Read a potentiostat time series from any supported format.
pub fn read_ec_series(path: &Path) -> Result<EcSeries, FormatError> {
    let bytes = read_bytes(path)?;
    parse_ec_series(&bytes, &path.display().to_string())
}

/// [`read_ec_series`] on bytes in memory.
pub fn parse_ec_series(bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    let format = sniff(bytes);
    if !is_binary(format) {
        check_text_limits(bytes, source, SERIES)?;
    }
    let data = match format {
        Some(Format::BiologicMpr) => biologic::mpr_series(bytes, source),
        Some(Format::BiologicMpt) => biologic::mpt_series(bytes, source),
        Some(Format::GamryDta) => gamry::series(bytes, source),
        Some(Format::ChiText) => chi::series(bytes, source),
        Some(other) => Err(unrecognised(
            source,
            format!("this is {}, not a potentiostat time series", other.name()),
            SERIES_EXPECTED,
        )),
        None => csv::series(bytes, source),
    }?;
    check_points(data.t_s.len(), source, SERIES)?;
    Ok(data)
}

/// Read a deflection trace.
pub fn read_trace(path: &Path) -> Result<Trace, FormatError> {
    let bytes = read_bytes(path)?;
    parse_trace(&bytes, &path.display().to_string())
}

/// [`read_trace`] on bytes in memory.
pub fn parse_trace(bytes: &[u8], source: &str) -> Result<Trace, FormatError> {
    let format = sniff(bytes);
    if !is_binary(format) {
        check_text_limits(bytes, source, SERIES)?;
    }
    let data = match format {
        Some(Format::IgorIbw) => igor::trace(bytes, source),
        Some(other) => Err(unrecognised(
            source,
            format!("this is {}, not a deflection trace", other.name()),
            TRACE_EXPECTED,
        )),
        None => csv::trace(bytes, source),
    }?;
    check_points(data.t_s.len(), source, SERIES)?;
    Ok(data)
}

pub(crate) fn unrecognised(source: &str, why: String, expected: &str) -> FormatError {
    FormatError::Unrecognised {
        path: source.to_string(),
        why,
        expected: expected.to_string(),
    }
}
