//! Bounded-memory reduction of the aligned table for the report's figures.
//!
//! A day-long run has ~8.6 M aligned rows (a potentiostat sample every
//! 10 ms): holding them costs over a gigabyte, and drawing them gives an
//! SVG nobody can open. The time series is therefore min-max decimated
//! while the table streams past in slices ([`decimated_timeseries`]), with
//! exactly the output of the in-memory [`decimate`] so small runs look as
//! before; and a CV step shows at most [`MAX_CYCLES`] of its cycles
//! ([`select_cycles`]), each thinned to the spec's `max_points` when huge
//! ([`minmax_indices`]).

use vegard_pipeline::{AlignedFile, PipelineError};
use vegard_store::schema::aligned_col;

/// Most cycles a CV or loops figure draws: more lines are unreadable, and
/// a day of 10 s cycles (8640) would make an absurd HTML file.
pub const MAX_CYCLES: usize = 12;

/// Min-max decimation to about `max_points`, keeping each bucket's extremes
/// in time order so peaks survive; a gap in time (between steps) becomes a
/// NaN so the line breaks there instead of drawing across it.
pub fn decimate(t: &[f64], y: &[f64], max_points: usize) -> (Vec<f64>, Vec<f64>) {
    let n = t.len().min(y.len());
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut dts: Vec<f64> = t
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    dts.sort_by(f64::total_cmp);
    let median_dt = dts.get(dts.len() / 2).copied().unwrap_or(0.0);
    let gap = gap_threshold(median_dt);
    let bucket = bucket_rows(n, max_points);
    let (mut xo, mut yo) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let mut end = (start + bucket).min(n);
        // A bucket never spans a gap.
        if let Some(k) = (start + 1..end).find(|&k| t[k] - t[k - 1] > gap) {
            end = k;
        }
        let idx = start..end;
        let finite = idx.clone().filter(|&i| y[i].is_finite());
        let lo = finite.clone().min_by(|&a, &b| y[a].total_cmp(&y[b]));
        let hi = finite.max_by(|&a, &b| y[a].total_cmp(&y[b]));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            for i in if lo <= hi { [lo, hi] } else { [hi, lo] } {
                if xo.last() != Some(&t[i]) {
                    xo.push(t[i]);
                    yo.push(y[i]);
                }
            }
        }
        if end < n && t[end] - t[end - 1] > gap {
            xo.push(0.5 * (t[end] + t[end - 1]));
            yo.push(f64::NAN);
        }
        start = end;
    }
    (xo, yo)
}

/// A step in time longer than this breaks the line: 20 median sample
/// intervals (the steps without aligned samples: EIS, temperature changes).
fn gap_threshold(median_dt: f64) -> f64 {
    (20.0 * median_dt).max(1e-9)
}

/// Rows per bucket so that two points a bucket give at most `max_points`.
fn bucket_rows(n: usize, max_points: usize) -> usize {
    n.div_ceil((max_points / 2).max(1)).max(1)
}

/// The timeseries section's traces, min-max decimated in one pass over the
/// aligned table ([`decimated_timeseries`]): what the report keeps of the
/// whole table instead of the table itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeSeries {
    /// Rows of the aligned table (the figure's caption states them).
    pub rows: usize,
    /// `(t_s, E_V)`.
    pub E: (Vec<f64>, Vec<f64>),
    /// `(t_s, I in mA)`.
    pub I_mA: (Vec<f64>, Vec<f64>),
    /// `(t_s, deflection_nm)`.
    pub u: (Vec<f64>, Vec<f64>),
    /// `(t_s, T_K)`.
    pub T: (Vec<f64>, Vec<f64>),
    /// Smallest and largest finite T (`(inf, -inf)` when none is): the T
    /// panel is drawn only when T moved, which the decimated trace alone
    /// cannot tell exactly.
    pub T_range: (f64, f64),
}

impl TimeSeries {
    /// Largest minus smallest finite T; `-inf` without a finite T.
    pub fn T_spread(&self) -> f64 {
        self.T_range.1 - self.T_range.0
    }
}

/// One bucket's extreme (row, t, y).
type Extreme = Option<(usize, f64, f64)>;

/// One trace of [`Decimator`]: its output so far and the extremes of the
/// open bucket.
#[derive(Debug, Default)]
struct Trace {
    x: Vec<f64>,
    y: Vec<f64>,
    lo: Extreme,
    hi: Extreme,
}

