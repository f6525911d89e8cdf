//! `vegard import`: a potentiostat file and a deflection trace recorded by
//! other software, put on one timeline and written as a standard run folder
//! that `vegard analyze`, `report`, `export` and `watch` read unchanged.
//!
//! Why a run folder rather than an analysis of the two files: every later
//! step (analysis, reports, campaigns, export) then treats imported and
//! native runs alike, and the folder records how the two clocks were
//! joined (`[alignment]`, `[alignment.external]`) and where the data came
//! from (`[import]`: paths, sha256, readers, the files' own metadata).
//!
//! The shared timeline is the potentiostat file's own time axis (seconds
//! since its acquisition start, as the file states it); the trace is mapped
//! onto it by [`vegard_clock::external`]: `t = offset_s + (1 +
//! drift_ppm·1e-6)·t_trace`. The folder holds what finalisation writes for
//! a native run:
//!
//! - `raw/potentiostat.arrows`, `raw/deflection.arrows`: the streams, so the
//!   dashboard (`vegard watch`) replays the run. Both count from the shared
//!   zero, as a native segment's devices count from their shared trigger:
//!   the potentiostat's `t_dev_s` is its file time, the deflection's the
//!   *mapped* trace time; `host_ns` is the shared time in ns (there are no
//!   host stamps).
//! - `data/potentiostat.parquet`; `data/deflection.parquet` on the trace's
//!   own sample grid, `t_dev_s` = the trace's own clock, `t_s` = mapped;
//!   empty temperature / EIS / ESM / lock-in tables.
//! - `aligned.parquet`: the deflection resampled onto the potentiostat's
//!   grid (linear, [`vegard_clock::resample_linear`], NaN outside the trace).
//! - `run.toml`: a synthesised recipe with one CV step whose vertices, scan
//!   rate and cycles are read off the data (the analysis needs the drive's
//!   period), `[[steps]]`, `[alignment]`, `[analysis_summary]`, `[import]`.
//! - `events.jsonl`: run start, step start and end, run end.
//!
//! A trace in volts needs the InvOLS (nm/V); a trace in m, µm, nm or pm is
//! converted to nm and stored with InvOLS 1 nm/V (its `V` columns then hold
//! nm, so `V × InvOLS = nm` holds for every reader).
//!
//! Sync (`--sync`): `edges` pairs the trace's sync-channel edges (both
//! polarities) with potentiostat events: the start of every cycle (the
//! first sample the file assigns to each cycle number: the potentiostat's
//! trigger output toggled there) or only the start of the record. `auto`
//! takes edges when the trace has a sync channel with edges and the
//! potentiostat file has cycle numbers, else the start timestamps when both
//! files state one, else the cross-correlation; a method that fails under
//! `auto` falls through to the next, and the reasons are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest;
use vegard_clock::{
    EdgeOptions, ExternalAlignment, ExternalError, ExternalMethod, XcorrOptions, align_by_edges,
    align_by_timestamps, align_by_xcorr, detect_edges, resample_linear,
};
use vegard_core::UtcStamp;
use vegard_formats::{EcSeries, Trace};
use vegard_recipe::{CvStep, Limits, Recipe, RunInfo, Step};
use vegard_store::schema::{
    Aligned, DeflectionData, DeflectionRaw, DeflectionRow, EisData, EsmData, LockInRaw,
    PotentiostatData, PotentiostatRaw, PotentiostatRow, SweepLabels, TemperatureData,
    TemperatureRaw, aligned_path, data_path,
};
use vegard_store::{
    ExternalAlignmentRecord, ImportProvenance, ImportSource, RunAlignment, RunMeta, RunStatus,
    RunWriter, SegmentAlignment, StoreError,
};

use crate::analyze::{CvStepAnalysis, analyze_aligned};
use crate::products::{TemperatureTrace, label_columns, step_records, sweep_label_columns};
use crate::{AnalysisIssue, alignment_issues};

/// How to put the trace on the potentiostat's timeline (`--sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncChoice {
    /// Edges, else timestamps, else cross-correlation (module docs).
    Auto,
    Edges,
    Timestamps,
    Xcorr,
}

/// Which potentiostat instants the trace's sync edges mark (`--sync-channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PotentiostatEvents {
    /// The first sample of every cycle (the file's cycle column).
    CycleStarts,
    /// The first sample of the record only: one edge, offset only.
    Start,
}

/// Everything `vegard import` asks for besides the two files.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    pub sync: SyncChoice,
    pub events: PotentiostatEvents,
    /// 1σ disagreement of the two files' start stamps, s.
    pub timestamp_uncertainty_s: f64,
    /// Needed when the trace is in volts.
    pub invols_nm_per_V: Option<f64>,
    /// Fit a drift from the cross-correlation's windows.
    pub xcorr_fit_drift: bool,
    /// Run name (folder slug); default `import-<potentiostat file stem>`.
    pub name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            sync: SyncChoice::Auto,
            events: PotentiostatEvents::CycleStarts,
            timestamp_uncertainty_s: 1.0,
            invols_nm_per_V: None,
            xcorr_fit_drift: false,
            name: None,
        }
    }
}

/// The two files as read, with their paths (for messages and provenance).
#[derive(Debug, Clone, Copy)]
pub struct ImportInput<'a> {
    pub ec: &'a EcSeries,
    pub ec_path: &'a Path,
    pub trace: &'a Trace,
    pub trace_path: &'a Path,
}

