//! The global stage before Levenberg-Marquardt: many random starting
//! points over physically scaled ranges read off the data, screened by
//! their weighted SSR, the best few handed to LM.
//!
//! Why: LM only finds the minimum of the valley it starts in. With two or
//! more arcs the automatic guess (`initial_guess`) starts them identically,
//! so LM may split the arcs wrongly or run a CPE off to `Q = 1e66`; a poor
//! user guess fails the same way (issue 13). A few dozen LM runs from
//! spread starts cost milliseconds (one LM run is ~0.1-2 ms), which keeps
//! vegard far faster than one impedance.py fit.
//!
//! How a random start is drawn (log-uniform unless said otherwise; `span`
//! is the spread of Re Z, `w_lo..w_hi` the measured angular frequencies):
//!
//! - every parallel block gets a characteristic frequency `w_c`, log-uniform
//!   over the measured decades widened by half a decade each side; the
//!   blocks' frequencies are kept at least 0.3 decade apart (distinct arcs),
//!   and assigned to the blocks in random order;
//! - R inside a block: `[1e-2, 1.5] x span` (the search region inside the
//!   bounds `[1e-3, 1e3] x span`); R in the outer chain: `[0.5, 2] x` the
//!   high-frequency intercept (or `[1e-3, 1] x span` if that is not > 0);
//! - C inside a block: `1 / (w_c R_block)`; CPE inside a block: alpha
//!   uniform in `[0.5, 1]`, `Q = 1 / (R_block w_c^alpha)`, with `R_block`
//!   the block's resistances (or `span`);
//! - C / CPE in the outer chain (an electrode tail): the value that matches
//!   |Z| at the lowest frequency, times `[0.1, 10]`; CPE alpha in `[0.5, 1]`;
//! - W: `span sqrt(w_lo) x [0.01, 10]`; Wo/Ws: Z0 `[1e-2, 3] x span`, tau
//!   `[0.1/w_hi, 10/w_lo]`; L: `|Z|/w_hi x [1e-4, 1]`.
//!
//! The generator is a fixed-seed SplitMix64, so a fit is reproducible.

use super::circuit::{Circuit, ElementKind, Node};

/// SplitMix64: tiny, fast, and good enough for spreading starts.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Log-uniform in [lo, hi] (both > 0).
    fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        self.range(lo.ln(), hi.ln()).exp()
    }
}

/// What the random starts are scaled by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataScales {
    span_ohm: f64,
    r_hf_ohm: f64,
    z_lf_ohm: f64,
    z_max_ohm: f64,
    w_lo: f64,
    w_hi: f64,
}

impl DataScales {
    pub(crate) fn of(f_Hz: &[f64], Z: &[(f64, f64)]) -> DataScales {
        let mut idx: Vec<usize> = (0..f_Hz.len()).collect();
        idx.sort_by(|&a, &b| f_Hz[a].total_cmp(&f_Hz[b]));
        let (lo, hi) = (idx[0], idx[idx.len() - 1]);
        let (re_min, re_max) = Z
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), z| {
                (a.min(z.0), b.max(z.0))
            });
        let z_max_ohm = Z.iter().map(|z| z.0.hypot(z.1)).fold(0.0, f64::max);
        let span = re_max - re_min;
        let span_ohm = if span > 0.0 {
            span
        } else {
            z_max_ohm.max(1e-300)
        };
        DataScales {
            span_ohm,
            r_hf_ohm: Z[hi].0,
            z_lf_ohm: Z[lo].0.hypot(Z[lo].1).max(1e-300),
            z_max_ohm: z_max_ohm.max(1e-300),
            w_lo: std::f64::consts::TAU * f_Hz[lo],
            w_hi: std::f64::consts::TAU * f_Hz[hi],
        }
    }
}

/// For every element (by index in `circuit.elements()`), the pre-order
/// index of its nearest enclosing parallel block; and the number of blocks.
fn owners(circuit: &Circuit) -> (Vec<Option<usize>>, usize) {
    fn visit(
        node: &Node,
        owner: Option<usize>,
        n_blocks: &mut usize,
        by_first: &mut Vec<(usize, Option<usize>)>,
    ) {
        match node {
            Node::Element { first, .. } => by_first.push((*first, owner)),
            Node::Series(c) => {
                for x in c {
                    visit(x, owner, n_blocks, by_first);
                }
            }
            Node::Parallel(c) => {
                let me = *n_blocks;
                *n_blocks += 1;
                for x in c {
                    visit(x, Some(me), n_blocks, by_first);
                }
            }
        }
    }
    let mut n_blocks = 0;
    let mut by_first = Vec::new();
    visit(circuit.root(), None, &mut n_blocks, &mut by_first);
    let owners = circuit
        .elements()
        .iter()
        .map(|e| {
            by_first
                .iter()
                .find(|(f, _)| *f == e.first_param)
                .and_then(|(_, o)| *o)
        })
        .collect();
    (owners, n_blocks)
}

