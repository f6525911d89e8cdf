//! Bench-config parsing and validation: defaults fill what the file leaves
//! out (including partial `[sim]` sub-tables), and mistakes are reported at
//! the exact LINE:COL.
#![allow(clippy::unwrap_used)]

use vegard_recipe::{ClockParams, SimParams, load_bench, parse_bench};

const BENCH: &str = r#"[bench]
name = "virtual"

[instruments.potentiostat]
driver = "methodscript"
resource = "sim"
current_range_max_A = 0.01

[instruments.deflection]
driver = "scpi-dmm"
resource = "sim"
sample_interval_s = 0.001
invols_nm_per_V = 50.0
spring_constant_N_per_m = 1.0

[sim]
seed = 7
time_acceleration = 10.0

[sim.film]
thickness_m = 5e-7

[sim.clocks.deflection]
drift_ppm = 30.0

[sim.faults]
current_spike_after_s = 5.0
"#;

/// `BENCH` with one substring replaced; expects an error: (line, col, message).
fn err(from: &str, to: &str) -> (usize, usize, String) {
    assert!(BENCH.contains(from), "{from}");
    match parse_bench(&BENCH.replacen(from, to, 1), "bench.toml") {
        Ok(b) => panic!("expected an error for {from} -> {to}, parsed {b:?}"),
        Err(e) => {
            let (line, col) = e.position().unwrap();
            (line, col, e.message())
        }
    }
}

#[test]
fn partial_sim_tables_are_completed_from_defaults() {
    let b = parse_bench(BENCH, "bench.toml").unwrap();
    let d = SimParams::default();
    let sim = b.sim.unwrap();
    assert_eq!(sim.seed, 7);
    assert_eq!(sim.time_acceleration, 10.0);
    // Given key kept, the rest of the same table from the defaults.
    assert_eq!(sim.film.thickness_m, 5e-7);
    assert_eq!(sim.film.area_m2, d.film.area_m2);
    assert_eq!(sim.film.nodes, d.film.nodes);
    assert_eq!(
        sim.clocks.deflection,
        ClockParams {
            drift_ppm: 30.0,
            ..d.clocks.deflection.clone()
        }
    );
    // Tables absent from the file: entirely default.
    assert_eq!(sim.clocks.potentiostat, d.clocks.potentiostat);
    assert_eq!(sim.kinetics, d.kinetics);
    assert_eq!(sim.faults.current_spike_after_s, Some(5.0));
    assert_eq!(sim.faults.potentiostat_error_after_s, None);
    assert_eq!(sim.faults.current_spike_A, d.faults.current_spike_A);
    assert_eq!(sim.strain, d.strain);

    assert_eq!(b.bench.name, "virtual");
    let pot = &b.instruments.potentiostat;
    assert_eq!(
        (pot.baud, pot.timeout_s, pot.current_range_min_A),
        (230_400, 2.0, 1e-9)
    );
    let defl = &b.instruments.deflection;
    assert_eq!((defl.max_samples, defl.range_V), (1_000_000, 10.0));
}

/// configs/sim.toml promises that omitted keys take the values it states:
/// its `[sim]` table must be the built-in defaults, key for key.
#[test]
fn shipped_sim_config_states_the_defaults() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let b = load_bench(&root.join("configs/sim.toml")).unwrap();
    let sim = b.sim.unwrap();
    assert_eq!(sim, SimParams::default());
    // The temperature keys: the bench runs at the reference temperature.
    assert_eq!(sim.film.Ea_D_eV, 0.45);
    assert_eq!(sim.kinetics.Ea_k0_eV, 0.35);
    assert_eq!((sim.cell.T_K, sim.cell.T_ref_K), (298.15, 298.15));
}

#[test]
fn sim_resource_without_sim_table_gets_the_default_bench() {
    let (head, _) = BENCH.split_once("[sim]").unwrap();
    let b = parse_bench(head, "bench.toml").unwrap();
    assert_eq!(b.sim, Some(SimParams::default()));
}