/// What an import produced.
#[derive(Debug, Clone, Serialize)]
pub struct ImportOutcome {
    pub run_dir: PathBuf,
    pub alignment: ExternalAlignment,
    /// Why this method: the `--sync` choice and what `auto` found.
    pub chosen_because: String,
    pub n_potentiostat: usize,
    pub n_deflection: usize,
    /// Potentiostat samples that got a deflection value (inside the trace).
    pub aligned_with_deflection: usize,
    pub cv_steps: Vec<CvStepAnalysis>,
    pub analysis_errors: Vec<AnalysisIssue>,
}

/// Why an import failed. The first three are the user's input (exit 2 in
/// the CLI), each naming the file; the rest are failures writing the run.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The potentiostat file's data cannot be used.
    #[error("{path}: {why}")]
    Potentiostat { path: String, why: String },
    /// The trace cannot be used (unit, InvOLS, bad times).
    #[error("{path}: {why}")]
    Trace { path: String, why: String },
    /// The two could not be put on one timeline.
    #[error("aligning {trace} to {potentiostat}: {error}")]
    Align {
        potentiostat: String,
        trace: String,
        error: ExternalError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source file that could not be read again for its checksum.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The synthesised recipe or bench did not serialise (a bug).
    #[error("run.toml: {0}")]
    Toml(String),
}

impl ImportError {
    /// Whether the user's input is at fault (CLI exit status 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ImportError::Potentiostat { .. }
                | ImportError::Trace { .. }
                | ImportError::Align { .. }
        )
    }
}

