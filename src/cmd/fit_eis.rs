//! `vegard fit-eis`: an equivalent circuit fitted to a spectrum file or to
//! an EIS step of a run; candidate circuits ranked by BIC; a temperature
//! series with its Arrhenius lines.
//!
//! Exit status (README "fit-eis"): 0 when every fit is Ok (for a ranking:
//! when at least one candidate is), 5 ([`FIT_FAILED`]) when a fit failed
//! or is unidentifiable (the reasons on stderr; the numbers are still
//! printed, with their status), 2 for bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use vegard_analysis::{
    Circuit, EisFit, EisFitOptions, EisSeries, Geometry, SeriesArrhenius, SeriesSpectrum, Spectrum,
    fit_circuit_with, fit_series, series_arrhenius,
};
use vegard_store::schema::{EisData, data_path};

use crate::cli::FitEisArgs;
use crate::input::{BadInput, bad, bad_input};

/// Exit status of a fit that failed or is unidentifiable: the same as a
/// report whose analysis failed (the output was written, the analysis did
/// not hold). 3 is taken by an aborted run.
pub const FIT_FAILED: u8 = 5;

/// The spectrum of one EIS step of a run folder.
fn run_eis_spectrum(run: &Path, step: Option<i64>) -> Result<Spectrum> {
    let path = data_path(run, "eis");
    let t = vegard_store::read_parquet(&path)
        .and_then(|t| EisData::from_table(&t))
        .map_err(bad_input)?;
    let mut available: Vec<i64> = t.step.clone();
    available.dedup();
    let want = match step {
        Some(s) => s,
        None if available.len() == 1 => available[0],
        None => {
            return Err(BadInput(format!(
                "{}: {} EIS steps ({available:?}); choose one with --step",
                path.display(),
                available.len()
            ))
            .into());
        }
    };
    let rows: Vec<usize> = (0..t.len()).filter(|&i| t.step[i] == want).collect();
    if rows.is_empty() {
        return Err(BadInput(format!(
            "{}: no EIS step {want} (steps with impedance data: {available:?})",
            path.display()
        ))
        .into());
    }
    Ok((
        rows.iter().map(|&i| t.f_Hz[i]).collect(),
        rows.iter()
            .map(|&i| (t.Z_re_ohm[i], t.Z_im_ohm[i]))
            .collect(),
    ))
}

/// What was read, for the JSON `data` block and the text header: which
/// reader, how many points, the frequency range, how Z'' was signed.
struct ReadSpectrum {
    f_Hz: Vec<f64>,
    Z: Vec<(f64, f64)>,
    data: Value,
}

fn read_spectrum(input: &Path, step: Option<i64>, capacitive_only: bool) -> Result<ReadSpectrum> {
    let (f, z, reader, sign) = if input.is_dir() {
        let (f, z) = run_eis_spectrum(input, step)?;
        (f, z, "run_folder".to_string(), None)
    } else {
        let d = vegard_formats::read_impedance(input).map_err(bad_input)?;
        let reader = serde_json::to_value(d.format)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let z: Vec<(f64, f64)> = d
            .Z_re_ohm
            .iter()
            .copied()
            .zip(d.Z_im_ohm.iter().copied())
            .collect();
        (
            d.f_Hz,
            z,
            reader,
            Some((
                serde_json::to_value(d.imag_sign)?,
                d.sign_note,
                d.format.name(),
            )),
        )
    };
    let n_read = f.len();
    let (f, z): (Vec<f64>, Vec<(f64, f64)>) = if capacitive_only {
        f.into_iter().zip(z).filter(|(_, z)| z.1 < 0.0).unzip()
    } else {
        (f, z)
    };
    let range = |v: &[f64], max: bool| {
        v.iter()
            .copied()
            .reduce(if max { f64::max } else { f64::min })
            .unwrap_or(f64::NAN)
    };
    let mut data = json!({
        "file": input.display().to_string(),
        "reader": reader,
        "points_read": n_read,
        "points_used": f.len(),
        "f_min_Hz": range(&f, false),
        "f_max_Hz": range(&f, true),
    });
    if let Some((sign, note, name)) = sign {
        data["format"] = json!(name);
        data["imag_sign"] = sign;
        data["sign_note"] = json!(note);
    }
    Ok(ReadSpectrum {
        f_Hz: f,
        Z: z,
        data,
    })
}

