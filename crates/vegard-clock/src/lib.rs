//! The shared clock: maps every device's own time onto the run's shared
//! timeline.
//!
//! Owns the device clock model `t_shared = offset + (1 + drift) * t_device`,
//! its estimation from host receive stamps (lower-envelope fit), trigger-based
//! alignment of a digitizer to the potentiostat, an alignment-error estimate,
//! and linear resampling onto a common time grid. Raw stamps are never
//! modified here: everything in this crate is a derived, re-computable
//! product (DESIGN.md, "Time: the shared clock").
//!
//! Why a lower envelope: a host receive stamp is always *later* than the
//! instant the device took the sample (transport and scheduling only ever add
//! delay). The smallest delays lie on a straight line whose slope is the
//! device's drift against the host; the bulk of the stamps above it is noise.
//!
//! Recordings made by other software, with no host stamps and no shared
//! trigger, are aligned by [`external`] (sync edges, start timestamps, or
//! cross-correlation of the deflection with the charge).

use serde::{Deserialize, Serialize};

pub mod external;

pub use external::{
    Edge, EdgeOptions, ExternalAlignment, ExternalError, ExternalMethod, XcorrOptions,
    align_by_edges, align_by_timestamps, align_by_xcorr, detect_edges,
};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ClockError {
    #[error("clock fit for {device}: need at least {need} stamped samples, got {got}")]
    TooFewSamples {
        device: String,
        need: usize,
        got: usize,
    },
    #[error("clock fit for {device}: device times span {span_s} s, too short to estimate drift")]
    TooShort { device: String, span_s: f64 },
    #[error("clock fit for {device}: non-finite stamp at sample {index}")]
    NonFinite { device: String, index: usize },
}

/// `t_shared = offset_s + (1 + drift) * t_device_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockModel {
    pub offset_s: f64,
    /// Dimensionless rate error of the device clock against the shared one
    /// (multiply by 1e6 for ppm).
    pub drift: f64,
}

impl ClockModel {
    pub const IDENTITY: ClockModel = ClockModel {
        offset_s: 0.0,
        drift: 0.0,
    };

    pub fn to_shared(&self, t_device_s: f64) -> f64 {
        self.offset_s + (1.0 + self.drift) * t_device_s
    }

    pub fn drift_ppm(&self) -> f64 {
        self.drift * 1e6
    }
}

/// One device's clock estimated from its stamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeFit {
    pub model: ClockModel,
    /// Standard error of the fitted drift (dimensionless).
    pub drift_se: f64,
    /// Standard error of the fitted offset, s.
    pub offset_se_s: f64,
    /// Number of envelope points the line went through.
    pub n_envelope: usize,
    /// RMS of the envelope points about the fitted line, s.
    pub residual_rms_s: f64,
    /// Median host delay above the envelope, s (how late stamps typically are).
    pub median_delay_s: f64,
    /// Span of device time covered, s.
    pub span_s: f64,
    /// Mean device time of the envelope points, s: the fitted line's pivot.
    pub t_mean_s: f64,
}