/// Import `input` into a new run folder under `out_dir`.
pub fn import_run(
    input: &ImportInput<'_>,
    opts: &ImportOptions,
    out_dir: &Path,
) -> Result<ImportOutcome, ImportError> {
    let ec_name = input.ec_path.display().to_string();
    let tr_name = input.trace_path.display().to_string();
    let ec = input.ec;
    let tr = input.trace;
    check_ec(ec, &ec_name)?;
    check_trace(tr, &tr_name)?;
    let (scale_nm_per_unit, invols_nm_per_V) =
        trace_scale(&tr.unit, opts.invols_nm_per_V, &tr_name)?;
    let cv = cv_step_from(ec, &ec_name)?;

    let (alignment, chosen_because) = choose_alignment(input, opts)?;
    let alignment = alignment.with_span(
        tr.t_s.first().copied().unwrap_or(0.0),
        tr.t_s.last().copied().unwrap_or(0.0),
    );

    // ---- the run's tables
    let n_p = ec.t_s.len();
    let n_d = tr.t_s.len();
    let cycle = normalised_cycles(ec);
    let d_t: Vec<f64> = tr.t_s.iter().map(|&t| alignment.to_ref(t)).collect();
    // `V` as stored: volts, or nm when the trace was a length (InvOLS 1).
    let d_V: Vec<f64> = tr
        .value
        .iter()
        .map(|v| v * scale_nm_per_unit / invols_nm_per_V)
        .collect();
    let d_nm: Vec<f64> = d_V.iter().map(|v| v * invols_nm_per_V).collect();
    let shared_ns = |t: f64| (t * 1e9).round() as i64;
    let mut p_raw = PotentiostatRaw::default();
    for (i, ((&t, &c), (&E_V, &I_A))) in ec
        .t_s
        .iter()
        .zip(&cycle)
        .zip(ec.E_V.iter().zip(&ec.I_A))
        .enumerate()
    {
        p_raw.push(&PotentiostatRow {
            seq: i as i64,
            step: 0,
            segment: 0,
            index: i as i64,
            cycle: c,
            t_dev_s: t,
            host_ns: shared_ns(t),
            E_V,
            I_A,
            status: 0,
        });
    }
    let mut d_raw = DeflectionRaw::default();
    for (j, (&t, &V)) in d_t.iter().zip(&d_V).enumerate() {
        d_raw.push(&DeflectionRow {
            seq: j as i64,
            step: 0,
            segment: 0,
            index: j as i64,
            t_dev_s: t,
            host_ns: shared_ns(t),
            V,
        });
    }
    // Deflection onto the potentiostat grid (the trace's times ascend, and
    // the mapping is increasing, so the mapped times ascend too).
    let p_defl_V = resample_linear(&d_t, &d_V, &ec.t_s);
    let aligned_with_deflection = p_defl_V.iter().filter(|v| v.is_finite()).count();
    if aligned_with_deflection == 0 {
        return Err(ImportError::Align {
            potentiostat: ec_name,
            trace: tr_name,
            error: ExternalError::BadInput {
                what: "the aligned records",
                why: format!(
                    "do not overlap: the trace maps to {:.3}..{:.3} s, the potentiostat \
                     covers {:.3}..{:.3} s",
                    d_t.first().copied().unwrap_or(f64::NAN),
                    d_t.last().copied().unwrap_or(f64::NAN),
                    ec.t_s[0],
                    ec.t_s[n_p - 1]
                ),
            },
        });
    }

    let name = opts.name.clone().unwrap_or_else(|| {
        let stem = input
            .ec_path
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        format!("import-{stem}")
    });
    let recipe = Recipe {
        run: RunInfo {
            name: name.clone(),
            sample: String::new(),
            operator: String::new(),
            notes: format!(
                "imported by vegard import from {ec_name} and {tr_name}; the CV step's \
                 begin, vertices, scan rate, step and cycles are read off the potentiostat data"
            ),
            deflection_sample_interval_s: Some(median_step(&tr.t_s)),
        },
        limits: limits_from(ec),
        steps: vec![Step::Cv(cv)],
    };
    let plan = recipe.plan();
    let recipe_table =
        toml::Table::try_from(&recipe).map_err(|e| ImportError::Toml(e.to_string()))?;
    let mut bench = toml::Table::new();
    let mut bench_info = toml::Table::new();
    bench_info.insert("name".into(), "imported".into());
    bench.insert("bench".into(), bench_info.into());
    let mut defl = toml::Table::new();
    defl.insert("invols_nm_per_V".into(), invols_nm_per_V.into());
    defl.insert("sample_interval_s".into(), median_step(&tr.t_s).into());
    let mut instruments = toml::Table::new();
    instruments.insert("deflection".into(), defl.into());
    bench.insert("instruments".into(), instruments.into());

    let sources = vec![
        source_record(
            "potentiostat",
            input.ec_path,
            ec.format,
            ec.technique.clone(),
            ec.start_unix_ns,
            ec.start_note.clone(),
            n_p,
            &ec.meta,
        )?,
        source_record(
            "deflection",
            input.trace_path,
            tr.format,
            None,
            tr.start_unix_ns,
            tr.start_note.clone(),
            n_d,
            &tr.meta,
        )?,
    ];

    // ---- the folder
    let folder_utc = match ec.start_unix_ns {
        Some(ns) => UtcStamp::from_unix(
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000) as u32,
        ),
        None => UtcStamp::now(),
    };
    let writer = RunWriter::create(out_dir, &vegard_recipe::slug(&name), folder_utc)?;
    let dir = writer.dir().to_path_buf();
    let now = UtcStamp::now();
    let mut meta = RunMeta {
        status: RunStatus::Running,
        reason: None,
        vegard_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: String::new(),
        // The anchor of the shared timeline: the potentiostat's start, where
        // its file states one.
        utc_start: ec
            .start_unix_ns
            .map_or(String::new(), |_| folder_utc.rfc3339()),
        time_acceleration: 1.0,
        recipe_path: ec_name.clone(),
        bench_path: String::new(),
        recipe: recipe_table,
        bench,
        import: Some(ImportProvenance {
            vegard_version: env!("CARGO_PKG_VERSION").to_string(),
            imported_utc: now.rfc3339(),
            invols_nm_per_V,
            trace_unit: tr.unit.clone(),
            timeline: format!(
                "t_s = the potentiostat file's time (s since its acquisition start); trace time \
                 mapped by t = offset_s + (1 + drift_ppm*1e-6) * t_trace ({})",
                alignment.method.name()
            ),
            sources,
        }),
        ..RunMeta::default()
    };
    writer.write_meta(&meta)?;
    let events = writer.events()?;
    let t_first = ec.t_s[0];
    let t_last = ec.t_s[n_p - 1];
    events.append(
        "run_start",
        shared_ns(t_first),
        serde_json::json!({
            "imported": true,
            "potentiostat": {"resource": ec_name, "idn": ec.format.name()},
            "deflection": {"resource": tr_name, "idn": tr.format.name()},
            "time_acceleration": 1.0,
        }),
    )?;
    events.append(
        "step_start",
        shared_ns(t_first),
        serde_json::json!({"step": 0, "technique": "cv", "duration_s": t_last - t_first,
                           "recipe_step": 0, "sweep_iteration": null, "setpoint_K": null}),
    )?;
    let mut ps = writer.stream(PotentiostatRaw::FILE, PotentiostatRaw::COLUMNS)?;
    for i in 0..p_raw.len() {
        if let Some(r) = p_raw.row(i) {
            ps.append(&r.cells())?;
        }
    }
    ps.close()?;
    let mut ds = writer.stream(DeflectionRaw::FILE, DeflectionRaw::COLUMNS)?;
    for j in 0..d_raw.len() {
        if let Some(r) = d_raw.row(j) {
            ds.append(&r.cells())?;
        }
    }
    ds.close()?;
    events.append(
        "step_end",
        shared_ns(t_last),
        serde_json::json!({"step": 0}),
    )?;

    let temps = TemperatureTrace::from_raw(&TemperatureRaw::default(), 1.0);
    let step: Vec<i64> = vec![0; n_p];
    let (sweep_iteration, setpoint_K) = label_columns(&plan, &step);
    let sweep_labels = sweep_label_columns(&plan, &step);
    let aligned = Aligned {
        t_s: ec.t_s.clone(),
        step: step.clone(),
        segment: vec![0; n_p],
        cycle: cycle.clone(),
        E_V: ec.E_V.clone(),
        I_A: ec.I_A.clone(),
        deflection_nm: p_defl_V.iter().map(|v| v * invols_nm_per_V).collect(),
        deflection_V: p_defl_V,
        sweep_iteration,
        setpoint_K,
        T_K: temps.at(&ec.t_s),
    };
    let p_out = PotentiostatData {
        seq: p_raw.seq,
        step: p_raw.step,
        segment: p_raw.segment,
        index: p_raw.index,
        cycle: p_raw.cycle,
        t_dev_s: p_raw.t_dev_s,
        host_ns: p_raw.host_ns,
        E_V: p_raw.E_V,
        I_A: p_raw.I_A,
        status: p_raw.status,
        t_s: ec.t_s.clone(),
    };
    let d_out = DeflectionData {
        seq: d_raw.seq,
        step: d_raw.step,
        segment: d_raw.segment,
        index: d_raw.index,
        t_dev_s: tr.t_s.clone(),
        host_ns: d_raw.host_ns,
        V: d_raw.V,
        t_s: d_t,
        deflection_nm: d_nm,
    };
    vegard_store::write_parquet(
        &data_path(&dir, PotentiostatData::FILE),
        &p_out.into_table(),
    )?;
    vegard_store::write_parquet(&data_path(&dir, DeflectionData::FILE), &d_out.into_table())?;
    vegard_store::write_parquet(
        &data_path(&dir, TemperatureData::FILE),
        &TemperatureData::default().into_table(),
    )?;
    vegard_store::write_parquet(
        &data_path(&dir, EisData::FILE),
        &SweepLabels::missing(0).append_to(EisData::default().into_table()),
    )?;
    vegard_store::write_parquet(
        &data_path(&dir, LockInRaw::FILE),
        &LockInRaw::default().into_table(),
    )?;
    vegard_store::write_parquet(
        &data_path(&dir, EsmData::FILE),
        &SweepLabels::missing(0).append_to(EsmData::default().into_table()),
    )?;

    let note = match alignment.method {
        ExternalMethod::Edges => None,
        ExternalMethod::Timestamps => Some(format!(
            "imported files aligned by their start timestamps only (±{:.3} s, 2σ): \
             record a sync channel for a better alignment",
            alignment.alignment_error_estimate_s
        )),
        ExternalMethod::CrossCorrelation => Some(format!(
            "imported files aligned by cross-correlation of the deflection with charge and \
             potential (±{:.4} s, 2σ): assumes the deflection follows the charge",
            alignment.alignment_error_estimate_s
        )),
    };
    let segment = SegmentAlignment {
        segment: 0,
        step: 0,
        potentiostat_drift_ppm: 0.0,
        deflection_drift_ppm: alignment.drift_ppm,
        trigger_t_s: alignment.offset_s,
        alignment_error_estimate_s: alignment.alignment_error_estimate_s,
        digitizer_sample_interval_s: median_step(&tr.t_s),
        n_potentiostat: n_p,
        n_deflection: n_d,
        note,
    };
    // A trace whose fitted drift no oscillator has is judged as in a native
    // run: its steps' results are withheld.
    let untrusted = crate::analyze::untrusted_segments(std::slice::from_ref(&segment));
    let (cv_steps, mut analysis_errors) = analyze_aligned(&aligned, &recipe, &|_| None, &untrusted);
    // Last, as at finalisation: aligned.parquet means "finished".
    vegard_store::write_parquet(
        &aligned_path(&dir),
        &sweep_labels.append_to(aligned.into_table()),
    )?;
    meta.data_issues = analysis_errors
        .iter()
        .filter(|i| i.kind == crate::IssueKind::Clock)
        .map(AnalysisIssue::to_recorded)
        .collect();
    analysis_errors.extend(alignment_issues(std::slice::from_ref(&segment)));
    meta.steps = step_records(&plan, &temps);
    meta.status = RunStatus::Complete;
    meta.alignment = Some(RunAlignment {
        alignment_error_estimate_s: Some(alignment.alignment_error_estimate_s),
        method: format!(
            "imported files: {} (potentiostat clock = shared timeline; see [alignment.external])",
            method_words(alignment.method, opts.events)
        ),
        segments: vec![segment],
        external: Some(ExternalAlignmentRecord {
            method: alignment.method.name().to_string(),
            offset_s: alignment.offset_s,
            drift_ppm: alignment.drift_ppm,
            offset_se_s: alignment.offset_se_s,
            drift_se_ppm: alignment.drift_se_ppm,
            drift_fitted: alignment.drift_fitted,
            t_pivot_s: alignment.t_pivot_s,
            se_at_pivot_s: alignment.se_at_pivot_s,
            n_used: alignment.n_used,
            residual_rms_s: alignment.residual_rms_s,
            detail: alignment.detail.clone(),
            chosen_because: chosen_because.clone(),
        }),
    });
    meta.analysis_summary = crate::finalize::analysis_summary(&cv_steps, &analysis_errors, &recipe);
    events.append(
        "run_end",
        shared_ns(t_last),
        serde_json::json!({"status": "complete", "reason": null}),
    )?;
    writer.write_meta(&meta)?;
    Ok(ImportOutcome {
        run_dir: dir,
        alignment,
        chosen_because,
        n_potentiostat: n_p,
        n_deflection: n_d,
        aligned_with_deflection,
        cv_steps,
        analysis_errors,
    })
}

