//! Every duration and time-like number of recipes and bench configs is
//! bounded: finite, positive (or non-negative) where it must be, and at most
//! its documented upper bound, each error at the `LINE:COL` of its key.
//! Table-driven: one row per field, each tried at its bound (accepted), just
//! above it, at 1e10 and 1e19 (the values of the issue), NaN and infinity.
#![allow(clippy::unwrap_used)]

use vegard_recipe::{
    MAX_EQUILIBRATE_S, MAX_SAMPLE_INTERVAL_S, MAX_SIM_CLOCK_OFFSET_S, MAX_SIM_FAULT_AFTER_S,
    MAX_SIM_JITTER_S, MAX_SIM_THERMAL_TAU_S, MAX_STAGE_WAIT_S, MAX_STEP_DURATION_S, MAX_TIMEOUT_S,
    MAX_TRIGGER_LATENCY_S, parse_bench, parse_recipe,
};

/// A recipe with one step of every kind that has a time in it. `@NAME@`
/// placeholders are filled by [`fill`]: the case's value for one of them,
/// the default for the rest.
const RECIPE: &str = r#"[run]
name = "bounds"
deflection_sample_interval_s = @RUN_DEFL_INTERVAL@

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

[[step]]
kind = "ocp"
duration_s = @OCP_DURATION@
sample_interval_s = @OCP_INTERVAL@

[[step]]
kind = "wait"
duration_s = @WAIT_DURATION@

[[step]]
kind = "steps"
levels_V = [0.4]
hold_s = [@STEPS_HOLD@]
sample_interval_s = @STEPS_INTERVAL@

[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.9, -0.1]
scan_rate_V_per_s = @CV_SCAN_RATE@
step_V = 0.002
cycles = 1

[[step]]
kind = "lsv"
begin_V = 0.0
end_V = 0.5
scan_rate_V_per_s = @LSV_SCAN_RATE@
step_V = 0.002

[[step]]
kind = "eis"
dc_V = 0.4
amplitude_V = 0.01
freq_Hz = [1000.0, @EIS_FREQ_LOW@]
points_per_decade = 2
equilibrate_s = @EIS_EQUILIBRATE@

[[step]]
kind = "esm_sweep"
dc_V = 0.4
amplitude_V = 0.02
freq_Hz = [1.0, 0.1]
periods = 2
sample_interval_s = @ESM_INTERVAL@

[[step]]
kind = "temperature"
setpoint_C = 30.0
tolerance_K = 0.3
hold_s = @T_HOLD@
timeout_s = @T_TIMEOUT@

[[step]]
kind = "sweep"
temperature_C = [25.0, 45.0]
tolerance_K = 0.3
hold_s = @SWEEP_HOLD@
timeout_s = @SWEEP_TIMEOUT@

  [[step.step]]
  kind = "wait"
  duration_s = 1.0
"#;

const RECIPE_DEFAULTS: &[(&str, &str)] = &[
    ("RUN_DEFL_INTERVAL", "0.05"),
    ("OCP_DURATION", "2.0"),
    ("OCP_INTERVAL", "0.1"),
    ("WAIT_DURATION", "1.0"),
    ("STEPS_HOLD", "1.0"),
    ("STEPS_INTERVAL", "0.1"),
    ("CV_SCAN_RATE", "0.2"),
    ("LSV_SCAN_RATE", "0.1"),
    ("EIS_FREQ_LOW", "1.0"),
    ("EIS_EQUILIBRATE", "10.0"),
    ("ESM_INTERVAL", "0.01"),
    ("T_HOLD", "30.0"),
    ("T_TIMEOUT", "900.0"),
    ("SWEEP_HOLD", "30.0"),
    ("SWEEP_TIMEOUT", "900.0"),
];

/// A bench with every instrument and a `[sim]` with every time in it.
const BENCH: &str = r#"[bench]
name = "bounds"

