//! Turning raw streams into the finished run: clock alignment per recording
//! segment, per-device Parquet with the derived shared time next to the raw
//! stamps, `aligned.parquet` on the potentiostat's sample grid, the analysis
//! summary, and the final status. The same path serves a normal end, an abort
//! and the recovery of an interrupted run, so all three produce the same files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use vegard_analysis::{CdlSource, CvAnalysis, CvInput};
use vegard_clock::{align_triggered, fit_lower_envelope, resample_linear};
use vegard_recipe::{BenchConfig, CvStep, Recipe, Step};
use vegard_store::{Column, RunStatus, Table};

use crate::EngineError;
use crate::spectra::{
    AlignedView, TemperatureTrace, eis_table, esm_table, label_columns, step_records,
};

/// Clock alignment of one recording segment (one trigger).
#[derive(Debug, Clone, Serialize)]
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
    pub note: Option<String>,
}

/// What finalising produced.
#[derive(Debug, Clone, Serialize)]
pub struct FinalizeSummary {
    pub status: String,
    pub alignment: Vec<SegmentAlignment>,
    /// Largest per-segment alignment-error estimate, s.
    pub alignment_error_estimate_s: Option<f64>,
    pub aligned_rows: usize,
    /// Analysis of each CV step, in recipe order.
    pub cv_steps: Vec<CvStepAnalysis>,
    /// CV steps that could not be analysed, ESM frequencies that could not
    /// be demodulated, and warnings, each naming the step.
    pub analysis_errors: Vec<String>,
    /// Rows of `data/eis.parquet` (impedance points).
    pub eis_points: usize,
    /// Rows of `data/esm.parquet` (demodulated ESM frequencies).
    pub esm_points: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CvStepAnalysis {
    pub step: i64,
    /// The EIS step whose fitted C_dl gave the faradaic charge, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub C_dl_eis_step: Option<i64>,
    #[serde(flatten)]
    pub analysis: CvAnalysis,
}

/// How far an instrument's quartz timebase may be from nominal before any
/// fit (1 sigma). Typical TCXO/XO specs are 2-50 ppm.
const QUARTZ_DRIFT_SIGMA: f64 = 100e-6;

fn err(dir: &Path, msg: impl std::fmt::Display) -> EngineError {
    EngineError::Finalize {
        dir: dir.display().to_string(),
        msg: msg.to_string(),
    }
}

/// Recover a run whose process died: mark it `interrupted` and finalise what
/// the raw streams hold (at most the last flush interval is lost).
pub fn recover_run(dir: &Path) -> Result<FinalizeSummary, EngineError> {
    // Refuses while a live `vegard run` still records into this folder.
    let _claim = vegard_store::claim_run(dir)?;
    let meta = vegard_store::read_meta(dir)?;
    let status = match meta.status {
        RunStatus::Running | RunStatus::Interrupted => RunStatus::Interrupted,
        other => other, // already finished: just rebuild the derived files
    };
    let reason = match meta.status {
        RunStatus::Running => meta
            .reason
            .clone()
            .or_else(|| Some("process ended without finishing the run (recovered)".into())),
        _ => meta.reason.clone(),
    };
    if let Ok(ev) = vegard_store::EventLog::open_append(dir) {
        let _ = ev.append(
            "recovered",
            -1,
            serde_json::json!({"status": status.to_string()}),
        );
    }
    finalize_run(dir, status, reason)
}

/// Finalise a run folder whose raw streams are closed.
pub fn finalize_run(
    dir: &Path,
    status: RunStatus,
    reason: Option<String>,
) -> Result<FinalizeSummary, EngineError> {
    let mut meta = vegard_store::read_meta(dir)?;
    let bench: BenchConfig = meta
        .bench
        .clone()
        .try_into()
        .map_err(|e| err(dir, format!("run.toml [bench]: {e}")))?;
    let recipe: Recipe = meta
        .recipe
        .clone()
        .try_into()
        .map_err(|e| err(dir, format!("run.toml [recipe]: {e}")))?;
    let speed = meta.time_acceleration;
    let invols = bench.instruments.deflection.invols_nm_per_V;
    let dt_dmm = recipe
        .run
        .deflection_sample_interval_s
        .unwrap_or(bench.instruments.deflection.sample_interval_s);
    let plan = recipe.plan();
    let temp_raw = read_or_empty(dir, "temperature", &crate::stage::TEMPERATURE_COLUMNS)?;
    let eis_raw = read_or_empty(dir, "eis", &crate::run::EIS_COLUMNS)?;
    let lockin_raw = read_or_empty(dir, "lockin", &crate::run::LOCKIN_COLUMNS)?;
    let temps = TemperatureTrace::from_raw(&temp_raw, speed)?;

    let p = read_or_empty(dir, "potentiostat", &crate::run::POTENTIOSTAT_COLUMNS)?;
    let d = read_or_empty(dir, "deflection", &crate::run::DEFLECTION_COLUMNS)?;
    let p_seg = p.i64("segment")?;
    let p_step = p.i64("step")?;
    let p_tdev = p.f64("t_dev_s")?;
    let p_host = p.i64("host_ns")?;
    let d_seg = d.i64("segment")?;
    let d_tdev = d.f64("t_dev_s")?;
    let d_host = d.i64("host_ns")?;
    let d_V = d.f64("V")?;

    let host_s = |ns: i64| ns as f64 * 1e-9 * speed;
    let mut p_t = vec![f64::NAN; p.len()];
    let mut d_t = vec![f64::NAN; d.len()];
    let mut alignment = Vec::new();
    let segments: BTreeMap<i64, ()> = p_seg.iter().map(|s| (*s, ())).collect();
    for &seg in segments.keys() {
        let pi: Vec<usize> = (0..p.len()).filter(|&i| p_seg[i] == seg).collect();
        let di: Vec<usize> = (0..d.len()).filter(|&i| d_seg[i] == seg).collect();
        let pt: Vec<f64> = pi.iter().map(|&i| p_tdev[i]).collect();
        let ph: Vec<f64> = pi.iter().map(|&i| host_s(p_host[i])).collect();
        let step = pi.first().map_or(-1, |&i| p_step[i]);
        let pfit = match fit_lower_envelope("potentiostat", &pt, &ph, 30) {
            Ok(f) => f.with_drift_prior(QUARTZ_DRIFT_SIGMA),
            Err(e) => {
                // Too few samples to place this segment on the timeline.
                alignment.push(SegmentAlignment {
                    segment: seg,
                    step,
                    potentiostat_drift_ppm: f64::NAN,
                    deflection_drift_ppm: f64::NAN,
                    trigger_t_s: f64::NAN,
                    alignment_error_estimate_s: f64::NAN,
                    digitizer_sample_interval_s: dt_dmm,
                    n_potentiostat: pi.len(),
                    n_deflection: di.len(),
                    note: Some(format!("not aligned: {e}")),
                });
                continue;
            }
        };
        for &i in &pi {
            p_t[i] = pfit.model.to_shared(p_tdev[i]);
        }
        // Readings arrive in batches (one per R?) sharing one receive stamp;
        // only the newest reading of a batch says anything about the clock.
        let mut newest: BTreeMap<i64, f64> = BTreeMap::new();
        for &i in &di {
            let e = newest.entry(d_host[i]).or_insert(f64::NEG_INFINITY);
            *e = e.max(d_tdev[i]);
        }
        let dt: Vec<f64> = newest.values().copied().collect();
        let dh: Vec<f64> = newest.keys().map(|&h| host_s(h)).collect();
        let windows = (dt.len() / 10).clamp(4, 30);
        let mut note = None;
        let (dmodel, dfit_drift, err_est) =
            match fit_lower_envelope("deflection", &dt, &dh, windows) {
                Ok(dfit) => {
                    let a =
                        align_triggered(pfit.clone(), dfit.with_drift_prior(QUARTZ_DRIFT_SIGMA));
                    (
                        a.digitizer_model,
                        a.digitizer.model.drift_ppm(),
                        a.alignment_error_estimate_s,
                    )
                }
                // Too few digitizer readings to fit drift: trust the trigger alone.
                Err(e) => {
                    note = Some(if di.is_empty() {
                        "no digitizer readings: did the digitizer see the trigger edge? \
                     (check the potentiostat digital out -> Ext Trig wiring)"
                            .to_string()
                    } else {
                        format!("digitizer drift not fitted ({e}); trigger offset only")
                    });
                    (pfit.model, f64::NAN, f64::NAN)
                }
            };
        for &i in &di {
            d_t[i] = dmodel.to_shared(d_tdev[i]);
        }
        alignment.push(SegmentAlignment {
            segment: seg,
            step,
            potentiostat_drift_ppm: pfit.model.drift_ppm(),
            deflection_drift_ppm: dfit_drift,
            trigger_t_s: pfit.model.offset_s,
            alignment_error_estimate_s: err_est,
            digitizer_sample_interval_s: dt_dmm,
            n_potentiostat: pi.len(),
            n_deflection: di.len(),
            note,
        });
    }

    // Deflection onto the potentiostat grid, segment by segment.
    let d_nm: Vec<f64> = d_V.iter().map(|v| v * invols).collect();
    let mut p_defl_V = vec![f64::NAN; p.len()];
    for &seg in segments.keys() {
        let mut di: Vec<usize> = (0..d.len())
            .filter(|&i| d_seg[i] == seg && d_t[i].is_finite())
            .collect();
        di.sort_by(|&a, &b| d_t[a].total_cmp(&d_t[b]));
        let src_t: Vec<f64> = di.iter().map(|&i| d_t[i]).collect();
        let src_v: Vec<f64> = di.iter().map(|&i| d_V[i]).collect();
        let pi: Vec<usize> = (0..p.len()).filter(|&i| p_seg[i] == seg).collect();
        let dst: Vec<f64> = pi.iter().map(|&i| p_t[i]).collect();
        for (k, v) in resample_linear(&src_t, &src_v, &dst)
            .into_iter()
            .enumerate()
        {
            p_defl_V[pi[k]] = v;
        }
    }

    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| err(dir, format!("data/: {e}")))?;
    let mut p_out = p.clone();
    p_out.push("t_s", Column::F64(p_t.clone()));
    vegard_store::write_parquet(&data.join("potentiostat.parquet"), &p_out)?;
    let mut d_out = d.clone();
    d_out.push("t_s", Column::F64(d_t));
    d_out.push("deflection_nm", Column::F64(d_nm));
    vegard_store::write_parquet(&data.join("deflection.parquet"), &d_out)?;
    let mut temp_out = temp_raw.clone();
    temp_out.push("t_s", Column::F64(temps.t_s.clone()));
    vegard_store::write_parquet(&data.join("temperature.parquet"), &temp_out)?;
    let eis = eis_table(&eis_raw, &plan, &temps, speed)?;
    vegard_store::write_parquet(&data.join("eis.parquet"), &eis)?;
    vegard_store::write_parquet(&data.join("lockin.parquet"), &lockin_raw)?;

