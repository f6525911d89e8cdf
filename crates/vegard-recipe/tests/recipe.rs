//! Recipe parsing and validation through the public API: the demo recipe is
//! accepted with the right numbers, and each class of mistake is reported at
//! the exact LINE:COL of the key (or value) to fix.
#![allow(clippy::unwrap_used)]

use vegard_recipe::{
    BenchConfig, Recipe, RecipeError, Source, Step, parse_bench, parse_recipe, validate_with_bench,
};

const DEMO: &str = r#"[run]
name = "demo-cv"
sample = "LiMn2O4 thin film (virtual)"
operator = "demo"
notes = "3 CV cycles on the virtual bench"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

[[step]]
kind = "ocp"
duration_s = 2.0
sample_interval_s = 0.01

[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.9, -0.1]
scan_rate_V_per_s = 0.2
step_V = 0.002
cycles = 3
"#;

/// Head shared by the small error cases: 9 lines, so a first `[[step]]`
/// appended to it sits on line 10.
const HEAD: &str = r#"[run]
name = "t"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

# steps follow

"#;

/// Parse `text` expecting an error; return (line, col, message).
fn err(text: &str) -> (usize, usize, String) {
    match parse_recipe(text, "r.toml") {
        Ok(r) => panic!("expected an error, parsed {r:?}"),
        Err(e) => {
            let (line, col) = e.position().unwrap();
            (line, col, e.message())
        }
    }
}

fn with_steps(steps: &str) -> String {
    format!("{HEAD}{steps}")
}

#[test]
fn demo_recipe_parses_with_derived_numbers() {
    let r = parse_recipe(DEMO, "demo.toml").unwrap();
    assert_eq!(r.run.name, "demo-cv");
    assert_eq!(r.run.operator, "demo");
    assert_eq!(r.limits.current_max_A, 0.01);
    assert_eq!(r.limits.potential_window_V, [-0.2, 1.0]);
    assert_eq!(r.steps.len(), 2);
    let Step::Ocp(ocp) = &r.steps[0] else {
        panic!("step 1 should be ocp: {:?}", r.steps[0])
    };
    assert_eq!((ocp.duration_s, ocp.sample_interval_s), (2.0, 0.01));
    let Step::Cv(cv) = &r.steps[1] else {
        panic!("step 2 should be cv: {:?}", r.steps[1])
    };
    assert_eq!(cv.vertex_V, [0.9, -0.1]);
    assert_eq!(cv.cycles, 3);
    // 0.4 -> 0.9 -> -0.1 -> 0.4 is 2.0 V per cycle; at 0.2 V/s that is 10 s,
    // 1000 samples of 2 mV, one every 10 ms.
    assert!((cv.cycle_span_V() - 2.0).abs() < 1e-12);
    assert_eq!(cv.samples_per_cycle(), 1000);
    assert!((cv.sample_interval_s() - 0.01).abs() < 1e-15);
    assert!((r.steps[1].duration_s() - 30.0).abs() < 1e-9);
    assert_eq!(
        r.steps.iter().map(Step::kind_name).collect::<Vec<_>>(),
        ["ocp", "cv"]
    );
}

#[test]
fn wait_step_and_integer_literals_for_floats_are_accepted() {
    let r = parse_recipe(
        &with_steps("[[step]]\nkind = \"wait\"\nduration_s = 5\n"),
        "r.toml",
    )
    .unwrap();
    assert_eq!(r.steps.len(), 1);
    assert!(!r.steps[0].records());
    assert_eq!(r.steps[0].duration_s(), 5.0);
}

#[test]
fn serialized_recipe_reads_back_identically() {
    // run.toml stores the recipe as executed; it must parse to the same thing,
    // through both this crate's parser and the schema's own serde derive.
    let r = parse_recipe(DEMO, "demo.toml").unwrap();
    let text = toml::to_string(&r).unwrap();
    assert_eq!(parse_recipe(&text, "run.toml").unwrap(), r);
    assert_eq!(toml::from_str::<Recipe>(&text).unwrap(), r);
}

