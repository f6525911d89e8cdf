//! `vegard fit-eis`: an equivalent circuit fitted to a spectrum file or to
//! an EIS step of a run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use vegard_store::schema::{EisData, data_path};

use crate::cli::WeightArg;
use crate::input::{BadInput, bad_input};

/// The spectrum of one EIS step of a run folder.
fn run_eis_spectrum(run: &Path, step: Option<i64>) -> Result<vegard_analysis::Spectrum> {
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

#[allow(clippy::too_many_arguments)]
pub fn cmd_fit_eis(
    input: &Path,
    circuit: &str,
    guess: Option<&[f64]>,
    weight: WeightArg,
    capacitive_only: bool,
    kk: bool,
    step: Option<i64>,
    json: bool,
) -> Result<ExitCode> {
    let circuit = vegard_analysis::Circuit::parse(circuit)
        .map_err(|e| BadInput(format!("--circuit {circuit:?}: {e}")))?;
    let weighting = weight.weighting();
    let (mut f, mut z) = if input.is_dir() {
        run_eis_spectrum(input, step)?
    } else {
        vegard_analysis::read_eis_csv(input).map_err(bad_input)?
    };
    if capacitive_only {
        let keep: Vec<usize> = (0..f.len()).filter(|&i| z[i].1 < 0.0).collect();
        f = keep.iter().map(|&i| f[i]).collect();
        z = keep.iter().map(|&i| z[i]).collect();
    }
    let fit =
        vegard_analysis::fit_circuit(&circuit, &f, &z, guess, weighting).map_err(bad_input)?;
    let lin_kk = if kk {
        Some(vegard_analysis::lin_kk(&f, &z).map_err(bad_input)?)
    } else {
        None
    };
    if json {
        let mut v = serde_json::to_value(&fit)?;
        if let Some(k) = &lin_kk {
            v["kk"] = serde_json::to_value(k)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} ({} points, {} weighting)",
            input.display(),
            fit.circuit,
            fit.n_points,
            weight.name()
        );
        for ((name, v), (_, se)) in fit.parameters.iter().zip(&fit.stderr) {
            println!("  {name:<8} {v:>12.5e} ± {se:.2e}");
        }
        println!(
            "  rmse {:.3e} ohm, fit time {:.2} ms",
            fit.rmse_ohm,
            fit.fit_time_s * 1e3
        );
        if let Some(k) = &lin_kk {
            println!("  lin-KK: {}", serde_json::to_string(k)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
