//! Turning raw streams into the finished run: clock alignment per recording
//! segment, per-device Parquet with the derived shared time next to the raw
//! stamps, `aligned.parquet` on the potentiostat's sample grid, the analysis
//! summary, and the final status. The same path serves a normal end, an abort
//! and the recovery of an interrupted run, so all three produce the same files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use vegard_clock::{
    align_segment, align_segment_pinned, newest_per_batch, pinned_block_span_s, resample_linear,
};
use vegard_recipe::{BenchConfig, Recipe};
use vegard_store::schema::{
    Aligned, DeflectionData, DeflectionRaw, EisData, EisRaw, EsmData, LockInRaw, PotentiostatData,
    PotentiostatRaw, TemperatureData, TemperatureRaw, aligned_path, data_path,
};
use vegard_store::{AnalysisSummary, RunAlignment, RunStatus, SegmentAlignment, Table};

use crate::analyze::{
    CvStepAnalysis, UntrustedSegments, analyze_aligned, coarse_alignment_note, untrusted_for_run,
};
use crate::products::{
    AlignedView, TemperatureTrace, eis_table, esm_table, label_columns, step_records,
};
use crate::{AnalysisIssue, IssueKind, PipelineError};

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
    pub analysis_errors: Vec<AnalysisIssue>,
    /// Rows of `data/eis.parquet` (impedance points).
    pub eis_points: usize,
    /// Rows of `data/esm.parquet` (demodulated ESM frequencies).
    pub esm_points: usize,
}

/// What [`recover_run`] did: the finalisation, and what happened to
/// `events.jsonl` on the way (the CLI tells the user both).
#[derive(Debug, Clone, Serialize)]
pub struct RecoverSummary {
    #[serde(flatten)]
    pub finalize: FinalizeSummary,
    /// Bytes of a torn last line of `events.jsonl` (the dead process was
    /// mid-write) moved to `events.jsonl.torn` before the `recovered` event
    /// was appended, so the new line did not glue onto it.
    pub events_torn_bytes_set_aside: Option<u64>,
    /// Why the `recovered` event could not be logged, if it could not (e.g.
    /// events.jsonl unwritable). The raw streams were finalised all the same:
    /// the event only explains, the data is what recovery is for.
    pub event_log_error: Option<String>,
}

/// Recover a run whose process died: mark it `interrupted` and finalise what
/// the raw streams hold (at most the last flush interval is lost).
///
/// The `recovered` event goes through [`vegard_store::EventLog::open_append`],
/// which first cuts a torn last line back to the last `\n` (keeping its
/// bytes in `events.jsonl.torn` and logging `torn_line_set_aside`): a dead
/// process may have stopped mid-line, and appending after it would leave a
/// corrupt line. Recovery never makes a folder worse.
pub fn recover_run(dir: &Path) -> Result<RecoverSummary, PipelineError> {
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
    let mut events_torn_bytes_set_aside = None;
    let logged = vegard_store::EventLog::open_append(dir).and_then(|ev| {
        events_torn_bytes_set_aside = ev.torn_bytes_set_aside();
        ev.append(
            "recovered",
            -1,
            serde_json::json!({"status": status.to_string()}),
        )
    });
    let finalize = finalize_run(dir, status, reason)?;
    Ok(RecoverSummary {
        finalize,
        events_torn_bytes_set_aside,
        event_log_error: logged.err().map(|e| e.to_string()),
    })
}

/// A raw stream's typed columns; empty when the stream was never opened
/// (e.g. no lock-in in this run).
fn read_raw_or_empty<T: Default>(
    dir: &Path,
    stream: &str,
    typed: impl Fn(&Table) -> Result<T, vegard_store::StoreError>,
) -> Result<T, PipelineError> {
    if vegard_store::find_raw(dir, stream).is_some() {
        Ok(typed(&vegard_store::read_raw(dir, stream)?)?)
    } else {
        Ok(T::default())
    }
}

/// The recipe and bench a run folder recorded (run.toml).
pub(crate) fn recipe_of(dir: &Path, meta: &vegard_store::RunMeta) -> Result<Recipe, PipelineError> {
    meta.recipe
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| PipelineError::RunToml {
            dir: dir.to_path_buf(),
            table: "recipe",
            msg: e.to_string(),
        })
}