#[test]
fn schema_derive_also_rejects_unknown_step_keys() {
    // Other crates may read recipes with plain `toml::from_str`; the tagged
    // enum must not silently drop a misspelt key there either.
    let text = DEMO.replace("cycles = 3", "cycles = 3\nscan_rate = 0.1");
    let e = toml::from_str::<Recipe>(&text).unwrap_err();
    assert!(e.message().contains("unknown field `scan_rate`"), "{e}");
}

#[test]
fn display_is_file_line_col_message() {
    let text = DEMO.replace("scan_rate_V_per_s = 0.2", "scan_rate_V_per_s = -0.1");
    let e = parse_recipe(&text, "recipes/bad.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "recipes/bad.toml:20:1: scan_rate_V_per_s must be > 0 (got -0.1)"
    );
    assert_eq!(e.file(), "recipes/bad.toml");
}

#[test]
fn unknown_key_at_top_level() {
    let text = format!("colour = \"red\"\n{DEMO}");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (1, 1));
    assert!(msg.starts_with("unknown key `colour`"), "{msg}");
    assert!(msg.contains("`limits`"), "{msg}");
}

#[test]
fn misspelt_table_name_is_an_unknown_key() {
    let text = DEMO.replace("[limits]", "[limit]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (7, 2));
    assert!(msg.starts_with("unknown key `limit`"), "{msg}");
}

#[test]
fn unknown_key_in_limits_points_at_the_key() {
    let text = DEMO.replace(
        "current_max_A = 0.01\n",
        "current_max_A = 0.01\n  max_power_W = 1\n",
    );
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (9, 3));
    assert!(msg.starts_with("unknown key `max_power_W`"), "{msg}");
    assert!(msg.contains("current_max_A"), "{msg}");
}

#[test]
fn unknown_key_in_a_step_points_at_the_key() {
    let text = with_steps(
        "[[step]]\nkind = \"cv\"\nbegin_V = 0.4\nvertex_V = [0.9, -0.1]\n    scan_rate = 0.2\n",
    );
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (14, 5));
    assert!(msg.starts_with("cv step: unknown key `scan_rate`"), "{msg}");
    assert!(msg.contains("scan_rate_V_per_s"), "{msg}");
}

#[test]
fn unknown_key_in_an_inline_step_table() {
    // A key-value `step` must come before the first table header.
    let text = format!("step = [{{ kind = \"wait\", duration_s = 1, colour = 2 }}]\n{HEAD}");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (1, 42));
    assert!(msg.starts_with("wait step: unknown key `colour`"), "{msg}");
}

#[test]
fn missing_key_points_at_its_table() {
    let text = DEMO.replace("current_max_A = 0.01\n", "");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (7, 1));
    assert_eq!(msg, "missing key `current_max_A`");

    let text = with_steps("[[step]]\nkind = \"ocp\"\nduration_s = 1\n");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (10, 1));
    assert_eq!(msg, "ocp step: missing key `sample_interval_s`");
}

#[test]
fn missing_table_points_at_file_start() {
    let (_, limits_and_steps) = DEMO.split_once("[limits]").unwrap();
    let text = format!("[limits]{limits_and_steps}");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (1, 1));
    assert!(msg.contains("missing key `run`"), "{msg}");
}

#[test]
fn wrong_type_points_at_the_value() {
    let text = DEMO.replace("current_max_A = 0.01", "current_max_A = \"10 mA\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (8, 17));
    assert!(msg.contains("invalid type: string \"10 mA\""), "{msg}");

    let text = DEMO.replace("cycles = 3", "cycles = 2.5");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (22, 10));
    assert!(
        msg.starts_with("cv step: invalid type: floating point `2.5`"),
        "{msg}"
    );

    let text = DEMO.replace("cycles = 3", "cycles = -1");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (22, 10));
    assert!(msg.contains("-1"), "{msg}");
}

