//! Raw streams: the append-only, crash-safe text files under `raw/` that
//! hold every sample while a run is going.
//!
//! Format of `raw/<stream>.csv` (one file per stream, UTF-8, `\n` endings):
//!
//! ```text
//! t_ns:i64,seq:i64,E_V:f64,I_A:f64
//! 1000000,0,0.4,-1.25e-5
//! 2000000,1,0.402,NaN
//! ```
//!
//! The header names every column and its kind (`i64` or `f64`), so a reader
//! needs nothing but the file. Integers are written in decimal, floats with
//! Rust's shortest round-trip formatting (`{:?}`: `0.1`, `1e-7`, `NaN`,
//! `inf`), so parsing a line gives back exactly the bits that were appended.
//!
//! Why text and not Arrow IPC while running: a line format is trivially
//! recoverable after SIGKILL or power loss — everything up to the last `\n`
//! is valid, a torn last line is simply dropped — and a human can `tail -f`
//! it during a run. Parquet (see `parquet.rs`) is the finished format.
//!
//! Raw streams are only ever created fresh ([`RawStream::create`] opens with
//! `create_new`, by the one live [`crate::RunWriter`]); nothing reopens an
//! existing raw file to append to it. Recovery and finalisation only read
//! them, leaving a torn last line in the file (the readers drop it), so no
//! raw stream ever gets a line glued onto a torn one and no cut-back like
//! `events.jsonl`'s ([`crate::EventLog::open_append`]) is needed here. A
//! future path that appends to an existing raw file must cut its torn tail
//! back first, the same way.
//!
//! Durability: rows go through a `BufWriter`; it is written, flushed and
//! `sync_data`'d whenever at least `flush_interval` (default 1 s) has passed
//! since the last flush (checked on every append), on [`RawStream::flush`],
//! and on close/drop. A crash therefore loses at most the last interval.
//! The check runs inside `append`, so while no rows arrive (a pause, a
//! wait step) nothing is flushed: call [`RawStream::flush_if_due`] from a
//! timer or [`RawStream::flush`] at step boundaries.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Column, RAW_DIR, StoreError, Table};

/// Default time between durable flushes of a raw stream.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The kind of a raw-stream column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    I64,
    F64,
}

impl ColKind {
    fn name(self) -> &'static str {
        match self {
            ColKind::I64 => "i64",
            ColKind::F64 => "f64",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "i64" => Some(ColKind::I64),
            "f64" => Some(ColKind::F64),
            _ => None,
        }
    }
}

/// Name and kind of one column of a raw stream. The name is a `Cow` so a
/// stream's columns can be a `const` array (`ColumnSpec::new`) and still be
/// built at run time from configured names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: Cow<'static, str>,
    pub kind: ColKind,
}

impl ColumnSpec {
    pub const fn new(name: &'static str, kind: ColKind) -> Self {
        Self {
            name: Cow::Borrowed(name),
            kind,
        }
    }

    pub fn i64(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            kind: ColKind::I64,
        }
    }

    pub fn f64(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            kind: ColKind::F64,
        }
    }
}

/// One value of a row being appended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    I64(i64),
    F64(f64),
}

impl Cell {
    fn kind_name(self) -> &'static str {
        match self {
            Cell::I64(_) => "i64",
            Cell::F64(_) => "f64",
        }
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::I64(v)
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::F64(v)
    }
}