/// Finalise a run folder whose raw streams are closed.
pub fn finalize_run(
    dir: &Path,
    status: RunStatus,
    reason: Option<String>,
) -> Result<FinalizeSummary, PipelineError> {
    let mut meta = vegard_store::read_meta(dir)?;
    let bench: BenchConfig = meta
        .bench
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| PipelineError::RunToml {
            dir: dir.to_path_buf(),
            table: "bench",
            msg: e.to_string(),
        })?;
    let recipe = recipe_of(dir, &meta)?;
    let speed = meta.time_acceleration;
    let invols_nm_per_V = bench.instruments.deflection.invols_nm_per_V;
    let dt_dmm_s = recipe
        .run
        .deflection_sample_interval_s
        .unwrap_or(bench.instruments.deflection.sample_interval_s);
    let plan = recipe.plan();
    let temp_raw: TemperatureRaw =
        read_raw_or_empty(dir, TemperatureRaw::FILE, TemperatureRaw::from_table)?;
    let eis_raw: EisRaw = read_raw_or_empty(dir, EisRaw::FILE, EisRaw::from_table)?;
    let lockin_raw: LockInRaw = read_raw_or_empty(dir, LockInRaw::FILE, LockInRaw::from_table)?;
    let temps = TemperatureTrace::from_raw(&temp_raw, speed);

    let p: PotentiostatRaw =
        read_raw_or_empty(dir, PotentiostatRaw::FILE, PotentiostatRaw::from_table)?;
    let d: DeflectionRaw = read_raw_or_empty(dir, DeflectionRaw::FILE, DeflectionRaw::from_table)?;

    let host_s = |ns: i64| ns as f64 * 1e-9 * speed;
    let mut p_t = vec![f64::NAN; p.len()];
    let mut d_t = vec![f64::NAN; d.len()];
    let mut alignment = Vec::new();
    let segments: BTreeSet<i64> = p.segment.iter().copied().collect();
    for &seg in &segments {
        let pi: Vec<usize> = (0..p.len()).filter(|&i| p.segment[i] == seg).collect();
        let di: Vec<usize> = (0..d.len()).filter(|&i| d.segment[i] == seg).collect();
        let pt: Vec<f64> = pi.iter().map(|&i| p.t_dev_s[i]).collect();
        let ph: Vec<f64> = pi.iter().map(|&i| host_s(p.host_ns[i])).collect();
        let (dt, dh) = newest_per_batch(
            &di.iter().map(|&i| d.t_dev_s[i]).collect::<Vec<_>>(),
            &di.iter().map(|&i| d.host_ns[i]).collect::<Vec<_>>(),
        );
        let dh: Vec<f64> = dh.into_iter().map(host_s).collect();
        let step = pi.first().map_or(-1, |&i| p.step[i]);
        // Readings in blocks, each pinned to its own sync edge: placed by
        // the potentiostat's clock; one burst: the digitizer's own fit.
        let pinned_span_s = pinned_block_span_s(
            &di.iter().map(|&i| d.index[i]).collect::<Vec<_>>(),
            &di.iter().map(|&i| d.t_dev_s[i]).collect::<Vec<_>>(),
            dt_dmm_s,
        );
        let aligned = match pinned_span_s {
            Some(span_s) => align_segment_pinned(&pt, &ph, span_s),
            None => align_segment(&pt, &ph, &dt, &dh),
        };
        let clocks = match aligned {
            Ok(c) => c,
            Err(e) => {
                // Too few samples to place this segment on the timeline.
                alignment.push(SegmentAlignment {
                    segment: seg,
                    step,
                    potentiostat_drift_ppm: f64::NAN,
                    deflection_drift_ppm: f64::NAN,
                    trigger_t_s: f64::NAN,
                    alignment_error_estimate_s: f64::NAN,
                    digitizer_sample_interval_s: dt_dmm_s,
                    n_potentiostat: pi.len(),
                    n_deflection: di.len(),
                    note: Some(format!("not aligned: {e}")),
                });
                continue;
            }
        };
        for &i in &pi {
            p_t[i] = clocks.potentiostat.to_shared(p.t_dev_s[i]);
        }
        for &i in &di {
            d_t[i] = clocks.digitizer.to_shared(d.t_dev_s[i]);
        }
        // Too few digitizer readings to fit drift: the trigger alone places them.
        let note = clocks.digitizer_error.as_ref().map(|e| {
            if di.is_empty() {
                "no digitizer readings: did the digitizer see the trigger edge? \
                 (check the potentiostat digital out -> Ext Trig wiring)"
                    .to_string()
            } else {
                format!("digitizer drift not fitted ({e}); trigger offset only")
            }
        });
        alignment.push(SegmentAlignment {
            segment: seg,
            step,
            potentiostat_drift_ppm: clocks.potentiostat.drift_ppm(),
            deflection_drift_ppm: clocks.digitizer_drift_ppm,
            trigger_t_s: clocks.potentiostat.offset_s,
            alignment_error_estimate_s: clocks.alignment_error_estimate_s,
            digitizer_sample_interval_s: dt_dmm_s,
            n_potentiostat: pi.len(),
            n_deflection: di.len(),
            note,
        });
    }

    // Deflection onto the potentiostat grid, segment by segment.
    let d_nm: Vec<f64> = d.V.iter().map(|v| v * invols_nm_per_V).collect();
    let mut p_defl_V = vec![f64::NAN; p.len()];
    for &seg in &segments {
        let mut di: Vec<usize> = (0..d.len())
            .filter(|&i| d.segment[i] == seg && d_t[i].is_finite())
            .collect();
        di.sort_by(|&a, &b| d_t[a].total_cmp(&d_t[b]));
        let src_t: Vec<f64> = di.iter().map(|&i| d_t[i]).collect();
        let src_v: Vec<f64> = di.iter().map(|&i| d.V[i]).collect();
        let pi: Vec<usize> = (0..p.len()).filter(|&i| p.segment[i] == seg).collect();
        let dst: Vec<f64> = pi.iter().map(|&i| p_t[i]).collect();
        for (k, v) in resample_linear(&src_t, &src_v, &dst)
            .into_iter()
            .enumerate()
        {
            p_defl_V[pi[k]] = v;
        }
    }

    let data = dir.join(vegard_store::DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|error| PipelineError::Io {
        path: data.clone(),
        error,
    })?;
    let defl_nm: Vec<f64> = p_defl_V.iter().map(|v| v * invols_nm_per_V).collect();
    // Labels of the plan (sweep iteration, temperature setpoint) and the
    // temperature measured at each sample.
    let (sweep_iteration, setpoint_K) = label_columns(&plan, &p.step);
    let T_K = temps.at(&p_t);
    let aligned = Aligned {
        t_s: p_t.clone(),
        step: p.step.clone(),
        segment: p.segment.clone(),
        cycle: p.cycle.clone(),
        E_V: p.E_V.clone(),
        I_A: p.I_A.clone(),
        deflection_V: p_defl_V,
        deflection_nm: defl_nm,
        sweep_iteration,
        setpoint_K,
        T_K,
    };
    let p_out = PotentiostatData {
        seq: p.seq,
        step: p.step,
        segment: p.segment,
        index: p.index,
        cycle: p.cycle,
        t_dev_s: p.t_dev_s,
        host_ns: p.host_ns,
        E_V: p.E_V,
        I_A: p.I_A,
        status: p.status,
        t_s: p_t,
    };
    vegard_store::write_parquet(&data_path(dir, PotentiostatData::FILE), &p_out.into_table())?;
    let d_out = DeflectionData {
        seq: d.seq,
        step: d.step,
        segment: d.segment,
        index: d.index,
        t_dev_s: d.t_dev_s,
        host_ns: d.host_ns,
        V: d.V,
        t_s: d_t,
        deflection_nm: d_nm,
    };
    vegard_store::write_parquet(&data_path(dir, DeflectionData::FILE), &d_out.into_table())?;
    let temp_out = TemperatureData {
        seq: temp_raw.seq,
        step: temp_raw.step,
        host_ns: temp_raw.host_ns,
        T_K: temp_raw.T_K,
        setpoint_K: temp_raw.setpoint_K,
        t_s: temps.t_s.clone(),
    };
    vegard_store::write_parquet(
        &data_path(dir, TemperatureData::FILE),
        &temp_out.into_table(),
    )?;
    let eis = eis_table(eis_raw, &plan, &temps, speed);
    let eis_points = eis.len();
    vegard_store::write_parquet(&data_path(dir, EisData::FILE), &eis.into_table())?;
    vegard_store::write_parquet(
        &data_path(dir, LockInRaw::FILE),
        &lockin_raw.clone().into_table(),
    )?;

    // At the end of a run the CVs use their own vertex-jump C_dl; `vegard
    // analyze` uses the EIS of the same run when there is one.
    // Segments whose fitted drift no oscillator has: marked in
    // `[alignment]` (their note), and nothing derived from their time
    // alignment is reported (the issue stands in its place).
    let untrusted = untrusted_for_run(&alignment, &meta);
    for seg in alignment.iter_mut() {
        if let Some(coarse) = coarse_alignment_note(seg, &plan) {
            seg.note = Some(match seg.note.take() {
                Some(note) => format!("{note}; {coarse}"),
                None => coarse,
            });
        }
        if let Some(why) = untrusted.get(&seg.segment) {
            seg.note = Some(match seg.note.take() {
                Some(note) => format!("{why}; {note}"),
                None => why.clone(),
            });
        }
    }
    let untrusted_steps = untrusted_steps(&aligned, &untrusted);
    let (cv_steps, mut analysis_errors) = analyze_aligned(&aligned, &recipe, &|_| None, &untrusted);
    let view = AlignedView {
        t_s: &aligned.t_s,
        step: &aligned.step,
        cycle: &aligned.cycle,
        E_V: &aligned.E_V,
        I_A: &aligned.I_A,
        deflection_nm: &aligned.deflection_nm,
        T_K: &aligned.T_K,
    };
    // Each step's largest alignment error estimate, for the ESM phase check.
    let mut alignment_error_s: BTreeMap<i64, f64> = BTreeMap::new();
    for seg in &alignment {
        let e = alignment_error_s.entry(seg.step).or_insert(0.0);
        *e = e.max(seg.alignment_error_estimate_s);
    }
    let (esm, esm_errors) = esm_table(
        &plan,
        &view,
        &lockin_raw,
        invols_nm_per_V,
        speed,
        &untrusted_steps,
        &alignment_error_s,
    );
    // Only finalisation sees the raw streams and the lock-in's switch
    // stamps: what it finds in the data goes into run.toml, so `vegard
    // analyze` and the report list the same warnings `vegard run` printed.
    // The untrusted clocks go there too, so run.toml itself says why a
    // complete run has no kappa.
    meta.data_issues = analysis_errors
        .iter()
        .filter(|i| i.kind == IssueKind::Clock)
        .chain(&esm_errors)
        .map(AnalysisIssue::to_recorded)
        .collect();
    analysis_errors.extend(esm_errors);
    let esm_points = esm.len();
    vegard_store::write_parquet(&data_path(dir, EsmData::FILE), &esm.into_table())?;
    // Last: readers take aligned.parquet as "this run was finalised", so it
    // must not appear before the tables it stands for.
    vegard_store::write_parquet(&aligned_path(dir), &aligned.clone().into_table())?;
    meta.steps = step_records(&plan, &temps);

    let alignment_error_estimate_s = alignment
        .iter()
        .map(|a| a.alignment_error_estimate_s)
        .filter(|e| e.is_finite())
        .reduce(f64::max);
    meta.status = status;
    meta.reason = reason;
    meta.alignment = Some(RunAlignment {
        alignment_error_estimate_s,
        method: "hardware trigger (shared zero) + lower-envelope drift fit of each device \
                 against host receive stamps"
            .into(),
        segments: alignment.clone(),
        external: None,
    });
    meta.analysis_summary = analysis_summary(&cv_steps, &analysis_errors, &recipe);
    vegard_store::write_meta(dir, &meta)?;

    Ok(FinalizeSummary {
        status: status.to_string(),
        alignment,
        alignment_error_estimate_s,
        aligned_rows: aligned.len(),
        cv_steps,
        analysis_errors,
        eis_points,
        esm_points,
    })
}

