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

use crate::{EVENTS_FILE, StoreError};

const RESERVED: [&str; 3] = ["t_ns", "utc", "kind"];

/// Append handle on a run's `events.jsonl`. Cheap to clone; clones share one
/// file handle behind a mutex, so tasks on different threads can log without
/// interleaving partial lines.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl EventLog {
    /// Open (creating if needed) `events.jsonl` in `run_dir` for appending.
    pub fn open_append(run_dir: &Path) -> Result<Self, StoreError> {
        let path = run_dir.join(EVENTS_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
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

/// Read every complete event line of `run_dir/events.jsonl`. A torn last
/// line (no `\n`, from a crash) is dropped; a bad complete line is an error
/// naming `events.jsonl:LINE`. A missing file reads as no events.
pub fn read_events(run_dir: &Path) -> Result<Vec<serde_json::Value>, StoreError> {
    let path = run_dir.join(EVENTS_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| StoreError::io(&path, e))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        line_no += 1;
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| StoreError::Parse {
                path: path.clone(),
                line: line_no,
                msg: e.to_string(),
            })?;
        events.push(value);
    }
    Ok(events)
}