/// Names become file names and CSV header fields, so they are restricted to
/// characters that are safe in both: ASCII letters, digits, `_`, `-`, `.`,
/// not starting with `.`.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    let why = if name.is_empty() {
        Some("must not be empty")
    } else if name.starts_with('.') {
        Some("must not start with '.'")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some("only ASCII letters, digits, '_', '-' and '.' are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(StoreError::InvalidName {
            what,
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Path of a stream's raw file inside a run folder.
pub fn raw_path(run_dir: &Path, stream: &str) -> PathBuf {
    run_dir.join(RAW_DIR).join(format!("{stream}.csv"))
}

/// An open, append-only raw stream. Not `Clone`: one writer per stream.
/// Dropping it flushes (best effort); call [`RawStream::close`] to see errors.
#[derive(Debug)]
pub struct RawStream {
    path: PathBuf,
    columns: Vec<ColumnSpec>,
    out: BufWriter<File>,
    flush_interval: Duration,
    last_flush: Instant,
    dirty: bool,
    rows: u64,
}

impl RawStream {
    /// Create `raw/<name>.csv` (it must not exist yet), write the header and
    /// make it durable right away so even an instantly killed run leaves a
    /// readable, empty stream. The only way a raw file is opened for
    /// writing: an existing one is never appended to (see the module docs).
    pub(crate) fn create(
        run_dir: &Path,
        name: &str,
        columns: &[ColumnSpec],
        flush_interval: Duration,
    ) -> Result<Self, StoreError> {
        validate_name("stream", name)?;
        if columns.is_empty() {
            return Err(StoreError::InvalidName {
                what: "stream",
                name: name.to_owned(),
                why: "a stream needs at least one column",
            });
        }
        for (i, c) in columns.iter().enumerate() {
            validate_name("column", &c.name)?;
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(StoreError::InvalidName {
                    what: "column",
                    name: c.name.to_string(),
                    why: "appears twice in the stream",
                });
            }
        }
        let path = raw_path(run_dir, name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    StoreError::StreamExists { path: path.clone() }
                } else {
                    StoreError::io(&path, e)
                }
            })?;
        let mut stream = RawStream {
            path,
            columns: columns.to_vec(),
            out: BufWriter::with_capacity(64 * 1024, file),
            flush_interval,
            last_flush: Instant::now(),
            dirty: false,
            rows: 0,
        };
        let header = columns
            .iter()
            .map(|c| format!("{}:{}", c.name, c.kind.name()))
            .collect::<Vec<_>>()
            .join(",");
        writeln!(stream.out, "{header}").map_err(|e| StoreError::io(&stream.path, e))?;
        stream.dirty = true;
        stream.flush()?;
        Ok(stream)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// Rows appended so far (durable or not).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Change how long rows may sit in memory before a durable flush.
    /// `Duration::ZERO` makes every append durable (slow; for tests).
    pub fn set_flush_interval(&mut self, interval: Duration) {
        self.flush_interval = interval;
    }

    /// Append one row. Width and cell kinds are checked before anything is
    /// written, so a rejected row never leaves half a line in the file.
    pub fn append(&mut self, row: &[Cell]) -> Result<(), StoreError> {
        if row.len() != self.columns.len() {
            return Err(StoreError::RowWidth {
                path: self.path.clone(),
                expected: self.columns.len(),
                got: row.len(),
            });
        }
        for (cell, spec) in row.iter().zip(&self.columns) {
            let ok = matches!(
                (cell, spec.kind),
                (Cell::I64(_), ColKind::I64) | (Cell::F64(_), ColKind::F64)
            );
            if !ok {
                return Err(StoreError::CellKind {
                    path: self.path.clone(),
                    column: spec.name.to_string(),
                    expected: spec.kind.name(),
                    got: cell.kind_name(),
                });
            }
        }
        let mut line = String::with_capacity(16 * row.len());
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            match cell {
                Cell::I64(v) => line.push_str(&v.to_string()),
                // `{:?}` is the shortest string that parses back to the same
                // f64, and uses an exponent for very large/small values.
                Cell::F64(v) => line.push_str(&format!("{v:?}")),
            }
        }
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.rows += 1;
        self.dirty = true;
        self.flush_if_due()
    }

    /// Flush durably if `flush_interval` has passed since the last flush.
    pub fn flush_if_due(&mut self) -> Result<(), StoreError> {
        if self.dirty && self.last_flush.elapsed() >= self.flush_interval {
            self.flush()?;
        }
        Ok(())
    }

    /// Write buffered rows to the file and `sync_data` it.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.out
            .flush()
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.last_flush = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Flush and close, reporting any error (dropping only tries).
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()
    }
}