    let mut aligned = Table::default();
    aligned.push("t_s", Column::F64(p_t.clone()));
    aligned.push("step", Column::I64(p_step.clone()));
    aligned.push("segment", Column::I64(p_seg.clone()));
    aligned.push("cycle", Column::I64(p.i64("cycle")?));
    aligned.push("E_V", Column::F64(p.f64("E_V")?));
    aligned.push("I_A", Column::F64(p.f64("I_A")?));
    aligned.push("deflection_V", Column::F64(p_defl_V.clone()));
    let defl_nm: Vec<f64> = p_defl_V.iter().map(|v| v * invols).collect();
    aligned.push("deflection_nm", Column::F64(defl_nm.clone()));
    // Labels of the plan (sweep iteration, temperature setpoint) and the
    // temperature measured at each sample.
    let (sweep_iteration, setpoint_K) = label_columns(&plan, &p_step);
    let T_K = temps.at(&p_t);
    aligned.push("sweep_iteration", Column::I64(sweep_iteration));
    aligned.push("setpoint_K", Column::F64(setpoint_K));
    aligned.push("T_K", Column::F64(T_K.clone()));
    vegard_store::write_parquet(&dir.join("aligned.parquet"), &aligned)?;

    // At the end of a run the CVs use their own vertex-jump C_dl; `vegard
    // analyze` uses the EIS of the same run when there is one.
    let (cv_steps, mut analysis_errors) = analyze_aligned(&aligned, &recipe, &|_| None)?;
    let (E_all, I_all, cycle_all) = (p.f64("E_V")?, p.f64("I_A")?, p.i64("cycle")?);
    let view = AlignedView {
        t_s: &p_t,
        step: &p_step,
        cycle: &cycle_all,
        E_V: &E_all,
        I_A: &I_all,
        deflection_nm: &defl_nm,
        T_K: &T_K,
    };
    let (esm, esm_errors) = esm_table(&plan, &view, &lockin_raw, invols, speed)?;
    analysis_errors.extend(esm_errors);
    vegard_store::write_parquet(&data.join("esm.parquet"), &esm)?;
    meta.steps = step_records(&plan, &temps);

