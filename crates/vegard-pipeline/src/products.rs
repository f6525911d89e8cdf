//! Per-step products of the frequency-domain techniques and of the
//! temperature stage, built at finalisation from the raw streams and the
//! aligned table:
//!
//! - `data/eis.parquet`: one row per impedance point, with the step's labels
//!   and the temperature measured when the point was taken;
//! - `data/esm.parquet`: one row per ESM frequency: the software lock-in's
//!   phasors of potential, current and deflection over the last whole
//!   periods of that frequency's dwell, their ratios, and the hardware
//!   lock-in's X/Y beside them;
//! - the per-step records of `run.toml` (labels + measured temperature).
//!
//! Host-stamped streams (temperature, EIS points, lock-in reads) go onto the
//! shared timeline as `host_ns x speed`: the shared timeline is anchored on
//! host receive stamps too (lower envelope), so the two agree to the
//! transport latency, far below anything a thermal stage or an impedance
//! point resolves.

use vegard_analysis::esm_point;
use vegard_clock::resample_linear;
use vegard_recipe::{PlannedStep, Step, StepLabel, SweepParameter};
use vegard_store::schema::{
    Aligned, EisData, EisRaw, EsmData, EsmDataRow, LockInRaw, SweepLabels, TemperatureRaw,
};
use vegard_store::{MISSING_I64, StepRecord};

use crate::{AnalysisIssue, IssueKind};

/// Measured temperature on the shared timeline (ascending t).
pub(crate) struct TemperatureTrace {
    pub t_s: Vec<f64>,
    pub T_K: Vec<f64>,
    pub step: Vec<i64>,
}

impl TemperatureTrace {
    pub(crate) fn from_raw(raw: &TemperatureRaw, speed: f64) -> Self {
        TemperatureTrace {
            t_s: raw
                .host_ns
                .iter()
                .map(|&h| h as f64 * 1e-9 * speed)
                .collect(),
            T_K: raw.T_K.clone(),
            step: raw.step.clone(),
        }
    }

    /// Temperature at each instant (linear between readings; NaN outside
    /// the recorded range, or everywhere without a stage).
    pub(crate) fn at(&self, t_s: &[f64]) -> Vec<f64> {
        // Between the last reading and a sample a few ms later, hold the
        // last reading rather than report NaN.
        let mut out = resample_linear(&self.t_s, &self.T_K, t_s);
        if let (Some(&t_last), Some(&T_last)) = (self.t_s.last(), self.T_K.last()) {
            for (o, &t) in out.iter_mut().zip(t_s) {
                if o.is_nan() && t > t_last && t - t_last < 5.0 {
                    *o = T_last;
                }
            }
        }
        out
    }
}