/// The fitted parameters in the circuit's order, each with its standard
/// error and unit (the `parameters` map of the fit is keyed by name, which
/// JSON readers may reorder).
fn parameter_list(circuit: &Circuit, fit: &EisFit) -> Value {
    let mut units: Vec<&str> = Vec::with_capacity(fit.parameters.len());
    for e in circuit.elements() {
        units.extend(e.kind.param_units());
    }
    let list: Vec<Value> = fit
        .parameters
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            json!({
                "name": name,
                "value": value,
                "se": fit.stderr.get(i).map(|x| x.1),
                "unit": units.get(i).copied().unwrap_or(""),
            })
        })
        .collect();
    Value::Array(list)
}

/// One line on what was read, for the text output.
fn data_line(d: &Value) -> String {
    let mut line = format!(
        "  data: {} points ({} used), {} .. {} Hz, read as {}",
        d["points_read"],
        d["points_used"],
        vegard_core::format::sig(d["f_min_Hz"].as_f64().unwrap_or(f64::NAN), 4),
        vegard_core::format::sig(d["f_max_Hz"].as_f64().unwrap_or(f64::NAN), 4),
        d["format"].as_str().or(d["reader"].as_str()).unwrap_or("?"),
    );
    if let Some(note) = d["sign_note"].as_str() {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// The format of `--report OUT`, from OUT's extension; checked before any
/// fitting so a typo costs nothing.
fn report_format(out: &Path) -> Result<vegard_report::Format> {
    use vegard_report::Format;
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => Ok(Format::Html),
        "md" | "markdown" => Ok(Format::Markdown),
        "json" => Ok(Format::Json),
        _ => Err(BadInput(format!(
            "--report {}: the format follows the extension: .html, .md or .json, not {:?}",
            out.display(),
            ext
        ))
        .into()),
    }
}

/// `--circuit C`, the string quoted in the error by its first 60
/// characters (the error's column points into it; a megabyte of argument
/// is not repeated back).
fn parse_circuit(text: &str) -> Result<Circuit> {
    Circuit::parse(text).map_err(|e| {
        let mut shown: String = text.chars().take(60).collect();
        if text.chars().nth(60).is_some() {
            shown.push_str("...");
        }
        BadInput(format!("--circuit {shown:?}: {e}")).into()
    })
}

/// `--temperatures FILE`: header `file,T_C` or `file,T_K`, then
/// `path,temperature` lines; paths relative to the table's folder. Read
/// with the limits of a configuration file (size before reading, UTF-8
/// with the position of a bad byte).
fn read_temperature_table(path: &Path) -> Result<Vec<(PathBuf, f64)>> {
    let text = vegard_recipe::Source::read(path).map_err(bad)?.text;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut kelvin = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |why: String| -> anyhow::Error {
            BadInput(format!("{}:{}: {why}", path.display(), i + 1)).into()
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 2 {
            return Err(err(format!(
                "expected 2 columns (file, temperature), found {}",
                fields.len()
            )));
        }
        let Some(is_k) = kelvin else {
            kelvin = Some(match fields[1] {
                "T_K" => true,
                "T_C" => false,
                other => {
                    return Err(err(format!(
                        "the header must be `file,T_C` or `file,T_K`, found column {other:?}"
                    )));
                }
            });
            continue;
        };
        let t: f64 = fields[1]
            .parse()
            .map_err(|e| err(format!("temperature {:?}: {e}", fields[1])))?;
        out.push((dir.join(fields[0]), if is_k { t } else { t + 273.15 }));
    }
    if out.is_empty() {
        return Err(BadInput(format!("{}: no spectra listed", path.display())).into());
    }
    Ok(out)
}

fn status_line(fit: &EisFit) -> String {
    if fit.status.is_ok() {
        "ok".to_string()
    } else {
        format!(
            "{}: {}",
            fit.status.name().to_uppercase(),
            fit.status.reasons_text()
        )
    }
}

fn print_fit(source: &str, fit: &EisFit) {
    println!(
        "{source}: {} ({} points, {} weighting)",
        fit.circuit,
        fit.n_points,
        serde_json::to_value(fit.weighting)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    println!("  status: {}", status_line(fit));
    let guess = match fit.given_guess_chi2 {
        Some(c) => format!("; the given guess reached chi2 {c:.4e}"),
        None => String::new(),
    };
    println!(
        "  start: {} (of {} LM starts{guess}){}",
        fit.start,
        fit.n_starts,
        if fit.relabelled {
            "; arcs relabelled, highest frequency first"
        } else {
            ""
        }
    );
    for ((name, v), (_, se)) in fit.parameters.iter().zip(&fit.stderr) {
        println!("  {name:<8} {v:>12.5e} ± {se:.2e}");
    }
    for a in &fit.arcs {
        println!(
            "  arc {:<12} tau {:.4e} ± {:.1e} s, f_char {:.4e} Hz, C_eff {:.4e} ± {:.1e} F",
            a.label, a.tau_s, a.tau_se_s, a.f_char_Hz, a.C_eff_F, a.C_eff_se_F
        );
    }
    let q = &fit.quality;
    println!(
        "  rmse {:.3e} ohm (unweighted), rmse_weighted {:.3e}, chi2_weighted {:.4e}, \
         chi2_reduced {:.3e} ({} dof), AIC {:.2}, BIC {:.2}",
        fit.rmse_unweighted_ohm,
        q.rmse_weighted,
        q.chi2_weighted,
        q.chi2_reduced,
        q.dof,
        q.aic,
        q.bic
    );
    println!(
        "  condition number {:.2e}, fit time {:.2} ms",
        fit.condition_number,
        fit.fit_time_s * 1e3
    );
}

fn options(args: &FitEisArgs, guess: Option<Vec<f64>>) -> EisFitOptions {
    EisFitOptions {
        weighting: args.weight.weighting(),
        guess,
        n_lm_starts: args.starts,
        n_candidates: if args.starts == 0 {
            0
        } else {
            vegard_analysis::DEFAULT_CANDIDATES
        },
        ..EisFitOptions::default()
    }
}

pub fn cmd_fit_eis(args: &FitEisArgs) -> Result<ExitCode> {
    let circuits: Vec<Circuit> = args
        .circuits
        .iter()
        .map(|c| parse_circuit(c))
        .collect::<Result<_>>()?;
    let series_files: Option<Vec<(PathBuf, f64)>> = if let Some(table) = &args.temperatures {
        if !args.inputs.is_empty() {
            return Err(BadInput(
                "give the spectra either as FILE... with --temperature-C/-K or in the \
                 --temperatures table, not both"
                    .into(),
            )
            .into());
        }
        Some(read_temperature_table(table)?)
    } else {
        let temps = match (&args.temperature_C, &args.temperature_K) {
            (Some(c), None) => Some(c.iter().map(|t| t + 273.15).collect::<Vec<f64>>()),
            (None, Some(k)) => Some(k.clone()),
            _ => None,
        };
        match temps {
            Some(t) if t.len() != args.inputs.len() => {
                return Err(BadInput(format!(
                    "{} temperatures for {} spectra: give one per file",
                    t.len(),
                    args.inputs.len()
                ))
                .into());
            }
            Some(t) => Some(args.inputs.iter().cloned().zip(t).collect()),
            None if args.inputs.len() > 1 => {
                return Err(BadInput(
                    "several spectra are a temperature series: give --temperature-C, \
                     --temperature-K or --temperatures"
                        .into(),
                )
                .into());
            }
            None => None,
        }
    };
    let report = match &args.report {
        Some(out) => Some((out.as_path(), report_format(out)?)),
        None => None,
    };
    if let Some(files) = series_files {
        return series(args, &circuits, &files, report);
    }
    if args.arrhenius || args.thickness_cm.is_some() || report.is_some() {
        return Err(BadInput(
            "--arrhenius, --thickness-cm/--area-cm2 and --report need a temperature series".into(),
        )
        .into());
    }
    let Some(input) = args.inputs.first() else {
        return Err(BadInput("no spectrum given".into()).into());
    };
    let read = read_spectrum(input, args.step, args.capacitive_only)?;
    let (f, z) = (&read.f_Hz, &read.Z);
    if circuits.len() > 1 {
        if args.guess.is_some() {
            return Err(BadInput("--guess applies to one circuit, not to a ranking".into()).into());
        }
        return rank(args, input, &circuits, f, z, &read.data);
    }
    let circuit = &circuits[0];
    let fit =
        fit_circuit_with(circuit, f, z, &options(args, args.guess.clone())).map_err(bad_input)?;
    let lin_kk = if args.kk {
        Some(vegard_analysis::lin_kk(f, z).map_err(bad_input)?)
    } else {
        None
    };
    if args.json {
        let mut v = serde_json::to_value(&fit)?;
        v["data"] = read.data.clone();
        v["parameter_list"] = parameter_list(circuit, &fit);
        if let Some(k) = &lin_kk {
            v["kk"] = serde_json::to_value(k)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_fit(&input.display().to_string(), &fit);
        println!("{}", data_line(&read.data));
        if let Some(k) = &lin_kk {
            println!("  lin-KK: {}", serde_json::to_string(k)?);
        }
    }
    if fit.status.is_ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "vegard: fit-eis: {}: the fit is {}: {}",
            input.display(),
            fit.status.name(),
            fit.status.reasons_text()
        );
        Ok(ExitCode::from(FIT_FAILED))
    }
}

/// Candidates ranked: Ok fits by BIC first, then the others by BIC;
/// delta-BIC against the best Ok candidate.
fn rank(
    args: &FitEisArgs,
    input: &Path,
    circuits: &[Circuit],
    f: &[f64],
    z: &[(f64, f64)],
    data: &Value,
) -> Result<ExitCode> {
    let mut fits: Vec<EisFit> = circuits
        .iter()
        .map(|c| fit_circuit_with(c, f, z, &options(args, None)))
        .collect::<Result<_, _>>()
        .map_err(bad_input)?;
    let key = |x: &EisFit| (!x.status.is_ok(), x.quality.bic);
    fits.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let best_ok = fits
        .iter()
        .find(|x| x.status.is_ok())
        .map(|x| x.quality.bic);
    let ref_bic = best_ok.unwrap_or_else(|| fits.first().map_or(f64::NAN, |x| x.quality.bic));
    if args.json {
        let candidates: Vec<Value> = fits
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let params = Circuit::parse(&x.circuit)
                    .map(|c| parameter_list(&c, x))
                    .unwrap_or(Value::Null);
                json!({
                    "rank": i + 1,
                    "circuit": x.circuit,
                    "delta_bic": x.quality.bic - ref_bic,
                    "fit": x,
                    "parameter_list": params,
                })
            })
            .collect();
        let v = json!({
            "input": input.display().to_string(),
            "data": data,
            "ranking": "status ok first, then by BIC = n ln(SSR/n) + k ln n (n = 2N residuals of the weighting used); delta_bic against the best ok candidate",
            "best": best_ok.and(fits.first().map(|x| x.circuit.clone())),
            "candidates": candidates,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} candidate circuits ({} points), ranked by BIC (ok fits first)",
            input.display(),
            fits.len(),
            f.len()
        );
        println!("{}", data_line(data));
        println!(
            "  {:<4} {:<32} {:>10} {:>9} {:>10} {:>11} {:>13}  status",
            "rank", "circuit", "BIC", "dBIC", "AIC", "chi2_red", "rmse_weighted"
        );
        for (i, x) in fits.iter().enumerate() {
            println!(
                "  {:<4} {:<32} {:>10.2} {:>9.2} {:>10.2} {:>11.3e} {:>13.3e}  {}",
                i + 1,
                x.circuit,
                x.quality.bic,
                x.quality.bic - ref_bic,
                x.quality.aic,
                x.quality.chi2_reduced,
                x.quality.rmse_weighted,
                status_line(x)
            );
        }
    }
    if best_ok.is_some() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "vegard: fit-eis: {}: no candidate circuit gave an identifiable fit",
            input.display()
        );
        Ok(ExitCode::from(FIT_FAILED))
    }
}

