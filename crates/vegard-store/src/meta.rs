//! `run.toml`: what was run, where, by which build, and how it ended.
//!
//! Written atomically (temp file, fsync, rename, fsync of the folder) because
//! it is rewritten several times per run (start, end, recovery, analysis) and
//! a crash in the middle of a rewrite must leave the previous version, never
//! a half file.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vegard_core::limits::{self, MAX_RUN_META_BYTES};

use crate::{RUN_META_FILE, StoreError};

/// How a run ended (or that it has not ended yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Written at start; still `running` on disk after a crash, which is how
    /// recovery recognises an interrupted run.
    #[default]
    Running,
    /// Every step finished.
    Complete,
    /// Stopped by the user or by a fault; the cell was switched off.
    Aborted,
    /// The process died; recovered afterwards from the raw streams.
    Interrupted,
}

impl RunStatus {
    /// The lowercase name used in run.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Contents of `run.toml`. Scalars first, tables last (TOML needs tables
/// after plain keys). `Default` exists so callers can fill what they know
/// and leave the rest: `RunMeta { status, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunMeta {
    pub status: RunStatus,
    /// Why a run was aborted or interrupted (fault text, "user abort", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub vegard_version: String,
    pub hostname: String,
    /// UTC anchor of the host timebase (t_ns = 0), RFC 3339.
    pub utc_start: String,
    /// Simulated seconds per wall second (1.0 on real hardware).
    pub time_acceleration: f64,
    pub recipe_path: String,
    pub bench_path: String,
    /// The recipe as executed (after defaults were filled in).
    pub recipe: toml::Table,
    /// The bench config as executed.
    pub bench: toml::Table,
    /// Clock models and alignment-quality estimates, written at finalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<RunAlignment>,
    /// Headline analysis numbers, for listing runs without reading analysis.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_summary: Option<AnalysisSummary>,
    /// One entry per executed plan step (sweeps expanded): kind, labels
    /// (sweep iteration, temperature setpoint) and the temperature actually
    /// measured while it ran. Written at finalisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
    /// What finalisation found wrong with the recorded data itself (an ESM
    /// frequency whose lock-in switched inside the analysed window, its
    /// modulation missing), each naming the step. Kept here because only
    /// finalisation sees the raw streams and the lock-in's switch stamps;
    /// `vegard analyze` lists them again and leaves the points out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_issues: Vec<RecordedIssue>,
    /// Where an imported run's data came from (`vegard import`): the source
    /// files with their sha256, the readers' formats and the files' own
    /// metadata. Absent for runs vegard recorded itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportProvenance>,
    /// Why the virtual bench's data is not the model's (it fell behind at
    /// a high `--speed`), when it is not. Finalisation and `vegard analyze`
    /// then treat every segment as untrusted: no kappa is reported, the
    /// reason stands in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_overrun: Option<String>,
    /// Recording segments in which the digitizer lost readings: its reading
    /// memory overflowed (Questionable Data bit 14) because they were not
    /// fetched in time, so readings after the loss are not where their
    /// index puts them. Those segments are untrusted, like a bench overrun.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deflection_readings_lost: Vec<i64>,
}

/// run.toml `[import]`: provenance of a run assembled from other software's
/// files, enough to tell later whether the files are the ones imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ImportProvenance {
    /// vegard version that imported the files.
    pub vegard_version: String,
    /// When the import ran, RFC 3339 UTC.
    pub imported_utc: String,
    /// InvOLS applied to a trace in volts, nm/V (1 when the trace was
    /// already a length, converted to nm: then the `V` columns hold nm).
    pub invols_nm_per_V: f64,
    /// The trace's unit as its file states it.
    pub trace_unit: String,
    /// How the imported run's shared timeline is defined, in words.
    pub timeline: String,
    /// `[[import.sources]]`: the potentiostat file, then the trace.
    pub sources: Vec<ImportSource>,
}

/// One imported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ImportSource {
    /// `potentiostat` or `deflection`.
    pub role: String,
    /// The path as given on the command line.
    pub path: String,
    /// sha256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub size_bytes: i64,
    /// Reader that read it (`biologic_mpt`, `header_csv`, ...).
    pub format: String,
    /// Technique as the file names it, where it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
    /// Acquisition start the file states, Unix ns (UTC), and how it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_unix_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_note: Option<String>,
    /// Rows read.
    pub n_rows: i64,
    /// The file's own metadata as the reader kept it.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// run.toml `[[data_issues]]`: one problem finalisation found in the data.
/// `kind` is the pipeline's issue kind in snake case (`esm_window`); an
/// unknown kind from another version still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedIssue {
    /// Plan step (0-based); absent for issues of the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    pub kind: String,
    pub message: String,
}

