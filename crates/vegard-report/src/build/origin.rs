//! The "origin" section: what the deflection is made of (issue 19), from
//! each run's [`vegard_analysis::SignalOrigin`]: the verdict in words, the
//! coefficients with their 95 % intervals, the test of each mechanism, and
//! the share of the first harmonic each mechanism explains vs frequency.

use vegard_analysis::{Estimate, Mechanism, OriginStepKind, SignalOrigin};

use super::{RunData, axis, figure, id_prefix, panel, section, table, title_prefix};
use crate::model::{Cell, Scale, Section, Series, SeriesKind};

/// Colours of the four mechanisms (palette indices), fixed across figures.
fn color(m: Mechanism) -> u8 {
    match m {
        Mechanism::Vegard => 1,
        Mechanism::Electrostatic => 0,
        Mechanism::Electrostriction => 2,
        Mechanism::JouleHeating => 3,
    }
}

fn row(mechanism: &str, quantity: &str, unit: &str, e: Option<&Estimate>, why: &str) -> Vec<Cell> {
    match e {
        Some(e) => vec![
            Cell::text(mechanism),
            Cell::text(quantity),
            Cell::num_se(e.value, e.se),
            Cell::num(e.ci95[0]),
            Cell::num(e.ci95[1]),
            Cell::text(unit),
        ],
        None => vec![
            Cell::text(mechanism),
            Cell::text(quantity),
            Cell::text(why),
            Cell::text(""),
            Cell::text(""),
            Cell::text(unit),
        ],
    }
}

