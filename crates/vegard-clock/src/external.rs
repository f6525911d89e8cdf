//! Aligning two independently clocked recordings: a potentiostat file and a
//! deflection trace recorded by other software (`vegard import`).
//!
//! Why this differs from [`crate::align_segment`]: a native run has host
//! receive stamps for every sample and one hardware trigger that zeroes
//! both devices. Imported files have neither; each has its own time axis
//! from its own start. What links them is one of
//!
//! - **edges** ([`align_by_edges`]): a sync/trigger signal recorded in the
//!   trace whose edges happened at known instants of the potentiostat (its
//!   trigger output toggled at each cycle start, say). Edge times come from
//!   threshold crossings with sub-sample interpolation ([`detect_edges`]);
//!   one edge gives the offset, several give offset and drift by least
//!   squares, the scatter of the paired edges about the line gives the
//!   uncertainty (never below the quantisation of the edge times);
//! - **timestamps** ([`align_by_timestamps`]): the files' start times. PC
//!   clocks differ by up to seconds, so the uncertainty is the user's
//!   (default 1 s in the CLI), not anything the files can tell;
//! - **cross-correlation** ([`align_by_xcorr`]): when nothing else links
//!   them, the lag at which the deflection is best explained by the
//!   potentiostat's own channels (charge and potential: the deflection of
//!   an insertion film follows the charge). Its uncertainty is the larger of
//!   the least-squares curvature at the optimum and the scatter of the lags
//!   of independent windows, and never below half a trace sample.
//!
//! Every method returns an [`ExternalAlignment`]: `t_ref = offset_s + (1 +
//! drift_ppm·1e-6)·t_other`, where `ref` is the potentiostat's time axis (the
//! imported run's shared timeline) and `other` the trace's, with standard
//! errors and the 2σ error estimate over the span that is actually used,
//! the same kind of figure native runs state in run.toml `[alignment]`.
//!
//! Drift that the evidence cannot resolve (one edge, timestamps, a lag) is
//! not claimed to be zero: it is zero with the quartz prior
//! [`crate::QUARTZ_DRIFT_SIGMA`] as its uncertainty, so the stated error
//! grows with the distance from where the offset was measured.

use serde::{Deserialize, Serialize};

use crate::{QUARTZ_DRIFT_SIGMA, resample_linear};

/// Why two recordings could not be aligned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExternalError {
    /// The input arrays are unusable (lengths, non-finite or unsorted times).
    #[error("{what}: {why}")]
    BadInput { what: &'static str, why: String },
    /// A sync channel without a usable edge.
    #[error("no sync edges in {what}: {why}")]
    NoEdges { what: &'static str, why: String },
    /// No pairing of edges agrees on one offset.
    #[error(
        "no edge of the trace lines up with a potentiostat event within {tolerance_s:.3} s \
         ({n_ref} potentiostat events, {n_other} trace edges)"
    )]
    NoMatch {
        tolerance_s: f64,
        n_ref: usize,
        n_other: usize,
    },
    /// Two offsets pair the edges equally well (a periodic sync signal).
    #[error(
        "the sync edges pair up equally well at offsets {best_offset_s:.4} s and \
         {other_offset_s:.4} s ({matched} edges each): the sync signal is periodic over the \
         record; give a rough offset (start timestamps) to choose"
    )]
    Ambiguous {
        best_offset_s: f64,
        other_offset_s: f64,
        matched: usize,
    },
    /// The cross-correlation found nothing to lock onto.
    #[error("cross-correlation: {0}")]
    Xcorr(String),
}

/// How two recordings were put on one timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalMethod {
    /// Sync/trigger edges recorded in the trace, paired with potentiostat events.
    Edges,
    /// The files' start timestamps.
    Timestamps,
    /// Cross-correlation of the deflection with charge and potential.
    CrossCorrelation,
}

impl ExternalMethod {
    /// The name used on the command line and in run.toml.
    pub fn name(self) -> &'static str {
        match self {
            ExternalMethod::Edges => "edges",
            ExternalMethod::Timestamps => "timestamps",
            ExternalMethod::CrossCorrelation => "xcorr",
        }
    }
}

/// Result of aligning the `other` recording (the deflection trace) to the
/// `ref` one (the potentiostat): `t_ref = offset_s + (1 + drift_ppm·1e-6)·t_other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalAlignment {
    pub method: ExternalMethod,
    /// Reference time of the trace's time zero, s.
    pub offset_s: f64,
    /// Rate error of the trace clock against the reference, ppm (positive:
    /// the trace's seconds are longer than the reference's).
    pub drift_ppm: f64,
    /// Standard error of `offset_s` (at trace time 0), s.
    pub offset_se_s: f64,
    /// Standard error of `drift_ppm`; the quartz prior (100 ppm) when the
    /// drift was not resolved by the data.
    pub drift_se_ppm: f64,
    /// Whether the data (several edges, windows) determined the drift at all.
    pub drift_fitted: bool,
    /// Trace time where the mapping is best known (centre of the evidence), s.
    pub t_pivot_s: f64,
    /// Standard error of the mapping at `t_pivot_s`, s.
    pub se_at_pivot_s: f64,
    /// Paired edges, or correlation windows, that went into the estimate.
    pub n_used: usize,
    /// RMS of the paired edges (or window lags) about the fit, s; NaN when
    /// there is nothing to scatter (one edge, timestamps).
    pub residual_rms_s: f64,
    /// 2σ error of the mapping, worst over the span given to
    /// [`ExternalAlignment::with_span`], s (at the pivot until then).
    pub alignment_error_estimate_s: f64,
    /// How the figures were obtained, in words (kept in run.toml).
    pub detail: String,
}

impl ExternalAlignment {
    /// The reference time of trace time `t_other_s`.
    pub fn to_ref(&self, t_other_s: f64) -> f64 {
        self.offset_s + (1.0 + self.drift_ppm * 1e-6) * t_other_s
    }

