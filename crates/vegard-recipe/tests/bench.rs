//! Bench-config parsing and validation: defaults fill what the file leaves
//! out (including partial `[sim]` sub-tables), and mistakes are reported at
//! the exact LINE:COL.
#![allow(clippy::unwrap_used)]

use vegard_recipe::{
    BenchConfig, ClockParams, Recipe, Resource, SimParams, Source, Step, load_bench, parse_bench,
    parse_recipe, validate_with_bench,
};

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
    // The stage and the impedance noise.
    assert_eq!(
        (
            sim.thermal.tau_s,
            sim.thermal.damping,
            sim.thermal.sensor_noise_K_rms
        ),
        (20.0, 0.6, 0.01)
    );
    assert_eq!(sim.eis.noise_rel, 0.002);
    // And the instruments the new techniques need.
    let lockin = b.instruments.lockin.unwrap();
    assert_eq!(
        (lockin.driver.as_str(), &lockin.resource),
        ("sr860", &Resource::Sim)
    );
    assert_eq!((lockin.sine_to_cell_V_per_V, lockin.timeout_s), (1.0, 2.0));
    let stage = b.instruments.temperature.unwrap();
    assert_eq!(
        (
            stage.driver.as_str(),
            &stage.resource,
            stage.output,
            stage.input.as_str(),
            stage.heater_range
        ),
        ("ls336", &Resource::Sim, 1, "A", 3)
    );
}

/// configs/sim-nonideal.toml is configs/sim.toml with the two non-ideal
/// deflection mechanisms switched on, and nothing else changed.
#[test]
fn shipped_non_ideal_config_differs_from_the_default_only_in_its_switches() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ideal = load_bench(&root.join("configs/sim.toml")).unwrap();
    let b = load_bench(&root.join("configs/sim-nonideal.toml")).unwrap();
    let sim = b.sim.clone().unwrap();
    assert_eq!(sim.strain.dOmega_dx_m3_per_mol, 3e-6);
    assert_eq!(
        (sim.electrostatic.dC_dz_F_per_m, sim.electrostatic.V_cpd_V),
        (2e-9, -0.1)
    );
    let mut back = sim.clone();
    back.strain.dOmega_dx_m3_per_mol = 0.0;
    back.electrostatic = Default::default();
    assert_eq!(back, SimParams::default());
    assert_eq!(b.instruments, ideal.instruments);
    // The default bench writes the keys out, switched off.
    let text = std::fs::read_to_string(root.join("configs/sim.toml")).unwrap();
    for key in [
        "dOmega_dx_m3_per_mol = 0.0",
        "[sim.electrostatic]",
        "dC_dz_F_per_m = 0.0",
        "V_cpd_V = 0.0",
    ] {
        assert!(text.contains(key), "configs/sim.toml lacks `{key}`");
    }
}