impl Trace {
    /// Same ties as [`decimate`]'s `min_by`/`max_by`: the first minimum
    /// and the last maximum.
    fn add(&mut self, row: usize, t: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        if self.lo.is_none_or(|(_, _, lo)| y.total_cmp(&lo).is_lt()) {
            self.lo = Some((row, t, y));
        }
        if self.hi.is_none_or(|(_, _, hi)| y.total_cmp(&hi).is_ge()) {
            self.hi = Some((row, t, y));
        }
    }

    fn close(&mut self) {
        if let (Some(lo), Some(hi)) = (self.lo.take(), self.hi.take()) {
            for (_, t, y) in if lo.0 <= hi.0 { [lo, hi] } else { [hi, lo] } {
                if self.x.last() != Some(&t) {
                    self.x.push(t);
                    self.y.push(y);
                }
            }
        }
    }
}

/// [`decimate`] of several traces sharing one time column, fed a row at a
/// time: the same buckets (rows counted from the first, cut at gaps) and
/// the same points, without holding the columns.
struct Decimator {
    bucket: usize,
    gap: f64,
    /// First row of the open bucket.
    start: usize,
    /// Rows fed so far.
    row: usize,
    prev_t: f64,
    traces: Vec<Trace>,
}

impl Decimator {
    /// `rows` and `median_dt` of the whole table, as [`decimate`] derives
    /// them from the columns it holds.
    fn new(rows: usize, median_dt: f64, max_points: usize, traces: usize) -> Self {
        Decimator {
            bucket: bucket_rows(rows, max_points),
            gap: gap_threshold(median_dt),
            start: 0,
            row: 0,
            prev_t: f64::NAN,
            traces: (0..traces).map(|_| Trace::default()).collect(),
        }
    }

    fn push(&mut self, t: f64, ys: &[f64]) {
        let k = self.row;
        if k > self.start {
            let gap = t - self.prev_t > self.gap;
            if gap || k == self.start + self.bucket {
                for tr in &mut self.traces {
                    tr.close();
                    if gap {
                        tr.x.push(0.5 * (t + self.prev_t));
                        tr.y.push(f64::NAN);
                    }
                }
                self.start = k;
            }
        }
        for (tr, &y) in self.traces.iter_mut().zip(ys) {
            tr.add(k, t, y);
        }
        self.prev_t = t;
        self.row += 1;
    }

    fn finish(mut self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.traces
            .iter_mut()
            .map(|tr| {
                tr.close();
                (std::mem::take(&mut tr.x), std::mem::take(&mut tr.y))
            })
            .collect()
    }
}

/// E, I (mA), u and T of the whole aligned table, each [`decimate`]d to at
/// most `max_points`, with the same points [`decimate`] gives from the
/// columns in memory. Two passes in slices: the time column alone for the
/// median sample interval (the gap threshold must be known before the
/// first bucket closes), then the five columns once. Memory: the decimated
/// traces, one slice, and the positive time steps (8 bytes a row, freed
/// before the second pass), not the table.
pub fn decimated_timeseries(
    file: &AlignedFile,
    max_points: usize,
) -> Result<TimeSeries, PipelineError> {
    let rows = file.index().rows();
    let mut ts = TimeSeries {
        rows,
        T_range: (f64::INFINITY, f64::NEG_INFINITY),
        ..TimeSeries::default()
    };
    if rows == 0 {
        return Ok(ts);
    }
    let median_dt = {
        let mut dts: Vec<f64> = Vec::new();
        let mut prev: Option<f64> = None;
        file.for_each_slice(&[aligned_col::t_s], |s| {
            for t in s.f64(aligned_col::t_s)? {
                if let Some(p) = prev {
                    let d = t - p;
                    if d > 0.0 {
                        dts.push(d);
                    }
                }
                prev = Some(t);
            }
            Ok(())
        })?;
        if dts.is_empty() {
            0.0
        } else {
            let mid = dts.len() / 2;
            *dts.select_nth_unstable_by(mid, f64::total_cmp).1
        }
    };
    let mut d = Decimator::new(rows, median_dt, max_points, 4);
    let cols = [
        aligned_col::t_s,
        aligned_col::E_V,
        aligned_col::I_A,
        aligned_col::deflection_nm,
        aligned_col::T_K,
    ];
    let (mut T_lo, mut T_hi) = ts.T_range;
    file.for_each_slice(&cols, |s| {
        let (t, e, i, u, T) = (
            s.f64(aligned_col::t_s)?,
            s.f64(aligned_col::E_V)?,
            s.f64(aligned_col::I_A)?,
            s.f64(aligned_col::deflection_nm)?,
            s.f64(aligned_col::T_K)?,
        );
        let n = [t.len(), e.len(), i.len(), u.len(), T.len()]
            .into_iter()
            .min()
            .unwrap_or(0);
        for k in 0..n {
            d.push(t[k], &[e[k], i[k] * 1e3, u[k], T[k]]);
            if T[k].is_finite() {
                T_lo = T_lo.min(T[k]);
                T_hi = T_hi.max(T[k]);
            }
        }
        Ok(())
    })?;
    ts.T_range = (T_lo, T_hi);
    let mut traces = d.finish().into_iter();
    let mut next = || traces.next().unwrap_or_default();
    ts.E = next();
    ts.I_mA = next();
    ts.u = next();
    ts.T = next();
    Ok(ts)
}

