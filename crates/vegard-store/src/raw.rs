//! Raw streams: the append-only, crash-safe files under `raw/` that hold
//! every sample while a run is going.
//!
//! Format: `raw/<stream>.arrows`, an Arrow IPC stream (see `raw_ipc.rs`):
//! a schema message naming every column and its kind (non-null `Int64` or
//! `Float64`), then one ZSTD-compressed record batch per flush, then the
//! end-of-stream marker on close. Any Arrow reader opens it
//! (`pyarrow.ipc.open_stream`); `vegard export RUN --raw STREAM` gives the
//! same rows as text. Folders recorded before the binary format hold
//! `raw/<stream>.csv` (`raw_csv.rs`); every reader here takes either, told
//! apart by the file's first bytes.
//!
//! Why binary: text cost about 2 us of CPU per deflection row (a string per
//! cell) and was parsed again at finalisation; a row is now a few `Vec`
//! pushes, and the columns are compressed a second at a time (README
//! "Raw streams" has the measured CPU and bytes per row).
//!
//! Raw streams are only ever created fresh ([`RawStream::create`] opens with
//! `create_new`, by the one live [`crate::RunWriter`]); nothing reopens an
//! existing raw file to append to it. Recovery and finalisation only read
//! them, dropping a torn last message (the readers stop at the last complete
//! batch), so nothing is ever glued onto a torn tail.
//!
//! Durability: rows are held in column buffers; they are encoded as one
//! batch, written with one `write_all` and `sync_data`'d whenever at least
//! `flush_interval` (default 1 s) has passed since the last flush (checked on
//! every append), on [`RawStream::flush`], and on close/drop; a batch is also
//! written (without sync) when it reaches [`MAX_BATCH_ROWS`]. A crash
//! therefore loses at most the last interval. The check runs inside
//! `append`, so while no rows arrive (a pause, a wait step) nothing is
//! flushed: call [`RawStream::flush_if_due`] from a timer or
//! [`RawStream::flush`] at step boundaries.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::raw_ipc::{CONTINUATION, Encoder, IpcReader, StreamEnd};
use crate::{Column, RAW_DIR, StoreError, Table};

/// File extension of a binary raw stream (Arrow IPC stream format).
pub const RAW_EXT: &str = "arrows";
/// File extension of a legacy text raw stream.
pub const LEGACY_RAW_EXT: &str = "csv";

/// Rows after which a batch is written even before the flush interval:
/// bounds the writer's memory at high rates (64 Ki rows x 8 B x columns).
pub const MAX_BATCH_ROWS: usize = 1 << 16;

/// Default time between durable flushes of a raw stream.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The kind of a raw-stream column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    I64,
    F64,
}

impl ColKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ColKind::I64 => "i64",
            ColKind::F64 => "f64",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
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

/// Path of a stream's binary raw file inside a run folder (where a new
/// run writes it).
pub fn raw_path(run_dir: &Path, stream: &str) -> PathBuf {
    run_dir.join(RAW_DIR).join(format!("{stream}.{RAW_EXT}"))
}

/// The raw file of a stream as the folder holds it: the binary stream, or
/// a legacy `.csv` one; `None` when the stream was never opened.
pub fn find_raw(run_dir: &Path, stream: &str) -> Option<PathBuf> {
    let binary = raw_path(run_dir, stream);
    if binary.exists() {
        return Some(binary);
    }
    let text = run_dir
        .join(RAW_DIR)
        .join(format!("{stream}.{LEGACY_RAW_EXT}"));
    text.exists().then_some(text)
}

/// An open, append-only raw stream. Not `Clone`: one writer per stream.
/// Dropping it flushes and ends the stream (best effort); call
/// [`RawStream::close`] to see errors.
#[derive(Debug)]
pub struct RawStream {
    path: PathBuf,
    columns: Vec<ColumnSpec>,
    file: File,
    encoder: Encoder,
    /// Rows appended since the last batch was written, by column.
    pending: Vec<Column>,
    pending_rows: usize,
    /// Bytes of encoded messages, reused.
    out: Vec<u8>,
    flush_interval: Duration,
    last_flush: Instant,
    /// Rows or bytes not yet `sync_data`'d.
    dirty: bool,
    ended: bool,
    rows: u64,
}

