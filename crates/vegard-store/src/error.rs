//! The store's one error type. Every variant that touches a file names the
//! path (and the line, where there is one) so a user can open the file and
//! look, as STYLE.md asks: `runs/x/raw/pstat.csv:1234: expected 3 cells, got 2`,
//! `runs/x/raw/deflection.arrows: at byte 4096: message metadata: ...`.

use std::path::PathBuf;

/// Anything that can go wrong reading or writing a run folder.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system I/O error on a named file or folder.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A complete line of a text file (raw stream, event log) that does not
    /// parse. Torn *last* lines are not errors: they are what a crash leaves.
    #[error("{}:{line}: {msg}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    /// A raw stream file without a complete header (CSV header line, or
    /// Arrow schema message): the process died before it reached the disk,
    /// so the stream holds no rows.
    #[error("{}: no complete header", .path.display())]
    NoHeader { path: PathBuf },

    /// A complete message of a binary raw stream that does not decode:
    /// corruption, not a crash artefact (a torn *last* message is dropped).
    #[error("{}: at byte {offset}: {msg}", .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        msg: String,
    },

    /// run.toml that cannot be read or written as [`crate::RunMeta`].
    #[error("{}: {msg}", .path.display())]
    Toml { path: PathBuf, msg: String },

    /// run.toml with something wrong at `line:col` (syntax, a key of the
    /// wrong type, a non-UTF-8 byte, nesting past the limit).
    #[error("{}:{line}:{col}: {msg}", .path.display())]
    TomlAt {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },

    /// Polars failed reading or writing a Parquet file.
    #[error("{}: {error}", .path.display())]
    Parquet {
        path: PathBuf,
        error: polars_error::PolarsError,
    },

    /// A stream, column or event-field name that would corrupt the file format.
    #[error("invalid {what} name {name:?}: {why}")]
    InvalidName {
        what: &'static str,
        name: String,
        why: &'static str,
    },

    /// `writer.stream(name, ..)` for a stream that already has a file.
    #[error("{}: stream already exists in this run", .path.display())]
    StreamExists { path: PathBuf },

    /// A row whose width does not match the stream's columns.
    #[error("{}: row has {got} cells but the stream has {expected} columns", .path.display())]
    RowWidth {
        path: PathBuf,
        expected: usize,
        got: usize,
    },

    /// A cell of the wrong kind for its column (an F64 into an I64 column).
    #[error("{}: column {column:?} is {expected}, got a {got} cell", .path.display())]
    CellKind {
        path: PathBuf,
        column: String,
        expected: &'static str,
        got: &'static str,
    },

    /// Event fields that are not a JSON object, or that reuse a reserved key.
    #[error("event {kind:?}: {msg}")]
    EventFields { kind: String, msg: String },

    /// A table lookup by a name the table does not have.
    #[error("table has no column {name:?}")]
    NoColumn { name: String },

    /// `table.i64(name)` on an F64 column (the reverse converts silently).
    #[error("column {name:?} is {actual}, not {wanted}")]
    ColumnKind {
        name: String,
        actual: &'static str,
        wanted: &'static str,
    },

    /// A table that does not have the columns its schema declares (an older
    /// or foreign run folder), naming the table (`aligned`, `eis`, ...).
    #[error(
        "{table} table: {msg} (a folder finalised by another vegard version? \
         `vegard recover RUN` rebuilds the finished tables from raw/)"
    )]
    Schema { table: &'static str, msg: String },

    /// A table whose columns differ in length or repeat a name.
    #[error("malformed table: {msg}")]
    Table { msg: String },

    /// A run folder that cannot be recovered (e.g. still locked by a live run).
    #[error("{}: {msg}", .path.display())]
    Run { path: PathBuf, msg: String },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            error,
        }
    }
}
