//! End-to-end tests of `vegard report` and `vegard export` on real runs of
//! the virtual bench: the three formats agree with each other and with
//! `vegard analyze`, the numbers match the bench's known answers, and a
//! report spec changes the report as the README says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;
// The slowest test here (a four-temperature campaign): libtest starts tests
// in name order, and this name has it start third, beside the campaign
// folder's runs rather than after them.
mod campaign_esm_disturbed;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use vegard_store::schema::aligned_col;

use common::{tmpdir, vegard};
use serde_json::Value;
use vegard_report::render::{escape_html, format_number};
use vegard_report::{Cell, Report};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a recipe to completion; returns its run folder.
fn run(recipe: &Path, parent: &Path, speed: &str) -> PathBuf {
    finish(start(recipe, parent, speed))
}

/// `vegard run` started, not waited for: runs of the virtual bench mostly
/// wait on its clock, so several side by side take the time of one.
fn start(recipe: &Path, parent: &Path, speed: &str) -> std::process::Child {
    vegard()
        .arg("run")
        .arg(recipe)
        .args(["--json", "--speed", speed, "--out"])
        .arg(parent)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a started run; its run folder.
fn finish(child: std::process::Child) -> PathBuf {
    let out = child.wait_with_output().unwrap();
    let stdout = ok(&out);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["status"], "complete", "{v}");
    PathBuf::from(v["run_dir"].as_str().unwrap())
}

/// The demo recipe, run once for every test in this file.
fn demo_run() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| run(Path::new("recipes/demo-cv.toml"), &tmpdir("demo"), "8"))
}

/// Two runs of one temperature each in one folder: a campaign of runs.
/// The spectra reach 5-10 mHz, below the film's knee (tau ~ 20 s at
/// 30 C), or tau would not be determined.
fn campaign_folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmpdir("campaign");
        let runs = dir.join("runs");
        let mut started = Vec::new();
        for (k, t_C) in [30.0, 45.0].into_iter().enumerate() {
            let p = dir.join(format!("recipe-{k}.toml"));
            std::fs::write(
                &p,
                format!(
                    r#"[run]
name = "campaign-{t_C}C"
sample = "virtual film"
operator = "test"
deflection_sample_interval_s = 0.02
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "temperature"
setpoint_C = {t_C}
tolerance_K = 0.3
hold_s = 60.0
timeout_s = 900.0
[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.6, 0.2]
scan_rate_V_per_s = 0.2
step_V = 0.002
cycles = 1
[[step]]
kind = "eis"
dc_V = 0.4
amplitude_V = 0.01
freq_Hz = [1000.0, 0.01]
points_per_decade = 3
equilibrate_s = 10.0
[[step]]
kind = "esm_sweep"
dc_V = 0.4
amplitude_V = 0.02
freq_range_Hz = [0.5, 0.005]
points_per_decade = 2
periods = 2
settle_periods = 1
"#
                ),
            )
            .unwrap();
            started.push(start(&p, &runs, "30"));
        }
        for child in started {
            finish(child);
        }
        runs
    })
}

/// `vegard report PATH --format FORMAT --out OUT [extra]`.
fn report(path: &Path, format: &str, out: &Path, extra: &[&str]) -> Output {
    vegard()
        .arg("report")
        .arg(path)
        .args(["--format", format, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read_report(path: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn analyze(run: &Path) -> Value {
    let out = vegard()
        .arg("analyze")
        .arg(run)
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_str(&ok(&out)).unwrap()
}

fn table<'a>(r: &'a Report, id: &str) -> &'a vegard_report::DataTable {
    r.sections
        .iter()
        .flat_map(|s| &s.tables)
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no table {id}"))
}

fn col(t: &vegard_report::DataTable, name: &str) -> usize {
    t.columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("table {}: no column {name}", t.id))
}

fn num(c: &Cell) -> (f64, Option<f64>) {
    match c {
        Cell::Num { value, se } => (*value, *se),
        Cell::Text(t) => panic!("not a number: {t:?}"),
    }
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Num { value, se } => format_number(*value, *se),
    }
}

