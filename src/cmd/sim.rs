//! `vegard sim`: the virtual bench standalone, or its ground truth.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use vegard_engine::Resources;
use vegard_recipe::{BenchConfig, SimParams};
use vegard_sim::VirtualBench;

use crate::input::load_bench;

/// The virtual bench a bench config describes, at `--speed` if given (clap
/// has checked its range) instead of `[sim] time_acceleration`.
pub fn sim_params(bench: &BenchConfig, speed: Option<f64>) -> SimParams {
    let mut params = bench.sim.clone().unwrap_or_default();
    if let Some(s) = speed {
        params.time_acceleration = s;
    }
    params
}

/// Where a running virtual bench's emulators listen, for
/// `Resources::resolve` to put in place of `sim`.
pub fn emulator_resources(vb: &VirtualBench) -> Resources {
    Resources {
        potentiostat: vb.potentiostat_resource(),
        deflection: vb.deflection_resource(),
        lockin: Some(vb.lockin_resource()),
        temperature: Some(vb.temperature_resource()),
        time_acceleration: vb.speed(),
        bench_health: Some(vegard_engine::BenchHealth(std::sync::Arc::new(
            vb.overrun_probe(),
        ))),
        // `vegard run` needs no truth after recording; its finalisation
        // gets the journal's memory.
        release_bench: Some(vegard_engine::BenchRelease(std::sync::Arc::new(
            vb.journal_release(),
        ))),
    }
}

pub async fn cmd_sim(
    bench_path: Option<&Path>,
    truth: bool,
    speed: Option<f64>,
    json: bool,
) -> Result<ExitCode> {
    let (bench, _) = load_bench(bench_path)?;
    let params = sim_params(&bench, speed);
    if truth {
        let t = vegard_sim::truth(&params)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&t)?);
        } else {
            println!("{t:#?}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let vb = VirtualBench::start(&params)?;
    let p = vb.potentiostat_resource();
    let d = vb.deflection_resource();
    let l = vb.lockin_resource();
    let t = vb.temperature_resource();
    if json {
        println!(
            "{}",
            serde_json::json!({"potentiostat": p, "deflection": d, "lockin": l,
                               "temperature": t, "time_acceleration": vb.speed()})
        );
    } else {
        println!("virtual bench running (Ctrl-C to stop)");
        println!("  potentiostat: {p}");
        println!("  deflection:   {d}");
        println!("  lock-in:      {l}");
        println!("  temperature:  {t}");
        println!("  time acceleration: {}x", vb.speed());
        println!("put these resource strings in a bench config to connect as to real instruments");
    }
    std::io::stdout().flush()?;
    let mut seen = 0usize;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let log = vb.log();
                let mut o = std::io::stdout().lock();
                for e in log.iter().skip(seen) {
                    if json {
                        writeln!(o, "{}", serde_json::to_string(e)?)?;
                    } else if !(e.direction == vegard_sim::Direction::Sent
                        && (e.line.starts_with('P') || e.line.starts_with('#')))
                    {
                        // Humans get commands and replies, not every data line.
                        writeln!(o, "{e}")?;
                    }
                }
                seen = log.len();
                o.flush()?;
            }
        }
    }
    vb.shutdown();
    Ok(ExitCode::SUCCESS)
}
