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
        /// Recipe file (see recipes/).
        recipe: PathBuf,
        /// Bench config to check the recipe against (its limits and
        /// instruments); default configs/sim.toml (the virtual bench).
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
    /// Arrhenius comparison of tau_EIS and tau_ESM over temperature. Given
    /// a folder of runs (a campaign), analyses each and pools the Arrhenius
    /// comparison over all of them (campaign-analysis.json).
    Analyze {
        /// Run folder (as `vegard run` printed it), or a folder of run
        /// folders.
        run: PathBuf,
        /// Print the whole analysis as JSON (also written to analysis.json,
        /// or campaign-analysis.json for a folder of runs).
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
    /// deflection_nm, T_K, step, cycle, ...) as CSV or Parquet; with --raw,
    /// one raw stream as recorded (device and host stamps, no shared time)
    /// as CSV text.
    Export {
        /// Run folder (as `vegard run` printed it).
        run: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormatArg,
        /// Output file; default `aligned.<ext>` (`<STREAM>.csv` with --raw)
        /// in the current folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A raw stream instead of the aligned table: potentiostat,
        /// deflection, eis, lockin, temperature (binary raw/<STREAM>.arrows
        /// to text; works on interrupted runs too).
        #[arg(long, value_name = "STREAM")]
        raw: Option<String>,
    },
    /// Fit an equivalent circuit to an impedance spectrum (impedance.py
    /// circuit syntax) by complex nonlinear least squares, rank candidate
    /// circuits (several --circuit), or fit a temperature series (several
    /// files with --temperature-C/-K or --temperatures) with Arrhenius
    /// lines. Exit status 5 when a fit failed or is unidentifiable (the
    /// reasons on stderr, the numbers still printed with their status);
    /// 2 for bad input.
    #[command(name = "fit-eis")]
    FitEis(FitEisArgs),
    /// Import a potentiostat file and a deflection trace recorded by other
    /// software as a run folder (then `vegard analyze`, `report`, `export`
    /// and `watch` work on it as on a native run). The trace's clock is put
    /// on the potentiostat's by sync edges, the files' start timestamps, or
    /// cross-correlation of the deflection with the charge; the method and
    /// its error estimate go into run.toml [alignment]. Exit 2 for a file
    /// that cannot be read or aligned.
    Import(ImportArgs),
    /// Turn the folder of a run whose process died into a readable run
    /// (status `interrupted`).
    Recover {
        /// Run folder left `running` by a process that died.
        run: PathBuf,
        /// Print one JSON object (what was recovered and set aside).
        #[arg(long)]
        json: bool,
    },
}

/// `vegard import` (README "Commands").
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Potentiostat time series (EC-Lab .mpt/.mpr, Gamry .DTA, CHI text,
    /// CSV with time, E and I columns); a cyclic voltammogram.
    #[arg(long)]
    pub potentiostat: PathBuf,
    /// Deflection trace (CSV/TSV with a time column, Igor .ibw), in nm, m
    /// or V (V needs --invols-nm-per-V); optionally with a sync channel.
    #[arg(long)]
    pub deflection: PathBuf,
    /// How to put the trace on the potentiostat's clock: `edges` (the
    /// trace's sync channel, edges paired with --sync-channel events),
    /// `timestamps` (the files' start times), `xcorr` (cross-correlation of
    /// the deflection with charge and potential), `auto` (edges when the
    /// trace has a sync channel and the potentiostat file cycle numbers,
    /// else timestamps when both files state a start time, else xcorr).
    #[arg(long, value_enum, default_value = "auto")]
    pub sync: SyncArg,
    /// Which potentiostat instants the sync edges mark: `cycles` (its
    /// trigger output toggled at the first sample of every cycle) or
    /// `start` (one edge at its first sample: offset only).
    #[arg(long, value_enum, default_value = "cycles")]
    pub sync_channel: SyncChannelArg,
    /// 1σ disagreement of the two PCs' clocks for --sync timestamps, s.
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    pub timestamp_uncertainty_s: f64,
    /// Inverse optical lever sensitivity (nm/V) for a trace in volts.
    #[arg(long = "invols-nm-per-V", value_parser = parse_positive)]
    pub invols_nm_per_V: Option<f64>,
    /// With --sync xcorr: fit a clock drift from the lags of windows too.
    #[arg(long)]
    pub xcorr_drift: bool,
    /// Run name (folder slug); default import-<potentiostat file stem>.
    #[arg(long)]
    pub name: Option<String>,
    /// Parent folder for the run folder.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Print one JSON object (run_dir, alignment, deformation_vs_charge, ...).
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SyncArg {
    /// Edges if the trace has a sync channel and the potentiostat file
    /// cycle numbers, else timestamps if both files state a start, else
    /// xcorr.
    Auto,
    /// The trace's sync channel, its edges paired with --sync-channel
    /// instants.
    Edges,
    /// The files' start times (error: --timestamp-uncertainty-s).
    Timestamps,
    /// Cross-correlation of the deflection with charge and potential.
    Xcorr,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SyncChannelArg {
    /// The potentiostat's trigger toggled at the first sample of every
    /// cycle: offset and drift.
    Cycles,
    /// One edge at its first sample: offset only.
    Start,
}

fn parse_positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("must be a number > 0".into()),
    }
}

