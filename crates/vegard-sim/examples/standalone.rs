//! The virtual bench alone, without the `vegard` binary's dependencies (no
//! polars, no tokio): builds in seconds, for working on the emulators against
//! third-party clients (scripts/qcodes-check.sh takes it as its bench with
//! `VEGARD_SIM="cargo run -q -p vegard-sim --example standalone --"`).
//!
//! Prints the same first JSON line as `vegard sim --json` and runs until
//! killed. Argument: a bench config (default configs/sim.toml).

use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("configs/sim.toml"), PathBuf::from);
    let bench = vegard_recipe::load_bench(&path)?;
    let params = bench.sim.clone().unwrap_or_default();
    let vb = vegard_sim::VirtualBench::start(&params)?;
    println!(
        "{{\"potentiostat\":\"{}\",\"deflection\":\"{}\",\"lockin\":\"{}\",\"temperature\":\"{}\",\"time_acceleration\":{}}}",
        vb.potentiostat_resource(),
        vb.deflection_resource(),
        vb.lockin_resource(),
        vb.temperature_resource(),
        vb.speed()
    );
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