[instruments.potentiostat]
driver = "methodscript"
resource = "sim"
current_range_max_A = 0.01
trigger_latency_s = @POT_LATENCY@
timeout_s = @POT_TIMEOUT@

[instruments.deflection]
driver = "scpi-dmm"
resource = "sim"
sample_interval_s = @DEFL_INTERVAL@
invols_nm_per_V = 50.0
spring_constant_N_per_m = 1.0
timeout_s = @DEFL_TIMEOUT@

[instruments.lockin]
driver = "sr860"
resource = "sim"
timeout_s = @LOCKIN_TIMEOUT@

[instruments.temperature]
driver = "ls336"
resource = "sim"
timeout_s = @STAGE_TIMEOUT@

[sim]
time_acceleration = 10.0

[sim.clocks.potentiostat]
offset_s = @CLOCK_OFFSET@
jitter_s = @CLOCK_JITTER@

[sim.faults]
potentiostat_error_after_s = @FAULT_ERROR@
potentiostat_silent_after_s = @FAULT_SILENT@
current_spike_after_s = @FAULT_SPIKE@
lockin_switch_delay_s = @FAULT_SWITCH@

[sim.thermal]
tau_s = @THERMAL_TAU@
"#;

const BENCH_DEFAULTS: &[(&str, &str)] = &[
    ("POT_LATENCY", "0.0"),
    ("POT_TIMEOUT", "2.0"),
    ("DEFL_INTERVAL", "0.001"),
    ("DEFL_TIMEOUT", "2.0"),
    ("LOCKIN_TIMEOUT", "2.0"),
    ("STAGE_TIMEOUT", "2.0"),
    ("CLOCK_OFFSET", "12.5"),
    ("CLOCK_JITTER", "20e-6"),
    ("FAULT_ERROR", "5000.0"),
    ("FAULT_SILENT", "5000.0"),
    ("FAULT_SPIKE", "5000.0"),
    ("FAULT_SWITCH", "0.1"),
    ("THERMAL_TAU", "20.0"),
];

/// `template` with `name` set to `value` and every other placeholder to its
/// default; also returns the 1-based line of `name`.
fn fill(template: &str, defaults: &[(&str, &str)], name: &str, value: &str) -> (String, usize) {
    let marker = format!("@{name}@");
    // 0 for a name not in the template (all defaults).
    let line = template
        .lines()
        .position(|l| l.contains(&marker))
        .map_or(0, |i| i + 1);
    let mut text = template.replace(&marker, value);
    for (k, v) in defaults {
        text = text.replace(&format!("@{k}@"), v);
    }
    assert!(!text.contains('@'), "unfilled placeholder in {text}");
    (text, line)
}

/// The key of a placeholder's line, as the message names it.
fn key_on(template: &str, line: usize) -> String {
    let l = template.lines().nth(line - 1).unwrap().trim();
    l.split(" =").next().unwrap().to_owned()
}

/// Shortest round-trip form, as the messages print numbers.
fn num(x: f64) -> String {
    format!("{x:?}")
}

/// One bounded field: placeholder, bound, whether 0 is allowed, and the
/// bound in words as the message gives it.
struct Field {
    name: &'static str,
    max_s: f64,
    zero_ok: bool,
    words: &'static str,
    /// Whether the bound itself can be valid: a stage's `hold_s` must also
    /// stay below its `timeout_s`, which has the same bound.
    at_bound_ok: bool,
}

const fn f(name: &'static str, max_s: f64, zero_ok: bool, words: &'static str) -> Field {
    Field {
        name,
        max_s,
        zero_ok,
        words,
        at_bound_ok: true,
    }
}

/// A stage hold: bounded like its timeout, and below it.
const fn hold(name: &'static str) -> Field {
    Field {
        at_bound_ok: false,
        ..f(name, MAX_STAGE_WAIT_S, true, "86400.0 s (1 day)")
    }
}