#[test]
fn syntax_error_has_a_position() {
    let text = DEMO.replace("duration_s = 2.0", "duration_s = 2.0.0");
    let (line, col, _) = err(&text);
    assert_eq!((line, col), (13, 17));

    let text = DEMO.replace("duration_s = 2.0\n", "duration_s = 2.0\nduration_s = 3.0\n");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (14, 1));
    assert!(msg.contains("duplicate key"), "{msg}");
}

#[test]
fn pairs_must_have_two_elements() {
    let text = DEMO.replace("[0.9, -0.1]", "[0.9, -0.1, 0.5]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (19, 12));
    assert_eq!(
        msg,
        "vertex_V must have exactly 2 elements [first vertex, second vertex] (got 3)"
    );

    let text = DEMO.replace("[-0.2, 1.0]", "[1.0]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (9, 22));
    assert!(msg.contains("(got 1)"), "{msg}");
}

#[test]
fn unknown_step_kind_lists_the_valid_kinds() {
    let text = DEMO.replace("kind = \"cv\"", "kind = \"impedance\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (17, 8));
    assert_eq!(
        msg,
        "unknown step kind `impedance`; valid kinds: \
         ocp, cv, steps, wait, lsv, eis, esm_sweep, temperature, sweep"
    );
}

#[test]
fn step_without_kind_points_at_its_header() {
    let text = DEMO.replace("kind = \"ocp\"\n", "");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (11, 1));
    assert_eq!(
        msg,
        "missing key `kind` (one of ocp, cv, steps, wait, lsv, eis, esm_sweep, temperature, sweep)"
    );

    let text = DEMO.replace("kind = \"ocp\"", "kind = 1");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (12, 8));
    assert!(msg.starts_with("`kind` must be a string"), "{msg}");
}

#[test]
fn recipe_without_steps_is_rejected() {
    let (line, col, msg) = err(HEAD);
    assert_eq!((line, col), (1, 1));
    assert!(msg.contains("no steps"), "{msg}");

    let (line, col, msg) = err(&format!("step = []\n{HEAD}"));
    assert_eq!((line, col), (1, 8));
    assert!(msg.contains("no steps"), "{msg}");

    let (line, col, msg) = err(&format!("step = 3\n{HEAD}"));
    assert_eq!((line, col), (1, 8));
    assert!(msg.contains("array of tables"), "{msg}");
}

#[test]
fn negative_scan_rate_points_at_the_key() {
    let text = DEMO.replace("scan_rate_V_per_s = 0.2", "  scan_rate_V_per_s = -0.1");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (20, 3));
    assert_eq!(msg, "scan_rate_V_per_s must be > 0 (got -0.1)");

    let text = DEMO.replace("scan_rate_V_per_s = 0.2", "scan_rate_V_per_s = nan");
    let (_, _, msg) = err(&text);
    assert_eq!(
        msg,
        "scan_rate_V_per_s must be a finite number > 0 (got NaN)"
    );
}

#[test]
fn vertex_outside_window_points_at_the_vertex() {
    let text = DEMO.replace("[0.9, -0.1]", "[0.9, -0.3]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (19, 18));
    assert_eq!(
        msg,
        "vertex_V must be inside limits.potential_window_V = [-0.2, 1.0] (got -0.3)"
    );

    let text = DEMO.replace("begin_V = 0.4", "begin_V = 1.01");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (18, 1));
    assert!(msg.starts_with("begin_V must be inside"), "{msg}");
}