fn series(
    args: &FitEisArgs,
    circuits: &[Circuit],
    files: &[(PathBuf, f64)],
    report: Option<(&Path, vegard_report::Format)>,
) -> Result<ExitCode> {
    if circuits.len() != 1 {
        return Err(BadInput("a temperature series is fitted with one --circuit".into()).into());
    }
    if args.kk || args.step.is_some() {
        return Err(BadInput("--kk and --step apply to a single spectrum".into()).into());
    }
    let circuit = &circuits[0];
    let (spectra, data): (Vec<SeriesSpectrum>, Vec<Value>) = files
        .iter()
        .map(|(path, T_K)| {
            if !(T_K.is_finite() && *T_K > 0.0) {
                return Err(BadInput(format!(
                    "{}: temperature {T_K} K is not > 0 K",
                    path.display()
                ))
                .into());
            }
            let read = read_spectrum(path, None, args.capacitive_only)?;
            Ok((
                SeriesSpectrum {
                    label: path.display().to_string(),
                    T_K: *T_K,
                    f_Hz: read.f_Hz,
                    Z: read.Z,
                },
                read.data,
            ))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let fitted =
        fit_series(circuit, &spectra, &options(args, args.guess.clone())).map_err(bad_input)?;
    let geometry = match (args.thickness_cm, args.area_cm2) {
        (Some(l), Some(a)) if l > 0.0 && a > 0.0 => Some(Geometry {
            thickness_cm: l,
            area_cm2: a,
        }),
        (Some(_), Some(_)) => {
            return Err(BadInput("--thickness-cm and --area-cm2 must be > 0".into()).into());
        }
        _ => None,
    };
    let arr = args
        .arrhenius
        .then(|| series_arrhenius(circuit, &fitted, geometry));
    if args.json {
        let points: Vec<Value> = fitted
            .points
            .iter()
            .zip(&data)
            .map(|(p, d)| {
                json!({
                    "file": p.label,
                    "T_K": p.T_K,
                    "T_C": p.T_K - 273.15,
                    "data": d,
                    "fit": p.fit,
                    "parameter_list": parameter_list(circuit, &p.fit),
                })
            })
            .collect();
        let v = json!({
            "circuit": fitted.circuit,
            "weighting": args.weight.name(),
            "points": points,
            "arrhenius": arr,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_series(&fitted, arr.as_ref());
    }
    if let Some((out, format)) = report {
        let now = vegard_core::UtcStamp::now().rfc3339();
        let r = vegard_report::series_report(&fitted, &spectra, arr.as_ref(), &now);
        let written = vegard_report::write_report(&r, format, out)
            .with_context(|| format!("writing {}", out.display()))?;
        // stderr: stdout may be the --json document.
        eprintln!(
            "vegard: fit-eis: report {}{}",
            out.display(),
            if written.len() > 1 {
                format!(" ({} figure files beside it)", written.len() - 1)
            } else {
                String::new()
            }
        );
    }
    let bad: Vec<&vegard_analysis::SeriesPoint> = fitted
        .points
        .iter()
        .filter(|p| !p.fit.status.is_ok())
        .collect();
    for p in &bad {
        eprintln!(
            "vegard: fit-eis: {} ({:.2} K): the fit is {}: {}",
            p.label,
            p.T_K,
            p.fit.status.name(),
            p.fit.status.reasons_text()
        );
    }
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FIT_FAILED)
    })
}

fn print_series(s: &EisSeries, arr: Option<&SeriesArrhenius>) {
    println!(
        "{} over {} temperatures (coldest first)",
        s.circuit,
        s.points.len()
    );
    let Some(first) = s.points.first() else {
        return;
    };
    let names: Vec<&str> = first
        .fit
        .parameters
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    print!("  {:>8}", "T_C");
    for n in &names {
        print!(" {n:>21}");
    }
    println!(" {:>10}  {:<20} status", "chi2_red", "start");
    for p in &s.points {
        print!("  {:>8.2}", p.T_K - 273.15);
        for ((_, v), (_, se)) in p.fit.parameters.iter().zip(&p.fit.stderr) {
            print!(" {:>11.4e} ± {:<7.1e}", v, se);
        }
        let start: String = p.fit.start.chars().take(20).collect();
        println!(
            " {:>10.3e}  {:<20} {}",
            p.fit.quality.chi2_reduced,
            start,
            status_line(&p.fit)
        );
    }
    if !first.fit.arcs.is_empty() {
        println!("  arcs (tau, f_char, C_eff by Brug's formula for R||CPE):");
        for p in &s.points {
            let cells: Vec<String> = p
                .fit
                .arcs
                .iter()
                .map(|a| {
                    format!(
                        "{}: tau {:.3e} s, f {:.3e} Hz, C_eff {:.3e} F",
                        a.label, a.tau_s, a.f_char_Hz, a.C_eff_F
                    )
                })
                .collect();
            println!("  {:>8.2}  {}", p.T_K - 273.15, cells.join("; "));
        }
    }
    let Some(arr) = arr else { return };
    println!("Arrhenius: {}", arr.convention);
    println!(
        "  {:<22} {:<12} {:>8} {:>8} {:>19} {:>9} {:>6} {:>3}",
        "quantity", "y", "Ea_eV", "SE_eV", "95% CI (eV)", "kJ/mol", "Birge", "n"
    );
    for l in &arr.lines {
        let ci = l
            .ea_ci95_eV
            .map_or("-".to_string(), |[lo, hi]| format!("[{lo:.4}, {hi:.4}]"));
        let birge = l.birge_ratio.map_or("-".to_string(), |b| format!("{b:.2}"));
        println!(
            "  {:<22} {:<12} {:>8.4} {:>8.4} {:>19} {:>9.2} {:>6} {:>3}",
            l.quantity, l.y, l.ea_eV, l.ea_se_eV, ci, l.ea_kJ_per_mol, birge, l.n_points
        );
    }
    for e in &arr.excluded {
        println!("  excluded: {e}");
    }
    for e in &arr.failed_lines {
        println!("  not fitted: {e}");
    }
}
