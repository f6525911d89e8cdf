//! Min-max summaries of columnar histories and the decimation that draws
//! them. Owns nothing but index bookkeeping: the samples themselves live in
//! [`crate::state::DashState`]'s plain `Vec`s.
//!
//! Why min-max: a chart cell can show one vertical stroke per column; keeping
//! the smallest and largest sample that falls into each column draws exactly
//! what plotting every point would (spikes and noise bands included) from at
//! most two points per column. Why block summaries: with 10^6 samples a scan
//! per frame costs milliseconds; with the extremes of every [`BLOCK`] samples
//! kept as they arrive, a column costs two partial block scans plus one read
//! per whole block inside it.

/// Samples per summary block.
pub const BLOCK: usize = 64;

/// Extremes of one block: value and index of the minimum and the maximum of
/// its finite samples (`min_i == usize::MAX` while it has none).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extremes {
    min: f64,
    min_i: usize,
    max: f64,
    max_i: usize,
}

impl Extremes {
    const EMPTY: Extremes = Extremes {
        min: f64::INFINITY,
        min_i: usize::MAX,
        max: f64::NEG_INFINITY,
        max_i: usize::MAX,
    };

    fn add(&mut self, v: f64, i: usize) {
        if !v.is_finite() {
            return;
        }
        if v < self.min {
            self.min = v;
            self.min_i = i;
        }
        if v > self.max {
            self.max = v;
            self.max_i = i;
        }
    }

    fn merge(&mut self, o: &Extremes) {
        if o.min < self.min {
            self.min = o.min;
            self.min_i = o.min_i;
        }
        if o.max > self.max {
            self.max = o.max;
            self.max_i = o.max_i;
        }
    }

    fn is_empty(&self) -> bool {
        self.min_i == usize::MAX
    }
}

/// Running per-block extremes of one value column, kept in step with it:
/// call [`MinMaxIndex::push`] with every value appended to the column.
#[derive(Debug, Clone, Default)]
pub struct MinMaxIndex {
    blocks: Vec<Extremes>,
    len: usize,
}