    /// The mapping as a [`crate::ClockModel`] (trace time -> reference time).
    pub fn model(&self) -> crate::ClockModel {
        crate::ClockModel {
            offset_s: self.offset_s,
            drift: self.drift_ppm * 1e-6,
        }
    }

    /// Standard error of the mapped time at trace time `t_other_s`, s:
    /// the pivot's error plus the drift's error times the distance from it.
    pub fn se_at(&self, t_other_s: f64) -> f64 {
        let d = (t_other_s - self.t_pivot_s) * self.drift_se_ppm * 1e-6;
        self.se_at_pivot_s.hypot(d)
    }

    /// Set [`Self::alignment_error_estimate_s`] to 2σ at the worse end of
    /// the trace-time span `[t0_s, t1_s]` (the samples that are used).
    pub fn with_span(mut self, t0_s: f64, t1_s: f64) -> Self {
        self.alignment_error_estimate_s = 2.0 * self.se_at(t0_s).max(self.se_at(t1_s));
        self
    }
}

/// One threshold crossing of a sync signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Interpolated crossing time, s.
    pub t_s: f64,
    pub rising: bool,
}

/// Threshold crossings of a sync/trigger signal, both polarities, in time
/// order.
///
/// The threshold is halfway between the signal's low and high levels (its
/// 5th and 95th percentiles), with a hysteresis of ±10 % of the swing so
/// noise on a level is not read as edges; the crossing time is linearly
/// interpolated between the two samples that straddle the threshold. A
/// sharp edge between two samples is therefore placed to within the sample
/// interval (σ = interval/√12), a slewing one better.
pub fn detect_edges(t_s: &[f64], x: &[f64]) -> Result<Vec<Edge>, ExternalError> {
    const WHAT: &str = "the sync channel";
    if t_s.len() != x.len() {
        return Err(ExternalError::BadInput {
            what: WHAT,
            why: format!("{} times but {} values", t_s.len(), x.len()),
        });
    }
    check_times(WHAT, t_s)?;
    let mut v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if v.len() < 2 {
        return Err(ExternalError::NoEdges {
            what: WHAT,
            why: format!("{} finite samples", v.len()),
        });
    }
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (pct(0.05), pct(0.95));
    let swing = hi - lo;
    if swing.is_nan() || swing <= 1e-9 * hi.abs().max(lo.abs()) {
        return Err(ExternalError::NoEdges {
            what: WHAT,
            why: format!("the signal is flat ({lo} to {hi})"),
        });
    }
    let mid = 0.5 * (lo + hi);
    let hyst = 0.1 * swing;
    let mut edges = Vec::new();
    // None until the signal has been clearly on one side.
    let mut high: Option<bool> = None;
    // Last sample index on the low (resp. high) side of `mid`.
    let mut last_below: Option<usize> = None;
    let mut last_above: Option<usize> = None;
    for (k, &xk) in x.iter().enumerate() {
        if !xk.is_finite() {
            continue;
        }
        if xk <= mid {
            last_below = Some(k);
        } else {
            last_above = Some(k);
        }
        let now_high = if xk > mid + hyst {
            Some(true)
        } else if xk < mid - hyst {
            Some(false)
        } else {
            None
        };
        let (Some(now), Some(was)) = (now_high, high) else {
            if now_high.is_some() {
                high = now_high;
            }
            continue;
        };
        if now == was {
            continue;
        }
        high = Some(now);
        // The crossing lies between the last sample on the old side and
        // the next finite sample after it.
        let from = if now { last_below } else { last_above };
        let Some(i0) = from else { continue };
        let Some(i1) = (i0 + 1..=k).find(|&i| x[i].is_finite()) else {
            continue;
        };
        let (x0, x1) = (x[i0], x[i1]);
        let w = if x1 != x0 {
            (mid - x0) / (x1 - x0)
        } else {
            0.5
        };
        edges.push(Edge {
            t_s: t_s[i0] + w.clamp(0.0, 1.0) * (t_s[i1] - t_s[i0]),
            rising: now,
        });
    }
    if edges.is_empty() {
        return Err(ExternalError::NoEdges {
            what: WHAT,
            why: format!("the signal never crosses {mid} (levels {lo} and {hi})"),
        });
    }
    Ok(edges)
}

/// Tuning of [`align_by_edges`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeOptions {
    /// Timing uncertainty of each reference event, s (0 when the events
    /// are the potentiostat's own sample times).
    pub ref_sigma_s: f64,
    /// Timing uncertainty of each detected edge, s (sample interval / √12
    /// for a sharp edge).
    pub other_sigma_s: f64,
    /// Largest distance at which an edge and an event pair up, s; default
    /// from the uncertainties and the drift a quartz clock can have over
    /// the record, capped at 45 % of the closest spacing of the events.
    pub match_tolerance_s: Option<f64>,
    /// A rough offset and its σ (e.g. from the start timestamps) that
    /// decides between pairings a periodic sync signal leaves open.
    pub prior_offset_s: Option<(f64, f64)>,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            ref_sigma_s: 0.0,
            other_sigma_s: 0.0,
            match_tolerance_s: None,
            prior_offset_s: None,
        }
    }
}

