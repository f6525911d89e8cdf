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
    assert!(
        msg.ends_with("(did you mean `scan_rate_V_per_s`?)"),
        "{msg}"
    );
}

#[test]
fn a_misspelt_kind_or_key_names_what_was_meant() {
    let text = with_steps("[[step]]\nkind = \"CV\"\nbegin_V = 0.4\n");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (11, 8));
    assert!(
        msg.starts_with("unknown step kind `CV` (did you mean `cv`?); valid kinds: "),
        "{msg}"
    );
    let text = with_steps(
        "[[step]]\nkind = \"cv\"\nbegin_V = 0.4\nvertex_V = [0.9, -0.1]\nscan_rate_V_per_s = 0.1\ncylces = 2\n",
    );
    let (_, _, msg) = err(&text);
    assert!(msg.ends_with("(did you mean `cycles`?)"), "{msg}");
    // Nothing close: no guess.
    let text = with_steps("[[step]]\nkind = \"titration\"\n");
    let (_, _, msg) = err(&text);
    assert!(!msg.contains("did you mean"), "{msg}");
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
fn a_step_longer_than_one_trigger_is_recorded_in_blocks() {
    // CV: 30 s x 1.1 / 1 ms = 33000 readings, far more than 1000 per
    // trigger: recorded in blocks, one per sync edge, so it validates.
    let b = bench(&[("max_samples = 100000", "max_samples = 1000")]);
    assert_eq!(bench_err(DEMO, &b), Ok(()));
    let recipe = parse_recipe(DEMO, "demo.toml").unwrap();
    let cv = recipe.steps.iter().find(|s| s.kind_name() == "cv").unwrap();
    let acq = vegard_recipe::deflection_acquisition(cv, 1e-3, 1000).unwrap();
    let vegard_recipe::DeflectionAcquisition::Blocks(plan) = acq else {
        panic!("{acq:?}");
    };
    // CV samples every 10 ms (2 mV at 0.2 V/s): blocks of at most 1000
    // readings (0.99 s + a free slot), enough edges to cover 33 s.
    assert!(plan.readings_per_block <= 1000, "{plan:?}");
    assert!(plan.blocks as f64 * plan.block_period_s >= 33.0, "{plan:?}");
    assert_eq!(acq.sync_every_samples(), Some(plan.edge_every_samples));
    assert_eq!(acq.triggers(), plan.blocks);
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

// ---- the issue-3 techniques: lsv, eis, esm_sweep, temperature, sweep ----

/// One step of every new kind, the sweep with two nested steps. `HEAD` is 9
/// lines, so the lsv step's `[[step]]` is line 10.
const ALL: &str = r#"[run]
name = "t"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

# steps follow

[[step]]
kind = "lsv"
begin_V = 0.2
end_V = 0.8
scan_rate_V_per_s = 0.01
step_V = 0.002

[[step]]
kind = "eis"
dc_V = 0.4
amplitude_V = 0.01
freq_Hz = [10000.0, 0.01]
points_per_decade = 5
equilibrate_s = 5.0

[[step]]
kind = "esm_sweep"
dc_V = 0.4
amplitude_V = 0.02
freq_Hz = [1.0, 0.3, 0.1]
periods = 2
settle_periods = 1
sample_interval_s = 0.02

[[step]]
kind = "temperature"
setpoint_C = 45.0
tolerance_K = 0.3
hold_s = 30.0
timeout_s = 900.0

[[step]]
kind = "sweep"
temperature_K = [300.0, 320.0]
tolerance_K = 0.5
hold_s = 10.0
timeout_s = 600.0

  [[step.step]]
  kind = "eis"
  dc_V = 0.4
  amplitude_V = 0.005
  freq_Hz = [1000.0, 1.0]
  points_per_decade = 2

  [[step.step]]
  kind = "esm_sweep"
  dc_V = 0.5
  amplitude_V = 0.01
  freq_range_Hz = [2.0, 0.02]
  points_per_decade = 3
  periods = 3

[[step]]
kind = "wait"
duration_s = 1.0
"#;

/// 1-based (line, col) of the start of `needle`, which must occur exactly
/// once in `text`: where an error about that key must point.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    assert_eq!(text.matches(needle).count(), 1, "needle {needle:?}");
    let offset = text.find(needle).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn every_new_kind_parses_with_its_numbers() {
    let r = parse_recipe(ALL, "all.toml").unwrap();
    assert_eq!(
        r.steps.iter().map(Step::kind_name).collect::<Vec<_>>(),
        ["lsv", "eis", "esm_sweep", "temperature", "sweep", "wait"]
    );
    let Step::Lsv(lsv) = &r.steps[0] else {
        panic!("{:?}", r.steps[0])
    };
    // 0.6 V at 10 mV/s: 60 s, a sample every 0.2 s.
    assert!((lsv.duration_s() - 60.0).abs() < 1e-9);
    assert!((lsv.sample_interval_s() - 0.2).abs() < 1e-12);
    let Step::Eis(eis) = &r.steps[1] else {
        panic!("{:?}", r.steps[1])
    };
    assert_eq!((eis.freq_Hz, eis.points_per_decade), ([1e4, 0.01], 5));
    assert_eq!(eis.n_points(), 31);
    let Step::EsmSweep(esm) = &r.steps[2] else {
        panic!("{:?}", r.steps[2])
    };
    // Explicit list: run in the order written, dwell (1 + 2) / f.
    assert_eq!(esm.frequencies_Hz(), vec![1.0, 0.3, 0.1]);
    let dwell = esm.dwell_s();
    for (d, want) in dwell.iter().zip([3.0, 10.0, 30.0]) {
        assert!((d - want).abs() < 1e-9, "{dwell:?}");
    }
    assert!((r.steps[2].duration_s() - 43.0).abs() < 1e-9);
    assert_eq!(esm.ca_sample_interval_s(), 0.02);
    let Step::Temperature(t) = &r.steps[3] else {
        panic!("{:?}", r.steps[3])
    };
    assert!((t.target_K() - 318.15).abs() < 1e-12);
    let Step::Sweep(vegard_recipe::SweepStep::Temperature(sweep)) = &r.steps[4] else {
        panic!("{:?}", r.steps[4])
    };
    assert_eq!(sweep.temperatures_K(), vec![300.0, 320.0]);
    assert_eq!(sweep.steps.len(), 2);
    assert_eq!(sweep.steps[1].kind_name(), "esm_sweep");

    // What records through the potentiostat (and arms the digitizer).
    assert_eq!(
        r.steps.iter().map(Step::records).collect::<Vec<_>>(),
        [true, true, true, false, false, false]
    );
}

#[test]
fn log_frequencies_hit_both_ends_with_a_constant_ratio() {
    use vegard_recipe::log_frequencies_Hz;
    assert!(log_frequencies_Hz(10.0, 1.0, 0).is_empty());
    assert_eq!(log_frequencies_Hz(10.0, 1.0, 1), vec![10.0]);
    assert_eq!(log_frequencies_Hz(10.0, 1.0, 2), vec![10.0, 1.0]);
    // 1 kHz -> 1 Hz in 7 points: half a decade apart.
    let f = log_frequencies_Hz(1000.0, 1.0, 7);
    assert_eq!(f.len(), 7);
    assert_eq!((f[0], f[6]), (1000.0, 1.0));
    assert!((f[1] - 316.227_766_016_838).abs() < 1e-9, "{f:?}");
    for pair in f.windows(2) {
        assert!(
            (pair[1] / pair[0] - 10f64.powf(-0.5)).abs() < 1e-12,
            "{f:?}"
        );
    }
    // Rising sweeps work the same way.
    let up = log_frequencies_Hz(0.1, 10.0, 3);
    assert_eq!(up[0], 0.1);
    assert!((up[1] - 1.0).abs() < 1e-12);
    assert_eq!(up[2], 10.0);
}

#[test]
fn eis_points_and_duration_match_hand_computed_values() {
    use vegard_recipe::{EisStep, eis_point_duration_s};
    let eis = |high: f64, low: f64, ppd: u32| EisStep {
        dc_V: 0.4,
        amplitude_V: 0.01,
        freq_Hz: [high, low],
        points_per_decade: ppd,
        equilibrate_s: 0.0,
    };
    // round(decades x ppd) + 1.
    assert_eq!(eis(1e4, 0.01, 5).n_points(), 31);
    assert_eq!(eis(1e4, 0.01, 10).n_points(), 61);
    assert_eq!(eis(1e5, 0.1, 7).n_points(), 43);
    assert_eq!(eis(1.0, 0.005, 4).n_points(), 10); // 2.301 x 4 = 9.2 -> 9
    assert_eq!(eis(100.0, 1.0, 1).n_points(), 3);
    assert_eq!(eis(1.0, 1.0, 5).n_points(), 1);

    let step = eis(1e4, 0.01, 5);
    let f = step.frequencies_Hz();
    assert_eq!((f.len(), f[0], f[30]), (31, 1e4, 0.01));
    for pair in f.windows(2) {
        assert!((pair[1] / pair[0] - 10f64.powf(-0.2)).abs() < 1e-12);
    }
    assert_eq!(eis_point_duration_s(0.01), 200.05);
    assert_eq!(eis_point_duration_s(2.0), 1.05);
    // sum 2/f_k = 2e-4 sum_{k=0}^{30} 10^(k/5) = 2e-4 (10^6.2 - 1)/(10^0.2 - 1),
    // plus 31 x 50 ms: 543.4924 s.
    let want_s = 2e-4 * (10f64.powf(6.2) - 1.0) / (10f64.powf(0.2) - 1.0) + 31.0 * 0.05;
    assert!((want_s - 543.4924).abs() < 1e-4);
    assert!(
        (step.duration_s() - want_s).abs() < 1e-9,
        "{}",
        step.duration_s()
    );
    let with_eq = EisStep {
        equilibrate_s: 10.0,
        ..step
    };
    assert!((Step::Eis(with_eq).duration_s() - (want_s + 10.0)).abs() < 1e-9);
}

#[test]
fn esm_range_runs_high_to_low_and_defaults_its_sample_interval() {
    use vegard_recipe::EsmSweepStep;
    let range = EsmSweepStep {
        dc_V: 0.4,
        amplitude_V: 0.02,
        freq_Hz: None,
        freq_range_Hz: Some([1.0, 0.005]),
        points_per_decade: Some(4),
        periods: 2,
        settle_periods: 1,
        sample_interval_s: None,
    };
    let f = range.frequencies_Hz();
    assert_eq!((f.len(), f[0], f[9]), (10, 1.0, 0.005));
    assert!(f.windows(2).all(|p| p[1] < p[0]), "{f:?}");
    // 200^(-1/9) apart; dwell 3/f; total 3 (200^(10/9) - 1)/(200^(1/9) - 1).
    assert!((f[1] - 200f64.powf(-1.0 / 9.0)).abs() < 1e-12);
    let r = 200f64.powf(1.0 / 9.0);
    let want_s = 3.0 * (r.powi(10) - 1.0) / (r - 1.0);
    assert!((want_s - 1344.7157).abs() < 1e-4);
    assert!((range.duration_s() - want_s).abs() < 1e-9);
    assert!((range.dwell_s()[9] - 600.0).abs() < 1e-9);
    // Default interval: 40 samples per period of f_max (1 Hz) ...
    assert!((range.ca_sample_interval_s() - 0.025).abs() < 1e-15);
    // ... but never below the potentiostat's 1 ms.
    let fast = EsmSweepStep {
        freq_Hz: Some(vec![100.0, 10.0]),
        freq_range_Hz: None,
        points_per_decade: None,
        ..range.clone()
    };
    assert_eq!(fast.ca_sample_interval_s(), 1e-3);
    let given = EsmSweepStep {
        sample_interval_s: Some(0.05),
        ..range
    };
    assert_eq!(given.ca_sample_interval_s(), 0.05);
}

const SWEEP: &str = r#"[run]
name = "sweep"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

[[step]]
kind = "ocp"
duration_s = 2.0
sample_interval_s = 0.01

[[step]]
kind = "sweep"
temperature_C = [25.0, 45.0, 65.0]
tolerance_K = 0.3
hold_s = 30.0
timeout_s = 900.0

  [[step.step]]
  kind = "wait"
  duration_s = 10.0

  [[step.step]]
  kind = "lsv"
  begin_V = 0.2
  end_V = 0.7
  scan_rate_V_per_s = 0.01
  step_V = 0.002

[[step]]
kind = "wait"
duration_s = 5.0

[[step]]
kind = "temperature"
setpoint_K = 310.0
tolerance_K = 0.2
hold_s = 20.0
timeout_s = 600.0

[[step]]
kind = "ocp"
duration_s = 1.0
sample_interval_s = 0.01
"#;

#[test]
fn sweep_expands_into_a_labelled_flat_plan() {
    let r = parse_recipe(SWEEP, "sweep.toml").unwrap();
    let plan = r.plan();
    // ocp, 3 x (temperature, wait, lsv), wait, temperature, ocp.
    assert_eq!(plan.len(), 1 + 3 * 3 + 3);
    let kinds: Vec<_> = plan.iter().map(|p| p.step.kind_name()).collect();
    assert_eq!(
        kinds,
        [
            "ocp",
            "temperature",
            "wait",
            "lsv",
            "temperature",
            "wait",
            "lsv",
            "temperature",
            "wait",
            "lsv",
            "wait",
            "temperature",
            "ocp"
        ]
    );
    assert!(plan.iter().all(|p| !matches!(p.step, Step::Sweep(_))));

    // Before any temperature: no setpoint, no iteration.
    assert_eq!(plan[0].label.recipe_step, 0);
    assert_eq!(plan[0].label.sweep_iteration, None);
    assert_eq!(plan[0].label.setpoint_K, None);
    // Inside the sweep: recipe step 1, iterations 0..3, setpoints in K.
    let want_K = [298.15, 318.15, 338.15];
    for (k, &t_K) in want_K.iter().enumerate() {
        for p in &plan[1 + 3 * k..4 + 3 * k] {
            assert_eq!(p.label.recipe_step, 1);
            assert_eq!(p.label.sweep_iteration, Some(k as u32));
            assert!((p.label.setpoint_K.unwrap() - t_K).abs() < 1e-9, "{p:?}");
        }
        let Step::Temperature(t) = &plan[1 + 3 * k].step else {
            panic!("{:?}", plan[1 + 3 * k])
        };
        // The sweep's stabilisation settings, the setpoint in K.
        assert_eq!(t.setpoint_C, None);
        assert!((t.target_K() - t_K).abs() < 1e-9);
        assert_eq!((t.tolerance_K, t.hold_s, t.timeout_s), (0.3, 30.0, 900.0));
    }
    // After the sweep the stage stays at its last setpoint ...
    assert_eq!(plan[10].label.recipe_step, 2);
    assert_eq!(plan[10].label.sweep_iteration, None);
    assert!((plan[10].label.setpoint_K.unwrap() - 338.15).abs() < 1e-9);
    // ... until a temperature step sets a new one for itself and what follows.
    assert_eq!(plan[11].label.setpoint_K, Some(310.0));
    assert_eq!(plan[12].label.setpoint_K, Some(310.0));
    assert_eq!(plan[12].label.recipe_step, 4);
}

#[test]
fn durations_sum_over_the_expanded_plan() {
    let r = parse_recipe(SWEEP, "sweep.toml").unwrap();
    // Sweep: 3 x (hold 30 + wait 10 + lsv 0.5 V / 0.01 V/s = 50) = 270 s.
    assert!((r.steps[1].duration_s() - 270.0).abs() < 1e-9);
    // Temperature steps count their hold time (a lower bound).
    assert_eq!(r.steps[3].duration_s(), 20.0);
    // 2 + 270 + 5 + 20 + 1.
    assert!((r.duration_s() - 298.0).abs() < 1e-9);
    let plan_s: f64 = r.plan().iter().map(|p| p.step.duration_s()).sum();
    assert!((plan_s - r.duration_s()).abs() < 1e-9);
}

#[test]
fn recipe_with_every_kind_reads_back_identically() {
    for text in [ALL, SWEEP] {
        let r = parse_recipe(text, "in.toml").unwrap();
        let out = toml::to_string(&r).unwrap();
        assert_eq!(parse_recipe(&out, "run.toml").unwrap(), r, "{out}");
        assert_eq!(toml::from_str::<Recipe>(&out).unwrap(), r);
    }
    // The run override survives too.
    let text = SWEEP.replace(
        "name = \"sweep\"",
        "name = \"sweep\"\ndeflection_sample_interval_s = 0.02",
    );
    let r = parse_recipe(&text, "in.toml").unwrap();
    assert_eq!(r.run.deflection_sample_interval_s, Some(0.02));
    let out = toml::to_string(&r).unwrap();
    assert_eq!(parse_recipe(&out, "run.toml").unwrap(), r);
}

#[test]
fn bad_values_of_new_kinds_point_at_their_keys() {
    // (from, to, needle in the changed text where the error must point, message)
    let cases: &[(&str, &str, &str, &str)] = &[
        // lsv
        (
            "end_V = 0.8",
            "end_V = 0.2",
            "end_V = 0.2",
            "end_V must be different from begin_V = 0.2 V (got 0.2)",
        ),
        (
            "step_V = 0.002",
            "step_V = 0.7",
            "step_V = 0.7",
            "step_V must be <= the sweep span |end_V - begin_V| = 0.6000000000000001 V (got 0.7)",
        ),
        (
            "end_V = 0.8",
            "end_V = 1.8",
            "end_V = 1.8",
            "end_V must be inside limits.potential_window_V = [-0.2, 1.0] (got 1.8)",
        ),
        (
            "scan_rate_V_per_s = 0.01",
            "scan_rate_V_per_s = 0",
            "scan_rate_V_per_s = 0\n",
            "scan_rate_V_per_s must be > 0 (got 0.0)",
        ),
        // eis
        (
            "freq_Hz = [10000.0, 0.01]",
            "freq_Hz = [0.01, 10000.0]",
            "freq_Hz = [0.01, 10000.0]",
            "freq_Hz must be [high, low] with high > low > 0 (got [0.01, 10000.0])",
        ),
        (
            "freq_Hz = [10000.0, 0.01]",
            "freq_Hz = [10000.0, -1.0]",
            "-1.0]",
            "freq_Hz must be > 0 (got -1.0)",
        ),
        (
            "freq_Hz = [10000.0, 0.01]",
            "freq_Hz = [1e6, 0.01]",
            "1e6, 0.01]",
            "freq_Hz must be <= 200000.0 Hz, the potentiostat's highest EIS frequency (got 1000000.0)",
        ),
        (
            "points_per_decade = 5",
            "points_per_decade = 0",
            "points_per_decade = 0",
            "points_per_decade must be >= 1 (got 0)",
        ),
        (
            "\namplitude_V = 0.01\nfreq",
            "\namplitude_V = 0.0\nfreq",
            "amplitude_V = 0.0\n",
            "amplitude_V must be > 0 and <= 0.5 V (peak) (got 0.0)",
        ),
        (
            "\namplitude_V = 0.01\nfreq",
            "\namplitude_V = 0.6\nfreq",
            "amplitude_V = 0.6",
            "amplitude_V must be > 0 and <= 0.5 V (peak) (got 0.6)",
        ),
        (
            "dc_V = 0.4\namplitude_V = 0.01",
            "dc_V = 1.4\namplitude_V = 0.01",
            "dc_V = 1.4",
            "dc_V must be inside limits.potential_window_V = [-0.2, 1.0] (got 1.4)",
        ),
        (
            "dc_V = 0.4\namplitude_V = 0.01",
            "dc_V = 0.95\namplitude_V = 0.1",
            "amplitude_V = 0.1",
            "amplitude_V must be small enough that dc_V +- amplitude_V stays inside \
             limits.potential_window_V = [-0.2, 1.0] (got 0.1: swing [0.85, 1.05])",
        ),
        (
            "equilibrate_s = 5.0",
            "equilibrate_s = -5.0",
            "equilibrate_s = -5.0",
            "equilibrate_s must be >= 0 (got -5.0)",
        ),
        // esm_sweep
        (
            "freq_Hz = [1.0, 0.3, 0.1]",
            "freq_Hz = [1.0, 0.3, 0.1]\nfreq_range_Hz = [1.0, 0.1]",
            "freq_range_Hz = [1.0, 0.1]",
            "give exactly one of freq_Hz / freq_range_Hz, not both",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]\n",
            "",
            "[[step]]\nkind = \"esm_sweep\"",
            "esm_sweep step: missing frequencies: give freq_Hz = [f1, f2, ...] or \
             freq_range_Hz = [high, low] with points_per_decade",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]",
            "freq_range_Hz = [1.0, 0.1]",
            "freq_range_Hz = [1.0, 0.1]",
            "freq_range_Hz needs points_per_decade (the number of log-spaced frequencies per decade)",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]",
            "freq_Hz = [1.0, 0.3, 0.1]\npoints_per_decade = 4",
            "points_per_decade = 4",
            "points_per_decade = 4 only applies to freq_range_Hz; with an explicit freq_Hz list remove it",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]",
            "freq_Hz = [1.0, 0.0, 0.1]",
            "0.0, 0.1]",
            "freq_Hz must be > 0 (got 0.0)",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]",
            "freq_Hz = []",
            "freq_Hz = []",
            "freq_Hz must be at least one frequency (got [])",
        ),
        (
            "periods = 2",
            "periods = 0",
            "periods = 0",
            "periods must be >= 1 (got 0)",
        ),
        (
            "sample_interval_s = 0.02",
            "sample_interval_s = 0.0005",
            "sample_interval_s = 0.0005",
            "sample_interval_s must be >= 0.001 s, the potentiostat's shortest sample interval (got 0.0005)",
        ),
        (
            "sample_interval_s = 0.02",
            "sample_interval_s = 0.3",
            "sample_interval_s = 0.3",
            "sample_interval_s must be <= 1/(4.0 f_max) = 0.25 s: at least 4.0 samples per period \
             of the highest frequency (1.0 Hz) (got 0.3)",
        ),
        (
            "freq_Hz = [1.0, 0.3, 0.1]\nperiods = 2\nsettle_periods = 1\nsample_interval_s = 0.02",
            "freq_Hz = [1000.0, 0.3]\nperiods = 2",
            "freq_Hz = [1000.0, 0.3]",
            "freq_Hz must be at most 250.0 Hz: the potentiostat samples at most every 0.001 s \
             and needs 4.0 samples per period (got highest frequency 1000.0 Hz)",
        ),
        // temperature
        (
            "setpoint_C = 45.0",
            "setpoint_C = 45.0\nsetpoint_K = 318.15",
            "setpoint_K = 318.15",
            "give exactly one of setpoint_C / setpoint_K, not both",
        ),
        (
            "setpoint_C = 45.0\n",
            "",
            "[[step]]\nkind = \"temperature\"",
            "temperature step: missing setpoint: give setpoint_C or setpoint_K",
        ),
        (
            "setpoint_C = 45.0",
            "setpoint_C = 318.15",
            "setpoint_C = 318.15",
            "setpoint_C must be between -73.15 and 226.85 degC (200.0 to 500.0 K, the stage's \
             safe range) (got 318.15)",
        ),
        (
            "setpoint_C = 45.0",
            "setpoint_K = 45.0",
            "setpoint_K = 45.0",
            "setpoint_K must be between 200.0 and 500.0 K (the stage's safe range) (got 45.0)",
        ),
        (
            "tolerance_K = 0.3",
            "tolerance_K = 0",
            "tolerance_K = 0\n",
            "tolerance_K must be > 0 (got 0.0)",
        ),
        (
            "hold_s = 30.0",
            "hold_s = -1.0",
            "hold_s = -1.0",
            "hold_s must be >= 0 (got -1.0)",
        ),
        (
            "timeout_s = 900.0",
            "timeout_s = 30.0",
            "timeout_s = 30.0",
            "timeout_s must be > hold_s = 30.0 s (the stage must be able to reach the setpoint \
             and then hold it) (got 30.0)",
        ),
        // sweep
        (
            "temperature_K = [300.0, 320.0]",
            "temperature_K = []",
            "temperature_K = []",
            "temperature_K must be at least one temperature (got [])",
        ),
        (
            "temperature_K = [300.0, 320.0]",
            "temperature_K = [300.0, 600.0]",
            "600.0]",
            "temperature_K must be between 200.0 and 500.0 K (the stage's safe range) (got 600.0)",
        ),
        (
            "temperature_K = [300.0, 320.0]",
            "temperature_C = [25.0]\ntemperature_K = [300.0, 320.0]",
            "temperature_K = [300.0, 320.0]",
            "give exactly one of temperature_C / temperature_K, not both",
        ),
        (
            "temperature_K = [300.0, 320.0]\n",
            "",
            "[[step]]\nkind = \"sweep\"",
            "sweep step: missing temperatures: give temperature_C = [...] or temperature_K = [...]",
        ),
        (
            "timeout_s = 600.0",
            "timeout_s = 5.0",
            "timeout_s = 5.0",
            "timeout_s must be > hold_s = 10.0 s (the stage must be able to reach the setpoint \
             and then hold it) (got 5.0)",
        ),
        // keys nested in [[step.step]]
        (
            "  amplitude_V = 0.005",
            "  amplitude_V = 0.7",
            "amplitude_V = 0.7",
            "amplitude_V must be > 0 and <= 0.5 V (peak) (got 0.7)",
        ),
        (
            "  freq_range_Hz = [2.0, 0.02]",
            "  freq_range_Hz = [2.0, 2.0]",
            "freq_range_Hz = [2.0, 2.0]",
            "freq_range_Hz must be [high, low] with high > low > 0 (got [2.0, 2.0])",
        ),
        (
            "  periods = 3",
            "  periods = 0",
            "periods = 0",
            "periods must be >= 1 (got 0)",
        ),
        (
            "  dc_V = 0.5",
            "  dc_V = -0.5",
            "dc_V = -0.5",
            "dc_V must be inside limits.potential_window_V = [-0.2, 1.0] (got -0.5)",
        ),
    ];
    for (from, to, needle, want) in cases {
        assert_eq!(ALL.matches(from).count(), 1, "{from}");
        let text = ALL.replacen(from, to, 1);
        let (line, col, msg) = err(&text);
        assert_eq!(
            ((line, col), msg.as_str()),
            (pos_of(&text, needle), *want),
            "{from} -> {to}"
        );
    }
}