/// `n` distinct log-uniform frequencies over the widened window, at least
/// 0.3 decade apart when the window allows it, in random order.
fn block_omegas(n: usize, sc: &DataScales, rng: &mut Rng) -> Vec<f64> {
    let (lo, hi) = ((sc.w_lo / 3.0).ln(), (sc.w_hi * 3.0).ln());
    let min_gap = 0.3 * std::f64::consts::LN_10;
    let feasible = (hi - lo) > min_gap * n as f64;
    let mut v: Vec<f64> = Vec::new();
    for _ in 0..50 {
        v = (0..n).map(|_| rng.range(lo, hi)).collect();
        v.sort_by(f64::total_cmp);
        if !feasible || v.windows(2).all(|w| w[1] - w[0] >= min_gap) {
            break;
        }
    }
    // Fisher-Yates.
    for i in (1..v.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        v.swap(i, j.min(i));
    }
    v.into_iter().map(f64::exp).collect()
}

/// One random start; see the module documentation.
pub(crate) fn random_start(circuit: &Circuit, sc: &DataScales, rng: &mut Rng) -> Vec<f64> {
    let (owner, n_blocks) = owners(circuit);
    let omegas = block_omegas(n_blocks, sc, rng);
    let mut p = vec![0.0; circuit.n_params()];
    let elements = circuit.elements();
    // Resistances first: the blocks' capacitances depend on them.
    let mut r_block = vec![0.0; n_blocks];
    for (e, o) in elements.iter().zip(&owner) {
        if e.kind != ElementKind::R {
            continue;
        }
        let k = e.first_param;
        p[k] = match o {
            Some(b) => {
                let r = rng.log_range(1e-2 * sc.span_ohm, 1.5 * sc.span_ohm);
                r_block[*b] += r;
                r
            }
            None if sc.r_hf_ohm > 0.0 => rng.log_range(0.5 * sc.r_hf_ohm, 2.0 * sc.r_hf_ohm),
            None => rng.log_range(1e-3 * sc.span_ohm, sc.span_ohm),
        };
    }
    for (e, o) in elements.iter().zip(&owner) {
        let k = e.first_param;
        let block = o.map(|b| {
            let r = if r_block[b] > 0.0 {
                r_block[b]
            } else {
                sc.span_ohm
            };
            (omegas[b], r)
        });
        match e.kind {
            ElementKind::R => {}
            ElementKind::C => {
                p[k] = match block {
                    Some((w, r)) => 1.0 / (w * r),
                    None => rng.log_range(0.1, 10.0) / (sc.w_lo * sc.z_lf_ohm),
                }
            }
            ElementKind::Cpe => {
                let a = rng.range(0.5, 1.0);
                p[k + 1] = a;
                p[k] = match block {
                    Some((w, r)) => 1.0 / (r * w.powf(a)),
                    None => rng.log_range(0.1, 10.0) / (sc.z_lf_ohm * sc.w_lo.powf(a)),
                };
            }
            ElementKind::L => {
                p[k] = rng.log_range(1e-4, 1.0) * sc.z_max_ohm / sc.w_hi;
            }
            ElementKind::W => {
                p[k] = rng.log_range(1e-2, 10.0) * sc.span_ohm * sc.w_lo.sqrt();
            }
            ElementKind::Wo | ElementKind::Ws => {
                p[k] = rng.log_range(1e-2, 3.0) * sc.span_ohm;
                p[k + 1] = rng.log_range(0.1 / sc.w_hi, 10.0 / sc.w_lo);
            }
        }
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn starts_spread_the_arcs_and_stay_in_range() {
        let c = Circuit::parse("R0-p(R1,CPE1)-p(R2,CPE2)-CPE3").unwrap();
        let f: Vec<f64> = (0..50)
            .map(|k| 10f64.powf(-1.0 + 0.15 * k as f64))
            .collect();
        let z: Vec<(f64, f64)> = f.iter().map(|_| (0.0, 0.0)).collect();
        let mut z = z;
        // Re Z from 10 to 1010 ohm.
        for (i, zi) in z.iter_mut().enumerate() {
            zi.0 = 1010.0 - 20.0 * i as f64;
            zi.1 = -5.0;
        }
        let sc = DataScales::of(&f, &z);
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let p = random_start(&c, &sc, &mut rng);
            assert!(p.iter().all(|v| v.is_finite() && *v > 0.0), "{p:?}");
            for a in [p[3], p[6], p[8]] {
                assert!((0.5..=1.0).contains(&a));
            }
            for r in [p[1], p[4]] {
                assert!((10.0 - 1e-9..=1500.0 + 1e-9).contains(&r), "{r}");
            }
            // Distinct arcs: tau at least 0.3 decade apart.
            let tau1 = (p[1] * p[2]).powf(1.0 / p[3]);
            let tau2 = (p[4] * p[5]).powf(1.0 / p[6]);
            assert!((tau1 / tau2).log10().abs() > 0.3 - 1e-9, "{tau1} {tau2}");
        }
    }
}
