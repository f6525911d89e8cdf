//! Turning raw streams into the finished run: clock alignment per recording
//! segment, per-device Parquet with the derived shared time next to the raw
//! stamps, `aligned.parquet` on the potentiostat's sample grid, the analysis
//! summary, and the final status. The same path serves a normal end, an abort
//! and the recovery of an interrupted run, so all three produce the same files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use vegard_clock::{PinnedSpan, SegmentClocks, align_segment, align_segment_pinned};
use vegard_recipe::{BenchConfig, Recipe};
use vegard_store::schema::{
    Aligned, DeflectionData, DeflectionRaw, EisData, EisRaw, EsmData, LockInRaw, PotentiostatData,
    PotentiostatRaw, SweepLabels, TemperatureData, TemperatureRaw, aligned_path, data_path,
};
use vegard_store::{
    AnalysisSummary, ParquetTableWriter, RawBatches, RunAlignment, RunStatus, SegmentAlignment,
    Table,
};

use crate::analyze::{CvStepAnalysis, analyze_steps, coarse_alignment_note, untrusted_for_run};
use crate::products::{
    TemperatureTrace, eis_table, esm_table, label_columns, step_records, sweep_label_columns,
};
use crate::steps::{AlignedFile, StepIndex, untrusted_steps};
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
/// (e.g. no lock-in in this run). Only for the small streams (temperature,
/// impedance points, lock-in reads): the two long ones are read a batch at
/// a time ([`for_each_batch`]).
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

/// A raw stream a batch at a time, typed; nothing when the stream was never
/// opened or its header never reached the disk.
fn open_batches(dir: &Path, stream: &str) -> Result<Option<RawBatches>, PipelineError> {
    let Some(path) = vegard_store::find_raw(dir, stream) else {
        return Ok(None);
    };
    match RawBatches::open(&path) {
        Ok(b) => Ok(Some(b)),
        Err(vegard_store::StoreError::NoHeader { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Call `f` with each batch of a raw stream, typed.
fn for_each_batch<T>(
    dir: &Path,
    stream: &str,
    typed: impl Fn(&Table) -> Result<T, vegard_store::StoreError>,
    mut f: impl FnMut(T) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    if let Some(mut batches) = open_batches(dir, stream)? {
        while let Some(batch) = batches.next_batch()? {
            f(typed(&batch)?)?;
        }
    }
    Ok(())
}

/// What the first pass keeps of one recording segment: the clock fits'
/// inputs, no samples. The potentiostat's device and host times (16 bytes
/// per potentiostat sample: its lower envelope is fitted over all of
/// them); the digitizer's newest reading per host batch (a fetch of a
/// second or more); the block structure of its readings.
struct SegmentStamps {
    step: i64,
    pot_dev_s: Vec<f64>,
    pot_host_s: Vec<f64>,
    /// (host stamp ns, newest device time of the readings it received), in
    /// arrival order, one entry per stamp while stamps come in order
    /// (sorted and merged before use). A vector, not a map: a day of 10 ms
    /// polls is 8.6 M stamps, and a map's small nodes would stay in the
    /// process's heap after it is dropped.
    defl_newest: Vec<(i64, f64)>,
    pinned: PinnedSpan,
    n_deflection: usize,
}

/// `(host stamp, device time)` pairs sorted by stamp, one per stamp with
/// its newest device time (what a map from stamp to maximum gives).
fn newest_per_stamp(mut v: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if !v.is_sorted_by_key(|&(h, _)| h) {
        v.sort_by_key(|&(h, _)| h);
    }
    v.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.max(later.1);
        }
        same
    });
    v
}

/// The digitizer's readings in file order, each placed on the shared
/// timeline as it is read: written to `data/deflection.parquet` a batch at
/// a time, and interpolated onto the potentiostat's samples by walking
/// forward with them (both streams are in time order within a segment,
/// segments in order), so neither stream is ever held whole.
struct DeflectionCursor<'a> {
    batches: Option<RawBatches>,
    clocks: &'a BTreeMap<i64, SegmentClocks>,
    invols_nm_per_V: f64,
    out: ParquetTableWriter,
    /// The current batch: segment, shared time, volts.
    seg: Vec<i64>,
    t_s: Vec<f64>,
    v: Vec<f64>,
    pos: usize,
    /// The latest reading at or before the last instant asked for.
    prev: Option<(i64, f64, f64)>,
    /// Readings earlier than the one before them (left out of the
    /// interpolation).
    out_of_order: u64,
}

