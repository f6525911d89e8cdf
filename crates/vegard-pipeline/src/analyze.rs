//! `vegard analyze`: the analysis of a finished run folder, typed
//! ([`RunAnalysis`]), with the `analysis.json` layout as one view of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vegard_analysis::{CdlSource, CvAnalysis, CvInput};
use vegard_recipe::{BenchConfig, CvStep, PlannedStep, Recipe, Step};
use vegard_store::schema::{Aligned, aligned_path};

use crate::finalize::recipe_of;
use crate::spectra::{SpectraAnalysis, SpectraOptions, analyze_spectra, c_dl_for_step};
use crate::steps::{AlignedFile, CvSamples};
use crate::{AnalysisIssue, IssueKind, PipelineError};

/// The analysis of one CV step.
#[derive(Debug, Clone, Serialize)]
pub struct CvStepAnalysis {
    pub step: i64,
    /// The EIS step whose fitted C_dl gave the faradaic charge, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub C_dl_eis_step: Option<i64>,
    #[serde(flatten)]
    pub analysis: CvAnalysis,
}

/// Where a CV step's double-layer capacitance comes from: `c_dl_for(k)`
/// returns the C_dl (F) and the EIS step it came from for plan step `k`, or
/// `None` to estimate it from the CV's own vertices.
pub type CdlLookup<'a> = &'a dyn Fn(usize) -> Option<(f64, i64)>;

/// Recording segments whose time alignment cannot be trusted, with why:
/// segment number -> the words of [`vegard_clock::segment_clock_problem`]
/// (a fitted drift beyond ±[`vegard_clock::DRIFT_BOUND_PPM`]). Computed
/// from the drifts run.toml's `[alignment]` records, so finalisation and
/// `vegard analyze` (also of a folder finalised by an older version) judge
/// the same segments.
pub type UntrustedSegments = BTreeMap<i64, String>;

/// See [`UntrustedSegments`].
pub fn untrusted_segments(segments: &[vegard_store::SegmentAlignment]) -> UntrustedSegments {
    segments
        .iter()
        .filter_map(|s| {
            vegard_clock::segment_clock_problem(s.potentiostat_drift_ppm, s.deflection_drift_ppm)
                .map(|why| (s.segment, why))
        })
        .collect()
}

/// [`untrusted_segments`], every segment when the virtual bench fell
/// behind while recording (run.toml `bench_overrun`): what it served then
/// was not the model's, so nothing derived from it is a result; and each
/// segment whose digitizer lost readings (run.toml
/// `deflection_readings_lost`).
pub fn untrusted_for_run(
    segments: &[vegard_store::SegmentAlignment],
    meta: &vegard_store::RunMeta,
) -> UntrustedSegments {
    let mut untrusted = untrusted_segments(segments);
    for &seg in &meta.deflection_readings_lost {
        let why = "the digitizer's reading memory overflowed (readings were not fetched in \
                   time): readings were lost and the rest are not where their index puts them";
        untrusted
            .entry(seg)
            .and_modify(|w| *w = format!("{why}; {w}"))
            .or_insert_with(|| why.to_string());
    }
    let bench_overrun = meta.bench_overrun.as_deref();
    if let Some(why) = bench_overrun {
        for s in segments {
            untrusted
                .entry(s.segment)
                .and_modify(|w| *w = format!("{why}; {w}"))
                .or_insert_with(|| why.to_string());
        }
    }
    untrusted
}

/// The first untrusted segment among a step's rows (their `segment`
/// column), with why.
fn untrusted_among<'u>(
    segments: &BTreeSet<i64>,
    untrusted: &'u UntrustedSegments,
) -> Option<(i64, &'u str)> {
    segments
        .iter()
        .find_map(|&seg| untrusted.get(&seg).map(|why| (seg, why.as_str())))
}

/// The issue that replaces a step's results when its segment's clock is
/// untrusted: names the step, the segment, the drift and what is withheld.
pub(crate) fn clock_issue(
    step: i64,
    kind: &str,
    segment: i64,
    why: &str,
    withheld: &str,
) -> AnalysisIssue {
    AnalysisIssue::new(
        step,
        IssueKind::Clock,
        format!("step {step} ({kind}): {why} (segment {segment}); {withheld} not reported"),
    )
}