fn method_words(m: ExternalMethod, events: PotentiostatEvents) -> String {
    match m {
        ExternalMethod::Edges => format!(
            "sync edges recorded in the trace paired with the potentiostat's {}",
            match events {
                PotentiostatEvents::CycleStarts => "cycle starts",
                PotentiostatEvents::Start => "record start",
            }
        ),
        ExternalMethod::Timestamps => "the files' start timestamps".into(),
        ExternalMethod::CrossCorrelation => {
            "cross-correlation of the deflection with charge and potential".into()
        }
    }
}

/// The alignment the options ask for, and why it was the one taken.
fn choose_alignment(
    input: &ImportInput<'_>,
    opts: &ImportOptions,
) -> Result<(ExternalAlignment, String), ImportError> {
    let ec = input.ec;
    let tr = input.trace;
    let ec_name = input.ec_path.display().to_string();
    let tr_name = input.trace_path.display().to_string();
    let align_err = |error: ExternalError| ImportError::Align {
        potentiostat: ec_name.clone(),
        trace: tr_name.clone(),
        error,
    };
    let stamps = match (ec.start_unix_ns, tr.start_unix_ns) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let timestamps = || -> Result<ExternalAlignment, ImportError> {
        let Some((a, b)) = stamps else {
            let missing: Vec<&str> = [
                (ec.start_unix_ns.is_none(), ec_name.as_str()),
                (tr.start_unix_ns.is_none(), tr_name.as_str()),
            ]
            .into_iter()
            .filter(|(m, _)| *m)
            .map(|(_, n)| n)
            .collect();
            return Err(align_err(ExternalError::BadInput {
                what: "--sync timestamps",
                why: format!("no start time stated in {}", missing.join(" nor in ")),
            }));
        };
        align_by_timestamps(a, b, opts.timestamp_uncertainty_s).map_err(&align_err)
    };
    let xcorr = || -> Result<ExternalAlignment, ImportError> {
        let q = cumulative_charge(&ec.t_s, &ec.I_A);
        let x = XcorrOptions {
            fit_drift: opts.xcorr_fit_drift,
            ..XcorrOptions::default()
        };
        align_by_xcorr(&ec.t_s, &[&q, &ec.E_V], &tr.t_s, &tr.value, &x).map_err(&align_err)
    };
    // Edges: Ok(None) when the files do not carry what edges need.
    let edges = |prior: Option<(f64, f64)>| -> Result<Option<ExternalAlignment>, ImportError> {
        let Some(sync) = &tr.sync else {
            return Ok(None);
        };
        let events = match opts.events {
            PotentiostatEvents::Start => vec![ec.t_s[0]],
            PotentiostatEvents::CycleStarts => match &ec.cycle {
                Some(c) => cycle_starts(&ec.t_s, c),
                None => return Ok(None),
            },
        };
        let found = detect_edges(&tr.t_s, sync).map_err(&align_err)?;
        let other: Vec<f64> = found.iter().map(|e| e.t_s).collect();
        let o = EdgeOptions {
            ref_sigma_s: 0.0,
            other_sigma_s: median_step(&tr.t_s) / 12f64.sqrt(),
            match_tolerance_s: None,
            prior_offset_s: prior,
        };
        align_by_edges(&events, &other, &o)
            .map(Some)
            .map_err(&align_err)
    };
    let ts_prior = stamps.map(|(a, b)| {
        (
            (i128::from(b) - i128::from(a)) as f64 * 1e-9,
            opts.timestamp_uncertainty_s,
        )
    });
    // Edges, with the timestamps (else the cross-correlation) deciding a
    // pairing that a periodic sync leaves open.
    let edges_resolved = || -> Result<Option<(ExternalAlignment, String)>, ImportError> {
        match edges(ts_prior) {
            Err(ImportError::Align {
                error: ExternalError::Ambiguous { .. },
                ..
            }) if ts_prior.is_none() => {
                let x = xcorr()?;
                let prior = (x.offset_s, (4.0 * x.se_at_pivot_s).max(0.5));
                Ok(edges(Some(prior))?.map(|a| {
                    (
                        a,
                        format!(
                            "the pairing of the periodic sync edges was chosen by the \
                             cross-correlation's lag ({:.3} s)",
                            prior.0
                        ),
                    )
                }))
            }
            other => Ok(other?.map(|a| {
                let why = if ts_prior.is_some() {
                    "the start timestamps only decided between pairings".to_string()
                } else {
                    String::new()
                };
                (a, why)
            })),
        }
    };
    let join = |a: &str, b: String| {
        if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}; {b}")
        }
    };
    match opts.sync {
        SyncChoice::Edges => match edges_resolved()? {
            Some((a, why)) => Ok((a, join("--sync edges", why))),
            None => Err(align_err(ExternalError::NoEdges {
                what: "the files",
                why: if tr.sync.is_none() {
                    format!("{tr_name} has no sync channel")
                } else {
                    format!(
                        "{ec_name} has no cycle column for --sync-channel cycles \
                         (try --sync-channel start)"
                    )
                },
            })),
        },
        SyncChoice::Timestamps => Ok((timestamps()?, "--sync timestamps".into())),
        SyncChoice::Xcorr => Ok((xcorr()?, "--sync xcorr".into())),
        SyncChoice::Auto => {
            let mut why_not = Vec::new();
            match edges_resolved() {
                Ok(Some((a, why))) => {
                    return Ok((
                        a,
                        join(
                            "--sync auto: the trace has a sync channel and the potentiostat \
                             file marks its events",
                            why,
                        ),
                    ));
                }
                Ok(None) => why_not.push(if tr.sync.is_none() {
                    "the trace has no sync channel".to_string()
                } else {
                    "the potentiostat file has no cycle column".to_string()
                }),
                Err(e) if e.is_bad_input() => why_not.push(format!("edges failed ({e})")),
                Err(e) => return Err(e),
            }
            if stamps.is_some() {
                let a = timestamps()?;
                return Ok((
                    a,
                    format!(
                        "--sync auto: {}; both files state a start time",
                        why_not.join("; ")
                    ),
                ));
            }
            why_not.push("not both files state a start time".into());
            let a = xcorr()?;
            Ok((a, format!("--sync auto: {}", why_not.join("; "))))
        }
    }
}