impl RawStream {
    /// Create `raw/<name>.arrows` (it must not exist yet), write the schema
    /// and make it durable right away so even an instantly killed run leaves
    /// a readable, empty stream. The only way a raw file is opened for
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
        let legacy = run_dir
            .join(RAW_DIR)
            .join(format!("{name}.{LEGACY_RAW_EXT}"));
        if legacy.exists() {
            return Err(StoreError::StreamExists { path: legacy });
        }
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
        let encoder = Encoder::new(columns);
        let mut stream = RawStream {
            path,
            columns: columns.to_vec(),
            file,
            pending: Table::empty(columns)
                .columns
                .into_iter()
                .map(|(_, c)| c)
                .collect(),
            pending_rows: 0,
            out: encoder.schema_message(),
            encoder,
            flush_interval,
            last_flush: Instant::now(),
            dirty: true,
            ended: false,
            rows: 0,
        };
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
    /// kept, so a rejected row never leaves half a row in the stream.
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
        if self.ended {
            return Err(StoreError::Run {
                path: self.path.clone(),
                msg: "append to a stream that was already ended".into(),
            });
        }
        for (cell, col) in row.iter().zip(&mut self.pending) {
            match (cell, col) {
                (Cell::I64(v), Column::I64(c)) => c.push(*v),
                (Cell::F64(v), Column::F64(c)) => c.push(*v),
                // Kinds were checked above against the same specs.
                _ => {}
            }
        }
        self.pending_rows += 1;
        self.rows += 1;
        self.dirty = true;
        if self.pending_rows >= MAX_BATCH_ROWS {
            self.encode_pending();
            self.write_out()?;
        }
        self.flush_if_due()
    }

    /// Encode the pending rows as one batch into `out`.
    fn encode_pending(&mut self) {
        if self.pending_rows > 0 {
            self.encoder
                .batch_message(&mut self.pending, self.pending_rows, &mut self.out);
            self.pending_rows = 0;
        }
    }

    /// Write the encoded messages to the file (one `write_all`).
    fn write_out(&mut self) -> Result<(), StoreError> {
        if !self.out.is_empty() {
            self.file
                .write_all(&self.out)
                .map_err(|e| StoreError::io(&self.path, e))?;
            self.out.clear();
        }
        Ok(())
    }

    /// Flush durably if `flush_interval` has passed since the last flush.
    pub fn flush_if_due(&mut self) -> Result<(), StoreError> {
        if self.dirty && self.last_flush.elapsed() >= self.flush_interval {
            self.flush()?;
        }
        Ok(())
    }

    /// Write pending rows to the file as one batch and `sync_data` it.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.encode_pending();
        self.write_out()?;
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.last_flush = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Flush, write the end-of-stream marker and close, reporting any error
    /// (dropping only tries).
    pub fn close(mut self) -> Result<(), StoreError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), StoreError> {
        if self.ended {
            return Ok(());
        }
        self.encode_pending();
        self.out.extend_from_slice(Encoder::end_of_stream());
        self.ended = true;
        self.dirty = true;
        self.flush()
    }
}

impl Drop for RawStream {
    fn drop(&mut self) {
        // Errors cannot be returned from drop; `close` reports them.
        let _ = self.end();
    }
}