fn recipe_fields() -> Vec<Field> {
    vec![
        f(
            "RUN_DEFL_INTERVAL",
            MAX_SAMPLE_INTERVAL_S,
            false,
            "3600.0 s (1 h)",
        ),
        f(
            "OCP_DURATION",
            MAX_STEP_DURATION_S,
            false,
            "604800.0 s (7 days)",
        ),
        f(
            "WAIT_DURATION",
            MAX_STEP_DURATION_S,
            false,
            "604800.0 s (7 days)",
        ),
        f(
            "STEPS_HOLD",
            MAX_STEP_DURATION_S,
            false,
            "604800.0 s (7 days)",
        ),
        f(
            "EIS_EQUILIBRATE",
            MAX_EQUILIBRATE_S,
            true,
            "86400.0 s (1 day)",
        ),
        hold("T_HOLD"),
        f("T_TIMEOUT", MAX_STAGE_WAIT_S, false, "86400.0 s (1 day)"),
        hold("SWEEP_HOLD"),
        f(
            "SWEEP_TIMEOUT",
            MAX_STAGE_WAIT_S,
            false,
            "86400.0 s (1 day)",
        ),
    ]
}

fn bench_fields() -> Vec<Field> {
    vec![
        f("POT_LATENCY", MAX_TRIGGER_LATENCY_S, true, "1.0 s"),
        f("POT_TIMEOUT", MAX_TIMEOUT_S, false, "3600.0 s (1 h)"),
        f(
            "DEFL_INTERVAL",
            MAX_SAMPLE_INTERVAL_S,
            false,
            "3600.0 s (1 h)",
        ),
        f("DEFL_TIMEOUT", MAX_TIMEOUT_S, false, "3600.0 s (1 h)"),
        f("LOCKIN_TIMEOUT", MAX_TIMEOUT_S, false, "3600.0 s (1 h)"),
        f("STAGE_TIMEOUT", MAX_TIMEOUT_S, false, "3600.0 s (1 h)"),
        f("CLOCK_JITTER", MAX_SIM_JITTER_S, true, "1.0 s"),
        f(
            "FAULT_ERROR",
            MAX_SIM_FAULT_AFTER_S,
            true,
            "2592000.0 s (30 days)",
        ),
        f(
            "FAULT_SILENT",
            MAX_SIM_FAULT_AFTER_S,
            true,
            "2592000.0 s (30 days)",
        ),
        f(
            "FAULT_SPIKE",
            MAX_SIM_FAULT_AFTER_S,
            true,
            "2592000.0 s (30 days)",
        ),
        f("FAULT_SWITCH", MAX_TIMEOUT_S, true, "3600.0 s (1 h)"),
        f(
            "THERMAL_TAU",
            MAX_SIM_THERMAL_TAU_S,
            false,
            "86400.0 s (1 day)",
        ),
    ]
}

/// Parse expecting an error: (line, col, message).
fn recipe_err(text: &str) -> (usize, usize, String) {
    match parse_recipe(text, "r.toml") {
        Ok(r) => panic!("expected an error, parsed {r:?}\n{text}"),
        Err(e) => {
            let (line, col) = e.position().unwrap();
            (line, col, e.message())
        }
    }
}

fn bench_err(text: &str) -> (usize, usize, String) {
    match parse_bench(text, "b.toml") {
        Ok(b) => panic!("expected an error, parsed {b:?}\n{text}"),
        Err(e) => {
            let (line, col) = e.position().unwrap();
            (line, col, e.message())
        }
    }
}