/// Align by pairing trace edges (`other_edges_s`, trace time) with the
/// reference instants at which they were generated (`ref_edges_s`,
/// potentiostat time). Either list may hold edges the other lacks (a trace
/// started late, an extra pulse): the pairing is the offset under which
/// the most edges line up (every edge–event pair is a candidate), then a
/// least-squares line through the paired edges, re-paired once under it.
/// Drift is fitted from two or more edges and combined with the quartz
/// prior (a short record's slope is mostly noise).
pub fn align_by_edges(
    ref_edges_s: &[f64],
    other_edges_s: &[f64],
    opts: &EdgeOptions,
) -> Result<ExternalAlignment, ExternalError> {
    check_times("the potentiostat's sync events", ref_edges_s)?;
    check_times("the trace's sync edges", other_edges_s)?;
    if ref_edges_s.is_empty() {
        return Err(ExternalError::NoEdges {
            what: "the potentiostat file",
            why: "no events to pair with".into(),
        });
    }
    if other_edges_s.is_empty() {
        return Err(ExternalError::NoEdges {
            what: "the trace",
            why: "no edges to pair with".into(),
        });
    }
    let r = ref_edges_s;
    let o = other_edges_s;
    let sigma_pt = opts.ref_sigma_s.hypot(opts.other_sigma_s);
    let span_o = o[o.len() - 1] - o[0];
    let min_gap = r
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let tol = opts.match_tolerance_s.unwrap_or_else(|| {
        let t = 5.0 * sigma_pt + 2.0 * QUARTZ_DRIFT_SIGMA * span_o + 1e-6;
        if min_gap.is_finite() {
            t.min(0.45 * min_gap)
        } else {
            t
        }
    });
    let nearest = |t: f64| -> (usize, f64) {
        let k = r.partition_point(|&x| x < t);
        let mut best = (0usize, f64::INFINITY);
        for i in [k.saturating_sub(1), k.min(r.len() - 1)] {
            let d = (r[i] - t).abs();
            if d < best.1 {
                best = (i, d);
            }
        }
        best
    };
    // Pairs (other, ref) under the mapping `map`, each event used once.
    let pair = |map: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        let mut used = vec![false; r.len()];
        let mut out = Vec::new();
        for &t in o {
            let (i, d) = nearest(map(t));
            if d <= tol && !used[i] {
                used[i] = true;
                out.push((t, r[i]));
            }
        }
        out
    };
    let ssr_of = |pairs: &[(f64, f64)], c: f64| -> f64 {
        pairs.iter().map(|(t, rr)| (rr - t - c).powi(2)).sum()
    };
    // Candidates: every (event, edge) pair within the prior, scored by the
    // number of edges that line up under its offset.
    const MAX_CAND: usize = 400;
    let mut best: Option<(usize, f64, f64)> = None; // (matched, ssr, offset)
    let mut scored: Vec<(usize, f64, f64)> = Vec::new();
    for &ri in r.iter().take(MAX_CAND) {
        for &oj in o.iter().take(MAX_CAND) {
            let c = ri - oj;
            if let Some((p, s)) = opts.prior_offset_s
                && (c - p).abs() > 4.0 * s + tol
            {
                continue;
            }
            let pairs = pair(&|t| t + c);
            // Refine the offset to the pairs' mean before scoring.
            let c = pairs.iter().map(|(t, rr)| rr - t).sum::<f64>() / pairs.len().max(1) as f64;
            let cand = (pairs.len(), ssr_of(&pairs, c), c);
            scored.push(cand);
            if best.is_none_or(|b| cand.0 > b.0 || (cand.0 == b.0 && cand.1 < b.1)) {
                best = Some(cand);
            }
        }
    }
    let Some((matched, _, c0)) = best.filter(|b| b.0 > 0) else {
        return Err(ExternalError::NoMatch {
            tolerance_s: tol,
            n_ref: r.len(),
            n_other: o.len(),
        });
    };
    if let Some(&(_, _, c1)) = scored
        .iter()
        .find(|s| s.0 == matched && (s.2 - c0).abs() > tol)
    {
        // A tie is decided by the prior when there is one (closest wins).
        match opts.prior_offset_s {
            Some((p, _)) if (c1 - p).abs() != (c0 - p).abs() => {}
            _ => {
                return Err(ExternalError::Ambiguous {
                    best_offset_s: c0,
                    other_offset_s: c1,
                    matched,
                });
            }
        }
    }
    let c0 = match opts.prior_offset_s {
        Some((p, _)) => scored
            .iter()
            .filter(|s| s.0 == matched)
            .map(|s| s.2)
            .min_by(|a, b| (a - p).abs().total_cmp(&(b - p).abs()))
            .unwrap_or(c0),
        None => c0,
    };
    let mut pairs = pair(&|t| t + c0);
    let mut fit = edge_line(&pairs, sigma_pt);
    // Once more under the fitted line (drift may have moved far edges).
    let again = pair(&|t| fit.offset_s + (1.0 + fit.drift) * t);
    if again.len() >= pairs.len() {
        pairs = again;
        fit = edge_line(&pairs, sigma_pt);
    }
    let n = pairs.len();
    let detail = format!(
        "{n} of {} trace edges paired with {} potentiostat events (tolerance {:.3} s); {}",
        o.len(),
        r.len(),
        tol,
        if fit.drift_fitted {
            "offset and drift by least squares, drift combined with the 100 ppm quartz prior"
        } else {
            "offset from one edge, drift unresolved (100 ppm quartz prior)"
        }
    );
    let t_pivot_s = fit.t_pivot_s;
    Ok(ExternalAlignment {
        method: ExternalMethod::Edges,
        offset_s: fit.offset_s,
        drift_ppm: fit.drift * 1e6,
        offset_se_s: fit.se_pivot_s.hypot(t_pivot_s * fit.drift_se),
        drift_se_ppm: fit.drift_se * 1e6,
        drift_fitted: fit.drift_fitted,
        t_pivot_s,
        se_at_pivot_s: fit.se_pivot_s,
        n_used: n,
        residual_rms_s: fit.rms_s,
        alignment_error_estimate_s: 2.0 * fit.se_pivot_s,
        detail,
    })
}

struct EdgeLine {
    offset_s: f64,
    drift: f64,
    se_pivot_s: f64,
    drift_se: f64,
    t_pivot_s: f64,
    rms_s: f64,
    drift_fitted: bool,
}