/// Every table cell, figure and section of the JSON report is in the HTML
/// (same ids, same formatted numbers) and in the Markdown (figure files
/// beside it). This is what "the three formats agree" means.
fn assert_formats_agree(r: &Report, html: &str, md: &str, md_path: &Path) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing fetched"
    );
    let n_fig: usize = r.sections.iter().map(|s| s.figures.len()).sum();
    assert_eq!(
        html.matches("<svg").count(),
        n_fig,
        "one inline SVG per figure"
    );
    for s in &r.sections {
        assert!(
            html.contains(&format!("<section id=\"{}\">", s.id)),
            "{}",
            s.id
        );
        assert!(md.contains(&format!("## {}\n", s.title)), "{}", s.title);
        for t in &s.tables {
            assert!(html.contains(&format!("id=\"tab-{}\"", t.id)), "{}", t.id);
            for row in &t.rows {
                for c in row {
                    let text = cell_text(c);
                    assert!(
                        html.contains(&format!(">{}</td>", escape_html(&text))),
                        "table {}: {text:?} not in the HTML",
                        t.id
                    );
                    let md_text = text.replace('|', "\\|");
                    assert!(
                        md.contains(&md_text),
                        "table {}: {text:?} not in the Markdown",
                        t.id
                    );
                }
            }
        }
        for f in &s.figures {
            assert!(
                html.contains(&format!("<figure id=\"fig-{}\">", f.id)),
                "{}",
                f.id
            );
            let file = md_path
                .with_file_name(format!(
                    "{}-figures",
                    md_path.file_stem().unwrap().to_string_lossy()
                ))
                .join(format!("{}.svg", f.id));
            let svg = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(!svg.contains("NaN"), "{}", file.display());
            // The HTML inlines the same drawing.
            assert!(html.contains(svg.trim()), "figure {} differs", f.id);
            for p in &f.panels {
                let label = if p.y.unit.is_empty() {
                    p.y.label.clone()
                } else {
                    format!("{} / {}", p.y.label, p.y.unit)
                };
                let text = svg
                    .replace("&apos;", "'")
                    .replace("&#39;", "'")
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                assert!(text.contains(&label), "{}: axis {label}", f.id);
            }
        }
    }
}

/// The HTML's structure (sections, tables with their column heads and row
/// counts, figures), one line each: the golden test's subject.
fn outline(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let tags = [
        "<section id=\"",
        "<h3>",
        "<table id=\"",
        "<th>",
        "<figure id=\"",
        "<tr><td",
    ];
    loop {
        let next = tags
            .iter()
            .filter_map(|t| rest.find(t).map(|i| (i, *t)))
            .min_by_key(|(i, _)| *i);
        let Some((i, tag)) = next else { break };
        rest = &rest[i + tag.len()..];
        let end = rest.find(['"', '<']).unwrap_or(rest.len());
        let text = &rest[..end];
        match tag {
            "<section id=\"" => out.push_str(&format!("\nsection {text}\n")),
            "<h3>" => out.push_str(&format!("  table \"{text}\"")),
            "<table id=\"" => out.push_str(&format!(" {text}:")),
            "<th>" => out.push_str(&format!(" [{text}]")),
            "<figure id=\"" => out.push_str(&format!("  figure {text}\n")),
            _ => out.push('.'),
        }
        if tag == "<table id=\"" {
            // Column heads follow; rows are dots; newline at the table end.
            let table_end = rest.find("</table>").unwrap_or(rest.len());
            let body = &rest[..table_end];
            for th in body.split("<th>").skip(1) {
                out.push_str(&format!(" [{}]", &th[..th.find('<').unwrap_or(th.len())]));
            }
            let rows = body.matches("<tr><td").count();
            out.push_str(&format!(" {rows} rows\n"));
            rest = &rest[table_end..];
        }
    }
    out
}