#[test]
fn non_ideal_sim_keys_are_parsed_and_checked_at_their_keys() {
    let text = BENCH.replacen(
        "[sim.film]",
        "[sim.strain]\ndOmega_dx_m3_per_mol = 2e-6\n\n\
         [sim.electrostatic]\ndC_dz_F_per_m = 1e-9\nV_cpd_V = 0.25\n\n[sim.film]",
        1,
    );
    let sim = parse_bench(&text, "bench.toml").unwrap().sim.unwrap();
    assert_eq!(sim.strain.dOmega_dx_m3_per_mol, 2e-6);
    assert_eq!(sim.strain.Omega_m3_per_mol, 3.2e-6);
    assert_eq!(
        (sim.electrostatic.dC_dz_F_per_m, sim.electrostatic.V_cpd_V),
        (1e-9, 0.25)
    );
    // With Omega = 3.2e-6 at x_initial = 0.5 (defaults), Omega(x) > 0 on
    // 0..1 needs -6.4e-6 < dOmega_dx < 6.4e-6.
    let range = "so that Omega(x) = Omega_m3_per_mol + dOmega_dx_m3_per_mol (x - x_initial) \
                 stays > 0 for 0 <= x <= 1";
    let cases: &[(&str, &str, (usize, usize), String)] = &[
        (
            "[sim.film]",
            "[sim.strain]\ndOmega_dx_m3_per_mol = 7e-6\n\n[sim.film]",
            (21, 1),
            format!("dOmega_dx_m3_per_mol must be > -6.4e-6 and < 6.4e-6 {range} (got 7e-6)"),
        ),
        (
            "[sim.film]",
            "[sim.strain]\nOmega_m3_per_mol = 3e-6\n  dOmega_dx_m3_per_mol = -6.4e-6\n\n[sim.film]",
            (22, 3),
            format!("dOmega_dx_m3_per_mol must be > -6e-6 and < 6e-6 {range} (got -6.4e-6)"),
        ),
        (
            // The allowed range follows x_initial: Omega(0) = 3.2e-6 - 0.8 d.
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nx_initial = 0.8\n\n[sim.strain]\ndOmega_dx_m3_per_mol = 5e-6",
            (25, 1),
            format!("dOmega_dx_m3_per_mol must be > -1.6e-5 and < 4e-6 {range} (got 5e-6)"),
        ),
        (
            "[sim.film]",
            "[sim.strain]\nOmega_m3_per_mol = 0.0\ndOmega_dx_m3_per_mol = 1e-7\n\n[sim.film]",
            (22, 1),
            "dOmega_dx_m3_per_mol must be 0 unless Omega_m3_per_mol > 0 (Omega(x) must stay > 0 \
             for 0 <= x <= 1) (got 1e-7)"
                .to_owned(),
        ),
        (
            "[sim.film]",
            "[sim.strain]\ndOmega_dx_m3_per_mol = nan\n\n[sim.film]",
            (21, 1),
            "dOmega_dx_m3_per_mol must be a finite number (got NaN)".to_owned(),
        ),
        (
            "[sim.film]",
            "[sim.electrostatic]\nV_cpd_V = 0.1\ndC_dz_F_per_m = -2e-9\n\n[sim.film]",
            (22, 1),
            "dC_dz_F_per_m must be >= 0 (got -2e-9)".to_owned(),
        ),
        (
            "[sim.film]",
            "[sim.electrostatic]\nV_cpd_V = inf\n\n[sim.film]",
            (21, 1),
            "V_cpd_V must be a finite number (got inf)".to_owned(),
        ),
        (
            "[sim.film]",
            "[sim.electrostatic]\nV_cpd = 0.1\n\n[sim.film]",
            (21, 1),
            "unknown key `V_cpd`, expected `dC_dz_F_per_m` or `V_cpd_V` (did you mean `V_cpd_V`?)"
                .to_owned(),
        ),
    ];
    for (from, to, pos, want) in cases {
        let (line, col, msg) = err(from, to);
        assert_eq!(
            ((line, col), msg.as_str()),
            (*pos, want.as_str()),
            "{from} -> {to}"
        );
    }
    // Just inside the range, and a strain-free film with constant Omega.
    for ok in [
        "[sim.strain]\ndOmega_dx_m3_per_mol = 6.39e-6\n\n[sim.film]",
        "[sim.strain]\ndOmega_dx_m3_per_mol = -6.39e-6\n\n[sim.film]",
        "[sim.strain]\nOmega_m3_per_mol = 0.0\n\n[sim.film]",
        "[sim.electrostatic]\ndC_dz_F_per_m = 0.0\nV_cpd_V = -3.0\n\n[sim.film]",
    ] {
        let text = BENCH.replacen("[sim.film]", ok, 1);
        assert!(parse_bench(&text, "bench.toml").is_ok(), "{ok}");
    }
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
        Resource::Serial {
            path: "/dev/ttyACM0".into()
        }
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
    // Resource strings are parsed while the file is read (they are typed in
    // the schema), so a malformed one points at its value, like any other
    // value of the wrong form.
    let (line, col, msg) = err("resource = \"sim\"", "resource = \"/dev/ttyACM0\"");
    assert_eq!((line, col), (6, 12));
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
            "nodes must be >= 10 and <= 1000 (the profile is resolved at 200; every node is \
             integrated at every sample) (got 5)",
        ),
        (
            // An allocation size: validate passed it and `run` aborted.
            "thickness_m = 5e-7",
            "thickness_m = 5e-7\nnodes = 1000000000000",
            (22, 1),
            "nodes must be >= 10 and <= 1000 (the profile is resolved at 200; every node is \
             integrated at every sample) (got 1000000000000)",
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

/// `BENCH` (no `[sim]`) plus a lock-in and a temperature stage.
fn bench_with_extras() -> String {
    let (head, _) = BENCH.split_once("[sim]").unwrap();
    format!(
        "{head}[instruments.lockin]\ndriver = \"sr860\"\nresource = \"TCPIP::10.0.0.30::23::SOCKET\"\n\n\
         [instruments.temperature]\ndriver = \"ls336\"\nresource = \"TCPIP::10.0.0.40::7777::SOCKET\"\n"
    )
}

#[test]
fn lockin_and_stage_tables_are_optional_with_defaults() {
    let (head, _) = BENCH.split_once("[sim]").unwrap();
    let b = parse_bench(head, "bench.toml").unwrap();
    assert_eq!(
        (b.instruments.lockin, b.instruments.temperature),
        (None, None)
    );

    let b = parse_bench(&bench_with_extras(), "bench.toml").unwrap();
    let lockin = b.instruments.lockin.unwrap();
    assert_eq!((lockin.sine_to_cell_V_per_V, lockin.timeout_s), (1.0, 2.0));
    let stage = b.instruments.temperature.unwrap();
    assert_eq!(
        (
            stage.output,
            stage.input.as_str(),
            stage.heater_range,
            stage.timeout_s
        ),
        (1, "A", 3, 2.0)
    );
    // A virtual stage alone is enough to bring in the default [sim].
    let text = bench_with_extras().replace("TCPIP::10.0.0.40::7777::SOCKET", "sim");
    let text = text
        .replacen(
            "resource = \"sim\"",
            "resource = \"ASRL/dev/ttyACM0::INSTR\"",
            1,
        )
        .replacen(
            "resource = \"sim\"",
            "resource = \"TCPIP::10.0.0.5::5025::SOCKET\"",
            1,
        );
    let b = parse_bench(&text, "bench.toml").unwrap();
    assert_eq!(b.sim, Some(SimParams::default()));
}

#[test]
fn lockin_and_stage_mistakes_point_at_their_keys() {
    let text = bench_with_extras();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "driver = \"sr860\"",
            "driver = \"sr830\"",
            "driver = \"sr830\"",
            "unknown lockin driver `sr830`; known drivers: sr860",
        ),
        (
            "driver = \"ls336\"",
            "driver = \"ls335\"",
            "driver = \"ls335\"",
            "unknown temperature driver `ls335`; known drivers: ls336",
        ),
        (
            "resource = \"TCPIP::10.0.0.40::7777::SOCKET\"",
            "resource = \"ASRL/dev/ttyUSB1::INSTR\"",
            "resource = \"ASRL/dev/ttyUSB1::INSTR\"",
            "driver `ls336` talks over a TCP socket (`TCPIP::<host>::<port>::SOCKET`) or `sim` \
             (got `ASRL/dev/ttyUSB1::INSTR`)",
        ),
        (
            "driver = \"sr860\"",
            "driver = \"sr860\"\nsine_to_cell_V_per_V = 0",
            "sine_to_cell_V_per_V = 0",
            "sine_to_cell_V_per_V must be > 0 (got 0.0)",
        ),
        (
            "driver = \"ls336\"",
            "driver = \"ls336\"\noutput = 3",
            "output = 3",
            "output must be 1 or 2 (the heater outputs) (got 3)",
        ),
        (
            "driver = \"ls336\"",
            "driver = \"ls336\"\ninput = \"E\"",
            "input = \"E\"",
            "input must be one of A, B, C, D, D1, D2, D3, D4, D5 (got \"E\")",
        ),
        (
            "driver = \"ls336\"",
            "driver = \"ls336\"\nheater_range = 0",
            "heater_range = 0",
            "heater_range must be 1 (low), 2 (medium) or 3 (high) (got 0)",
        ),
        (
            "driver = \"ls336\"",
            "driver = \"ls336\"\ntimeout_s = -1",
            "timeout_s = -1",
            "timeout_s must be > 0 (got -1.0)",
        ),
    ];
    for (from, to, needle, want) in cases {
        assert_eq!(text.matches(from).count(), 1, "{from}");
        let changed = text.replacen(from, to, 1);
        let e = parse_bench(&changed, "bench.toml").unwrap_err();
        let at = changed.find(needle).unwrap();
        let line = changed[..at].matches('\n').count() + 1;
        assert_eq!(
            (e.position().unwrap(), e.message().as_str()),
            ((line, 1), *want),
            "{from} -> {to}"
        );
    }
}

