//! The command line as clap sees it: every subcommand and argument, checked
//! once here (value enums, ranges) so the command modules get typed values.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vegard",
    version,
    about = "In-situ electrochemistry + electrochemical strain microscopy",
    long_about = "Runs TOML recipes on a potentiostat and a passive AFM probe sharing one clock, \
                  and analyses deformation vs charge. Without hardware everything runs on the \
                  built-in virtual bench (configs/sim.toml)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run a recipe on a bench and finalise the run folder.
    Run {
        /// Recipe file (see recipes/).
        recipe: PathBuf,
        /// Bench config; default configs/sim.toml (the virtual bench).
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Parent folder for run folders.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Time acceleration of the virtual bench (simulated s per wall s).
        #[arg(long, value_parser = parse_speed, allow_negative_numbers = true)]
        speed: Option<f64>,
        /// Print one JSON object instead of progress lines.
        #[arg(long)]
        json: bool,
        /// Progress lines instead of the dashboard, even on a terminal (the
        /// dashboard opens only when stdin and stdout are terminals).
        #[arg(long)]
        no_tui: bool,
        /// Testing only: make an engine task fail on purpose.
        #[arg(long, hide = true, value_parser = ["panic-deflection"])]
        inject_fault: Option<String>,
    },
    /// The dashboard on a run folder: live while `vegard run` records into
    /// it (from another terminal, e.g. over SSH), or a replay of a finished
    /// run. Read-only: q leaves.
    Watch {
        /// Run folder (runs/<UTC start>_<name>/).
        run: PathBuf,
    },
    /// Check a recipe (and its fit to a bench) without touching hardware.
    Validate {
        recipe: PathBuf,
        #[arg(long)]
        bench: Option<PathBuf>,
    },
    /// Serve the virtual bench standalone, or print its ground truth.
    Sim {
        /// Bench config; default configs/sim.toml (or the built-in copy).
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Print the ground-truth quantities the bench implies, then exit.
        #[arg(long)]
        truth: bool,
        /// Time acceleration (overrides [sim] time_acceleration).
        #[arg(long, value_parser = parse_speed, allow_negative_numbers = true)]
        speed: Option<f64>,
        /// Machine-readable output (JSON lines while serving).
        #[arg(long)]
        json: bool,
    },
    /// Analyse a finished run: deformation vs charge per CV step and cycle,
    /// circuit fits of EIS steps, film-transfer fits of ESM sweeps, and the
    /// Arrhenius comparison of tau_EIS and tau_ESM over temperature.
    Analyze {
        /// Run folder (as `vegard run` printed it).
        run: PathBuf,
        /// Print the whole analysis as JSON (also written to analysis.json).
        #[arg(long)]
        json: bool,
        /// Keep EIS and ESM sweeps that recorded fewer points than planned
        /// (a run stopped during them) in the Arrhenius fits; by default
        /// they are fitted but left out, with a warning.
        #[arg(long)]
        include_partial_sweeps: bool,
    },
    /// Write a report of a finished run, or of a campaign (a folder of run
    /// folders): every plot and table as one self-contained HTML file,
    /// Markdown with SVG figures beside it, or JSON with every number.
    /// Exit status 5 when an analysis the report needs failed.
    Report {
        /// Run folder, or a folder of run folders (one report across them).
        run_or_folder: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "html")]
        format: ReportFormatArg,
        /// Output file; default `report.<ext>` in the run folder
        /// (`campaign-report.<ext>` in a campaign folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report spec TOML: sections, their order, the circuit to fit
        /// (see README "Reports").
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Write a run's aligned table (shared clock: t_s, E_V, I_A,
    /// deflection_nm, T_K, step, cycle, ...) as CSV or Parquet.
    Export {
        run: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormatArg,
        /// Output file; default `aligned.<ext>` in the current folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fit an equivalent circuit to an impedance spectrum (impedance.py
    /// circuit syntax) by complex nonlinear least squares.
    FitEis {
        /// A CSV of frequency (Hz), Z' (ohm), Z'' (ohm), or a run folder
        /// (with --step: one of its EIS steps).
        input: PathBuf,
        /// Circuit, e.g. "R0-p(R1-Wo1,C1)": `-` series, `p(a,b)` parallel,
        /// elements R C L W Wo Ws CPE.
        #[arg(long, default_value = "R0-p(R1-Wo1,C1)")]
        circuit: String,
        /// Initial guess, comma separated in parameter order (default:
        /// estimated from the spectrum).
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
        guess: Option<Vec<f64>>,
        /// Residual weighting: unit (plain ohms, impedance.py's default),
        /// modulus (divided by |Z|) or proportional (each part by itself).
        #[arg(long, value_enum, ignore_case = true, default_value = "unit")]
        weight: WeightArg,
        /// Keep only points with Z'' < 0 (capacitive), as impedance.py's
        /// ignoreBelowX does.
        #[arg(long)]
        capacitive_only: bool,
        /// Also run the lin-KK (Kramers-Kronig) validity test.
        #[arg(long)]
        kk: bool,
        /// Plan step index of the EIS step when INPUT is a run folder.
        #[arg(long)]
        step: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Turn the folder of a run whose process died into a readable run
    /// (status `interrupted`).
    Recover {
        run: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// `--speed`: the virtual bench's time acceleration, in the range the
/// bench config's `[sim] time_acceleration` allows. Checked here, once, so
/// clap rejects a bad value with its usage message and exit status 2.
fn parse_speed(text: &str) -> Result<f64, String> {
    let max = vegard_recipe::MAX_TIME_ACCELERATION;
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= max => Ok(s),
        _ => Err(format!("must be a number > 0 and <= {max}")),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormatArg {
    Html,
    Md,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Parquet,
}

/// `vegard fit-eis --weight`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum WeightArg {
    /// `none` as impedance.py calls it.
    #[value(alias = "none")]
    Unit,
    Modulus,
    Proportional,
}

impl WeightArg {
    pub fn weighting(self) -> vegard_analysis::EisWeighting {
        match self {
            WeightArg::Unit => vegard_analysis::EisWeighting::Unit,
            WeightArg::Modulus => vegard_analysis::EisWeighting::Modulus,
            WeightArg::Proportional => vegard_analysis::EisWeighting::Proportional,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightArg::Unit => "unit",
            WeightArg::Modulus => "modulus",
            WeightArg::Proportional => "proportional",
        }
    }
}
