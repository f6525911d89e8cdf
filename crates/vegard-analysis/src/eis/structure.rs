//! What the shape of a circuit says about its parameters: which
//! sub-circuits are interchangeable (and so need a canonical order), and
//! which are simple R||C or R||CPE arcs with a time constant and an
//! effective capacitance.
//!
//! **Canonical labels.** In `p(R1,CPE1)-p(R2,CPE2)` swapping the values of
//! the two blocks gives the same impedance at every frequency, so a fit may
//! land in either order, and across a temperature series the labels would
//! flip from one spectrum to the next (issue 13: R1 was bulk at four
//! temperatures and grain boundary at three). The rule: among parallel
//! blocks that are siblings in one series chain and structurally identical
//! (same element kinds in the same series/parallel structure, indices
//! ignored), the block with the HIGHEST characteristic frequency takes the
//! labels that come first in the circuit string. The characteristic
//! frequency is `f = 1/(2 pi tau)` with `tau = R C` for R||C and
//! `tau = (R Q)^(1/alpha)` for R||CPE (where -Im Z of the block peaks);
//! for any other block shape it is the frequency of the block's largest
//! -Im Z within the measured window. Ties keep the order of appearance.
//! The permutation moves whole parameter blocks, so values, standard errors
//! and covariances all follow (the fit computes them after relabelling).

use serde::Serialize;

use super::circuit::{Circuit, ElementKind, Node, node_z};

/// Parameter range `[first, first + len)` owned by a sub-tree: parameters
/// are numbered in order of appearance, so a sub-tree's are contiguous.
fn param_range(node: &Node) -> (usize, usize) {
    match node {
        Node::Element { kind, first } => (*first, kind.n_params()),
        Node::Series(c) | Node::Parallel(c) => {
            let ranges: Vec<(usize, usize)> = c.iter().map(param_range).collect();
            let first = ranges.iter().map(|r| r.0).min().unwrap_or(0);
            (first, ranges.iter().map(|r| r.1).sum())
        }
    }
}

/// The structure of a sub-tree without element indices: `p(R,CPE)`.
fn shape(node: &Node) -> String {
    match node {
        Node::Element { kind, .. } => kind.prefix().to_string(),
        Node::Series(c) => c.iter().map(shape).collect::<Vec<_>>().join("-"),
        Node::Parallel(c) => format!("p({})", c.iter().map(shape).collect::<Vec<_>>().join(",")),
    }
}

/// A parallel block `p(R, C)` or `p(R, CPE)` (either order): the arcs
/// whose time constant and effective capacitance are defined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SimpleArc {
    /// Parameter index of R.
    pub r: usize,
    /// Parameter index of C, or of the CPE's Q (alpha is `cap + 1`).
    pub cap: usize,
    pub cap_kind: ElementKind,
}

fn simple_arc(node: &Node) -> Option<SimpleArc> {
    let Node::Parallel(c) = node else { return None };
    let [
        Node::Element {
            kind: k1,
            first: f1,
        },
        Node::Element {
            kind: k2,
            first: f2,
        },
    ] = c.as_slice()
    else {
        return None;
    };
    let cap_like = |k: &ElementKind| matches!(k, ElementKind::C | ElementKind::Cpe);
    match (k1, k2) {
        (ElementKind::R, k) if cap_like(k) => Some(SimpleArc {
            r: *f1,
            cap: *f2,
            cap_kind: *k,
        }),
        (k, ElementKind::R) if cap_like(k) => Some(SimpleArc {
            r: *f2,
            cap: *f1,
            cap_kind: *k,
        }),
        _ => None,
    }
}

impl SimpleArc {
    /// tau in s: `R C` or `(R Q)^(1/alpha)`.
    pub(crate) fn tau_s(&self, p: &[f64]) -> f64 {
        match self.cap_kind {
            ElementKind::Cpe => (p[self.r] * p[self.cap]).powf(1.0 / p[self.cap + 1]),
            _ => p[self.r] * p[self.cap],
        }
    }