    let alignment_error_estimate_s = alignment
        .iter()
        .map(|a| a.alignment_error_estimate_s)
        .filter(|e| e.is_finite())
        .reduce(f64::max);
    meta.status = status;
    meta.reason = reason;
    let mut al = toml::Table::new();
    if let Some(e) = alignment_error_estimate_s {
        al.insert("alignment_error_estimate_s".into(), toml::Value::Float(e));
    }
    al.insert(
        "method".into(),
        toml::Value::String(
            "hardware trigger (shared zero) + lower-envelope drift fit of each device against host receive stamps"
                .into(),
        ),
    );
    al.insert(
        "segments".into(),
        toml::Value::try_from(&alignment).map_err(|e| err(dir, e))?,
    );
    meta.alignment = Some(al);
    if let Some(first) = cv_steps.first() {
        let dvc = &first.analysis.deformation_vs_charge;
        let mut t = toml::Table::new();
        t.insert("step".into(), toml::Value::Integer(first.step));
        t.insert(
            "slope_nm_per_mC".into(),
            toml::Value::Float(dvc.slope_nm_per_mC),
        );
        t.insert(
            "slope_se_nm_per_mC".into(),
            toml::Value::Float(dvc.slope_se_nm_per_mC),
        );
        t.insert("r2".into(), toml::Value::Float(dvc.r2));
        meta.analysis_summary = Some(t);
    }
    vegard_store::write_meta(dir, &meta)?;