/// Analyse every CV step of an aligned table held in memory. Returns the
/// analyses and, for steps that could not be analysed, an issue naming the
/// step and why. A step recorded in an `untrusted` segment (see
/// [`untrusted_segments`]) is not analysed: its issue ([`IssueKind::Clock`])
/// stands where κ would.
pub fn analyze_aligned(
    aligned: &Aligned,
    recipe: &Recipe,
    c_dl_for: CdlLookup<'_>,
    untrusted: &UntrustedSegments,
) -> (Vec<CvStepAnalysis>, Vec<AnalysisIssue>) {
    let rows = &mut |step| Ok::<_, std::convert::Infallible>(CvSamples::of_step(aligned, step));
    match analyze_steps(rows, recipe, c_dl_for, untrusted) {
        Ok(done) => done,
        Err(never) => match never {},
    }
}

/// [`analyze_aligned`] with the aligned table given a step at a time
/// (`samples_of(step)`: that step's CV columns), so a day-long run is
/// analysed with one step's five columns in memory.
pub fn analyze_steps<E>(
    samples_of: &mut dyn FnMut(i64) -> Result<CvSamples, E>,
    recipe: &Recipe,
    c_dl_for: CdlLookup<'_>,
    untrusted: &UntrustedSegments,
) -> Result<(Vec<CvStepAnalysis>, Vec<AnalysisIssue>), E> {
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (k, planned) in recipe.plan().iter().enumerate() {
        let Step::Cv(cv) = &planned.step else {
            continue;
        };
        let step = k as i64;
        let a = samples_of(step)?;
        if a.is_empty() {
            issues.push(AnalysisIssue::new(
                step,
                IssueKind::NoData,
                format!("step {k} (cv): no samples recorded"),
            ));
            continue;
        }
        if let Some((seg, why)) = untrusted_among(&a.segments, untrusted) {
            issues.push(clock_issue(
                step,
                "cv",
                seg,
                why,
                "deformation vs charge (kappa), charge and nonlinearity",
            ));
            continue;
        }
        // The current goes in by value, dropped once integrated: a day-long
        // step's fits then run without it.
        let CvSamples {
            t_s,
            E_V,
            I_A,
            deflection_nm,
            cycle,
            ..
        } = a;
        let input = CvInput {
            t_s: &t_s,
            E_V: &E_V,
            I_A: &[],
            deflection_nm: &deflection_nm,
            cycle: &cycle,
            C_dl_F: c_dl_for(k).map(|(c, _)| (c, CdlSource::Eis)),
            period_s: Some(cv_period_s(cv)),
        };
        // A step too short or too broken to analyse is reported, not fatal.
        match vegard_analysis::analyze_cv_taking_current(&input, I_A) {
            Ok(analysis) => out.push(CvStepAnalysis {
                step,
                C_dl_eis_step: c_dl_for(k).map(|(_, step)| step),
                analysis,
            }),
            Err(e) => issues.push(AnalysisIssue::new(
                step,
                IssueKind::FitFailed,
                format!("step {k} (cv): {e}"),
            )),
        }
    }
    Ok((out, issues))
}

/// One scan of a CV (begin -> vertex 1 -> vertex 2 -> begin), s: the
/// period of its drive.
fn cv_period_s(cv: &CvStep) -> f64 {
    let [v1, v2] = cv.vertex_V;
    ((v1 - cv.begin_V).abs() + (v2 - v1).abs() + (cv.begin_V - v2).abs()) / cv.scan_rate_V_per_s
}

/// Everything `vegard analyze` computes for one run folder.
#[derive(Debug, Clone, Serialize)]
pub struct RunAnalysis {
    pub run_dir: PathBuf,
    pub status: String,
    pub time_acceleration: f64,
    /// Analysis of each CV step, in recipe order.
    pub cv_steps: Vec<CvStepAnalysis>,
    pub spectra: SpectraAnalysis,
    /// Film thickness from the bench, m (known on the virtual bench only).
    pub film_thickness_m: Option<f64>,
    /// Steps that could not be analysed, each naming the step and why.
    pub analysis_errors: Vec<AnalysisIssue>,
    /// Results that deserve a look (failed Kramers-Kronig test, ESM fitted
    /// without the EIS correction), each naming the step.
    pub analysis_warnings: Vec<AnalysisIssue>,
    /// Clock alignment as recorded in run.toml.
    pub alignment: Option<vegard_store::RunAlignment>,
    /// Why the headline CV step's deformation vs charge is not given (its
    /// segment's clock is untrusted, see [`headline_cv`]); then the top
    /// level of `analysis.json` has `deformation_vs_charge = null` and this
    /// message as `deformation_vs_charge_withheld`.
    pub headline_withheld: Option<AnalysisIssue>,
    /// What the deflection is made of (Vegard strain, electrostatics,
    /// electrostriction, Joule heating), when the run varies what tells
    /// them apart ([`crate::origin`]).
    pub signal_origin: Option<vegard_analysis::SignalOrigin>,
    /// Why there is no separation, when the run does not vary enough.
    pub signal_origin_note: Option<String>,
    /// Scan-rate analysis of the run's CV series (at least three distinct
    /// scan rates at one temperature); `None` for an ordinary run.
    pub scan_rate: Option<crate::scan_rate::ScanRateAnalysis>,
}