    /// Gradient of `ln tau` with respect to the parameter vector (sparse:
    /// (index, value) pairs).
    fn grad_ln_tau(&self, p: &[f64]) -> Vec<(usize, f64)> {
        match self.cap_kind {
            ElementKind::Cpe => {
                let a = p[self.cap + 1];
                let ln_tau = self.tau_s(p).ln();
                vec![
                    (self.r, 1.0 / (a * p[self.r])),
                    (self.cap, 1.0 / (a * p[self.cap])),
                    (self.cap + 1, -ln_tau / a),
                ]
            }
            _ => vec![(self.r, 1.0 / p[self.r]), (self.cap, 1.0 / p[self.cap])],
        }
    }
}

/// All simple arcs of the circuit, in order of appearance, with a label
/// such as `p(R1,CPE1)`.
pub(crate) fn simple_arcs(circuit: &Circuit) -> Vec<(String, SimpleArc)> {
    let mut out = Vec::new();
    walk(circuit.root(), &mut |n| {
        if let Some(a) = simple_arc(n) {
            let name = |k: usize| {
                circuit
                    .elements()
                    .iter()
                    .find(|e| e.first_param == k)
                    .map(|e| e.name.clone())
                    .unwrap_or_default()
            };
            out.push((format!("p({},{})", name(a.r), name(a.cap)), a));
        }
    });
    out
}

fn walk<'a>(node: &'a Node, f: &mut impl FnMut(&'a Node)) {
    f(node);
    if let Node::Series(c) | Node::Parallel(c) = node {
        for x in c {
            walk(x, f);
        }
    }
}

/// Characteristic angular frequency (rad/s) of a parallel block; see the
/// module documentation.
fn char_omega(node: &Node, p: &[f64], w_lo: f64, w_hi: f64) -> f64 {
    if let Some(a) = simple_arc(node) {
        return 1.0 / a.tau_s(p);
    }
    // 20 points per decade across the window.
    let (lo, hi) = (w_lo.ln(), w_hi.ln());
    let n = (((hi - lo) / std::f64::consts::LN_10) * 20.0)
        .ceil()
        .max(1.0) as usize;
    let mut best = (f64::NEG_INFINITY, w_lo);
    for k in 0..=n {
        let w = (lo + (hi - lo) * k as f64 / n as f64).exp();
        let m = -node_z(node, p, w).im;
        if m > best.0 {
            best = (m, w);
        }
    }
    best.1
}

/// A block: its first parameter, number of parameters, and node.
type Member<'a> = (usize, usize, &'a Node);

/// Groups of interchangeable blocks: parallel blocks that are siblings in
/// one series chain and have the same shape. Each member is its parameter
/// range and node, in order of appearance.
fn symmetric_groups(circuit: &Circuit) -> Vec<Vec<Member<'_>>> {
    let mut groups = Vec::new();
    walk(circuit.root(), &mut |n| {
        let Node::Series(c) = n else { return };
        let mut by_shape: Vec<(String, Vec<Member<'_>>)> = Vec::new();
        for x in c.iter().filter(|x| matches!(x, Node::Parallel(_))) {
            let s = shape(x);
            let (first, len) = param_range(x);
            match by_shape.iter_mut().find(|(k, _)| *k == s) {
                Some((_, v)) => v.push((first, len, x)),
                None => by_shape.push((s, vec![(first, len, x)])),
            }
        }
        groups.extend(by_shape.into_iter().map(|(_, v)| v).filter(|v| v.len() > 1));
    });
    groups
}

