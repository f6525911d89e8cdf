//! Parameter sweeps (`kind = "sweep"`, `parameter = ...`, `values = [...]`):
//! substitution into the nested steps, nesting with temperature sweeps, the
//! labels of the expanded plan, and each mistake reported at the position
//! of the key or value to fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vegard_recipe::{
    MAX_PLAN_STEPS, Source, Step, SweepParameter, parse_bench, parse_recipe, validate_with_bench,
};

const HEAD: &str = r#"[run]
name = "t"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

"#;

/// Temperature x dc_V: at 25 and 45 C, an EIS and an ESM sweep at 0.3 and
/// 0.5 V, then one CV per temperature.
const NESTED: &str = r#"[[step]]
kind = "sweep"
temperature_C = [25.0, 45.0]
tolerance_K = 0.3
hold_s = 30.0
timeout_s = 900.0

  [[step.step]]
  kind = "sweep"
  parameter = "dc_V"
  values = [0.3, 0.5]

    [[step.step.step]]
    kind = "eis"
    amplitude_V = 0.01
    freq_Hz = [1000.0, 1.0]
    points_per_decade = 2

    [[step.step.step]]
    kind = "esm_sweep"
    amplitude_V = 0.02
    freq_Hz = [1.0, 0.5]
    periods = 2

  [[step.step]]
  kind = "cv"
  begin_V = 0.4
  vertex_V = [0.7, 0.1]
  scan_rate_V_per_s = 0.02
  step_V = 0.002
  cycles = 1
"#;

fn recipe(steps: &str) -> String {
    format!("{HEAD}{steps}")
}

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

/// 1-based line and column of the only occurrence of `needle`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    assert_eq!(text.matches(needle).count(), 1, "needle {needle:?}");
    let offset = text.find(needle).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn temperature_by_dc_sweep_expands_with_values_substituted_and_labelled() {
    let r = parse_recipe(&recipe(NESTED), "r.toml").unwrap();
    let plan = r.plan();
    let kinds: Vec<&str> = plan.iter().map(|p| p.step.kind_name()).collect();
    assert_eq!(
        kinds,
        [
            "temperature",
            "eis",
            "esm_sweep",
            "eis",
            "esm_sweep",
            "cv",
            "temperature",
            "eis",
            "esm_sweep",
            "eis",
            "esm_sweep",
            "cv"
        ]
    );
    let dc_of = |k: usize| match &plan[k].step {
        Step::Eis(e) => e.dc_V,
        Step::EsmSweep(e) => e.dc_V,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        [1, 2, 3, 4, 7, 8, 9, 10].map(dc_of),
        [0.3, 0.3, 0.5, 0.5, 0.3, 0.3, 0.5, 0.5]
    );
    // Labels: the outermost sweep's iteration (the temperature's), the
    // setpoint, the dc value.
    let l = &plan[3].label;
    assert_eq!(l.recipe_step, 0);
    assert_eq!(l.sweep_iteration, Some(0));
    assert!((l.setpoint_K.unwrap() - 298.15).abs() < 1e-9);
    assert_eq!(l.sweep_value(SweepParameter::DcV), Some(0.5));
    assert_eq!(l.sweep_value(SweepParameter::AmplitudeV), None);
    assert_eq!(l.sweep_values_text(), "dc_V = 0.5 V");
    let l = &plan[7].label;
    assert_eq!(l.sweep_iteration, Some(1));
    assert!((l.setpoint_K.unwrap() - 318.15).abs() < 1e-9);
    assert_eq!(l.sweep_value(SweepParameter::DcV), Some(0.3));
    // The temperature steps and the CV: the temperature sweep's iteration,
    // no swept value.
    assert_eq!(plan[6].label.sweep_iteration, Some(1));
    assert_eq!(plan[11].label.sweep_iteration, Some(1));
    assert_eq!(plan[11].label.sweep_value(SweepParameter::DcV), None);
    // Duration: the recipe's sum is the plan's.
    let plan_s: f64 = plan.iter().map(|p| p.step.duration_s()).sum();
    assert!((r.duration_s() - plan_s).abs() < 1e-9, "{plan_s}");
}