impl RunAnalysis {
    /// The `vegard analyze --json` / `analysis.json` layout (README). The
    /// first CV step's results are also at the top level
    /// (`deformation_vs_charge`, `charge`) because a typical run has one.
    pub fn to_json(&self) -> serde_json::Value {
        let first = match &self.headline_withheld {
            Some(_) => None,
            None => self.cv_steps.first(),
        };
        let mut v = serde_json::json!({
            "run_dir": self.run_dir,
            "status": self.status,
            "time_acceleration": self.time_acceleration,
            "deformation_vs_charge": first.map(|s| &s.analysis.deformation_vs_charge),
            "charge": first.map(|s| &s.analysis.charge),
            "cv_steps": self.cv_steps,
            "eis_fits": self.spectra.eis,
            "esm_fits": self.spectra.esm,
            "arrhenius": self.spectra.arrhenius,
            "analysis_errors": self.analysis_errors,
            "analysis_warnings": self.analysis_warnings,
            "alignment": self.alignment,
        });
        // Only for a run with a CV series, so an ordinary run's
        // analysis.json keeps its layout.
        if let (Some(sr), Some(map)) = (&self.scan_rate, v.as_object_mut()) {
            map.insert(
                "scan_rate".to_owned(),
                serde_json::to_value(sr).unwrap_or(serde_json::Value::Null),
            );
        }
        // Only when withheld, so a normal run's analysis.json keeps the
        // layout it always had.
        if let (Some(issue), Some(map)) = (&self.headline_withheld, v.as_object_mut()) {
            map.insert(
                "deformation_vs_charge_withheld".to_owned(),
                serde_json::Value::String(issue.message.clone()),
            );
        }
        if let (Some(o), Some(map)) = (&self.signal_origin, v.as_object_mut()) {
            map.insert(
                "signal_origin".to_owned(),
                serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
            );
        }
        if let (Some(note), Some(map)) = (&self.signal_origin_note, v.as_object_mut()) {
            map.insert(
                "signal_origin_note".to_owned(),
                serde_json::Value::String(note.clone()),
            );
        }
        v
    }
}

/// A campaign's Arrhenius comparison: every run's EIS and ESM fits pooled
/// by their measured temperature, as `vegard analyze FOLDER` prints it and a
/// campaign report draws it. Sweeps cut short are left out unless
/// `include_partial_sweeps`; fits that cannot weigh in go to `errors`.
pub fn pooled_arrhenius(
    runs: &[&RunAnalysis],
    include_partial_sweeps: bool,
    errors: &mut Vec<AnalysisIssue>,
) -> Option<crate::spectra::ArrheniusComparison> {
    let eis: Vec<crate::spectra::EisStepFit> = runs
        .iter()
        .flat_map(|r| r.spectra.eis.iter().cloned())
        .collect();
    let esm: Vec<crate::spectra::EsmStepFit> = runs
        .iter()
        .flat_map(|r| r.spectra.esm.iter().cloned())
        .collect();
    let film = runs.iter().find_map(|r| r.film_thickness_m);
    let (eis, esm) = crate::spectra::arrhenius_inputs(&eis, &esm, include_partial_sweeps);
    crate::spectra::arrhenius_comparison(&eis, &esm, film, errors)
}