impl<'a> DeflectionCursor<'a> {
    fn new(
        dir: &Path,
        clocks: &'a BTreeMap<i64, SegmentClocks>,
        invols_nm_per_V: f64,
    ) -> Result<Self, PipelineError> {
        Ok(DeflectionCursor {
            batches: open_batches(dir, DeflectionRaw::FILE)?,
            clocks,
            invols_nm_per_V,
            out: ParquetTableWriter::create(
                &data_path(dir, DeflectionData::FILE),
                DeflectionData::COLUMNS,
            )?,
            seg: Vec::new(),
            t_s: Vec::new(),
            v: Vec::new(),
            pos: 0,
            prev: None,
            out_of_order: 0,
        })
    }

    /// Read the next raw batch, place it on the timeline and write it out.
    /// `false` at the end of the stream.
    fn load(&mut self) -> Result<bool, PipelineError> {
        let Some(batches) = self.batches.as_mut() else {
            return Ok(false);
        };
        let Some(batch) = batches.next_batch()? else {
            self.batches = None;
            return Ok(false);
        };
        let d = DeflectionRaw::from_table(&batch)?;
        let t_s: Vec<f64> = (0..d.len())
            .map(|i| {
                self.clocks
                    .get(&d.segment[i])
                    .map_or(f64::NAN, |c| c.digitizer.to_shared(d.t_dev_s[i]))
            })
            .collect();
        let nm: Vec<f64> = d.V.iter().map(|v| v * self.invols_nm_per_V).collect();
        self.seg = d.segment.clone();
        self.t_s = t_s.clone();
        self.v = d.V.clone();
        self.pos = 0;
        let out = DeflectionData {
            seq: d.seq,
            step: d.step,
            segment: d.segment,
            index: d.index,
            t_dev_s: d.t_dev_s,
            host_ns: d.host_ns,
            V: d.V,
            t_s,
            deflection_nm: nm,
        };
        self.out.write(&out.into_table())?;
        Ok(true)
    }

    /// The reading under the cursor: (segment, shared time, volts).
    fn peek(&mut self) -> Result<Option<(i64, f64, f64)>, PipelineError> {
        while self.pos >= self.seg.len().min(self.t_s.len()).min(self.v.len()) {
            if !self.load()? {
                return Ok(None);
            }
        }
        Ok(Some((
            self.seg[self.pos],
            self.t_s[self.pos],
            self.v[self.pos],
        )))
    }

    /// Deflection (V) at shared time `t_s` of segment `seg`: linear between
    /// the segment's readings around it, NaN outside them (missing data
    /// stays visible). Instants must come in time order within a segment
    /// and segments in order.
    fn at(&mut self, seg: i64, t_s: f64) -> Result<f64, PipelineError> {
        if !t_s.is_finite() {
            return Ok(f64::NAN);
        }
        while let Some((cs, ct, cv)) = self.peek()? {
            if cs > seg || (cs == seg && ct > t_s) {
                break;
            }
            if cs == seg && ct.is_finite() {
                match self.prev {
                    Some((ps, pt, _)) if ps == seg && ct < pt => self.out_of_order += 1,
                    _ => self.prev = Some((cs, ct, cv)),
                }
            }
            self.pos += 1;
        }
        let Some((ps, pt, pv)) = self.prev.filter(|p| p.0 == seg) else {
            return Ok(f64::NAN);
        };
        if pt == t_s {
            return Ok(pv);
        }
        if t_s < pt {
            return Ok(f64::NAN);
        }
        Ok(match self.peek()? {
            Some((ns, nt, nv)) if ns == ps && nt > pt && nt.is_finite() => {
                pv + (t_s - pt) / (nt - pt) * (nv - pv)
            }
            _ => f64::NAN,
        })
    }