/// Times of the first sample of each cycle (where the cycle number changes,
/// and the first sample).
fn cycle_starts(t_s: &[f64], cycle: &[i64]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut last: Option<i64> = None;
    for (&t, &c) in t_s.iter().zip(cycle) {
        if last != Some(c) {
            out.push(t);
            last = Some(c);
        }
    }
    out
}

/// Cumulative trapezoidal charge, C (NaN current bridged as 0 A).
fn cumulative_charge(t: &[f64], i: &[f64]) -> Vec<f64> {
    let mut q = Vec::with_capacity(t.len());
    let mut acc = 0.0;
    for k in 0..t.len() {
        if k > 0 {
            let a = if i[k - 1].is_finite() { i[k - 1] } else { 0.0 };
            let b = if i[k].is_finite() { i[k] } else { 0.0 };
            acc += 0.5 * (a + b) * (t[k] - t[k - 1]);
        }
        q.push(acc);
    }
    q
}

fn check_ec(ec: &EcSeries, path: &str) -> Result<(), ImportError> {
    let bad = |why: String| ImportError::Potentiostat {
        path: path.to_string(),
        why,
    };
    let n = ec.t_s.len();
    if ec.E_V.len() != n || ec.I_A.len() != n || ec.cycle.as_ref().is_some_and(|c| c.len() != n) {
        return Err(bad(
            "the reader returned columns of different lengths".into()
        ));
    }
    if n < 10 {
        return Err(bad(format!("{n} samples: too few to import (need 10)")));
    }
    if let Some(i) = ec.t_s.iter().position(|t| !t.is_finite()) {
        return Err(bad(format!("row {}: time is not a number", i + 1)));
    }
    if let Some(i) = ec.t_s.windows(2).position(|w| w[1] < w[0]) {
        return Err(bad(format!(
            "row {}: time goes backwards ({} s after {} s)",
            i + 2,
            ec.t_s[i + 1],
            ec.t_s[i]
        )));
    }
    if let Some(t) = &ec.technique {
        let l = t.to_ascii_lowercase();
        let cv = l.contains("cyclic") || l.split(|c: char| !c.is_alphanumeric()).any(|w| w == "cv");
        if !cv {
            return Err(bad(format!(
                "technique \"{t}\": vegard import handles cyclic voltammetry so far"
            )));
        }
    }
    Ok(())
}