impl MinMaxIndex {
    /// Record that `v` was appended to the column (at index `self.len()`).
    pub fn push(&mut self, v: f64) {
        let i = self.len;
        if i / BLOCK == self.blocks.len() {
            self.blocks.push(Extremes::EMPTY);
        }
        if let Some(b) = self.blocks.last_mut() {
            b.add(v, i);
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Extremes of `v[a..e]` using whole-block summaries where possible.
    fn extremes(&self, v: &[f64], a: usize, e: usize) -> Extremes {
        let mut x = Extremes::EMPTY;
        let mut i = a;
        while i < e && !i.is_multiple_of(BLOCK) {
            x.add(v[i], i);
            i += 1;
        }
        while i + BLOCK <= e {
            if let Some(b) = self.blocks.get(i / BLOCK) {
                x.merge(b);
            }
            i += BLOCK;
        }
        while i < e {
            x.add(v[i], i);
            i += 1;
        }
        x
    }

    /// [`min_max_decimate`] of `(t, v)` (the column this index summarises),
    /// in O(buckets × (log n + 2·BLOCK + bucket/BLOCK)) instead of O(n).
    pub fn decimate(
        &self,
        t: &[f64],
        v: &[f64],
        t_lo: f64,
        t_hi: f64,
        buckets: usize,
    ) -> Vec<(f64, f64)> {
        let n = t.len().min(v.len()).min(self.len);
        decimate_with(&t[..n], &v[..n], t_lo, t_hi, buckets, |a, e| {
            self.extremes(&v[..n], a, e)
        })
    }
}

/// Min-max decimation of the samples of `(t, v)` with `t_lo <= t <= t_hi`
/// (`t` ascending) into `buckets` equal time intervals: per interval the
/// minimum and the maximum finite sample, in the order they occur, so a line
/// through the result traces the same envelope as one through every sample.
/// Windows with at most two samples per bucket are returned as they are
/// (finite samples only). Reference implementation: a plain scan.
pub fn min_max_decimate(
    t: &[f64],
    v: &[f64],
    t_lo: f64,
    t_hi: f64,
    buckets: usize,
) -> Vec<(f64, f64)> {
    let n = t.len().min(v.len());
    decimate_with(&t[..n], &v[..n], t_lo, t_hi, buckets, |a, e| {
        let mut x = Extremes::EMPTY;
        for (i, &val) in v.iter().enumerate().take(e).skip(a) {
            x.add(val, i);
        }
        x
    })
}

fn decimate_with(
    t: &[f64],
    v: &[f64],
    t_lo: f64,
    t_hi: f64,
    buckets: usize,
    extremes: impl Fn(usize, usize) -> Extremes,
) -> Vec<(f64, f64)> {
    let i0 = t.partition_point(|&x| x < t_lo);
    let i1 = t.partition_point(|&x| x <= t_hi).max(i0);
    let buckets = buckets.max(1);
    if i1 - i0 <= 2 * buckets || t_hi <= t_lo {
        return (i0..i1)
            .filter(|&i| v[i].is_finite() && t[i].is_finite())
            .map(|i| (t[i], v[i]))
            .collect();
    }
    let mut out = Vec::with_capacity(2 * buckets);
    let width = (t_hi - t_lo) / buckets as f64;
    let mut a = i0;
    for b in 1..=buckets {
        let e = if b == buckets {
            i1
        } else {
            let edge = t_lo + width * b as f64;
            a + t[a..i1].partition_point(|&x| x < edge)
        };
        if e > a {
            let x = extremes(a, e);
            if !x.is_empty() {
                if x.min_i == x.max_i {
                    out.push((t[x.min_i], x.min));
                } else if x.min_i < x.max_i {
                    out.push((t[x.min_i], x.min));
                    out.push((t[x.max_i], x.max));
                } else {
                    out.push((t[x.max_i], x.max));
                    out.push((t[x.min_i], x.min));
                }
            }
        }
        a = e;
    }
    out
}

/// At most `max_points` evenly strided points of `(x[a..e], y[a..e])` with
/// both coordinates finite: for x-y loops, where time order is not an axis
/// and a cycle holds a few thousand points at most.
pub fn stride_points(
    x: &[f64],
    y: &[f64],
    a: usize,
    e: usize,
    max_points: usize,
) -> Vec<(f64, f64)> {
    let e = e.min(x.len()).min(y.len());
    if e <= a {
        return Vec::new();
    }
    let stride = (e - a).div_ceil(max_points.max(1)).max(1);
    (a..e)
        .step_by(stride)
        .filter(|&i| x[i].is_finite() && y[i].is_finite())
        .map(|i| (x[i], y[i]))
        .collect()
}

/// Smallest and largest y of `points` (None when empty).
pub fn y_range(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    range_of(points.iter().map(|p| p.1))
}

/// Smallest and largest x of `points` (None when empty).
pub fn x_range(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    range_of(points.iter().map(|p| p.0))
}

fn range_of(it: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = it
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo <= hi).then_some((lo, hi))
}

/// Axis bounds for data spanning `lo..=hi`: 5 % margin each side, and at
/// least `min_span` wide, centred on the data, so noise on a steady signal
/// is drawn as the small wiggle it is (see `draw::MIN_SPAN_T_K` and its
/// siblings for the floors per quantity). A flat series without a floor
/// gets a band of ±5 % of its value.
pub fn axis_bounds(lo: f64, hi: f64, min_span: f64) -> [f64; 2] {
    let span = hi - lo;
    let padded = if span > 0.0 {
        [lo - 0.05 * span, hi + 0.05 * span]
    } else {
        let h = (lo.abs() * 0.05).max(1e-9);
        [lo - h, hi + h]
    };
    if min_span.is_finite() && padded[1] - padded[0] < min_span {
        let mid = 0.5 * (lo + hi);
        [mid - 0.5 * min_span, mid + 0.5 * min_span]
    } else {
        padded
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A stage holding 313.15 K with ±0.02 K of sensor noise spans the 1 K
    /// floor centred on the data; a 15 K step keeps its own padded range.
    #[test]
    fn axis_floor_known_answers() {
        assert_eq!(axis_bounds(313.13, 313.17, 1.0), [312.65, 313.65]);
        let b = axis_bounds(298.0, 313.0, 1.0);
        assert!((b[0] - 297.25).abs() < 1e-9 && (b[1] - 313.75).abs() < 1e-9);
        assert_eq!(axis_bounds(2.0, 2.0, 0.0), [1.9, 2.1]);
        assert_eq!(axis_bounds(0.0, 0.0, 0.5), [-0.25, 0.25]);
    }

    fn column(n: usize) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.05).sin()).collect();
        (t, v)
    }

    #[test]
    fn decimation_keeps_the_extremes_known_answer() {
        // 10 samples in 2 buckets of 5: bucket 0 = t 0..4, bucket 1 = t 5..9.
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let v = [0.0, 3.0, -1.0, 1.0, 0.5, 0.0, 0.0, -7.0, 9.0, 2.0];
        // Edges at t = 0, 4.5, 9: bucket 0 holds t 0..=4, bucket 1 t 5..=9.
        let got = min_max_decimate(&t, &v, 0.0, 9.0, 2);
        assert_eq!(got, vec![(1.0, 3.0), (2.0, -1.0), (7.0, -7.0), (8.0, 9.0)]);
    }

    #[test]
    fn decimation_of_a_million_points_keeps_single_sample_spikes() {
        let (t, mut v) = column(1_000_000);
        v[123_457] = 50.0;
        v[876_543] = -50.0;
        v[500_000] = f64::NAN; // gaps (NaN) never become points
        let mut idx = MinMaxIndex::default();
        v.iter().for_each(|&x| idx.push(x));
        let fast = idx.decimate(&t, &v, 0.0, t[t.len() - 1], 150);
        let slow = min_max_decimate(&t, &v, 0.0, t[t.len() - 1], 150);
        assert_eq!(
            fast, slow,
            "block summaries must give the plain scan's answer"
        );
        assert!(fast.len() <= 300);
        assert!(fast.contains(&(t[123_457], 50.0)));
        assert!(fast.contains(&(t[876_543], -50.0)));
        assert!(fast.iter().all(|p| p.1.is_finite()));
        assert_eq!(y_range(&fast), Some((-50.0, 50.0)));
    }

    #[test]
    fn window_selects_by_time_and_small_windows_pass_through() {
        let (t, v) = column(1000);
        let mut idx = MinMaxIndex::default();
        v.iter().for_each(|&x| idx.push(x));
        // 0.5 s..=0.6 s holds samples 50..=60: fewer than 2 per bucket of 100.
        let got = idx.decimate(&t, &v, 0.5, 0.6, 100);
        assert_eq!(got.len(), 11);
        assert_eq!(got[0], (t[50], v[50]));
        // The full window in 7 buckets equals the plain scan.
        assert_eq!(
            idx.decimate(&t, &v, 0.0, 9.99, 7),
            min_max_decimate(&t, &v, 0.0, 9.99, 7)
        );
    }

    #[test]
    fn stride_caps_the_count_and_skips_nan() {
        let x: Vec<f64> = (0..10_000).map(f64::from).collect();
        let mut y = x.clone();
        y[0] = f64::NAN;
        let p = stride_points(&x, &y, 0, 10_000, 1000);
        assert!(p.len() <= 1000 && p.len() >= 990);
        assert!(p.iter().all(|q| q.1.is_finite()));
    }
}
