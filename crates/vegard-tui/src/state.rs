//! [`DashState`]: everything the dashboard has learnt about the run, kept as
//! columnar history (one `Vec` per quantity) plus the running products that
//! would be too slow to recompute per frame: min-max block summaries, the
//! charge integral of each step, deflection paired onto potentiostat
//! samples, and the least-squares sums of the running kappa.
//!
//! `apply` is the only writer (the fields are public for reading: drawing,
//! tests and benches read them through `&DashState`).

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::readout::kappa_applies;
use crate::series::MinMaxIndex;
use crate::{DashEvent, LogLevel, Mode, PlanRow};

/// Log lines kept for the events panel (older ones are dropped).
pub const LOG_CAPACITY: usize = 500;

/// Bracketing deflection samples further apart than this (experiment s) are a
/// gap (between steps, or a missing segment): no deflection is interpolated
/// onto potentiostat samples inside it.
pub const MAX_PAIRING_GAP_S: f64 = 2.0;

/// The step that is running, from `StepStarted`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    pub index: usize,
    pub count: usize,
    pub kind: String,
    pub duration_s: f64,
}

/// The last `Progress` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressInfo {
    pub step: usize,
    pub count: usize,
    pub kind: String,
    pub cycle: u32,
    pub cycles: u32,
    pub elapsed_s: f64,
    pub eta_s: f64,
}

/// Potentiostat history, one entry per sample in every column.
#[derive(Debug, Clone, Default)]
pub struct PotHistory {
    pub t_s: Vec<f64>,
    pub E_V: Vec<f64>,
    pub I_A: Vec<f64>,
    pub cycle: Vec<u32>,
    pub step: Vec<usize>,
    /// Charge since the start of the sample's step (trapezoid of I), mC.
    pub Q_mC: Vec<f64>,
    /// Deflection interpolated at the sample's time, nm (NaN until the
    /// deflection covering it has arrived, or in a gap).
    pub u_nm: Vec<f64>,
    pub E_mm: MinMaxIndex,
    pub I_mm: MinMaxIndex,
}

/// Deflection history.
#[derive(Debug, Clone, Default)]
pub struct DeflHistory {
    pub t_s: Vec<f64>,
    pub nm: Vec<f64>,
    pub mm: MinMaxIndex,
}

/// A run of consecutive potentiostat samples with the same (step, cycle):
/// `start..end` indexes the potentiostat columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleSpan {
    pub step: usize,
    pub cycle: u32,
    pub start: usize,
    pub end: usize,
}

/// Least-squares slope of u (nm) against Q (mC) over one step, updated one
/// pair at a time with Welford's co-moments (no cancellation in long runs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KappaFit {
    pub step: usize,
    pub n: u64,
    mean_q: f64,
    mean_u: f64,
    m2_q: f64,
    m2_u: f64,
    c_qu: f64,
}

impl KappaFit {
    fn new(step: usize) -> Self {
        Self {
            step,
            ..Self::default()
        }
    }

    fn add(&mut self, q_mC: f64, u_nm: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dq = q_mC - self.mean_q;
        self.mean_q += dq / n;
        let du = u_nm - self.mean_u;
        self.mean_u += du / n;
        self.m2_q += dq * (q_mC - self.mean_q);
        self.m2_u += du * (u_nm - self.mean_u);
        self.c_qu += dq * (u_nm - self.mean_u);
    }

    /// Slope, nm/mC: None with fewer than 3 pairs or no spread in charge.
    pub fn kappa_nm_per_mC(&self) -> Option<f64> {
        (self.n >= 3 && self.m2_q > 0.0).then(|| self.c_qu / self.m2_q)
    }

    /// Coefficient of determination of the line.
    pub fn r2(&self) -> Option<f64> {
        (self.n >= 3 && self.m2_q > 0.0 && self.m2_u > 0.0)
            .then(|| self.c_qu * self.c_qu / (self.m2_q * self.m2_u))
    }
}

/// One impedance point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EisPoint {
    pub step: usize,
    pub f_Hz: f64,
    pub Z_re_ohm: f64,
    pub Z_im_ohm: f64,
}

/// One ESM point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EsmPt {
    pub step: usize,
    pub f_Hz: f64,
    pub amplitude_nm_per_V: f64,
    pub phase_deg: f64,
}