fn check_trace(tr: &Trace, path: &str) -> Result<(), ImportError> {
    let bad = |why: String| ImportError::Trace {
        path: path.to_string(),
        why,
    };
    let n = tr.t_s.len();
    if tr.value.len() != n || tr.sync.as_ref().is_some_and(|s| s.len() != n) {
        return Err(bad(
            "the reader returned columns of different lengths".into()
        ));
    }
    if n < 10 {
        return Err(bad(format!("{n} samples: too few to import (need 10)")));
    }
    if let Some(i) = tr.t_s.iter().position(|t| !t.is_finite()) {
        return Err(bad(format!("sample {}: time is not a number", i + 1)));
    }
    if let Some(i) = tr.t_s.windows(2).position(|w| w[1] <= w[0]) {
        return Err(bad(format!(
            "sample {}: time does not increase ({} s after {} s)",
            i + 2,
            tr.t_s[i + 1],
            tr.t_s[i]
        )));
    }
    Ok(())
}

/// nm per unit of the trace's values, and the InvOLS to record.
fn trace_scale(unit: &str, invols: Option<f64>, path: &str) -> Result<(f64, f64), ImportError> {
    let bad = |why: String| ImportError::Trace {
        path: path.to_string(),
        why,
    };
    let length = match unit.trim() {
        "m" => Some(1e9),
        "mm" => Some(1e6),
        "um" | "µm" | "μm" => Some(1e3),
        "nm" => Some(1.0),
        "pm" => Some(1e-3),
        _ => None,
    };
    if let Some(s) = length {
        return Ok((s, 1.0));
    }
    let volts = match unit.trim() {
        "V" => 1.0,
        "mV" => 1e-3,
        "" => {
            return Err(bad(
                "the deflection's unit is not stated; name it in the column header \
                 (deflection_nm, deflection_V, ...)"
                    .into(),
            ));
        }
        other => {
            return Err(bad(format!(
                "deflection unit \"{other}\" is neither a length (m, um, nm, pm) nor volts"
            )));
        }
    };
    match invols {
        Some(k) if k.is_finite() && k > 0.0 => Ok((volts * k, k)),
        Some(k) => Err(bad(format!(
            "--invols-nm-per-V {k}: must be a positive number"
        ))),
        None => Err(bad(format!(
            "the deflection is in {unit}: pass --invols-nm-per-V (the lever's inverse optical \
             lever sensitivity, nm/V) to turn it into nm"
        ))),
    }
}