#[test]
fn sim_stage_and_eis_noise_are_checked_at_their_keys() {
    let cases: &[(&str, &str, (usize, usize), &str)] = &[
        (
            "[sim.film]",
            "[sim.thermal]\ntau_s = 0\n\n[sim.film]",
            (21, 1),
            "tau_s must be > 0 (got 0.0)",
        ),
        (
            "[sim.film]",
            "[sim.thermal]\ndamping = -0.6\n\n[sim.film]",
            (21, 1),
            "damping must be > 0 (got -0.6)",
        ),
        (
            "[sim.film]",
            "[sim.eis]\nnoise_rel = 1.5\n\n[sim.film]",
            (21, 1),
            "noise_rel must be >= 0 and < 1 (got 1.5)",
        ),
    ];
    for (from, to, pos, want) in cases {
        let (line, col, msg) = err(from, to);
        assert_eq!(((line, col), msg.as_str()), (*pos, *want), "{from} -> {to}");
    }
    // A partial [sim.thermal] keeps the other defaults.
    let text = BENCH.replace("[sim.film]", "[sim.thermal]\ndamping = 1.2\n\n[sim.film]");
    let sim = parse_bench(&text, "bench.toml").unwrap().sim.unwrap();
    assert_eq!((sim.thermal.tau_s, sim.thermal.damping), (20.0, 1.2));
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn toml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// What a recipe needs beyond potentiostat and digitizer: (lock-in, stage).
fn needs(recipe: &Recipe) -> (bool, bool) {
    let plan = recipe.plan();
    (
        plan.iter().any(|p| matches!(p.step, Step::EsmSweep(_))),
        plan.iter().any(|p| matches!(p.step, Step::Temperature(_))),
    )
}

/// The recipes and bench configs shipped in the repository must stay valid
/// against each other: they are what a new user runs first. A bench without
/// the lock-in or the stage a recipe needs must refuse it, saying what is
/// missing, before anything touches hardware.
#[test]
fn shipped_recipes_and_configs_validate() {
    let benches: Vec<(String, BenchConfig)> = toml_files("configs")
        .iter()
        .map(|p| {
            let src = Source::read(p).unwrap();
            let bench = parse_bench(&src.text, &src.file).unwrap_or_else(|e| panic!("{e}"));
            (src.text, bench)
        })
        .collect();
    // The virtual bench without the optional tables, as an older config
    // would be.
    let sim_text = &benches
        .iter()
        .find(|(_, b)| b.instruments.potentiostat.resource.is_sim())
        .unwrap()
        .0;
    let bare_text = strip_table(
        &strip_table(sim_text, "[instruments.lockin]"),
        "[instruments.temperature]",
    );
    let bare = parse_bench(&bare_text, "bare.toml").unwrap();
    assert_eq!(
        (&bare.instruments.lockin, &bare.instruments.temperature),
        (&None, &None)
    );

    let recipes = toml_files("recipes");
    assert!(benches.len() >= 2 && recipes.len() >= 5);
    let mut refused = 0;
    for path in &recipes {
        let src = Source::read(path).unwrap();
        let recipe = parse_recipe(&src.text, &src.file).unwrap_or_else(|e| panic!("{e}"));
        let (lockin, stage) = needs(&recipe);
        for (_, bench) in &benches {
            let has = (bench.instruments.lockin.is_some() || !lockin)
                && (bench.instruments.temperature.is_some() || !stage);
            let result = validate_with_bench(&recipe, &src, bench);
            if has {
                result.unwrap_or_else(|e| panic!("{e} (bench {:?})", bench.bench.name));
            } else {
                assert!(result.is_err(), "{}", src.file);
            }
        }
        match validate_with_bench(&recipe, &src, &bare) {
            Ok(()) => assert_eq!((lockin, stage), (false, false), "{}", src.file),
            Err(e) => {
                refused += 1;
                let msg = e.message();
                if stage {
                    assert!(msg.contains("needs a temperature stage"), "{e}");
                    assert!(msg.contains("[instruments.temperature]"), "{e}");
                } else {
                    assert!(msg.contains("needs a lock-in amplifier"), "{e}");
                    assert!(msg.contains("[instruments.lockin]"), "{e}");
                }
            }
        }
    }
    // esm-sweep.toml and arrhenius-campaign.toml at least.
    assert!(refused >= 2);
}

/// `text` without the table starting at `header` (up to the next header).
fn strip_table(text: &str, header: &str) -> String {
    let start = text.find(header).unwrap();
    let rest = &text[start + header.len()..];
    let end = rest
        .find("\n[")
        .map_or(text.len(), |i| start + header.len() + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

// ---- recipes against a bench ----

const RECIPE_HEAD: &str = r#"[run]
name = "t"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

"#;

const ESM_STEP: &str = r#"[[step]]
kind = "esm_sweep"
dc_V = 0.4
amplitude_V = 0.02
freq_Hz = [1.0, 0.1]
periods = 2
"#;

const SWEEP_STEP: &str = r#"[[step]]
kind = "sweep"
temperature_C = [25.0, 45.0]
tolerance_K = 0.3
hold_s = 30.0
timeout_s = 900.0

  [[step.step]]
  kind = "wait"
  duration_s = 1.0

  [[step.step]]
  kind = "esm_sweep"
  dc_V = 0.4
  amplitude_V = 0.02
  freq_Hz = [1.0, 0.1]
  periods = 2
"#;

fn on_bench(recipe_text: &str, bench_text: &str) -> Result<(), (usize, usize, String)> {
    let src = Source::new("r.toml", recipe_text);
    let recipe = parse_recipe(&src.text, &src.file).unwrap_or_else(|e| panic!("{e}"));
    let bench = parse_bench(bench_text, "bench.toml").unwrap();
    validate_with_bench(&recipe, &src, &bench).map_err(|e| {
        let (line, col) = e.position().unwrap();
        (line, col, e.message())
    })
}

fn bare_bench() -> String {
    BENCH.split_once("[sim]").unwrap().0.to_owned()
}

#[test]
fn esm_sweep_needs_the_lockin_and_says_why() {
    let text = format!("{RECIPE_HEAD}{ESM_STEP}");
    assert_eq!(on_bench(&text, &bench_with_extras()), Ok(()));
    let (line, col, msg) = on_bench(&text, &bare_bench()).unwrap_err();
    // The `kind` of step 1: line 9.
    assert_eq!((line, col), (9, 1));
    assert_eq!(
        msg,
        "step 1 (esm_sweep) needs a lock-in amplifier, and the bench config has no \
         [instruments.lockin]: the lock-in's sine out drives the potentiostat's external \
         input to excite the cell; add it (driver \"sr860\") or run on a bench that has one"
    );
}

#[test]
fn temperature_and_sweep_need_the_stage() {
    let temperature = format!(
        "{RECIPE_HEAD}[[step]]\nkind = \"temperature\"\nsetpoint_K = 310.0\n\
         tolerance_K = 0.3\nhold_s = 30.0\ntimeout_s = 900.0\n"
    );
    assert_eq!(on_bench(&temperature, &bench_with_extras()), Ok(()));
    let (line, col, msg) = on_bench(&temperature, &bare_bench()).unwrap_err();
    assert_eq!((line, col), (9, 1));
    assert!(
        msg.starts_with(
            "step 1 (temperature) needs a temperature stage, and the bench config \
             has no [instruments.temperature]"
        ),
        "{msg}"
    );

    let sweep = format!("{RECIPE_HEAD}{SWEEP_STEP}");
    let (_, _, msg) = on_bench(&sweep, &bare_bench()).unwrap_err();
    assert!(
        msg.starts_with("step 1 (sweep) needs a temperature stage"),
        "{msg}"
    );
    // With a stage but no lock-in: the nested esm_sweep is named by its
    // position inside the sweep.
    let stage_only = strip_table(&bench_with_extras(), "[instruments.lockin]");
    let (line, col, msg) = on_bench(&sweep, &stage_only).unwrap_err();
    assert_eq!((line, col), (20, 3)); // the nested step's `kind`
    assert!(
        msg.starts_with("step 1, nested step 2 (esm_sweep) needs a lock-in amplifier"),
        "{msg}"
    );
    assert_eq!(on_bench(&sweep, &bench_with_extras()), Ok(()));
}

#[test]
fn lockin_range_limits_the_esm_sweep() {
    // Below the SR860's 1 mHz.
    let text = format!("{RECIPE_HEAD}{ESM_STEP}").replace("[1.0, 0.1]", "[1.0, 0.0005]");
    let (line, col, msg) = on_bench(&text, &bench_with_extras()).unwrap_err();
    assert_eq!((line, col), (12, 1)); // freq_Hz
    assert_eq!(
        msg,
        "frequency 0.0005 Hz is outside the SR860's reference range 0.001 to 500000.0 Hz"
    );
    // 20 mV at the cell through a 0.005 V/V input is 4 V of sine out.
    let bench = bench_with_extras().replace(
        "driver = \"sr860\"",
        "driver = \"sr860\"\nsine_to_cell_V_per_V = 0.005",
    );
    let text = format!("{RECIPE_HEAD}{ESM_STEP}");
    let (line, col, msg) = on_bench(&text, &bench).unwrap_err();
    assert_eq!((line, col), (11, 1)); // amplitude_V
    assert!(msg.contains("needs 4.0 V peak of sine out"), "{msg}");
}

#[test]
fn digitizer_buffer_uses_the_recipe_interval_and_each_step_duration() {
    // Time-domain steps are recorded in blocks, one per sync edge: an ESM
    // sweep of 33 s at the bench's 1 ms (36300 readings) validates on a
    // digitizer that takes 1000 per trigger.
    let esm = format!("{RECIPE_HEAD}{ESM_STEP}");
    let blocks = bench_with_extras().replace(
        "sample_interval_s = 0.001",
        "sample_interval_s = 0.001\nmax_samples = 1000",
    );
    assert_eq!(on_bench(&esm, &blocks), Ok(()));

    // EIS keeps one trigger (its loop body runs once per frequency), so its
    // readings must fit one: 1000, 100, 10, 1 Hz: 2.222 s + 4 x 0.05 =
    // 2.422 s -> 2665 samples at 1 ms.
    let eis_step = "[[step]]\nkind = \"eis\"\ndc_V = 0.4\namplitude_V = 0.01\n\
                    freq_Hz = [1000.0, 1.0]\npoints_per_decade = 1\n";
    let eis = format!("{RECIPE_HEAD}{eis_step}");
    let small = bench_with_extras().replace(
        "sample_interval_s = 0.001",
        "sample_interval_s = 0.001\nmax_samples = 2664",
    );
    let (line, col, msg) = on_bench(&eis, &small).unwrap_err();
    assert_eq!((line, col), (12, 20)); // freq_Hz[1]
    assert!(msg.contains("= 2665 deflection samples"), "{msg}");
    assert!(
        msg.contains("(instruments.deflection.sample_interval_s)"),
        "{msg}"
    );
    let fits = small.replace("max_samples = 2664", "max_samples = 2665");
    assert_eq!(on_bench(&eis, &fits), Ok(()));

    // The recipe's override: 2.422 x 1.1 / 0.01 = 267 samples fit in 2664.
    let slow = eis.replace(
        "name = \"t\"",
        "name = \"t\"\ndeflection_sample_interval_s = 0.01",
    );
    assert_eq!(on_bench(&slow, &small), Ok(()));
    let tiny = small.replace("max_samples = 2664", "max_samples = 266");
    let (_, _, msg) = on_bench(&slow, &tiny).unwrap_err();
    assert!(msg.contains("= 267 deflection samples"), "{msg}");
    assert!(msg.contains("(run.deflection_sample_interval_s)"), "{msg}");

    // Nested steps are checked once per planned run, not summed over the
    // sweep: each eis is its own digitizer acquisition.
    let sweep = format!(
        "{RECIPE_HEAD}[[step]]\nkind = \"sweep\"\ntemperature_C = [25.0, 45.0]\n\
         tolerance_K = 0.3\nhold_s = 30.0\ntimeout_s = 900.0\n\n  [[step.step]]\n  \
         kind = \"eis\"\n  dc_V = 0.4\n  amplitude_V = 0.01\n  freq_Hz = [1000.0, 1.0]\n  \
         points_per_decade = 1\n"
    );
    assert_eq!(on_bench(&sweep, &fits), Ok(()));
    let (_, _, msg) = on_bench(&sweep, &small).unwrap_err();
    assert!(msg.starts_with("this eis step records 2.422 s"), "{msg}");
}

#[test]
fn potentiostat_sampling_limits_apply_to_lsv_and_esm() {
    // LSV: 0.5 mV at 1 V/s = 0.5 ms per sample.
    let lsv = format!(
        "{RECIPE_HEAD}[[step]]\nkind = \"lsv\"\nbegin_V = 0.2\nend_V = 0.8\n\
         scan_rate_V_per_s = 1.0\nstep_V = 0.0005\n"
    );
    let (line, col, msg) = on_bench(&lsv, &bench_with_extras()).unwrap_err();
    assert_eq!((line, col), (13, 1)); // step_V
    assert_eq!(
        msg,
        "sample interval step_V / scan_rate_V_per_s = 0.0005 s is below the potentiostat's \
         minimum of 0.001 s"
    );
    assert_eq!(
        on_bench(&lsv.replace("0.0005", "0.002"), &bench_with_extras()),
        Ok(())
    );
    // The cell is on in lsv, eis and esm_sweep: the current limit must be
    // measurable.
    let low_range =
        bench_with_extras().replace("current_range_max_A = 0.01", "current_range_max_A = 0.001");
    let (line, _, msg) = on_bench(&format!("{RECIPE_HEAD}{SWEEP_STEP}"), &low_range).unwrap_err();
    assert_eq!(line, 5);
    assert!(msg.contains("current_range_max_A = 0.001 A"), "{msg}");
}

/// The bench's digitizer interval and sample count within the 34465A's
/// documented limits (shared with the scpi-dmm driver and the emulator).
#[test]
fn the_digitizer_interval_and_count_are_within_the_meters_limits() {
    let (line, col, msg) = err("sample_interval_s = 0.001", "sample_interval_s = 1e-5");
    assert_eq!((line, col), (12, 1), "{msg}");
    assert!(msg.contains("34465A") && msg.contains("50 kSa/s"), "{msg}");
    let (line, _, msg) = err(
        "sample_interval_s = 0.001",
        "sample_interval_s = 0.001\nmax_samples = 2000000",
    );
    assert_eq!(line, 13, "{msg}");
    assert!(msg.contains("<= 1000000"), "{msg}");
    assert!(parse_bench(&BENCH.replacen("0.001", "2e-5", 1), "bench.toml").is_ok());
}