/// The canonical permutation for parameters `p`: `perm[k]` is the index
/// in `p` whose value goes to slot `k`. `None` when `p` is already in
/// canonical order (or the circuit has no interchangeable blocks).
pub(crate) fn canonical_permutation(
    circuit: &Circuit,
    p: &[f64],
    w_lo: f64,
    w_hi: f64,
) -> Option<Vec<usize>> {
    let mut perm: Vec<usize> = (0..p.len()).collect();
    let mut changed = false;
    for g in symmetric_groups(circuit) {
        let omegas: Vec<f64> = g.iter().map(|m| char_omega(m.2, p, w_lo, w_hi)).collect();
        let mut order: Vec<usize> = (0..g.len()).collect();
        // Highest frequency first; NaN last; stable for ties.
        order.sort_by(|&a, &b| {
            let (x, y) = (omegas[a], omegas[b]);
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => y.total_cmp(&x),
            }
        });
        for (slot, &src) in order.iter().enumerate() {
            if slot != src {
                changed = true;
            }
            let (dst_first, len, _) = g[slot];
            let (src_first, _, _) = g[src];
            for k in 0..len {
                perm[dst_first + k] = src_first + k;
            }
        }
    }
    changed.then_some(perm)
}

/// Apply a permutation from [`canonical_permutation`].
pub(crate) fn permute(p: &[f64], perm: &[usize]) -> Vec<f64> {
    perm.iter().map(|&k| p[k]).collect()
}

/// Time constant, characteristic frequency and effective capacitance of
/// one R||C or R||CPE block of a fit, each with its standard error
/// (propagated through the covariance of the fit, first order in the
/// logarithms; NaN when the covariance is not available).
///
/// `C_eff_F` for R||CPE is Brug's formula for a CPE in parallel with a
/// resistance, `C_eff = (Q R^(1-alpha))^(1/alpha)` (Brug et al., J.
/// Electroanal. Chem. 176 (1984) 275; the same as `tau / R`), which is the
/// capacitance of an ideal R||C with the same time constant. It ignores
/// any series resistance: for a bulk or grain-boundary arc of a solid
/// electrolyte the arc is its own R||CPE; the variant with a series
/// resistance (a CPE double layer behind R_s) is not what these blocks
/// describe. For R||C it is C itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArcSummary {
    /// The block as written, e.g. `p(R1,CPE1)`.
    pub label: String,
    /// Name of the block's resistance parameter (`R1`).
    pub R_name: String,
    pub R_ohm: f64,
    pub R_se_ohm: f64,
    pub tau_s: f64,
    pub tau_se_s: f64,
    /// `1 / (2 pi tau)`.
    pub f_char_Hz: f64,
    pub C_eff_F: f64,
    pub C_eff_se_F: f64,
}

