//! vegard-store owns the run folder format: crash-safe raw streams while a
//! run is recording, the event log, `run.toml`, Parquet when finished, and
//! recovery of runs whose process died. What each table holds is declared
//! once, as types, in [`schema`]; every writer and reader goes through it.
//!
//! ```text
//! runs/<UTC start>_<slug>/
//!   run.toml          RunMeta (status, recipe + bench as executed, typed
//!                     [alignment], [analysis_summary], [[steps]])
//!   events.jsonl      one JSON object per line, durable on return
//!   events.jsonl.torn torn last lines cut off before appending (recovery)
//!   raw/<stream>.arrows  append-only Arrow IPC stream while running
//!                     (primary record, kept; `.csv` text in folders from
//!                     before): schema::{PotentiostatRaw, DeflectionRaw,
//!                     EisRaw, LockInRaw, TemperatureRaw}
//!   data/<stream>.parquet   the raw streams + shared time, and the EIS / ESM
//!                     tables (schema::*Data), written by the post-run
//!                     pipeline (vegard-pipeline)
//!   aligned.parquet   the shared-timeline table (schema::Aligned)
//!   .lock             held by the live RunWriter
//! ```
//!
//! Design decision — raw streams are Arrow IPC streams, not text: a row
//! costs a few `Vec` pushes instead of a formatted string per cell, the
//! columns are ZSTD-compressed a batch (about a second) at a time, and any
//! Arrow reader opens the file during or after the run. The framing keeps
//! what made text crash-safe: every message says its length, so after
//! SIGKILL or power loss everything up to the last complete batch is valid
//! and a torn last batch is dropped (see `raw.rs`, `raw_ipc.rs`). Streams
//! are flushed and `sync_data`'d at least every `flush_interval` (default
//! 1 s) and on close, so a crash loses at most that interval. Folders
//! recorded with the earlier text streams (`raw/<stream>.csv`) are still
//! read everywhere (`raw_csv.rs`). Parquet (via polars) is the finished,
//! column-indexed format.
//!
//! Typical use by the engine (streams through their schema types; the
//! generic `ColumnSpec`/`Cell` API underneath serves any table):
//!
//! ```no_run
//! # fn main() -> Result<(), vegard_store::StoreError> {
//! use vegard_store::schema::{TemperatureRaw, TemperatureRow};
//! use vegard_store::*;
//! let run = RunWriter::create("runs".as_ref(), "demo-cv", vegard_core::UtcStamp::now())?;
//! let mut temp = run.stream(TemperatureRaw::FILE, TemperatureRaw::COLUMNS)?;
//! let row = TemperatureRow { seq: 0, step: 0, host_ns: 0, T_K: 298.15, setpoint_K: f64::NAN };
//! temp.append(&row.cells())?;
//! run.events()?.append("step_start", 0, serde_json::json!({"step": 0}))?;
//! temp.close()?;
//! run.finalize_streams()?;
//! run.write_meta(&RunMeta { status: RunStatus::Complete, ..Default::default() })?;
//! # Ok(()) }
//! ```

mod error;
mod events;
mod folder;
mod meta;
mod parquet;
mod parquet_footer;
mod raw;
mod raw_csv;
mod raw_ipc;
pub mod schema;
mod table;
mod torn;

pub use error::StoreError;
pub use events::{EventLines, EventLog, SkippedLine, TORN_LINE_SET_ASIDE, read_events};
pub use folder::{LOCK_FILE, Recovery, RunClaim, RunFolder, RunWriter, claim_run, recover_run};
pub use meta::{
    AnalysisSummary, ExternalAlignmentRecord, ImportProvenance, ImportSource, RecordedIssue,
    RunAlignment, RunMeta, RunStatus, SegmentAlignment, StepRecord, read_meta, write_meta,
};
pub use parquet::{
    FinalizedStream, ParquetTableWriter, ROW_GROUP_ROWS, finalize_streams, parquet_rows,
    read_parquet, read_parquet_part, write_parquet,
};
pub use raw::{
    Cell, ColKind, ColumnSpec, DEFAULT_FLUSH_INTERVAL, LEGACY_RAW_EXT, MAX_BATCH_ROWS, RAW_EXT,
    RawBatches, RawStream, find_raw, list_raw_streams, raw_path, read_raw, read_raw_file,
};
pub use raw_csv::write_raw_csv;
pub use table::{Column, MISSING_I64, Table};

/// `run.toml` inside a run folder.
pub const RUN_META_FILE: &str = "run.toml";
/// `events.jsonl` inside a run folder.
pub const EVENTS_FILE: &str = "events.jsonl";
/// Beside `events.jsonl`: torn last lines that [`EventLog::open_append`]
/// cut off before appending, one per line, kept because they are recorded
/// data even when half written.
pub const EVENTS_TORN_FILE: &str = "events.jsonl.torn";
/// Folder of the append-only raw streams.
pub const RAW_DIR: &str = "raw";
/// Folder of the per-stream Parquet files.
pub const DATA_DIR: &str = "data";
/// The engine's shared-timeline table.
pub const ALIGNED_FILE: &str = "aligned.parquet";
/// Written by `vegard analyze`.
pub const ANALYSIS_FILE: &str = "analysis.json";