/// `ref = offset + (1 + drift)·other` through the pairs, the drift shrunk
/// towards 0 by the quartz prior, pivoting about the pairs' mean.
fn edge_line(pairs: &[(f64, f64)], sigma_pt: f64) -> EdgeLine {
    let n = pairs.len().max(1) as f64;
    let mt = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    // Residual offsets d = ref - other: a line in `other` of slope = drift.
    let md = pairs.iter().map(|p| p.1 - p.0).sum::<f64>() / n;
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let sxd: f64 = pairs.iter().map(|p| (p.0 - mt) * (p.1 - p.0 - md)).sum();
    let drift_fitted = pairs.len() >= 2 && sxx > 0.0;
    let slope = if drift_fitted { sxd / sxx } else { 0.0 };
    let ssr: f64 = pairs
        .iter()
        .map(|p| (p.1 - p.0 - md - slope * (p.0 - mt)).powi(2))
        .sum();
    let rms_s = if pairs.len() >= 2 {
        (ssr / n).sqrt()
    } else {
        f64::NAN
    };
    // The per-edge σ: the scatter where there are enough edges to show it,
    // never below the quantisation of the edge times.
    let s2 = if pairs.len() > 2 {
        (ssr / (n - 2.0)).max(sigma_pt * sigma_pt)
    } else {
        sigma_pt * sigma_pt
    };
    let prior = QUARTZ_DRIFT_SIGMA;
    let (drift, drift_se) = if drift_fitted && s2 > 0.0 {
        let se_fit = (s2 / sxx).sqrt();
        let w_fit = 1.0 / se_fit.powi(2);
        let w_prior = 1.0 / prior.powi(2);
        (
            slope * w_fit / (w_fit + w_prior),
            (1.0 / (w_fit + w_prior)).sqrt(),
        )
    } else if drift_fitted {
        // Noise-free edges: the slope stands as fitted.
        (slope, 0.0)
    } else {
        (0.0, prior)
    };
    EdgeLine {
        offset_s: md - drift * mt,
        drift,
        se_pivot_s: (s2 / n).sqrt(),
        drift_se,
        t_pivot_s: mt,
        rms_s,
        drift_fitted,
    }
}

/// Align by the files' start times (Unix ns, UTC): the trace's time zero
/// is at reference time `(other − ref)·1e-9`. `uncertainty_s` is the 1σ
/// disagreement of the two PCs' clocks (and of how each program stamps its
/// start), which the files cannot tell; drift is unresolved.
pub fn align_by_timestamps(
    ref_start_unix_ns: i64,
    other_start_unix_ns: i64,
    uncertainty_s: f64,
) -> Result<ExternalAlignment, ExternalError> {
    if !uncertainty_s.is_finite() || uncertainty_s <= 0.0 {
        return Err(ExternalError::BadInput {
            what: "timestamp uncertainty",
            why: format!("{uncertainty_s} s: must be a positive number of seconds"),
        });
    }
    let offset_s = (i128::from(other_start_unix_ns) - i128::from(ref_start_unix_ns)) as f64 * 1e-9;
    Ok(ExternalAlignment {
        method: ExternalMethod::Timestamps,
        offset_s,
        drift_ppm: 0.0,
        offset_se_s: uncertainty_s,
        drift_se_ppm: QUARTZ_DRIFT_SIGMA * 1e6,
        drift_fitted: false,
        t_pivot_s: 0.0,
        se_at_pivot_s: uncertainty_s,
        n_used: 2,
        residual_rms_s: f64::NAN,
        alignment_error_estimate_s: 2.0 * uncertainty_s,
        detail: format!(
            "start timestamps of the two files; their clocks taken to agree to {uncertainty_s} s \
             (1σ, as given); drift unresolved (100 ppm quartz prior)"
        ),
    })
}

/// Tuning of [`align_by_xcorr`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XcorrOptions {
    /// Search only offsets in `[lo, hi]` s; default every offset at which
    /// the records overlap by at least `min_overlap_fraction`.
    pub offset_range_s: Option<(f64, f64)>,
    /// Least overlap, as a fraction of the shorter record.
    pub min_overlap_fraction: f64,
    /// Independent windows for the lag scatter (and the drift).
    pub windows: usize,
    /// Fit a drift from the windows' lags (otherwise the quartz prior).
    pub fit_drift: bool,
    /// Below this fraction of the deflection's variance explained, the
    /// deflection is not following the potentiostat channels: an error.
    pub min_r2: f64,
}

impl Default for XcorrOptions {
    fn default() -> Self {
        XcorrOptions {
            offset_range_s: None,
            min_overlap_fraction: 0.5,
            windows: 8,
            fit_drift: false,
            min_r2: 0.5,
        }
    }
}