#[test]
fn other_physical_checks_point_at_their_keys() {
    let cases: &[(&str, &str, (usize, usize), &str)] = &[
        (
            "cycles = 3",
            "cycles = 0",
            (22, 1),
            "cycles must be >= 1 (got 0)",
        ),
        (
            "step_V = 0.002",
            "step_V = 0",
            (21, 1),
            "step_V must be > 0 (got 0.0)",
        ),
        (
            "step_V = 0.002",
            "step_V = 1.5",
            (21, 1),
            "step_V must be smaller than the vertex span |vertex_V[1] - vertex_V[0]| = 1.0 V (got 1.5)",
        ),
        (
            "[0.9, -0.1]",
            "[0.5, 0.5]",
            (19, 1),
            "vertex_V must be two different potentials (got [0.5, 0.5])",
        ),
        (
            "duration_s = 2.0",
            "duration_s = -2.0",
            (13, 1),
            "duration_s must be > 0 (got -2.0)",
        ),
        (
            "sample_interval_s = 0.01",
            "sample_interval_s = 3",
            (14, 1),
            "sample_interval_s must be <= duration_s = 2.0 s, or the step records no sample (got 3.0)",
        ),
        (
            "current_max_A = 0.01",
            "current_max_A = 0",
            (8, 1),
            "current_max_A must be > 0 (got 0.0)",
        ),
        (
            "[-0.2, 1.0]",
            "[1.0, -0.2]",
            (9, 1),
            "potential_window_V must be [low, high] with low < high (got [1.0, -0.2])",
        ),
        (
            "name = \"demo-cv\"",
            "name = \"  \"",
            (2, 1),
            "name must not be empty (it names the run folder)",
        ),
        (
            "name = \"demo-cv\"",
            "name = \"%%%\"",
            (2, 1),
            "name \"%%%\" has no ASCII letter or digit to build the run folder name from",
        ),
    ];
    for (from, to, pos, want) in cases {
        assert!(DEMO.contains(from), "{from}");
        let (line, col, msg) = err(&DEMO.replacen(from, to, 1));
        assert_eq!(((line, col), msg.as_str()), (*pos, *want), "{from} -> {to}");
    }
}