    Ok(FinalizeSummary {
        status: status.to_string(),
        alignment,
        alignment_error_estimate_s,
        aligned_rows: aligned.len(),
        cv_steps,
        analysis_errors,
        eis_points: eis.len(),
        esm_points: esm.len(),
    })
}

/// Where a CV step's double-layer capacitance comes from: `c_dl_for(k)`
/// returns the C_dl (F) and the EIS step it came from for plan step `k`, or
/// `None` to estimate it from the CV's own vertices.
pub type CdlLookup<'a> = &'a dyn Fn(usize) -> Option<(f64, i64)>;

/// Analyse every CV step of an aligned table. Returns the analyses and, for
/// steps that could not be analysed, a message naming the step and why.
pub fn analyze_aligned(
    aligned: &Table,
    recipe: &Recipe,
    c_dl_for: CdlLookup<'_>,
) -> Result<(Vec<CvStepAnalysis>, Vec<String>), EngineError> {
    let step = aligned.i64("step")?;
    let t = aligned.f64("t_s")?;
    let E = aligned.f64("E_V")?;
    let I = aligned.f64("I_A")?;
    let u = aligned.f64("deflection_nm")?;
    let cycle = aligned.i64("cycle")?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (k, planned) in recipe.plan().iter().enumerate() {
        let Step::Cv(cv) = &planned.step else {
            continue;
        };
        let idx: Vec<usize> = (0..step.len()).filter(|&i| step[i] == k as i64).collect();
        if idx.is_empty() {
            errors.push(format!("step {k} (cv): no samples recorded"));
            continue;
        }
        let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let (tt, ee, ii, uu) = (pick(&t), pick(&E), pick(&I), pick(&u));
        let cc: Vec<i64> = idx.iter().map(|&i| cycle[i]).collect();
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
                step: k as i64,
                C_dl_eis_step: c_dl_for(k).map(|(_, step)| step),
                analysis,
            }),
            Err(e) => errors.push(format!("step {k} (cv): {e}")),
        }
    }
    Ok((out, errors))
}