/// `run.toml` per-step records: kind, labels, measured temperature.
pub(crate) fn step_records(plan: &[PlannedStep], temps: &TemperatureTrace) -> Vec<StepRecord> {
    plan.iter()
        .enumerate()
        .map(|(k, p)| {
            let readings: Vec<f64> = temps
                .step
                .iter()
                .zip(&temps.T_K)
                .filter(|(s, T)| **s == k as i64 && T.is_finite())
                .map(|(_, T)| *T)
                .collect();
            let n = readings.len();
            let some = |v: f64| (n > 0).then_some(v);
            StepRecord {
                step: k as i64,
                kind: p.step.kind_name().to_string(),
                recipe_step: p.label.recipe_step as i64,
                sweep_iteration: p.label.sweep_iteration.map(i64::from),
                setpoint_K: p.label.setpoint_K,
                sweep_dc_V: p.label.sweep_value(SweepParameter::DcV),
                sweep_amplitude_V: p.label.sweep_value(SweepParameter::AmplitudeV),
                sweep_scan_rate_V_per_s: p.label.sweep_value(SweepParameter::ScanRateVPerS),
                sweep_freq_Hz: p.label.sweep_value(SweepParameter::FreqHz),
                nominal_duration_s: p.step.duration_s(),
                T_mean_K: some(readings.iter().sum::<f64>() / n.max(1) as f64),
                T_min_K: some(readings.iter().copied().fold(f64::INFINITY, f64::min)),
                T_max_K: some(readings.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                T_readings: (n > 0).then_some(n as i64),
            }
        })
        .collect()
}

/// Label columns of a table with a `step` column: the enclosing sweep's
/// iteration ([`MISSING_I64`] outside a sweep) and temperature setpoint (NaN if none).
pub(crate) fn label_columns(plan: &[PlannedStep], step: &[i64]) -> (Vec<i64>, Vec<f64>) {
    step.iter()
        .map(|&s| {
            let l = usize::try_from(s)
                .ok()
                .and_then(|s| plan.get(s))
                .map(|p| &p.label);
            (
                l.and_then(|l| l.sweep_iteration)
                    .map_or(MISSING_I64, i64::from),
                l.and_then(|l| l.setpoint_K).unwrap_or(f64::NAN),
            )
        })
        .unzip()
}

/// Parameter-sweep label columns of a table with a `step` column: the
/// value each enclosing parameter sweep gave the row's plan step, NaN (a
/// null in the file) where none does or the step is not in the plan.
pub(crate) fn sweep_label_columns(plan: &[PlannedStep], step: &[i64]) -> SweepLabels {
    let mut out = SweepLabels::missing(0);
    for &s in step {
        let label: Option<&StepLabel> = usize::try_from(s)
            .ok()
            .and_then(|s| plan.get(s))
            .map(|p| &p.label);
        let value = |parameter| {
            label
                .and_then(|l| l.sweep_value(parameter))
                .unwrap_or(f64::NAN)
        };
        out.sweep_dc_V.push(value(SweepParameter::DcV));
        out.sweep_amplitude_V
            .push(value(SweepParameter::AmplitudeV));
        out.sweep_scan_rate_V_per_s
            .push(value(SweepParameter::ScanRateVPerS));
        out.sweep_freq_Hz.push(value(SweepParameter::FreqHz));
    }
    out
}

/// `data/eis.parquet`: the raw impedance points with labels, shared time
/// and measured temperature.
pub(crate) fn eis_table(
    raw: EisRaw,
    plan: &[PlannedStep],
    temps: &TemperatureTrace,
    speed: f64,
) -> EisData {
    let t_s: Vec<f64> = raw
        .host_ns
        .iter()
        .map(|&h| h as f64 * 1e-9 * speed)
        .collect();
    let (sweep_iteration, setpoint_K) = label_columns(plan, &raw.step);
    EisData {
        T_K: temps.at(&t_s),
        t_s,
        sweep_iteration,
        setpoint_K,
        seq: raw.seq,
        step: raw.step,
        segment: raw.segment,
        index: raw.index,
        host_ns: raw.host_ns,
        f_Hz: raw.f_Hz,
        Z_re_ohm: raw.Z_re_ohm,
        Z_im_ohm: raw.Z_im_ohm,
        status: raw.status,
    }
}

/// Why an ESM frequency's analysed window is compromised: the bits of
/// `data/esm.parquet`'s `flagged` column (0 = clean). Runs finalised before
/// these bits existed wrote 1 for "late switch or short dwell".
pub mod esm_flag {
    /// The lock-in's sine switched to this frequency after the analysed
    /// window began: part of the window still carries the previous one.
    pub const LATE_SWITCH: i64 = 1;
    /// The dwell was shorter than the analysed periods, so the window
    /// reaches back into the previous frequency.
    pub const SHORT_DWELL: i64 = 2;
    /// The cell saw far less modulation than was set.
    pub const NO_MODULATION: i64 = 4;
    /// The segment's clock alignment error estimate is more than
    /// `vegard_recipe::MAX_ALIGNMENT_PERIOD_FRACTION` of this frequency's
    /// period: its phase is not known to 3.6 degrees.
    pub const CLOCK_COARSE: i64 = 8;
}

/// Demodulated potential amplitude below this fraction of the recipe's
/// `amplitude_V` counts as missing modulation. The potentiostat holds the
/// cell at the set amplitude to within its gain error (a few %), so half is
/// far outside normal operation yet catches a sine that never arrived.
pub const MIN_MODULATION_FRACTION: f64 = 0.5;

/// `data/esm.parquet` and, for frequencies that could not be demodulated
/// or whose window is compromised (see [`esm_flag`]), issues naming the
/// step and frequency. A sweep recorded in a segment whose clock is
/// untrusted (`untrusted_steps`: plan step -> (segment, why)) is not
/// demodulated: the software lock-in's periods are the shared timeline's,
/// so its spectrum would be as wrong as the clock; one
/// [`IssueKind::Clock`] issue stands in for its rows.
///
/// The aligned table comes a step at a time (`rows_of(step)`).
pub(crate) fn esm_table<E>(
    plan: &[PlannedStep],
    rows_of: &mut dyn FnMut(i64) -> Result<Aligned, E>,
    lockin: &LockInRaw,
    invols_nm_per_V: f64,
    speed: f64,
    untrusted_steps: &std::collections::BTreeMap<i64, (i64, String)>,
    alignment_error_s: &std::collections::BTreeMap<i64, f64>,
) -> Result<(EsmData, Vec<AnalysisIssue>), E> {
    let mut cols = EsmData::default();
    let mut errors = Vec::new();
    let (l_step, l_idx, l_x, l_y, l_sw) = (
        &lockin.step,
        &lockin.freq_index,
        &lockin.x_V_rms,
        &lockin.y_V_rms,
        &lockin.switched_host_ns,
    );
    for (k, p) in plan.iter().enumerate() {
        let Step::EsmSweep(e) = &p.step else { continue };
        if let Some((seg, why)) = untrusted_steps.get(&(k as i64)) {
            errors.push(crate::analyze::clock_issue(
                k as i64,
                "esm_sweep",
                *seg,
                why,
                "the ESM spectrum",
            ));
            continue;
        }
        let freqs = e.frequencies_Hz();
        let dt_s = e.ca_sample_interval_s();
        let a = rows_of(k as i64)?;
        for (j, &f_Hz) in freqs.iter().enumerate() {
            let rows: Vec<usize> = (0..a.len())
                .filter(|&i| a.cycle[i] == j as i64 + 1)
                .filter(|&i| a.t_s[i].is_finite())
                .collect();
            let what = format!("step {k} (esm_sweep) at {f_Hz} Hz");
            let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else {
                errors.push(AnalysisIssue::new(
                    k as i64,
                    IssueKind::NoData,
                    format!("{what}: no samples recorded"),
                ));
                continue;
            };
            // The dwell ends one sample interval after its last sample; the
            // analysed periods are the last whole ones, so the settling
            // periods (and the lock-in's switch latency) fall before them.
            let dwell_start_s = a.t_s[first] - dt_s;
            let t_end_s = a.t_s[last] + dt_s;
            let t_start_s = t_end_s - f64::from(e.periods) / f_Hz;
            let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let (tt, ee, ii, uu) = (
                pick(&a.t_s),
                pick(&a.E_V),
                pick(&a.I_A),
                pick(&a.deflection_nm),
            );
            let li = (0..l_step.len()).find(|&r| l_step[r] == k as i64 && l_idx[r] == j as i64);
            let switched_s = li.map_or(f64::NAN, |r| l_sw[r] as f64 * 1e-9 * speed);
            // The sine must have been at this frequency before the window.
            let mut flags = 0;
            let mut notes = Vec::new();
            if switched_s.is_finite() && switched_s > t_start_s {
                flags |= esm_flag::LATE_SWITCH;
                notes.push(format!(
                    "lock-in switched {:.3} s into the analysed window (switch latency exceeds the settling time)",
                    switched_s - t_start_s
                ));
            }
            // Phase is only as good as the clock alignment: judged per
            // frequency against its own period.
            if let Some(&est_s) = alignment_error_s.get(&(k as i64))
                && est_s * f_Hz > vegard_recipe::MAX_ALIGNMENT_PERIOD_FRACTION
            {
                flags |= esm_flag::CLOCK_COARSE;
                notes.push(format!(
                    "clock alignment uncertain by {} us, {} degrees of phase at this frequency \
                     (more than {})",
                    vegard_core::format::sig(est_s * 1e6, 3),
                    vegard_core::format::sig(est_s * f_Hz * 360.0, 2),
                    vegard_core::format::sig(
                        vegard_recipe::MAX_ALIGNMENT_PERIOD_FRACTION * 360.0,
                        2
                    )
                ));
            }
            if t_start_s < dwell_start_s - 0.5 * dt_s {
                flags |= esm_flag::SHORT_DWELL;
                notes.push(format!(
                    "dwell {:.3} s shorter than {} analysed periods",
                    t_end_s - dwell_start_s,
                    e.periods
                ));
            }
            let T_mean_K = {
                let v: Vec<f64> = rows
                    .iter()
                    .map(|&i| a.T_K[i])
                    .filter(|T| T.is_finite())
                    .collect();
                if v.is_empty() {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            };
            match esm_point(&tt, &ee, &ii, &uu, f_Hz, t_start_s, e.periods) {
                Ok(pt) => {
                    let (x, y) = li.map_or((f64::NAN, f64::NAN), |r| (l_x[r], l_y[r]));
                    // The cell must have seen the sine: a modulation far below
                    // the one set (sine out off, cable, external input not
                    // enabled) leaves a response that is noise over noise.
                    let E_amp_V = pt.E_V.amplitude();
                    // (NaN, a demodulation that saw nothing, counts as missing.)
                    let seen = E_amp_V >= MIN_MODULATION_FRACTION * e.amplitude_V;
                    if !seen {
                        flags |= esm_flag::NO_MODULATION;
                        notes.push(format!(
                            "modulation missing: {:.3} mV at the cell where {:.3} mV was set",
                            E_amp_V * 1e3,
                            e.amplitude_V * 1e3
                        ));
                    }
                    if flags != 0 {
                        errors.push(AnalysisIssue::new(
                            k as i64,
                            IssueKind::EsmWindow,
                            format!(
                                "{what}: warning: {}; left out of the ESM fit",
                                notes.join("; ")
                            ),
                        ));
                    }
                    cols.push(&esm_row(
                        k,
                        j,
                        p,
                        &pt,
                        T_mean_K,
                        x,
                        y,
                        invols_nm_per_V,
                        flags,
                    ));
                }
                Err(err) => errors.push(AnalysisIssue::new(
                    k as i64,
                    IssueKind::FitFailed,
                    format!("{what}: {err}"),
                )),
            }
        }
    }
    Ok((cols, errors))
}

/// One demodulated ESM frequency as a row of `data/esm.parquet`.
#[allow(clippy::too_many_arguments)]
fn esm_row(
    k: usize,
    j: usize,
    p: &PlannedStep,
    pt: &vegard_analysis::EsmPoint,
    T_K: f64,
    x: f64,
    y: f64,
    invols_nm_per_V: f64,
    flags: i64,
) -> EsmDataRow {
    EsmDataRow {
        step: k as i64,
        freq_index: j as i64,
        sweep_iteration: p.label.sweep_iteration.map_or(MISSING_I64, i64::from),
        setpoint_K: p.label.setpoint_K.unwrap_or(f64::NAN),
        T_K,
        f_Hz: pt.f_Hz,
        t_start_s: pt.t_start_s,
        E_amp_V: pt.E_V.amplitude(),
        I_amp_A: pt.I_A.amplitude(),
        deflection_amp_nm: pt.deflection_nm.amplitude(),
        response_nm_per_V: pt.response_nm_per_V.amplitude(),
        response_phase_deg: pt.response_nm_per_V.phase_deg(),
        Z_re_ohm: pt.Z_ohm.re,
        Z_im_ohm: pt.Z_ohm.im,
        deflection_h2_ratio: pt.deflection_h2_ratio,
        deflection_residual_nm_rms: pt.deflection_residual_nm_rms,
        lockin_x_V_rms: x,
        lockin_y_V_rms: y,
        // RMS volts at the detector -> peak nm of deflection.
        lockin_deflection_amp_nm: x.hypot(y) * std::f64::consts::SQRT_2 * invols_nm_per_V,
        lockin_phase_deg: y.atan2(x).to_degrees(),
        flagged: flags,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ESM_RECIPE: &str = r#"
[run]
name = "t"
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "esm_sweep"
dc_V = 0.4
amplitude_V = 0.02
freq_Hz = [1.0, 0.1]
periods = 2
"#;

    /// An ESM sweep recorded in an untrusted segment is not demodulated:
    /// one `Clock` issue names the step, segment and drift instead of its
    /// rows. Trusted, the same (empty) data give the usual per-frequency
    /// `NoData` issues.
    #[test]
    fn an_esm_sweep_in_an_untrusted_segment_is_withheld() {
        let recipe = vegard_recipe::parse_recipe(ESM_RECIPE, "t.toml").unwrap();
        let plan = recipe.plan();
        let mut rows_of =
            |_step: i64| -> Result<Aligned, std::convert::Infallible> { Ok(Aligned::default()) };
        let why = vegard_clock::segment_clock_problem(20.0, -897_792.0).unwrap();
        let untrusted = std::collections::BTreeMap::from([(0, (3, why))]);
        let (esm, issues) = esm_table(
            &plan,
            &mut rows_of,
            &LockInRaw::default(),
            60.0,
            1.0,
            &untrusted,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(esm.len(), 0);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IssueKind::Clock);
        assert_eq!(issues[0].step, Some(0));
        assert_eq!(
            issues[0].message,
            "step 0 (esm_sweep): clock: deflection drift -897792 ppm beyond ±1000 ppm — time \
             alignment not trustworthy (bench and run speeds differ?) (segment 3); the ESM \
             spectrum not reported"
        );

        let (_, issues) = esm_table(
            &plan,
            &mut rows_of,
            &LockInRaw::default(),
            60.0,
            1.0,
            &std::collections::BTreeMap::new(),
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues.iter().all(|i| i.kind == IssueKind::NoData));
    }
}