/// run.toml `[alignment]`: how the devices' clocks were put on the shared
/// timeline, per recording segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunAlignment {
    /// Largest per-segment alignment-error estimate, s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment_error_estimate_s: Option<f64>,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub segments: Vec<SegmentAlignment>,
    /// An imported run's alignment of two independently clocked files
    /// (`vegard import`); absent for native runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalAlignmentRecord>,
}

/// run.toml `[alignment.external]`: how an imported trace's clock was
/// mapped onto the potentiostat's, `t = offset_s + (1 + drift_ppm·1e-6)·t_trace`,
/// with its error estimate (as `vegard_clock::ExternalAlignment`, which this
/// crate does not depend on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalAlignmentRecord {
    /// `edges`, `timestamps` or `xcorr`.
    pub method: String,
    pub offset_s: f64,
    pub drift_ppm: f64,
    pub offset_se_s: f64,
    pub drift_se_ppm: f64,
    /// Whether the data determined the drift (else 0 ± the quartz prior).
    pub drift_fitted: bool,
    /// Trace time where the mapping is best known, s, and its SE there.
    pub t_pivot_s: f64,
    pub se_at_pivot_s: f64,
    /// Paired edges or correlation windows used.
    pub n_used: usize,
    pub residual_rms_s: f64,
    /// How the figures were obtained, in words.
    pub detail: String,
    /// Why this method (the `--sync` choice, and what `auto` found).
    pub chosen_because: String,
}

impl Default for ExternalAlignmentRecord {
    fn default() -> Self {
        ExternalAlignmentRecord {
            method: String::new(),
            offset_s: f64::NAN,
            drift_ppm: f64::NAN,
            offset_se_s: f64::NAN,
            drift_se_ppm: f64::NAN,
            drift_fitted: false,
            t_pivot_s: f64::NAN,
            se_at_pivot_s: f64::NAN,
            n_used: 0,
            residual_rms_s: f64::NAN,
            detail: String::new(),
            chosen_because: String::new(),
        }
    }
}

/// Clock alignment of one recording segment (one trigger). Keys missing
/// from a run.toml (another version, another program) read as unknown:
/// NaN, 0 samples, step -1, so the run still opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentAlignment {
    pub segment: i64,
    pub step: i64,
    pub potentiostat_drift_ppm: f64,
    pub deflection_drift_ppm: f64,
    /// Shared time of the trigger edge, s since run start.
    pub trigger_t_s: f64,
    pub alignment_error_estimate_s: f64,
    pub digitizer_sample_interval_s: f64,
    pub n_potentiostat: usize,
    pub n_deflection: usize,
    /// Why this segment's alignment is weaker than usual, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Default for SegmentAlignment {
    fn default() -> Self {
        SegmentAlignment {
            segment: -1,
            step: -1,
            potentiostat_drift_ppm: f64::NAN,
            deflection_drift_ppm: f64::NAN,
            trigger_t_s: f64::NAN,
            alignment_error_estimate_s: f64::NAN,
            digitizer_sample_interval_s: f64::NAN,
            n_potentiostat: 0,
            n_deflection: 0,
            note: None,
        }
    }
}

/// run.toml `[analysis_summary]`: deformation vs charge of the first CV step.
/// The numbers are absent, and `withheld` says why, when the step's time
/// alignment cannot be trusted (a clock drift no oscillator has): a number
/// computed on a wrong timeline must not be listed as a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    pub step: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_nm_per_mC: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_se_nm_per_mC: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    /// Why the numbers are not given (e.g. `step 1 (cv): clock: deflection
    /// drift -897792 ppm beyond ±1000 ppm ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
}

/// run.toml `[[steps]]`: one executed plan step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Plan index, 0-based (as in every data file).
    pub step: i64,
    pub kind: String,
    /// Index of the recipe's `[[step]]` it expanded from.
    pub recipe_step: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_iteration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setpoint_K: Option<f64>,
    /// Values the enclosing parameter sweeps gave the step (absent outside
    /// them; the same labels as the data files' `sweep_*` columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_dc_V: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_amplitude_V: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_scan_rate_V_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_freq_Hz: Option<f64>,
    pub nominal_duration_s: f64,
    /// Temperature measured while the step ran (no stage: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub T_mean_K: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub T_min_K: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub T_max_K: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub T_readings: Option<i64>,
}

