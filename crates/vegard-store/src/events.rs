//! The event log `events.jsonl`: one JSON object per line for step
//! start/end, markers, limit hits, faults, clock exchanges.
//!
//! Events are rare and precious (they explain the data), so each line is
//! written with a single `write` and `sync_data`'d immediately instead of
//! being buffered like raw samples. Every line starts with the same three
//! keys, in this order, followed by the caller's fields:
//!
//! ```text
//! {"t_ns":1500000000,"utc":"2026-11-23T20:40:13.500000000Z","kind":"step_start","step":0}
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vegard_core::UtcStamp;

use crate::torn::set_aside_torn_tail;
use crate::{EVENTS_FILE, EVENTS_TORN_FILE, StoreError};

const RESERVED: [&str; 3] = ["t_ns", "utc", "kind"];

/// Kind of the event [`EventLog::open_append`] logs when it set aside a
/// torn last line.
pub const TORN_LINE_SET_ASIDE: &str = "torn_line_set_aside";

/// Append handle on a run's `events.jsonl`. Cheap to clone; clones share one
/// file handle behind a mutex, so tasks on different threads can log without
/// interleaving partial lines.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    torn_bytes_set_aside: Option<u64>,
}

impl EventLog {
    /// Open (creating if needed) `events.jsonl` in `run_dir` for appending.
    ///
    /// A torn last line (no `\n`: the process that wrote it died mid-write)
    /// is cut back first, so the first line appended here does not glue onto
    /// it into one corrupt line. The cut bytes are not lost: they go to
    /// [`EVENTS_TORN_FILE`] beside it (one fragment per line), and an event
    /// `torn_line_set_aside` (`file`, `bytes`, `kept_in`; `t_ns` -1, the
    /// dead process's clock is gone) is appended saying so. Call this only
    /// while owning the folder (the live [`crate::RunWriter`], or a recovery
    /// holding [`crate::claim_run`]): cutting back under a live writer could
    /// take its half-written line.
    pub fn open_append(run_dir: &Path) -> Result<Self, StoreError> {
        let path = run_dir.join(EVENTS_FILE);
        let torn_bytes_set_aside = set_aside_torn_tail(&path, &run_dir.join(EVENTS_TORN_FILE))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let log = Self {
            path,
            file: Arc::new(Mutex::new(file)),
            torn_bytes_set_aside,
        };
        if let Some(bytes) = torn_bytes_set_aside {
            log.append(
                TORN_LINE_SET_ASIDE,
                -1,
                serde_json::json!({
                    "file": EVENTS_FILE,
                    "bytes": bytes,
                    "kept_in": EVENTS_TORN_FILE,
                }),
            )?;
        }
        Ok(log)
    }

    /// Bytes of a torn last line that [`EventLog::open_append`] moved to
    /// [`EVENTS_TORN_FILE`], if it found one (for the caller to tell the user).
    pub fn torn_bytes_set_aside(&self) -> Option<u64> {
        self.torn_bytes_set_aside
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event at host time `t_ns` (ns since run start); the UTC
    /// wall time of the call is added as `utc`. `fields` must be a JSON
    /// object (or `null` for none) and must not use the keys `t_ns`, `utc`
    /// or `kind`. The line is durable when this returns.
    pub fn append(
        &self,
        kind: &str,
        t_ns: i64,
        fields: serde_json::Value,
    ) -> Result<(), StoreError> {
        let field_err = |msg: String| StoreError::EventFields {
            kind: kind.to_owned(),
            msg,
        };
        let map = match fields {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                return Err(field_err(format!(
                    "fields must be a JSON object, got {other}"
                )));
            }
        };
        if let Some(key) = RESERVED.iter().find(|k| map.contains_key(**k)) {
            return Err(field_err(format!("field {key:?} is reserved")));
        }
        // serde_json's map is sorted, so the fixed leading keys are written by
        // hand to keep every line readable from the left.
        let kind_json = serde_json::Value::String(kind.to_owned()).to_string();
        let utc = UtcStamp::now().rfc3339();
        let mut line = format!("{{\"t_ns\":{t_ns},\"utc\":\"{utc}\",\"kind\":{kind_json}");
        for (k, v) in &map {
            line.push(',');
            line.push_str(&serde_json::Value::String(k.clone()).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
        line.push_str("}\n");

        // A poisoned lock only means another thread panicked mid-append; the
        // file handle itself is still fine to use.
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let mut f: &File = &file;
        f.write_all(line.as_bytes())
            .map_err(|e| StoreError::io(&self.path, e))?;
        f.sync_data().map_err(|e| StoreError::io(&self.path, e))?;
        Ok(())
    }
}

/// A line of `events.jsonl` that [`read_events`] could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number in `events.jsonl`.
    pub line: usize,
    /// Length of the line in bytes (without its `\n`).
    pub bytes: usize,
    /// Why it was skipped.
    pub reason: String,
    /// The last line, without its `\n`: what a crash mid-write leaves (or a
    /// line still being written, when the run is live).
    pub torn: bool,
}

impl std::fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{EVENTS_FILE}:{}: {}", self.line, self.reason)
    }
}

/// What [`read_events`] found: the events that parse, and every line it
/// had to skip, so a reader can show the data and say what was wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLines {
    /// Every complete line that is a JSON object, in file order.
    pub events: Vec<serde_json::Value>,
    /// Lines that are not (`events.jsonl:LINE: why`), in file order.
    pub skipped: Vec<SkippedLine>,
}

/// Read `run_dir/events.jsonl`. Events explain the data but are not the
/// data, so one bad line must not make a whole run unreadable: a complete
/// line that is not a JSON object is skipped and listed in
/// [`EventLines::skipped`] (`events.jsonl:LINE: why`), and so is a torn last
/// line (no `\n`: "torn last line (N bytes), a crash mid-write"). A missing
/// file reads as no events; only a file that cannot be read is an error.
pub fn read_events(run_dir: &Path) -> Result<EventLines, StoreError> {
    let path = run_dir.join(EVENTS_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(EventLines::default()),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut out = EventLines::default();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| StoreError::io(&path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            out.skipped.push(SkippedLine {
                line: line_no,
                bytes: n,
                reason: format!("torn last line ({n} bytes), a crash mid-write"),
                torn: true,
            });
            break;
        }
        let body = &buf[..n - 1];
        let skip = |reason: String| SkippedLine {
            line: line_no,
            bytes: body.len(),
            reason,
            torn: false,
        };
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) if v.is_object() => out.events.push(v),
            Ok(v) => out.skipped.push(skip(format!(
                "not an event (a JSON {}, not an object)",
                json_type(&v)
            ))),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
                out.skipped.push(skip("empty line".to_owned()));
            }
            Err(e) => out.skipped.push(skip(format!("not JSON: {e}"))),
        }
    }
    Ok(out)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