#[test]
fn demo_report_in_html_markdown_and_json_agree_with_the_analysis() {
    let run = demo_run();
    let dir = tmpdir("demo-report");
    let (json_p, html_p, md_p) = (dir.join("r.json"), dir.join("r.html"), dir.join("r.md"));
    ok(&report(run, "json", &json_p, &[]));
    ok(&report(run, "html", &html_p, &[]));
    let stdout = ok(&report(run, "md", &md_p, &[]));
    assert!(stdout.contains("figure files beside it"), "{stdout}");
    let r = read_report(&json_p);
    assert_eq!(r.schema, "vegard-report/1");
    assert_eq!(r.kind, vegard_report::ReportKind::Run);
    assert_eq!(
        r.status,
        vegard_report::ReportStatus::Ok,
        "{:?}",
        r.failures
    );
    let ids: Vec<&str> = r.sections.iter().map(|s| s.id.as_str()).collect();
    // A CV-only run: no EIS, ESM or Arrhenius section (nothing to show).
    assert_eq!(
        ids,
        [
            "metadata",
            "clocks",
            "timeseries",
            "cv",
            "deformation",
            "harmonics",
            "warnings"
        ]
    );
    // Numbers: the report's kappa is the analysis' kappa, which is the
    // bench's (truth -0.2053 nm/mC, within 2 %).
    let a = analyze(run);
    let kappa = table(&r, "kappa");
    let (k, se) = num(&kappa.rows[0][col(kappa, "κ")]);
    assert_eq!(
        k,
        a["deformation_vs_charge"]["slope_nm_per_mC"]
            .as_f64()
            .unwrap()
    );
    assert_eq!(
        se.unwrap(),
        a["deformation_vs_charge"]["slope_se_nm_per_mC"]
            .as_f64()
            .unwrap()
    );
    assert!((k / -0.2053 - 1.0).abs() < 0.02, "kappa {k}");
    assert_eq!(
        r.analysis["runs"][0]["deformation_vs_charge"]["slope_nm_per_mC"],
        a["deformation_vs_charge"]["slope_nm_per_mC"]
    );
    // Per-cycle rows are the analysis' per-cycle fits.
    let pc = table(&r, "kappa-per-cycle");
    let cycles = a["deformation_vs_charge"]["per_cycle"].as_array().unwrap();
    assert_eq!(pc.rows.len(), cycles.len());
    for (row, c) in pc.rows.iter().zip(cycles) {
        assert_eq!(
            num(&row[col(pc, "κ")]).0,
            c["slope_nm_per_mC"].as_f64().unwrap()
        );
    }
    // Harmonics: what charge explains of u_n is u_n itself on the ideal
    // bench (the net charge per cycle must not leak into it).
    let h = table(&r, "harmonics-step1");
    for row in &h.rows[..3] {
        let u_n = num(&row[col(h, "|u_n|")]).0;
        let from_q = num(&row[col(h, "u_n from charge")]).0;
        assert!(
            (from_q - u_n).abs() < 0.1 * u_n,
            "n = {:?}: {from_q} vs {u_n}",
            row[0]
        );
    }
    // Metadata: recipe, operator, sample, status and the instruments' IDN.
    let meta = table(&r, "metadata");
    let field = |name: &str| {
        meta.rows
            .iter()
            .find(|row| row[0] == Cell::text(name))
            .map(|row| cell_text(&row[1]))
            .unwrap_or_else(|| panic!("metadata {name}"))
    };
    assert!(field("recipe").starts_with("demo-cv"));
    assert_eq!(field("operator"), "demo");
    assert_eq!(field("status"), "complete");
    assert!(field("UTC start").ends_with('Z'));
    assert!(field("software").starts_with("vegard "));
    let inst = table(&r, "instruments");
    let idn: Vec<String> = inst.rows.iter().map(|row| cell_text(&row[2])).collect();
    assert!(idn.iter().any(|s| s.contains("34465A")), "{idn:?}");
    assert!(idn.iter().any(|s| s.contains("MethodSCRIPT")), "{idn:?}");
    // Clock table: one row per recorded segment, errors in ms as run.toml.
    let clocks = table(&r, "clocks");
    assert_eq!(clocks.rows.len(), 2);
    let err_ms = num(&clocks.rows[1][col(clocks, "alignment error (est.)")]).0;
    let seg = &a["alignment"]["segments"][1]["alignment_error_estimate_s"];
    assert!((err_ms - 1e3 * seg.as_f64().unwrap()).abs() < 1e-12);
    // Figures: every plot the issue lists for a CV run.
    let figs: Vec<&str> = r
        .sections
        .iter()
        .flat_map(|s| &s.figures)
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(
        figs,
        ["timeseries", "cv-step1", "loops-step1", "harmonics-step1"]
    );
    let html = std::fs::read_to_string(&html_p).unwrap();
    let md = std::fs::read_to_string(&md_p).unwrap();
    assert_formats_agree(&r, &html, &md, &md_p);
    insta::assert_snapshot!("demo_html_outline", outline(&html));
}