#[test]
fn scan_rate_amplitude_and_frequency_sweeps_substitute_their_keys() {
    let text = recipe(
        r#"[[step]]
kind = "sweep"
parameter = "scan_rate_V_per_s"
values = [0.01, 0.1]

  [[step.step]]
  kind = "cv"
  begin_V = 0.4
  vertex_V = [0.7, 0.1]
  step_V = 0.002
  cycles = 1

[[step]]
kind = "sweep"
parameter = "amplitude_V"
values = [0.01, 0.03]

  [[step.step]]
  kind = "sweep"
  parameter = "freq_Hz"
  values = [1.0, 0.25]

    [[step.step.step]]
    kind = "esm_sweep"
    dc_V = 0.4
    periods = 2
"#,
    );
    let r = parse_recipe(&text, "r.toml").unwrap();
    let plan = r.plan();
    assert_eq!(plan.len(), 2 + 4);
    let Step::Cv(cv) = &plan[1].step else {
        panic!()
    };
    assert_eq!(cv.scan_rate_V_per_s, 0.1);
    // 1.2 V per cycle at 0.01 and 0.1 V/s.
    assert!((plan[0].step.duration_s() - 120.0).abs() < 1e-9);
    assert!((plan[1].step.duration_s() - 12.0).abs() < 1e-9);
    let esm: Vec<(f64, Vec<f64>, f64)> = plan[2..]
        .iter()
        .map(|p| match &p.step {
            Step::EsmSweep(e) => (e.amplitude_V, e.frequencies_Hz(), e.ca_sample_interval_s()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        esm,
        [
            (0.01, vec![1.0], 0.025),
            (0.01, vec![0.25], 0.1),
            (0.03, vec![1.0], 0.025),
            (0.03, vec![0.25], 0.1)
        ]
    );
    // One frequency, 3 periods (1 settling + 2): 3 s and 12 s.
    assert!((plan[4].step.duration_s() - 3.0).abs() < 1e-9);
    assert!((plan[5].step.duration_s() - 12.0).abs() < 1e-9);
    // The outer (amplitude) sweep's iteration.
    assert_eq!(plan[4].label.sweep_iteration, Some(1));
    assert_eq!(plan[3].label.sweep_iteration, Some(0));
    let l = &plan[5].label;
    assert_eq!(l.sweep_iteration, Some(1));
    assert_eq!(
        l.sweep_values_text(),
        "amplitude_V = 0.03 V, freq_Hz = 0.25 Hz"
    );
    assert_eq!(l.sweep_value(SweepParameter::FreqHz), Some(0.25));
    assert_eq!(l.setpoint_K, None);
}

#[test]
fn an_unknown_parameter_names_the_valid_ones_at_its_value() {
    let text = recipe(&NESTED.replace("\"dc_V\"", "\"dc_mV\""));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "\"dc_mV\""));
    assert!(msg.contains("unknown value `dc_mV`"), "{msg}");
    assert!(msg.contains("`scan_rate_V_per_s`"), "{msg}");
    assert!(msg.contains("did you mean `dc_V`?"), "{msg}");
}

#[test]
fn a_parameter_no_nested_step_takes_is_an_error_at_the_parameter() {
    let text = recipe(&NESTED.replace("\"dc_V\"", "\"scan_rate_V_per_s\""));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "\"scan_rate_V_per_s\""));
    assert_eq!(
        msg,
        "sweep step in a sweep: no nested step takes scan_rate_V_per_s (it sets \
         scan_rate_V_per_s of cv, lsv); valid parameters: dc_V (eis, esm_sweep), \
         amplitude_V (eis, esm_sweep), scan_rate_V_per_s (cv, lsv), freq_Hz (esm_sweep)"
    );
}

#[test]
fn empty_and_non_finite_values_are_errors_at_the_values() {
    let text = recipe(&NESTED.replace("[0.3, 0.5]", "[]"));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "[]"));
    assert!(msg.contains("values must have at least one value"), "{msg}");

    let text = recipe(&NESTED.replace("[0.3, 0.5]", "[0.3, nan]"));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "nan"));
    assert!(
        msg.starts_with("values must be a finite number (got NaN)"),
        "{msg}"
    );
}

#[test]
fn a_substituted_value_outside_the_window_points_at_its_values_entry() {
    let text = recipe(&NESTED.replace("[0.3, 0.5]", "[0.3, 1.5]"));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "1.5]"));
    assert!(msg.starts_with("dc_V"), "{msg}");
    assert!(msg.contains("1.5"), "{msg}");
    assert!(
        msg.ends_with("(dc_V = 1.5 V, value 2 of the sweep's values, set in the eis step)"),
        "{msg}"
    );
}

#[test]
fn a_nested_step_that_gives_the_swept_key_is_an_error_there() {
    let text = recipe(&NESTED.replace(
        "    kind = \"eis\"\n",
        "    kind = \"eis\"\n    dc_V = 0.4\n",
    ));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "dc_V = 0.4"));
    let (pl, pc) = pos_of(&text, "\"dc_V\"");
    assert_eq!(
        msg,
        format!(
            "eis step in a sweep: dc_V is set by the enclosing sweep (parameter = \"dc_V\" \
             at {pl}:{pc}); remove it here"
        )
    );
}