/// [`ArcSummary`] of every simple arc, from the fitted values and their
/// covariance (`cov[i][j]`, empty or NaN when unknown).
pub(crate) fn arc_summaries(circuit: &Circuit, p: &[f64], cov: &[Vec<f64>]) -> Vec<ArcSummary> {
    let var = |g: &[(usize, f64)]| -> f64 {
        if cov.len() != p.len() {
            return f64::NAN;
        }
        let mut v = 0.0;
        for &(i, gi) in g {
            for &(j, gj) in g {
                v += gi * gj * cov[i][j];
            }
        }
        v
    };
    simple_arcs(circuit)
        .into_iter()
        .map(|(label, a)| {
            let tau_s = a.tau_s(p);
            let g_tau = a.grad_ln_tau(p);
            // ln C_eff = ln tau - ln R.
            let mut g_c = g_tau.clone();
            g_c.push((a.r, -1.0 / p[a.r]));
            let R_name = circuit.param_names()[a.r].clone();
            let C_eff_F = tau_s / p[a.r];
            ArcSummary {
                label,
                R_name,
                R_ohm: p[a.r],
                R_se_ohm: var(&[(a.r, 1.0)]).sqrt(),
                tau_s,
                tau_se_s: tau_s * var(&g_tau).sqrt(),
                f_char_Hz: 1.0 / (std::f64::consts::TAU * tau_s),
                C_eff_F,
                C_eff_se_F: C_eff_F * var(&g_c).sqrt(),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn swapped_blocks_are_put_in_canonical_order() {
        let c = Circuit::parse("R0-p(R1,CPE1)-p(R2,CPE2)-CPE3").unwrap();
        // Block 1 slow (tau = (1000 * 1e-6)^(1/0.9) = 4.6e-4 s), block 2
        // fast (tau = (100 * 1e-8)^(1/0.95) = 4.9e-7 s).
        let p = [10.0, 1000.0, 1e-6, 0.9, 100.0, 1e-8, 0.95, 1e-4, 0.8];
        let perm = canonical_permutation(&c, &p, 1.0, 1e7).unwrap();
        let q = permute(&p, &perm);
        assert_eq!(q, [10.0, 100.0, 1e-8, 0.95, 1000.0, 1e-6, 0.9, 1e-4, 0.8]);
        // Same impedance, and already canonical afterwards.
        for f in [1.0, 1e3, 1e6] {
            let (a, b) = (c.impedance(&p, f).unwrap(), c.impedance(&q, f).unwrap());
            assert!((a - b).norm() < 1e-12 * a.norm());
        }
        assert!(canonical_permutation(&c, &q, 1.0, 1e7).is_none());
    }

    #[test]
    fn only_identical_structures_are_permuted() {
        // p(R1,C1) and p(R2,CPE2) differ: never swapped, whatever the order.
        let c = Circuit::parse("R0-p(R1,C1)-p(R2,CPE2)").unwrap();
        let p = [1.0, 1000.0, 1e-3, 10.0, 1e-9, 0.9];
        assert!(canonical_permutation(&c, &p, 1.0, 1e7).is_none());
        assert_eq!(simple_arcs(&c).len(), 2);
        // Nested blocks are siblings of their own chain only.
        let c = Circuit::parse("p(R1,C1)-p(R2-p(R3,C3),C2)-p(R4,C4)").unwrap();
        let p = [1.0, 1e-3, 1.0, 1.0, 1e-6, 1e-6, 1.0, 1e-9];
        let perm = canonical_permutation(&c, &p, 1.0, 1e9).unwrap();
        assert_eq!(
            permute(&p, &perm),
            [1.0, 1e-9, 1.0, 1.0, 1e-6, 1e-6, 1.0, 1e-3]
        );
    }

    #[test]
    fn arc_time_constant_and_brug_capacitance() {
        let c = Circuit::parse("p(R1,CPE1)").unwrap();
        let (r, q, a) = (1e4, 2e-9, 0.85);
        let arcs = arc_summaries(&c, &[r, q, a], &[]);
        let tau = (r * q).powf(1.0 / a);
        assert!((arcs[0].tau_s / tau - 1.0).abs() < 1e-14);
        // Brug: (Q R^(1-a))^(1/a).
        let brug = (q * r.powf(1.0 - a)).powf(1.0 / a);
        assert!((arcs[0].C_eff_F / brug - 1.0).abs() < 1e-12);
        assert!(arcs[0].tau_se_s.is_nan());
        // -Im Z of the block peaks at f_char.
        let peak = |f: f64| -c.impedance(&[r, q, a], f).unwrap().im;
        let fc = arcs[0].f_char_Hz;
        assert!(peak(fc) > peak(fc * 1.01) && peak(fc) > peak(fc / 1.01));
        // Standard errors from a covariance: only R uncertain by 1 %.
        let mut cov = vec![vec![0.0; 3]; 3];
        cov[0][0] = (0.01 * r).powi(2);
        let arcs = arc_summaries(&c, &[r, q, a], &cov);
        assert!((arcs[0].tau_se_s / tau - 0.01 / a).abs() < 1e-12);
        assert!((arcs[0].C_eff_se_F / brug - 0.01 * (1.0 / a - 1.0)).abs() < 1e-12);
    }
}