/// Fit `t_host = offset + (1 + drift) * t_device` through the lower envelope of
/// `(t_device_s, t_host_s)` pairs.
///
/// The device-time range is cut into `windows` equal slices; the sample with the
/// smallest delay `t_host - t_device` in each slice is an envelope point. A line
/// is fitted through the envelope points by least squares, points more than
/// 3 robust sigmas above it are dropped once, and the line is refitted.
pub fn fit_lower_envelope(
    device: &str,
    t_device_s: &[f64],
    t_host_s: &[f64],
    windows: usize,
) -> Result<EnvelopeFit, ClockError> {
    let n = t_device_s.len().min(t_host_s.len());
    const NEED: usize = 4;
    if n < NEED {
        return Err(ClockError::TooFewSamples {
            device: device.to_string(),
            need: NEED,
            got: n,
        });
    }
    for i in 0..n {
        if !t_device_s[i].is_finite() || !t_host_s[i].is_finite() {
            return Err(ClockError::NonFinite {
                device: device.to_string(),
                index: i,
            });
        }
    }
    let (t_min, t_max) = t_device_s[..n]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| {
            (a.min(t), b.max(t))
        });
    let span_s = t_max - t_min;
    if span_s <= 0.0 {
        return Err(ClockError::TooShort {
            device: device.to_string(),
            span_s,
        });
    }
    let windows = windows.clamp(2, n);
    let mut best: Vec<Option<(f64, f64)>> = vec![None; windows];
    for i in 0..n {
        let t = t_device_s[i];
        let delay = t_host_s[i] - t;
        let w = (((t - t_min) / span_s) * windows as f64) as usize;
        let w = w.min(windows - 1);
        match best[w] {
            Some((_, d)) if d <= delay => {}
            _ => best[w] = Some((t, delay)),
        }
    }
    let mut pts: Vec<(f64, f64)> = best.into_iter().flatten().collect();
    let mut line = fit_line(&pts);
    // One robust pass: drop envelope points far above the line (a window where
    // every stamp was late, e.g. the host was busy).
    let resid: Vec<f64> = pts.iter().map(|&(t, d)| d - line.at(t)).collect();
    let mad = median(&resid.iter().map(|r| r.abs()).collect::<Vec<_>>());
    let cut = 3.0 * 1.4826 * mad.max(1e-12);
    if pts.len() > 4 {
        let kept: Vec<(f64, f64)> = pts
            .iter()
            .zip(&resid)
            .filter(|(_, r)| **r <= cut)
            .map(|(p, _)| *p)
            .collect();
        if kept.len() >= 3 && kept.len() < pts.len() {
            pts = kept;
            line = fit_line(&pts);
        }
    }
    let delays: Vec<f64> = (0..n)
        .map(|i| t_host_s[i] - t_device_s[i] - line.at(t_device_s[i]))
        .collect();
    Ok(EnvelopeFit {
        model: ClockModel {
            offset_s: line.intercept,
            drift: line.slope,
        },
        drift_se: line.slope_se,
        offset_se_s: line.intercept_se,
        n_envelope: pts.len(),
        residual_rms_s: line.rms,
        median_delay_s: median(&delays),
        span_s,
        t_mean_s: pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64,
    })
}

impl EnvelopeFit {
    /// Combine the fitted drift with what is known before any fit: a quartz
    /// timebase is within about `prior_sigma` (e.g. 100e-6) of nominal.
    /// Precision-weighted mean of the fit and a zero-centred prior: a long,
    /// well-sampled segment keeps its fit, while a short one with few stamps
    /// (whose slope is mostly noise) falls back towards nominal rate instead
    /// of producing an absurd drift.
    pub fn with_drift_prior(mut self, prior_sigma: f64) -> Self {
        if !self.drift_se.is_finite() {
            // No usable fit at all: nominal rate, prior uncertainty.
            self.model.offset_s += self.model.drift * self.t_mean_s;
            self.model.drift = 0.0;
            self.drift_se = prior_sigma.abs();
            return self;
        }
        if prior_sigma.is_nan() || prior_sigma <= 0.0 {
            return self;
        }
        let w_fit = 1.0 / self.drift_se.max(1e-15).powi(2);
        let w_prior = 1.0 / prior_sigma.powi(2);
        let drift = self.model.drift * w_fit / (w_fit + w_prior);
        // Pivot about the envelope's centre, where the fit is best determined.
        self.model.offset_s += (self.model.drift - drift) * self.t_mean_s;
        self.model.drift = drift;
        self.drift_se = (1.0 / (w_fit + w_prior)).sqrt();
        self
    }
}

/// Alignment of a triggered digitizer to the potentiostat that triggered it.
///
/// Both devices count time from the same trigger edge, so the potentiostat's
/// fitted offset is shared (plus the digitizer's trigger delay, already in its
/// device times); the digitizer keeps its own fitted drift. The error estimate
/// is the uncertainty of the relative drift over the segment plus the scatter
/// of the envelope points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggeredAlignment {
    pub potentiostat: EnvelopeFit,
    pub digitizer: EnvelopeFit,
    /// Model mapping potentiostat device time to the shared timeline.
    pub potentiostat_model: ClockModel,
    /// Model mapping digitizer device time to the shared timeline.
    pub digitizer_model: ClockModel,
    /// Estimated worst-case error of digitizer stamps relative to potentiostat
    /// stamps over the segment, s (2-sigma).
    pub alignment_error_estimate_s: f64,
}