/// run.toml `[analysis_summary]`: deformation vs charge of the first CV
/// step (native runs and imported ones alike), or, when that step's clock
/// is untrusted ([`crate::headline_cv`]), no number and the reason.
pub(crate) fn analysis_summary(
    cv_steps: &[CvStepAnalysis],
    issues: &[AnalysisIssue],
    recipe: &Recipe,
) -> Option<AnalysisSummary> {
    match crate::headline_cv(cv_steps, issues, recipe) {
        Err(issue) => Some(AnalysisSummary {
            step: issue.step.unwrap_or(-1),
            slope_nm_per_mC: None,
            slope_se_nm_per_mC: None,
            r2: None,
            withheld: Some(issue.message.clone()),
        }),
        Ok(first) => first.map(|first| {
            let dvc = &first.analysis.deformation_vs_charge;
            AnalysisSummary {
                step: first.step,
                slope_nm_per_mC: Some(dvc.slope_nm_per_mC),
                slope_se_nm_per_mC: Some(dvc.slope_se_nm_per_mC),
                r2: Some(dvc.r2),
                withheld: None,
            }
        }),
    }
}

/// Plan steps with rows in an untrusted segment: step -> (segment, why).
fn untrusted_steps(
    aligned: &Aligned,
    untrusted: &UntrustedSegments,
) -> BTreeMap<i64, (i64, String)> {
    let mut out = BTreeMap::new();
    if untrusted.is_empty() {
        return out;
    }
    for (&step, &seg) in aligned.step.iter().zip(&aligned.segment) {
        if let Some(why) = untrusted.get(&seg) {
            out.entry(step).or_insert_with(|| (seg, why.clone()));
        }
    }
    out
}