/// Align by the lag at which the trace is best explained, in the least-
/// squares sense, by a linear combination of the reference channels
/// (`ref_channels`, e.g. charge and potential, on `ref_t_s`) plus a
/// constant and a linear drift of the trace.
///
/// Why several channels rather than a plain correlation with the charge:
/// the deflection follows the faradaic charge, the total charge minus
/// C_dl·E; with E among the regressors any C_dl gives the same lag.
///
/// Search: a coarse scan at half the reference's sample interval scored by
/// the log-likelihood gain `n·ln(SST/SSR)` (so a lag one drive period off,
/// which explains a periodic CV as well on less overlap, scores lower),
/// then golden-section refinement. Uncertainty: the larger of the
/// curvature of the residual sum of squares at the optimum (`2s²/SSR''`),
/// the scatter of the lags fitted in `windows` independent windows over
/// √windows, and half the trace's sample interval.
pub fn align_by_xcorr(
    ref_t_s: &[f64],
    ref_channels: &[&[f64]],
    other_t_s: &[f64],
    other: &[f64],
    opts: &XcorrOptions,
) -> Result<ExternalAlignment, ExternalError> {
    if ref_channels.is_empty() {
        return Err(ExternalError::BadInput {
            what: "cross-correlation",
            why: "no reference channel".into(),
        });
    }
    if ref_channels.iter().any(|c| c.len() != ref_t_s.len()) || other.len() != other_t_s.len() {
        return Err(ExternalError::BadInput {
            what: "cross-correlation",
            why: "a channel's length differs from its time axis".into(),
        });
    }
    // Rows with every value finite; times must ascend.
    let keep: Vec<usize> = (0..ref_t_s.len())
        .filter(|&i| ref_t_s[i].is_finite() && ref_channels.iter().all(|c| c[i].is_finite()))
        .collect();
    let rt: Vec<f64> = keep.iter().map(|&i| ref_t_s[i]).collect();
    let rch: Vec<Vec<f64>> = ref_channels
        .iter()
        .map(|c| keep.iter().map(|&i| c[i]).collect())
        .collect();
    let (ot, ov): (Vec<f64>, Vec<f64>) = other_t_s
        .iter()
        .zip(other)
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .map(|(t, v)| (*t, *v))
        .unzip();
    check_times("the potentiostat's time column", &rt)?;
    check_times("the trace's time column", &ot)?;
    const MIN_POINTS: usize = 20;
    if rt.len() < MIN_POINTS || ot.len() < MIN_POINTS {
        return Err(ExternalError::Xcorr(format!(
            "too few samples ({} potentiostat, {} trace; need {MIN_POINTS} each)",
            rt.len(),
            ot.len()
        )));
    }
    let dt_ref = median_step(&rt);
    let dt_other = median_step(&ot);
    // Block-average a trace much finer than the reference: the lag is
    // resolved by the reference's shape, and averaging keeps the residuals
    // independent (the curvature's error assumes that).
    let (bt, bv) = block_average(&ot, &ov, dt_ref / 4.0);
    let span_ref = rt[rt.len() - 1] - rt[0];
    let span_other = bt[bt.len() - 1] - bt[0];
    let need = opts.min_overlap_fraction.clamp(0.05, 1.0) * span_ref.min(span_other);
    let mut lo = rt[0] - bt[bt.len() - 1] + need;
    let mut hi = rt[rt.len() - 1] - bt[0] - need;
    if let Some((a, b)) = opts.offset_range_s {
        lo = lo.max(a);
        hi = hi.min(b);
    }
    if hi.is_nan() || lo.is_nan() || hi < lo {
        return Err(ExternalError::Xcorr(format!(
            "the records cannot overlap by {:.0} % within the offsets searched",
            100.0 * opts.min_overlap_fraction
        )));
    }
    let ctx = Xctx {
        rt: &rt,
        rch: &rch,
        bt: &bt,
        bv: &bv,
    };
    let h = dt_ref / 2.0;
    let steps = ((hi - lo) / h).ceil() as usize;
    const MAX_STEPS: usize = 200_000;
    if steps > MAX_STEPS {
        return Err(ExternalError::Xcorr(format!(
            "offset range {lo:.1}..{hi:.1} s is {steps} steps of {h:.4} s; give a narrower range"
        )));
    }
    let all: Vec<usize> = (0..bt.len()).collect();
    let mut scan: Vec<(f64, f64)> = Vec::with_capacity(steps + 1);
    for k in 0..=steps {
        let c = lo + k as f64 * h;
        if let Some(f) = ctx.fit(c, &all) {
            scan.push((c, f.score()));
        }
    }
    let Some(&(c_best, score_best)) = scan.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Err(ExternalError::Xcorr("no offset gives a usable fit".into()));
    };
    // Fixed point set for the refinement: overlapping at every offset tried.
    let pts: Vec<usize> = (0..bt.len())
        .filter(|&j| {
            bt[j] + c_best - 2.0 * h >= rt[0] && bt[j] + c_best + 2.0 * h <= rt[rt.len() - 1]
        })
        .collect();
    if pts.len() < MIN_POINTS {
        return Err(ExternalError::Xcorr(
            "too little overlap at the best offset".into(),
        ));
    }
    let ssr = |c: f64, set: &[usize]| ctx.fit(c, set).map_or(f64::INFINITY, |f| f.ssr);
    let c_star = golden_min(|c| ssr(c, &pts), c_best - h, c_best + h);
    let Some(at) = ctx.fit(c_star, &pts) else {
        return Err(ExternalError::Xcorr("the refined fit is degenerate".into()));
    };
    if at.r2 < opts.min_r2 {
        return Err(ExternalError::Xcorr(format!(
            "the deflection does not follow the potentiostat's charge and potential \
             (R² = {:.3} at the best lag {c_star:.3} s, need {})",
            at.r2, opts.min_r2
        )));
    }
    // Curvature of SSR at the optimum.
    let delta = h / 4.0;
    let s0 = at.ssr;
    let curv = (ssr(c_star + delta, &pts) + ssr(c_star - delta, &pts) - 2.0 * s0) / delta.powi(2);
    let dof = (pts.len() as f64 - (ctx.rch.len() + 2) as f64).max(1.0);
    let s2 = s0 / dof;
    let se_curv = if curv > 0.0 {
        (2.0 * s2 / curv).sqrt()
    } else {
        f64::INFINITY
    };
    // Independent windows: each its own lag (and its own coefficients).
    let w = opts.windows.max(1);
    let mut wl: Vec<(f64, f64)> = Vec::new(); // (window centre, lag)
    for k in 0..w {
        let a = pts.len() * k / w;
        let b = pts.len() * (k + 1) / w;
        let set = &pts[a..b];
        if set.len() < MIN_POINTS.min(ctx.rch.len() + 6) {
            continue;
        }
        let span = bt[set[set.len() - 1]] - bt[set[0]];
        if span < 2.0 * dt_ref {
            continue;
        }
        let c = golden_min(|c| ssr(c, set), c_star - h, c_star + h);
        let centre = set.iter().map(|&j| bt[j]).sum::<f64>() / set.len() as f64;
        wl.push((centre, c));
    }
    let floor = 0.5 * dt_other;
    let t_pivot_s = pts.iter().map(|&j| bt[j]).sum::<f64>() / pts.len() as f64;
    let (offset_s, drift, drift_se, se_win, rms, drift_fitted) = if opts.fit_drift && wl.len() >= 3
    {
        let pairs: Vec<(f64, f64)> = wl.iter().map(|&(t, c)| (t, t + c)).collect();
        let line = edge_line(&pairs, 0.0);
        // Offset at the pivot from the global fit, drift from the windows.
        let off = c_star - line.drift * t_pivot_s;
        (
            off,
            line.drift,
            line.drift_se,
            line.se_pivot_s,
            line.rms_s,
            true,
        )
    } else {
        let n = wl.len();
        let (se, rms) = if n >= 2 {
            let m = wl.iter().map(|w| w.1).sum::<f64>() / n as f64;
            let ss: f64 = wl.iter().map(|w| (w.1 - m).powi(2)).sum();
            (
                (ss / (n as f64 - 1.0) / n as f64).sqrt(),
                (ss / n as f64).sqrt(),
            )
        } else {
            (0.0, f64::NAN)
        };
        (c_star, 0.0, QUARTZ_DRIFT_SIGMA, se, rms, false)
    };
    let se_pivot_s = se_curv.max(se_win).max(floor);
    let second = scan
        .iter()
        .copied()
        .filter(|(c, _)| (c - c_best).abs() > 4.0 * h)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let runner_up = second.map_or(String::new(), |(c, s)| {
        format!(
            "; next best offset {c:.2} s scores {:.0} % of the best",
            100.0 * s / score_best
        )
    });
    let detail = format!(
        "deflection regressed on the potentiostat's {} channel(s) + constant + linear drift \
         over a lag scan (R² = {:.4}, {} points); SE = max(curvature {:.2e} s, {} windows {:.2e} s, \
         half a trace sample {:.2e} s){}{runner_up}",
        ctx.rch.len(),
        at.r2,
        pts.len(),
        se_curv,
        wl.len(),
        se_win,
        floor,
        if drift_fitted {
            "; drift from the windows' lags"
        } else {
            "; drift unresolved (100 ppm quartz prior)"
        },
    );
    Ok(ExternalAlignment {
        method: ExternalMethod::CrossCorrelation,
        offset_s,
        drift_ppm: drift * 1e6,
        offset_se_s: se_pivot_s.hypot(t_pivot_s * drift_se),
        drift_se_ppm: drift_se * 1e6,
        drift_fitted,
        t_pivot_s,
        se_at_pivot_s: se_pivot_s,
        n_used: wl.len(),
        residual_rms_s: rms,
        alignment_error_estimate_s: 2.0 * se_pivot_s,
        detail,
    })
}

