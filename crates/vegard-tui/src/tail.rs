//! Data collection from a run folder: [`tail_run_folder`] follows
//! `events.jsonl` and the raw streams (`raw/*.arrows`, or `raw/*.csv` in
//! older folders) as they grow, turns rows into
//! [`DashEvent`]s on the shared display timeline, and ends when run.toml says
//! the run is over and everything has been read. Replaying a finished run is
//! the same thing with one long first read.
//!
//! Time: potentiostat rows go to `host_ns × 1e-9 × speed` (experiment s).
//! Deflection `host_ns` is the fetch time of a whole batch, so deflection
//! rows are placed per segment from the trigger instead: t = t(first
//! potentiostat row of the segment) − its `t_dev_s` + the deflection's
//! `t_dev_s` (the digitizer starts on the potentiostat's trigger). That is
//! a display estimate; finalisation does the real alignment. Live clock rows
//! come from the same lower-envelope fit finalisation uses, on the current
//! segment; after finalisation, from run.toml `[alignment]`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use vegard_recipe::{PlannedStep, Recipe, Step};
use vegard_store::schema::{
    DeflectionRaw, EisRaw, LockInRaw, PotentiostatRaw, TemperatureRaw, deflection_col, eis_raw_col,
    lockin_col, potentiostat_col, temperature_col,
};
use vegard_store::{RunAlignment, RunMeta, RunStatus};

use crate::plan::{plan_rows, step_cycles};
use crate::{DashEvent, LogLevel, PlanRow, TuiError};

/// Largest read from one file per pass, bytes: a long finished run is
/// replayed in slices so the runtime (and the dashboard) stay responsive.
const READ_SLICE_BYTES: usize = 4 << 20;
/// Wall time between live clock fits of the current segment.
const CLOCK_FIT_EVERY: Duration = Duration::from_secs(2);
/// How long to wait, after the status left `running`, for finalisation to
/// write `[alignment]` to run.toml (only to show the final clocks).
const ALIGNMENT_WAIT: Duration = Duration::from_secs(5);

/// How long [`tail_run_folder`] waits for a run.toml that does not exist
/// yet (a run folder still being set up) before it says the folder is not
/// a run folder: bounded, and said on screen while it waits.
pub const RUN_TOML_WAIT: Duration = Duration::from_secs(30);
/// How long run.toml may stay unreadable during a watch before the tailer
/// stops with the error. vegard rewrites it atomically (rename), so a read
/// never sees half a file; this only covers a file system that hiccups.
const RUN_TOML_GRACE: Duration = Duration::from_secs(10);
/// Bad complete lines named per file; after that they are skipped silently
/// (with one note saying so), so a file of junk cannot flood the events panel.
const MAX_BAD_LINE_NOTES: usize = 10;

/// Follow the run folder `run_dir`, sending what it holds and what is added
/// to `tx` every `poll`. Returns when run.toml's status is no longer
/// `running` and every stream has been read to its end (after `Finished`),
/// or when `tx` is closed (the dashboard left). A run whose process died
/// without recovery stays `running` on disk: then this keeps waiting.
///
/// Nothing it cannot read is waited for in silence: a run.toml that does
/// not exist yet is waited for at most [`RUN_TOML_WAIT`] (a warning says
/// so); a complete line of events.jsonl or a raw stream that does not parse
/// is skipped with a warning naming `FILE:LINE`; and when it has to stop (a
/// run.toml that does not parse, a file that cannot be read) it sends the
/// error as a red `Log` line naming the file (and line and column, where
/// there is one) and `Finished` with status `unreadable`, before returning
/// it. Callers typically drop the returned error (the task runs beside the
/// dashboard), so the dashboard is where the user learns what is wrong.
pub async fn tail_run_folder(
    run_dir: PathBuf,
    tx: UnboundedSender<DashEvent>,
    poll: Duration,
) -> Result<(), TuiError> {
    let result = follow(&run_dir, &tx, poll).await;
    if let Err(e) = &result {
        let _ = tx.send(DashEvent::Log {
            t_s: f64::NAN,
            level: LogLevel::Error,
            text: format!("stopped reading the run folder: {e}"),
        });
        let _ = tx.send(DashEvent::Finished {
            status: "unreadable".into(),
            reason: Some(e.to_string()),
        });
    }
    result
}