/// The CV step whose results head a run's summary (run.toml
/// `[analysis_summary]`, the top level of `analysis.json`, `vegard run`'s
/// kappa line): the first CV step of the plan that was analysed, unless an
/// earlier CV step's results were withheld for an untrusted clock
/// ([`IssueKind::Clock`]): then that issue, so another step's κ is not
/// mistaken for the first one's.
pub fn headline_cv<'a>(
    cv_steps: &'a [CvStepAnalysis],
    issues: &'a [AnalysisIssue],
    recipe: &Recipe,
) -> Result<Option<&'a CvStepAnalysis>, &'a AnalysisIssue> {
    let plan = recipe.plan();
    let is_cv = |k: i64| {
        usize::try_from(k)
            .ok()
            .and_then(|k| plan.get(k))
            .is_some_and(|p| matches!(p.step, Step::Cv(_)))
    };
    let first = cv_steps.first();
    let withheld = issues
        .iter()
        .filter(|i| i.kind == IssueKind::Clock)
        .filter_map(|i| i.step.filter(|&s| is_cv(s)).map(|s| (s, i)))
        .min_by_key(|(s, _)| *s);
    match (first, withheld) {
        (Some(f), Some((s, issue))) if s < f.step => Err(issue),
        (None, Some((_, issue))) => Err(issue),
        (f, _) => Ok(f),
    }
}

/// Why a segment's alignment is coarse for its step: an estimate above
/// [`vegard_recipe::MAX_ALIGNMENT_PERIOD_FRACTION`] of the step's fastest
/// signal period ([`Step::fastest_period_s`]: a CV cycle, an LSV sweep, the
/// shortest potential-step hold). A warning, not a withheld result: kappa
/// is a slope of deformation against charge over whole cycles, which a
/// time shift dt opens into a loop but biases only to second order (by
/// 1 - cos(2 pi dt / T), 0.2 % at 1 %). ESM sweeps are judged per frequency
/// instead, where the phase is first order (`esm_table`).
pub fn coarse_alignment_note(
    segment: &vegard_store::SegmentAlignment,
    plan: &[PlannedStep],
) -> Option<String> {
    let step = usize::try_from(segment.step)
        .ok()
        .and_then(|k| plan.get(k))?;
    if matches!(step.step, Step::EsmSweep(_)) {
        return None;
    }
    let period_s = step.step.fastest_period_s()?;
    let est_s = segment.alignment_error_estimate_s;
    let fraction = est_s / period_s;
    (fraction > vegard_recipe::MAX_ALIGNMENT_PERIOD_FRACTION).then(|| {
        let bias = 1.0 - (2.0 * std::f64::consts::PI * fraction).cos();
        format!(
            "warning: alignment estimate {} ms is {} % of the step's fastest period ({} s): \
             deformation vs charge opens into a loop, kappa biased by up to {} %",
            vegard_core::format::sig(est_s * 1e3, 3),
            vegard_core::format::sig(fraction * 100.0, 2),
            vegard_core::format::sig(period_s, 3),
            vegard_core::format::sig(bias * 100.0, 2)
        )
    })
}

/// The recording segments whose clock alignment is weaker than usual, as
/// warnings naming the segment and its plan step (what `vegard run` prints
/// at the end and `vegard analyze` lists again).
pub fn alignment_issues(segments: &[vegard_store::SegmentAlignment]) -> Vec<AnalysisIssue> {
    segments
        .iter()
        .filter_map(|seg| {
            seg.note.as_ref().map(|note| {
                AnalysisIssue::new(
                    (seg.step >= 0).then_some(seg.step),
                    IssueKind::Alignment,
                    format!(
                        "step {} clock alignment (segment {}): {note}",
                        seg.step, seg.segment
                    ),
                )
            })
        })
        .collect()
}