/// Indices (into `0..n` cycles) of the cycles a figure draws: all of them
/// up to `max`, else the first, the last and `max - 2` evenly spaced
/// between (rounded to the nearest cycle).
pub fn select_cycles(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    if max <= 1 {
        return vec![0; max.min(n)];
    }
    let (span, steps) = (n - 1, max - 1);
    (0..max).map(|k| (k * span + steps / 2) / steps).collect()
}

/// Row indices that min-max decimate `y` (one cycle's samples, drawn
/// against another column) to at most `max_points`, in order: each bucket
/// of consecutive rows keeps its smallest and largest finite value (a
/// bucket with none keeps its first row, so a NaN still breaks the line).
/// `None` when `y` has no more than `max_points` rows: draw them all.
pub fn minmax_indices(y: &[f64], max_points: usize) -> Option<Vec<usize>> {
    let n = y.len();
    if n <= max_points {
        return None;
    }
    let bucket = bucket_rows(n, max_points);
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + bucket).min(n);
        let finite = (start..end).filter(|&i| y[i].is_finite());
        let lo = finite.clone().min_by(|&a, &b| y[a].total_cmp(&y[b]));
        let hi = finite.max_by(|&a, &b| y[a].total_cmp(&y[b]));
        match (lo, hi) {
            (Some(lo), Some(hi)) => {
                out.push(lo.min(hi));
                if lo != hi {
                    out.push(lo.max(hi));
                }
            }
            _ => out.push(start),
        }
        start = end;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vegard_store::schema::{Aligned, AlignedRow};

    /// 8640 cycles (a day of 10 s cycles): 12 drawn, the first and the last
    /// among them, evenly spaced (neighbours differ by 785 or 786 cycles,
    /// the rounding of 8639 / 11); few cycles are all drawn.
    #[test]
    fn cycle_selection_keeps_ends_and_spaces_evenly() {
        let k = select_cycles(8640, MAX_CYCLES);
        assert_eq!(k.len(), 12);
        assert_eq!((k[0], k[11]), (0, 8639));
        assert_eq!(k[1], 785, "cycle 786 is the second drawn");
        for w in k.windows(2) {
            let d = w[1] - w[0];
            assert!(d == 785 || d == 786, "{k:?}");
        }
        assert_eq!(select_cycles(5, MAX_CYCLES), [0, 1, 2, 3, 4]);
        assert_eq!(select_cycles(12, MAX_CYCLES), (0..12).collect::<Vec<_>>());
        assert_eq!(select_cycles(13, MAX_CYCLES).len(), 12);
        assert_eq!(select_cycles(13, MAX_CYCLES)[11], 12);
        assert!(select_cycles(0, MAX_CYCLES).is_empty());
    }

    /// A short cycle is drawn whole; a long one keeps at most `max_points`
    /// rows, in order, its extremes among them.
    #[test]
    fn minmax_indices_bound_a_cycle() {
        assert_eq!(minmax_indices(&[1.0, 2.0, 3.0], 10), None);
        let y: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.01).sin()).collect();
        let idx = minmax_indices(&y, 200).unwrap();
        assert!(idx.len() <= 200, "{}", idx.len());
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(idx.iter().any(|&i| y[i] == max));
    }

    fn row(i: usize) -> AlignedRow {
        // Three steps separated by gaps (20 s and 100 s) in a 10 ms
        // sampling with jitter; NaN deflection in places; T constant in
        // the first step, then ramping.
        let (step, t0) = match i {
            0..250_000 => (0, 0.0),
            250_000..420_000 => (1, 20.0),
            _ => (2, 120.0),
        };
        let jitter = ((i * 7919) % 13) as f64 * 1e-5;
        let t_s = t0 + i as f64 * 0.01 + jitter;
        AlignedRow {
            t_s,
            step,
            segment: step,
            cycle: (i / 1000) as i64,
            E_V: (t_s * 0.7).sin() + if i.is_multiple_of(9973) { 2.0 } else { 0.0 },
            I_A: 1e-4 * (t_s * 1.3).cos(),
            deflection_V: 0.0,
            deflection_nm: if i % 5000 < 3 {
                f64::NAN
            } else {
                ((i % 17) as f64).mul_add(0.01, t_s * 1e-3)
            },
            sweep_iteration: vegard_store::MISSING_I64,
            setpoint_K: 298.15,
            T_K: if step == 0 {
                298.15
            } else {
                298.15 + 1e-5 * i as f64
            },
        }
    }

    /// 600 000 rows in three slices of the file: the streamed traces are
    /// the in-memory `decimate` of the same columns, point for point and
    /// bit for bit (NaN gap markers where `decimate` has them), for two
    /// `max_points`; the T range is that of the finite T.
    #[test]
    fn streamed_timeseries_matches_in_memory_decimate() {
        let dir = std::env::temp_dir().join(format!("vegard-report-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = vegard_store::schema::aligned_path(&dir);
        let mut a = Aligned::default();
        for i in 0..600_000 {
            a.push(&row(i));
        }
        let mut w = vegard_store::ParquetTableWriter::create(&path, Aligned::COLUMNS).unwrap();
        w.write(&a.clone().into_table()).unwrap();
        w.finish().unwrap();
        let file = AlignedFile::open(&path).unwrap();
        assert_eq!(file.index().rows(), 600_000);
        let i_mA: Vec<f64> = a.I_A.iter().map(|x| x * 1e3).collect();
        let bits = |(x, y): &(Vec<f64>, Vec<f64>)| -> Vec<(u64, u64)> {
            x.iter()
                .zip(y)
                .map(|(x, y)| (x.to_bits(), y.to_bits()))
                .collect()
        };
        for max_points in [2000, 777] {
            let ts = decimated_timeseries(&file, max_points).unwrap();
            assert_eq!(ts.rows, 600_000);
            for (name, got, y) in [
                ("E", &ts.E, &a.E_V),
                ("I", &ts.I_mA, &i_mA),
                ("u", &ts.u, &a.deflection_nm),
                ("T", &ts.T, &a.T_K),
            ] {
                let want = decimate(&a.t_s, y, max_points);
                assert_eq!(got.0.len(), want.0.len(), "{name} at {max_points}");
                assert_eq!(bits(got), bits(&want), "{name} at {max_points}");
                assert!(got.0.len() <= max_points + 10, "{name}: {}", got.0.len());
                // The two gaps between steps break every line.
                assert_eq!(got.1.iter().filter(|v| v.is_nan()).count(), 2, "{name}");
            }
            let T_lo = a.T_K.iter().copied().fold(f64::INFINITY, f64::min);
            let T_hi = a.T_K.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(ts.T_range, (T_lo, T_hi));
            assert!(ts.T_spread() > 0.5);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An empty table gives no traces and no finite T.
    #[test]
    fn empty_table_streams_to_nothing() {
        let dir =
            std::env::temp_dir().join(format!("vegard-report-ts-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = vegard_store::schema::aligned_path(&dir);
        let mut w = vegard_store::ParquetTableWriter::create(&path, Aligned::COLUMNS).unwrap();
        w.write(&Aligned::default().into_table()).unwrap();
        w.finish().unwrap();
        let ts = decimated_timeseries(&AlignedFile::open(&path).unwrap(), 2000).unwrap();
        assert_eq!(ts.rows, 0);
        assert!(ts.E.0.is_empty());
        assert_eq!(ts.T_spread(), f64::NEG_INFINITY);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