struct Xctx<'a> {
    rt: &'a [f64],
    rch: &'a [Vec<f64>],
    bt: &'a [f64],
    bv: &'a [f64],
}

struct XFit {
    ssr: f64,
    sst: f64,
    r2: f64,
    n: usize,
}

impl XFit {
    /// Log-likelihood gain over a constant, n·ln(SST/SSR): compares fits
    /// on different overlaps.
    fn score(&self) -> f64 {
        self.n as f64 * (self.sst / self.ssr.max(1e-300)).ln()
    }
}

impl Xctx<'_> {
    /// Least squares of the trace points `set` on [1, t, channels at t + c];
    /// points whose shifted time falls outside the reference are left out.
    fn fit(&self, c: f64, set: &[usize]) -> Option<XFit> {
        let t: Vec<f64> = set.iter().map(|&j| self.bt[j] + c).collect();
        let chans: Vec<Vec<f64>> = self
            .rch
            .iter()
            .map(|ch| resample_linear(self.rt, ch, &t))
            .collect();
        let ok: Vec<usize> = (0..set.len())
            .filter(|&k| chans.iter().all(|c| c[k].is_finite()))
            .collect();
        let p = self.rch.len() + 1; // channels + time (constant by centring)
        if ok.len() < p + 3 {
            return None;
        }
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(p);
        cols.push(ok.iter().map(|&k| self.bt[set[k]]).collect());
        for ch in &chans {
            cols.push(ok.iter().map(|&k| ch[k]).collect());
        }
        let y: Vec<f64> = ok.iter().map(|&k| self.bv[set[k]]).collect();
        let (ssr, sst) = centred_lstsq(&cols, &y)?;
        Some(XFit {
            ssr,
            sst,
            r2: if sst > 0.0 { 1.0 - ssr / sst } else { 0.0 },
            n: ok.len(),
        })
    }
}

/// SSR and SST of y on the columns plus a constant (columns centred and
/// scaled, normal equations by Gaussian elimination with pivoting).
/// `None` when every column is constant.
fn centred_lstsq(cols: &[Vec<f64>], y: &[f64]) -> Option<(f64, f64)> {
    let n = y.len() as f64;
    let my = y.iter().sum::<f64>() / n;
    let yc: Vec<f64> = y.iter().map(|v| v - my).collect();
    let sst: f64 = yc.iter().map(|v| v * v).sum();
    let z: Vec<Vec<f64>> = cols
        .iter()
        .filter_map(|c| {
            let m = c.iter().sum::<f64>() / n;
            let s = (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
            (s > 0.0 && s.is_finite()).then(|| c.iter().map(|v| (v - m) / s).collect())
        })
        .collect();
    let p = z.len();
    if p == 0 {
        return None;
    }
    let mut a = vec![vec![0.0; p + 1]; p];
    for i in 0..p {
        for j in 0..p {
            a[i][j] = z[i].iter().zip(&z[j]).map(|(x, y)| x * y).sum();
        }
        a[i][p] = z[i].iter().zip(&yc).map(|(x, y)| x * y).sum();
        // A whisper of ridge keeps collinear channels solvable.
        a[i][i] += 1e-10 * n;
    }
    for col in 0..p {
        let piv = (col..p).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        a.swap(col, piv);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            return None;
        }
        let pivot_row = a[col].clone();
        for (i, row) in a.iter_mut().enumerate() {
            if i != col {
                let f = row[col] / d;
                for (x, pv) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * pv;
                }
            }
        }
    }
    let beta: Vec<f64> = (0..p).map(|i| a[i][p] / a[i][i]).collect();
    let ssr: f64 = (0..y.len())
        .map(|k| {
            let fit: f64 = (0..p).map(|i| beta[i] * z[i][k]).sum();
            (yc[k] - fit).powi(2)
        })
        .sum();
    Some((ssr, sst))
}

