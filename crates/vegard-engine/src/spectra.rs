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
use vegard_recipe::{PlannedStep, Step};
use vegard_store::{Column, Table};

use crate::EngineError;

/// Measured temperature on the shared timeline (ascending t).
pub(crate) struct TemperatureTrace {
    pub t_s: Vec<f64>,
    pub T_K: Vec<f64>,
    pub step: Vec<i64>,
}

impl TemperatureTrace {
    pub(crate) fn from_raw(raw: &Table, speed: f64) -> Result<Self, EngineError> {
        if raw.is_empty() {
            return Ok(TemperatureTrace {
                t_s: Vec::new(),
                T_K: Vec::new(),
                step: Vec::new(),
            });
        }
        let host = raw.i64("host_ns")?;
        Ok(TemperatureTrace {
            t_s: host.iter().map(|&h| h as f64 * 1e-9 * speed).collect(),
            T_K: raw.f64("T_K")?,
            step: raw.i64("step")?,
        })
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
pub(crate) fn step_records(plan: &[PlannedStep], temps: &TemperatureTrace) -> Vec<toml::Table> {
    plan.iter()
        .enumerate()
        .map(|(k, p)| {
            let mut t = toml::Table::new();
            t.insert("step".into(), toml::Value::Integer(k as i64));
            t.insert("kind".into(), p.step.kind_name().into());
            t.insert(
                "recipe_step".into(),
                toml::Value::Integer(p.label.recipe_step as i64),
            );
            if let Some(i) = p.label.sweep_iteration {
                t.insert("sweep_iteration".into(), toml::Value::Integer(i64::from(i)));
            }
            if let Some(sp) = p.label.setpoint_K {
                t.insert("setpoint_K".into(), toml::Value::Float(sp));
            }
            t.insert(
                "nominal_duration_s".into(),
                toml::Value::Float(p.step.duration_s()),
            );
            let readings: Vec<f64> = temps
                .step
                .iter()
                .zip(&temps.T_K)
                .filter(|(s, T)| **s == k as i64 && T.is_finite())
                .map(|(_, T)| *T)
                .collect();
            if !readings.is_empty() {
                let n = readings.len() as f64;
                let mean = readings.iter().sum::<f64>() / n;
                let min = readings.iter().copied().fold(f64::INFINITY, f64::min);
                let max = readings.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                t.insert("T_mean_K".into(), toml::Value::Float(mean));
                t.insert("T_min_K".into(), toml::Value::Float(min));
                t.insert("T_max_K".into(), toml::Value::Float(max));
                t.insert(
                    "T_readings".into(),
                    toml::Value::Integer(readings.len() as i64),
                );
            }
            t
        })
        .collect()
}

/// Label columns of a table with a `step` column: the enclosing sweep's
/// iteration (-1 outside a sweep) and temperature setpoint (NaN if none).
pub(crate) fn label_columns(plan: &[PlannedStep], step: &[i64]) -> (Vec<i64>, Vec<f64>) {
    step.iter()
        .map(|&s| {
            let l = usize::try_from(s)
                .ok()
                .and_then(|s| plan.get(s))
                .map(|p| &p.label);
            (
                l.and_then(|l| l.sweep_iteration).map_or(-1, i64::from),
                l.and_then(|l| l.setpoint_K).unwrap_or(f64::NAN),
            )
        })
        .unzip()
}

/// `data/eis.parquet`: the raw impedance points with labels, shared time
/// and measured temperature.
pub(crate) fn eis_table(
    raw: &Table,
    plan: &[PlannedStep],
    temps: &TemperatureTrace,
    speed: f64,
) -> Result<Table, EngineError> {
    let mut t = raw.clone();
    if raw.is_empty() {
        for name in ["t_s", "T_K", "setpoint_K"] {
            t.push(name, Column::F64(Vec::new()));
        }
        t.push("sweep_iteration", Column::I64(Vec::new()));
        return Ok(t);
    }
    let host = raw.i64("host_ns")?;
    let t_s: Vec<f64> = host.iter().map(|&h| h as f64 * 1e-9 * speed).collect();
    let (iter, sp) = label_columns(plan, &raw.i64("step")?);
    t.push("T_K", Column::F64(temps.at(&t_s)));
    t.push("t_s", Column::F64(t_s));
    t.push("sweep_iteration", Column::I64(iter));
    t.push("setpoint_K", Column::F64(sp));
    Ok(t)
}

/// Columns of the aligned table the ESM demodulation needs.
pub(crate) struct AlignedView<'a> {
    pub t_s: &'a [f64],
    pub step: &'a [i64],
    pub cycle: &'a [i64],
    pub E_V: &'a [f64],
    pub I_A: &'a [f64],
    pub deflection_nm: &'a [f64],
    pub T_K: &'a [f64],
}

/// `data/esm.parquet` and, for frequencies that could not be demodulated,
/// messages naming the step and frequency.
pub(crate) fn esm_table(
    plan: &[PlannedStep],
    a: &AlignedView<'_>,
    lockin: &Table,
    invols_nm_per_V: f64,
    speed: f64,
) -> Result<(Table, Vec<String>), EngineError> {
    let mut cols = EsmColumns::default();
    let mut errors = Vec::new();
    let (l_step, l_idx, l_x, l_y, l_sw) = if lockin.is_empty() {
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new())
    } else {
        (
            lockin.i64("step")?,
            lockin.i64("freq_index")?,
            lockin.f64("x_V_rms")?,
            lockin.f64("y_V_rms")?,
            lockin.i64("switched_host_ns")?,
        )
    };
    for (k, p) in plan.iter().enumerate() {
        let Step::EsmSweep(e) = &p.step else { continue };
        let freqs = e.frequencies_Hz();
        let dt_s = e.ca_sample_interval_s();
        for (j, &f_Hz) in freqs.iter().enumerate() {
            let rows: Vec<usize> = (0..a.t_s.len())
                .filter(|&i| a.step[i] == k as i64 && a.cycle[i] == j as i64 + 1)
                .filter(|&i| a.t_s[i].is_finite())
                .collect();
            let what = format!("step {k} (esm_sweep) at {f_Hz} Hz");
            let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else {
                errors.push(format!("{what}: no samples recorded"));
                continue;
            };
            // The dwell ends one sample interval after its last sample; the
            // analysed periods are the last whole ones, so the settling
            // periods (and the lock-in's switch latency) fall before them.
            let dwell_start_s = a.t_s[first] - dt_s;
            let t_end_s = a.t_s[last] + dt_s;
            let t_start_s = t_end_s - f64::from(e.periods) / f_Hz;
            let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let (tt, ee, ii, uu) = (pick(a.t_s), pick(a.E_V), pick(a.I_A), pick(a.deflection_nm));
            let li = (0..l_step.len()).find(|&r| l_step[r] == k as i64 && l_idx[r] == j as i64);
            let switched_s = li.map_or(f64::NAN, |r| l_sw[r] as f64 * 1e-9 * speed);
            // The sine must have been at this frequency before the window.
            let mut note = String::new();
            if switched_s.is_finite() && switched_s > t_start_s {
                note = format!(
                    "lock-in switched {:.3} s into the analysed window (switch latency exceeds the settling time)",
                    switched_s - t_start_s
                );
            }
            if t_start_s < dwell_start_s - 0.5 * dt_s {
                note = format!(
                    "dwell {:.3} s shorter than {} analysed periods",
                    t_end_s - dwell_start_s,
                    e.periods
                );
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
                    let flagged = !note.is_empty();
                    if flagged {
                        errors.push(format!("{what}: warning: {note}"));
                    }
                    cols.push(k, j, p, &pt, T_mean_K, x, y, invols_nm_per_V, flagged);
                }
                Err(err) => errors.push(format!("{what}: {err}")),
            }
        }
    }
    Ok((cols.into_table(), errors))
}

