//! The report of an EIS temperature series (`vegard fit-eis FILE...
//! --temperature-C ... --report OUT`): the spectra overlaid in one Nyquist
//! plot with their fits, the fitted parameters per temperature, each arc's
//! R and tau against T, and the Arrhenius lines of
//! [`vegard_analysis::series_arrhenius`] with their 95 % bands.
//!
//! It is built as the same [`Report`] as a run's report, so HTML, Markdown
//! and JSON print one structure. A series comes from spectrum files, not
//! run folders: `kind` is `campaign` (several measurements pooled),
//! `sources` are the spectrum files, and `analysis` holds the fitted series
//! and its Arrhenius analysis in the layout of `fit-eis --json`.

use vegard_analysis::{ArrheniusLine, Circuit, EisFit, EisSeries, SeriesArrhenius, SeriesSpectrum};
use vegard_core::constants::BOLTZMANN_EV_PER_K;

use crate::model::{
    Axis, Cell, ColumnHead, DataTable, Figure, Generator, Legend, Panel, Report, ReportKind,
    ReportStatus, SCHEMA, Scale, Section, Series, SeriesKind,
};

/// Kelvin at 0 °C: temperatures are given and shown in °C, fitted in K.
const ZERO_C_IN_K: f64 = 273.15;
/// Points per decade of the fitted model curves: smooth at report size.
const MODEL_POINTS_PER_DECADE: f64 = 20.0;
/// Points along an Arrhenius line and its band.
const LINE_POINTS: usize = 40;
/// Figure width, px, as the run report's figures.
const FIGURE_WIDTH_PX: u32 = 760;

/// The report of a fitted temperature series. `spectra` are the measured
/// spectra (matched to the fitted points by label and temperature; a point
/// without its spectrum shows only its fit), `arrhenius` the analysis of
/// `--arrhenius` (no Arrhenius section without it), `now_utc` the RFC 3339
/// time stamp of the report.
///
/// A fit that is not Ok, or an Arrhenius line that could not be fitted,
/// makes the report's status `analysis_failed` with the reason in
/// `failures`, and is listed in the warnings section: the numbers are
/// still shown, but must not be used as a result.
pub fn series_report(
    series: &EisSeries,
    spectra: &[SeriesSpectrum],
    arrhenius: Option<&SeriesArrhenius>,
    now_utc: &str,
) -> Report {
    let span = t_span_text(series);
    let mut sections = vec![fits_section(series, spectra, &span)];
    if let Some(a) = arrhenius {
        sections.push(arrhenius_section(a, &span));
    }
    let mut warnings: Vec<(String, String)> = series
        .points
        .iter()
        .filter(|p| !p.fit.status.is_ok())
        .map(|p| {
            (
                format!("{} ({})", p.label, t_text(p.T_K)),
                format!(
                    "{} fit, left out of the Arrhenius lines: {}",
                    p.fit.status.name(),
                    p.fit.status.reasons_text()
                ),
            )
        })
        .collect();
    if let Some(a) = arrhenius {
        warnings.extend(
            a.failed_lines
                .iter()
                .map(|l| ("Arrhenius".to_owned(), format!("line not fitted: {l}"))),
        );
    }
    let failures: Vec<String> = warnings.iter().map(|(w, m)| format!("{w}: {m}")).collect();
    sections.push(warnings_section(&warnings));
    let points: Vec<serde_json::Value> = series
        .points
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": p.label,
                "T_K": p.T_K,
                "T_C": p.T_K - ZERO_C_IN_K,
                "fit": p.fit,
            })
        })
        .collect();
    Report {
        schema: SCHEMA.to_owned(),
        generator: Generator {
            name: "vegard".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        title: format!("EIS temperature series: {}, {span}", series.circuit),
        kind: ReportKind::Campaign,
        created_utc: now_utc.to_owned(),
        sources: series.points.iter().map(|p| p.label.clone()).collect(),
        spec_file: None,
        status: if failures.is_empty() {
            ReportStatus::Ok
        } else {
            ReportStatus::AnalysisFailed
        },
        failures,
        sections,
        analysis: serde_json::json!({
            "technique": "EIS",
            "circuit": series.circuit,
            "weighting": series.points.first().map(|p| p.fit.weighting),
            "points": points,
            "arrhenius": arrhenius,
        }),
    }
}

