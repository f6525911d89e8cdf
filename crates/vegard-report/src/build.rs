//! From run folders to the report document: load each run, analyse it with
//! the spec's options, and lay the results out as sections of tables and
//! figures. Nothing here formats text for a particular output; the
//! renderers do that from the same [`Report`].
//!
//! When the analysed steps span two or more stage setpoints (a sweep run,
//! or a folder of runs at several temperatures) the report is organised by
//! temperature (`Temps`): each section opens with an overlay of all
//! temperatures on one blue-to-red colour scale, its tables start with the
//! setpoint and the measured temperature and are sorted by them, and
//! titles name technique and temperature instead of the plan index (which
//! moves to the caption). Figure and table ids stay those of the steps.

use std::collections::BTreeSet;

#[path = "scan_rate_section.rs"]
mod scan_rate_section;
use std::path::{Path, PathBuf};

use vegard_analysis::{C64, CellCorrection, Circuit, EisFit, EsmFit, film_transfer_H};
use vegard_pipeline::{
    AlignedFile, AnalysisIssue, ArrheniusComparison, CvSamples, EisStepFit, EsmStepFit, IssueKind,
    RunAnalysis, SpectraOptions,
};
use vegard_recipe::Recipe;
use vegard_store::RunMeta;
use vegard_store::schema::{EisData, EsmData, aligned_path, data_path};

pub use crate::decimate::decimate;
use crate::decimate::{
    MAX_CYCLES, TimeSeries, decimated_timeseries, minmax_indices, select_cycles,
};
use crate::model::{
    Axis, Cell, ColumnHead, DataTable, Figure, Generator, Legend, Panel, Report, ReportKind,
    ReportStatus, SCHEMA, Scale, Section, Series, SeriesKind, Tick, TopAxis,
};
use crate::render::format_number;
use crate::{ReportError, ReportSpec};

/// Palette slots: a method keeps its colour in every figure.
mod origin;

const EIS_COLOR: u8 = 0;
const ESM_COLOR: u8 = 1;
/// Palette slot of fitted curves and reference lines: black, whatever the
/// method.
const BLACK: u8 = 6;

/// One loaded and analysed run.
pub struct RunData {
    pub dir: PathBuf,
    /// Folder name, used to label a campaign's tables and figures.
    pub name: String,
    pub meta: RunMeta,
    pub recipe: Recipe,
    pub events: Vec<serde_json::Value>,
    /// Lines of events.jsonl that are not events (junk, a torn last line):
    /// skipped, and listed as warnings rather than failing the report, since
    /// the events only annotate the data.
    pub events_skipped: Vec<vegard_store::SkippedLine>,
    /// The aligned table, indexed but not loaded: a day-long run has
    /// millions of rows, so sections read the one step they draw.
    pub aligned: AlignedFile,
    /// The timeseries section's traces, min-max decimated while the table
    /// streamed past once (empty when the spec has no such section).
    pub timeseries: TimeSeries,
    pub eis: Option<EisData>,
    pub esm: Option<EsmData>,
    pub analysis: RunAnalysis,
    /// How its spectra were fitted (the spec's options).
    pub spectra_options: SpectraOptions,
}

/// The run folders a path stands for: itself when it holds `run.toml`, else
/// every sub-folder that does (a campaign), sorted by name (= UTC start).
pub fn run_folders(path: &Path) -> Result<(ReportKind, Vec<PathBuf>), ReportError> {
    let input = |msg: String| ReportError::Input {
        path: path.display().to_string(),
        msg,
    };
    if path.join(vegard_store::RUN_META_FILE).is_file() {
        return Ok((ReportKind::Run, vec![path.to_path_buf()]));
    }
    let entries = std::fs::read_dir(path).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(vegard_store::RUN_META_FILE).is_file())
        .collect();
    runs.sort();
    if runs.is_empty() {
        return Err(input(
            "neither a run folder (no run.toml) nor a folder of runs".to_owned(),
        ));
    }
    Ok((ReportKind::Campaign, runs))
}

/// Load and analyse one finished run. Lines of events.jsonl that do not
/// parse are skipped into [`RunData::events_skipped`] (warnings in the
/// report), not an error: one junk line must not cost the whole report.
pub fn load_run(dir: &Path, spec: &ReportSpec) -> Result<RunData, ReportError> {
    let meta = vegard_store::read_meta(dir)?;
    let recipe: Recipe = meta
        .recipe
        .clone()
        .try_into()
        .map_err(|e| ReportError::Input {
            path: dir.join(vegard_store::RUN_META_FILE).display().to_string(),
            msg: format!("[recipe]: {e}"),
        })?;
    let aligned_path = aligned_path(dir);
    if !aligned_path.is_file() {
        return Err(ReportError::Input {
            path: aligned_path.display().to_string(),
            msg: "missing: the run was not finalised (run `vegard recover` on it)".to_owned(),
        });
    }
    let aligned = AlignedFile::open(&aligned_path)?;
    // Only the decimated traces are kept, and only when they are drawn.
    let timeseries = if spec.sections.iter().any(|s| s == "timeseries") {
        decimated_timeseries(&aligned, spec.max_points)?
    } else {
        TimeSeries::default()
    };
    let analysis = vegard_pipeline::analyze_run(dir, &spec.spectra)?;
    let events = vegard_store::read_events(dir)?;
    Ok(RunData {
        name: dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        dir: dir.to_path_buf(),
        events: events.events,
        events_skipped: events.skipped,
        eis: EisData::read_parquet_if_exists(&data_path(dir, EisData::FILE))?,
        esm: EsmData::read_parquet_if_exists(&data_path(dir, EsmData::FILE))?,
        meta,
        recipe,
        aligned,
        timeseries,
        analysis,
        spectra_options: spec.spectra.clone(),
    })
}

/// Build the report for `path` (a run folder or a folder of runs).
pub fn build_report(path: &Path, spec: &ReportSpec, now_utc: &str) -> Result<Report, ReportError> {
    let (kind, dirs) = run_folders(path)?;
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for d in &dirs {
        match load_run(d, spec) {
            Ok(r) => runs.push(r),
            // One broken run must not hide a campaign's other runs.
            Err(e) if kind == ReportKind::Campaign => failures.push(format!("{e}")),
            Err(e) => return Err(e),
        }
    }
    if runs.is_empty() {
        return Err(ReportError::Input {
            path: path.display().to_string(),
            msg: format!("no run could be loaded: {}", failures.join("; ")),
        });
    }
    Ok(assemble(kind, &runs, spec, failures, now_utc))
}

/// Lay out loaded runs as a report.
pub(crate) fn assemble(
    kind: ReportKind,
    runs: &[RunData],
    spec: &ReportSpec,
    mut failures: Vec<String>,
    now_utc: &str,
) -> Report {
    let campaign = kind == ReportKind::Campaign;
    let prefix = |r: &RunData| {
        if campaign {
            format!("{}: ", r.name)
        } else {
            String::new()
        }
    };
    for r in runs {
        for e in &r.analysis.analysis_errors {
            if !not_run(r, e) {
                failures.push(format!("{}{}", prefix(r), e.message));
            }
        }
    }
    // A campaign's Arrhenius pools every run's fits by temperature.
    let mut arr_errors = Vec::new();
    let arrhenius: Option<ArrheniusComparison> = if campaign {
        let analyses: Vec<&RunAnalysis> = runs.iter().map(|r| &r.analysis).collect();
        vegard_pipeline::pooled_arrhenius(
            &analyses,
            spec.spectra.include_partial_sweeps,
            &mut arr_errors,
        )
    } else {
        runs[0].analysis.spectra.arrhenius.clone()
    };
    failures.extend(arr_errors.into_iter().map(|e| e.message));
    let warnings = collect_warnings(runs, campaign);
    let temps = Temps::of(runs);
    let mut sections = Vec::new();
    for id in &spec.sections {
        let built = match id.as_str() {
            "metadata" => Some(metadata_section(runs, spec)),
            "clocks" => clocks_section(runs),
            "timeseries" => timeseries_section(runs, &temps, spec.max_points),
            "cv" => cv_section(runs, &temps, spec.max_points, &mut failures),
            "deformation" => deformation_section(runs, &temps, spec.max_points, &mut failures),
            "harmonics" => harmonics_section(runs, &temps),
            "eis" => eis_section(runs, &temps),
            "esm" => esm_section(runs, &temps),
            "scan_rate" => scan_rate_section::scan_rate_section(runs),
            "arrhenius" => arrhenius.as_ref().map(|a| arrhenius_section(runs, a)),
            "origin" => origin::origin_section(runs),
            "warnings" => Some(warnings_section(&warnings)),
            _ => None,
        };
        match built {
            Some(s) => sections.push(s),
            None if spec.sections_explicit => failures.push(format!(
                "section {id:?}: nothing to report ({})",
                why_empty(id)
            )),
            None => {}
        }
    }
    if spec.fail_on_warnings && !warnings.is_empty() {
        failures.push(format!(
            "{} analysis warning(s) and the spec sets fail_on_warnings = true",
            warnings.len()
        ));
    }
    let title = spec.title.clone().unwrap_or_else(|| match kind {
        ReportKind::Run => format!("vegard report: {}", runs[0].recipe.run.name),
        ReportKind::Campaign => format!("vegard campaign report: {} runs", runs.len()),
    });
    let analysis = serde_json::json!({
        "runs": runs.iter().map(|r| {
            let mut v = r.analysis.to_json();
            v["name"] = serde_json::Value::from(r.name.clone());
            v
        }).collect::<Vec<_>>(),
        "arrhenius": arrhenius,
        "spectra_options": spec.spectra,
    });
    if !campaign {
        // One run: a "run" column would repeat the folder name on every row.
        for t in sections.iter_mut().flat_map(|s| &mut s.tables) {
            if let Some(k) = t.columns.iter().position(|c| c.name == "run") {
                t.columns.remove(k);
                for row in &mut t.rows {
                    if k < row.len() {
                        row.remove(k);
                    }
                }
            }
        }
    }
    Report {
        schema: SCHEMA.to_owned(),
        generator: Generator {
            name: "vegard".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        title,
        kind,
        created_utc: now_utc.to_owned(),
        sources: runs.iter().map(|r| r.dir.display().to_string()).collect(),
        spec_file: spec.file.clone(),
        status: if failures.is_empty() {
            ReportStatus::Ok
        } else {
            ReportStatus::AnalysisFailed
        },
        failures,
        sections,
        analysis,
    }
}

/// An analysis error that only says a step of a run that did not complete
/// has no data: the step never ran. That is a warning (the run's status
/// says why), not a failed analysis.
fn not_run(r: &RunData, issue: &AnalysisIssue) -> bool {
    r.meta.status != vegard_store::RunStatus::Complete && issue.kind == IssueKind::NoData
}

fn why_empty(id: &str) -> &'static str {
    match id {
        "clocks" => "no clock alignment recorded",
        "timeseries" => "the aligned table is empty",
        "cv" | "deformation" => "no CV step was analysed",
        "harmonics" => "no CV step has a complete period for the harmonic analysis",
        "eis" => "no EIS step was fitted",
        "esm" => "no ESM sweep was fitted",
        "scan_rate" => "no CV series with at least three scan rates was analysed",
        "arrhenius" => "fewer than two temperatures with fitted spectra",
        "origin" => {
            "no signal-origin separation: the run does not vary the dc potential, amplitude or \
             scan rate (recipes/signal-origin.toml), or the separation failed"
        }
        _ => "no data",
    }
}

fn section(id: &str, title: &str) -> Section {
    Section {
        id: id.to_owned(),
        title: title.to_owned(),
        text: Vec::new(),
        tables: Vec::new(),
        figures: Vec::new(),
    }
}

fn table(id: impl Into<String>, title: impl Into<String>, columns: &[(&str, &str)]) -> DataTable {
    DataTable {
        id: id.into(),
        title: title.into(),
        columns: columns
            .iter()
            .map(|(n, u)| ColumnHead {
                name: (*n).to_owned(),
                unit: (*u).to_owned(),
            })
            .collect(),
        rows: Vec::new(),
        note: None,
    }
}

fn axis(label: &str, unit: &str, scale: Scale) -> Axis {
    Axis {
        label: label.to_owned(),
        unit: unit.to_owned(),
        scale,
        reversed: false,
        range: None,
        ticks: None,
    }
}