/// `vegard analyze FOLDER` takes a folder of runs as `report` does: every
/// run's analysis as `analyze RUN` gives it, and the Arrhenius comparison
/// pooled over the runs, the same as the campaign report's.
#[test]
fn campaign_folder_analyze_pools_the_runs_as_the_campaign_report_does() {
    let folder = campaign_folder();
    let a = analyze(folder);
    let runs = a["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(a["runs_not_analysed"].as_array().unwrap().len(), 0, "{a}");
    for r in runs {
        // The same fits (fit_time_s aside, a wall time).
        let one = analyze(Path::new(r["run_dir"].as_str().unwrap()));
        for (fits, key) in [
            ("eis_fits", "tau_s"),
            ("eis_fits", "T_K"),
            ("esm_fits", "T_K"),
        ] {
            assert_eq!(r[fits][0][key], one[fits][0][key], "{fits} {key}");
            assert!(r[fits][0][key].is_number(), "{fits} {key}");
        }
        assert_eq!(
            r["esm_fits"][0]["fit"]["tau_s"],
            one["esm_fits"][0]["fit"]["tau_s"]
        );
    }
    assert!(folder.join("campaign-analysis.json").is_file());
    let dir = tmpdir("campaign-analyze");
    let json_p = dir.join("c.json");
    ok(&report(folder, "json", &json_p, &[]));
    let rep = read_report(&json_p);
    for method in ["eis", "esm"] {
        let ea = a["arrhenius"][method]["ea_eV"].as_f64().unwrap();
        assert_eq!(
            Some(ea),
            rep.analysis["arrhenius"][method]["ea_eV"].as_f64(),
            "{method}"
        );
    }
    // The summary in words names the pooled comparison.
    let text = ok(&vegard().arg("analyze").arg(folder).output().unwrap());
    assert!(
        text.contains("2 run(s) analysed") && text.contains("Arrhenius (EIS): Ea = "),
        "{text}"
    );
    // Neither a run nor a folder of runs: bad input, in the user's terms.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = vegard().arg("analyze").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither a run folder"), "{err}");
}

#[test]
fn campaign_folder_report_pools_the_runs_for_the_arrhenius_comparison() {
    let folder = campaign_folder();
    let dir = tmpdir("campaign-report");
    let (json_p, html_p, md_p) = (dir.join("c.json"), dir.join("c.html"), dir.join("c.md"));
    ok(&report(folder, "json", &json_p, &[]));
    ok(&report(folder, "html", &html_p, &[]));
    ok(&report(folder, "md", &md_p, &[]));
    let r = read_report(&json_p);
    assert_eq!(r.kind, vegard_report::ReportKind::Campaign);
    assert_eq!(r.sources.len(), 2);
    assert_eq!(
        r.status,
        vegard_report::ReportStatus::Ok,
        "{:?}",
        r.failures
    );
    let ids: Vec<&str> = r.sections.iter().map(|s| s.id.as_str()).collect();
    // Every section but the scan-rate one (no CV series in these runs).
    let expected: Vec<&str> = vegard_report::SECTION_IDS
        .into_iter()
        .filter(|&id| id != "scan_rate" && id != "origin")
        .collect();
    assert_eq!(ids, expected);
    // Arrhenius across the two runs: truth Ea = 0.45 eV for both methods.
    let arr = table(&r, "arrhenius");
    assert_eq!(arr.rows.len(), 2);
    for row in &arr.rows {
        let (ea, se) = num(&row[col(arr, "Ea")]);
        eprintln!(
            "{}: Ea = {ea:.4} ± {:.4} eV",
            cell_text(&row[0]),
            se.unwrap()
        );
        // Two temperatures, two short spectra: within 3 of its own standard
        // errors of the truth, and those errors small enough to mean something
        // (EIS about 0.003 eV, ESM about 0.04 eV on this recipe).
        let se = se.unwrap();
        assert!(se < 0.06, "{se}");
        assert!((ea - 0.45).abs() < (3.0 * se).max(0.01), "{ea} ± {se}");
        assert_eq!(num(&row[col(arr, "points")]).0, 2.0);
    }
    // The JSON's own Arrhenius equals the table, and every run's fits are
    // the ones `vegard analyze` gives.
    assert_eq!(
        num(&arr.rows[0][col(arr, "Ea")]).0,
        r.analysis["arrhenius"]["eis"]["ea_eV"].as_f64().unwrap()
    );
    let eis = table(&r, "eis-fits");
    assert_eq!(eis.rows.len(), 2);
    for src in &r.sources {
        let a = analyze(Path::new(src));
        // Rows are in temperature order: find the run's by its name.
        let name = Path::new(src).file_name().unwrap().to_string_lossy();
        let row = eis
            .rows
            .iter()
            .find(|row| cell_text(&row[col(eis, "run")]) == name)
            .unwrap();
        let tau = a["eis_fits"][0]["tau_s"].as_f64().unwrap();
        assert_eq!(num(&row[col(eis, "Wo1_1")]).0, tau);
        let kk = num(&row[col(eis, "KK max residual")]).0;
        assert!(kk < 1.0, "the bench's spectra pass the KK test: {kk} %");
    }
    let figs: Vec<&str> = r
        .sections
        .iter()
        .flat_map(|s| &s.figures)
        .map(|f| f.id.as_str())
        .collect();
    for want in ["nyquist-step2", "bode-step2", "esm-step3", "arrhenius"] {
        assert!(figs.iter().any(|f| f.ends_with(want)), "{want} in {figs:?}");
    }
    let html = std::fs::read_to_string(&html_p).unwrap();
    let md = std::fs::read_to_string(&md_p).unwrap();
    assert_formats_agree(&r, &html, &md, &md_p);
}

/// The campaign report's structure, one line each: sections, figures (id
/// and title) and tables (id and column heads), no numbers: what the
/// golden test pins down of a report organised by temperature.
fn json_outline(r: &Report) -> String {
    let mut out = String::new();
    for s in &r.sections {
        out.push_str(&format!("section {}: {}\n", s.id, s.title));
        // Which warnings a run raises depends on its noise.
        if s.id == "warnings" {
            continue;
        }
        for t in &s.tables {
            let heads: Vec<String> = t
                .columns
                .iter()
                .map(|c| {
                    if c.unit.is_empty() {
                        format!("[{}]", c.name)
                    } else {
                        format!("[{} / {}]", c.name, c.unit)
                    }
                })
                .collect();
            // Run folders are named by their UTC start: keep the tail.
            let id = t.id.rsplit_once("Z_").map_or(t.id.as_str(), |(_, b)| b);
            out.push_str(&format!("  table {id}: {}\n", heads.join(" ")));
        }
        for f in &s.figures {
            let id = f.id.rsplit_once("Z_").map_or(f.id.as_str(), |(_, b)| b);
            let title = &f.title;
            // A T panel joins the time series only when T moved by more
            // than 0.5 K, which a stage holding ±0.3 K may or may not do.
            let panels: Vec<String> = f
                .panels
                .iter()
                .filter(|p| !f.id.ends_with("timeseries") || p.y.label != "T")
                .map(|p| {
                    let named = p.series.iter().filter(|s| !s.name.is_empty()).count();
                    let top = p
                        .top_axis
                        .as_ref()
                        .map(|t| format!(", top axis {} / {}", t.label, t.unit))
                        .unwrap_or_default();
                    format!("{} vs {} ({named} named series{top})", p.y.label, p.x.label)
                })
                .collect();
            out.push_str(&format!("  figure {id}: {title} | {}\n", panels.join("; ")));
        }
    }
    out
}

/// Issue 18: a campaign of two temperatures (30 and 45 °C, one run each)
/// is organised by temperature: overlays with one series per temperature
/// on the blue-to-red scale, tables led by setpoint and measured
/// temperature, titles naming technique and temperature, no per-cycle κ
/// table that would repeat the pooled one, Nyquist decades labelled, an
/// Arrhenius °C axis and a band the reader can see.
#[test]
fn campaign_report_is_organised_by_temperature() {
    let folder = campaign_folder();
    let dir = tmpdir("campaign-by-T");
    let json_p = dir.join("c.json");
    ok(&report(folder, "json", &json_p, &[]));
    let r = read_report(&json_p);
    let setpoints_C = [30.0, 45.0];
    // The stage's tolerance in the recipe (tolerance_K = 0.3) holds the
    // measured mean of every step; the setpoint is the plan's, exactly.
    let tolerance_K = 0.3;
    for id in ["charge", "kappa", "regression", "eis-fits", "esm-fits"] {
        let t = table(&r, id);
        assert_eq!(t.columns[0].name, "T setpoint", "{id}");
        assert_eq!(t.columns[0].unit, "°C", "{id}");
        assert_eq!(t.columns[1].name, "T measured", "{id}");
        let set: Vec<f64> = t.rows.iter().map(|row| num(&row[0]).0).collect();
        assert_eq!(
            set.len(),
            setpoints_C.len(),
            "{id}: one row per temperature"
        );
        for (got, want) in set.iter().zip(setpoints_C) {
            assert!((got - want).abs() < 1e-9, "{id}: {set:?}");
        }
        for row in &t.rows {
            let (set, meas) = (num(&row[0]).0, num(&row[1]).0);
            assert!(
                (meas - set).abs() <= tolerance_K,
                "{id}: measured {meas} °C vs setpoint {set} °C"
            );
        }
    }
    // One cycle per CV: the per-cycle table would be the pooled one again.
    assert!(
        !r.sections
            .iter()
            .flat_map(|s| &s.tables)
            .any(|t| t.id == "kappa-per-cycle")
    );
    assert!(
        table(&r, "kappa")
            .note
            .as_deref()
            .unwrap()
            .contains("One cycle per step")
    );
    let figs: Vec<&vegard_report::Figure> = r.sections.iter().flat_map(|s| &s.figures).collect();
    let fig = |id: &str| {
        *figs
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no figure {id}"))
    };
    // Overlays: per panel one named series per temperature, coloured in
    // temperature order from the cold end (0) to the hot end (1).
    for id in [
        "cv-by-temperature",
        "loops-by-temperature",
        "nyquist-by-temperature",
        "bode-by-temperature",
        "esm-by-temperature",
    ] {
        let f = fig(id);
        assert!(f.title.contains("30 °C to 45 °C"), "{id}: {}", f.title);
        for p in &f.panels {
            let named: Vec<&vegard_report::Series> =
                p.series.iter().filter(|s| !s.name.is_empty()).collect();
            let names: Vec<&str> = named.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["30 °C", "45 °C"], "{id}");
            let pos: Vec<f64> = named.iter().map(|s| s.color_scale.unwrap()).collect();
            assert_eq!(pos, [0.0, 1.0], "{id}");
            // Every series (fits too) is on the scale, none in the palette.
            assert!(p.series.iter().all(|s| s.color_scale.is_some()), "{id}");
        }
    }
    // Per-step figures name technique and temperature, not the plan index.
    for f in &figs {
        assert!(!f.title.contains("step"), "{}: {}", f.id, f.title);
        if f.id != "arrhenius" {
            assert!(f.title.contains(" °C"), "{}: {}", f.id, f.title);
        }
    }
    // Nyquist: the point nearest each decade says its frequency. The sweep
    // is 1000 Hz to 10 mHz at 3 per decade, so every decade is a point.
    let nyq = figs
        .iter()
        .find(|f| f.id.ends_with("nyquist-step2"))
        .unwrap();
    let labels: Vec<&str> = nyq.panels[0].series[0]
        .labels
        .as_ref()
        .unwrap()
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        labels,
        ["1 kHz", "100 Hz", "10 Hz", "1 Hz", "0.1 Hz", "0.01 Hz"]
    );
    // Arrhenius: a °C scale on top whose ticks sit at 1000 / (θ + 273.15),
    // and a lower panel of residuals with the bands about zero.
    let arr = fig("arrhenius");
    let top = arr.panels[0].top_axis.as_ref().unwrap();
    assert_eq!((top.label.as_str(), top.unit.as_str()), ("T", "°C"));
    for t in &top.ticks {
        let c: f64 = t.label.parse().unwrap();
        assert!((t.at - 1000.0 / (c + 273.15)).abs() < 1e-12, "{t:?}");
    }
    assert!(top.ticks.iter().any(|t| t.label == "30" || t.label == "40"));
    assert_eq!(arr.panels.len(), 2);
    // Two temperatures: the line has no degree of freedom for a Student t
    // band, and the caption says so rather than promise one.
    assert!(
        arr.panels
            .iter()
            .flat_map(|p| &p.series)
            .all(|s| s.kind != vegard_report::SeriesKind::Band)
    );
    let caption = arr.caption.as_deref().unwrap();
    assert!(caption.contains("No 95 % band"), "{caption}");
    let residuals = arr.panels[1]
        .series
        .iter()
        .filter(|s| s.kind == vegard_report::SeriesKind::Points);
    assert_eq!(residuals.count(), 2, "EIS and ESM residuals");
    // Harmonics: the axis is an order, ticked at each analysed n.
    for f in figs.iter().filter(|f| f.id.contains("harmonics-step")) {
        let n: Vec<f64> = (1..=5).map(f64::from).collect();
        assert_eq!(f.panels[0].x.ticks.as_deref(), Some(&n[..]), "{}", f.id);
    }
    insta::assert_snapshot!("campaign_json_outline", json_outline(&r));
}