/// The file's cycle numbers, shifted so the first is 1 (the analysis counts
/// from 1); all 1 without a cycle column.
fn normalised_cycles(ec: &EcSeries) -> Vec<i64> {
    match &ec.cycle {
        Some(c) => {
            let min = c.iter().copied().min().unwrap_or(1);
            let shift = if min < 1 { 1 - min } else { 0 };
            c.iter().map(|v| v + shift).collect()
        }
        None => vec![1; ec.t_s.len()],
    }
}

/// The CV step the data shows: begin = the first potential, vertices =
/// the extremes in the order the sweep reaches them, scan rate and step =
/// the median |dE/dt| and |ΔE| between samples, cycles = distinct cycle
/// numbers. The analysis needs the drive's period from it.
fn cv_step_from(ec: &EcSeries, path: &str) -> Result<CvStep, ImportError> {
    let bad = |why: String| ImportError::Potentiostat {
        path: path.to_string(),
        why,
    };
    let e: Vec<(f64, f64)> = ec
        .t_s
        .iter()
        .zip(&ec.E_V)
        .filter(|(t, e)| t.is_finite() && e.is_finite())
        .map(|(t, e)| (*t, *e))
        .collect();
    let Some(&(_, begin_V)) = e.first() else {
        return Err(bad("no finite potential".into()));
    };
    let lo = e.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = e.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let range = hi - lo;
    if range.is_nan() || range <= 1e-3 {
        return Err(bad(format!(
            "the potential spans {range:.4} V: not a cyclic voltammogram"
        )));
    }
    let up = e
        .iter()
        .find(|p| (p.1 - begin_V).abs() > 0.02 * range)
        .is_some_and(|p| p.1 > begin_V);
    let mut rates: Vec<f64> = Vec::new();
    let mut steps: Vec<f64> = Vec::new();
    for w in e.windows(2) {
        let dt = w[1].0 - w[0].0;
        let de = (w[1].1 - w[0].1).abs();
        if dt > 0.0 {
            rates.push(de / dt);
            steps.push(de);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let scan_rate_V_per_s = med(&mut rates);
    let step_V = med(&mut steps);
    if scan_rate_V_per_s.is_nan() || scan_rate_V_per_s <= 0.0 || step_V.is_nan() || step_V <= 0.0 {
        return Err(bad(
            "the potential does not sweep: not a cyclic voltammogram".into(),
        ));
    }
    let cycles = match &ec.cycle {
        Some(c) => {
            let mut d = c.clone();
            d.sort_unstable();
            d.dedup();
            d.len().max(1) as u32
        }
        None => 1,
    };
    Ok(CvStep {
        begin_V,
        vertex_V: if up { [hi, lo] } else { [lo, hi] },
        scan_rate_V_per_s,
        step_V,
        cycles,
    })
}

/// Limits a real run would have needed: the recorded range with a margin.
fn limits_from(ec: &EcSeries) -> Limits {
    let fin = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect::<Vec<_>>()
    };
    let e = fin(&ec.E_V);
    let i = fin(&ec.I_A);
    let lo = e.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let margin = 0.05 * (hi - lo) + 0.01;
    let i_max = i.iter().map(|x| x.abs()).fold(0.0, f64::max);
    Limits {
        current_max_A: if i_max > 0.0 { 10.0 * i_max } else { 1e-3 },
        potential_window_V: [lo - margin, hi + margin],
    }
}

#[allow(clippy::too_many_arguments)]
fn source_record(
    role: &str,
    path: &Path,
    format: vegard_formats::Format,
    technique: Option<String>,
    start_unix_ns: Option<i64>,
    start_note: Option<String>,
    n_rows: usize,
    meta: &BTreeMap<String, String>,
) -> Result<ImportSource, ImportError> {
    let bytes = std::fs::read(path).map_err(|error| ImportError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let digest = sha2::Sha256::digest(&bytes);
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let format_key = serde_json::to_value(format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format.name().to_string());
    Ok(ImportSource {
        role: role.to_string(),
        path: path.display().to_string(),
        sha256,
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        format: format_key,
        technique,
        start_unix_ns,
        start_note,
        n_rows: n_rows as i64,
        meta: meta.clone(),
    })
}

fn median_step(t: &[f64]) -> f64 {
    let mut d: Vec<f64> = t
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| d.is_finite())
        .collect();
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A CV drive like the BioLogic fixture's (0.667 s samples, 100 mV/s,
    /// -0.03..1.6 V), current = C dE/dt + a redox peak pair.
    pub(crate) fn synthetic_cv() -> EcSeries {
        let dt = 0.6667;
        let (lo, hi, rate) = (-0.03, 1.6, 0.1);
        let half = (hi - lo) / rate;
        let n = 223;
        let mut t = Vec::new();
        let mut e = Vec::new();
        let mut i = Vec::new();
        let mut cyc = Vec::new();
        let start_phase = (hi - 0.88) / rate; // begin at 0.88 V going down
        for k in 0..n {
            let tt = 3.29 + k as f64 * dt;
            let s = (k as f64 * dt + start_phase) % (2.0 * half);
            let (ee, dir) = if s < half {
                (hi - rate * s, -1.0)
            } else {
                (lo + rate * (s - half), 1.0)
            };
            let peak = (-(ee - 0.75f64).powi(2) / 0.01).exp();
            t.push(tt);
            e.push(ee);
            i.push(dir * (2e-6 + 8e-6 * peak));
            cyc.push(
                1 + ((k as f64 * dt + start_phase - half) / (2.0 * half))
                    .floor()
                    .max(0.0) as i64,
            );
        }
        EcSeries {
            format: vegard_formats::Format::BiologicMpt,
            t_s: t,
            E_V: e,
            I_A: i,
            cycle: Some(cyc),
            technique: Some("Cyclic Voltammetry".into()),
            start_unix_ns: Some(1_596_018_661_000_000_000),
            start_note: None,
            meta: BTreeMap::new(),
        }
    }

    #[test]
    fn the_cv_step_is_read_off_the_data() {
        let ec = synthetic_cv();
        let cv = cv_step_from(&ec, "x").unwrap();
        assert!((cv.begin_V - 0.88).abs() < 1e-9);
        assert_eq!(
            cv.vertex_V[1],
            ec.E_V.iter().copied().fold(f64::MIN, f64::max)
        );
        assert!(cv.vertex_V[0] < 0.0);
        assert!((cv.scan_rate_V_per_s - 0.1).abs() < 1e-3, "{cv:?}");
        assert!(cv.cycles >= 4, "{cv:?}");
    }

    #[test]
    fn units_and_invols() {
        assert_eq!(trace_scale("nm", None, "t").unwrap(), (1.0, 1.0));
        assert_eq!(trace_scale("m", Some(50.0), "t").unwrap(), (1e9, 1.0));
        assert_eq!(trace_scale("V", Some(50.0), "t").unwrap(), (50.0, 50.0));
        let e = trace_scale("V", None, "trace.csv").unwrap_err().to_string();
        assert!(
            e.starts_with("trace.csv: ") && e.contains("--invols-nm-per-V"),
            "{e}"
        );
        assert!(trace_scale("", None, "t").is_err());
        assert!(trace_scale("furlong", Some(1.0), "t").is_err());
    }

    /// Timestamps, the library path: a trace whose file states a start
    /// 3.217 s before the potentiostat's (its PC clock 0.2 s off), in m.
    /// The folder reads back through `analyze_run` with the alignment and
    /// provenance, and the stated error covers the true one.
    #[test]
    fn a_timestamped_trace_imports_and_analyses() {
        let ec = synthetic_cv();
        let (offset, pc_error) = (-3.217, 0.2);
        let kappa_nm_per_C = -150e3;
        let q = cumulative_charge(&ec.t_s, &ec.I_A);
        let tau: Vec<f64> = (0..3200).map(|k| k as f64 * 0.05).collect();
        let value_m: Vec<f64> = tau
            .iter()
            .map(|&s| {
                let t = (offset + s).clamp(ec.t_s[0], ec.t_s[ec.t_s.len() - 1]);
                kappa_nm_per_C * resample_linear(&ec.t_s, &q, &[t])[0] * 1e-9
            })
            .collect();
        let start = ec.start_unix_ns.unwrap() + ((offset + pc_error) * 1e9) as i64;
        let trace = Trace {
            format: vegard_formats::Format::HeaderCsv,
            t_s: tau,
            value: value_m,
            unit: "m".into(),
            sync: None,
            start_unix_ns: Some(start),
            start_note: None,
            meta: BTreeMap::new(),
        };
        let dir = std::env::temp_dir().join(format!("vegard-import-ts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (pf, tf) = (dir.join("cv.mpt"), dir.join("trace.csv"));
        std::fs::write(&pf, "potentiostat bytes").unwrap();
        std::fs::write(&tf, "trace bytes").unwrap();
        let input = ImportInput {
            ec: &ec,
            ec_path: &pf,
            trace: &trace,
            trace_path: &tf,
        };
        let out = import_run(&input, &ImportOptions::default(), &dir.join("runs")).unwrap();
        assert_eq!(out.alignment.method, ExternalMethod::Timestamps);
        let err = (out.alignment.offset_s - offset).abs();
        assert!((err - pc_error).abs() < 1e-6);
        assert!(err <= out.alignment.alignment_error_estimate_s);
        let a = crate::analyze_run(&out.run_dir, &crate::SpectraOptions::default()).unwrap();
        let al = a.alignment.as_ref().unwrap();
        let ext = al.external.as_ref().unwrap();
        assert_eq!(ext.method, "timestamps");
        assert!(al.segments[0].note.is_some());
        assert!(
            a.analysis_warnings
                .iter()
                .any(|w| w.kind == crate::IssueKind::Alignment),
            "{:?}",
            a.analysis_warnings
        );
        assert_eq!(a.cv_steps.len(), 1);
        let meta = vegard_store::read_meta(&out.run_dir).unwrap();
        let import = meta.import.unwrap();
        assert_eq!(import.sources.len(), 2);
        // sha256("potentiostat bytes")
        assert_eq!(import.sources[0].sha256.len(), 64);
        assert_eq!(import.trace_unit, "m");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_non_cv_technique_is_refused_naming_the_file() {
        let mut ec = synthetic_cv();
        ec.technique = Some("Chronoamperometry".into());
        let e = check_ec(&ec, "ca.mpt").unwrap_err();
        assert!(e.is_bad_input());
        assert!(e.to_string().starts_with("ca.mpt: technique"), "{e}");
    }
}