/// `25.0 °C`: the label of a temperature in titles and legends.
fn t_text(T_K: f64) -> String {
    format!("{:.1} °C", T_K - ZERO_C_IN_K)
}

/// `25.0–150.0 °C (3 temperatures)`.
fn t_span_text(series: &EisSeries) -> String {
    let n = series.points.len();
    match (series.points.first(), series.points.last()) {
        (Some(a), Some(b)) if n > 1 => format!(
            "{:.1}–{:.1} °C ({n} temperatures)",
            a.T_K - ZERO_C_IN_K,
            b.T_K - ZERO_C_IN_K
        ),
        (Some(a), _) => t_text(a.T_K),
        _ => "no spectra".to_owned(),
    }
}

fn section(id: &str, title: &str) -> Section {
    Section {
        id: id.to_owned(),
        title: title.to_owned(),
        text: Vec::new(),
        tables: Vec::new(),
        figures: Vec::new(),
    }
}

fn table(id: &str, title: &str, columns: Vec<(String, String)>) -> DataTable {
    DataTable {
        id: id.to_owned(),
        title: title.to_owned(),
        columns: columns
            .into_iter()
            .map(|(name, unit)| ColumnHead { name, unit })
            .collect(),
        rows: Vec::new(),
        note: None,
    }
}

fn axis(label: &str, unit: &str, scale: Scale) -> Axis {
    Axis {
        label: label.to_owned(),
        unit: unit.to_owned(),
        scale,
        reversed: false,
        range: None,
        ticks: None,
    }
}

fn panel(x: Axis, y: Axis, legend: Legend, series: Vec<Series>) -> Panel {
    Panel {
        title: None,
        x,
        y,
        equal_aspect: false,
        legend,
        series,
        top_axis: None,
    }
}

fn figure(id: &str, title: String, caption: &str, panels: Vec<Panel>, height_px: u32) -> Figure {
    Figure {
        id: id.to_owned(),
        title,
        caption: Some(caption.to_owned()),
        panels,
        width_px: FIGURE_WIDTH_PX,
        height_px,
    }
}

/// Log-spaced frequencies spanning `f`, for model curves.
fn f_grid(f: &[f64]) -> Vec<f64> {
    let lo = f
        .iter()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let hi = f.iter().copied().fold(0.0, f64::max);
    if !(lo.is_finite() && hi > lo) {
        return f.to_vec();
    }
    let n = ((hi / lo).log10() * MODEL_POINTS_PER_DECADE)
        .ceil()
        .max(2.0) as usize;
    (0..=n)
        .map(|k| lo * (hi / lo).powf(k as f64 / n as f64))
        .collect()
}

/// Units of every parameter of `circuit`, by name.
fn param_units(circuit: &str) -> Vec<(String, &'static str)> {
    let Ok(c) = Circuit::parse(circuit) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for el in c.elements() {
        for (k, u) in el.kind.param_units().iter().enumerate() {
            if let Some(name) = c.param_names().get(el.first_param + k) {
                out.push((name.clone(), *u));
            }
        }
    }
    out
}

fn status_text(fit: &EisFit) -> String {
    if fit.status.is_ok() {
        "ok".to_owned()
    } else {
        format!("{}: {}", fit.status.name(), fit.status.reasons_text())
    }
}