/// `vegard fit-eis` (README "fit-eis" and "EIS series").
#[derive(clap::Args)]
pub struct FitEisArgs {
    /// CSV spectra of frequency (Hz), Z' (ohm), Z'' (ohm), or one run
    /// folder (with --step: one of its EIS steps). Several files are a
    /// temperature series.
    pub inputs: Vec<PathBuf>,
    /// Circuit, e.g. "R0-p(R1-Wo1,C1)": `-` series, `p(a,b)` parallel,
    /// elements R C L W Wo Ws CPE. Repeat to fit candidates and rank them
    /// by BIC.
    #[arg(long = "circuit", default_value = "R0-p(R1-Wo1,C1)")]
    pub circuits: Vec<String>,
    /// Initial guess, comma separated in parameter order; tried beside the
    /// automatic guess and the global multi-start stage.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub guess: Option<Vec<f64>>,
    /// Residual weighting: unit (plain ohms, impedance.py's default),
    /// modulus (divided by |Z|) or proportional (each part by itself).
    #[arg(long, value_enum, ignore_case = true, default_value = "unit")]
    pub weight: WeightArg,
    /// Keep only points with Z'' < 0 (capacitive), as impedance.py's
    /// ignoreBelowX does.
    #[arg(long)]
    pub capacitive_only: bool,
    /// Also run the lin-KK (Kramers-Kronig) validity test.
    #[arg(long)]
    pub kk: bool,
    /// Plan step index of the EIS step when INPUT is a run folder.
    #[arg(long)]
    pub step: Option<i64>,
    /// LM runs from the global stage's best random starts (0: only the
    /// given and automatic guesses).
    #[arg(long, default_value_t = vegard_analysis::DEFAULT_LM_STARTS)]
    pub starts: usize,
    /// Temperatures of the series in degC, one per file, comma separated.
    #[arg(long = "temperature-C", value_delimiter = ',', allow_hyphen_values = true,
          conflicts_with_all = ["temperature_K", "temperatures"])]
    pub temperature_C: Option<Vec<f64>>,
    /// Temperatures of the series in K, one per file, comma separated.
    #[arg(
        long = "temperature-K",
        value_delimiter = ',',
        conflicts_with = "temperatures"
    )]
    pub temperature_K: Option<Vec<f64>>,
    /// A table of the series: a header `file,T_C` or `file,T_K`, then one
    /// line `path,temperature` per spectrum (paths relative to the table).
    #[arg(long)]
    pub temperatures: Option<PathBuf>,
    /// Activation energies of the series: every resistance, every arc's
    /// tau, the total arc resistance (and conductivities with
    /// --thickness-cm and --area-cm2).
    #[arg(long)]
    pub arrhenius: bool,
    /// Sample thickness (cm), for sigma = L/(R A).
    #[arg(long, requires = "area_cm2")]
    pub thickness_cm: Option<f64>,
    /// Electrode area (cm^2), for sigma = L/(R A).
    #[arg(long, requires = "thickness_cm")]
    pub area_cm2: Option<f64>,
    /// Print the fit (or the series) as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the series report to OUT, in the format its extension names:
    /// `.html` (one self-contained file), `.md` (SVG figures beside it) or
    /// `.json` (every number). Needs a temperature series.
    #[arg(long, value_name = "OUT")]
    pub report: Option<PathBuf>,
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
    /// One self-contained HTML file, figures inline.
    Html,
    /// Markdown, with the figures as SVG files beside it.
    Md,
    /// Every table, figure's data and number as JSON.
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// Comma-separated text, one header line (units in the column names).
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// `vegard fit-eis --weight`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum WeightArg {
    /// Plain ohms (`none` as impedance.py calls it, its default).
    #[value(alias = "none")]
    Unit,
    /// Each residual divided by |Z|.
    Modulus,
    /// The real part divided by |Z'|, the imaginary by |Z''|.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, argument and choice a user can see says what it is
    /// (`vegard help <command>`), so none has to be guessed from its name.
    #[test]
    fn every_command_argument_and_choice_has_help_text() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = sub.get_name();
            if sub.get_about().is_none() {
                missing.push(name.to_owned());
            }
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{name} {id}"));
                }
                if !arg.get_action().takes_values() {
                    continue; // a flag: its true/false are not choices
                }
                for v in arg
                    .get_possible_values()
                    .iter()
                    .filter(|v| !v.is_hide_set())
                {
                    if v.get_help().is_none() {
                        missing.push(format!("{name} {id}={}", v.get_name()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