#[test]
fn a_spec_picks_and_orders_sections_and_names_what_failed() {
    let run = demo_run();
    let dir = tmpdir("spec");
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        "title = \"Film A, cycle check\"\nsections = [\"deformation\", \"metadata\"]\n",
    )
    .unwrap();
    let out_p = dir.join("r.json");
    ok(&report(
        run,
        "json",
        &out_p,
        &["--spec", spec.to_str().unwrap()],
    ));
    let r = read_report(&out_p);
    assert_eq!(r.title, "Film A, cycle check");
    let ids: Vec<&str> = r.sections.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["deformation", "metadata"]);
    assert_eq!(r.spec_file.as_deref(), Some(spec.to_str().unwrap()));

    // Asking for a section the run cannot fill: report written, exit 5,
    // the reason on stderr and in the report.
    std::fs::write(&spec, "sections = [\"metadata\", \"eis\"]\n").unwrap();
    let out = report(run, "json", &out_p, &["--spec", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("section \"eis\": nothing to report (no EIS step was fitted)"),
        "{stderr}"
    );
    let r = read_report(&out_p);
    assert_eq!(r.status, vegard_report::ReportStatus::AnalysisFailed);
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);

    // A bad spec is bad input: exit 2 and FILE:LINE:COL.
    std::fs::write(
        &spec,
        "sections = [\"metadata\"]\n[eis]\ncircuit = \"R0-p(R1,C1\"\n",
    )
    .unwrap();
    let out = report(run, "json", &out_p, &["--spec", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:3:11: ", spec.display())),
        "{stderr}"
    );
}