#[test]
fn nested_positions_are_exact() {
    // Spelled out once: the nested eis's amplitude is line 51, column 3.
    let text = ALL.replace("  amplitude_V = 0.005", "  amplitude_V = -0.005");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (51, 3), "{msg}");
    assert!(msg.starts_with("amplitude_V must be > 0"), "{msg}");
}

#[test]
fn structural_mistakes_in_sweeps_and_new_kinds_have_positions() {
    // Unknown key in a nested step: serde's error, in the nested table.
    let text = ALL.replace("  points_per_decade = 2", "  points_per_decad = 2");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "points_per_decad = 2"));
    assert!(
        msg.starts_with("eis step in a sweep: unknown key `points_per_decad`"),
        "{msg}"
    );
    // Missing key in a nested step: its [[step.step]] header.
    let text = ALL.replace("  periods = 3\n", "");
    let (line, col, msg) = err(&text);
    assert_eq!(
        (line, col),
        pos_of(&text, "[[step.step]]\n  kind = \"esm_sweep\"")
    );
    assert_eq!(msg, "esm_sweep step in a sweep: missing key `periods`");
    // Unknown kind in a nested step.
    let text = ALL.replace("  kind = \"eis\"", "  kind = \"eiss\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "\"eiss\""));
    assert!(msg.starts_with("unknown step kind `eiss`"), "{msg}");
    // A temperature sweep inside a temperature sweep.
    let text = ALL.replace("  kind = \"eis\"", "  kind = \"sweep\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "\"sweep\"\n  dc_V"));
    assert!(
        msg.starts_with("a temperature sweep cannot be nested in another temperature sweep"),
        "{msg}"
    );
    // A temperature step inside a sweep.
    let text = ALL.replace("  kind = \"eis\"", "  kind = \"temperature\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "\"temperature\"\n  dc_V"));
    assert!(
        msg.starts_with("a temperature step cannot be nested in a temperature sweep"),
        "{msg}"
    );
    // A sweep without nested steps: its header.
    let (head, _) = ALL.split_once("\n  [[step.step]]").unwrap();
    let (line, col, msg) = err(head);
    assert_eq!((line, col), pos_of(head, "[[step]]\nkind = \"sweep\""));
    assert!(msg.starts_with("sweep step: no nested steps"), "{msg}");
    // Unknown key of the sweep itself lists the sweep's keys.
    let text = ALL.replace("tolerance_K = 0.5", "tolerance = 0.5");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "tolerance = 0.5"));
    assert!(
        msg.starts_with("sweep step: unknown key `tolerance`"),
        "{msg}"
    );
    assert!(msg.contains("`temperature_C`"), "{msg}");
    // Pairs by kind: eis freq_Hz is [high, low], esm_sweep freq_Hz a list.
    let text = ALL.replace("[10000.0, 0.01]", "[10000.0, 1.0, 0.01]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "[10000.0, 1.0, 0.01]"));
    assert_eq!(
        msg,
        "freq_Hz must have exactly 2 elements [high, low] (got 3)"
    );
    let text = ALL.replace("  freq_range_Hz = [2.0, 0.02]", "  freq_range_Hz = [2.0]");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "[2.0]"));
    assert!(
        msg.starts_with("freq_range_Hz must have exactly 2 elements"),
        "{msg}"
    );
    // The run override must be a positive interval.
    let text = ALL.replace(
        "name = \"t\"",
        "name = \"t\"\ndeflection_sample_interval_s = 0",
    );
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (3, 1));
    assert_eq!(msg, "deflection_sample_interval_s must be > 0 (got 0.0)");
}