/// Align a digitizer triggered by the potentiostat (trigger at device time 0 on
/// both) using the fits of each device against the host.
pub fn align_triggered(potentiostat: EnvelopeFit, digitizer: EnvelopeFit) -> TriggeredAlignment {
    let potentiostat_model = potentiostat.model;
    let digitizer_model = ClockModel {
        offset_s: potentiostat_model.offset_s,
        drift: digitizer.model.drift,
    };
    let span = potentiostat.span_s.max(digitizer.span_s);
    let drift_se = (potentiostat.drift_se.powi(2) + digitizer.drift_se.powi(2)).sqrt();
    let scatter = (potentiostat.residual_rms_s.powi(2) + digitizer.residual_rms_s.powi(2)).sqrt();
    let alignment_error_estimate_s = 2.0 * (drift_se * span).hypot(scatter / (span.max(1.0)));
    TriggeredAlignment {
        potentiostat,
        digitizer,
        potentiostat_model,
        digitizer_model,
        alignment_error_estimate_s,
    }
}

/// How far an instrument's quartz timebase may be from nominal before any
/// fit (1 sigma). Typical TCXO/XO specs are 2-50 ppm; the prior keeps a
/// short segment's drift from running away on a few envelope points.
pub const QUARTZ_DRIFT_SIGMA: f64 = 100e-6;

/// Largest believable drift of an instrument clock against the host, ppm.
///
/// Why 1000: real quartz oscillators (XO, TCXO) are within ±100 ppm of
/// nominal over their life and temperature range ([`QUARTZ_DRIFT_SIGMA`]), so
/// a fitted drift ten times that is not an oscillator at all: the clock
/// *model* is wrong. The usual cause is a virtual bench running at another
/// speed than the run assumes (`[sim] time_acceleration`), where the device
/// clock runs `speed_bench / speed_run` times the run's timeline (a bench at
/// 10× read as 1× fits -900000 ppm). Data placed on the timeline by such a
/// model is not to be trusted, and nothing derived from its time alignment
/// (charge, deformation vs charge, lock-in demodulation) may be reported.
pub const DRIFT_BOUND_PPM: f64 = 1000.0;

/// Why a fitted drift cannot come from a real oscillator: beyond
/// ±[`DRIFT_BOUND_PPM`] (or not finite where a fit was reported). `None`
/// for a believable drift; NaN (no fit at all) is not judged here, it is
/// reported as a missing fit elsewhere.
pub fn implausible_drift(device: &str, drift_ppm: f64) -> Option<String> {
    if drift_ppm.is_nan() || drift_ppm.abs() <= DRIFT_BOUND_PPM {
        return None;
    }
    // No "the clock ran N x" here: the recorded drift has been through the
    // quartz prior, which shrinks a badly determined one, so its size only
    // says "far beyond", not by how much the speeds differ.
    Some(format!(
        "clock: {device} drift {drift_ppm:.0} ppm beyond ±{DRIFT_BOUND_PPM:.0} ppm — \
         time alignment not trustworthy (bench and run speeds differ?)"
    ))
}

/// The clocks of one recording segment (one trigger edge): the
/// potentiostat's and the triggered digitizer's models on the shared
/// timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentClocks {
    /// Potentiostat device time -> shared time.
    pub potentiostat: ClockModel,
    /// Digitizer device time -> shared time. Without a digitizer drift fit
    /// it is the potentiostat's model (the trigger alone places it).
    pub digitizer: ClockModel,
    /// Fitted digitizer drift, ppm; NaN when it could not be fitted.
    pub digitizer_drift_ppm: f64,
    /// See [`TriggeredAlignment::alignment_error_estimate_s`]; NaN without
    /// a digitizer drift fit.
    pub alignment_error_estimate_s: f64,
    /// Why the digitizer's drift was not fitted, if it was not.
    pub digitizer_error: Option<ClockError>,
}

impl SegmentClocks {
    /// Why this segment's time alignment cannot be trusted: a fitted drift
    /// (potentiostat or digitizer) beyond ±[`DRIFT_BOUND_PPM`]. `None` when
    /// both are believable. Judged on the drifts as run.toml records them:
    /// a noisy short fit has been pulled towards nominal by the quartz
    /// prior (so it is not flagged), a significantly implausible one kept
    /// as fitted (see `quartz_prior_unless_implausible`).
    pub fn untrusted(&self) -> Option<String> {
        segment_clock_problem(self.potentiostat.drift_ppm(), self.digitizer_drift_ppm)
    }
}