/// Stage readings.
#[derive(Debug, Clone, Default)]
pub struct TempHistory {
    pub t_s: Vec<f64>,
    pub T_K: Vec<f64>,
    /// NaN where the heater was not controlled.
    pub setpoint_K: Vec<f64>,
}

/// One device's clock as last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockRow {
    pub device: String,
    pub offset_s: f64,
    pub drift_ppm: f64,
    pub alignment_error_s: Option<f64>,
}

/// One line of the events panel.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub t_s: f64,
    pub level: LogLevel,
    pub text: String,
}

/// Everything the dashboard knows about the run.
#[derive(Debug, Clone)]
pub struct DashState {
    pub mode: Mode,
    pub run_dir: Option<PathBuf>,
    pub total_s: f64,
    pub speed: f64,
    pub plan: Vec<PlanRow>,
    pub instruments: Vec<(String, String)>,
    pub step: Option<StepInfo>,
    pub progress: Option<ProgressInfo>,
    pub pot: PotHistory,
    pub defl: DeflHistory,
    pub cycles: Vec<CycleSpan>,
    /// Running u–Q fit of the latest step whose kind it applies to
    /// ([`crate::readout::kappa_applies`]); samples of other steps leave it
    /// as it was, so an EIS or ESM step never replaces a CV's kappa.
    pub kappa: Option<KappaFit>,
    /// Kind of each step seen in `StepStarted`/`Progress`, for runs whose
    /// plan the dashboard does not know (kappa needs the kind of a sample's
    /// step after the next step has started).
    seen_kinds: Vec<(usize, String)>,
    /// Potentiostat samples before this index have had their deflection paired.
    paired: usize,
    /// Deflection index at or before the next pairing time.
    defl_cursor: usize,
    pub eis: Vec<EisPoint>,
    pub esm: Vec<EsmPt>,
    pub temp: TempHistory,
    pub clocks: Vec<ClockRow>,
    pub log: VecDeque<LogLine>,
    pub markers: usize,
    pub warnings: usize,
    pub errors: usize,
    pub paused: bool,
    /// The engine said the run is ending (`Aborting`, `Finalizing`): the
    /// cell is being or has been switched off, and `Finished` follows once
    /// the run folder is final (alignment and Parquet can take seconds).
    pub stopping: bool,
    pub finished: Option<(String, Option<String>)>,
    /// Latest experiment time seen in any stream or event, s.
    pub t_latest_s: f64,
}