/// The whole table for one kind of file.
fn check_fields(
    template: &str,
    defaults: &[(&str, &str)],
    fields: &[Field],
    parse_ok: &dyn Fn(&str) -> bool,
    parse_err: &dyn Fn(&str) -> (usize, usize, String),
) {
    let (text, line) = fill(template, defaults, "none", "");
    assert_eq!(line, 0);
    assert!(parse_ok(&text), "the defaults must be valid");
    for fl in fields {
        let (_, line) = fill(template, defaults, fl.name, "0");
        let key = key_on(template, line);
        // A key's error points at the key; an array element's at the element.
        let text_line = template.lines().nth(line - 1).unwrap();
        let col = match text_line.find("[@") {
            Some(i) => i + 2,
            None => text_line.find(&key).unwrap() + 1,
        };
        // At the bound: accepted.
        let (text, _) = fill(template, defaults, fl.name, &num(fl.max_s));
        assert_eq!(parse_ok(&text), fl.at_bound_ok, "{key} = {}", fl.max_s);
        // Above it, and the issue's values: refused, naming the bound.
        for bad in [fl.max_s * 1.001, 1e10, 1e19, f64::MAX] {
            let (text, _) = fill(template, defaults, fl.name, &num(bad));
            let (l, c, msg) = parse_err(&text);
            assert_eq!((l, c), (line, col), "{key} = {bad}: {msg}");
            assert!(
                msg.starts_with(&format!("{key} must be <= {} (", fl.words)),
                "{key} = {bad}: {msg}"
            );
            assert!(msg.ends_with(&format!("(got {} s)", num(bad))), "{msg}");
        }
        // Not a finite number.
        for (bad, shown) in [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf")] {
            let (text, _) = fill(template, defaults, fl.name, bad);
            let (l, c, msg) = parse_err(&text);
            assert_eq!((l, c), (line, col), "{key} = {bad}: {msg}");
            let rule = if fl.zero_ok { ">= 0" } else { "> 0" };
            assert_eq!(
                msg,
                format!("{key} must be a finite number {rule} (got {shown})"),
                "{key} = {bad}"
            );
        }
        // Below zero always, zero where it must be positive.
        let (text, _) = fill(template, defaults, fl.name, "-1.0");
        let (_, _, msg) = parse_err(&text);
        let rule = if fl.zero_ok { ">= 0" } else { "> 0" };
        assert_eq!(msg, format!("{key} must be {rule} (got -1.0)"));
        let (text, _) = fill(template, defaults, fl.name, "0.0");
        if fl.zero_ok {
            assert!(parse_ok(&text), "{key} = 0 must be accepted");
        } else {
            assert_eq!(parse_err(&text).2, format!("{key} must be > 0 (got 0.0)"));
        }
    }
}

#[test]
fn every_recipe_duration_is_bounded_at_its_key() {
    check_fields(
        RECIPE,
        RECIPE_DEFAULTS,
        &recipe_fields(),
        &|t| parse_recipe(t, "r.toml").is_ok(),
        &recipe_err,
    );
}

#[test]
fn every_bench_duration_is_bounded_at_its_key() {
    check_fields(
        BENCH,
        BENCH_DEFAULTS,
        &bench_fields(),
        &|t| parse_bench(t, "b.toml").is_ok(),
        &bench_err,
    );
}

/// Sample intervals that must also fit inside their step (`<=
/// duration_s`, `<= 1/(4 f_max)`): refused above the bound with the bound's
/// message, before the step's own check.
#[test]
fn sample_intervals_are_bounded_before_the_step_checks() {
    for name in ["OCP_INTERVAL", "STEPS_INTERVAL", "ESM_INTERVAL"] {
        let (_, line) = fill(RECIPE, RECIPE_DEFAULTS, name, "0");
        for bad in [1e10, 1e19] {
            let (text, _) = fill(RECIPE, RECIPE_DEFAULTS, name, &num(bad));
            let (l, c, msg) = recipe_err(&text);
            assert_eq!((l, c), (line, 1), "{name}: {msg}");
            assert!(
                msg.starts_with("sample_interval_s must be <= 3600.0 s (1 h) ("),
                "{name}: {msg}"
            );
        }
    }
}