/// [`SegmentClocks::untrusted`] from the two recorded drifts, ppm (as
/// run.toml's `[[alignment.segments]]` keeps them): the digitizer's drift
/// named first (it is the one fitted freely; the potentiostat's is pulled
/// towards nominal by the quartz prior), both when both are beyond.
pub fn segment_clock_problem(
    potentiostat_drift_ppm: f64,
    deflection_drift_ppm: f64,
) -> Option<String> {
    let problems: Vec<String> = [
        implausible_drift("deflection", deflection_drift_ppm),
        implausible_drift("potentiostat", potentiostat_drift_ppm),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Align one recording segment: lower-envelope fit of the potentiostat
/// against its host stamps (30 windows), of the digitizer against its
/// (`windows` = readings / 10, 4..=30), each with the quartz drift prior,
/// then [`align_triggered`]. The one recipe both finalisation and the live
/// dashboard use, so the dashboard shows the clocks the run folder will get.
///
/// `defl_*` must hold one reading per host batch (see
/// [`newest_per_batch`]). Errors only when the potentiostat cannot be fitted
/// (too few samples): then the segment cannot be placed on the timeline.
pub fn align_segment(
    pot_dev_s: &[f64],
    pot_host_s: &[f64],
    defl_dev_s: &[f64],
    defl_host_s: &[f64],
) -> Result<SegmentClocks, ClockError> {
    let pot = fit_potentiostat(pot_dev_s, pot_host_s)?;
    let windows = (defl_dev_s.len() / 10).clamp(4, 30);
    Ok(
        match fit_lower_envelope("deflection", defl_dev_s, defl_host_s, windows) {
            Ok(d) => {
                let a = align_triggered(pot.clone(), quartz_prior_unless_implausible(d));
                SegmentClocks {
                    potentiostat: pot.model,
                    digitizer: a.digitizer_model,
                    digitizer_drift_ppm: a.digitizer.model.drift_ppm(),
                    alignment_error_estimate_s: a.alignment_error_estimate_s,
                    digitizer_error: None,
                }
            }
            Err(e) => SegmentClocks {
                potentiostat: pot.model,
                digitizer: pot.model,
                digitizer_drift_ppm: f64::NAN,
                alignment_error_estimate_s: f64::NAN,
                digitizer_error: Some(e),
            },
        },
    )
}

/// The potentiostat's clock of a segment: lower envelope through 30
/// windows, with the quartz prior unless implausible. Both alignments
/// ([`align_segment`], [`align_segment_pinned`]) start from it.
fn fit_potentiostat(pot_dev_s: &[f64], pot_host_s: &[f64]) -> Result<EnvelopeFit, ClockError> {
    Ok(quartz_prior_unless_implausible(fit_lower_envelope(
        "potentiostat",
        pot_dev_s,
        pot_host_s,
        30,
    )?))
}

/// Align a segment whose digitizer took its readings in blocks, each
/// started by its own sync edge from the potentiostat
/// (`vegard_core::sync_blocks`): the readings' device times are already on
/// the potentiostat's timebase (block b at `b * period`, reading j of it
/// `j * interval` later), so the potentiostat's lower-envelope fit places
/// both. The digitizer can only be off by the two timebases' rate
/// difference within one block, whatever the segment's length, and by when
/// each edge left the potentiostat: the error estimate is 2 sigma of the
/// rate difference (two quartz timebases, each within
/// [`QUARTZ_DRIFT_SIGMA`]) over `block_span_s`, the longest block, and of
/// [`EDGE_TIMING_SIGMA_S`], in quadrature. The digitizer's drift is
/// recorded as the potentiostat's: it is pinned to it at every edge.
pub fn align_segment_pinned(
    pot_dev_s: &[f64],
    pot_host_s: &[f64],
    block_span_s: f64,
) -> Result<SegmentClocks, ClockError> {
    let pot = fit_potentiostat(pot_dev_s, pot_host_s)?;
    let relative_sigma = std::f64::consts::SQRT_2 * QUARTZ_DRIFT_SIGMA;
    Ok(SegmentClocks {
        potentiostat: pot.model,
        digitizer: pot.model,
        digitizer_drift_ppm: pot.model.drift_ppm(),
        alignment_error_estimate_s: 2.0
            * (relative_sigma * block_span_s.max(0.0)).hypot(EDGE_TIMING_SIGMA_S),
        digitizer_error: None,
    })
}

/// Spread of when a repeated sync edge leaves the potentiostat relative to
/// the sample it follows, 1 sigma, s: the firmware runs the loop body (and
/// its GPIO write) after taking and sending the sample, so scheduling in
/// the interpreter moves it by tens of microseconds. An assumption, not a
/// measured figure: no instrument states it.
pub const EDGE_TIMING_SIGMA_S: f64 = 100e-6;

/// The longest block of a segment's digitizer readings, s, when they were
/// taken in blocks pinned to repeated sync edges; `None` for one
/// continuous burst. Told from the raw stamps alone (so recovery and
/// re-finalising need nothing else): in a burst, reading `index` is at
/// `index * interval_s`; the first reading of every later block is at its
/// edge, at least one reserved slot later than that.
pub fn pinned_block_span_s(index: &[i64], t_dev_s: &[f64], interval_s: f64) -> Option<f64> {
    let mut span = PinnedSpan::new(interval_s);
    for (&i, &t) in index.iter().zip(t_dev_s) {
        span.push(i, t);
    }
    span.finish()
}

/// [`pinned_block_span_s`] a reading at a time, so finalisation tells a
/// day of readings apart in one pass with constant memory.
#[derive(Debug, Clone)]
pub struct PinnedSpan {
    interval_s: f64,
    prev: Option<(i64, f64)>,
    /// Index of the latest block start seen.
    last_start: Option<i64>,
    /// Longest block between starts seen so far, readings (the first block
    /// starts at index 0).
    longest: i64,
}

impl PinnedSpan {
    pub fn new(interval_s: f64) -> Self {
        PinnedSpan {
            interval_s,
            prev: None,
            last_start: None,
            longest: 0,
        }
    }

    /// The next reading of the segment (its index and device time, s).
    pub fn push(&mut self, index: i64, t_dev_s: f64) {
        // A reading more than half an interval past where the previous
        // one's index puts it starts a block.
        if let Some((pi, pt)) = self.prev {
            let expected = pt + (index - pi) as f64 * self.interval_s;
            if t_dev_s - expected > 0.5 * self.interval_s {
                self.longest = self.longest.max(index - self.last_start.unwrap_or(0));
                self.last_start = Some(index);
            }
        }
        self.prev = Some((index, t_dev_s));
    }

    /// The longest block, s; `None` for one continuous burst (or an
    /// interval that is not a positive number).
    pub fn finish(&self) -> Option<f64> {
        if !(self.interval_s.is_finite() && self.interval_s > 0.0) {
            return None;
        }
        self.last_start?;
        Some(self.longest as f64 * self.interval_s)
    }
}

/// Fewest envelope points a fit needs before a drift beyond
/// ±[`DRIFT_BOUND_PPM`] is kept as fitted rather than pulled towards
/// nominal by the quartz prior: a third of the 30 windows a well-sampled
/// segment gets.
pub const MIN_ENVELOPE_FOR_IMPLAUSIBLE: usize = 10;

/// The quartz prior ([`EnvelopeFit::with_drift_prior`]) for a fit whose
/// drift an oscillator could have, none for one *significantly* beyond
/// ±[`DRIFT_BOUND_PPM`] (by more than 3 standard errors). The prior tames
/// noise in a short fit; a drift that far out and that well determined is
/// not noise but a wrong clock model (a bench at another speed), and
/// shrinking it would hide it: sometimes to within the bound, so the
/// segment would pass unflagged. Kept as fitted, it is recorded as it is
/// and [`SegmentClocks::untrusted`] (and run.toml's reader) sees it.
///
/// Only a fit through at least [`MIN_ENVELOPE_FOR_IMPLAUSIBLE`] envelope
/// points is taken at its word: a short segment at high time acceleration
/// has a handful of host batches, and one scheduling stall among them can
/// fake a "significant" drift of percents.
fn quartz_prior_unless_implausible(fit: EnvelopeFit) -> EnvelopeFit {
    let beyond_ppm = (fit.model.drift.abs() - 3.0 * fit.drift_se) * 1e6;
    if fit.drift_se.is_finite()
        && fit.n_envelope >= MIN_ENVELOPE_FOR_IMPLAUSIBLE
        && beyond_ppm > DRIFT_BOUND_PPM
    {
        fit
    } else {
        fit.with_drift_prior(QUARTZ_DRIFT_SIGMA)
    }
}

/// Readings fetched in batches (one per `R?` query) share one host receive
/// stamp; only the newest reading of a batch says anything about the clock.
/// Returns `(device times, host stamps)` of those, ascending in host stamp.
pub fn newest_per_batch(device_s: &[f64], host_ns: &[i64]) -> (Vec<f64>, Vec<i64>) {
    let mut newest: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for (&t, &h) in device_s.iter().zip(host_ns) {
        let e = newest.entry(h).or_insert(f64::NEG_INFINITY);
        *e = e.max(t);
    }
    (
        newest.values().copied().collect(),
        newest.keys().copied().collect(),
    )
}

/// Linear interpolation of `(src_t, src_v)` (ascending `src_t`) at `dst_t`;
/// NaN outside the source range so missing data stays visible.
pub fn resample_linear(src_t: &[f64], src_v: &[f64], dst_t: &[f64]) -> Vec<f64> {
    let n = src_t.len().min(src_v.len());
    let mut out = Vec::with_capacity(dst_t.len());
    if n == 0 {
        out.resize(dst_t.len(), f64::NAN);
        return out;
    }
    // Found by binary search for the first in-range instant, so resampling
    // a short `dst_t` (a batch) from a long source does not walk it from
    // the start.
    let mut j = usize::MAX;
    for &t in dst_t {
        if !(t >= src_t[0] && t <= src_t[n - 1]) {
            out.push(f64::NAN);
            continue;
        }
        // dst_t is usually ascending: walk forward, fall back to search.
        if j >= n || src_t[j] > t {
            j = src_t[..n].partition_point(|&s| s <= t).saturating_sub(1);
        }
        while j + 1 < n && src_t[j + 1] <= t {
            j += 1;
        }
        if j + 1 >= n {
            out.push(src_v[n - 1]);
            continue;
        }
        let (t0, t1) = (src_t[j], src_t[j + 1]);
        let w = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
        out.push(src_v[j] + w * (src_v[j + 1] - src_v[j]));
    }
    out
}

struct Line {
    intercept: f64,
    slope: f64,
    intercept_se: f64,
    slope_se: f64,
    rms: f64,
}

impl Line {
    fn at(&self, t: f64) -> f64 {
        self.intercept + self.slope * t
    }
}

fn fit_line(pts: &[(f64, f64)]) -> Line {
    let n = pts.len() as f64;
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mt;
    let sse: f64 = pts
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let dof = (n - 2.0).max(1.0);
    let s2 = sse / dof;
    let slope_se = if sxx > 0.0 {
        (s2 / sxx).sqrt()
    } else {
        f64::INFINITY
    };
    let intercept_se = (s2 * (1.0 / n + mt * mt / sxx.max(f64::MIN_POSITIVE))).sqrt();
    Line {
        intercept,
        slope,
        intercept_se,
        slope_se,
        rms: (sse / n).sqrt(),
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len().is_multiple_of(2) {
        0.5 * (s[m - 1] + s[m])
    } else {
        s[m]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random delays (xorshift) so the test is repeatable.
    fn delays(n: usize, mean_s: f64, seed: u64) -> Vec<f64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                -mean_s * (1.0 - u).ln() // exponential delay, always >= 0
            })
            .collect()
    }

    #[test]
    fn envelope_recovers_offset_and_drift_from_late_stamps() {
        // Device clock 35 ppm slow, offset 12.5 s, stamps late by 0..many ms.
        let (offset, drift) = (12.5, -35e-6);
        let n = 3000;
        let d = delays(n, 2e-3, 7);
        let t_dev: Vec<f64> = (0..n).map(|k| k as f64 * 0.01).collect();
        let t_host: Vec<f64> = t_dev
            .iter()
            .zip(&d)
            .map(|(t, dl)| offset + (1.0 + drift) * t + dl)
            .collect();
        let fit = fit_lower_envelope("dmm", &t_dev, &t_host, 30).unwrap();
        // Envelope minima of ~100 exponential delays with mean 2 ms: ~20 us.
        assert!((fit.model.offset_s - offset).abs() < 100e-6, "{fit:?}");
        assert!((fit.model.drift - drift).abs() < 5e-6, "{fit:?}");
        assert!(fit.drift_se < 5e-6);
    }

    #[test]
    fn a_busy_window_does_not_bend_the_line() {
        let n = 2000;
        let t_dev: Vec<f64> = (0..n).map(|k| k as f64 * 0.01).collect();
        let d = delays(n, 1e-3, 11);
        let mut t_host: Vec<f64> = t_dev.iter().zip(&d).map(|(t, dl)| t + dl).collect();
        // Host stalled for 2 s in the middle: every stamp there is 50 ms late.
        for h in t_host.iter_mut().take(1100).skip(900) {
            *h += 0.05;
        }
        let fit = fit_lower_envelope("p", &t_dev, &t_host, 20).unwrap();
        assert!(fit.model.drift.abs() < 10e-6, "{fit:?}");
        assert!(fit.model.offset_s.abs() < 200e-6, "{fit:?}");
    }

    #[test]
    fn triggered_alignment_shares_the_offset_and_keeps_each_drift() {
        let p = EnvelopeFit {
            model: ClockModel {
                offset_s: 3.0,
                drift: 20e-6,
            },
            drift_se: 1e-6,
            offset_se_s: 1e-5,
            n_envelope: 30,
            residual_rms_s: 1e-5,
            median_delay_s: 1e-3,
            span_s: 30.0,
            t_mean_s: 15.0,
        };
        let mut d = p.clone();
        d.model = ClockModel {
            offset_s: 3.004,
            drift: -35e-6,
        };
        let a = align_triggered(p, d);
        assert_eq!(a.digitizer_model.offset_s, 3.0);
        assert_eq!(a.digitizer_model.drift, -35e-6);
        // 2 * sqrt(2) * 1e-6 * 30 s ~ 85 us
        assert!(
            (a.alignment_error_estimate_s - 8.5e-5).abs() < 1e-5,
            "{a:?}"
        );
    }

    #[test]
    fn drift_prior_tames_short_fits_and_keeps_good_ones() {
        let base = EnvelopeFit {
            model: ClockModel {
                offset_s: 0.0,
                drift: 0.04,
            },
            drift_se: 0.02,
            offset_se_s: 1e-3,
            n_envelope: 5,
            residual_rms_s: 1e-3,
            median_delay_s: 1e-3,
            span_s: 0.25,
            t_mean_s: 0.125,
        };
        // A 4 % "drift" from five stamps is noise: pulled to ~0.
        let short = base.clone().with_drift_prior(100e-6);
        assert!(short.model.drift.abs() < 1e-6, "{short:?}");
        assert!((short.drift_se - 100e-6).abs() < 1e-6);
        // A 35 ppm drift known to 1 ppm survives unchanged (to 0.01 %).
        let mut good = base;
        good.model.drift = 35e-6;
        good.drift_se = 1e-6;
        let good = good.with_drift_prior(100e-6);
        assert!((good.model.drift - 35e-6).abs() < 0.01 * 35e-6, "{good:?}");
    }

    #[test]
    fn drift_beyond_the_bound_is_named_and_within_is_not() {
        // Within the bound, at it, and unfitted (NaN): believable.
        for ppm in [0.0, 35.0, -999.0, 1000.0, -1000.0, f64::NAN] {
            assert_eq!(implausible_drift("deflection", ppm), None, "{ppm}");
        }
        // A bench at 10x read as 1x: -897792 ppm.
        let m = implausible_drift("deflection", -897_792.0).unwrap();
        assert_eq!(
            m,
            "clock: deflection drift -897792 ppm beyond ±1000 ppm — time alignment not \
             trustworthy (bench and run speeds differ?)"
        );
        assert!(implausible_drift("potentiostat", 1000.5).is_some());
        assert!(implausible_drift("potentiostat", f64::INFINITY).is_some());
    }

    #[test]
    fn a_segment_is_untrusted_when_either_drift_is_beyond_the_bound() {
        assert_eq!(segment_clock_problem(20.0, -35.0), None);
        assert_eq!(segment_clock_problem(20.0, f64::NAN), None);
        let d = segment_clock_problem(20.0, 5000.0).unwrap();
        assert!(d.starts_with("clock: deflection drift 5000 ppm"), "{d}");
        let p = segment_clock_problem(-2000.0, 0.0).unwrap();
        assert!(p.starts_with("clock: potentiostat drift -2000 ppm"), "{p}");
        let both = segment_clock_problem(-900_000.0, -900_000.0).unwrap();
        assert_eq!(both.matches("clock: ").count(), 2, "{both}");
    }

    /// A segment recorded against a bench 10x faster than the run thinks:
    /// both devices' stamps arrive at a tenth of the device time. The fit
    /// must report the drift as it is (the quartz prior must not hide it)
    /// and the segment must be untrusted.
    #[test]
    fn a_bench_at_another_speed_fits_an_untrusted_segment() {
        let n = 2000;
        let d = delays(n, 1e-3, 5);
        let t_dev: Vec<f64> = (0..n).map(|k| k as f64 * 0.01).collect();
        let t_host: Vec<f64> = t_dev.iter().zip(&d).map(|(t, dl)| 0.1 * t + dl).collect();
        let (dd, dh): (Vec<f64>, Vec<f64>) = t_dev
            .iter()
            .zip(&t_host)
            .step_by(5)
            .map(|(a, b)| (*a, *b))
            .unzip();
        let c = align_segment(&t_dev, &t_host, &dd, &dh).unwrap();
        // Not shrunk by the quartz prior: recorded as fitted.
        assert!((c.digitizer_drift_ppm + 900_000.0).abs() < 1000.0, "{c:?}");
        assert!(
            (c.potentiostat.drift_ppm() + 900_000.0).abs() < 1000.0,
            "{c:?}"
        );
        let why = c.untrusted().unwrap();
        assert!(why.contains("beyond ±1000 ppm"), "{why}");
        // The same at one speed: trusted.
        let t_host: Vec<f64> = t_dev.iter().zip(&d).map(|(t, dl)| t + dl).collect();
        let dh: Vec<f64> = t_host.iter().step_by(5).copied().collect();
        let c = align_segment(&t_dev, &t_host, &dd, &dh).unwrap();
        assert_eq!(c.untrusted(), None, "{c:?}");
    }

    #[test]
    fn pinned_blocks_are_told_from_the_device_times() {
        // 998 readings per 1 s block at 1 ms, three blocks.
        let plan = vegard_core::sync_blocks::plan_blocks(0.01, 1e-3, 2.5, 1_000_000, 1000).unwrap();
        let index: Vec<i64> = (0..2994).collect();
        let t: Vec<f64> = index
            .iter()
            .map(|&i| plan.reading_time_s(i as u64))
            .collect();
        let span = pinned_block_span_s(&index, &t, 1e-3).unwrap();
        assert!((span - 0.998).abs() < 1e-9, "{span}");
        // With a gap in the stream (rows lost) the rest is still found.
        let (i2, t2): (Vec<i64>, Vec<f64>) = index
            .iter()
            .zip(&t)
            .filter(|(i, _)| !(500..700).contains(*i))
            .map(|(i, t)| (*i, *t))
            .unzip();
        assert!((pinned_block_span_s(&i2, &t2, 1e-3).unwrap() - 0.998).abs() < 1e-9);
        // One burst: not pinned.
        let t1: Vec<f64> = index.iter().map(|&i| i as f64 * 1e-3).collect();
        assert_eq!(pinned_block_span_s(&index, &t1, 1e-3), None);
        // The estimate is the block's, not the segment's: 2 x (141 ppm x
        // 0.998 s, 100 us of edge timing in quadrature) = 346 us.
        let pt: Vec<f64> = (0..300).map(|k| k as f64 * 0.01).collect();
        let ph: Vec<f64> = pt.iter().map(|t| t + 1e-3).collect();
        let c = align_segment_pinned(&pt, &ph, span).unwrap();
        let want = 2.0 * (2f64.sqrt() * 100e-6 * 0.998).hypot(100e-6);
        assert!((c.alignment_error_estimate_s - want).abs() < 1e-9);
        assert!((c.alignment_error_estimate_s - 346e-6).abs() < 1e-6);
        assert_eq!(c.digitizer, c.potentiostat);
    }

    #[test]
    fn too_few_samples_is_an_error() {
        let e = fit_lower_envelope("dmm", &[0.0, 1.0], &[0.0, 1.0], 4).unwrap_err();
        assert!(e.to_string().contains("need at least 4"));
    }

    #[test]
    fn resample_interpolates_and_marks_gaps() {
        let t = [0.0, 1.0, 2.0];
        let v = [0.0, 10.0, 30.0];
        let out = resample_linear(&t, &v, &[-0.5, 0.0, 0.5, 1.5, 2.0, 2.5]);
        assert!(out[0].is_nan() && out[5].is_nan());
        assert_eq!(&out[1..5], &[0.0, 5.0, 20.0, 30.0]);
    }
}