impl DashState {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            run_dir: None,
            total_s: 0.0,
            speed: 1.0,
            plan: Vec::new(),
            instruments: Vec::new(),
            step: None,
            progress: None,
            pot: PotHistory::default(),
            defl: DeflHistory::default(),
            cycles: Vec::new(),
            kappa: None,
            seen_kinds: Vec::new(),
            paired: 0,
            defl_cursor: 0,
            eis: Vec::new(),
            esm: Vec::new(),
            temp: TempHistory::default(),
            clocks: Vec::new(),
            log: VecDeque::new(),
            markers: 0,
            warnings: 0,
            errors: 0,
            paused: false,
            stopping: false,
            finished: None,
            t_latest_s: 0.0,
        }
    }

    /// Fold one event into the state.
    pub fn apply(&mut self, ev: DashEvent) {
        match ev {
            DashEvent::Started {
                run_dir,
                total_s,
                speed,
                plan,
                instruments,
            } => {
                self.run_dir = Some(run_dir);
                self.total_s = total_s;
                self.speed = speed;
                if !plan.is_empty() {
                    self.plan = plan;
                }
                if !instruments.is_empty() {
                    self.instruments = instruments;
                }
            }
            DashEvent::StepStarted {
                index,
                count,
                kind,
                duration_s,
                sweep: _,
            } => {
                self.see_kind(index, &kind);
                self.step = Some(StepInfo {
                    index,
                    count,
                    kind,
                    duration_s,
                });
            }
            DashEvent::Progress {
                step,
                count,
                kind,
                cycle,
                cycles,
                elapsed_s,
                eta_s,
            } => {
                self.see_kind(step, &kind);
                if self.step.as_ref().is_none_or(|s| s.index != step) {
                    let duration_s = self.plan.get(step).map_or(f64::NAN, |r| r.duration_s);
                    self.step = Some(StepInfo {
                        index: step,
                        count,
                        kind: kind.clone(),
                        duration_s,
                    });
                }
                self.progress = Some(ProgressInfo {
                    step,
                    count,
                    kind,
                    cycle,
                    cycles,
                    elapsed_s,
                    eta_s,
                });
            }
            DashEvent::Potentiostat {
                t_s,
                E_V,
                I_A,
                cycle,
                step,
            } => self.push_potentiostat(&t_s, &E_V, &I_A, &cycle, &step),
            DashEvent::Deflection { t_s, deflection_nm } => {
                let n = t_s.len().min(deflection_nm.len());
                for (&t, &u) in t_s.iter().zip(&deflection_nm).take(n) {
                    self.defl.t_s.push(t);
                    self.defl.nm.push(u);
                    self.defl.mm.push(u);
                    self.see_time(t);
                }
                self.pair_deflection();
            }
            DashEvent::Impedance {
                step,
                f_Hz,
                Z_re_ohm,
                Z_im_ohm,
            } => self.eis.push(EisPoint {
                step,
                f_Hz,
                Z_re_ohm,
                Z_im_ohm,
            }),
            DashEvent::EsmPoint {
                step,
                f_Hz,
                amplitude_nm_per_V,
                phase_deg,
            } => self.esm.push(EsmPt {
                step,
                f_Hz,
                amplitude_nm_per_V,
                phase_deg,
            }),
            DashEvent::Temperature {
                t_s,
                T_K,
                setpoint_K,
            } => {
                self.temp.t_s.push(t_s);
                self.temp.T_K.push(T_K);
                self.temp.setpoint_K.push(setpoint_K.unwrap_or(f64::NAN));
                self.see_time(t_s);
            }
            DashEvent::Clock {
                device,
                offset_s,
                drift_ppm,
                alignment_error_s,
            } => {
                let row = ClockRow {
                    device,
                    offset_s,
                    drift_ppm,
                    alignment_error_s,
                };
                match self.clocks.iter_mut().find(|c| c.device == row.device) {
                    Some(c) => *c = row,
                    None => self.clocks.push(row),
                }
            }
            DashEvent::Log { t_s, level, text } => self.push_log(t_s, level, text),
            DashEvent::Paused(p) => self.paused = p,
            DashEvent::Finished { status, reason } => {
                self.paused = false;
                self.stopping = false;
                self.finished = Some((status, reason));
            }
            DashEvent::Aborting { .. } | DashEvent::Finalizing => self.stopping = true,
            // The engine's reports for the CLI's progress lines: the
            // dashboard draws the same from `Progress` and the recorded data
            // (a marker comes back from events.jsonl as a `Log`).
            DashEvent::Latest { .. }
            | DashEvent::TemperatureWait { .. }
            | DashEvent::PauseRequested(_)
            | DashEvent::Marker { .. } => {}
        }
    }

    fn see_kind(&mut self, index: usize, kind: &str) {
        if !self.seen_kinds.iter().any(|(i, _)| *i == index) {
            self.seen_kinds.push((index, kind.to_string()));
        }
    }

    fn see_time(&mut self, t_s: f64) {
        if t_s.is_finite() && t_s > self.t_latest_s {
            self.t_latest_s = t_s;
        }
    }

    fn push_log(&mut self, t_s: f64, level: LogLevel, text: String) {
        match level {
            LogLevel::Marker => self.markers += 1,
            LogLevel::Warn => self.warnings += 1,
            LogLevel::Error => self.errors += 1,
            LogLevel::Info => {}
        }
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { t_s, level, text });
    }

    fn push_potentiostat(
        &mut self,
        t_s: &[f64],
        E_V: &[f64],
        I_A: &[f64],
        cycle: &[u32],
        step: &[usize],
    ) {
        let n = t_s
            .len()
            .min(E_V.len())
            .min(I_A.len())
            .min(cycle.len())
            .min(step.len());
        let p = &mut self.pot;
        for k in 0..n {
            let (t, e, i, c, s) = (t_s[k], E_V[k], I_A[k], cycle[k], step[k]);
            let idx = p.t_s.len();
            // Charge restarts with every step; NaN current (open circuit)
            // carries the charge on unchanged.
            let q = match (p.step.last(), p.t_s.last(), p.I_A.last(), p.Q_mC.last()) {
                (Some(&ps), Some(&pt), Some(&pi), Some(&pq)) if ps == s => {
                    let dq = 0.5 * (pi + i) * (t - pt) * 1e3;
                    if dq.is_finite() { pq + dq } else { pq }
                }
                _ => 0.0,
            };
            match self.cycles.last_mut() {
                Some(span) if span.step == s && span.cycle == c && span.end == idx => {
                    span.end = idx + 1
                }
                _ => self.cycles.push(CycleSpan {
                    step: s,
                    cycle: c,
                    start: idx,
                    end: idx + 1,
                }),
            }
            p.t_s.push(t);
            p.E_V.push(e);
            p.I_A.push(i);
            p.cycle.push(c);
            p.step.push(s);
            p.Q_mC.push(q);
            p.u_nm.push(f64::NAN);
            p.E_mm.push(e);
            p.I_mm.push(i);
            if t.is_finite() && t > self.t_latest_s {
                self.t_latest_s = t;
            }
        }
        self.pair_deflection();
    }

    /// Interpolate deflection onto every potentiostat sample it now covers and
    /// feed (Q, u) of the current step into the running kappa. Both streams
    /// are time-ordered, so one forward pass with two cursors does it.
    fn pair_deflection(&mut self) {
        let d = &self.defl;
        let Some(&d_last) = d.t_s.last() else {
            return;
        };
        let p = &mut self.pot;
        while self.paired < p.t_s.len() {
            let i = self.paired;
            let t = p.t_s[i];
            if t > d_last {
                break; // wait for the deflection that covers it
            }
            while self.defl_cursor + 1 < d.t_s.len() && d.t_s[self.defl_cursor + 1] <= t {
                self.defl_cursor += 1;
            }
            let j = self.defl_cursor;
            let u = match (d.t_s.get(j), d.t_s.get(j + 1)) {
                (Some(&t0), Some(&t1)) if t0 <= t && t <= t1 && t1 - t0 <= MAX_PAIRING_GAP_S => {
                    let w = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
                    d.nm[j] + w * (d.nm[j + 1] - d.nm[j])
                }
                (Some(&t0), _) if t0 == t => d.nm[j],
                _ => f64::NAN,
            };
            p.u_nm[i] = u;
            let s = p.step[i];
            self.paired += 1;
            if !kind_of(&self.plan, &self.seen_kinds, s).is_some_and(kappa_applies) {
                continue;
            }
            let fit = match &mut self.kappa {
                Some(k) if k.step == s => k,
                other => other.insert(KappaFit::new(s)),
            };
            if u.is_finite() && p.Q_mC[i].is_finite() {
                fit.add(p.Q_mC[i], u);
            }
        }
    }

    /// The latest (step, cycle) span and the one before it in the same step:
    /// the "current" and "previous" cycles of the loop panels.
    pub fn current_cycles(&self) -> (Option<CycleSpan>, Option<CycleSpan>) {
        let n = self.cycles.len();
        let cur = n.checked_sub(1).and_then(|i| self.cycles.get(i)).copied();
        let prev = n
            .checked_sub(2)
            .and_then(|i| self.cycles.get(i))
            .copied()
            .filter(|p| cur.is_some_and(|c| c.step == p.step));
        (cur, prev)
    }

    /// Running kappa (nm/mC) of the step being paired, with its R² and pairs.
    pub fn kappa(&self) -> Option<(usize, f64, Option<f64>, u64)> {
        let k = self.kappa.as_ref()?;
        Some((k.step, k.kappa_nm_per_mC()?, k.r2(), k.n))
    }

    /// Kind of the plan step `index` (from the plan, else the running step).
    pub fn step_kind(&self, index: usize) -> Option<&str> {
        kind_of(&self.plan, &self.seen_kinds, index)
    }

    /// Kind of the running step (from `StepStarted`/`Progress`).
    pub fn current_kind(&self) -> Option<&str> {
        self.step.as_ref().map(|s| s.kind.as_str())
    }
}