#[test]
fn hardware_bench_has_no_sim() {
    let (head, _) = BENCH.split_once("[sim]").unwrap();
    let text = head
        .replacen("\"sim\"", "\"ASRL/dev/ttyACM0::INSTR\"", 1)
        .replacen("\"sim\"", "\"TCPIP0::10.0.0.5::5025::SOCKET\"", 1);
    let b = parse_bench(&text, "bench.toml").unwrap();
    assert_eq!(b.sim, None);
    assert_eq!(
        b.instruments.potentiostat.resource,
        "ASRL/dev/ttyACM0::INSTR"
    );
}

#[test]
fn unknown_driver_lists_the_known_ones() {
    let (line, col, msg) = err("driver = \"methodscript\"", "driver = \"emstat\"");
    assert_eq!((line, col), (5, 1));
    assert_eq!(
        msg,
        "unknown potentiostat driver `emstat`; known drivers: methodscript"
    );

    let (line, col, msg) = err("driver = \"scpi-dmm\"", "driver = \"visa\"");
    assert_eq!((line, col), (10, 1));
    assert_eq!(
        msg,
        "unknown deflection driver `visa`; known drivers: scpi-dmm"
    );
}

#[test]
fn resource_strings_must_be_visa_like_and_fit_the_driver() {
    let (line, col, msg) = err("resource = \"sim\"", "resource = \"/dev/ttyACM0\"");
    assert_eq!((line, col), (6, 1));
    assert!(msg.contains("is not a VISA resource string"), "{msg}");

    let (_, _, msg) = err("resource = \"sim\"", "resource = \"ASRL3::INSTR\"");
    assert!(
        msg.contains("numeric ASRL not supported, give the device path"),
        "{msg}"
    );

    let (line, col, msg) = err(
        "resource = \"sim\"\nsample",
        "resource = \"ASRL/dev/ttyUSB0::INSTR\"\nsample",
    );
    assert_eq!((line, col), (11, 1));
    assert_eq!(
        msg,
        "driver `scpi-dmm` talks over a TCP socket (`TCPIP::<host>::<port>::SOCKET`) or `sim` \
         (got `ASRL/dev/ttyUSB0::INSTR`)"
    );
}

#[test]
fn instrument_numbers_are_checked_at_their_keys() {
    let cases: &[(&str, &str, (usize, usize), &str)] = &[
        (
            "invols_nm_per_V = 50.0",
            "invols_nm_per_V = 0",
            (13, 1),
            "invols_nm_per_V must be > 0 (got 0.0)",
        ),
        (
            "spring_constant_N_per_m = 1.0",
            "spring_constant_N_per_m = -1.0",
            (14, 1),
            "spring_constant_N_per_m must be > 0 (got -1.0)",
        ),
        (
            "sample_interval_s = 0.001",
            "sample_interval_s = 0",
            (12, 1),
            "sample_interval_s must be > 0 (got 0.0)",
        ),
        (
            "current_range_max_A = 0.01",
            "current_range_max_A = 0.01\ncurrent_range_min_A = 0.1",
            (8, 1),
            "current_range_min_A must be <= current_range_max_A = 0.01 A (got 0.1)",
        ),
    ];
    for (from, to, pos, want) in cases {
        let (line, col, msg) = err(from, to);
        assert_eq!(((line, col), msg.as_str()), (*pos, *want), "{from} -> {to}");
    }
}