#[test]
fn shipped_recipes_have_the_durations_their_headers_state() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let load = |name: &str| vegard_recipe::load_recipe(&root.join("recipes").join(name)).unwrap();

    // 2 s ocp + 10 s equilibrate + 31 EIS points (543.49 s).
    let eis = load("eis.toml");
    assert!(
        (eis.duration_s() - 555.4924).abs() < 1e-3,
        "{}",
        eis.duration_s()
    );
    // 2 s ocp + 10 frequencies x 3 periods (1344.72 s).
    let esm = load("esm-sweep.toml");
    assert!(
        (esm.duration_s() - 1346.7157).abs() < 1e-3,
        "{}",
        esm.duration_s()
    );
    assert_eq!(esm.run.deflection_sample_interval_s, Some(0.02));

    // 2 s ocp + 5 x (30 s hold + 60 s CV + 553.49 s EIS + 1344.72 s ESM).
    let campaign = load("arrhenius-campaign.toml");
    let want_s = 2.0 + 5.0 * (30.0 + 60.0 + 553.4924 + 1344.7157);
    assert!(
        (campaign.duration_s() - want_s).abs() < 1e-2,
        "{}",
        campaign.duration_s()
    );
    // With ~2 min of stage settling per 10 K step it stays under 12000 s,
    // so --speed 100 finishes in about 2 minutes.
    assert!(campaign.duration_s() + 4.0 * 150.0 < 12000.0);
    let plan = campaign.plan();
    assert_eq!(plan.len(), 1 + 5 * 4);
    let setpoints: Vec<f64> = plan
        .iter()
        .filter(|p| matches!(p.step, Step::Temperature(_)))
        .map(|p| p.label.setpoint_K.unwrap())
        .collect();
    let want_K = [298.15, 308.15, 318.15, 328.15, 338.15];
    assert_eq!(setpoints.len(), 5);
    for (got, want) in setpoints.iter().zip(want_K) {
        assert!((got - want).abs() < 1e-9, "{setpoints:?}");
    }
}

