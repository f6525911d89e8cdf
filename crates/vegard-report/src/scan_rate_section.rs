//! The report's "Scan rate" section: a run's CV series (`vegard analyze`'s
//! `scan_rate`). A child module of `build` (declared there with `#[path]`)
//! so it lays out tables and figures with the same helpers as every other
//! section.

use vegard_pipeline::{Branch, PowerLawFit, ScanRateAnalysis};

use super::{
    BLACK, ESM_COLOR, RunData, axis, figure, id_prefix, panel, section, table, title_prefix,
};
use crate::model::{Cell, Legend, Scale, Section, Series, SeriesKind};

/// Palette slots of the anodic and cathodic series and of the CVs' kappa.
const ANODIC_COLOR: u8 = 2;
const CATHODIC_COLOR: u8 = 3;
const CV_COLOR: u8 = 0;

/// The section, when any run has a scan-rate series.
pub(super) fn scan_rate_section(runs: &[RunData]) -> Option<Section> {
    let with: Vec<(&RunData, &ScanRateAnalysis)> = runs
        .iter()
        .filter_map(|r| r.analysis.scan_rate.as_ref().map(|s| (r, s)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let mut s = section("scan_rate", "Scan rate");
    s.text.push(
        "Per CV step: the peaks of the last complete anodic and cathodic sweeps (vertex to \
         vertex; a CV starting between its vertices has a complete anodic sweep only from its \
         second cycle), the deformation's peak-to-peak swing over the last cycle reaching both \
         vertices (drift removed), the step's κ and its equivalent frequency f_eq = 1/period. \
         b from y = a v^b (log-log least squares): 0.5 diffusion-limited, 1 capacitive or \
         surface-limited. The swing follows the charge per sweep, Q ~ i/v, so its b + 1 is \
         the current's b seen through the deformation."
            .to_owned(),
    );
    let mut steps = table(
        "scan_rate",
        "peaks, swing and κ per scan rate",
        &[
            ("run", ""),
            ("step", ""),
            ("v", "mV/s"),
            ("I_pa", "mA"),
            ("E_pa", "V"),
            ("I_pc", "mA"),
            ("E_pc", "V"),
            ("swing", "nm"),
            ("κ", "nm/mC"),
            ("f_eq", "Hz"),
        ],
    );
    let mut bs = table(
        "scan_rate_b",
        "b-values, y = a v^b",
        &[
            ("run", ""),
            ("quantity", ""),
            ("b", ""),
            ("b 95 % CI low", ""),
            ("b 95 % CI high", ""),
            ("points", ""),
            ("verdict", ""),
        ],
    );
    let mut dunn = table(
        "scan_rate_dunn",
        "Dunn split i = k1 v + k2 v^½ at fixed potentials",
        &[
            ("run", ""),
            ("sweep", ""),
            ("E", "V"),
            ("k1", "mA s/V"),
            ("k2", "mA (s/V)^½"),
            ("capacitive, slowest", "%"),
            ("capacitive, fastest", "%"),
            ("model", ""),
        ],
    );
    let mm = |x: Option<f64>| Cell::opt(x.map(|x| 1e3 * x));
    for (r, sr) in &with {
        let run = Cell::text(r.name.clone());
        for st in &sr.steps {
            steps.rows.push(vec![
                run.clone(),
                Cell::num(st.step as f64),
                Cell::num(1e3 * st.scan_rate_V_per_s),
                mm(st.I_peak_anodic_A),
                Cell::opt(st.E_peak_anodic_V),
                mm(st.I_peak_cathodic_A),
                Cell::opt(st.E_peak_cathodic_V),
                Cell::opt(st.deflection_swing_nm),
                Cell::num_se(st.kappa_nm_per_mC, st.kappa_se_nm_per_mC),
                Cell::num(st.f_eq_Hz),
            ]);
        }
        for (name, fit) in fits(sr) {
            let Some(f) = fit else { continue };
            bs.rows.push(vec![
                run.clone(),
                Cell::text(name),
                Cell::num_se(f.b, f.b_se),
                Cell::num(f.b_ci95[0]),
                Cell::num(f.b_ci95[1]),
                Cell::num(f.steps.len() as f64),
                Cell::text(f.interpretation.clone()),
            ]);
        }
        for d in &sr.dunn {
            let frac = |x: Option<&f64>| Cell::opt(x.filter(|_| d.model_holds).map(|x| 100.0 * x));
            dunn.rows.push(vec![
                run.clone(),
                Cell::text(match d.branch {
                    Branch::Anodic => "anodic",
                    Branch::Cathodic => "cathodic",
                }),
                Cell::num(d.E_V),
                Cell::num_se(1e3 * d.k1_A_s_per_V, 1e3 * d.k1_se_A_s_per_V),
                Cell::num_se(1e3 * d.k2_A_sqrt_s_per_V, 1e3 * d.k2_se_A_sqrt_s_per_V),
                frac(d.capacitive_fraction.first()),
                frac(d.capacitive_fraction.last()),
                Cell::text(if d.model_holds {
                    "holds"
                } else {
                    "does not hold"
                }),
            ]);
        }
        if sr.dunn.iter().any(|d| !d.model_holds) {
            s.text.push(format!(
                "{}Dunn split: where the model does not hold (k1 or k2 of the wrong sign, or \
                 the two terms missing the currents by more than 5 % rms) no capacitive \
                 fraction is given; e.g. {}",
                title_prefix(runs, r),
                sr.dunn
                    .iter()
                    .find_map(|d| d.note.clone())
                    .unwrap_or_default()
            ));
        }
        s.text.extend(sr.esm_note.iter().cloned());
        s.text.extend(sr.notes.iter().cloned());
        s.figures.push(power_law_figure(runs, r, sr));
        s.figures.push(per_charge_figure(runs, r, sr));
    }
    s.tables.push(steps);
    s.tables.push(bs);
    if !dunn.rows.is_empty() {
        s.tables.push(dunn);
    }
    Some(s)
}

fn fits(sr: &ScanRateAnalysis) -> [(&'static str, Option<&PowerLawFit>); 3] {
    [
        ("anodic peak current", sr.b_anodic_peak.as_ref()),
        ("cathodic peak current", sr.b_cathodic_peak.as_ref()),
        ("deformation swing", sr.b_deflection_swing.as_ref()),
    ]
}

/// The fitted power law over the series' scan-rate range, in `scale` units
/// of the quantity (mA for currents).
fn power_law_line(name: &str, f: &PowerLawFit, v: &[f64], scale: f64, color: u8) -> Series {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let x: Vec<f64> = (0..=20)
        .map(|k| lo * (hi / lo).powf(k as f64 / 20.0))
        .collect();
    let y = x
        .iter()
        .map(|v| scale * 10f64.powf(f.log10_a) * v.powf(f.b))
        .collect();
    Series::new(
        format!("{name}: b = {:.3}", f.b),
        SeriesKind::Dashed,
        color,
        x.iter().map(|v| 1e3 * v).collect(),
        y,
    )
}

/// Log-log: both peak currents (magnitudes) and the swing against scan
/// rate, with their fitted power laws.
fn power_law_figure(runs: &[RunData], r: &RunData, sr: &ScanRateAnalysis) -> crate::model::Figure {
    let pts =
        |get: &dyn Fn(&vegard_pipeline::ScanRateStep) -> Option<f64>| -> (Vec<f64>, Vec<f64>) {
            sr.steps
                .iter()
                .filter_map(|s| get(s).map(|y| (1e3 * s.scan_rate_V_per_s, y)))
                .unzip()
        };
    let v: Vec<f64> = sr.steps.iter().map(|s| s.scan_rate_V_per_s).collect();
    let mut cur = Vec::new();
    for (name, color, get, fit) in [
        (
            "anodic peak",
            ANODIC_COLOR,
            &(|s: &vegard_pipeline::ScanRateStep| s.I_peak_anodic_A.map(|i| 1e3 * i))
                as &dyn Fn(&vegard_pipeline::ScanRateStep) -> Option<f64>,
            &sr.b_anodic_peak,
        ),
        (
            "|cathodic peak|",
            CATHODIC_COLOR,
            &|s: &vegard_pipeline::ScanRateStep| s.I_peak_cathodic_A.map(|i| 1e3 * i.abs()),
            &sr.b_cathodic_peak,
        ),
    ] {
        let (x, y) = pts(get);
        cur.push(Series::new(name, SeriesKind::Points, color, x, y));
        if let Some(f) = fit {
            cur.push(power_law_line(name, f, &v, 1e3, color));
        }
    }
    let (x, y) = pts(&|s| s.deflection_swing_nm);
    let mut swing = vec![Series::new("swing", SeriesKind::Points, ESM_COLOR, x, y)];
    if let Some(f) = &sr.b_deflection_swing {
        swing.push(power_law_line("swing", f, &v, 1.0, BLACK));
    }
    let mut p1 = panel(
        axis("v", "mV/s", Scale::Log),
        axis("|I_peak|", "mA", Scale::Log),
        cur,
    );
    p1.legend = Legend::LowerRight;
    let p2 = panel(
        axis("v", "mV/s", Scale::Log),
        axis("u swing", "nm", Scale::Log),
        swing,
    );
    figure(
        format!("{}scan-rate-power-laws", id_prefix(runs, r)),
        format!(
            "{}Peak currents and deformation swing vs scan rate",
            title_prefix(runs, r)
        ),
        Some(
            "Log-log; dashed: the fitted y = a v^b. b = 0.5 is diffusion-limited, 1 \
             capacitive or surface-limited; the swing's b is the current's minus 1."
                .to_owned(),
        ),
        vec![p1, p2],
    )
}

/// Deformation per faradaic charge against frequency: the CVs' κ at
/// f_eq = 1/period (± SE) and the ESM sweeps' |u1/Q_F1| (signed) at their
/// frequencies, on one log-frequency axis. Pure Vegard strain is flat at κ.
fn per_charge_figure(runs: &[RunData], r: &RunData, sr: &ScanRateAnalysis) -> crate::model::Figure {
    let mut cv = Series::new(
        "CV κ at f_eq",
        SeriesKind::Points,
        CV_COLOR,
        sr.steps.iter().map(|s| s.f_eq_Hz).collect(),
        sr.steps.iter().map(|s| s.kappa_nm_per_mC).collect(),
    );
    cv.y_err = Some(sr.steps.iter().map(|s| s.kappa_se_nm_per_mC).collect());
    let mut series = vec![cv];
    if !sr.esm_per_faradaic_charge.is_empty() {
        series.push(Series::new(
            "ESM u/Q_F",
            SeriesKind::Points,
            ESM_COLOR,
            sr.esm_per_faradaic_charge.iter().map(|p| p.f_Hz).collect(),
            sr.esm_per_faradaic_charge
                .iter()
                .map(|p| p.u_per_Q_F_nm_per_mC)
                .collect(),
        ));
    }
    let caption = if sr.esm_per_faradaic_charge.is_empty() {
        "The CVs' κ (± SE) at f_eq = 1/period; the run has no ESM sweep to place beside them. \
         Pure Vegard strain is flat in frequency."
    } else {
        "The CVs' κ (± SE) at f_eq = 1/period and the ESM sweeps' |u1/Q_F1| (signed like κ; \
         Q_F1 = I_F1/(j2πf), I_F1 = I1 − j2πf C_dl (E1 − I1 R_s)) at their frequencies. Pure \
         Vegard strain is flat in frequency at κ."
    };
    figure(
        format!("{}scan-rate-per-charge", id_prefix(runs, r)),
        format!(
            "{}Deformation per charge vs frequency",
            title_prefix(runs, r)
        ),
        Some(caption.to_owned()),
        vec![panel(
            axis("f", "Hz", Scale::Log),
            axis("u/Q_F", "nm/mC", Scale::Linear),
            series,
        )],
    )
}