#[test]
fn sim_values_are_checked_at_their_keys() {
    let cases: &[(&str, &str, (usize, usize), &str)] = &[
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nnodes = 5",
            (22, 1),
            "nodes must be >= 10 (got 5)",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = -5e-7",
            (21, 1),
            "thickness_m must be > 0 (got -5e-7)",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nx_initial = 1.0",
            (22, 1),
            "x_initial must be > 0 and < 1 (got 1.0)",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nD_m2_per_s = 0",
            (22, 1),
            "D_m2_per_s must be > 0 (got 0.0)",
        ),
        (
            "time_acceleration = 10.0",
            "time_acceleration = 5000",
            (18, 1),
            "time_acceleration must be > 0 and <= 1000.0 (got 5000.0)",
        ),
        (
            "time_acceleration = 10.0",
            "time_acceleration = 0",
            (18, 1),
            "time_acceleration must be > 0 and <= 1000.0 (got 0.0)",
        ),
        (
            "[sim.film]",
            "[sim.cell]\nT_K = 0\n\n[sim.film]",
            (21, 1),
            "T_K must be > 0 (got 0.0)",
        ),
        (
            "[sim.film]",
            "[sim.film.x]",
            (20, 11),
            "unknown key `x`, expected one of `thickness_m`, `area_m2`, `c_max_mol_per_m3`, \
             `x_initial`, `D_m2_per_s`, `Ea_D_eV`, `E0_V`, `z`, `nodes`",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nEa_D_eV = -0.1",
            (22, 1),
            "Ea_D_eV must be >= 0 and < 3.0 eV (got -0.1)",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nEa_D_eV = 43000.0",
            (22, 1),
            "Ea_D_eV must be >= 0 and < 3.0 eV (got 43000.0)",
        ),
        (
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nEa_D_eV = nan",
            (22, 1),
            "Ea_D_eV must be >= 0 and < 3.0 eV (got NaN)",
        ),
        (
            "[sim.film]",
            "[sim.kinetics]\nEa_k0_eV = 3.0\n\n[sim.film]",
            (21, 1),
            "Ea_k0_eV must be >= 0 and < 3.0 eV (got 3.0)",
        ),
        (
            "[sim.film]",
            "[sim.cell]\nT_ref_K = -298.15\n\n[sim.film]",
            (21, 1),
            "T_ref_K must be > 0 (got -298.15)",
        ),
    ];
    for (from, to, pos, want) in cases {
        let (line, col, msg) = err(from, to);
        assert_eq!(((line, col), msg.as_str()), (*pos, *want), "{from} -> {to}");
    }
}

#[test]
fn unknown_missing_and_mistyped_keys_have_positions() {
    let (line, col, msg) = err("thickness_m = 5e-7", "thicknes_m = 5e-7");
    assert_eq!((line, col), (21, 1));
    assert!(msg.starts_with("unknown key `thicknes_m`"), "{msg}");

    let (line, col, msg) = err("drift_ppm = 30.0", "  drift = 30.0");
    assert_eq!((line, col), (24, 3));
    assert!(msg.starts_with("unknown key `drift`"), "{msg}");

    let (line, col, msg) = err("invols_nm_per_V = 50.0\n", "");
    assert_eq!((line, col), (9, 1));
    assert_eq!(msg, "missing key `invols_nm_per_V`");

    // A float where the buffer size wants an integer.
    let (line, col, msg) = err(
        "sample_interval_s = 0.001",
        "sample_interval_s = 0.001\nmax_samples = 1e6",
    );
    assert_eq!((line, col), (13, 15));
    assert!(msg.contains("invalid type: floating point"), "{msg}");
}

#[test]
fn unreadable_bench_names_the_file() {
    let e = load_bench(std::path::Path::new("/nonexistent/bench.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/bench.toml: cannot read: "),
        "{e}"
    );
}

/// The recipes and bench configs shipped in the repository must stay valid
/// against each other: they are what a new user runs first.
#[test]
fn shipped_recipes_and_configs_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let toml_files = |dir: &str| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    };
    let benches: Vec<_> = toml_files("configs")
        .iter()
        .map(|p| load_bench(p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let recipes = toml_files("recipes");
    assert!(!benches.is_empty() && !recipes.is_empty());
    for path in &recipes {
        let src = vegard_recipe::Source::read(path).unwrap();
        let recipe =
            vegard_recipe::parse_recipe(&src.text, &src.file).unwrap_or_else(|e| panic!("{e}"));
        for bench in &benches {
            vegard_recipe::validate_with_bench(&recipe, &src, bench)
                .unwrap_or_else(|e| panic!("{e} (bench {:?})", bench.bench.name));
        }
    }
}