/// Analyse a finished run folder with the given spectrum-fit options
/// (`SpectraOptions::default()` is what `vegard analyze` uses).
pub fn analyze_run(dir: &Path, opts: &SpectraOptions) -> Result<RunAnalysis, PipelineError> {
    let meta = vegard_store::read_meta(dir)?;
    let recipe = recipe_of(dir, &meta)?;
    // A step at a time: a day-long run's aligned table is not held whole.
    let aligned = AlignedFile::open(&aligned_path(dir))?;
    // The film thickness turns tau0 into D0; only the virtual bench knows it.
    let bench: Option<BenchConfig> = meta.bench.clone().try_into().ok();
    let film_thickness_m = bench
        .as_ref()
        .and_then(|b| b.sim.as_ref())
        .map(|s| s.film.thickness_m);
    let plan = recipe.plan();
    let spectra = analyze_spectra(dir, &plan, film_thickness_m, opts)?;
    let c_dl_for = |k: usize| c_dl_for_step(&spectra.eis, &plan, k);
    // Judged again from the recorded drifts (not only read back from
    // `[[data_issues]]`), so a folder finalised before the bound existed
    // is judged too.
    let untrusted = meta
        .alignment
        .as_ref()
        .map(|a| untrusted_for_run(&a.segments, &meta))
        .unwrap_or_default();
    let (cv_steps, mut analysis_errors) = analyze_steps(
        &mut |step| aligned.cv_samples(step),
        &recipe,
        &c_dl_for,
        &untrusted,
    )?;
    // What `vegard run` printed at finalisation comes back here, so the
    // analysis and the report say the same: problems found in the data
    // (run.toml `[[data_issues]]`) and weak clock alignments.
    let mut analysis_warnings = Vec::new();
    for r in &meta.data_issues {
        let issue = AnalysisIssue::from_recorded(r);
        if issue.kind == IssueKind::Clock && analysis_errors.contains(&issue) {
            continue; // judged again just above
        }
        if issue.kind.is_warning() {
            analysis_warnings.push(issue);
        } else {
            analysis_errors.push(issue);
        }
    }
    if let Some(a) = &meta.alignment {
        analysis_warnings.extend(alignment_issues(&a.segments));
    }
    let esm_table = vegard_store::schema::EsmData::read_parquet_if_exists(
        &vegard_store::schema::data_path(dir, "esm"),
    )?;
    let origin = crate::origin::analyze_origin(
        &plan,
        &aligned,
        &spectra.eis,
        esm_table.as_ref(),
        &crate::steps::untrusted_steps(aligned.index().segments(), &untrusted),
    )?;
    analysis_errors.extend(origin.issues);
    analysis_errors.extend(spectra.errors.iter().cloned());
    analysis_warnings.extend(spectra.warnings.iter().cloned());
    let scan_rate = crate::scan_rate::analyze_scan_rate(
        dir,
        &plan,
        &cv_steps,
        &spectra,
        &aligned,
        &mut analysis_errors,
    )?;
    let headline_withheld = headline_cv(&cv_steps, &analysis_errors, &recipe)
        .err()
        .cloned();
    Ok(RunAnalysis {
        headline_withheld,
        run_dir: dir.to_path_buf(),
        status: meta.status.to_string(),
        time_acceleration: meta.time_acceleration,
        cv_steps,
        film_thickness_m,
        analysis_errors,
        analysis_warnings,
        spectra,
        alignment: meta.alignment,
        signal_origin: origin.origin,
        signal_origin_note: origin.note,
        scan_rate,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RECIPE: &str = r#"
[run]
name = "t"
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "ocp"
duration_s = 1.0
sample_interval_s = 0.1
[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.6, 0.2]
scan_rate_V_per_s = 0.1
step_V = 0.002
cycles = 1
"#;

    /// A CV step without samples (a run aborted before it) is a `NoData`
    /// issue naming the step; a step with too few samples to analyse is a
    /// `FitFailed` one. The report decides on these kinds, not on words.
    #[test]
    fn unanalysable_cv_steps_become_typed_issues() {
        let recipe = vegard_recipe::parse_recipe(RECIPE, "t.toml").unwrap();
        let (done, issues) = analyze_aligned(
            &Aligned::default(),
            &recipe,
            &|_| None,
            &UntrustedSegments::new(),
        );
        assert!(done.is_empty());
        assert_eq!(
            issues,
            [AnalysisIssue::new(
                1,
                IssueKind::NoData,
                "step 1 (cv): no samples recorded"
            )]
        );

        let mut a = Aligned::default();
        for i in 0..3 {
            a.push(&vegard_store::schema::AlignedRow {
                t_s: f64::from(i) * 0.02,
                step: 1,
                segment: 1,
                cycle: 1,
                E_V: 0.4,
                I_A: 1e-4,
                deflection_V: 0.0,
                deflection_nm: 0.0,
                sweep_iteration: vegard_store::MISSING_I64,
                setpoint_K: f64::NAN,
                T_K: f64::NAN,
            });
        }
        let (done, issues) = analyze_aligned(&a, &recipe, &|_| None, &UntrustedSegments::new());
        assert!(done.is_empty());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, IssueKind::FitFailed);
        assert_eq!(issues[0].step, Some(1));
        assert!(
            issues[0].message.starts_with("step 1 (cv): "),
            "{}",
            issues[0]
        );
        let json = serde_json::to_value(&issues[0]).unwrap();
        assert_eq!(json["kind"], "fit_failed");
    }

    fn segment(segment: i64, pot_ppm: f64, defl_ppm: f64) -> vegard_store::SegmentAlignment {
        vegard_store::SegmentAlignment {
            segment,
            step: segment,
            potentiostat_drift_ppm: pot_ppm,
            deflection_drift_ppm: defl_ppm,
            ..Default::default()
        }
    }

    /// Segments are untrusted beyond ±1000 ppm of either device, judged
    /// from the drifts run.toml records; an unfitted (NaN) drift is not.
    #[test]
    fn segments_beyond_the_drift_bound_are_untrusted() {
        let u = untrusted_segments(&[
            segment(0, 20.0, -35.0),
            segment(1, 20.0, -897_792.0),
            segment(2, 1000.0, -1000.0),
            segment(3, -1000.5, f64::NAN),
            segment(4, f64::NAN, f64::NAN),
        ]);
        assert_eq!(u.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert!(
            u[&1].starts_with("clock: deflection drift -897792 ppm beyond ±1000 ppm"),
            "{}",
            u[&1]
        );
        assert!(
            u[&3].starts_with("clock: potentiostat drift -1000 ppm"),
            "{}",
            u[&3]
        );
    }

    fn cv_rows(segment: i64, n: usize) -> Aligned {
        let mut a = Aligned::default();
        for i in 0..n {
            let t = i as f64 * 0.02;
            a.push(&vegard_store::schema::AlignedRow {
                t_s: t,
                step: 1,
                segment,
                cycle: 1,
                E_V: 0.4 + 0.1 * (t * 0.5).sin(),
                I_A: 1e-4 * (t * 0.5).cos(),
                deflection_V: 0.0,
                deflection_nm: 0.0,
                sweep_iteration: vegard_store::MISSING_I64,
                setpoint_K: f64::NAN,
                T_K: f64::NAN,
            });
        }
        a
    }

    /// A CV step in an untrusted segment is not analysed: a `Clock` issue
    /// naming the step, the segment and the drift stands in its place, and
    /// it heads the summary instead of a number. In a trusted segment the
    /// same rows are analysed as before.
    #[test]
    fn a_cv_step_in_an_untrusted_segment_is_withheld() {
        let recipe = vegard_recipe::parse_recipe(RECIPE, "t.toml").unwrap();
        let untrusted = untrusted_segments(&[segment(7, -900_000.0, -897_792.0)]);
        let (done, issues) = analyze_aligned(&cv_rows(7, 3), &recipe, &|_| None, &untrusted);
        assert!(done.is_empty());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IssueKind::Clock);
        assert_eq!(issues[0].step, Some(1));
        let m = &issues[0].message;
        assert!(
            m.starts_with("step 1 (cv): clock: deflection drift -897792 ppm beyond ±1000 ppm"),
            "{m}"
        );
        assert!(m.contains("; clock: potentiostat drift -900000 ppm"), "{m}");
        assert!(
            m.ends_with(
                "(segment 7); deformation vs charge (kappa), charge and nonlinearity not reported"
            ),
            "{m}"
        );
        assert!(!issues[0].kind.is_warning());
        assert_eq!(serde_json::to_value(&issues[0]).unwrap()["kind"], "clock");
        // Round trip through run.toml's [[data_issues]].
        assert_eq!(
            AnalysisIssue::from_recorded(&issues[0].to_recorded()),
            issues[0]
        );

        // The summary: no number, the reason.
        assert_eq!(
            headline_cv(&done, &issues, &recipe).unwrap_err(),
            &issues[0]
        );
        let s = crate::finalize::analysis_summary(&done, &issues, &recipe).unwrap();
        assert_eq!(s.step, 1);
        assert_eq!(
            (s.slope_nm_per_mC, s.slope_se_nm_per_mC, s.r2),
            (None, None, None)
        );
        assert_eq!(s.withheld.as_deref(), Some(m.as_str()));

        // Another segment untrusted: this step is analysed as usual (too
        // few rows here, so it fails to fit, as without any clock issue).
        let (_, issues) = analyze_aligned(&cv_rows(8, 3), &recipe, &|_| None, &untrusted);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, IssueKind::FitFailed);
        assert!(matches!(headline_cv(&[], &issues, &recipe), Ok(None)));
        assert!(crate::finalize::analysis_summary(&[], &issues, &recipe).is_none());
    }
}