/// One scan of a CV (begin -> vertex 1 -> vertex 2 -> begin), s: the
/// period of its drive.
fn cv_period_s(cv: &CvStep) -> f64 {
    let [v1, v2] = cv.vertex_V;
    ((v1 - cv.begin_V).abs() + (v2 - v1).abs() + (cv.begin_V - v2).abs()) / cv.scan_rate_V_per_s
}

fn read_or_empty(
    dir: &Path,
    stream: &str,
    columns: &[vegard_store::ColumnSpec],
) -> Result<Table, EngineError> {
    if dir.join("raw").join(format!("{stream}.csv")).exists() {
        Ok(vegard_store::read_raw(dir, stream)?)
    } else {
        Ok(Table::empty(columns))
    }
}

/// Everything `vegard analyze` computes for one run folder.
#[derive(Debug, Clone, Serialize)]
pub struct RunAnalysis {
    pub run_dir: std::path::PathBuf,
    pub status: String,
    pub time_acceleration: f64,
    /// Analysis of each CV step, in recipe order.
    pub cv_steps: Vec<CvStepAnalysis>,
    pub spectra: crate::campaign::SpectraAnalysis,
    /// Film thickness from the bench, m (known on the virtual bench only).
    pub film_thickness_m: Option<f64>,
    /// Steps that could not be analysed, each naming the step and why.
    pub analysis_errors: Vec<String>,
    /// Results that deserve a look (failed Kramers-Kronig test, ESM fitted
    /// without the EIS correction), each naming the step.
    pub analysis_warnings: Vec<String>,
    /// Clock alignment as recorded in run.toml.
    pub alignment: Option<toml::Table>,
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

/// `vegard analyze`: analyse the aligned table of a finished run (JSON
/// layout of [`RunAnalysis::to_json`]).
pub fn analyze_run(dir: &Path) -> Result<serde_json::Value, EngineError> {
    Ok(analyze_run_with(dir, &crate::campaign::SpectraOptions::default())?.to_json())
}

/// Analyse a finished run with chosen spectrum-fit options.
pub fn analyze_run_with(
    dir: &Path,
    opts: &crate::campaign::SpectraOptions,
) -> Result<RunAnalysis, EngineError> {
    let meta = vegard_store::read_meta(dir)?;
    let recipe: Recipe = meta
        .recipe
        .clone()
        .try_into()
        .map_err(|e| err(dir, format!("run.toml [recipe]: {e}")))?;
    let aligned = vegard_store::read_parquet(&dir.join("aligned.parquet"))?;
    // The film thickness turns tau0 into D0; only the virtual bench knows it.
    let bench: Option<BenchConfig> = meta.bench.clone().try_into().ok();
    let film_thickness_m = bench
        .as_ref()
        .and_then(|b| b.sim.as_ref())
        .map(|s| s.film.thickness_m);
    let plan = recipe.plan();
    let spectra = crate::campaign::analyze_spectra_with(dir, &plan, film_thickness_m, opts)?;
    let c_dl_for = |k: usize| crate::campaign::c_dl_for_step(&spectra.eis, &plan, k);
    let (cv_steps, mut analysis_errors) = analyze_aligned(&aligned, &recipe, &c_dl_for)?;
    analysis_errors.extend(spectra.errors.iter().cloned());
    Ok(RunAnalysis {
        run_dir: dir.to_path_buf(),
        status: meta.status.to_string(),
        time_acceleration: meta.time_acceleration,
        cv_steps,
        film_thickness_m,
        analysis_errors,
        analysis_warnings: spectra.warnings.clone(),
        spectra,
        alignment: meta.alignment,
    })
}