/// Kind of step `index`: from the plan, else as seen in the run's events.
fn kind_of<'a>(plan: &'a [PlanRow], seen: &'a [(usize, String)], index: usize) -> Option<&'a str> {
    plan.get(index).map(|r| r.kind.as_str()).or_else(|| {
        seen.iter()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| k.as_str())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A CV-like step where u = -0.2 nm/mC × Q exactly: the running kappa must
    /// come out at -0.2 within 1e-6, with deflection on its own, finer grid.
    #[test]
    fn kappa_of_a_synthetic_vegard_line() {
        let mut s = DashState::new(Mode::Run);
        s.apply(DashEvent::StepStarted {
            index: 1,
            count: 3,
            kind: "cv".into(),
            duration_s: 30.0,
            sweep: String::new(),
        });
        let dt = 0.01;
        let n = 3000;
        let t: Vec<f64> = (0..n).map(|k| 5.0 + k as f64 * dt).collect();
        let i_a: Vec<f64> = t.iter().map(|t| 1e-4 * (t * 0.7).sin()).collect();
        // The same trapezoid the state integrates, to know Q exactly.
        let mut q = vec![0.0; n];
        for k in 1..n {
            q[k] = q[k - 1] + 0.5 * (i_a[k - 1] + i_a[k]) * dt * 1e3;
        }
        s.apply(DashEvent::Potentiostat {
            t_s: t.clone(),
            E_V: vec![0.4; n],
            I_A: i_a,
            cycle: vec![1; n],
            step: vec![1; n],
        });
        // Deflection every dt/2, linear in Q between potentiostat samples.
        let mut td = Vec::new();
        let mut ud = Vec::new();
        for k in 0..n - 1 {
            for h in 0..2 {
                let w = f64::from(h) * 0.5;
                td.push(t[k] + w * dt);
                ud.push(-0.2 * (q[k] + w * (q[k + 1] - q[k])) + 3.0);
            }
        }
        td.push(t[n - 1]);
        ud.push(-0.2 * q[n - 1] + 3.0);
        s.apply(DashEvent::Deflection {
            t_s: td,
            deflection_nm: ud,
        });
        let (step, kappa, r2, pairs) = s.kappa().expect("kappa");
        assert_eq!(step, 1);
        assert_eq!(pairs, n as u64);
        assert!((kappa + 0.2).abs() < 1e-6, "kappa {kappa}");
        assert!(r2.is_some_and(|r| (r - 1.0).abs() < 1e-9));

        // An ESM sweep follows: its oscillating charge and a deflection
        // unrelated to it must not touch the CV's kappa (issue 18: a kappa
        // with R² 0.18 was shown during an ESM sweep).
        s.apply(DashEvent::StepStarted {
            index: 2,
            count: 3,
            kind: "esm_sweep".into(),
            duration_s: 10.0,
            sweep: String::new(),
        });
        let t2: Vec<f64> = (0..500).map(|k| 40.0 + f64::from(k) * dt).collect();
        s.apply(DashEvent::Potentiostat {
            E_V: vec![0.4; 500],
            I_A: t2.iter().map(|t| 1e-5 * (t * 300.0).sin()).collect(),
            cycle: vec![1; 500],
            step: vec![2; 500],
            t_s: t2.clone(),
        });
        s.apply(DashEvent::Deflection {
            deflection_nm: t2.iter().map(|t| (t * 77.0).cos()).collect(),
            t_s: t2,
        });
        let (step, kappa, _, pairs) = s.kappa().expect("the CV's kappa is kept");
        assert_eq!((step, pairs), (1, n as u64));
        assert!((kappa + 0.2).abs() < 1e-6, "kappa {kappa}");
    }

    #[test]
    fn charge_restarts_per_step_and_cycles_are_spans() {
        let mut s = DashState::new(Mode::Run);
        s.apply(DashEvent::Potentiostat {
            t_s: vec![0.0, 1.0, 2.0, 3.0, 4.0],
            E_V: vec![0.1; 5],
            I_A: vec![1e-3, 1e-3, f64::NAN, 2e-3, 2e-3],
            cycle: vec![0, 0, 1, 1, 2],
            step: vec![0, 0, 1, 1, 1],
        });
        assert_eq!(s.pot.Q_mC, vec![0.0, 1.0, 0.0, 0.0, 2.0]);
        assert_eq!(s.cycles.len(), 3);
        let (cur, prev) = s.current_cycles();
        assert_eq!(cur.map(|c| (c.cycle, c.start, c.end)), Some((2, 4, 5)));
        assert_eq!(prev.map(|c| (c.cycle, c.start, c.end)), Some((1, 2, 4)));
    }
}