fn panel(x: Axis, y: Axis, series: Vec<Series>) -> Panel {
    Panel {
        title: None,
        x,
        y,
        equal_aspect: false,
        legend: Legend::UpperRight,
        series,
        top_axis: None,
    }
}

/// One panel of a spectrum vs frequency (log axis): the measured points
/// and the fitted model's curve.
fn spectrum_panel(y: Axis, data: Series, fit: Series, legend: Legend) -> Panel {
    with_legend(
        panel(axis("f", "Hz", Scale::Log), y, vec![data, fit]),
        legend,
    )
}

/// Phase of a complex value, degrees.
fn phase_deg(z: C64) -> f64 {
    z.im.atan2(z.re).to_degrees()
}

fn with_legend(mut p: Panel, legend: Legend) -> Panel {
    p.legend = legend;
    p
}

fn figure(id: String, title: String, caption: Option<String>, panels: Vec<Panel>) -> Figure {
    let height_px = 120 + 260 * panels.len() as u32;
    Figure {
        id,
        title,
        caption,
        panels,
        width_px: 760,
        height_px,
    }
}

/// `"run-name-"` in a campaign (ids must be unique across runs), else "".
fn id_prefix(runs: &[RunData], r: &RunData) -> String {
    if runs.len() > 1 {
        format!("{}-", r.name)
    } else {
        String::new()
    }
}

fn title_prefix(runs: &[RunData], r: &RunData) -> String {
    if runs.len() > 1 {
        format!("{}: ", r.name)
    } else {
        String::new()
    }
}

fn step_kind(r: &RunData, step: i64) -> &'static str {
    usize::try_from(step)
        .ok()
        .and_then(|k| r.recipe.plan().get(k).map(|p| p.step.kind_name()))
        .unwrap_or("?")
}

// ------------------------------------------------------------- temperature

/// Kelvin at 0 °C: a campaign is planned and read in °C.
const ZERO_C_IN_K: f64 = 273.15;
/// Setpoints closer than this are one temperature (a sweep's 35 °C in two
/// runs is the same 308.15 K up to float noise).
const SAME_SETPOINT_K: f64 = 0.01;

/// The stage setpoint the plan had in force at `step` (the enclosing
/// sweep's temperature, or the last temperature step before it).
fn setpoint_K(r: &RunData, step: i64) -> Option<f64> {
    usize::try_from(step)
        .ok()
        .and_then(|k| r.recipe.plan().get(k).and_then(|p| p.label.setpoint_K))
        .filter(|t| t.is_finite())
}

/// Mean measured stage temperature over a step's aligned rows, K; `None`
/// without a stage (or when the table cannot be read: the setpoint still
/// labels the step, and the spectra's own fits carry their measured T).
fn step_mean_T_K(r: &RunData, step: i64) -> Option<f64> {
    use vegard_store::schema::aligned_col;
    let (mut sum, mut n) = (0.0, 0usize);
    r.aligned
        .for_each_slice_of(step, &[aligned_col::step, aligned_col::T_K], |t| {
            let steps = t.i64(aligned_col::step)?;
            let temps = t.f64(aligned_col::T_K)?;
            for (k, T) in steps.iter().zip(&temps) {
                if *k == step && T.is_finite() {
                    sum += T;
                    n += 1;
                }
            }
            Ok(())
        })
        .ok()?;
    (n > 0).then(|| sum / n as f64)
}

/// `30 °C`, or `32.5 °C` when the setpoint is not a whole degree.
fn t_C_text(T_K: f64) -> String {
    let c = T_K - ZERO_C_IN_K;
    if (c - c.round()).abs() < 0.05 {
        format!("{} °C", vegard_core::format::fixed(c, 0))
    } else {
        format!("{} °C", vegard_core::format::fixed(c, 1))
    }
}

/// The temperatures of a report's analysed steps. With two or more, the
/// report is organised by temperature: overlays coloured cold-to-hot,
/// tables led by the temperature and sorted by it, titles naming it.
/// A sweep's variable today is always the stage temperature; the label is
/// the plan's setpoint (what the user asked for, stable from run to run),
/// the measured mean stands beside it in the tables.
pub(crate) struct Temps {
    /// Distinct setpoints, K, ascending.
    setpoints_K: Vec<f64>,
    /// Measured mean T of each CV step `(run folder, step)`, K, read once
    /// (three tables show it) and only when the report is organised by
    /// temperature: the aligned table is read a step at a time.
    cv_measured_K: Vec<((PathBuf, i64), Option<f64>)>,
}

impl Temps {
    fn of(runs: &[RunData]) -> Temps {
        let v = distinct_setpoints_K(runs);
        let mut t = Temps {
            setpoints_K: v,
            cv_measured_K: Vec::new(),
        };
        if t.sweep() {
            t.cv_measured_K = runs
                .iter()
                .flat_map(|r| {
                    r.analysis
                        .cv_steps
                        .iter()
                        .map(|c| ((r.dir.clone(), c.step), step_mean_T_K(r, c.step)))
                })
                .collect();
        }
        t
    }

    /// Organise by temperature: there is more than one.
    fn sweep(&self) -> bool {
        self.setpoints_K.len() >= 2
    }

    /// Place of a setpoint on the blue-to-red colour scale.
    fn color_pos(&self, T_K: f64) -> f64 {
        match (self.setpoints_K.first(), self.setpoints_K.last()) {
            (Some(lo), Some(hi)) if hi > lo => (T_K - lo) / (hi - lo),
            _ => 0.5,
        }
    }

    /// `25 °C to 65 °C (5 temperatures)`.
    fn span_text(&self) -> String {
        match (self.setpoints_K.first(), self.setpoints_K.last()) {
            (Some(lo), Some(hi)) => format!(
                "{} to {} ({} temperatures)",
                t_C_text(*lo),
                t_C_text(*hi),
                self.setpoints_K.len()
            ),
            _ => String::new(),
        }
    }

    /// Column heads a temperature-organised table starts with.
    fn head(&self) -> Vec<(&'static str, &'static str)> {
        if self.sweep() {
            vec![("T setpoint", "°C"), ("T measured", "°C")]
        } else {
            Vec::new()
        }
    }

    /// The cells under [`Self::head`] for one step.
    fn cells(&self, at: &At<'_, impl Sized>, measured_K: Option<f64>) -> Vec<Cell> {
        if !self.sweep() {
            return Vec::new();
        }
        vec![
            Cell::opt(at.setpoint_K.map(|t| t - ZERO_C_IN_K)),
            Cell::opt(
                measured_K
                    .filter(|t| t.is_finite())
                    .map(|t| t - ZERO_C_IN_K),
            ),
        ]
    }
}

/// The distinct setpoints of the analysed steps of `runs`, K, ascending.
fn distinct_setpoints_K(runs: &[RunData]) -> Vec<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .flat_map(|r| {
            let a = &r.analysis;
            a.cv_steps
                .iter()
                .map(|c| c.step)
                .chain(a.spectra.eis.iter().map(|e| e.step))
                .chain(a.spectra.esm.iter().map(|e| e.step))
                .filter_map(|k| setpoint_K(r, k))
                .collect::<Vec<f64>>()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() < SAME_SETPOINT_K);
    v
}

/// One analysed step of one run, with its temperature.
pub(crate) struct At<'a, T> {
    r: &'a RunData,
    item: &'a T,
    step: i64,
    setpoint_K: Option<f64>,
    /// `30 °C`, with the run or step added when another step of the same
    /// technique has the same setpoint (figure titles and legends).
    label: String,
}

/// The analysed steps of one technique over all runs: in run and plan
/// order, or, when the report is organised by temperature, sorted by
/// setpoint (steps without one last).
fn ordered<'a, T>(
    runs: &'a [RunData],
    temps: &Temps,
    items: impl Fn(&'a RunData) -> &'a [T],
    step_of: impl Fn(&T) -> i64,
) -> Vec<At<'a, T>> {
    let mut v: Vec<(usize, At<'a, T>)> = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        for item in items(r) {
            let step = step_of(item);
            v.push((
                k,
                At {
                    r,
                    item,
                    step,
                    setpoint_K: setpoint_K(r, step),
                    label: String::new(),
                },
            ));
        }
    }
    if temps.sweep() {
        v.sort_by(|(_, a), (_, b)| {
            let key = |x: &At<'a, T>| x.setpoint_K.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
    }
    let same = |a: &At<'a, T>, b: &At<'a, T>| match (a.setpoint_K, b.setpoint_K) {
        (Some(x), Some(y)) => (x - y).abs() < SAME_SETPOINT_K,
        (None, None) => true,
        _ => false,
    };
    let labels: Vec<String> = v
        .iter()
        .map(|(k, a)| {
            let base = a
                .setpoint_K
                .map_or_else(|| "no stage setpoint".to_owned(), t_C_text);
            let twins: Vec<&(usize, At<'a, T>)> = v
                .iter()
                .filter(|(_, b)| same(a, b) && !(std::ptr::eq(a.r, b.r) && a.step == b.step))
                .collect();
            let mut label = base;
            if twins.iter().any(|(j, _)| j != k) {
                label.push_str(&format!(", {}", a.r.name));
            }
            if twins.iter().any(|(j, _)| j == k) {
                label.push_str(&format!(", step {}", a.step));
            }
            label
        })
        .collect();
    v.into_iter()
        .zip(labels)
        .map(|((_, mut a), label)| {
            a.label = label;
            a
        })
        .collect()
}

/// A series coloured by its temperature on the overlay scale.
fn t_series(temps: &Temps, at_K: f64, mut s: Series) -> Series {
    s.color_scale = Some(temps.color_pos(at_K));
    s
}

/// Short frequency text: `1 kHz`, `10 Hz`, `0.1 Hz`.
fn f_text(f_Hz: f64) -> String {
    if f_Hz >= 1e3 {
        format!("{} kHz", vegard_core::format::sig(f_Hz / 1e3, 3))
    } else {
        format!("{} Hz", vegard_core::format::sig(f_Hz, 3))
    }
}

/// Smallest and largest finite value (`None` when there is none): the
/// extent of a series for axes, shifts and tick ranges.
fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// Labels for a spectrum's points: the frequency beside the point nearest
/// each whole decade (within a third of a decade), `""` elsewhere, so a
/// Nyquist plot, which has no frequency axis, can still be read in Hz.
fn decade_labels(f_Hz: &[f64]) -> Vec<String> {
    let mut labels = vec![String::new(); f_Hz.len()];
    let logs: Vec<Option<f64>> = f_Hz
        .iter()
        .map(|&f| (f > 0.0 && f.is_finite()).then(|| f.log10()))
        .collect();
    let Some((lo, hi)) = finite_range(logs.iter().flatten().copied()) else {
        return labels;
    };
    for d in (lo - 0.34).ceil() as i32..=(hi + 0.34).floor() as i32 {
        let nearest = logs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, (v - f64::from(d)).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, dist)) = nearest
            && dist < 0.34
            && labels[i].is_empty()
        {
            labels[i] = f_text(f_Hz[i]);
        }
    }
    labels
}

// ---------------------------------------------------------------- metadata