#[test]
fn io_error_names_the_file() {
    let e =
        vegard_recipe::load_recipe(std::path::Path::new("/nonexistent/vegard.toml")).unwrap_err();
    assert!(matches!(e, RecipeError::Io { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/vegard.toml: cannot read: "),
        "{e}"
    );
    assert_eq!(e.position(), None);
}

// ---- checks that need the bench ----

const BENCH: &str = r#"[instruments.potentiostat]
driver = "methodscript"
resource = "ASRL/dev/ttyACM0::INSTR"
current_range_max_A = 0.01

[instruments.deflection]
driver = "scpi-dmm"
resource = "TCPIP::192.168.1.20::5025::SOCKET"
sample_interval_s = 0.001
max_samples = 100000
invols_nm_per_V = 50.0
spring_constant_N_per_m = 1.0
"#;

fn bench(patch: &[(&str, &str)]) -> BenchConfig {
    let mut text = BENCH.to_owned();
    for (from, to) in patch {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    parse_bench(&text, "bench.toml").unwrap()
}

fn bench_err(recipe_text: &str, bench: &BenchConfig) -> Result<(), (usize, usize, String)> {
    let src = Source::new("r.toml", recipe_text);
    let recipe = parse_recipe(&src.text, &src.file).unwrap();
    validate_with_bench(&recipe, &src, bench).map_err(|e| {
        let (line, col) = e.position().unwrap();
        (line, col, e.message())
    })
}

#[test]
fn demo_fits_the_bench() {
    assert_eq!(bench_err(DEMO, &bench(&[])), Ok(()));
}

#[test]
fn too_many_samples_for_the_buffer_points_at_the_step() {
    // CV: 30 s x 1.1 / 1 ms = 33000 samples.
    let b = bench(&[("max_samples = 100000", "max_samples = 32999")]);
    let (line, col, msg) = bench_err(DEMO, &b).unwrap_err();
    assert_eq!((line, col), (22, 1));
    assert!(msg.contains("= 33000 deflection samples"), "{msg}");
    assert!(
        msg.contains("more samples than the instrument buffer allows"),
        "{msg}"
    );
    assert!(msg.contains("max_samples = 32999"), "{msg}");
    let b = bench(&[("max_samples = 100000", "max_samples = 33000")]);
    assert_eq!(bench_err(DEMO, &b), Ok(()));

    // OCP: 2 s x 1.1 / 10 ms = 220 samples; the CV (30 s) fits in 3300.
    let b = bench(&[
        ("sample_interval_s = 0.001", "sample_interval_s = 0.01"),
        ("max_samples = 100000", "max_samples = 219"),
    ]);
    let (line, col, msg) = bench_err(DEMO, &b).unwrap_err();
    assert_eq!((line, col), (13, 1));
    assert!(msg.contains("= 220 deflection samples"), "{msg}");
}

#[test]
fn deflection_sample_count_is_duration_plus_margin_rounded_up() {
    use vegard_recipe::deflection_samples;
    assert_eq!(deflection_samples(2.0, 0.01), 220);
    assert_eq!(deflection_samples(30.0, 0.001), 33000);
    assert_eq!(deflection_samples(1.0, 0.3), 4); // 3.666.. -> 4
    assert_eq!(deflection_samples(0.001, 1.0), 1);
}

#[test]
fn current_limit_above_the_potentiostat_range_is_rejected() {
    let b = bench(&[("current_range_max_A = 0.01", "current_range_max_A = 0.001")]);
    let (line, col, msg) = bench_err(DEMO, &b).unwrap_err();
    assert_eq!((line, col), (8, 1));
    assert!(msg.contains("current_range_max_A = 0.001 A"), "{msg}");

    // Without a CV step the cell is never on: the limit does not matter.
    let ocp_only = DEMO.split("[[step]]\nkind = \"cv\"").next().unwrap();
    assert_eq!(bench_err(ocp_only, &b), Ok(()));
}

#[test]
fn sample_intervals_below_one_millisecond_are_rejected() {
    let b = bench(&[]);
    let text = DEMO.replace("sample_interval_s = 0.01", "sample_interval_s = 0.0005");
    let (line, col, msg) = bench_err(&text, &b).unwrap_err();
    assert_eq!((line, col), (14, 1));
    assert!(
        msg.contains("below the potentiostat's minimum of 0.001 s"),
        "{msg}"
    );

    // CV: 0.1 mV / 0.2 V/s = 0.5 ms.
    let text = DEMO.replace("step_V = 0.002", "step_V = 0.0001");
    let (line, col, msg) = bench_err(&text, &b).unwrap_err();
    assert_eq!((line, col), (21, 1));
    assert!(
        msg.starts_with("sample interval step_V / scan_rate_V_per_s = 0.0005 s"),
        "{msg}"
    );
}

#[test]
fn potential_steps_parse_and_their_mistakes_point_at_the_value() {
    let ok = with_steps(
        "[[step]]\nkind = \"steps\"\nlevels_V = [0.45, 0.5]\nhold_s = [60, 30.5]\nsample_interval_s = 0.05\n",
    );
    let r = parse_recipe(&ok, "r.toml").unwrap();
    match &r.steps[0] {
        Step::Steps(s) => {
            assert_eq!(s.levels_V, vec![0.45, 0.5]);
            assert_eq!(s.hold_s, vec![60.0, 30.5]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.steps[0].duration_s(), 90.5);
    assert_eq!(r.steps[0].kind_name(), "steps");

    // A level outside the window points at that element (line 12, col 19).
    let (line, col, msg) = err(&ok.replace("[0.45, 0.5]", "[0.45, 1.5]"));
    assert_eq!((line, col), (12, 19), "{msg}");
    assert_eq!(
        msg,
        "levels_V must be inside limits.potential_window_V = [-0.2, 1.0] (got 1.5)"
    );
    // One hold time per level.
    let (line, _, msg) = err(&ok.replace("[60, 30.5]", "[60]"));
    assert_eq!(line, 13, "{msg}");
    assert!(msg.contains("one hold time per level (2 levels)"), "{msg}");
    // A hold shorter than one sample.
    let (line, col, msg) = err(&ok.replace("[60, 30.5]", "[60, 0.01]"));
    assert_eq!((line, col), (13, 15), "{msg}");
    assert!(msg.contains(">= sample_interval_s = 0.05 s"), "{msg}");
    // Unknown key inside the step.
    let (line, col, msg) = err(&ok.replace("sample_interval_s", "interval_s"));
    assert_eq!((line, col), (14, 1), "{msg}");
}