/// Names of the streams that have a file under `raw/` (binary or legacy
/// text), sorted.
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
        let stem = file_name
            .strip_suffix(&format!(".{RAW_EXT}"))
            .or_else(|| file_name.strip_suffix(&format!(".{LEGACY_RAW_EXT}")));
        if let Some(stem) = stem
            && validate_name("stream", stem).is_ok()
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Read a stream of a run folder into one [`Table`] (binary or legacy
/// text; see [`read_raw_file`]).
pub fn read_raw(run_dir: &Path, stream: &str) -> Result<Table, StoreError> {
    validate_name("stream", stream)?;
    let path = find_raw(run_dir, stream).unwrap_or_else(|| raw_path(run_dir, stream));
    read_raw_file(&path)
}

/// Read a raw-stream file into one [`Table`], whichever format it is in
/// (told by its first bytes, not its name).
///
/// Tolerates exactly what a crash leaves: a torn last batch (or a last CSV
/// line without its `\n`) is dropped. Anything complete that does not parse
/// is an error naming the place (byte offset, or `path:line`), because that
/// is corruption, not a crash artefact.
///
/// This holds the whole stream in memory; [`RawBatches`] reads it a batch
/// at a time.
pub fn read_raw_file(path: &Path) -> Result<Table, StoreError> {
    let mut batches = RawBatches::open(path)?;
    let mut table = Table::empty(batches.columns());
    while let Some(batch) = batches.next_batch()? {
        for ((_, into), (_, from)) in table.columns.iter_mut().zip(batch.columns) {
            match (into, from) {
                (Column::I64(a), Column::I64(b)) => a.extend(b),
                (Column::F64(a), Column::F64(b)) => a.extend(b),
                // Batches come from one schema.
                _ => {}
            }
        }
    }
    Ok(table)
}

/// Whether a file holds a binary (Arrow IPC) raw stream.
fn is_binary(path: &Path) -> Result<bool, StoreError> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io(path, e)),
        }
    }
    Ok(if n == 0 {
        // Empty: binary if named so (a writer that died before its schema
        // reached the disk); the CSV reader says "no header" otherwise.
        path.extension().is_some_and(|e| e == RAW_EXT)
    } else {
        head[..n] == CONTINUATION[..n]
    })
}

/// A raw stream read a batch at a time, so memory holds one batch (about a
/// second of rows) however long the run was. A legacy text stream is one
/// batch (its whole table).
#[derive(Debug)]
pub struct RawBatches {
    columns: Vec<ColumnSpec>,
    inner: BatchSource,
}

#[derive(Debug)]
enum BatchSource {
    Binary(Box<IpcReader>),
    Text(Option<Table>),
}

impl RawBatches {
    /// Open a raw-stream file of either format and read its header.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if is_binary(path)? {
            let r = IpcReader::open(path)?;
            Ok(Self {
                columns: r.columns().to_vec(),
                inner: BatchSource::Binary(Box::new(r)),
            })
        } else {
            let t = crate::raw_csv::read_csv_file(path)?;
            let columns = t
                .columns
                .iter()
                .map(|(n, c)| ColumnSpec {
                    name: Cow::Owned(n.clone()),
                    kind: match c {
                        Column::I64(_) => ColKind::I64,
                        Column::F64(_) => ColKind::F64,
                    },
                })
                .collect();
            Ok(Self {
                columns,
                inner: BatchSource::Text(Some(t)),
            })
        }
    }

    /// The stream's columns, in file order.
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// The next batch, `None` at the end of what the file holds.
    pub fn next_batch(&mut self) -> Result<Option<Table>, StoreError> {
        match &mut self.inner {
            BatchSource::Binary(r) => r.next_batch(),
            BatchSource::Text(t) => Ok(t.take()),
        }
    }

    /// For a binary stream being written: look again at the file's length so
    /// batches flushed since become readable (a no-op for text).
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        match &mut self.inner {
            BatchSource::Binary(r) => r.refresh(),
            BatchSource::Text(_) => Ok(()),
        }
    }

    /// Bytes of a torn last message dropped at the end (a crash mid-write),
    /// once [`RawBatches::next_batch`] returned `None`; `None` for a stream
    /// that ended cleanly or is still open, and for text streams.
    pub fn torn_bytes(&self) -> Option<u64> {
        match &self.inner {
            BatchSource::Binary(r) => match r.end() {
                Some(StreamEnd::Torn { bytes }) => Some(bytes),
                _ => None,
            },
            BatchSource::Text(_) => None,
        }
    }

    /// Whether the writer closed the stream (end-of-stream marker seen).
    pub fn closed(&self) -> bool {
        match &self.inner {
            BatchSource::Binary(r) => r.end() == Some(StreamEnd::Closed),
            BatchSource::Text(t) => t.is_none(),
        }
    }
}