    /// Write the readings not yet reached and finish the file.
    fn finish(mut self) -> Result<u64, PipelineError> {
        while self.load()? {}
        Ok(self.out.finish()?)
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

    let host_s = |ns: i64| ns as f64 * 1e-9 * speed;

    // Pass 1: what the clock fits need, segment by segment.
    let mut stamps: BTreeMap<i64, SegmentStamps> = BTreeMap::new();
    for_each_batch(
        dir,
        PotentiostatRaw::FILE,
        PotentiostatRaw::from_table,
        |p| {
            for i in 0..p.len() {
                let s = stamps.entry(p.segment[i]).or_insert_with(|| SegmentStamps {
                    step: p.step[i],
                    pot_dev_s: Vec::new(),
                    pot_host_s: Vec::new(),
                    defl_newest: Vec::new(),
                    pinned: PinnedSpan::new(dt_dmm_s),
                    n_deflection: 0,
                });
                s.pot_dev_s.push(p.t_dev_s[i]);
                s.pot_host_s.push(host_s(p.host_ns[i]));
            }
            Ok(())
        },
    )?;
    for_each_batch(dir, DeflectionRaw::FILE, DeflectionRaw::from_table, |d| {
        for i in 0..d.len() {
            if let Some(s) = stamps.get_mut(&d.segment[i]) {
                let (h, t) = (d.host_ns[i], d.t_dev_s[i]);
                match s.defl_newest.last_mut() {
                    Some(last) if last.0 == h => last.1 = last.1.max(t),
                    _ => s.defl_newest.push((h, f64::NEG_INFINITY.max(t))),
                }
                s.pinned.push(d.index[i], d.t_dev_s[i]);
                s.n_deflection += 1;
            }
        }
        Ok(())
    })?;

    let mut alignment = Vec::new();
    let mut clocks_of: BTreeMap<i64, SegmentClocks> = BTreeMap::new();
    for (&seg, s) in &mut stamps {
        let newest = newest_per_stamp(std::mem::take(&mut s.defl_newest));
        let dt: Vec<f64> = newest.iter().map(|&(_, t)| t).collect();
        let dh: Vec<f64> = newest.iter().map(|&(h, _)| host_s(h)).collect();
        drop(newest);
        // Readings in blocks, each pinned to its own sync edge: placed by
        // the potentiostat's clock; one burst: the digitizer's own fit.
        let aligned = match s.pinned.finish() {
            Some(span_s) => align_segment_pinned(&s.pot_dev_s, &s.pot_host_s, span_s),
            None => align_segment(&s.pot_dev_s, &s.pot_host_s, &dt, &dh),
        };
        let clocks = match aligned {
            Ok(c) => c,
            Err(e) => {
                // Too few samples to place this segment on the timeline.
                alignment.push(SegmentAlignment {
                    segment: seg,
                    step: s.step,
                    potentiostat_drift_ppm: f64::NAN,
                    deflection_drift_ppm: f64::NAN,
                    trigger_t_s: f64::NAN,
                    alignment_error_estimate_s: f64::NAN,
                    digitizer_sample_interval_s: dt_dmm_s,
                    n_potentiostat: s.pot_dev_s.len(),
                    n_deflection: s.n_deflection,
                    note: Some(format!("not aligned: {e}")),
                });
                continue;
            }
        };
        // Too few digitizer readings to fit drift: the trigger alone places them.
        let note = clocks.digitizer_error.as_ref().map(|e| {
            if s.n_deflection == 0 {
                "no digitizer readings: did the digitizer see the trigger edge? \
                 (check the potentiostat digital out -> Ext Trig wiring)"
                    .to_string()
            } else {
                format!("digitizer drift not fitted ({e}); trigger offset only")
            }
        });
        alignment.push(SegmentAlignment {
            segment: seg,
            step: s.step,
            potentiostat_drift_ppm: clocks.potentiostat.drift_ppm(),
            deflection_drift_ppm: clocks.digitizer_drift_ppm,
            trigger_t_s: clocks.potentiostat.offset_s,
            alignment_error_estimate_s: clocks.alignment_error_estimate_s,
            digitizer_sample_interval_s: dt_dmm_s,
            n_potentiostat: s.pot_dev_s.len(),
            n_deflection: s.n_deflection,
            note,
        });
        clocks_of.insert(seg, clocks);
    }
    drop(stamps);

    let data = dir.join(vegard_store::DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|error| PipelineError::Io {
        path: data.clone(),
        error,
    })?;

    // Pass 2: both long streams again, a batch at a time, each sample
    // placed on the shared timeline; the potentiostat's samples with the
    // deflection interpolated onto them are the aligned table. It is
    // written under a working name and published last (below).
    let aligned_final = aligned_path(dir);
    let aligned_work = aligned_final.with_extension("parquet.partial");
    let mut p_out = ParquetTableWriter::create(
        &data_path(dir, PotentiostatData::FILE),
        PotentiostatData::COLUMNS,
    )?;
    let mut a_out =
        ParquetTableWriter::create(&aligned_work, &SweepLabels::after(Aligned::COLUMNS))?;
    let mut index = StepIndex::default();
    let mut defl = DeflectionCursor::new(dir, &clocks_of, invols_nm_per_V)?;
    for_each_batch(
        dir,
        PotentiostatRaw::FILE,
        PotentiostatRaw::from_table,
        |p| {
            let n = p.len();
            let p_t: Vec<f64> = (0..n)
                .map(|i| {
                    clocks_of
                        .get(&p.segment[i])
                        .map_or(f64::NAN, |c| c.potentiostat.to_shared(p.t_dev_s[i]))
                })
                .collect();
            let mut deflection_V = Vec::with_capacity(n);
            for (&seg, &t) in p.segment.iter().zip(&p_t) {
                deflection_V.push(defl.at(seg, t)?);
            }
            let deflection_nm = deflection_V.iter().map(|v| v * invols_nm_per_V).collect();
            // Labels of the plan (sweep iteration, temperature setpoint) and
            // the temperature measured at each sample.
            let (sweep_iteration, setpoint_K) = label_columns(&plan, &p.step);
            let sweep_labels = sweep_label_columns(&plan, &p.step);
            let T_K = temps.at(&p_t);
            index.add(&p.step, &p.segment);
            let aligned = Aligned {
                t_s: p_t.clone(),
                step: p.step.clone(),
                segment: p.segment.clone(),
                cycle: p.cycle.clone(),
                E_V: p.E_V.clone(),
                I_A: p.I_A.clone(),
                deflection_V,
                deflection_nm,
                sweep_iteration,
                setpoint_K,
                T_K,
            };
            a_out.write(&sweep_labels.append_to(aligned.into_table()))?;
            let out = PotentiostatData {
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
            p_out.write(&out.into_table())?;
            Ok(())
        },
    )?;
    let out_of_order = defl.out_of_order;
    defl.finish()?;
    p_out.finish()?;
    let aligned_rows = a_out.finish()?;
    let aligned = AlignedFile::indexed(&aligned_work, index);

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
    let eis_labels = sweep_label_columns(&plan, &eis.step);
    vegard_store::write_parquet(
        &data_path(dir, EisData::FILE),
        &eis_labels.append_to(eis.into_table()),
    )?;
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
    let untrusted_steps = untrusted_steps(aligned.index().segments(), &untrusted);
    // A step at a time, read back from the table just written.
    let (cv_steps, mut analysis_errors) = analyze_steps(
        &mut |step| aligned.cv_samples(step),
        &recipe,
        &|_| None,
        &untrusted,
    )?;
    if out_of_order > 0 {
        analysis_errors.push(AnalysisIssue::new(
            -1,
            IssueKind::Clock,
            format!(
                "warning: {out_of_order} deflection readings were earlier than the reading \
                 before them and were left out of the aligned table's deflection"
            ),
        ));
    }
    // Each step's largest alignment error estimate, for the ESM phase check.
    let mut alignment_error_s: BTreeMap<i64, f64> = BTreeMap::new();
    for seg in &alignment {
        let e = alignment_error_s.entry(seg.step).or_insert(0.0);
        *e = e.max(seg.alignment_error_estimate_s);
    }
    let (esm, esm_errors) = esm_table(
        &plan,
        &mut |step| aligned.step_rows(step),
        &lockin_raw,
        invols_nm_per_V,
        speed,
        &untrusted_steps,
        &alignment_error_s,
    )?;
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
    let esm_labels = sweep_label_columns(&plan, &esm.step);
    vegard_store::write_parquet(
        &data_path(dir, EsmData::FILE),
        &esm_labels.append_to(esm.into_table()),
    )?;
    // Last: readers take aligned.parquet as "this run was finalised", so it
    // must not appear before the tables it stands for.
    std::fs::rename(&aligned_work, &aligned_final).map_err(|error| PipelineError::Io {
        path: aligned_final.clone(),
        error,
    })?;
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
        aligned_rows: usize::try_from(aligned_rows).unwrap_or(usize::MAX),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Stamps out of order and repeated come out sorted, one each, with
    /// the newest device time; in order, nothing moves.
    #[test]
    fn newest_per_stamp_is_a_sorted_max_per_stamp() {
        let got = newest_per_stamp(vec![(5, 1.0), (3, 2.0), (5, 4.0), (3, 0.5), (9, 7.0)]);
        assert_eq!(got, [(3, 2.0), (5, 4.0), (9, 7.0)]);
        let sorted = vec![(1, 0.1), (2, 0.2), (2, 0.3), (4, 0.4)];
        assert_eq!(newest_per_stamp(sorted), [(1, 0.1), (2, 0.3), (4, 0.4)]);
        assert!(newest_per_stamp(Vec::new()).is_empty());
    }
}