/// Durations a step derives from rates and frequencies (a CV's cycles at
/// its scan rate, an LSV, an EIS sweep's lowest frequency) are bounded too,
/// at the key that makes the step long.
#[test]
fn derived_step_durations_are_bounded_at_the_key_that_makes_them_long() {
    let cases: &[(&str, &str, &str, f64)] = &[
        // 2 V per cycle at 1e-9 V/s: 2e9 s.
        ("CV_SCAN_RATE", "1e-9", "scan_rate_V_per_s", 2e9),
        ("LSV_SCAN_RATE", "1e-9", "scan_rate_V_per_s", 5e8),
    ];
    for (name, value, key, got) in cases {
        let (text, line) = fill(RECIPE, RECIPE_DEFAULTS, name, value);
        let (l, c, msg) = recipe_err(&text);
        assert_eq!((l, c), (line, 1), "{msg}");
        assert!(
            msg.starts_with(&format!(
                "{key} must be such that the {} step lasts <= 604800.0 s (7 days)",
                if *name == "CV_SCAN_RATE" { "cv" } else { "lsv" }
            )),
            "{msg}"
        );
        let (_, tail) = msg.split_once("(got a step of ").unwrap();
        let got_s: f64 = tail.strip_suffix(" s)").unwrap().parse().unwrap();
        assert!((got_s / got - 1.0).abs() < 1e-9, "{msg}");
    }
    // EIS down to 1e-6 Hz: two periods of the lowest point alone are 2e6 s.
    let (text, line) = fill(RECIPE, RECIPE_DEFAULTS, "EIS_FREQ_LOW", "1e-6");
    let (l, c, msg) = recipe_err(&text);
    let col = RECIPE.lines().nth(line - 1).unwrap().find("@EIS").unwrap() + 1;
    assert_eq!((l, c), (line, col), "{msg}");
    assert!(
        msg.starts_with("freq_Hz must be such that the eis step lasts <= 604800.0 s"),
        "{msg}"
    );
    // Many holds that each fit but together do not.
    let text = fill(
        RECIPE,
        RECIPE_DEFAULTS,
        "STEPS_HOLD",
        &num(MAX_STEP_DURATION_S),
    )
    .0
    .replace("levels_V = [0.4]", "levels_V = [0.4, 0.5]")
    .replace("hold_s = [604800.0]", "hold_s = [604800.0, 1.0]");
    let (_, _, msg) = recipe_err(&text);
    assert!(
        msg.starts_with("hold_s must be such that the steps step lasts <= 604800.0 s"),
        "{msg}"
    );
}

/// A virtual-bench clock offset is signed: bounded in magnitude.
#[test]
fn sim_clock_offset_is_bounded_in_magnitude() {
    let (_, line) = fill(BENCH, BENCH_DEFAULTS, "CLOCK_OFFSET", "0");
    for ok in [-MAX_SIM_CLOCK_OFFSET_S, 0.0, MAX_SIM_CLOCK_OFFSET_S] {
        let (text, _) = fill(BENCH, BENCH_DEFAULTS, "CLOCK_OFFSET", &num(ok));
        parse_bench(&text, "b.toml").unwrap();
    }
    for bad in [-1e10, 1e19] {
        let (text, _) = fill(BENCH, BENCH_DEFAULTS, "CLOCK_OFFSET", &num(bad));
        let (l, c, msg) = bench_err(&text);
        assert_eq!((l, c), (line, 1));
        assert_eq!(
            msg,
            format!(
                "offset_s must be between -86400.0 s (1 day) and 86400.0 s (1 day) \
                 (a device clock's offset) (got {} s)",
                num(bad)
            )
        );
    }
}

/// The message of the issue's case, in full.
#[test]
fn a_timeout_of_1e19_names_its_bound_and_why() {
    let (text, line) = fill(BENCH, BENCH_DEFAULTS, "POT_TIMEOUT", "1e19");
    let (l, c, msg) = bench_err(&text);
    assert_eq!((l, c), (line, 1));
    assert_eq!(
        msg,
        "timeout_s must be <= 3600.0 s (1 h) (an instrument reply timeout; longer only \
         hangs the run) (got 1e19 s)"
    );
}
