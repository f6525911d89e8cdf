//! `vegard analyze`: the analysis of a finished run folder, typed
//! ([`RunAnalysis`]), with the `analysis.json` layout as one view of it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vegard_analysis::{CdlSource, CvAnalysis, CvInput};
use vegard_recipe::{BenchConfig, CvStep, Recipe, Step};
use vegard_store::schema::{Aligned, aligned_path};

use crate::finalize::recipe_of;
use crate::spectra::{SpectraAnalysis, SpectraOptions, analyze_spectra, c_dl_for_step};
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

/// Analyse every CV step of an aligned table. Returns the analyses and, for
/// steps that could not be analysed, an issue naming the step and why.
pub fn analyze_aligned(
    aligned: &Aligned,
    recipe: &Recipe,
    c_dl_for: CdlLookup<'_>,
) -> (Vec<CvStepAnalysis>, Vec<AnalysisIssue>) {
    let a = aligned;
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (k, planned) in recipe.plan().iter().enumerate() {
        let Step::Cv(cv) = &planned.step else {
            continue;
        };
        let step = k as i64;
        let idx: Vec<usize> = (0..a.len()).filter(|&i| a.step[i] == step).collect();
        if idx.is_empty() {
            issues.push(AnalysisIssue::new(
                step,
                IssueKind::NoData,
                format!("step {k} (cv): no samples recorded"),
            ));
            continue;
        }
        let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let (tt, ee, ii, uu) = (
            pick(&a.t_s),
            pick(&a.E_V),
            pick(&a.I_A),
            pick(&a.deflection_nm),
        );
        let cc: Vec<i64> = idx.iter().map(|&i| a.cycle[i]).collect();
        let input = CvInput {
            t_s: &tt,
            E_V: &ee,
            I_A: &ii,
            deflection_nm: &uu,
            cycle: &cc,
            C_dl_F: c_dl_for(k).map(|(c, _)| (c, CdlSource::Eis)),
            period_s: Some(cv_period_s(cv)),
        };
        // A step too short or too broken to analyse is reported, not fatal.
        match vegard_analysis::analyze_cv(&input) {
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
    (out, issues)
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
}

impl RunAnalysis {
    /// The `vegard analyze --json` / `analysis.json` layout (README). The
    /// first CV step's results are also at the top level
    /// (`deformation_vs_charge`, `charge`) because a typical run has one.
    pub fn to_json(&self) -> serde_json::Value {
        let first = self.cv_steps.first();
        serde_json::json!({
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
        })
    }
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
    let aligned = Aligned::from_table(&vegard_store::read_parquet(&aligned_path(dir))?)?;
    // The film thickness turns tau0 into D0; only the virtual bench knows it.
    let bench: Option<BenchConfig> = meta.bench.clone().try_into().ok();
    let film_thickness_m = bench
        .as_ref()
        .and_then(|b| b.sim.as_ref())
        .map(|s| s.film.thickness_m);
    let plan = recipe.plan();
    let spectra = analyze_spectra(dir, &plan, film_thickness_m, opts)?;
    let c_dl_for = |k: usize| c_dl_for_step(&spectra.eis, &plan, k);
    let (cv_steps, mut analysis_errors) = analyze_aligned(&aligned, &recipe, &c_dl_for);
    // What `vegard run` printed at finalisation comes back here, so the
    // analysis and the report say the same: problems found in the data
    // (run.toml `[[data_issues]]`) and weak clock alignments.
    let mut analysis_warnings = Vec::new();
    for r in &meta.data_issues {
        let issue = AnalysisIssue::from_recorded(r);
        if issue.kind.is_warning() {
            analysis_warnings.push(issue);
        } else {
            analysis_errors.push(issue);
        }
    }
    if let Some(a) = &meta.alignment {
        analysis_warnings.extend(alignment_issues(&a.segments));
    }
    analysis_errors.extend(spectra.errors.iter().cloned());
    analysis_warnings.extend(spectra.warnings.iter().cloned());
    Ok(RunAnalysis {
        run_dir: dir.to_path_buf(),
        status: meta.status.to_string(),
        time_acceleration: meta.time_acceleration,
        cv_steps,
        film_thickness_m,
        analysis_errors,
        analysis_warnings,
        spectra,
        alignment: meta.alignment,
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
        let (done, issues) = analyze_aligned(&Aligned::default(), &recipe, &|_| None);
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
                sweep_iteration: -1,
                setpoint_K: f64::NAN,
                T_K: f64::NAN,
            });
        }
        let (done, issues) = analyze_aligned(&a, &recipe, &|_| None);
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
}
