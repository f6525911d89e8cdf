//! Creating a run folder and recovering one whose process died.
//!
//! A live run holds an exclusive advisory lock on `<run>/.lock` for as long
//! as its [`RunWriter`] exists. The kernel drops the lock when the process
//! dies (even by SIGKILL), so "status = running and not locked" reliably
//! means "interrupted", and recovery can never finalise a run that another
//! vegard process is still writing.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vegard_core::UtcStamp;

use crate::meta::{read_meta, write_meta};
use crate::parquet::{FinalizedStream, finalize_streams};
use crate::raw::{DEFAULT_FLUSH_INTERVAL, RawStream};
use crate::{ColumnSpec, DATA_DIR, EventLog, RAW_DIR, RunMeta, RunStatus, StoreError};

/// File that a live run keeps locked.
pub const LOCK_FILE: &str = ".lock";

/// Largest `-N` suffix tried when run folders collide (same second, same slug).
const MAX_SUFFIX: u32 = 999;

/// Owner of a run folder while the run is being recorded.
#[derive(Debug)]
pub struct RunWriter {
    dir: PathBuf,
    flush_interval: Duration,
    /// Held (locked) for the writer's lifetime; see the module docs.
    _lock: File,
}

/// The run folder as the engine sees it while recording: the same type.
pub type RunFolder = RunWriter;

impl RunWriter {
    /// Create `<parent_dir>/<utc.compact()>_<slug>/` with `raw/` and `data/`
    /// (and `parent_dir` itself if missing). If that folder exists, `-2`,
    /// `-3`, ... is appended. Characters of `slug` outside `[A-Za-z0-9._-]`
    /// become `-` so any recipe name gives a safe folder name.
    pub fn create(parent_dir: &Path, slug: &str, utc: UtcStamp) -> Result<RunWriter, StoreError> {
        std::fs::create_dir_all(parent_dir).map_err(|e| StoreError::io(parent_dir, e))?;
        let base = format!("{}_{}", utc.compact(), sanitize_slug(slug));
        let mut suffix = 1;
        let dir = loop {
            let name = if suffix == 1 {
                base.clone()
            } else {
                format!("{base}-{suffix}")
            };
            let candidate = parent_dir.join(name);
            // create_dir (not _all) fails if the folder exists, which makes
            // the collision check race-free between two vegard processes.
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && suffix < MAX_SUFFIX => {
                    suffix += 1;
                }
                Err(e) => return Err(StoreError::io(&candidate, e)),
            }
        };
        for sub in [RAW_DIR, DATA_DIR] {
            let p = dir.join(sub);
            std::fs::create_dir(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        let RunClaim { _lock: lock } = claim_run(&dir)?;
        Ok(RunWriter {
            dir,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            _lock: lock,
        })
    }

    /// Flush interval for streams opened after this call (default 1 s).
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Open a new raw stream `raw/<name>.arrows` with these columns.
    pub fn stream(&self, name: &str, columns: &[ColumnSpec]) -> Result<RawStream, StoreError> {
        RawStream::create(&self.dir, name, columns, self.flush_interval)
    }

    /// An append handle on `events.jsonl` (created on first use).
    pub fn events(&self) -> Result<EventLog, StoreError> {
        EventLog::open_append(&self.dir)
    }

    /// Atomically (re)write `run.toml`.
    pub fn write_meta(&self, meta: &RunMeta) -> Result<(), StoreError> {
        write_meta(&self.dir, meta)
    }

    /// Convert the raw streams to Parquet (close the streams first).
    pub fn finalize_streams(&self) -> Result<Vec<FinalizedStream>, StoreError> {
        finalize_streams(&self.dir)
    }
}

fn sanitize_slug(slug: &str) -> String {
    let s: String = slug
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.');
    if s.is_empty() {
        "run".to_owned()
    } else {
        s.to_owned()
    }
}

/// Exclusive hold on a run folder that no live process is recording; keeps
/// two recoveries (or a recovery and a live run) from touching the same files.
#[derive(Debug)]
pub struct RunClaim {
    _lock: File,
}

/// Take the run's lock, refusing if a live process still holds it (a
/// running `vegard run`). The lock is released when the claim is dropped.
pub fn claim_run(run_dir: &Path) -> Result<RunClaim, StoreError> {
    let lock_path = run_dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(RunClaim { _lock: lock }),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Run {
            path: run_dir.to_owned(),
            msg: "run is still being recorded by a live process".to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&lock_path, e)),
    }
}

/// What [`recover_run`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// The run had already ended (complete/aborted/interrupted): untouched.
    AlreadyClosed(RunStatus),
    /// Status was `running` and no process held the lock: raw streams were
    /// converted to Parquet and the status set to `interrupted`.
    Recovered(Vec<FinalizedStream>),
}

/// Bring a run left `running` by a dead process to a readable state:
/// finalise its raw streams (losing at most the last flush interval) and mark
/// it `interrupted`. Refuses while a live process holds the run's lock.
pub fn recover_run(run_dir: &Path) -> Result<Recovery, StoreError> {
    let _claim = claim_run(run_dir)?;
    let mut meta = read_meta(run_dir)?;
    if meta.status != RunStatus::Running {
        return Ok(Recovery::AlreadyClosed(meta.status));
    }
    let streams = finalize_streams(run_dir)?;
    meta.status = RunStatus::Interrupted;
    let note = "process ended without closing the run; recovered from raw streams";
    meta.reason = Some(match meta.reason.take() {
        Some(r) => format!("{r}; {note}"),
        None => note.to_owned(),
    });
    write_meta(run_dir, &meta)?;
    Ok(Recovery::Recovered(streams))
}