/// Minimiser of `f` on `[a, b]` by golden-section search (f unimodal there).
fn golden_min(f: impl Fn(f64) -> f64, mut a: f64, mut b: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if (b - a).abs() < 1e-9 {
            break;
        }
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    0.5 * (a + b)
}

/// Means of `v` (and of `t`) over consecutive bins `width` s wide; the
/// input unchanged when it is not finer than that.
fn block_average(t: &[f64], v: &[f64], width: f64) -> (Vec<f64>, Vec<f64>) {
    if width.is_nan() || width <= 0.0 || median_step(t) * 1.5 >= width {
        return (t.to_vec(), v.to_vec());
    }
    let (mut bt, mut bv) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < t.len() {
        let end = t[i] + width;
        let (mut st, mut sv, mut n) = (0.0, 0.0, 0.0);
        while i < t.len() && t[i] < end {
            st += t[i];
            sv += v[i];
            n += 1.0;
            i += 1;
        }
        bt.push(st / n);
        bv.push(sv / n);
    }
    (bt, bv)
}

fn median_step(t: &[f64]) -> f64 {
    let mut d: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return 0.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// Times must be finite and non-decreasing.
fn check_times(what: &'static str, t: &[f64]) -> Result<(), ExternalError> {
    if let Some(i) = t.iter().position(|x| !x.is_finite()) {
        return Err(ExternalError::BadInput {
            what,
            why: format!("non-finite time at index {i}"),
        });
    }
    if let Some(i) = t.windows(2).position(|w| w[1] < w[0]) {
        return Err(ExternalError::BadInput {
            what,
            why: format!(
                "time goes backwards at index {} ({} s after {} s)",
                i + 1,
                t[i + 1],
                t[i]
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Deterministic Gaussian noise (xorshift + Box-Muller).
    fn gauss(n: usize, sigma: f64, seed: u64) -> Vec<f64> {
        let mut x = seed | 1;
        let mut u = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| sigma * (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos())
            .collect()
    }

    /// A square wave sampled at `dt` on the trace clock, toggling at the
    /// reference instants `events` mapped through the true clock.
    fn square(events: &[f64], offset: f64, drift: f64, dt: f64, n: usize) -> (Vec<f64>, Vec<f64>) {
        let tau: Vec<f64> = (0..n).map(|k| k as f64 * dt).collect();
        let x = tau
            .iter()
            .map(|&t| {
                let tr = offset + (1.0 + drift) * t;
                (events.iter().filter(|&&e| e <= tr).count() % 2) as f64 * 5.0
            })
            .collect();
        (tau, x)
    }

    #[test]
    fn edges_are_found_between_samples() {
        let t: Vec<f64> = (0..100).map(|k| k as f64 * 0.1).collect();
        // A ramp crossing 2.5 at t = 3.05 (rising), back down at t = 7.0.
        let x: Vec<f64> = t
            .iter()
            .map(|&t| {
                if t < 3.0 {
                    0.0
                } else if t < 3.1 + 1e-9 {
                    5.0 * (t - 3.0) / 0.2 + 0.0
                } else if t < 7.0 {
                    5.0
                } else {
                    0.0
                }
            })
            .collect();
        let e = detect_edges(&t, &x).unwrap();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].rising && !e[1].rising);
        assert!((e[0].t_s - 3.1).abs() < 1e-9, "{e:?}");
        assert!((e[1].t_s - 6.95).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn a_flat_sync_channel_is_an_error() {
        let t = [0.0, 1.0, 2.0];
        let e = detect_edges(&t, &[1.0, 1.0, 1.0]).unwrap_err();
        assert!(matches!(e, ExternalError::NoEdges { .. }), "{e}");
    }

    #[test]
    fn edges_recover_offset_and_drift() {
        // Events at irregular reference instants (cycle starts); the trace
        // clock is offset by -3.217 s and runs 50 ppm slow.
        let events = vec![3.29, 34.6, 69.3, 104.0, 138.7, 400.0, 700.0, 1000.0];
        let (offset, drift) = (-3.217, 50e-6);
        let dt = 0.05;
        let (tau, x) = square(&events, offset, drift, dt, 22_000);
        let mut x = x;
        for (v, n) in x.iter_mut().zip(gauss(tau.len(), 0.05, 3)) {
            *v += n;
        }
        let edges: Vec<f64> = detect_edges(&tau, &x)
            .unwrap()
            .iter()
            .map(|e| e.t_s)
            .collect();
        assert_eq!(edges.len(), events.len());
        let opts = EdgeOptions {
            other_sigma_s: dt / 12f64.sqrt(),
            ..EdgeOptions::default()
        };
        let a = align_by_edges(&events, &edges, &opts).unwrap();
        assert_eq!(a.n_used, events.len());
        assert!(a.drift_fitted);
        for t in [0.0, 500.0, 1000.0] {
            let err = a.to_ref(t) - (offset + (1.0 + drift) * t);
            assert!(err.abs() < dt, "t={t}: {err} {a:?}");
            assert!(err.abs() < 3.0 * a.se_at(t), "t={t}: {err} {a:?}");
        }
    }

    #[test]
    fn one_edge_gives_the_offset_with_the_drift_prior() {
        let a = align_by_edges(
            &[10.0],
            &[12.5],
            &EdgeOptions {
                other_sigma_s: 0.01,
                ..EdgeOptions::default()
            },
        )
        .unwrap();
        assert!((a.offset_s + 2.5).abs() < 1e-12);
        assert!(!a.drift_fitted);
        assert_eq!(a.drift_se_ppm, 100.0);
        // 1000 s from the edge the prior's 100 ppm dominates: 0.1 s.
        assert!((a.se_at(1012.5) - 0.01f64.hypot(0.1)).abs() < 1e-9);
    }

    #[test]
    fn extra_and_missing_edges_do_not_break_the_pairing() {
        let events = [5.0, 17.0, 31.0, 52.0, 60.0];
        // Trace starts late (misses the first), has a spurious edge at 2.0.
        let off = 7.3;
        let other: Vec<f64> = [2.0]
            .into_iter()
            .chain(events[1..].iter().map(|e| e - off))
            .collect();
        let a = align_by_edges(&events, &other, &EdgeOptions::default()).unwrap();
        assert_eq!(a.n_used, 4);
        assert!((a.offset_s - off).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn a_periodic_sync_is_ambiguous_without_a_prior() {
        // A 1 s pulse train; the trace saw five of its twenty edges.
        let events: Vec<f64> = (0..20).map(|k| k as f64).collect();
        let other: Vec<f64> = (5..10).map(|k| k as f64 - 0.3).collect();
        let e = align_by_edges(&events, &other, &EdgeOptions::default()).unwrap_err();
        assert!(matches!(e, ExternalError::Ambiguous { .. }), "{e}");
        let a = align_by_edges(
            &events,
            &other,
            &EdgeOptions {
                prior_offset_s: Some((0.2, 0.2)),
                ..EdgeOptions::default()
            },
        )
        .unwrap();
        assert!((a.offset_s - 0.3).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn timestamps_state_the_given_uncertainty() {
        let a = align_by_timestamps(1_000_000_000, 4_217_000_000, 1.0).unwrap();
        assert!((a.offset_s - 3.217).abs() < 1e-12);
        assert_eq!(a.alignment_error_estimate_s, 2.0);
        assert!(align_by_timestamps(0, 0, 0.0).is_err());
    }

    #[allow(clippy::type_complexity)]
    /// A CV-like drive: triangle potential, current = C dE/dt + a faradaic
    /// peak; charge by the trapezoid rule; deflection = kappa·(Q - C·E).
    fn cv_fixture(
        offset: f64,
        drift: f64,
        noise: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let dt_ref = 0.667;
        let n = 230;
        let t: Vec<f64> = (0..n).map(|k| 3.29 + k as f64 * dt_ref).collect();
        let period = 32.6;
        let e: Vec<f64> = t
            .iter()
            .map(|&t| {
                let ph = (t / period).fract();
                if ph < 0.5 {
                    1.6 * ph * 2.0
                } else {
                    1.6 * (2.0 - 2.0 * ph)
                }
            })
            .collect();
        let i: Vec<f64> = e
            .iter()
            .zip(&t)
            .map(|(&e, &t)| {
                let dir = if (t / period).fract() < 0.5 {
                    1.0
                } else {
                    -1.0
                };
                1e-6 * dir + 5e-6 * dir * (-(e - 0.8f64).powi(2) / 0.02).exp()
            })
            .collect();
        let mut q = vec![0.0; n];
        for k in 1..n {
            q[k] = q[k - 1] + 0.5 * (i[k] + i[k - 1]) * (t[k] - t[k - 1]);
        }
        let c_dl = 1e-5;
        let qf: Vec<f64> = q.iter().zip(&e).map(|(q, e)| q - c_dl * e).collect();
        let kappa = -2.0e5; // nm per C
        let dt = 0.05;
        let m = ((t[n - 1] - t[0] + 8.0) / dt) as usize;
        let tau: Vec<f64> = (0..m).map(|k| k as f64 * dt).collect();
        let tr: Vec<f64> = tau.iter().map(|&s| offset + (1.0 + drift) * s).collect();
        let u = resample_linear(&t, &qf, &tr);
        let nz = gauss(m, noise, 9);
        let (tau, u): (Vec<f64>, Vec<f64>) = tau
            .iter()
            .zip(u.iter().zip(&nz))
            .filter(|(_, (u, _))| u.is_finite())
            .map(|(&s, (&u, &z))| (s, kappa * u + z))
            .unzip();
        (t, e, q, tau, u)
    }

    #[test]
    fn xcorr_recovers_the_lag_within_its_stated_error() {
        let (offset, drift) = (-3.217, 50e-6);
        let (t, e, q, tau, u) = cv_fixture(offset, drift, 0.02);
        let a = align_by_xcorr(&t, &[&q, &e], &tau, &u, &XcorrOptions::default()).unwrap();
        let t_mid = 0.5 * (tau[0] + tau[tau.len() - 1]);
        let err = a.to_ref(t_mid) - (offset + (1.0 + drift) * t_mid);
        assert!(err.abs() < 0.05, "{err} {a:?}");
        let a = a.with_span(tau[0], tau[tau.len() - 1]);
        assert!(err.abs() <= a.alignment_error_estimate_s, "{err} {a:?}");
        assert!(a.se_at_pivot_s >= 0.0249, "{a:?}");
    }

    #[test]
    fn xcorr_refuses_a_deflection_that_follows_nothing() {
        let (t, e, q, tau, _) = cv_fixture(0.0, 0.0, 0.0);
        let noise = gauss(tau.len(), 1.0, 5);
        let err =
            align_by_xcorr(&t, &[&q, &e], &tau, &noise, &XcorrOptions::default()).unwrap_err();
        assert!(matches!(err, ExternalError::Xcorr(_)), "{err}");
    }
}