#[derive(Default)]
struct EsmColumns {
    step: Vec<i64>,
    freq_index: Vec<i64>,
    sweep_iteration: Vec<i64>,
    setpoint_K: Vec<f64>,
    T_K: Vec<f64>,
    f_Hz: Vec<f64>,
    t_start_s: Vec<f64>,
    E_amp_V: Vec<f64>,
    I_amp_A: Vec<f64>,
    deflection_amp_nm: Vec<f64>,
    response_nm_per_V: Vec<f64>,
    response_phase_deg: Vec<f64>,
    Z_re_ohm: Vec<f64>,
    Z_im_ohm: Vec<f64>,
    deflection_h2_ratio: Vec<f64>,
    deflection_residual_nm_rms: Vec<f64>,
    lockin_x_V_rms: Vec<f64>,
    lockin_y_V_rms: Vec<f64>,
    lockin_deflection_amp_nm: Vec<f64>,
    lockin_phase_deg: Vec<f64>,
    /// 1 if the point carries a warning (see the analysis messages).
    flagged: Vec<i64>,
}

impl EsmColumns {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        k: usize,
        j: usize,
        p: &PlannedStep,
        pt: &vegard_analysis::EsmPoint,
        T_K: f64,
        x: f64,
        y: f64,
        invols: f64,
        flagged: bool,
    ) {
        self.step.push(k as i64);
        self.freq_index.push(j as i64);
        self.sweep_iteration
            .push(p.label.sweep_iteration.map_or(-1, i64::from));
        self.setpoint_K.push(p.label.setpoint_K.unwrap_or(f64::NAN));
        self.T_K.push(T_K);
        self.f_Hz.push(pt.f_Hz);
        self.t_start_s.push(pt.t_start_s);
        self.E_amp_V.push(pt.E_V.amplitude());
        self.I_amp_A.push(pt.I_A.amplitude());
        self.deflection_amp_nm.push(pt.deflection_nm.amplitude());
        self.response_nm_per_V
            .push(pt.response_nm_per_V.amplitude());
        self.response_phase_deg
            .push(pt.response_nm_per_V.phase_deg());
        self.Z_re_ohm.push(pt.Z_ohm.re);
        self.Z_im_ohm.push(pt.Z_ohm.im);
        self.deflection_h2_ratio.push(pt.deflection_h2_ratio);
        self.deflection_residual_nm_rms
            .push(pt.deflection_residual_nm_rms);
        self.lockin_x_V_rms.push(x);
        self.lockin_y_V_rms.push(y);
        // RMS volts at the detector -> peak nm of deflection.
        self.lockin_deflection_amp_nm
            .push(x.hypot(y) * std::f64::consts::SQRT_2 * invols);
        self.lockin_phase_deg.push(y.atan2(x).to_degrees());
        self.flagged.push(i64::from(flagged));
    }

    fn into_table(self) -> Table {
        let mut t = Table::default();
        t.push("step", Column::I64(self.step));
        t.push("freq_index", Column::I64(self.freq_index));
        t.push("sweep_iteration", Column::I64(self.sweep_iteration));
        t.push("setpoint_K", Column::F64(self.setpoint_K));
        t.push("T_K", Column::F64(self.T_K));
        t.push("f_Hz", Column::F64(self.f_Hz));
        t.push("t_start_s", Column::F64(self.t_start_s));
        t.push("E_amp_V", Column::F64(self.E_amp_V));
        t.push("I_amp_A", Column::F64(self.I_amp_A));
        t.push("deflection_amp_nm", Column::F64(self.deflection_amp_nm));
        t.push("response_nm_per_V", Column::F64(self.response_nm_per_V));
        t.push("response_phase_deg", Column::F64(self.response_phase_deg));
        t.push("Z_re_ohm", Column::F64(self.Z_re_ohm));
        t.push("Z_im_ohm", Column::F64(self.Z_im_ohm));
        t.push("deflection_h2_ratio", Column::F64(self.deflection_h2_ratio));
        t.push(
            "deflection_residual_nm_rms",
            Column::F64(self.deflection_residual_nm_rms),
        );
        t.push("lockin_x_V_rms", Column::F64(self.lockin_x_V_rms));
        t.push("lockin_y_V_rms", Column::F64(self.lockin_y_V_rms));
        t.push(
            "lockin_deflection_amp_nm",
            Column::F64(self.lockin_deflection_amp_nm),
        );
        t.push("lockin_phase_deg", Column::F64(self.lockin_phase_deg));
        t.push("flagged", Column::I64(self.flagged));
        t
    }
}