/// Atomically write `run_dir/run.toml`.
pub fn write_meta(run_dir: &Path, meta: &RunMeta) -> Result<(), StoreError> {
    let path = run_dir.join(RUN_META_FILE);
    let text = toml::to_string(meta).map_err(|e| StoreError::Toml {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    let tmp = run_dir.join(format!("{RUN_META_FILE}.tmp"));
    write_atomic(&tmp, &path, text.as_bytes())
}

/// Read `run_dir/run.toml`. Every error names the file; one at a place in
/// it is `.../run.toml:LINE:COL: message`. The file is refused above
/// [`MAX_RUN_META_BYTES`] before it is read, and its UTF-8, line lengths
/// and nesting are checked before the TOML parser sees it
/// (`vegard_core::limits`).
pub fn read_meta(run_dir: &Path) -> Result<RunMeta, StoreError> {
    use std::io::Read;
    let path = run_dir.join(RUN_META_FILE);
    let f = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
    let size = f.metadata().map_err(|e| StoreError::io(&path, e))?.len();
    let too_large = |size: String| StoreError::Toml {
        path: path.clone(),
        msg: format!(
            "{size} is larger than a run.toml written by vegard can be \
             ({MAX_RUN_META_BYTES} bytes)"
        ),
    };
    if size > MAX_RUN_META_BYTES {
        return Err(too_large(format!("{size} bytes")));
    }
    let mut bytes = Vec::new();
    f.take(MAX_RUN_META_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(&path, e))?;
    if bytes.len() as u64 > MAX_RUN_META_BYTES {
        return Err(too_large("the content".to_owned()));
    }
    let at = |e: limits::TextLimitError| StoreError::TomlAt {
        path: path.clone(),
        line: e.line,
        col: e.col,
        msg: e.message,
    };
    let text = limits::utf8_string(bytes).map_err(at)?;
    limits::check_line_lengths(text.as_bytes(), limits::MAX_CONFIG_LINE_BYTES).map_err(at)?;
    limits::check_toml_depth(text.as_bytes(), limits::MAX_TOML_DEPTH).map_err(at)?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map_or((1, 1), |span| limits::line_col(text.as_bytes(), span.start));
        StoreError::TomlAt {
            path: path.clone(),
            line,
            col,
            msg: e.message().trim_end().to_owned(),
        }
    })
}

/// Write `bytes` to `tmp`, make it durable, rename over `dest`, and sync the
/// folder so the rename itself survives a power cut.
pub(crate) fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    {
        let mut f = File::create(tmp).map_err(|e| StoreError::io(tmp, e))?;
        f.write_all(bytes).map_err(|e| StoreError::io(tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(tmp, e))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| StoreError::io(dest, e))?;
    sync_parent(dest);
    Ok(())
}

pub(crate) fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        // Opening a directory read-only and fsyncing it is how POSIX makes a
        // rename durable. Some platforms refuse to open directories; that
        // only weakens power-loss durability, so it is not an error; the
        // same holds for filesystems that reject fsync on a directory.
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fresh run folder holding `run.toml` = `bytes`.
    fn folder_with(tag: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vegard-store-meta-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(RUN_META_FILE), bytes).unwrap();
        dir
    }

    fn err(tag: &str, bytes: &[u8]) -> (String, String) {
        let dir = folder_with(tag, bytes);
        let e = read_meta(&dir).unwrap_err().to_string();
        (e, dir.join(RUN_META_FILE).display().to_string())
    }

    #[test]
    fn a_corrupt_run_toml_names_the_file() {
        // Syntax: the parser's position, one line, no snippet.
        let (e, path) = err("syntax", b"name = \"x\"\nstatus = [1,\n");
        assert_eq!(e, format!("{path}:2:13: unclosed array, expected `]`"));
        // A value of the wrong type: the position of the value.
        let (e, path) = err("type", b"status = \"exploded\"\n");
        assert!(e.starts_with(&format!("{path}:1:10: ")), "{e}");
        // Not UTF-8, and nesting past the limit: before the parser.
        let (e, path) = err("utf8", b"name = \"x\"\nsample = \"caf\xE9\"\n");
        assert!(
            e.starts_with(&format!("{path}:2:14: not UTF-8: byte 0xE9")),
            "{e}"
        );
        let (e, path) = err("deep", format!("x = {}", "[".repeat(40)).as_bytes());
        assert!(
            e.starts_with(&format!("{path}:1:37: nested 33 levels deep")),
            "{e}"
        );
        // Larger than vegard writes: refused by its size, unread.
        let big = vec![b'#'; MAX_RUN_META_BYTES as usize + 1];
        let (e, path) = err("big", &big);
        assert_eq!(
            e,
            format!(
                "{path}: 16777217 bytes is larger than a run.toml written by vegard can be \
                 (16777216 bytes)"
            )
        );
    }
}