impl Drop for RawStream {
    fn drop(&mut self) {
        if self.dirty {
            // Errors cannot be returned from drop; `close` reports them.
            let _ = self.flush();
        }
    }
}

/// Names of the streams that have a file under `raw/`, sorted.
pub fn list_raw_streams(run_dir: &Path) -> Result<Vec<String>, StoreError> {
    let raw = run_dir.join(RAW_DIR);
    let entries = std::fs::read_dir(&raw).map_err(|e| StoreError::io(&raw, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(&raw, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(stem) = file_name.strip_suffix(".csv")
            && validate_name("stream", stem).is_ok()
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Read `raw/<stream>.csv` into a [`Table`].
///
/// Tolerates exactly what a crash leaves: a last line without its `\n` is
/// dropped. Any complete line that does not parse is an error naming
/// `path:line`, because that is corruption, not a crash artefact.
pub fn read_raw(run_dir: &Path, stream: &str) -> Result<Table, StoreError> {
    validate_name("stream", stream)?;
    read_raw_file(&raw_path(run_dir, stream))
}

/// [`read_raw`] for an explicit file path (e.g. a raw file copied elsewhere).
pub fn read_raw_file(path: &Path) -> Result<Table, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::new();
    let parse_err = |line: usize, msg: String| StoreError::Parse {
        path: path.to_owned(),
        line,
        msg,
    };

    // Header.
    let n = reader
        .read_until(b'\n', &mut buf)
        .map_err(|e| StoreError::io(path, e))?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return Err(StoreError::NoHeader {
            path: path.to_owned(),
        });
    }
    let header = line_text(&buf).map_err(|e| parse_err(1, format!("not UTF-8: {e}")))?;
    let mut specs = Vec::new();
    for field in header.split(',') {
        let (name, kind) = field
            .rsplit_once(':')
            .ok_or_else(|| parse_err(1, format!("header field {field:?} is not name:kind")))?;
        let kind = ColKind::parse(kind).ok_or_else(|| {
            parse_err(
                1,
                format!("header field {field:?}: kind must be i64 or f64"),
            )
        })?;
        specs.push(ColumnSpec {
            name: Cow::Owned(name.to_owned()),
            kind,
        });
    }
    let mut cols: Vec<Column> = specs
        .iter()
        .map(|s| match s.kind {
            ColKind::I64 => Column::I64(Vec::new()),
            ColKind::F64 => Column::F64(Vec::new()),
        })
        .collect();

    // Rows.
    let mut line_no = 1;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| StoreError::io(path, e))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            // End of file, or a torn last line from a crash: dropped.
            break;
        }
        line_no += 1;
        let text = line_text(&buf).map_err(|e| parse_err(line_no, format!("not UTF-8: {e}")))?;
        let mut fields = text.split(',');
        for (col, spec) in cols.iter_mut().zip(&specs) {
            let field = fields.next().ok_or_else(|| {
                parse_err(
                    line_no,
                    format!("expected {} cells, missing {:?}", specs.len(), spec.name),
                )
            })?;
            let bad = |e: &dyn std::fmt::Display| {
                parse_err(
                    line_no,
                    format!("column {:?}: cannot parse {field:?}: {e}", spec.name),
                )
            };
            match col {
                Column::I64(v) => v.push(field.parse::<i64>().map_err(|e| bad(&e))?),
                Column::F64(v) => v.push(field.parse::<f64>().map_err(|e| bad(&e))?),
            }
        }
        if fields.next().is_some() {
            return Err(parse_err(
                line_no,
                format!("more than {} cells", specs.len()),
            ));
        }
    }

    Ok(Table {
        columns: specs
            .into_iter()
            .map(|s| s.name.into_owned())
            .zip(cols)
            .collect(),
    })
}

/// A complete line without its terminator (`\n`, or `\r\n` if edited on Windows).
fn line_text(buf: &[u8]) -> Result<&str, std::str::Utf8Error> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    std::str::from_utf8(body)
}