/// The digitizer's interval is checked against the 34465A's documented
/// limits (20 us, 50 kSa/s, to 3600 s), the same the driver and the
/// emulator apply: what validates, configures.
#[test]
fn a_deflection_interval_the_digitizer_cannot_do_is_refused_at_the_run_key() {
    let b = bench(&[]);
    for (interval, ok) in [
        ("1e-5", false),
        ("1.9e-5", false),
        ("2e-5", true),
        ("2.5e-5", true),
        ("3600.0", true),
    ] {
        // A 1 s rest: 55 000 samples at 20 us, within the buffer.
        let text = format!(
            "{}[[step]]\nkind = \"ocp\"\nduration_s = 1.0\nsample_interval_s = 0.01\n",
            HEAD.replacen(
                "[run]\n",
                &format!("[run]\ndeflection_sample_interval_s = {interval}\n"),
                1,
            )
        );
        match (bench_err(&text, &b), ok) {
            (Ok(()), true) => {}
            (Err((line, col, msg)), false) => {
                assert_eq!((line, col), (2, 1), "{msg}");
                assert!(
                    msg.contains("34465A") && msg.contains("2e-5 s") && msg.contains("50 kSa/s"),
                    "{msg}"
                );
            }
            (r, _) => panic!("{interval}: {r:?}"),
        }
    }
}