/// The section, or `None` when no run has a separation.
pub(super) fn origin_section(runs: &[RunData]) -> Option<Section> {
    let with: Vec<(&RunData, &SignalOrigin)> = runs
        .iter()
        .filter_map(|r| r.analysis.signal_origin.as_ref().map(|o| (r, o)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let mut s = section(
        "origin",
        "Signal origin: Vegard strain, electrostatics, electrostriction, Joule heating",
    );
    s.text.push(
        "One weighted least-squares fit of the deflection's harmonics over every ESM frequency \
         and CV cycle: u = κ Q_F + γ (E − V_cpd)² + c (E_int − E_zero)² + J · lag_τ(I² R_s), \
         with E_int = E − I R_s and R_s, C_dl from the EIS fit. A mechanism is resolved when \
         the joint test of its coefficients rejects zero at 5 %."
            .to_owned(),
    );
    for (r, o) in with {
        let id = id_prefix(runs, r);
        let tp = title_prefix(runs, r);
        let mut verdict = o.verdict_text.clone();
        if let Some(first) = verdict.get(..1) {
            verdict = format!("{}{}", first.to_uppercase(), &verdict[1..]);
        }
        s.text.push(format!("{tp}{verdict}."));
        for n in &o.notes {
            s.text.push(format!("{tp}note: {n}"));
        }
        let mut t = table(
            format!("{id}origin-coefficients"),
            format!(
                "{tp}fitted coefficients (R_s = {:.3} Ω, C_dl = {:.1} µF)",
                o.R_s_ohm,
                o.C_dl_F * 1e6
            ),
            &[
                ("mechanism", ""),
                ("quantity", ""),
                ("value", ""),
                ("95 % CI low", ""),
                ("95 % CI high", ""),
                ("unit", ""),
            ],
        );
        let c = &o.coefficients;
        let nid = "not identifiable (mechanism not resolved)";
        t.rows.push(row(
            "Vegard strain",
            "κ",
            "nm/mC",
            Some(&c.kappa_nm_per_mC),
            "",
        ));
        t.rows.push(row(
            "electrostatics",
            "γ",
            "nm/V²",
            Some(&c.electrostatic_nm_per_V2),
            "",
        ));
        t.rows
            .push(row("electrostatics", "V_cpd", "V", c.V_cpd_V.as_ref(), nid));
        t.rows.push(row(
            "electrostriction",
            "c",
            "nm/V²",
            Some(&c.electrostriction_nm_per_V2),
            "",
        ));
        t.rows.push(row(
            "electrostriction",
            "E_zero",
            "V",
            c.E_zero_V.as_ref(),
            nid,
        ));
        t.rows.push(row(
            "Joule heating",
            "J",
            "nm/W",
            Some(&c.joule_nm_per_W),
            "",
        ));
        t.rows.push(row(
            "Joule heating",
            "τ_th",
            "s",
            c.joule_tau_s.as_ref(),
            nid,
        ));
        t.note = Some(format!(
            "{} harmonic equations, {} degrees of freedom, reduced χ² {:.2}; holder random walk \
             {:.3} nm/√min",
            o.n_equations, o.dof, o.reduced_chi2, o.drift_walk_nm_per_sqrt_min
        ));
        s.tables.push(t);
        let mut m = table(
            format!("{id}origin-tests"),
            format!("{tp}is each mechanism there? (joint F test against zero)"),
            &[
                ("mechanism", ""),
                ("F", ""),
                ("dof", ""),
                ("p", ""),
                ("verdict", ""),
            ],
        );
        for test in &o.mechanisms {
            m.rows.push(vec![
                Cell::text(test.mechanism.words()),
                Cell::num(test.F),
                Cell::num(f64::from(test.dof)),
                Cell::num(test.p_value),
                Cell::text(if test.significant {
                    "resolved"
                } else {
                    "consistent with zero"
                }),
            ]);
        }
        s.tables.push(m);
        // Shares vs frequency, one panel per ESM setting, at most four:
        // the reference (largest signal) first.
        let mut steps: Vec<(i64, OriginStepKind, f64)> = Vec::new();
        for w in &o.windows {
            if !matches!(w.kind, OriginStepKind::EsmSweep { .. }) {
                continue;
            }
            match steps.iter_mut().find(|(st, _, _)| *st == w.step) {
                Some((_, _, a)) => *a += w.measured_amp_nm,
                None => steps.push((w.step, w.kind, w.measured_amp_nm)),
            }
        }
        steps.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut panels = Vec::new();
        for (step, kind, _) in steps.iter().take(4) {
            let mut ws: Vec<_> = o.windows.iter().filter(|w| w.step == *step).collect();
            ws.sort_by(|a, b| a.f_Hz.total_cmp(&b.f_Hz));
            let f: Vec<f64> = ws.iter().map(|w| w.f_Hz).collect();
            // The legend once, on the first panel; room above 100 % for it.
            let first = panels.is_empty();
            let series = Mechanism::ALL
                .iter()
                .map(|m| {
                    let mut p = Series::new(
                        if first { m.words() } else { "" },
                        SeriesKind::Points,
                        color(*m),
                        f.clone(),
                        ws.iter().map(|w| 100.0 * w.share(*m).value).collect(),
                    );
                    p.y_err = Some(ws.iter().map(|w| 196.0 * w.share(*m).se).collect());
                    p
                })
                .collect();
            let mut y = axis("share of 1st harmonic", "%", Scale::Linear);
            let inside = ws.iter().all(|w| {
                Mechanism::ALL
                    .iter()
                    .all(|m| (-15.0..=105.0).contains(&(100.0 * w.share(*m).value)))
            });
            if inside {
                y.range = Some([-20.0, 150.0]);
            }
            let mut p = panel(axis("f", "Hz", Scale::Log), y, series);
            if let OriginStepKind::EsmSweep { dc_V, amplitude_V } = kind {
                p.title = Some(format!(
                    "step {step}: ESM at {} V dc, {} mV",
                    vegard_core::format::sig(*dc_V, 3),
                    vegard_core::format::sig(amplitude_V * 1e3, 3)
                ));
            }
            panels.push(p);
        }
        if !panels.is_empty() {
            s.figures.push(figure(
                format!("{id}origin-shares"),
                format!("{tp}share of the first-harmonic deflection by mechanism"),
                Some(
                    "Projection of each mechanism's fitted phasor on the fitted total, with 95 % \
                     bars; the ESM settings with the largest deflection."
                        .to_owned(),
                ),
                panels,
            ));
        }
    }
    Some(s)
}