#[test]
fn a_spec_circuit_is_the_circuit_fitted() {
    let folder = campaign_folder();
    let dir = tmpdir("spec-circuit");
    let spec = dir.join("spec.toml");
    // A transmissive (short) Warburg instead of the film's reflective one.
    std::fs::write(
        &spec,
        "[eis]\ncircuit = \"R0-p(R1-Ws1,C1)\"\ntau_parameter = \"Ws1_1\"\n",
    )
    .unwrap();
    let out_p = dir.join("c.json");
    ok(&report(
        folder,
        "json",
        &out_p,
        &["--spec", spec.to_str().unwrap()],
    ));
    let r = read_report(&out_p);
    let eis = table(&r, "eis-fits");
    let names: Vec<&str> = eis.columns.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"Ws1_1") && !names.contains(&"Wo1_1"),
        "{names:?}"
    );
    assert_eq!(
        r.analysis["runs"][0]["eis_fits"][0]["fit"]["circuit"],
        "R0-p(R1-Ws1,C1)"
    );
    assert_eq!(r.analysis["spectra_options"]["circuit"], "R0-p(R1-Ws1,C1)");

    // Without the KK test the column is empty; with an impossible KK limit
    // every spectrum is a warning, and fail_on_warnings turns that into a
    // failed report (exit 5) that says why.
    std::fs::write(&spec, "[eis]\nkramers_kronig = false\n").unwrap();
    ok(&report(
        folder,
        "json",
        &out_p,
        &["--spec", spec.to_str().unwrap()],
    ));
    let r = read_report(&out_p);
    let eis = table(&r, "eis-fits");
    let kk = col(eis, "KK max residual");
    assert!(eis.rows.iter().all(|row| row[kk] == Cell::text("")));
    std::fs::write(
        &spec,
        "fail_on_warnings = true\n[eis]\nkk_max_residual = 0.00001\n",
    )
    .unwrap();
    let out = report(folder, "json", &out_p, &["--spec", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fail_on_warnings = true"), "{stderr}");
    let r = read_report(&out_p);
    let w = table(&r, "warnings");
    let kk_rows = w
        .rows
        .iter()
        .filter(|row| cell_text(&row[1]).contains("Kramers-Kronig check failed"))
        .count();
    assert_eq!(kk_rows, 2, "one per spectrum");
}

#[test]
fn export_writes_the_aligned_table_as_csv_and_parquet() {
    let run = demo_run();
    let dir = tmpdir("export");
    let aligned = vegard_store::read_parquet(&run.join("aligned.parquet")).unwrap();
    let csv_p = dir.join("a.csv");
    let out = vegard()
        .arg("export")
        .arg(run)
        .arg("--out")
        .arg(&csv_p)
        .output()
        .unwrap();
    assert!(ok(&out).contains(&format!("exported {} rows", aligned.len())));
    let text = std::fs::read_to_string(&csv_p).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(head, aligned.names());
    for want in ["t_s", "E_V", "I_A", "deflection_nm", "step", "cycle"] {
        assert!(head.contains(&want), "{want} in {head:?}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), aligned.len());
    // Every value of the current column survives the round trip exactly
    // (an empty field is a missing value: open circuit has no current).
    let k = head.iter().position(|h| *h == "I_A").unwrap();
    let i_a = aligned.f64(aligned_col::I_A).unwrap();
    let mut n_missing = 0;
    for (row, want) in rows.iter().zip(&i_a) {
        let field = row.split(',').nth(k).unwrap();
        if field.is_empty() {
            assert!(want.is_nan());
            n_missing += 1;
        } else {
            assert_eq!(field.parse::<f64>().unwrap(), *want);
        }
    }
    assert!(n_missing < rows.len() / 2, "{n_missing} of {}", rows.len());
    let pq = dir.join("a.parquet");
    ok(&vegard()
        .arg("export")
        .arg(run)
        .args(["--format", "parquet", "--out"])
        .arg(&pq)
        .output()
        .unwrap());
    let back = vegard_store::read_parquet(&pq).unwrap();
    assert_eq!(back.names(), aligned.names());
    for name in aligned.names() {
        // Bit for bit (NaN included, which `==` would not accept).
        let bits = |t: &vegard_store::Table| -> Vec<u64> {
            t.f64(name).unwrap().iter().map(|x| x.to_bits()).collect()
        };
        assert!(bits(&back) == bits(&aligned), "column {name} differs");
    }
    // Not a run folder: a clear error, exit 1.
    let out = vegard().arg("export").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no aligned.parquet"));
}