async fn follow(
    run_dir: &Path,
    tx: &UnboundedSender<DashEvent>,
    poll: Duration,
) -> Result<(), TuiError> {
    let Some(meta) = first_meta(run_dir, tx, poll).await? else {
        return Ok(());
    };
    let mut t = Tailer::new(run_dir, &meta);
    let started = t.started_with(run_dir, Vec::new());
    t.out.push(started);
    let mut finished_at: Option<(Instant, RunMeta)> = None;
    let mut unreadable_since: Option<Instant> = None;
    loop {
        // Read everything there is, in slices.
        loop {
            let n = t.pass()?;
            if !t.flush_out(tx) {
                return Ok(());
            }
            if n == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let meta = match read_run_toml(run_dir) {
            Ok(m) => {
                if unreadable_since.take().is_some() {
                    let t_s = t.t_latest_s;
                    t.log(t_s, LogLevel::Info, "run.toml readable again".into());
                }
                m
            }
            Err(e) => {
                let since = match unreadable_since {
                    Some(since) => since,
                    None => {
                        let t_s = t.t_latest_s;
                        t.log(
                            t_s,
                            LogLevel::Warn,
                            format!("{e}; trying again for {} s", RUN_TOML_GRACE.as_secs()),
                        );
                        *unreadable_since.insert(Instant::now())
                    }
                };
                if since.elapsed() >= RUN_TOML_GRACE {
                    return Err(e);
                }
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        if meta.status == RunStatus::Running {
            tokio::time::sleep(poll).await;
            continue;
        }
        // The streams were closed before the status was written; one more
        // pass above has read their ends. Wait a little for [alignment].
        let since = finished_at
            .get_or_insert_with(|| (Instant::now(), meta.clone()))
            .0;
        if meta.alignment.is_none() && since.elapsed() < ALIGNMENT_WAIT {
            tokio::time::sleep(poll).await;
            continue;
        }
        t.finish(&meta);
        t.flush_out(tx);
        return Ok(());
    }
}

/// run.toml of `run_dir`, waiting (bounded, and saying so) while it does
/// not exist yet. `None` when the receiver went away during the wait.
async fn first_meta(
    run_dir: &Path,
    tx: &UnboundedSender<DashEvent>,
    poll: Duration,
) -> Result<Option<RunMeta>, TuiError> {
    let start = Instant::now();
    let mut said = false;
    loop {
        let missing = match read_run_toml(run_dir) {
            Ok(m) => return Ok(Some(m)),
            Err(TuiError::Store(vegard_store::StoreError::Io { error, .. }))
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                true
            }
            Err(e) => return Err(e),
        };
        if missing && start.elapsed() >= RUN_TOML_WAIT {
            return Err(TuiError::NoRunToml {
                dir: run_dir.to_path_buf(),
                waited_s: RUN_TOML_WAIT.as_secs(),
            });
        }
        if !said {
            said = true;
            let text = format!(
                "{}: no run.toml yet; waiting up to {} s for the run to write it",
                run_dir.display(),
                RUN_TOML_WAIT.as_secs()
            );
            let ev = DashEvent::Log {
                t_s: f64::NAN,
                level: LogLevel::Warn,
                text,
            };
            if tx.send(ev).is_err() {
                return Ok(None);
            }
        }
        if tx.is_closed() {
            return Ok(None);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Read run.toml the way the store does, but with the position of a parse
/// error as `FILE:LINE:COL` (the store gives the file and toml's message,
/// which spells line and column in words over several lines).
pub fn read_run_toml(run_dir: &Path) -> Result<RunMeta, TuiError> {
    match vegard_store::read_meta(run_dir) {
        Ok(meta) => Ok(meta),
        Err(vegard_store::StoreError::Toml { path, msg }) => {
            // Parse again only to locate the problem; if the text cannot be
            // read any more or parses now, the store's message stands.
            let located = std::fs::read_to_string(&path).ok().and_then(|text| {
                let e = toml::from_str::<RunMeta>(&text).err()?;
                let (line, col) = vegard_core::limits::line_col(text.as_bytes(), e.span()?.start);
                Some(TuiError::Toml {
                    path: path.clone(),
                    line,
                    col,
                    msg: e.message().trim().to_owned(),
                })
            });
            Err(
                located.unwrap_or(TuiError::Store(vegard_store::StoreError::Toml {
                    path,
                    msg,
                })),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Check, before a dashboard takes the terminal, that `run_dir` can be
/// followed: run.toml reads and parses ([`read_run_toml`]: an error names
/// the file, line and column) and events.jsonl, if there is one, can be
/// read. Returns the complete events.jsonl lines that are not events
/// (`events.jsonl:LINE: why`; the dashboard skips them), for the caller to
/// print; a torn last line is not among them, as on a live run it is an
/// event still being written.
pub fn check_run_folder(run_dir: &Path) -> Result<Vec<String>, TuiError> {
    read_run_toml(run_dir)?;
    let events = vegard_store::read_events(run_dir)?;
    Ok(events
        .skipped
        .iter()
        .filter(|s| !s.torn)
        .map(ToString::to_string)
        .collect())
}

/// At most the first `max` characters of `text`. Not `String::truncate`,
/// which panics inside a multi-byte character: event fields and bad rows
/// are anyone's text.
fn clip_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Clock rows from run.toml's `[alignment]` table as finalisation writes it:
/// the last aligned segment's trigger time (offset), each device's drift and
/// the segment's alignment-error estimate.
pub fn clock_events_from_alignment(alignment: &RunAlignment) -> Vec<DashEvent> {
    let Some(seg) = alignment
        .segments
        .iter()
        .rfind(|s| s.trigger_t_s.is_finite())
    else {
        return Vec::new();
    };
    let err = Some(seg.alignment_error_estimate_s).filter(|e| e.is_finite());
    vec![
        DashEvent::Clock {
            device: "potentiostat".into(),
            offset_s: seg.trigger_t_s,
            drift_ppm: seg.potentiostat_drift_ppm,
            alignment_error_s: err,
        },
        DashEvent::Clock {
            device: "deflection".into(),
            offset_s: seg.trigger_t_s,
            drift_ppm: seg.deflection_drift_ppm,
            alignment_error_s: err,
        },
    ]
}

/// Lines appended to one file since the last read; a last line without its
/// `\n` (still being written, or torn) stays buffered until it is complete.
struct LineTail {
    path: PathBuf,
    /// The file as the user knows it: relative to the run folder.
    name: String,
    offset: u64,
    partial: Vec<u8>,
    line_no: usize,
    /// Complete lines that did not parse, so far.
    bad_lines: usize,
}

impl LineTail {
    fn new(run_dir: &Path, path: PathBuf) -> Self {
        let name = path
            .strip_prefix(run_dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        Self {
            path,
            name,
            offset: 0,
            partial: Vec::new(),
            line_no: 0,
            bad_lines: 0,
        }
    }

    /// What to say about a complete line that does not parse (it is
    /// skipped): `FILE:LINE: why` for the first [`MAX_BAD_LINE_NOTES`], one
    /// note that further ones are not named, then nothing.
    fn bad_line(&mut self, line_no: usize, why: &str) -> Option<String> {
        self.bad_lines += 1;
        if self.bad_lines <= MAX_BAD_LINE_NOTES {
            Some(format!("{}:{line_no}: {why} (line skipped)", self.name))
        } else if self.bad_lines == MAX_BAD_LINE_NOTES + 1 {
            Some(format!(
                "{}: more lines that do not parse; skipped without a note",
                self.name
            ))
        } else {
            None
        }
    }

    /// Complete new lines (without `\n`, `\r`), at most about one slice.
    fn read_lines(&mut self) -> Result<Vec<(usize, String)>, TuiError> {
        let io = |e| TuiError::Io {
            path: self.path.clone(),
            error: e,
        };
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut buf = Vec::new();
        let n = f
            .take(READ_SLICE_BYTES as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_nl + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        let mut lines = Vec::new();
        for raw in done.split(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw)).into_owned();
            lines.push(text);
        }
        lines.pop(); // the empty piece after the last '\n'
        let first = self.line_no + 1;
        self.line_no += lines.len();
        Ok(lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (first + i, l))
            .collect())
    }
}

/// A legacy raw CSV stream: the header names the columns (`name:kind`), rows are
/// read as f64 (i64 columns hold stamps and counters well inside 2^53).
struct CsvTail {
    lines: LineTail,
    cols: Option<Vec<String>>,
    /// Notes on skipped rows since the last pass, for the events panel.
    notes: Vec<String>,
}

impl CsvTail {
    fn new(run_dir: &Path, path: PathBuf) -> Self {
        Self {
            lines: LineTail::new(run_dir, path),
            cols: None,
            notes: Vec::new(),
        }
    }

    /// New complete rows (the header line is taken when it first appears).
    /// A row that does not parse is skipped, with a note in `notes`: the
    /// dashboard is a view, and one bad row must not blank it.
    fn read_rows(&mut self) -> Result<Vec<Vec<f64>>, TuiError> {
        let mut rows = Vec::new();
        for (line_no, text) in self.lines.read_lines()? {
            if self.cols.is_none() {
                self.cols = Some(
                    text.split(',')
                        .map(|f| f.rsplit_once(':').map_or(f, |(n, _)| n).to_string())
                        .collect(),
                );
                continue;
            }
            if text.is_empty() {
                continue;
            }
            let row: Result<Vec<f64>, _> = text.split(',').map(str::parse::<f64>).collect();
            match row {
                Ok(r) => rows.push(r),
                Err(e) => {
                    let shown = clip_chars(&text, 80);
                    if let Some(note) = self.lines.bad_line(line_no, &format!("{e}: {shown:?}")) {
                        self.notes.push(note);
                    }
                }
            }
        }
        Ok(rows)
    }
}

/// Rows a binary stream yields per pass at most (then the next pass goes
/// on): keeps one pass short when a long finished run is replayed.
const MAX_ROWS_PER_PASS: usize = 1 << 18;

/// A binary raw stream (`raw/<stream>.arrows`), followed batch by batch as
/// the run flushes them. A torn last batch (being written) is retried on
/// the next pass; a corrupt one stops this stream with one note (the other
/// streams and the events go on).
struct BinaryTail {
    name: String,
    path: PathBuf,
    reader: Option<vegard_store::RawBatches>,
    cols: Option<Vec<String>>,
    stopped: bool,
    notes: Vec<String>,
}

impl BinaryTail {
    fn read_rows(&mut self) -> Vec<Vec<f64>> {
        let mut rows = Vec::new();
        if self.stopped {
            return rows;
        }
        if self.reader.is_none() {
            match vegard_store::RawBatches::open(&self.path) {
                Ok(r) => {
                    self.cols = Some(r.columns().iter().map(|c| c.name.to_string()).collect());
                    self.reader = Some(r);
                }
                // The schema is not on disk yet: wait for it.
                Err(vegard_store::StoreError::NoHeader { .. }) => return rows,
                Err(vegard_store::StoreError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound =>
                {
                    return rows;
                }
                Err(e) => {
                    self.stop(&e);
                    return rows;
                }
            }
        }
        let Some(reader) = self.reader.as_mut() else {
            return rows;
        };
        let mut failed = None;
        if let Err(e) = reader.refresh() {
            failed = Some(e);
        }
        while failed.is_none() && rows.len() < MAX_ROWS_PER_PASS {
            match reader.next_batch() {
                Ok(Some(batch)) => {
                    let cols: Vec<Vec<f64>> = batch
                        .columns
                        .iter()
                        .map(|(_, c)| match c {
                            vegard_store::Column::I64(v) => v.iter().map(|&x| x as f64).collect(),
                            vegard_store::Column::F64(v) => v.clone(),
                        })
                        .collect();
                    rows.extend((0..batch.len()).map(|r| cols.iter().map(|c| c[r]).collect()));
                }
                Ok(None) => break,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            self.stop(&e);
        }
        rows
    }

    fn stop(&mut self, e: &vegard_store::StoreError) {
        self.stopped = true;
        self.notes
            .push(format!("{}: {e} (no more rows shown from it)", self.name));
    }
}

/// One raw stream of the run being watched: binary, or text in folders
/// recorded before the binary streams; which one is decided when a file
/// first appears.
enum RawTail {
    Waiting { run_dir: PathBuf, stream: String },
    Text(CsvTail),
    Binary(BinaryTail),
}

impl RawTail {
    fn new(run_dir: &Path, stream: &str) -> Self {
        RawTail::Waiting {
            run_dir: run_dir.to_path_buf(),
            stream: stream.to_owned(),
        }
    }

    fn col(&self, name: &str) -> Option<usize> {
        let cols = match self {
            RawTail::Waiting { .. } => None,
            RawTail::Text(t) => t.cols.as_ref(),
            RawTail::Binary(b) => b.cols.as_ref(),
        };
        cols?.iter().position(|c| c == name)
    }

    fn notes(&mut self) -> Vec<String> {
        match self {
            RawTail::Waiting { .. } => Vec::new(),
            RawTail::Text(t) => std::mem::take(&mut t.notes),
            RawTail::Binary(b) => std::mem::take(&mut b.notes),
        }
    }

    fn read_rows(&mut self) -> Result<Vec<Vec<f64>>, TuiError> {
        if let RawTail::Waiting { run_dir, stream } = self {
            let Some(path) = vegard_store::find_raw(run_dir, stream) else {
                return Ok(Vec::new());
            };
            let binary = path.extension().is_some_and(|e| e == vegard_store::RAW_EXT);
            *self = if binary {
                RawTail::Binary(BinaryTail {
                    name: path
                        .strip_prefix(&*run_dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                    path,
                    reader: None,
                    cols: None,
                    stopped: false,
                    notes: Vec::new(),
                })
            } else {
                RawTail::Text(CsvTail::new(run_dir, path))
            };
        }
        match self {
            RawTail::Waiting { .. } => Ok(Vec::new()),
            RawTail::Text(t) => t.read_rows(),
            RawTail::Binary(b) => Ok(b.read_rows()),
        }
    }
}

/// Per-segment stamps of the segment being recorded, for the live clock fit.
#[derive(Default)]
struct SegmentClock {
    segment: i64,
    pot_dev_s: Vec<f64>,
    pot_host_s: Vec<f64>,
    /// Newest deflection device time per fetch (host ns): only the newest
    /// reading of a batch says anything about the clock.
    defl_newest: BTreeMap<i64, f64>,
    dirty: bool,
}

struct Tailer {
    /// Segments recorded in blocks pinned to repeated sync edges (the
    /// `digitizer_armed` event says so): the longest block, s.
    pinned_block_s: BTreeMap<i64, f64>,
    run_dir: PathBuf,
    speed: f64,
    invols_nm_per_V: f64,
    plan: Vec<PlannedStep>,
    rows: Vec<PlanRow>,
    events: LineTail,
    pot: RawTail,
    defl: RawTail,
    eis: RawTail,
    lockin: RawTail,
    temp: RawTail,
    /// Display time of device time zero, per segment (s).
    seg_t0: HashMap<i64, f64>,
    /// Deflection rows whose segment has no potentiostat row yet: (segment, t_dev_s, nm).
    pending_defl: Vec<(i64, f64, f64)>,
    /// Current step: index, display start time, planned seconds of the steps before it.
    step: Option<(usize, f64, f64)>,
    cycle: u32,
    points_in_step: u32,
    t_latest_s: f64,
    clock: SegmentClock,
    last_fit: Option<Instant>,
    out: Vec<DashEvent>,
    changed: bool,
}

impl Tailer {
    fn new(run_dir: &Path, meta: &RunMeta) -> Self {
        let recipe: Option<Recipe> = toml::Value::Table(meta.recipe.clone()).try_into().ok();
        let plan = recipe.as_ref().map(Recipe::plan).unwrap_or_default();
        let rows = recipe.as_ref().map(plan_rows).unwrap_or_default();
        // Read leniently (not as a whole BenchConfig): the traces need only
        // the InvOLS, and a bench table from another version should not
        // blank the dashboard.
        let invols_nm_per_V = meta
            .bench
            .get("instruments")
            .and_then(|i| i.get("deflection"))
            .and_then(|d| d.get("invols_nm_per_V"))
            .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
            .unwrap_or(f64::NAN);
        let raw = |s: &str| RawTail::new(run_dir, s);
        let speed = if meta.time_acceleration > 0.0 {
            meta.time_acceleration
        } else {
            1.0
        };
        Self {
            pinned_block_s: BTreeMap::new(),
            run_dir: run_dir.to_path_buf(),
            speed,
            invols_nm_per_V,
            plan,
            rows,
            events: LineTail::new(run_dir, run_dir.join(vegard_store::EVENTS_FILE)),
            pot: raw(PotentiostatRaw::FILE),
            defl: raw(DeflectionRaw::FILE),
            eis: raw(EisRaw::FILE),
            lockin: raw(LockInRaw::FILE),
            temp: raw(TemperatureRaw::FILE),
            seg_t0: HashMap::new(),
            pending_defl: Vec::new(),
            step: None,
            cycle: 0,
            points_in_step: 0,
            t_latest_s: 0.0,
            clock: SegmentClock::default(),
            last_fit: None,
            out: Vec::new(),
            changed: false,
        }
    }

    fn started_with(&self, run_dir: &Path, instruments: Vec<(String, String)>) -> DashEvent {
        DashEvent::Started {
            run_dir: run_dir.to_path_buf(),
            total_s: self.rows.iter().map(|r| r.duration_s).sum(),
            speed: self.speed,
            plan: self.rows.clone(),
            instruments,
        }
    }

    /// Send what this pass produced; false when the receiver is gone.
    fn flush_out(&mut self, tx: &UnboundedSender<DashEvent>) -> bool {
        for ev in self.out.drain(..) {
            if tx.send(ev).is_err() {
                return false;
            }
        }
        true
    }

    fn host_s(&self, host_ns: f64) -> f64 {
        host_ns * 1e-9 * self.speed
    }

    fn see(&mut self, t_s: f64) {
        if t_s.is_finite() && t_s > self.t_latest_s {
            self.t_latest_s = t_s;
        }
    }

    /// One read of every file; returns how many lines/rows were new.
    fn pass(&mut self) -> Result<usize, TuiError> {
        let mut n = 0;
        let lines = self.events.read_lines()?;
        n += lines.len();
        for (line_no, text) in lines {
            if text.trim().is_empty() {
                continue;
            }
            // One bad line is skipped and named; the events around it and
            // the data still show.
            let why = match serde_json::from_str::<Value>(&text) {
                Ok(v) if v.is_object() => {
                    self.event(&v);
                    continue;
                }
                Ok(_) => "not an event (not a JSON object)".to_owned(),
                Err(e) => format!("not JSON: {e}"),
            };
            if let Some(note) = self.events.bad_line(line_no, &why) {
                let t_s = self.t_latest_s;
                self.log(t_s, LogLevel::Warn, note);
            }
        }
        let rows = self.pot.read_rows()?;
        n += rows.len();
        self.potentiostat(&rows);
        let rows = self.defl.read_rows()?;
        n += rows.len();
        self.deflection(&rows);
        let rows = self.eis.read_rows()?;
        n += rows.len();
        self.impedance(&rows);
        let rows = self.lockin.read_rows()?;
        n += rows.len();
        self.esm(&rows);
        let rows = self.temp.read_rows()?;
        n += rows.len();
        self.temperature(&rows);
        let notes: Vec<String> = [
            &mut self.pot,
            &mut self.defl,
            &mut self.eis,
            &mut self.lockin,
            &mut self.temp,
        ]
        .into_iter()
        .flat_map(RawTail::notes)
        .collect();
        for note in notes {
            let t_s = self.t_latest_s;
            self.log(t_s, LogLevel::Warn, note);
        }
        if n > 0 {
            self.changed = true;
        }
        if self.changed {
            self.progress();
            self.changed = false;
        }
        if self.clock.dirty && self.last_fit.is_none_or(|t| t.elapsed() >= CLOCK_FIT_EVERY) {
            self.fit_clocks();
        }
        Ok(n)
    }

    fn log(&mut self, t_s: f64, level: LogLevel, text: String) {
        self.out.push(DashEvent::Log { t_s, level, text });
    }

    fn event(&mut self, v: &Value) {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("?");
        let t_ns = v.get("t_ns").and_then(Value::as_f64).unwrap_or(-1.0);
        let t_s = if t_ns >= 0.0 {
            self.host_s(t_ns)
        } else {
            self.t_latest_s
        };
        self.see(t_s);
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let ok = v.get("ok").and_then(Value::as_bool).unwrap_or(true);
        match kind {
            "run_start" => {
                let mut inst = Vec::new();
                for role in ["potentiostat", "deflection", "lockin", "temperature"] {
                    if let Some(idn) = v
                        .get(role)
                        .and_then(|r| r.get("idn"))
                        .and_then(Value::as_str)
                    {
                        inst.push((role.to_string(), idn.to_string()));
                    }
                }
                let started = self.started_with(&self.run_dir.clone(), inst);
                self.out.push(started);
                self.log(
                    t_s,
                    LogLevel::Info,
                    format!("run started (time ×{})", self.speed),
                );
            }
            "step_start" => {
                let index = num("step").map_or(0, |x| x as usize);
                let technique = s("technique").unwrap_or_else(|| "?".into());
                let duration_s = num("duration_s").unwrap_or(f64::NAN);
                let done_s: f64 = self.rows.iter().take(index).map(|r| r.duration_s).sum();
                self.step = Some((index, t_s, done_s));
                self.cycle = 0;
                self.points_in_step = 0;
                // The enclosing parameter sweeps' values (absent in folders
                // written before parameter sweeps), with their units.
                let sweep = v
                    .get("sweep")
                    .and_then(Value::as_array)
                    .map(|values| {
                        values
                            .iter()
                            .map(|sv| {
                                let name =
                                    sv.get("parameter").and_then(Value::as_str).unwrap_or("?");
                                let unit = vegard_recipe::SweepParameter::ALL
                                    .iter()
                                    .find(|p| p.name() == name)
                                    .map_or("", |p| p.unit());
                                let value =
                                    sv.get("value").and_then(Value::as_f64).unwrap_or(f64::NAN);
                                format!("{name} = {value} {unit}").trim_end().to_string()
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                self.out.push(DashEvent::StepStarted {
                    index,
                    count: self.plan.len().max(index + 1),
                    kind: technique.clone(),
                    duration_s,
                    sweep: sweep.clone(),
                });
                let at = num("setpoint_K").map_or(String::new(), |k| format!(" at {k:.2} K"));
                let values = if sweep.is_empty() {
                    String::new()
                } else {
                    format!(" ({sweep})")
                };
                self.log(
                    t_s,
                    LogLevel::Info,
                    format!("step {} {technique}{values} started{at}", index + 1),
                );
            }
            "step_end" => {
                let index = num("step").map_or(0, |x| x as usize);
                self.log(t_s, LogLevel::Info, format!("step {} ended", index + 1));
            }
            "temperature_stable" => self.log(
                t_s,
                LogLevel::Info,
                format!(
                    "temperature stable at {:.2} K after {:.0} s",
                    num("T_K").unwrap_or(f64::NAN),
                    num("waited_s").unwrap_or(f64::NAN)
                ),
            ),
            "abort" => self.log(
                t_s,
                LogLevel::Error,
                format!("abort: {}", s("reason").unwrap_or_default()),
            ),
            "cell_off" | "heater_off" | "lockin_sine_off" => {
                let what = kind.replace('_', " ");
                if ok {
                    self.log(t_s, LogLevel::Info, what);
                } else {
                    let err = v.get("error").map(Value::to_string).unwrap_or_default();
                    self.log(t_s, LogLevel::Error, format!("{what} FAILED: {err}"));
                }
            }
            "run_end" => {
                let status = s("status").unwrap_or_default();
                let level = if status == "complete" {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                let reason = s("reason").map_or(String::new(), |r| format!(": {r}"));
                self.log(t_s, level, format!("run ended {status}{reason}"));
            }
            "marker" => {
                let note = s("note").unwrap_or_default();
                self.log(t_s, LogLevel::Marker, note);
            }
            "pause" | "paused" => {
                self.out.push(DashEvent::Paused(true));
                self.log(t_s, LogLevel::Info, "paused".into());
            }
            "resume" | "resumed" => {
                self.out.push(DashEvent::Paused(false));
                self.log(t_s, LogLevel::Info, "resumed".into());
            }
            "recovered" => self.log(
                t_s,
                LogLevel::Warn,
                "recovered after the recording process died".into(),
            ),
            vegard_store::TORN_LINE_SET_ASIDE => self.log(
                t_s,
                LogLevel::Warn,
                format!(
                    "a torn last line of {} ({} bytes, a crash mid-write) was set aside in {}",
                    s("file").unwrap_or_else(|| vegard_store::EVENTS_FILE.into()),
                    num("bytes").unwrap_or(f64::NAN),
                    s("kept_in").unwrap_or_else(|| vegard_store::EVENTS_TORN_FILE.into()),
                ),
            ),
            "digitizer_armed" => {
                if let (Some(seg), Some(_), Some(count), Some(dt)) = (
                    v.get("segment").and_then(Value::as_i64),
                    num("block_period_s"),
                    num("count"),
                    num("sample_interval_s"),
                ) {
                    self.pinned_block_s.insert(seg, count * dt);
                }
            }
            "scan_end" => {}
            other => {
                let level = if other.contains("warn") {
                    LogLevel::Warn
                } else if ["fault", "error", "limit"]
                    .iter()
                    .any(|k| other.contains(k))
                {
                    LogLevel::Error
                } else {
                    LogLevel::Info
                };
                let mut fields = v.as_object().cloned().unwrap_or_default();
                for k in ["t_ns", "utc", "kind"] {
                    fields.remove(k);
                }
                let text = format!("{other} {}", Value::Object(fields));
                self.log(t_s, level, clip_chars(&text, 200).to_owned());
            }
        }
    }

    fn potentiostat(&mut self, rows: &[Vec<f64>]) {
        let (
            Some(c_step),
            Some(c_seg),
            Some(c_cyc),
            Some(c_tdev),
            Some(c_host),
            Some(c_e),
            Some(c_i),
        ) = (
            self.pot.col(potentiostat_col::step),
            self.pot.col(potentiostat_col::segment),
            self.pot.col(potentiostat_col::cycle),
            self.pot.col(potentiostat_col::t_dev_s),
            self.pot.col(potentiostat_col::host_ns),
            self.pot.col(potentiostat_col::E_V),
            self.pot.col(potentiostat_col::I_A),
        )
        else {
            return;
        };
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        let (mut t_s, mut e_v, mut i_a, mut cycle, mut step) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            let g = |c: usize| r.get(c).copied().unwrap_or(f64::NAN);
            let t = self.host_s(g(c_host));
            let seg = g(c_seg) as i64;
            let tdev = g(c_tdev);
            self.seg_t0.entry(seg).or_insert(t - tdev);
            if self.clock.segment != seg {
                self.clock = SegmentClock {
                    segment: seg,
                    ..SegmentClock::default()
                };
            }
            self.clock.pot_dev_s.push(tdev);
            self.clock.pot_host_s.push(t);
            self.clock.dirty = true;
            let c = g(c_cyc).max(0.0) as u32;
            t_s.push(t);
            e_v.push(g(c_e));
            i_a.push(g(c_i));
            cycle.push(c);
            step.push(g(c_step).max(0.0) as usize);
            self.cycle = c;
            self.see(t);
        }
        self.out.push(DashEvent::Potentiostat {
            t_s,
            E_V: e_v,
            I_A: i_a,
            cycle,
            step,
        });
        self.place_pending();
    }

    fn deflection(&mut self, rows: &[Vec<f64>]) {
        let (Some(c_seg), Some(c_tdev), Some(c_host), Some(c_v)) = (
            self.defl.col(deflection_col::segment),
            self.defl.col(deflection_col::t_dev_s),
            self.defl.col(deflection_col::host_ns),
            self.defl.col(deflection_col::V),
        ) else {
            return;
        };
        for r in rows {
            let g = |c: usize| r.get(c).copied().unwrap_or(f64::NAN);
            let seg = g(c_seg) as i64;
            let tdev = g(c_tdev);
            if seg == self.clock.segment {
                let e = self
                    .clock
                    .defl_newest
                    .entry(g(c_host) as i64)
                    .or_insert(f64::NEG_INFINITY);
                *e = e.max(tdev);
                self.clock.dirty = true;
            }
            self.pending_defl
                .push((seg, tdev, g(c_v) * self.invols_nm_per_V));
        }
        self.place_pending();
    }

    /// Send the pending deflection rows whose segment start is known.
    fn place_pending(&mut self) {
        if self.pending_defl.is_empty() {
            return;
        }
        let mut t_s = Vec::new();
        let mut nm = Vec::new();
        let seg_t0 = &self.seg_t0;
        self.pending_defl
            .retain(|&(seg, tdev, u)| match seg_t0.get(&seg) {
                Some(t0) => {
                    t_s.push(t0 + tdev);
                    nm.push(u);
                    false
                }
                None => true,
            });
        if let Some(&last) = t_s.last() {
            self.see(last);
            self.out.push(DashEvent::Deflection {
                t_s,
                deflection_nm: nm,
            });
        }
    }

    fn impedance(&mut self, rows: &[Vec<f64>]) {
        let (Some(c_step), Some(c_f), Some(c_re), Some(c_im)) = (
            self.eis.col(eis_raw_col::step),
            self.eis.col(eis_raw_col::f_Hz),
            self.eis.col(eis_raw_col::Z_re_ohm),
            self.eis.col(eis_raw_col::Z_im_ohm),
        ) else {
            return;
        };
        for r in rows {
            let g = |c: usize| r.get(c).copied().unwrap_or(f64::NAN);
            let step = g(c_step).max(0.0) as usize;
            if self.step.is_some_and(|s| s.0 == step) {
                self.points_in_step += 1;
            }
            self.out.push(DashEvent::Impedance {
                step,
                f_Hz: g(c_f),
                Z_re_ohm: g(c_re),
                Z_im_ohm: g(c_im),
            });
        }
    }

    /// Lock-in rows: |X + jY| is the deflection signal's RMS in V, so the
    /// amplitude per volt of drive is |X + jY| × √2 × invols / amplitude_V
    /// (peak at the cell, from the step). The phase is the lock-in's own,
    /// relative to its reference: fine for watching the roll-off, the
    /// software lock-in at finalisation gives the phase against E.
    fn esm(&mut self, rows: &[Vec<f64>]) {
        let (Some(c_step), Some(c_f), Some(c_x), Some(c_y)) = (
            self.lockin.col(lockin_col::step),
            self.lockin.col(lockin_col::f_Hz),
            self.lockin.col(lockin_col::x_V_rms),
            self.lockin.col(lockin_col::y_V_rms),
        ) else {
            return;
        };
        for r in rows {
            let g = |c: usize| r.get(c).copied().unwrap_or(f64::NAN);
            let step = g(c_step).max(0.0) as usize;
            let amplitude_V = match self.plan.get(step).map(|p| &p.step) {
                Some(Step::EsmSweep(e)) => e.amplitude_V,
                _ => f64::NAN,
            };
            let (x, y) = (g(c_x), g(c_y));
            if self.step.is_some_and(|s| s.0 == step) {
                self.points_in_step += 1;
            }
            self.out.push(DashEvent::EsmPoint {
                step,
                f_Hz: g(c_f),
                amplitude_nm_per_V: x.hypot(y) * std::f64::consts::SQRT_2 * self.invols_nm_per_V
                    / amplitude_V,
                phase_deg: y.atan2(x).to_degrees(),
            });
        }
    }

    fn temperature(&mut self, rows: &[Vec<f64>]) {
        let (Some(c_host), Some(c_t), Some(c_sp)) = (
            self.temp.col(temperature_col::host_ns),
            self.temp.col(temperature_col::T_K),
            self.temp.col(temperature_col::setpoint_K),
        ) else {
            return;
        };
        for r in rows {
            let g = |c: usize| r.get(c).copied().unwrap_or(f64::NAN);
            let t_s = self.host_s(g(c_host));
            self.see(t_s);
            let sp = g(c_sp);
            self.out.push(DashEvent::Temperature {
                t_s,
                T_K: g(c_t),
                setpoint_K: sp.is_finite().then_some(sp),
            });
        }
    }

    /// Progress as the engine computes it: planned seconds of finished steps
    /// plus the time into this one (capped at its plan), ETA the remainder.
    fn progress(&mut self) {
        let Some((index, start_s, done_s)) = self.step else {
            return;
        };
        let row = self.rows.get(index);
        let duration_s = row.map_or(0.0, |r| r.duration_s);
        let total_s: f64 = self.rows.iter().map(|r| r.duration_s).sum();
        let elapsed_s = done_s + (self.t_latest_s - start_s).clamp(0.0, duration_s.max(0.0));
        let kind = row.map_or_else(|| "?".to_string(), |r| r.kind.clone());
        let cycles = self.plan.get(index).map_or(1, |p| step_cycles(&p.step));
        let cycle = match kind.as_str() {
            "cv" => self.cycle,
            "eis" | "esm_sweep" => self.points_in_step,
            _ => self.cycle.max(1),
        };
        self.out.push(DashEvent::Progress {
            step: index,
            count: self.plan.len().max(index + 1),
            kind,
            cycle,
            cycles,
            elapsed_s,
            eta_s: (total_s - elapsed_s).max(0.0),
        });
    }

    /// Lower-envelope fit of the current segment, as finalisation does it.
    fn fit_clocks(&mut self) {
        self.last_fit = Some(Instant::now());
        self.clock.dirty = false;
        let c = &self.clock;
        let dt: Vec<f64> = c.defl_newest.values().copied().collect();
        let dh: Vec<f64> = c
            .defl_newest
            .keys()
            .map(|&h| self.host_s(h as f64))
            .collect();
        // As finalisation does it: blocks pinned to their edges are placed
        // by the potentiostat's clock.
        let fitted = match self.pinned_block_s.get(&c.segment) {
            Some(&span_s) => {
                vegard_clock::align_segment_pinned(&c.pot_dev_s, &c.pot_host_s, span_s)
            }
            None => vegard_clock::align_segment(&c.pot_dev_s, &c.pot_host_s, &dt, &dh),
        };
        let Ok(clocks) = fitted else {
            return;
        };
        let err = Some(clocks.alignment_error_estimate_s).filter(|e| e.is_finite());
        self.out.push(DashEvent::Clock {
            device: "potentiostat".into(),
            offset_s: clocks.potentiostat.offset_s,
            drift_ppm: clocks.potentiostat.drift_ppm(),
            alignment_error_s: err,
        });
        if clocks.digitizer_error.is_none() {
            self.out.push(DashEvent::Clock {
                device: "deflection".into(),
                offset_s: clocks.digitizer.offset_s,
                drift_ppm: clocks.digitizer.drift_ppm(),
                alignment_error_s: err,
            });
        }
    }

    /// The run is over: final clocks, unplaced deflection, `Finished`.
    fn finish(&mut self, meta: &RunMeta) {
        if self.clock.dirty {
            self.fit_clocks();
        }
        if let Some(al) = &meta.alignment {
            self.out.extend(clock_events_from_alignment(al));
        }
        if !self.pending_defl.is_empty() {
            let n = self.pending_defl.len();
            self.pending_defl.clear();
            let t = self.t_latest_s;
            self.log(
                t,
                LogLevel::Warn,
                format!(
                    "{n} deflection samples without potentiostat rows in their segment: not shown"
                ),
            );
        }
        self.out.push(DashEvent::Finished {
            status: meta.status.to_string(),
            reason: meta.reason.clone(),
        });
    }
}