#[test]
fn nesting_rules_depth_and_the_same_parameter_twice() {
    // The same parameter in two nested sweeps.
    let text = recipe(
        r#"[[step]]
kind = "sweep"
parameter = "dc_V"
values = [0.3]
  [[step.step]]
  kind = "sweep"
  parameter = "dc_V"
  values = [0.4]
    [[step.step.step]]
    kind = "eis"
    amplitude_V = 0.01
    freq_Hz = [1000.0, 1.0]
    points_per_decade = 2
"#,
    );
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (14, 15));
    assert!(
        msg.contains("dc_V is already swept by an enclosing sweep (parameter at 10:13)"),
        "{msg}"
    );

    // Four levels.
    let level = |p: &str, v: &str, depth: usize| {
        let pre = "step.".repeat(depth);
        format!("[[{pre}step]]\nkind = \"sweep\"\nparameter = \"{p}\"\nvalues = [{v}]\n")
    };
    let text = recipe(&format!(
        "{}{}{}{}[[step.step.step.step.step]]\nkind = \"esm_sweep\"\nperiods = 2\n",
        level("dc_V", "0.3", 0),
        level("amplitude_V", "0.01", 1),
        level("freq_Hz", "1.0", 2),
        level("scan_rate_V_per_s", "0.1", 3)
    ));
    let (line, col, msg) = err(&text);
    // The fourth sweep's kind.
    assert_eq!((line, col), (21, 8));
    assert!(
        msg.starts_with("sweeps nest at most 3 levels deep"),
        "{msg}"
    );

    // A temperature sweep inside a dc_V sweep is allowed; inside it, no
    // temperature step.
    let text = recipe(
        r#"[[step]]
kind = "sweep"
parameter = "dc_V"
values = [0.3, 0.4]
  [[step.step]]
  kind = "sweep"
  temperature_K = [300.0]
  tolerance_K = 0.3
  hold_s = 1.0
  timeout_s = 10.0
    [[step.step.step]]
    kind = "eis"
    amplitude_V = 0.01
    freq_Hz = [1000.0, 1.0]
    points_per_decade = 2
"#,
    );
    let r = parse_recipe(&text, "r.toml").unwrap();
    let plan = r.plan();
    assert_eq!(plan.len(), 4);
    assert_eq!(plan[3].label.sweep_iteration, Some(1));
    assert_eq!(plan[3].label.sweep_value(SweepParameter::DcV), Some(0.4));
    assert_eq!(plan[3].label.setpoint_K, Some(300.0));
    let bad = format!(
        "{text}    [[step.step.step]]\n    kind = \"temperature\"\n    setpoint_K = 310.0\n    \
         tolerance_K = 0.3\n    hold_s = 1.0\n    timeout_s = 10.0\n"
    );
    let (_, _, msg) = err(&bad);
    assert!(
        msg.starts_with("a temperature step cannot be nested in a temperature sweep"),
        "{msg}"
    );
}

#[test]
fn a_parameter_sweep_that_expands_past_the_plan_limit_is_refused_at_its_values() {
    // One value a line: a line of 10 001 values is past the line limit.
    let values: Vec<String> = (0..=MAX_PLAN_STEPS)
        .map(|k| format!("{}", 0.1 + 1e-5 * k as f64))
        .collect();
    let text = recipe(&format!(
        "[[step]]\nkind = \"sweep\"\nparameter = \"dc_V\"\nvalues = [\n{}]\n  [[step.step]]\n  kind = \"eis\"\n  amplitude_V = 0.01\n  freq_Hz = [1000.0, 100.0]\n  points_per_decade = 1\n",
        values.join(",\n")
    ));
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), pos_of(&text, "values ="));
    assert_eq!(
        msg,
        "values: 10001 values of dc_V x 1 nested steps bring the plan to 10001 steps; at \
         most 10000 (fewer values, or split the recipe)"
    );
}

#[test]
fn swept_values_meet_the_bench_checks_too() {
    // The SR860 refers to 1 mHz .. 500 kHz: 1e6 Hz is outside, and only
    // the substituted step knows it.
    let bench = parse_bench(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/sim.toml"
        ))
        .unwrap(),
        "sim.toml",
    )
    .unwrap();
    let text = recipe(
        r#"[[step]]
kind = "sweep"
parameter = "freq_Hz"
values = [1.0, 0.0001]
  [[step.step]]
  kind = "esm_sweep"
  dc_V = 0.4
  amplitude_V = 0.02
  periods = 1
"#,
    );
    let r = parse_recipe(&text, "r.toml").unwrap();
    let e = validate_with_bench(&r, &Source::new("r.toml", text.as_str()), &bench).unwrap_err();
    assert_eq!(e.position(), Some(pos_of(&text, "0.0001")));
    assert!(
        e.message().starts_with(
            "frequency 0.0001 Hz is outside the SR860's reference range 0.001 to 500000.0 Hz"
        ),
        "{}",
        e.message()
    );
    assert!(
        e.message().ends_with(
            "(freq_Hz = 0.0001 Hz, value 2 of the sweep's values, set in the esm_sweep step)"
        ),
        "{}",
        e.message()
    );
}