fn metadata_section(runs: &[RunData], spec: &ReportSpec) -> Section {
    let mut s = section("metadata", "Run");
    for r in runs {
        let m = &r.meta;
        let bench_name = m
            .bench
            .get("bench")
            .and_then(|b| b.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned();
        let run = &r.recipe.run;
        let duration_s = r
            .events
            .iter()
            .rev()
            .find(|e| e["kind"] == "run_end")
            .and_then(|e| e["t_ns"].as_f64())
            // Event stamps are host ns; experiment time runs `speed` faster.
            .map(|t| t * 1e-9 * m.time_acceleration);
        let mut t = table(
            format!("{}metadata", id_prefix(runs, r)),
            format!("{}run metadata", title_prefix(runs, r)),
            &[("field", ""), ("value", "")],
        );
        let mut row = |k: &str, v: Cell| t.rows.push(vec![Cell::text(k), v]);
        row("run folder", Cell::text(r.dir.display().to_string()));
        row(
            "recipe",
            Cell::text(format!("{} ({})", run.name, m.recipe_path)),
        );
        row(
            "bench",
            Cell::text(format!("{bench_name} ({})", m.bench_path)),
        );
        row("sample", Cell::text(run.sample.clone()));
        row("operator", Cell::text(run.operator.clone()));
        if !run.notes.is_empty() {
            row("notes", Cell::text(run.notes.clone()));
        }
        row("UTC start", Cell::text(m.utc_start.clone()));
        let status = match &m.reason {
            Some(why) => format!("{} ({why})", m.status),
            None => m.status.to_string(),
        };
        row("status", Cell::text(status));
        row(
            "software",
            Cell::text(format!("vegard {}", m.vegard_version)),
        );
        row("host", Cell::text(m.hostname.clone()));
        row("time acceleration", Cell::num(m.time_acceleration));
        row("duration (experiment time, s)", Cell::opt(duration_s));
        row("steps", Cell::num(r.recipe.plan().len() as f64));
        s.tables.push(t);

        let mut inst = table(
            format!("{}instruments", id_prefix(runs, r)),
            format!("{}instruments", title_prefix(runs, r)),
            &[
                ("role", ""),
                ("resource", ""),
                ("identification (*IDN?)", ""),
            ],
        );
        if let Some(start) = r.events.iter().find(|e| e["kind"] == "run_start") {
            for role in ["potentiostat", "deflection", "lockin", "temperature"] {
                let d = &start[role];
                if d.is_null() {
                    continue;
                }
                inst.rows.push(vec![
                    Cell::text(role),
                    Cell::text(d["resource"].as_str().unwrap_or("")),
                    Cell::text(d["idn"].as_str().unwrap_or("")),
                ]);
            }
        }
        if !inst.rows.is_empty() {
            s.tables.push(inst);
        }

        let markers: Vec<&serde_json::Value> =
            r.events.iter().filter(|e| e["kind"] == "marker").collect();
        if !markers.is_empty() {
            let mut t = table(
                format!("{}markers", id_prefix(runs, r)),
                format!("{}operator markers", title_prefix(runs, r)),
                &[("t", "s"), ("step", ""), ("note", "")],
            );
            for e in markers {
                t.rows.push(vec![
                    Cell::opt(e["t_ns"].as_f64().map(|t| t * 1e-9 * m.time_acceleration)),
                    Cell::opt(e["step"].as_f64()),
                    Cell::text(e["note"].as_str().unwrap_or("")),
                ]);
            }
            s.tables.push(t);
        }
    }
    s.text.push(
        "Steps are numbered from 0 in plan order, as in the data files' `step` column \
         (the progress lines of `vegard run` count from 1)."
            .to_owned(),
    );
    if let Some(f) = &spec.file {
        s.text.push(format!("Report spec: {f}."));
    }
    s
}

// ------------------------------------------------------------------ clocks

fn segments(r: &RunData) -> Vec<vegard_store::SegmentAlignment> {
    r.meta
        .alignment
        .as_ref()
        .map(|a| a.segments.clone())
        .unwrap_or_default()
}

fn clocks_section(runs: &[RunData]) -> Option<Section> {
    let mut s = section("clocks", "Clock alignment");
    for r in runs {
        let segs = segments(r);
        if segs.is_empty() {
            continue;
        }
        let method = r.meta.alignment.as_ref().map_or("", |a| a.method.as_str());
        let mut t = table(
            format!("{}clocks", id_prefix(runs, r)),
            format!("{}alignment per recording segment", title_prefix(runs, r)),
            &[
                ("segment", ""),
                ("step", ""),
                ("kind", ""),
                ("potentiostat drift", "ppm"),
                ("digitizer drift", "ppm"),
                ("alignment error (est.)", "ms"),
                ("digitizer interval", "ms"),
                ("potentiostat samples", ""),
                ("digitizer samples", ""),
                ("note", ""),
            ],
        );
        for g in segs {
            t.rows.push(vec![
                Cell::num(g.segment as f64),
                Cell::num(g.step as f64),
                Cell::text(step_kind(r, g.step)),
                Cell::num(g.potentiostat_drift_ppm),
                Cell::num(g.deflection_drift_ppm),
                Cell::num(g.alignment_error_estimate_s * 1e3),
                Cell::num(g.digitizer_sample_interval_s * 1e3),
                Cell::num(g.n_potentiostat as f64),
                Cell::num(g.n_deflection as f64),
                Cell::text(g.note.unwrap_or_default()),
            ]);
        }
        t.note = Some(format!("Method: {method}."));
        s.tables.push(t);
    }
    (!s.tables.is_empty()).then_some(s)
}

// -------------------------------------------------------------- timeseries

fn timeseries_section(runs: &[RunData], temps: &Temps, max_points: usize) -> Option<Section> {
    let mut s = section("timeseries", "Potential, current and deflection vs time");
    for r in runs {
        let ts = &r.timeseries;
        if ts.rows == 0 {
            continue;
        }
        let mk = |(x, y): &(Vec<f64>, Vec<f64>), label: &str, unit: &str, color: u8| {
            panel(
                axis("t", "s", Scale::Linear),
                axis(label, unit, Scale::Linear),
                vec![Series::new(
                    "",
                    SeriesKind::Line,
                    color,
                    x.clone(),
                    y.clone(),
                )],
            )
        };
        let mut panels = vec![
            mk(&ts.E, "E", "V", 0),
            mk(&ts.I_mA, "I", "mA", 1),
            mk(&ts.u, "u", "nm", 2),
        ];
        // Drawn only when T moved (a temperature series), as decided from
        // every finite T, not from the decimated trace.
        if ts.T_spread() > 0.5 {
            panels.push(mk(&ts.T, "T", "K", 4));
        }
        // Organised by temperature, the title says which the run covers;
        // the run's name moves to the caption.
        let run_temps = Temps {
            setpoints_K: distinct_setpoints_K(std::slice::from_ref(r)),
            cv_measured_K: Vec::new(),
        };
        let (title, which) = if temps.sweep() && !run_temps.setpoints_K.is_empty() {
            let span = if run_temps.sweep() {
                run_temps.span_text()
            } else {
                run_temps.setpoints_K.iter().map(|t| t_C_text(*t)).collect()
            };
            let which = if runs.len() > 1 {
                format!(" Run {}.", r.name)
            } else {
                String::new()
            };
            (format!("E, I and deflection u vs time at {span}"), which)
        } else {
            (
                format!("{}E, I and deflection u vs time", title_prefix(runs, r)),
                String::new(),
            )
        };
        s.figures.push(figure(
            format!("{}timeseries", id_prefix(runs, r)),
            title,
            Some(format!(
                "Aligned samples on the shared clock ({} rows), min-max decimated to at \
                 most {max_points} points per trace; gaps are steps without aligned samples \
                 (EIS, temperature changes).{which}",
                ts.rows
            )),
            panels,
        ));
    }
    (!s.figures.is_empty()).then_some(s)
}

// ---------------------------------------------------------------------- CV

/// Samples of one plan step, read from the aligned file (only that step's
/// columns a CV figure needs). A read error becomes one of the report's
/// failures, naming the run and step, rather than failing the whole
/// report: the other sections (and a campaign's other runs) still stand.
fn step_samples(
    runs: &[RunData],
    r: &RunData,
    step: i64,
    failures: &mut Vec<String>,
) -> Option<CvSamples> {
    match r.aligned.cv_samples(step) {
        Ok(d) => Some(d),
        Err(e) => {
            failures.push(format!(
                "{}step {step}: reading the aligned table: {e}",
                title_prefix(runs, r)
            ));
            None
        }
    }
}

/// The cycles a figure draws out of `ranges` ([`MAX_CYCLES`] at most), and
/// the caption sentence saying which when not all are: a day of cycles
/// drawn whole would be an unreadable figure and an absurd file.
fn chosen_cycles<T>(ranges: Vec<(i64, T)>) -> (Vec<(i64, T)>, Option<String>) {
    let n = ranges.len();
    let keep = select_cycles(n, MAX_CYCLES);
    if keep.len() == n {
        return (ranges, None);
    }
    let mut ranges: Vec<Option<(i64, T)>> = ranges.into_iter().map(Some).collect();
    let chosen: Vec<(i64, T)> = keep.iter().filter_map(|&k| ranges[k].take()).collect();
    let list: Vec<String> = chosen.iter().map(|(c, _)| c.to_string()).collect();
    let note = format!(
        " Cycles {} of {n} shown (the first, the last and evenly spaced between).",
        list.join(", ")
    );
    (chosen, Some(note))
}

/// `(x, y)` of one cycle, min-max decimated on `y` to at most
/// `max_points` when longer (a cycle of a slow CV sampled fast); `decimated`
/// is set when that happened, for the caption.
fn thin(x: Vec<f64>, y: Vec<f64>, max_points: usize, decimated: &mut bool) -> (Vec<f64>, Vec<f64>) {
    match minmax_indices(&y, max_points) {
        None => (x, y),
        Some(idx) => {
            *decimated = true;
            (
                idx.iter().map(|&i| x[i]).collect(),
                idx.iter().map(|&i| y[i]).collect(),
            )
        }
    }
}

fn decimated_note(decimated: bool, max_points: usize) -> String {
    if decimated {
        format!(
            " Cycles of more than {max_points} samples are min-max decimated to at most \
             {max_points} points."
        )
    } else {
        String::new()
    }
}

/// Consecutive runs of the same cycle number: `(cycle, range)`.
fn cycle_ranges(cycle: &[i64]) -> Vec<(i64, std::ops::Range<usize>)> {
    let mut out: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
    for (i, &c) in cycle.iter().enumerate() {
        match out.last_mut() {
            Some((last, r)) if *last == c => r.end = i + 1,
            _ => out.push((c, i..i + 1)),
        }
    }
    out
}

fn cv_section(
    runs: &[RunData],
    temps: &Temps,
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<Section> {
    let mut s = section("cv", "Cyclic voltammetry and charge");
    let cvs = ordered(runs, temps, |r| &r.analysis.cv_steps[..], |c| c.step);
    if temps.sweep()
        && let Some(f) = cv_overlay(runs, temps, &cvs, max_points, failures)
    {
        s.figures.push(f);
    }
    for at in &cvs {
        let (r, cv) = (at.r, at.item);
        let Some(d) = step_samples(runs, r, cv.step, failures) else {
            continue;
        };
        let (ranges, shown) = chosen_cycles(cycle_ranges(&d.cycle));
        let mut decimated = false;
        let series = ranges
            .into_iter()
            .map(|(c, rg)| {
                let (x, y) = thin(
                    d.E_V[rg.clone()].to_vec(),
                    d.I_A[rg].iter().map(|x| x * 1e3).collect(),
                    max_points,
                    &mut decimated,
                );
                Series::new(
                    format!("cycle {c}"),
                    SeriesKind::Line,
                    (c.rem_euclid(6)) as u8,
                    x,
                    y,
                )
            })
            .collect();
        drop(d);
        let title = if temps.sweep() {
            format!("CV at {}", at.label)
        } else {
            format!("{}CV, step {}", title_prefix(runs, r), cv.step)
        };
        s.figures.push(figure(
            format!("{}cv-step{}", id_prefix(runs, r), cv.step),
            title,
            Some(format!(
                "Current vs potential per cycle (IUPAC: anodic current positive){}.{}{}",
                step_note(runs, temps, at),
                shown.unwrap_or_default(),
                decimated_note(decimated, max_points)
            )),
            // Cathodic (negative) current at low E leaves the upper left free.
            vec![with_legend(
                panel(
                    axis("E", "V", Scale::Linear),
                    axis("I", "mA", Scale::Linear),
                    series,
                ),
                Legend::UpperLeft,
            )],
        ));
    }
    if s.figures.is_empty() {
        return None;
    }
    let mut head = temps.head();
    head.extend([
        ("run", ""),
        ("step", ""),
        ("Q total", "mC"),
        ("Q faradaic", "mC"),
        ("Q anodic", "mC"),
        ("Q cathodic", "mC"),
        ("C_dl", "µF"),
        ("C_dl source", ""),
        ("samples", ""),
    ]);
    let mut t = table("charge", "charge per CV step", &head);
    for at in &cvs {
        let (r, cv) = (at.r, at.item);
        let c = &cv.analysis.charge;
        let source = match cv.C_dl_eis_step {
            Some(k) => format!("EIS fit of step {k}"),
            // The name analysis.json uses (`vertex-jump`, `none`).
            None => serde_json::to_value(c.C_dl_source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        let mut row = temps.cells(at, cv_measured_K(temps, at));
        row.extend([
            Cell::text(r.name.clone()),
            Cell::num(cv.step as f64),
            Cell::num(c.Q_total_C * 1e3),
            Cell::num(c.Q_F_total_C * 1e3),
            Cell::num(c.Q_anodic_C * 1e3),
            Cell::num(c.Q_cathodic_C * 1e3),
            Cell::num(c.C_dl_F * 1e6),
            Cell::text(source),
            Cell::num(c.n_samples as f64),
        ]);
        t.rows.push(row);
    }
    s.tables.push(t);
    Some(s)
}

/// The measured temperature of a CV step, read only when the report shows
/// it (organised by temperature).
fn cv_measured_K<T>(temps: &Temps, at: &At<'_, T>) -> Option<f64> {
    temps
        .cv_measured_K
        .iter()
        .find(|((dir, step), _)| *dir == at.r.dir && *step == at.step)
        .and_then(|(_, t)| *t)
}

/// ` (run X, step 6)` for a caption once the title names the temperature
/// instead of the step: the reader can still find the data.
fn step_note<T>(runs: &[RunData], temps: &Temps, at: &At<'_, T>) -> String {
    if !temps.sweep() {
        return String::new();
    }
    if runs.len() > 1 {
        format!(" ({}, step {})", at.r.name, at.step)
    } else {
        format!(" (step {})", at.step)
    }
}

/// Figure caption sentence of an overlay: what the colours mean.
fn overlay_key(temps: &Temps) -> String {
    format!(
        " Colour encodes the stage setpoint, blue (cold) to red (hot), {}; the legend is the \
         key.",
        temps.span_text()
    )
}

/// The CVs of every temperature in one plot: each step's last cycle (the
/// one nearest steady state), coloured by temperature.
fn cv_overlay(
    runs: &[RunData],
    temps: &Temps,
    cvs: &[At<'_, vegard_pipeline::CvStepAnalysis>],
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<Figure> {
    let mut series = Vec::new();
    let mut decimated = false;
    for at in cvs {
        let Some(T) = at.setpoint_K else { continue };
        let Some(d) = step_samples(runs, at.r, at.step, failures) else {
            continue;
        };
        let Some((_, rg)) = cycle_ranges(&d.cycle).pop() else {
            continue;
        };
        let (x, y) = thin(
            d.E_V[rg.clone()].to_vec(),
            d.I_A[rg].iter().map(|x| x * 1e3).collect(),
            max_points,
            &mut decimated,
        );
        series.push(t_series(
            temps,
            T,
            Series::new(at.label.clone(), SeriesKind::Line, 0, x, y),
        ));
    }
    if series.len() < 2 {
        return None;
    }
    Some(figure(
        "cv-by-temperature".to_owned(),
        format!("CV at {}", temps.span_text()),
        Some(format!(
            "Current vs potential, the last cycle of each temperature's CV (IUPAC: anodic \
             current positive).{}{}",
            overlay_key(temps),
            decimated_note(decimated, max_points)
        )),
        vec![with_legend(
            panel(
                axis("E", "V", Scale::Linear),
                axis("I", "mA", Scale::Linear),
                series,
            ),
            Legend::UpperLeft,
        )],
    ))
}

// ------------------------------------------------------------- deformation

fn deformation_section(
    runs: &[RunData],
    temps: &Temps,
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<Section> {
    let mut s = section("deformation", "Deformation vs charge");
    let head = |cols: &[(&'static str, &'static str)]| {
        let mut h = temps.head();
        h.extend_from_slice(cols);
        h
    };
    let mut pooled = table(
        "kappa",
        "Vegard coefficient κ = du/dQ_F (pooled over cycles)",
        &head(&[
            ("run", ""),
            ("step", ""),
            ("κ", "nm/mC"),
            ("κ 95 % interval", "nm/mC"),
            ("R²", ""),
            ("R² vs charge", ""),
            ("drift", "nm/s"),
            ("cycles", ""),
            ("points", ""),
            ("C_dl", "µF"),
        ]),
    );
    let mut per_cycle = table(
        "kappa-per-cycle",
        "κ per cycle",
        &head(&[
            ("run", ""),
            ("step", ""),
            ("cycle", ""),
            ("κ", "nm/mC"),
            ("R²", ""),
            ("drift", "nm/s"),
            ("Q_F swing", "mC"),
            ("u swing", "nm"),
            ("points", ""),
        ]),
    );
    let mut halves = table(
        "kappa-per-sweep",
        "κ per monotonic sweep (pooled drift removed)",
        &head(&[
            ("run", ""),
            ("step", ""),
            ("cycle", ""),
            ("direction", ""),
            ("E from", "V"),
            ("E to", "V"),
            ("κ", "nm/mC"),
            ("R²", ""),
            ("points", ""),
        ]),
    );
    let cvs = ordered(runs, temps, |r| &r.analysis.cv_steps[..], |c| c.step);
    if temps.sweep()
        && let Some(f) = loops_overlay(runs, temps, &cvs, max_points, failures)
    {
        s.figures.push(f);
    }
    for at in &cvs {
        let (r, cv) = (at.r, at.item);
        let tcells = temps.cells(at, cv_measured_K(temps, at));
        let with_t = |cells: Vec<Cell>| {
            let mut row = tcells.clone();
            row.extend(cells);
            row
        };
        let dvq = &cv.analysis.deformation_vs_charge;
        pooled.rows.push(with_t(vec![
            Cell::text(r.name.clone()),
            Cell::num(cv.step as f64),
            Cell::num_se(dvq.slope_nm_per_mC, dvq.slope_se_nm_per_mC),
            Cell::text(format!(
                "[{}, {}]",
                format_number(dvq.slope_ci95_nm_per_mC[0], None),
                format_number(dvq.slope_ci95_nm_per_mC[1], None)
            )),
            Cell::num(dvq.r2),
            Cell::num(dvq.r2_vs_charge),
            Cell::num(dvq.drift_nm_per_s),
            Cell::num(dvq.n_cycles as f64),
            Cell::num(dvq.n_points as f64),
            Cell::num(dvq.C_dl_F * 1e6),
        ]));
        for c in &dvq.per_cycle {
            per_cycle.rows.push(with_t(vec![
                Cell::text(r.name.clone()),
                Cell::num(cv.step as f64),
                Cell::num(c.cycle as f64),
                Cell::num_se(c.slope_nm_per_mC, c.slope_se_nm_per_mC),
                Cell::num(c.r2),
                Cell::num(c.drift_nm_per_s),
                Cell::num(c.Q_F_swing_mC),
                Cell::num(c.deflection_swing_nm),
                Cell::num(c.n_points as f64),
            ]));
        }
        for h in &dvq.per_half_cycle {
            halves.rows.push(with_t(vec![
                Cell::text(r.name.clone()),
                Cell::num(cv.step as f64),
                Cell::num(h.cycle as f64),
                Cell::text(format!("{:?}", h.direction).to_lowercase()),
                Cell::num(h.E_from_V),
                Cell::num(h.E_to_V),
                Cell::num_se(h.slope_nm_per_mC, h.slope_se_nm_per_mC),
                Cell::num(h.r2),
                Cell::num(h.n_points as f64),
            ]));
        }
        if let Some(f) = loops_figure(runs, temps, at, dvq, max_points, failures) {
            s.figures.push(f);
        }
    }
    if pooled.rows.is_empty() {
        return None;
    }
    // With at most one cycle per step, κ per cycle is κ pooled, row for row.
    let one_cycle_each = cvs
        .iter()
        .all(|at| at.item.analysis.deformation_vs_charge.per_cycle.len() <= 1);
    if one_cycle_each {
        pooled.note = Some(
            "One cycle per step: κ per cycle would repeat this table and is not shown.".to_owned(),
        );
    }
    s.tables.push(pooled);
    if !one_cycle_each {
        s.tables.push(per_cycle);
    }
    if !halves.rows.is_empty() {
        s.tables.push(halves);
    }
    Some(s)
}

/// One step's analysed cycles as u vs Q_F, each with the pooled drift and
/// its own means removed, for the loop figures.
struct LoopCycles {
    /// `(cycle, Q_F - mean (mC), u - mean (nm))`, at most [`MAX_CYCLES`].
    cycles: Vec<(i64, Vec<f64>, Vec<f64>)>,
    /// Range of the centred charge over the drawn cycles, mC.
    q_range_mC: (f64, f64),
    /// Caption sentence naming the cycles drawn, when not all.
    shown: Option<String>,
    decimated: bool,
}

fn loop_cycles(
    runs: &[RunData],
    r: &RunData,
    step: i64,
    dvq: &vegard_analysis::DeformationVsCharge,
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<LoopCycles> {
    let d = step_samples(runs, r, step, failures)?;
    let q = vegard_analysis::faradaic_charge_C(&d.t_s, &d.E_V, &d.I_A, dvq.C_dl_F).ok()?;
    let t0 = d.t_s.first().copied().unwrap_or(0.0);
    let (mut qmin, mut qmax) = (f64::INFINITY, f64::NEG_INFINITY);
    let analysed: BTreeSet<i64> = dvq.per_cycle.iter().map(|p| p.cycle).collect();
    let (ranges, shown) = chosen_cycles(
        cycle_ranges(&d.cycle)
            .into_iter()
            .filter(|(c, _)| analysed.contains(c))
            .collect(),
    );
    let mut decimated = false;
    let mut cycles = Vec::new();
    for (c, rg) in ranges {
        let qc: Vec<f64> = q[rg.clone()].iter().map(|x| x * 1e3).collect();
        let uc: Vec<f64> = rg
            .clone()
            .map(|i| d.deflection_nm[i] - dvq.drift_nm_per_s * (d.t_s[i] - t0))
            .collect();
        let pairs = qc
            .iter()
            .zip(&uc)
            .filter(|(a, b)| a.is_finite() && b.is_finite());
        let n = pairs.clone().count() as f64;
        if n == 0.0 {
            continue;
        }
        let q_mean = pairs.clone().map(|(a, _)| a).sum::<f64>() / n;
        let u_mean = pairs.map(|(_, b)| b).sum::<f64>() / n;
        let x: Vec<f64> = qc.iter().map(|v| v - q_mean).collect();
        let y: Vec<f64> = uc.iter().map(|v| v - u_mean).collect();
        for v in x.iter().filter(|v| v.is_finite()) {
            qmin = qmin.min(*v);
            qmax = qmax.max(*v);
        }
        let (x, y) = thin(x, y, max_points, &mut decimated);
        cycles.push((c, x, y));
    }
    (!cycles.is_empty()).then_some(LoopCycles {
        cycles,
        q_range_mC: (qmin, qmax),
        shown,
        decimated,
    })
}

/// u vs Q_F per cycle with the pooled drift and each cycle's offset
/// removed, so every cycle should lie on the one fitted line u = κ Q_F.
/// Of many analysed cycles only [`MAX_CYCLES`] are drawn (the caption says
/// which); the charge is still integrated over the whole step.
fn loops_figure(
    runs: &[RunData],
    temps: &Temps,
    at: &At<'_, vegard_pipeline::CvStepAnalysis>,
    dvq: &vegard_analysis::DeformationVsCharge,
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<Figure> {
    let (r, step) = (at.r, at.step);
    let lc = loop_cycles(runs, r, step, dvq, max_points, failures)?;
    let kappa = dvq.slope_nm_per_mC;
    let (qmin, qmax) = lc.q_range_mC;
    let mut series: Vec<Series> = lc
        .cycles
        .into_iter()
        .map(|(c, x, y)| {
            Series::new(
                format!("cycle {c}"),
                SeriesKind::Line,
                (c.rem_euclid(6)) as u8,
                x,
                y,
            )
        })
        .collect();
    series.push(Series::new(
        format!("fit κ = {kappa:.4} nm/mC"),
        SeriesKind::Dashed,
        BLACK,
        vec![qmin, qmax],
        vec![kappa * qmin, kappa * qmax],
    ));
    let title = if temps.sweep() {
        format!("Deflection vs faradaic charge at {}", at.label)
    } else {
        format!(
            "{}deflection vs faradaic charge, step {step}",
            title_prefix(runs, r)
        )
    };
    Some(figure(
        format!("{}loops-step{step}", id_prefix(runs, r)),
        title,
        Some(format!(
            "Each cycle's deflection with the pooled drift ({} nm/s) removed, centred on \
             the cycle's mean; the dashed line is the pooled fit κ = {} nm/mC \
             (C_dl = {} µF){}.{}{}",
            format_number(dvq.drift_nm_per_s, None),
            format_number(kappa, Some(dvq.slope_se_nm_per_mC)),
            format_number(dvq.C_dl_F * 1e6, None),
            step_note(runs, temps, at),
            lc.shown.unwrap_or_default(),
            decimated_note(lc.decimated, max_points)
        )),
        // The line runs from corner to corner; the legend takes a free one.
        vec![with_legend(
            panel(
                axis("Q_F − mean", "mC", Scale::Linear),
                axis("u − mean", "nm", Scale::Linear),
                series,
            ),
            if kappa < 0.0 {
                Legend::UpperRight
            } else {
                Legend::UpperLeft
            },
        )],
    ))
}

/// A round step (1, 2 or 5 times a power of ten) at or above `x`; 1 for
/// nothing to step over.
fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|v| *v >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag)
}

/// The u-Q_F loops of every temperature in one plot: each step's last
/// analysed cycle and its pooled fit (dashed, same colour), so a κ that
/// changes with temperature shows as a change of slope.
fn loops_overlay(
    runs: &[RunData],
    temps: &Temps,
    cvs: &[At<'_, vegard_pipeline::CvStepAnalysis>],
    max_points: usize,
    failures: &mut Vec<String>,
) -> Option<Figure> {
    // (T, label, x, y, kappa) of each temperature's last analysed cycle.
    let mut loops = Vec::new();
    let mut decimated = false;
    for at in cvs {
        let Some(T) = at.setpoint_K else { continue };
        let dvq = &at.item.analysis.deformation_vs_charge;
        let Some(mut lc) = loop_cycles(runs, at.r, at.step, dvq, max_points, failures) else {
            continue;
        };
        let Some((_, x, y)) = lc.cycles.pop() else {
            continue;
        };
        decimated |= lc.decimated;
        loops.push((T, at.label.clone(), x, y, dvq.slope_nm_per_mC));
    }
    let n_temps = loops.len();
    // Where κ does not depend on temperature (pure Vegard strain) the
    // loops coincide and the hottest would hide the others: each is
    // shifted up by a fixed step, cold at the bottom, so all stay visible
    // and a change of slope still reads as one.
    let span = |v: &[f64]| finite_range(v.iter().copied()).map_or(0.0, |(lo, hi)| hi - lo);
    let u_span = loops.iter().map(|l| span(&l.3)).fold(0.0, f64::max);
    let shift_nm = nice_step(0.4 * u_span);
    let q_range = finite_range(loops.iter().flat_map(|l| l.2.iter().copied()));
    let mut series = Vec::new();
    let mut kappa_sign = 0.0;
    for (k, (T, label, x, y, kappa)) in loops.into_iter().enumerate() {
        let off = shift_nm * k as f64;
        let q_span = finite_range(x.iter().copied()).filter(|(lo, hi)| hi > lo);
        kappa_sign += kappa.signum();
        series.push(t_series(
            temps,
            T,
            Series::new(
                label,
                SeriesKind::Line,
                0,
                x,
                y.iter().map(|v| v + off).collect(),
            ),
        ));
        if let Some((qmin, qmax)) = q_span.filter(|_| kappa.is_finite()) {
            series.push(t_series(
                temps,
                T,
                Series::new(
                    "",
                    SeriesKind::Dashed,
                    0,
                    vec![qmin, qmax],
                    vec![kappa * qmin + off, kappa * qmax + off],
                ),
            ));
        }
    }
    if n_temps < 2 {
        return None;
    }
    // The lines span the charge axis at every height: a column on the
    // right is kept free for the legend.
    let q_axis = Axis {
        range: q_range.filter(|(lo, hi)| hi > lo).map(|(q_lo, q_hi)| {
            let span = q_hi - q_lo;
            [q_lo - 0.05 * span, q_hi + 0.35 * span]
        }),
        ..axis("Q_F − mean", "mC", Scale::Linear)
    };
    Some(figure(
        "loops-by-temperature".to_owned(),
        format!("Deflection vs faradaic charge at {}", temps.span_text()),
        Some(format!(
            "The last analysed cycle of each temperature, with that step's pooled drift \
             removed and centred on its mean, then shifted up by {} nm per temperature \
             (coldest at 0) so loops that coincide stay visible; dashed: the step's pooled \
             fit u = κ Q_F.{}{}",
            format_number(shift_nm, None),
            overlay_key(temps),
            decimated_note(decimated, max_points)
        )),
        vec![with_legend(
            panel(
                q_axis,
                axis("u − mean + shift", "nm", Scale::Linear),
                series,
            ),
            // Shifted up, falling lines end lowest on the right.
            if kappa_sign < 0.0 {
                Legend::UpperRight
            } else {
                Legend::LowerRight
            },
        )],
    ))
}

// --------------------------------------------------------------- harmonics

fn harmonics_section(runs: &[RunData], temps: &Temps) -> Option<Section> {
    let mut s = section("harmonics", "Nonlinearity of the strain response");
    let mut head = temps.head();
    head.extend([
        ("run", ""),
        ("step", ""),
        ("κ at Q_F = 0", "nm/mC"),
        ("κ₂", "nm/mC²"),
        ("β", "nm/V"),
        ("γ", "nm/V²"),
        ("λ", "nm/mA"),
        ("slope change", "%"),
        ("THD u", "%"),
        ("THD Q_F", "%"),
        ("lag u after Q_F", "ms"),
        ("R²", ""),
    ]);
    let mut reg = table(
        "regression",
        "u = κQ + κ₂Q² + βE + γE² + λ dQ/dt + drift",
        &head,
    );
    for st in ordered(runs, temps, |r| &r.analysis.cv_steps[..], |c| c.step) {
        let (r, cv) = (st.r, st.item);
        let Some(nl) = &cv.analysis.nonlinearity else {
            continue;
        };
        let g = &nl.regression;
        let mut row = temps.cells(&st, cv_measured_K(temps, &st));
        row.extend([
            Cell::text(r.name.clone()),
            Cell::num(cv.step as f64),
            Cell::num_se(g.kappa_at_Q0_nm_per_mC, g.kappa_at_Q0_se_nm_per_mC),
            Cell::num_se(g.kappa2_nm_per_mC2, g.kappa2_se_nm_per_mC2),
            Cell::num_se(g.beta_nm_per_V, g.beta_se_nm_per_V),
            Cell::num_se(g.gamma_nm_per_V2, g.gamma_se_nm_per_V2),
            Cell::num_se(g.rate_nm_per_mA, g.rate_se_nm_per_mA),
            Cell::num(100.0 * g.slope_change_fraction),
            Cell::num(100.0 * nl.thd_u),
            Cell::num(100.0 * nl.thd_Q_F),
            Cell::num(nl.lag_s * 1e3),
            Cell::num(g.r2),
        ]);
        reg.rows.push(row);
        let what = if temps.sweep() {
            format!("at {}", st.label)
        } else {
            format!("{}step {}", title_prefix(runs, r), cv.step)
        };
        let mut h = table(
            format!("{}harmonics-step{}", id_prefix(runs, r), cv.step),
            if temps.sweep() {
                format!("harmonics {what}")
            } else {
                format!("{}harmonics, step {}", title_prefix(runs, r), cv.step)
            },
            &[
                ("n", ""),
                ("f", "Hz"),
                ("|u_n|", "nm"),
                ("|Q_F,n|", "mC"),
                ("|E_n|", "V"),
                ("|κ_n|", "nm/mC"),
                ("u_n from charge", "nm"),
                ("u_n not from charge", "nm"),
                ("noise", "nm"),
            ],
        );
        for row in &nl.harmonics {
            h.rows.push(vec![
                Cell::num(row.n as f64),
                Cell::num(row.f_Hz),
                Cell::num(row.u_nm.amplitude()),
                Cell::num(row.Q_F_mC.amplitude()),
                Cell::num(row.E_V.amplitude()),
                Cell::opt(row.kappa_n_nm_per_mC),
                Cell::num(row.u_from_charge_nm),
                Cell::num(row.u_not_from_charge_nm),
                Cell::num(row.u_noise_nm),
            ]);
        }
        s.tables.push(h);
        let first = |f: &dyn Fn(&vegard_analysis::HarmonicRow) -> f64| {
            nl.harmonics.iter().find(|h| h.n == 1).map_or(f64::NAN, f)
        };
        let (u1, q1, e1) = (
            first(&|h| h.u_nm.amplitude()),
            first(&|h| h.Q_F_mC.amplitude()),
            first(&|h| h.E_V.amplitude()),
        );
        let n: Vec<f64> = nl.harmonics.iter().map(|h| h.n as f64).collect();
        let rel = |f: &dyn Fn(&vegard_analysis::HarmonicRow) -> f64, ref1: f64| {
            nl.harmonics
                .iter()
                .map(|h| f(h) / ref1)
                .collect::<Vec<f64>>()
        };
        // Side by side at each n (the x axis is categorical), so u
        // and Q_F stay visible where they coincide, as they should.
        let at = |dx: f64| n.iter().map(|v| v + dx).collect::<Vec<f64>>();
        let series = vec![
            Series::new(
                "u",
                SeriesKind::Points,
                0,
                at(-0.15),
                rel(&|h| h.u_nm.amplitude(), u1),
            ),
            Series::new(
                "Q_F",
                SeriesKind::Points,
                1,
                at(-0.05),
                rel(&|h| h.Q_F_mC.amplitude(), q1),
            ),
            Series::new(
                "E",
                SeriesKind::Points,
                2,
                at(0.05),
                rel(&|h| h.E_V.amplitude(), e1),
            ),
            Series::new(
                "u not explained by charge",
                SeriesKind::Points,
                3,
                at(0.15),
                rel(&|h| h.u_not_from_charge_nm, u1),
            ),
            Series::new(
                "noise floor of u",
                SeriesKind::Dashed,
                BLACK,
                at(0.0),
                rel(&|h| h.u_noise_nm, u1),
            ),
        ];
        let n_max = n.iter().copied().fold(1.0, f64::max);
        s.figures.push(figure(
            format!("{}harmonics-step{}", id_prefix(runs, r), cv.step),
            if temps.sweep() {
                format!("Harmonic amplitudes {what}")
            } else {
                format!(
                    "{}harmonic amplitudes, step {}",
                    title_prefix(runs, r),
                    cv.step
                )
            },
            Some(format!(
                "|X_n| / |X_1| over {} whole period(s) of {:.2} s{}. For pure Vegard strain u \
                     follows Q_F at every n and the part of u not explained by charge stays at \
                     the noise floor.",
                nl.n_periods,
                nl.period_s,
                step_note(runs, temps, &st)
            )),
            vec![panel(
                // Room on the right for the legend; n is an order, so
                // every tick is a harmonic that was analysed.
                Axis {
                    range: Some([0.5, n_max + 2.6]),
                    ticks: Some(n.clone()),
                    ..axis("harmonic n", "", Scale::Linear)
                },
                axis("|X_n| / |X_1|", "", Scale::Log),
                series,
            )],
        ));
        for f in &nl.findings {
            s.text
                .push(format!("{}step {}: {f}", title_prefix(runs, r), cv.step));
        }
    }
    if reg.rows.is_empty() {
        return None;
    }
    s.tables.insert(0, reg);
    Some(s)
}

// --------------------------------------------------------------------- EIS

/// Log-spaced frequencies spanning the data, for model curves.
fn f_grid(f: &[f64], per_decade: f64) -> Vec<f64> {
    let lo = f
        .iter()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let hi = f.iter().copied().fold(0.0, f64::max);
    if !(lo.is_finite() && hi > lo) {
        return f.to_vec();
    }
    let n = ((hi / lo).log10() * per_decade).ceil().max(2.0) as usize;
    (0..=n)
        .map(|k| lo * (hi / lo).powf(k as f64 / n as f64))
        .collect()
}

/// Rows of a table's `step` column that belong to `step`.
fn rows_of(steps: &[i64], step: i64) -> Vec<usize> {
    (0..steps.len()).filter(|&i| steps[i] == step).collect()
}

fn eis_model(fit: &EisFit, f: &[f64]) -> Option<Vec<C64>> {
    let c = Circuit::parse(&fit.circuit).ok()?;
    c.impedance_spectrum(&fit.values(), f).ok()
}

fn eis_section(runs: &[RunData], temps: &Temps) -> Option<Section> {
    let mut s = section("eis", "Impedance spectroscopy");
    // One table of every parameter of the (same) circuit across steps.
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for e in &r.analysis.spectra.eis {
            for (n, _) in &e.fit.parameters {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    // Units from the element kinds of the circuit that was fitted.
    let units: Vec<(String, &str)> = runs
        .iter()
        .flat_map(|r| &r.analysis.spectra.eis)
        .filter_map(|e| Circuit::parse(&e.fit.circuit).ok())
        .flat_map(|c| {
            let mut out = Vec::new();
            for el in c.elements() {
                for (k, u) in el.kind.param_units().iter().enumerate() {
                    if let Some(name) = c.param_names().get(el.first_param + k) {
                        out.push((name.clone(), *u));
                    }
                }
            }
            out
        })
        .collect();
    let unit_of = |n: &str| units.iter().find(|(p, _)| p == n).map_or("", |(_, u)| *u);
    let mut head: Vec<(String, String)> = temps
        .head()
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    head.push(("run".into(), String::new()));
    head.push(("step".into(), String::new()));
    // Organised by temperature, the measured T leads the row in °C.
    if !temps.sweep() {
        head.push(("T".into(), "K".into()));
    }
    for n in &names {
        head.push((n.clone(), unit_of(n).to_owned()));
    }
    head.push(("rmse".into(), "Ω".into()));
    head.push(("KK max residual".into(), "%".into()));
    let cols: Vec<(&str, &str)> = head.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut t = table("eis-fits", "fitted circuit parameters", &cols);
    let fits = ordered(runs, temps, |r| &r.analysis.spectra.eis[..], |e| e.step);
    let mut overlay = Overlay::default();
    let mut per_step = Vec::new();
    for at in &fits {
        let (r, e) = (at.r, at.item);
        let Some(data) = &r.eis else { continue };
        let (f, zr, zi) = (&data.f_Hz, &data.Z_re_ohm, &data.Z_im_ohm);
        let mut row = temps.cells(at, Some(e.T_K));
        row.extend([Cell::text(r.name.clone()), Cell::num(e.step as f64)]);
        if !temps.sweep() {
            row.push(Cell::num(e.T_K));
        }
        for n in &names {
            row.push(match (e.fit.get(n), e.fit.stderr_of(n)) {
                (Some(v), Some(se)) => Cell::num_se(v, se),
                (Some(v), None) => Cell::num(v),
                _ => Cell::text(""),
            });
        }
        row.push(Cell::num(e.fit.rmse_ohm));
        row.push(Cell::opt(e.kk.as_ref().map(|k| 100.0 * k.max_abs_residual)));
        t.rows.push(row);

        let idx = rows_of(&data.step, e.step);
        let ff: Vec<f64> = idx.iter().map(|&i| f[i]).collect();
        let (dre, dim): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (zr[i], zi[i])).unzip();
        let grid = f_grid(&ff, 20.0);
        let Some(model) = eis_model(&e.fit, &grid) else {
            continue;
        };
        let label = if temps.sweep() {
            at.label.clone()
        } else {
            format!("{}step {}, {:.1} K", title_prefix(runs, r), e.step, e.T_K)
        };
        let fit_name = format!("fit {}", e.fit.circuit);
        let nyq_data = |name: &str| Series {
            labels: Some(decade_labels(&ff)),
            ..Series::new(
                name,
                SeriesKind::Points,
                EIS_COLOR,
                dre.clone(),
                dim.iter().map(|v| -v).collect(),
            )
        };
        let nyq_fit = |name: &str| {
            Series::new(
                name,
                SeriesKind::Line,
                BLACK,
                model.iter().map(|z| z.re).collect(),
                model.iter().map(|z| -z.im).collect(),
            )
        };
        let mag: Vec<f64> = dre.iter().zip(&dim).map(|(a, b)| a.hypot(*b)).collect();
        let ph: Vec<f64> = dre
            .iter()
            .zip(&dim)
            .map(|(&a, &b)| phase_deg(C64::new(a, b)))
            .collect();
        let mag_data =
            |name: &str| Series::new(name, SeriesKind::Points, EIS_COLOR, ff.clone(), mag.clone());
        let mag_fit = |name: &str| {
            Series::new(
                name,
                SeriesKind::Line,
                BLACK,
                grid.clone(),
                model.iter().map(|z| z.norm()).collect(),
            )
        };
        let ph_data =
            |name: &str| Series::new(name, SeriesKind::Points, EIS_COLOR, ff.clone(), ph.clone());
        let ph_fit = |name: &str| {
            Series::new(
                name,
                SeriesKind::Line,
                BLACK,
                grid.clone(),
                model.iter().map(|z| phase_deg(*z)).collect(),
            )
        };
        if let (true, Some(T)) = (temps.sweep(), at.setpoint_K) {
            let tc = |x: Series| t_series(temps, T, x);
            overlay
                .nyquist
                .push((tc(nyq_data(&at.label)), tc(nyq_fit(""))));
            overlay.top.push((tc(mag_data(&at.label)), tc(mag_fit(""))));
            overlay
                .bottom
                .push((tc(ph_data(&at.label)), tc(ph_fit(""))));
        }
        // The diffusion tail rises at the right: the upper left is free.
        let nyquist = Panel {
            equal_aspect: true,
            legend: Legend::UpperLeft,
            ..panel(
                axis("Z'", "Ω", Scale::Linear),
                axis("−Z''", "Ω", Scale::Linear),
                vec![nyq_data("data"), nyq_fit(&fit_name)],
            )
        };
        let note = step_note(runs, temps, at);
        per_step.push(figure(
            format!("{}nyquist-step{}", id_prefix(runs, r), e.step),
            if temps.sweep() {
                format!("Nyquist at {label}")
            } else {
                format!("Nyquist, {label}")
            },
            Some(format!(
                "Measured impedance (points, the frequency beside the point nearest each \
                 decade) and the fitted circuit{note}."
            )),
            vec![nyquist],
        ));
        // |Z| falls and the phase rises towards high frequency.
        let bode = vec![
            spectrum_panel(
                axis("|Z|", "Ω", Scale::Log),
                mag_data("data"),
                mag_fit(&fit_name),
                Legend::LowerLeft,
            ),
            spectrum_panel(
                axis("phase", "°", Scale::Linear),
                ph_data("data"),
                ph_fit(&fit_name),
                Legend::LowerRight,
            ),
        ];
        per_step.push(figure(
            format!("{}bode-step{}", id_prefix(runs, r), e.step),
            if temps.sweep() {
                format!("Bode at {label}")
            } else {
                format!("Bode, {label}")
            },
            (!note.is_empty()).then(|| format!("Measured impedance and the fitted circuit{note}.")),
            bode,
        ));
    }
    if t.rows.is_empty() {
        return None;
    }
    if overlay.nyquist.len() >= 2 {
        let key = overlay_key(temps);
        let span = temps.span_text();
        // Frequencies on the coldest (largest) spectrum only: on all of
        // them the labels would cover the data.
        let nyq: Vec<Series> = overlay
            .nyquist
            .into_iter()
            .enumerate()
            .flat_map(|(k, (mut d, fit))| {
                if k != 0 {
                    d.labels = None;
                }
                [d, fit]
            })
            .collect();
        s.figures.push(figure(
            "nyquist-by-temperature".to_owned(),
            format!("Nyquist at {span}"),
            Some(format!(
                "Measured impedance (points) and fitted circuit (line, same colour) per \
                 temperature, equal scaling of both axes; frequencies are marked at each decade \
                 on the coldest spectrum.{key}"
            )),
            vec![Panel {
                equal_aspect: true,
                legend: Legend::UpperLeft,
                ..panel(
                    axis("Z'", "Ω", Scale::Linear),
                    axis("−Z''", "Ω", Scale::Linear),
                    nyq,
                )
            }],
        ));
        let flat = |v: Vec<(Series, Series)>| v.into_iter().flat_map(|(a, b)| [a, b]).collect();
        s.figures.push(figure(
            "bode-by-temperature".to_owned(),
            format!("Bode at {span}"),
            Some(format!(
                "|Z| and phase: measured (points) and fitted circuit (line, same colour) per \
                 temperature.{key}"
            )),
            vec![
                with_legend(
                    panel(
                        axis("f", "Hz", Scale::Log),
                        axis("|Z|", "Ω", Scale::Log),
                        flat(overlay.top),
                    ),
                    Legend::LowerLeft,
                ),
                with_legend(
                    panel(
                        axis("f", "Hz", Scale::Log),
                        axis("phase", "°", Scale::Linear),
                        flat(overlay.bottom),
                    ),
                    Legend::LowerRight,
                ),
            ],
        ));
    }
    s.figures.extend(per_step);
    let weighting = runs
        .iter()
        .find_map(|r| r.analysis.spectra.eis.first().map(|e| e.fit.weighting))
        .unwrap_or_default();
    t.note = Some(format!(
        "Fitted by complex nonlinear least squares ({} weighting); ± is one standard \
         error from the Jacobian. KK: largest lin-KK residual relative to |Z|.",
        format!("{weighting:?}").to_lowercase()
    ));
    s.tables.insert(0, t);
    Some(s)
}

/// The (data, fit) series pairs of an overlay figure, per temperature.
#[derive(Default)]
struct Overlay {
    nyquist: Vec<(Series, Series)>,
    /// Upper panel (|Z|, |u/E|) and lower panel (phase).
    top: Vec<(Series, Series)>,
    bottom: Vec<(Series, Series)>,
}

// --------------------------------------------------------------------- ESM

/// The ESM model `u/E = A H(2 pi f tau) g(f) + B` at `f`, with the drive
/// factor `g = V_film / E` computed from the EIS fit's impedance at the same
/// frequency (1 for an uncorrected fit).
fn esm_model(fit: &EsmFit, cell: Option<(&EisFit, CellCorrection)>, f_Hz: f64) -> C64 {
    let w = std::f64::consts::TAU * f_Hz;
    let h = film_transfer_H(w * fit.tau_s);
    let h = C64::new(h.re, h.im);
    let g = match cell {
        Some((eis, c)) => eis_model(eis, &[f_Hz])
            .and_then(|z| z.first().copied())
            .map_or(C64::new(f64::NAN, f64::NAN), |z| {
                let e = C64::new(1.0, 0.0);
                let i = e / z;
                let v_int = e - i * c.R_s_ohm;
                let i_f = i - C64::new(0.0, w * c.C_dl_F) * v_int;
                v_int - i_f * c.R_ct_ohm
            }),
        None => C64::new(1.0, 0.0),
    };
    h * g * fit.A_nm_per_V + C64::new(fit.B_nm_per_V, 0.0)
}

fn esm_section(runs: &[RunData], temps: &Temps) -> Option<Section> {
    let mut s = section("esm", "ESM spectra");
    let mut head = temps.head();
    head.extend([("run", ""), ("step", "")]);
    // Organised by temperature, the measured T leads the row in °C.
    if !temps.sweep() {
        head.push(("T", "K"));
    }
    head.extend([
        ("τ", "s"),
        ("A", "nm/V"),
        ("B", "nm/V"),
        ("misfit (rms)", ""),
        ("frequencies", ""),
        ("corrected with EIS step", ""),
    ]);
    let mut t = table(
        "esm-fits",
        "film transfer fits u/E = A·H(2πfτ)·(V_film/E) + B",
        &head,
    );
    let mut kq_head = temps.head();
    kq_head.extend([
        ("run", ""),
        ("step", ""),
        ("f", "Hz"),
        ("κ = Re(u/Q_F)", "nm/mC"),
        ("phase", "°"),
    ]);
    let mut kq = table(
        "esm-kappa",
        "deflection per faradaic charge u/Q_F",
        &kq_head,
    );
    let fits = ordered(runs, temps, |r| &r.analysis.spectra.esm[..], |e| e.step);
    let mut overlay: Vec<EsmCurves> = Vec::new();
    let mut per_step = Vec::new();
    for at in &fits {
        let (r, e) = (at.r, at.item);
        let Some(data) = &r.esm else { continue };
        let (f, amp, ph) = (
            &data.f_Hz,
            &data.response_nm_per_V,
            &data.response_phase_deg,
        );
        let fit = &e.fit;
        let tcells = temps.cells(at, Some(e.T_K));
        let mut row = tcells.clone();
        row.extend([Cell::text(r.name.clone()), Cell::num(e.step as f64)]);
        if !temps.sweep() {
            row.push(Cell::num(e.T_K));
        }
        row.extend([
            Cell::num_se(fit.tau_s, fit.tau_se_s),
            Cell::num_se(fit.A_nm_per_V, fit.A_se_nm_per_V),
            match fit.B_se_nm_per_V {
                Some(se) => Cell::num_se(fit.B_nm_per_V, se),
                None => Cell::num(fit.B_nm_per_V),
            },
            Cell::num(fit.misfit_rms),
            Cell::num(fit.n_points as f64),
            e.eis_step
                .map_or(Cell::text("none"), |k| Cell::num(k as f64)),
        ]);
        t.rows.push(row);
        for p in &e.per_faradaic_charge {
            let mut row = tcells.clone();
            row.extend([
                Cell::text(r.name.clone()),
                Cell::num(e.step as f64),
                Cell::num(p.f_Hz),
                Cell::num(p.kappa_nm_per_mC),
                Cell::num(p.kappa_phase_deg),
            ]);
            kq.rows.push(row);
        }
        let idx = rows_of(&data.step, e.step);
        let ff: Vec<f64> = idx.iter().map(|&i| f[i]).collect();
        let grid = f_grid(&ff, 30.0);
        let eis = e
            .eis_step
            .and_then(|k| r.analysis.spectra.eis.iter().find(|x| x.step == k));
        let cell = eis.map(|x| {
            let get = |n: &str| x.fit.get(n).unwrap_or(f64::NAN);
            (
                &x.fit,
                CellCorrection {
                    R_s_ohm: get(&r.spectra_options.R_s_parameter),
                    R_ct_ohm: get(&r.spectra_options.R_ct_parameter),
                    C_dl_F: x.C_dl_F,
                    // The model curve between the measured points: small signal.
                    thermal_voltage_V: None,
                },
            )
        });
        let model: Vec<C64> = grid.iter().map(|&fq| esm_model(fit, cell, fq)).collect();
        let label = if temps.sweep() {
            at.label.clone()
        } else {
            format!("{}step {}, {:.1} K", title_prefix(runs, r), e.step, e.T_K)
        };
        // A film that shrinks on extraction sits near 180 deg: draw the
        // phase on 0..360 then, so data and model do not wrap apart.
        let data_ph: Vec<f64> = idx.iter().map(|&i| ph[i]).collect();
        let data_amp: Vec<f64> = idx.iter().map(|&i| amp[i]).collect();
        if let (true, Some(T)) = (temps.sweep(), at.setpoint_K) {
            overlay.push(EsmCurves {
                T_K: T,
                label: at.label.clone(),
                f_Hz: ff.clone(),
                amp_nm_per_V: data_amp.clone(),
                phase_deg: data_ph.clone(),
                grid_Hz: grid.clone(),
                model: model.clone(),
            });
        }
        let near_180 = data_ph.iter().filter(|p| p.abs() > 90.0).count() * 2 > data_ph.len();
        let wrap = |p: f64| if near_180 { p.rem_euclid(360.0) } else { p };
        // Both curves fall towards high frequency: the lower left is free.
        let panels = vec![
            spectrum_panel(
                axis("|u/E|", "nm/V", Scale::Log),
                Series::new("data", SeriesKind::Points, ESM_COLOR, ff.clone(), data_amp),
                Series::new(
                    format!("fit τ = {:.3} s", fit.tau_s),
                    SeriesKind::Line,
                    BLACK,
                    grid.clone(),
                    model.iter().map(|z| z.norm()).collect(),
                ),
                Legend::LowerLeft,
            ),
            spectrum_panel(
                axis("phase of u/E", "°", Scale::Linear),
                Series::new(
                    "data",
                    SeriesKind::Points,
                    ESM_COLOR,
                    ff,
                    data_ph.iter().map(|&p| wrap(p)).collect(),
                ),
                Series::new(
                    "fit",
                    SeriesKind::Line,
                    BLACK,
                    grid,
                    model.iter().map(|z| wrap(phase_deg(*z))).collect(),
                ),
                Legend::LowerLeft,
            ),
        ];
        let note = step_note(runs, temps, at);
        per_step.push(figure(
            format!("{}esm-step{}", id_prefix(runs, r), e.step),
            if temps.sweep() { format!("ESM amplitude and phase at {label}") } else { format!("ESM amplitude and phase, {label}") },
            Some(if e.eis_step.is_some() {
                format!("Model with the drive corrected for R_s, R_ct and C_dl from the EIS fit at the same temperature{note}.")
            } else {
                format!("Uncorrected model (no EIS at this temperature): τ is biased long{note}.")
            }),
            panels,
        ));
    }
    if t.rows.is_empty() {
        return None;
    }
    if overlay.len() >= 2 {
        // One phase convention for all: 0..360 when most points sit near 180.
        let all_ph: Vec<f64> = overlay
            .iter()
            .flat_map(|o| o.phase_deg.iter().copied())
            .collect();
        let near_180 = all_ph.iter().filter(|p| p.abs() > 90.0).count() * 2 > all_ph.len();
        let wrap = |p: f64| if near_180 { p.rem_euclid(360.0) } else { p };
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for o in overlay {
            let (label, ff, a, p, grid, model) = (
                o.label,
                o.f_Hz,
                o.amp_nm_per_V,
                o.phase_deg,
                o.grid_Hz,
                o.model,
            );
            let tc = |x: Series| t_series(temps, o.T_K, x);
            top.push(tc(Series::new(
                label.clone(),
                SeriesKind::Points,
                0,
                ff.clone(),
                a,
            )));
            top.push(tc(Series::new(
                "",
                SeriesKind::Line,
                0,
                grid.clone(),
                model.iter().map(|z| z.norm()).collect(),
            )));
            bottom.push(tc(Series::new(
                label,
                SeriesKind::Points,
                0,
                ff,
                p.iter().map(|&v| wrap(v)).collect(),
            )));
            bottom.push(tc(Series::new(
                "",
                SeriesKind::Line,
                0,
                grid,
                model.iter().map(|z| wrap(phase_deg(*z))).collect(),
            )));
        }
        s.figures.push(figure(
            "esm-by-temperature".to_owned(),
            format!("ESM amplitude and phase at {}", temps.span_text()),
            Some(format!(
                "u/E measured (points) and the film transfer model (line, same colour) per \
                 temperature: the corner moves to higher frequency as diffusion speeds up.{}",
                overlay_key(temps)
            )),
            vec![
                spectrum_panel_n(axis("|u/E|", "nm/V", Scale::Log), top, Legend::LowerLeft),
                spectrum_panel_n(
                    axis("phase of u/E", "°", Scale::Linear),
                    bottom,
                    Legend::LowerLeft,
                ),
            ],
        ));
    }
    s.figures.extend(per_step);
    s.tables.insert(0, t);
    if !kq.rows.is_empty() {
        s.tables.push(kq);
    }
    Some(s)
}

/// One temperature's ESM spectrum and model, for the overlay.
struct EsmCurves {
    T_K: f64,
    label: String,
    f_Hz: Vec<f64>,
    amp_nm_per_V: Vec<f64>,
    phase_deg: Vec<f64>,
    grid_Hz: Vec<f64>,
    model: Vec<C64>,
}

/// A panel of several spectra vs frequency (log axis).
fn spectrum_panel_n(y: Axis, series: Vec<Series>, legend: Legend) -> Panel {
    with_legend(panel(axis("f", "Hz", Scale::Log), y, series), legend)
}

// --------------------------------------------------------------- Arrhenius

/// One method's taus and Arrhenius fit, for the plot and the table.
struct Method<'a> {
    name: &'static str,
    fit: Option<&'a vegard_analysis::Arrhenius>,
    d0: Option<f64>,
    color: u8,
    /// `(T_K, tau_s, tau_se_s)` per fitted step.
    points: Vec<(f64, f64, f64)>,
}

fn arrhenius_section(runs: &[RunData], a: &ArrheniusComparison) -> Section {
    let mut s = section("arrhenius", "Arrhenius comparison: EIS vs ESM");
    let mut t = table(
        "arrhenius",
        "activation energy of the diffusion time τ = L²/D",
        &[
            ("method", ""),
            ("Ea", "eV"),
            ("Ea 95 % CI low", "eV"),
            ("Ea 95 % CI high", "eV"),
            ("Ea", "kJ/mol"),
            ("ln(1/τ0 / s⁻¹)", ""),
            ("D0", "m²/s"),
            ("χ²_red", ""),
            ("points", ""),
        ],
    );
    let mut panel_series = Vec::new();
    // About each method's fit: the residuals and the 95 % band, at a scale
    // where the band is visible (on the main panel it is often thinner
    // than the line).
    let mut resid_series = Vec::new();
    let mut temps_K: Vec<f64> = Vec::new();
    // Largest 95 % half-width of each method's band, ln(1/τ) units.
    let mut half_widths: Vec<(&str, f64)> = Vec::new();
    let eis: Vec<&EisStepFit> = runs.iter().flat_map(|r| &r.analysis.spectra.eis).collect();
    let esm: Vec<&EsmStepFit> = runs.iter().flat_map(|r| &r.analysis.spectra.esm).collect();
    let methods = [
        Method {
            name: "EIS",
            fit: a.eis.as_ref(),
            d0: a.eis_D0_m2_per_s,
            color: EIS_COLOR,
            points: eis.iter().map(|e| (e.T_K, e.tau_s, e.tau_se_s)).collect(),
        },
        Method {
            name: "ESM",
            fit: a.esm.as_ref(),
            d0: a.esm_D0_m2_per_s,
            color: ESM_COLOR,
            points: esm
                .iter()
                .map(|e| (e.T_K, e.fit.tau_s, e.fit.tau_se_s))
                .collect(),
        },
    ];
    for Method {
        name,
        fit,
        d0,
        color,
        points,
    } in methods
    {
        let pts: Vec<&(f64, f64, f64)> = points
            .iter()
            .filter(|(T, tau, _)| T.is_finite() && *tau > 0.0)
            .collect();
        temps_K.extend(pts.iter().map(|(T, _, _)| *T));
        if !pts.is_empty() {
            let mut p = Series::new(
                format!("{name} τ"),
                SeriesKind::Points,
                color,
                pts.iter().map(|(T, _, _)| 1000.0 / T).collect(),
                pts.iter().map(|(_, tau, _)| -tau.ln()).collect(),
            );
            p.y_err = Some(pts.iter().map(|(_, tau, se)| se / tau).collect());
            panel_series.push(p);
        }
        let Some(f) = fit else { continue };
        let ci = f.ea_ci95_eV;
        t.rows.push(vec![
            Cell::text(name),
            Cell::num_se(f.ea_eV, f.ea_se_eV),
            Cell::opt(ci.map(|c| c[0])),
            Cell::opt(ci.map(|c| c[1])),
            Cell::num_se(f.ea_kJ_per_mol, f.ea_se_kJ_per_mol),
            Cell::num_se(f.ln_inv_tau0, f.ln_inv_tau0_se),
            Cell::opt(d0),
            Cell::opt(f.chi2_reduced),
            Cell::num(f.n_points as f64),
        ]);
        // Line and 95 % band over the measured range (+-5 %).
        let inv_T: Vec<f64> = pts.iter().map(|(T, _, _)| 1.0 / T).collect();
        let lo = inv_T.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = inv_T.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            let pad = 0.05 * (hi - lo);
            let xs: Vec<f64> = (0..=40)
                .map(|k| lo - pad + (hi - lo + 2.0 * pad) * k as f64 / 40.0)
                .collect();
            let yse: Vec<(f64, f64)> = xs.iter().map(|&x| f.ln_inv_tau_at(x)).collect();
            let tq = f.t_975.unwrap_or(f64::NAN);
            let x_k: Vec<f64> = xs.iter().map(|x| 1000.0 * x).collect();
            if tq.is_finite() {
                let mut band = Series::new(
                    format!("{name} 95 % band"),
                    SeriesKind::Band,
                    color,
                    x_k.clone(),
                    yse.iter().map(|(y, se)| y - tq * se).collect(),
                );
                band.y_upper = Some(yse.iter().map(|(y, se)| y + tq * se).collect());
                panel_series.push(band);
                let mut rband = Series::new(
                    format!("{name} 95 % band"),
                    SeriesKind::Band,
                    color,
                    x_k.clone(),
                    yse.iter().map(|(_, se)| -tq * se).collect(),
                );
                rband.y_upper = Some(yse.iter().map(|(_, se)| tq * se).collect());
                resid_series.push(rband);
                half_widths.push((name, yse.iter().map(|(_, se)| tq * se).fold(0.0, f64::max)));
            }
            let mut res = Series::new(
                format!("{name} τ − fit"),
                SeriesKind::Points,
                color,
                pts.iter().map(|(T, _, _)| 1000.0 / T).collect(),
                pts.iter()
                    .map(|(T, tau, _)| -tau.ln() - f.ln_inv_tau_at(1.0 / T).0)
                    .collect(),
            );
            res.y_err = Some(pts.iter().map(|(_, tau, se)| se / tau).collect());
            resid_series.push(res);
            panel_series.push(Series::new(
                format!("{name} fit Ea = {:.3} eV", f.ea_eV),
                SeriesKind::Line,
                color,
                x_k,
                yse.iter().map(|(y, _)| *y).collect(),
            ));
        }
    }
    if let Some(d) = &a.difference {
        s.text.push(format!(
            "Ea(ESM) − Ea(EIS) = {:+.4} ± {:.4} eV (z = {:.2}, two-sided p = {:.3}).",
            d.diff_eV, d.se_eV, d.z, d.p_two_sided
        ));
    }
    if let Some(l) = a.film_thickness_m {
        t.note = Some(format!(
            "D0 = L²/τ0 with film thickness L = {:.3e} m (bench).",
            l
        ));
    }
    s.tables.push(t);
    let x = axis("1000 K / T", "", Scale::Linear);
    let mut main = panel(
        x.clone(),
        axis("ln(1/τ / s⁻¹)", "", Scale::Linear),
        panel_series,
    );
    main.top_axis = celsius_top_axis(&temps_K);
    let mut panels = vec![main];
    if !resid_series.is_empty() {
        panels.push(with_legend(
            panel(x, axis("ln(1/τ) − fit", "", Scale::Linear), resid_series),
            Legend::LowerRight,
        ));
    }
    let mut fig = figure(
        "arrhenius".to_owned(),
        "Arrhenius plot of 1/τ from EIS and ESM".to_owned(),
        None,
        panels,
    );
    // Say how wide each band really is where it is drawn, rather than let
    // a shaded area thinner than the line pass for an uncertainty shown.
    let (upper, lower) = (
        crate::svg::band_widths_px(&fig, 0),
        crate::svg::band_widths_px(&fig, 1),
    );
    let band_note = if upper.is_empty() {
        // Student t needs a degree of freedom: a line through two
        // temperatures has none left.
        " No 95 % band is drawn: a line through two temperatures leaves no degree of \
         freedom to estimate it. The lower panel shows each point's residual."
            .to_owned()
    } else {
        let mut note =
            " The lower panel shows each point's residual and the bands about the fits.".to_owned();
        for (name, px) in &upper {
            if *px >= BAND_VISIBLE_PX {
                continue;
            }
            let method = name.trim_end_matches(" 95 % band");
            let half = half_widths
                .iter()
                .find(|(m, _)| *m == method)
                .map_or(f64::NAN, |(_, h)| *h);
            let below = lower
                .iter()
                .find(|(n, _)| n == name)
                .map_or(String::new(), |(_, px)| {
                    format!(", {} px on the lower", vegard_core::format::fixed(*px, 1))
                });
            note.push_str(&format!(
                " The {method} band is at most ±{} in ln(1/τ): {} px wide on the upper panel, \
                 thinner than its line{below}.",
                vegard_core::format::sig(half, 2),
                vegard_core::format::fixed(*px, 1),
            ));
        }
        note
    };
    fig.caption = Some(format!(
        "ln(1/τ) vs 1000/T (top axis: the same temperatures in °C) with one-standard-error \
         bars, the weighted fits and their 95 % confidence bands (Student t).{band_note}"
    ));
    s.figures.push(fig);
    s
}

/// Below this a shaded band is not seen as one (about the width of the
/// 2 px line drawn over it plus antialiasing).
const BAND_VISIBLE_PX: f64 = 4.0;

/// A °C scale for a 1000 K / T axis: round temperatures (every 1, 2, 5,
/// 10, 20, 25 or 50 °C, about five of them) placed at 1000 / (θ + 273.15).
/// A little beyond the data on both sides; the renderer drops ticks that
/// fall outside the drawn range.
fn celsius_top_axis(temps_K: &[f64]) -> Option<TopAxis> {
    let (lo, hi) =
        finite_range(temps_K.iter().copied().filter(|t| *t > 0.0)).filter(|(lo, hi)| hi > lo)?;
    let (lo_C, hi_C) = (lo - ZERO_C_IN_K, hi - ZERO_C_IN_K);
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0]
        .into_iter()
        .find(|s| (hi_C - lo_C) / s <= 6.0)
        .unwrap_or(100.0);
    let pad = 0.5 * (hi_C - lo_C);
    let (k0, k1) = (
        ((lo_C - pad) / step).ceil() as i64,
        ((hi_C + pad) / step).floor() as i64,
    );
    let ticks = (k0..=k1)
        .map(|k| k as f64 * step)
        .filter(|c| c + ZERO_C_IN_K > 0.0)
        .map(|c| Tick {
            at: 1000.0 / (c + ZERO_C_IN_K),
            label: vegard_core::format::fixed(c, 0),
        })
        .collect();
    Some(TopAxis {
        label: "T".to_owned(),
        unit: "°C".to_owned(),
        ticks,
    })
}

// ---------------------------------------------------------------- warnings

/// `(source, message)` of everything the analysis says deserves a look.
fn collect_warnings(runs: &[RunData], campaign: bool) -> Vec<(String, String)> {
    let mut w = Vec::new();
    if campaign {
        let mut samples: Vec<&str> = runs.iter().map(|r| r.recipe.run.sample.as_str()).collect();
        samples.sort_unstable();
        samples.dedup();
        if samples.len() > 1 {
            w.push((
                "campaign".to_owned(),
                format!(
                    "runs of {} different samples are pooled in one Arrhenius fit: {}",
                    samples.len(),
                    samples.join("; ")
                ),
            ));
        }
    }
    for r in runs {
        let src = |what: String| {
            if campaign {
                format!("{}: {what}", r.name)
            } else {
                what
            }
        };
        if r.meta.status.as_str() != "complete" {
            w.push((
                src("run".into()),
                format!(
                    "status {}{}",
                    r.meta.status,
                    r.meta
                        .reason
                        .as_ref()
                        .map(|x| format!(": {x}"))
                        .unwrap_or_default()
                ),
            ));
        }
        // Named by file and line, so the user can open events.jsonl and look.
        for sk in &r.events_skipped {
            w.push((
                src(vegard_store::EVENTS_FILE.into()),
                format!("{sk} (line skipped)"),
            ));
        }
        for e in &r.events {
            let kind = e["kind"].as_str().unwrap_or("");
            match kind {
                vegard_store::TORN_LINE_SET_ASIDE => w.push((
                    src(vegard_store::EVENTS_FILE.into()),
                    format!(
                        "{} bytes of a torn last line (a crash mid-write) were set aside in {} \
                         before recovery appended to the log",
                        e["bytes"],
                        e["kept_in"]
                            .as_str()
                            .unwrap_or(vegard_store::EVENTS_TORN_FILE)
                    ),
                )),
                // The status line above already gives the reason.
                "abort" if r.meta.reason.is_none() => w.push((
                    src("events".into()),
                    format!("run aborted: {}", e["reason"].as_str().unwrap_or("?")),
                )),
                "cell_off" | "heater_off" | "lockin_sine_off" if e["ok"] == false => w.push((
                    src("events".into()),
                    format!("{kind} failed: {}", e["error"]),
                )),
                _ => {}
            }
        }
        // Analysis errors are the report's failures (listed at its top);
        // here only the steps an unfinished run never reached.
        for e in r.analysis.analysis_errors.iter().filter(|e| not_run(r, e)) {
            w.push((src("not run".into()), e.message.clone()));
        }
        // Everything `vegard run` and `vegard analyze` warned about: the
        // data's own problems, weak clock alignments, spectrum fits.
        for e in &r.analysis.analysis_warnings {
            let source = match e.kind {
                IssueKind::Alignment => "clock",
                IssueKind::EsmWindow | IssueKind::SweepCutShort => "data",
                _ => "spectra",
            };
            w.push((src(source.into()), e.message.clone()));
        }
        for cv in &r.analysis.cv_steps {
            let at = src(format!("step {} (cv)", cv.step));
            let a = &cv.analysis;
            if let Some(n) = &a.charge.C_dl_note {
                w.push((at.clone(), n.clone()));
            }
            if let Some(n) = &a.nonlinearity_note {
                w.push((at.clone(), n.clone()));
            }
            for sk in &a.deformation_vs_charge.skipped_cycles {
                w.push((
                    at.clone(),
                    format!("cycle {} skipped: {}", sk.cycle, sk.reason),
                ));
            }
            // Drift over the step against the signal it sits on.
            let d = &a.deformation_vs_charge;
            let swing = d
                .per_cycle
                .iter()
                .map(|c| c.deflection_swing_nm)
                .fold(0.0, f64::max);
            let duration_s = a
                .nonlinearity
                .as_ref()
                .map(|n| n.t_end_s - n.t_start_s)
                .unwrap_or(0.0);
            if swing > 0.0 && (d.drift_nm_per_s * duration_s).abs() > 0.2 * swing {
                w.push((
                    at.clone(),
                    format!(
                        "deflection drift {:+.3e} nm/s moves u by {:.3} nm over the analysed \
                         {duration_s:.1} s, more than 20 % of the {swing:.3} nm swing",
                        d.drift_nm_per_s,
                        (d.drift_nm_per_s * duration_s).abs()
                    ),
                ));
            }
            if let Some(nl) = &a.nonlinearity
                && (nl.flags.second_harmonic_not_from_charge || nl.flags.quadratic_in_charge)
            {
                for f in &nl.findings {
                    w.push((at.clone(), format!("nonlinearity: {f}")));
                }
            }
        }
    }
    w
}

fn warnings_section(warnings: &[(String, String)]) -> Section {
    let mut s = section("warnings", "Warnings");
    let mut t = table(
        "warnings",
        "raised by the run and the analysis",
        &[("where", ""), ("warning", "")],
    );
    for (a, b) in warnings {
        t.rows
            .push(vec![Cell::text(a.clone()), Cell::text(b.clone())]);
    }
    if warnings.is_empty() {
        s.text.push(
            "No warnings: no nonlinearity flag, no failed Kramers-Kronig test, no \
                     drift above 20 % of the swing, no limit hit or fault."
                .to_owned(),
        );
    } else {
        s.tables.push(t);
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decades_are_labelled_at_the_nearest_point_with_its_own_frequency() {
        // 1 kHz to 10 mHz at 3 per decade: every decade is a point.
        let f: Vec<f64> = (0..=15)
            .map(|k| 1000.0 * 10f64.powf(-f64::from(k) / 3.0))
            .collect();
        let l = decade_labels(&f);
        let named: Vec<&str> = l
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            named,
            ["1 kHz", "100 Hz", "10 Hz", "1 Hz", "0.1 Hz", "0.01 Hz"]
        );
        assert_eq!(l[3], "100 Hz");
        // 0.5 Hz to 5 mHz at 2 per decade: no point on 0.1 Hz; the nearest
        // (0.158 Hz, 0.2 decade away) says what it is, not "0.1 Hz"; 0.5 Hz
        // is 0.3 decade from 1 Hz, within the third of a decade.
        let f = [0.5, 0.158, 0.05, 0.0158, 0.005];
        let l = decade_labels(&f);
        assert_eq!(l, ["0.5 Hz", "0.158 Hz", "", "0.0158 Hz", ""]);
        assert!(
            decade_labels(&[f64::NAN, -1.0])
                .iter()
                .all(String::is_empty)
        );
    }

    #[test]
    fn celsius_axis_ticks_sit_at_their_inverse_temperature() {
        let top = celsius_top_axis(&[298.15, 338.15]).unwrap();
        let labels: Vec<&str> = top.ticks.iter().map(|t| t.label.as_str()).collect();
        assert!(
            labels.contains(&"30") && labels.contains(&"60"),
            "{labels:?}"
        );
        for t in &top.ticks {
            let c: f64 = t.label.parse().unwrap();
            assert!((t.at - 1000.0 / (c + 273.15)).abs() < 1e-12);
        }
        assert!(
            celsius_top_axis(&[300.0]).is_none(),
            "one temperature: no scale"
        );
        assert_eq!(t_C_text(303.15), "30 °C");
        assert_eq!(t_C_text(305.65), "32.5 °C");
        assert_eq!(nice_step(3.7), 5.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