/// Parameter table, Nyquist overlay and R, tau vs T.
fn fits_section(series: &EisSeries, spectra: &[SeriesSpectrum], span: &str) -> Section {
    let mut s = section("eis-series", &format!("EIS fits, {span}"));
    let weighting = series.points.first().map_or_else(String::new, |p| {
        format!("{:?}", p.fit.weighting).to_lowercase()
    });
    s.text.push(format!(
        "{} fitted to {} spectra ({weighting} weighting), coldest first, each fit also \
         started from the previous temperature's result. Arc 1 is the highest-frequency arc \
         at every temperature (canonical labels).",
        series.circuit,
        series.points.len()
    ));

    // (2) The parameters, one row per temperature.
    let units = param_units(&series.circuit);
    let names: Vec<String> = series
        .points
        .first()
        .map(|p| p.fit.parameters.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let mut cols: Vec<(String, String)> = vec![
        ("T".into(), "°C".into()),
        ("T".into(), "K".into()),
        ("file".into(), String::new()),
    ];
    for n in &names {
        let unit = units.iter().find(|(p, _)| p == n).map_or("", |(_, u)| *u);
        cols.push((n.clone(), unit.to_owned()));
    }
    cols.push(("status".into(), String::new()));
    cols.push(("χ²_red".into(), String::new()));
    let mut t = table(
        "eis-series-fits",
        &format!("fitted {} parameters by temperature", series.circuit),
        cols,
    );
    for p in &series.points {
        let mut row = vec![
            Cell::num(p.T_K - ZERO_C_IN_K),
            Cell::num(p.T_K),
            Cell::text(p.label.clone()),
        ];
        for n in &names {
            row.push(match (p.fit.get(n), p.fit.stderr_of(n)) {
                (Some(v), Some(se)) => Cell::num_se(v, se),
                (Some(v), None) => Cell::num(v),
                _ => Cell::text(""),
            });
        }
        row.push(Cell::text(status_text(&p.fit)));
        row.push(Cell::num(p.fit.quality.chi2_reduced));
        t.rows.push(row);
    }
    t.note = Some(
        "± is one standard error from the Jacobian; χ²_red is the weighted χ² per degree of \
         freedom. Only fits with status ok enter the Arrhenius lines."
            .to_owned(),
    );
    s.tables.push(t);

    // (1) Nyquist overlay: one colour per temperature, data as points and
    // the fit as a line of the same colour (no legend entry of its own).
    let circuit = Circuit::parse(&series.circuit).ok();
    let mut nyq = Vec::new();
    for (k, p) in series.points.iter().enumerate() {
        let color = (k % usize::from(u8::MAX)) as u8;
        let data = spectra
            .iter()
            .find(|sp| sp.label == p.label && sp.T_K == p.T_K);
        if let Some(sp) = data {
            nyq.push(Series::new(
                t_text(p.T_K),
                SeriesKind::Points,
                color,
                sp.Z.iter().map(|z| z.0).collect(),
                sp.Z.iter().map(|z| -z.1).collect(),
            ));
        }
        let values = p.fit.values();
        let model = circuit.as_ref().and_then(|c| {
            let f = data.map_or_else(Vec::new, |sp| f_grid(&sp.f_Hz));
            c.impedance_spectrum(&values, &f).ok()
        });
        if let Some(m) = model.filter(|m| !m.is_empty()) {
            nyq.push(Series::new(
                if data.is_some() {
                    String::new()
                } else {
                    format!("{} (fit)", t_text(p.T_K))
                },
                SeriesKind::Line,
                color,
                m.iter().map(|z| z.re).collect(),
                m.iter().map(|z| -z.im).collect(),
            ));
        }
    }
    s.figures.push(figure(
        "eis-series-nyquist",
        format!("EIS Nyquist overlay, {span}"),
        "Measured spectra (points) and fitted model curves (lines of the same colour), one \
         colour per temperature, equal scaling of both axes: hotter spectra are smaller. The \
         palette repeats after eight temperatures.",
        vec![Panel {
            equal_aspect: true,
            ..panel(
                axis("Z'", "Ω", Scale::Linear),
                axis("−Z''", "Ω", Scale::Linear),
                Legend::UpperLeft,
                nyq,
            )
        }],
        560,
    ));

    // (3) Each arc's R and tau against T (Ok fits only).
    let ok: Vec<_> = series
        .points
        .iter()
        .filter(|p| p.fit.status.is_ok())
        .collect();
    let n_arcs = ok.iter().map(|p| p.fit.arcs.len()).max().unwrap_or(0);
    if n_arcs > 0 {
        let (mut r_series, mut tau_series) = (Vec::new(), Vec::new());
        for k in 0..n_arcs {
            let arcs: Vec<_> = ok
                .iter()
                .filter_map(|p| p.fit.arcs.get(k).map(|a| (p.T_K - ZERO_C_IN_K, a)))
                .collect();
            let Some((_, first)) = arcs.first() else {
                continue;
            };
            let color = (k % usize::from(u8::MAX)) as u8;
            let temps: Vec<f64> = arcs.iter().map(|(t, _)| *t).collect();
            let mut r = Series::new(
                first.R_name.clone(),
                SeriesKind::Points,
                color,
                temps.clone(),
                arcs.iter().map(|(_, a)| a.R_ohm).collect(),
            );
            r.y_err = Some(arcs.iter().map(|(_, a)| a.R_se_ohm).collect());
            r_series.push(r);
            let mut tau = Series::new(
                format!("τ {}", first.label),
                SeriesKind::Points,
                color,
                temps,
                arcs.iter().map(|(_, a)| a.tau_s).collect(),
            );
            tau.y_err = Some(arcs.iter().map(|(_, a)| a.tau_se_s).collect());
            tau_series.push(tau);
        }
        let t_axis = axis("T", "°C", Scale::Linear);
        s.figures.push(figure(
            "eis-series-parameters-vs-t",
            format!("EIS arc resistances and time constants vs temperature, {span}"),
            "Each arc's resistance and time constant τ = (R Q)^(1/α) (log axes) with \
             one-standard-error bars; fits that are not ok are left out.",
            vec![
                panel(
                    t_axis.clone(),
                    axis("R", "Ω", Scale::Log),
                    Legend::UpperRight,
                    r_series,
                ),
                panel(
                    t_axis,
                    axis("τ", "s", Scale::Log),
                    Legend::UpperRight,
                    tau_series,
                ),
            ],
            640,
        ));
    }
    s
}

/// The fitted straight line of `l` and its 95 % band at `inv_T` (1/K):
/// `(y, half-width)`, the half-width `None` without degrees of freedom.
///
/// The line keeps only Ea, the intercept and the points, so the band is
/// rebuilt from them: the weighted fit's `sum w`, mean `1/T` and `Sxx`
/// come from the points' `1/T` and `se(y)`; the scale the analysis applied
/// (Birge ratio, never below 1) is `ea_se / ea_se_propagated`, and the
/// Student t quantile is `(CI high - Ea) / ea_se`. The band is then
/// `t * scale * sqrt(1/sum w + (x - mean)^2 / Sxx)`.
pub fn arrhenius_line_at(l: &ArrheniusLine, inv_T: &[f64]) -> Vec<(f64, Option<f64>)> {
    let slope = -l.ea_eV / BOLTZMANN_EV_PER_K;
    let w: Vec<f64> = l.y_se.iter().map(|s| 1.0 / (s * s)).collect();
    let sw: f64 = w.iter().sum();
    let xm = w
        .iter()
        .zip(&l.inv_T_per_K)
        .map(|(w, x)| w * x)
        .sum::<f64>()
        / sw;
    let sxx: f64 = w
        .iter()
        .zip(&l.inv_T_per_K)
        .map(|(w, x)| w * (x - xm) * (x - xm))
        .sum();
    let scale = if l.ea_se_propagated_eV > 0.0 {
        l.ea_se_eV / l.ea_se_propagated_eV
    } else {
        1.0
    };
    let t975 = l
        .ea_ci95_eV
        .filter(|_| l.ea_se_eV > 0.0)
        .map(|[_, hi]| (hi - l.ea_eV) / l.ea_se_eV);
    inv_T
        .iter()
        .map(|&x| {
            let y = l.intercept + slope * x;
            let half = t975.map(|t| t * scale * (1.0 / sw + (x - xm).powi(2) / sxx).sqrt());
            (y, half.filter(|h| h.is_finite()))
        })
        .collect()
}

/// How the ordinate of a group of lines is named on the axis and in ids.
fn y_axis_of(y: &str) -> (&'static str, &'static str) {
    match y {
        "ln(1/R)" => ("ln(1/R / Ω⁻¹)", "r"),
        "ln(1/tau)" => ("ln(1/τ / s⁻¹)", "tau"),
        "ln(sigma T)" => ("ln(σT / S cm⁻¹ K)", "sigma"),
        _ => ("y", "other"),
    }
}

/// The Ea table and one Arrhenius figure per ordinate (R, tau, sigma T).
fn arrhenius_section(a: &SeriesArrhenius, span: &str) -> Section {
    let mut s = section("eis-series-arrhenius", &format!("EIS Arrhenius, {span}"));
    s.text.push(a.convention.clone());
    let cols: Vec<(String, String)> = [
        ("quantity", ""),
        ("y", ""),
        ("Ea", "eV"),
        ("Ea 95 % CI low", "eV"),
        ("Ea 95 % CI high", "eV"),
        ("Ea", "kJ/mol"),
        ("Birge ratio", ""),
        ("χ²_red", ""),
        ("points", ""),
    ]
    .iter()
    .map(|(n, u)| ((*n).to_owned(), (*u).to_owned()))
    .collect();
    let mut t = table(
        "eis-series-arrhenius",
        "activation energies (Ea = −k_B dy/d(1/T))",
        cols,
    );
    for l in &a.lines {
        let ci = l.ea_ci95_eV;
        t.rows.push(vec![
            Cell::text(l.quantity.clone()),
            Cell::text(l.y),
            Cell::num_se(l.ea_eV, l.ea_se_eV),
            Cell::opt(ci.map(|c| c[0])),
            Cell::opt(ci.map(|c| c[1])),
            Cell::num_se(l.ea_kJ_per_mol, l.ea_se_kJ_per_mol),
            Cell::opt(l.birge_ratio),
            Cell::opt(l.chi2_reduced),
            Cell::num(l.n_points as f64),
        ]);
    }
    t.note = Some(
        "± is the reported standard error (propagated, times the Birge ratio when it \
         exceeds 1); the 95 % interval is Student t with n − 2 degrees of freedom (none for \
         two temperatures)."
            .to_owned(),
    );
    s.tables.push(t);

    let mut kinds: Vec<&str> = Vec::new();
    for l in &a.lines {
        if !kinds.contains(&l.y) {
            kinds.push(l.y);
        }
    }
    for y in kinds {
        let (label, id) = y_axis_of(y);
        let mut series = Vec::new();
        for (k, l) in a.lines.iter().filter(|l| l.y == y).enumerate() {
            let color = (k % usize::from(u8::MAX)) as u8;
            let mut pts = Series::new(
                "",
                SeriesKind::Points,
                color,
                l.inv_T_per_K.iter().map(|x| 1000.0 * x).collect(),
                l.y_values.clone(),
            );
            pts.y_err = Some(l.y_se.clone());
            let lo = l.inv_T_per_K.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = l
                .inv_T_per_K
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() && hi > lo {
                let pad = 0.05 * (hi - lo);
                let xs: Vec<f64> = (0..=LINE_POINTS)
                    .map(|k| lo - pad + (hi - lo + 2.0 * pad) * k as f64 / LINE_POINTS as f64)
                    .collect();
                let at = arrhenius_line_at(l, &xs);
                let x_k: Vec<f64> = xs.iter().map(|x| 1000.0 * x).collect();
                if at.iter().all(|(_, h)| h.is_some()) {
                    let mut band = Series::new(
                        "",
                        SeriesKind::Band,
                        color,
                        x_k.clone(),
                        at.iter().map(|(y, h)| y - h.unwrap_or(0.0)).collect(),
                    );
                    band.y_upper = Some(at.iter().map(|(y, h)| y + h.unwrap_or(0.0)).collect());
                    series.push(band);
                }
                series.push(Series::new(
                    format!(
                        "{}: Ea = {} eV",
                        l.quantity,
                        crate::render::format_number(l.ea_eV, Some(l.ea_se_eV))
                    ),
                    SeriesKind::Line,
                    color,
                    x_k,
                    at.iter().map(|(y, _)| *y).collect(),
                ));
            }
            series.push(pts);
        }
        s.figures.push(figure(
            &format!("eis-series-arrhenius-{id}"),
            format!("EIS Arrhenius plot of {y}, {span}"),
            "y vs 1000/T with one-standard-error bars, the weighted straight-line fits and \
             their 95 % confidence bands (Student t; no band for two temperatures).",
            vec![panel(
                axis("1000 K / T", "", Scale::Linear),
                axis(label, "", Scale::Linear),
                Legend::UpperRight,
                series,
            )],
            440,
        ));
    }
    s
}

fn warnings_section(warnings: &[(String, String)]) -> Section {
    let mut s = section("warnings", "Warnings");
    if warnings.is_empty() {
        s.text
            .push("No warnings: every fit is ok and every Arrhenius line was fitted.".to_owned());
        return s;
    }
    let mut t = table(
        "warnings",
        "fits that are not ok and lines that could not be fitted",
        vec![
            ("where".to_owned(), String::new()),
            ("warning".to_owned(), String::new()),
        ],
    );
    for (a, b) in warnings {
        t.rows
            .push(vec![Cell::text(a.clone()), Cell::text(b.clone())]);
    }
    s.tables.push(t);
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vegard_analysis::{EisFitOptions, fit_series, series_arrhenius};

    /// p(R1,C1)-p(R2,C2) at 4 temperatures, R1 with Ea 0.5 eV and R2 with
    /// 0.7 eV, 0.3 % deterministic pseudo-noise.
    fn fitted() -> (Circuit, EisSeries, Vec<SeriesSpectrum>) {
        let c = Circuit::parse("p(R1,C1)-p(R2,C2)").unwrap();
        let f: Vec<f64> = (0..=40)
            .map(|k| 1e6 * 10f64.powf(-k as f64 / 5.0))
            .collect();
        let spectra: Vec<SeriesSpectrum> = [40.0, 70.0, 100.0, 130.0]
            .iter()
            .enumerate()
            .map(|(i, t_c)| {
                let t_k = t_c + ZERO_C_IN_K;
                let s = |ea: f64| (ea / BOLTZMANN_EV_PER_K * (1.0 / t_k - 1.0 / 350.0)).exp();
                let p = [1e3 * s(0.5), 1e-9, 1e4 * s(0.7), 1e-6];
                let z = c
                    .impedance_spectrum(&p, &f)
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(k, z)| {
                        let e = 0.003 * ((k * 7 + i * 3) as f64 * 1.618).sin();
                        (z.re * (1.0 + e), z.im * (1.0 - e))
                    })
                    .collect();
                SeriesSpectrum {
                    label: format!("T{i}.csv"),
                    T_K: t_k,
                    f_Hz: f.clone(),
                    Z: z,
                }
            })
            .collect();
        let opts = EisFitOptions {
            weighting: vegard_analysis::EisWeighting::Modulus,
            ..EisFitOptions::default()
        };
        let series = fit_series(&c, &spectra, &opts).unwrap();
        (c, series, spectra)
    }

    #[test]
    fn series_report_has_the_overlay_the_table_and_the_arrhenius_lines() {
        let (c, series, spectra) = fitted();
        let arr = series_arrhenius(&c, &series, None);
        let r = series_report(&series, &spectra, Some(&arr), "2026-01-01T00:00:00Z");
        assert_eq!(r.status, ReportStatus::Ok, "{:?}", r.failures);
        assert_eq!(
            r.title,
            "EIS temperature series: p(R1,C1)-p(R2,C2), 40.0–130.0 °C (4 temperatures)"
        );
        let ids: Vec<&str> = r
            .sections
            .iter()
            .flat_map(|s| &s.figures)
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "eis-series-nyquist",
                "eis-series-parameters-vs-t",
                "eis-series-arrhenius-r",
                "eis-series-arrhenius-tau"
            ]
        );
        // Nyquist: data + fit per temperature, legend named in °C.
        let nyq = &r.sections[0].figures[0].panels[0];
        assert!(nyq.equal_aspect);
        assert_eq!(nyq.series.len(), 8);
        assert_eq!(nyq.series[0].name, "40.0 °C");
        assert_eq!(nyq.series[6].name, "130.0 °C");
        assert_eq!(nyq.series[1].color, nyq.series[0].color);
        // Table: °C, K first; R1 of the coldest row near its truth.
        let t = &r.sections[0].tables[0];
        let heads: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.unit.as_str()))
            .collect();
        assert_eq!(
            heads[..4],
            [("T", "°C"), ("T", "K"), ("file", ""), ("R1", "Ω")]
        );
        assert_eq!(t.rows.len(), 4);
        assert_eq!(t.rows[0][0], Cell::num(40.0));
        let truth_r1 = 1e3 * (0.5 / BOLTZMANN_EV_PER_K * (1.0 / 313.15 - 1.0 / 350.0)).exp();
        let Cell::Num { value, .. } = t.rows[0][3] else {
            panic!("R1 cell {:?}", t.rows[0][3]);
        };
        assert!(
            (value / truth_r1 - 1.0).abs() < 0.02,
            "{value} vs {truth_r1}"
        );
        assert_eq!(t.rows[0][t.columns.len() - 2], Cell::text("ok"));
        // Ea of R1 and R2 in the table within a few % of the truth.
        let at = &r.sections[1].tables[0];
        let ea = |q: &str| {
            let row = at.rows.iter().find(|row| row[0] == Cell::text(q)).unwrap();
            match row[2] {
                Cell::Num { value, .. } => value,
                _ => panic!("{row:?}"),
            }
        };
        assert!((ea("R1") - 0.5).abs() < 0.02, "{}", ea("R1"));
        assert!((ea("R2") - 0.7).abs() < 0.02, "{}", ea("R2"));
        // Every format renders: one <svg> per figure in the HTML.
        let html = crate::render::html(&r).unwrap();
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("130.0 °C"));
    }

    #[test]
    fn the_rebuilt_band_matches_the_analysis_errors() {
        let (c, series, _) = fitted();
        let arr = series_arrhenius(&c, &series, None);
        let l = arr.lines.iter().find(|l| l.quantity == "R2").unwrap();
        // At 1/T = 0 the line is the intercept and the band is t * its SE.
        let [(y0, h0)] = arrhenius_line_at(l, &[0.0])[..] else {
            panic!()
        };
        let t975 = (l.ea_ci95_eV.unwrap()[1] - l.ea_eV) / l.ea_se_eV;
        assert!((y0 - l.intercept).abs() < 1e-12 * l.intercept.abs().max(1.0));
        let h0 = h0.unwrap();
        assert!(
            (h0 / (t975 * l.intercept_se) - 1.0).abs() < 1e-9,
            "{h0} vs {}",
            t975 * l.intercept_se
        );
        // Student t with 2 dof.
        assert!((t975 - 4.302_652_7).abs() < 1e-5, "{t975}");
        // The slope is -Ea/k_B.
        let pts = arrhenius_line_at(l, &[0.003, 0.0031]);
        let slope = (pts[1].0 - pts[0].0) / 0.0001;
        assert!((slope + l.ea_eV / BOLTZMANN_EV_PER_K).abs() < 1e-6 * slope.abs());
    }

    #[test]
    fn failed_lines_and_bad_fits_are_warnings_and_fail_the_report() {
        let (c, mut series, spectra) = fitted();
        // Two of the four fits unidentifiable: the Arrhenius lines keep two
        // points (no band), the report lists both temperatures.
        for p in &mut series.points[..2] {
            p.fit.status = vegard_analysis::FitStatus::Unidentifiable {
                reasons: vec![vegard_analysis::FitProblem::IllConditioned { condition: 1e20 }],
            };
        }
        let arr = series_arrhenius(&c, &series, None);
        assert_eq!(arr.excluded.len(), 2);
        let r = series_report(&series, &spectra, Some(&arr), "now");
        assert_eq!(r.status, ReportStatus::AnalysisFailed);
        assert_eq!(r.failures.len(), 2, "{:?}", r.failures);
        assert!(
            r.failures[0].starts_with("T0.csv (40.0 °C): unidentifiable fit"),
            "{}",
            r.failures[0]
        );
        let w = r.sections.last().unwrap();
        assert_eq!(w.id, "warnings");
        assert_eq!(w.tables[0].rows.len(), 2);
        let fig = r
            .sections
            .iter()
            .flat_map(|s| &s.figures)
            .find(|f| f.id == "eis-series-arrhenius-r")
            .unwrap();
        assert!(
            fig.panels[0]
                .series
                .iter()
                .all(|s| s.kind != SeriesKind::Band)
        );
    }
}
