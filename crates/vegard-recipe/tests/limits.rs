//! Input limits (issue 16): what the text of a recipe or bench config may
//! be before it is parsed, and the counts that become allocation sizes.
//! Each is refused with the file's name, and a position where one exists.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use vegard_core::limits::{MAX_CONFIG_FILE_BYTES, MAX_CONFIG_LINE_BYTES, MAX_TOML_DEPTH};
use vegard_recipe::{
    MAX_PLAN_STEPS, MAX_SWEEP_POINTS, RecipeError, load_bench, load_recipe, parse_bench,
    parse_recipe,
};

/// A fresh file in a per-test scratch folder.
fn scratch_file(test: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vegard-recipe-limits-{}-{test}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const HEAD: &str = "[run]\nname = \"t\"\n\n[limits]\ncurrent_max_A = 0.01\n\
                    potential_window_V = [-0.2, 1.0]\n\n";

fn err_at(e: &RecipeError) -> (usize, usize, String) {
    let (line, col) = e.position().unwrap_or_else(|| panic!("no position: {e}"));
    (line, col, e.message())
}

#[test]
fn non_utf8_recipe_reports_line_and_column() {
    // 'é' in latin-1 (0xE9) on line 2, column 12.
    let path = scratch_file("utf8", "r.toml", b"[run]\nname = \"caf\xE9\"\n");
    let e = load_recipe(&path).unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (2, 12), "{e}");
    assert!(msg.starts_with("not UTF-8: byte 0xE9"), "{msg}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:12: not UTF-8", path.display())),
        "{e}"
    );

    // A bench the same way.
    let path = scratch_file("utf8", "b.toml", b"# \xB5m\n");
    let e = load_bench(&path).unwrap_err();
    assert_eq!(e.position(), Some((1, 3)), "{e}");
    assert_eq!(e.file(), path.display().to_string());
}

#[test]
fn deeply_nested_recipe_is_refused_before_parsing() {
    // 100 000 levels fit in the size limit; the scan stops at level 33
    // (`[limits]` is the first), where the parser would have allocated for
    // every level up to its own recursion limit.
    // Ten per line: levels 2-11 on line 8, ..., 32 and 33 on line 11.
    let text = format!("{HEAD}x = {}", "[[[[[[[[[[\n".repeat(10_000));
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (11, 2), "{e}");
    assert_eq!(MAX_TOML_DEPTH, 32);
    assert!(
        msg.starts_with("nested 33 levels deep: at most 32"),
        "{msg}"
    );

    // Inline tables and dotted keys nest as well.
    let text = format!("{HEAD}{} = 1\n", vec!["a"; 40].join("."));
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    assert_eq!(e.position().map(|p| p.0), Some(8), "{e}");
    let e = parse_bench(&format!("x = {}", "{a = ".repeat(50)), "b.toml").unwrap_err();
    assert_eq!(e.position(), Some((1, 5 + 5 * MAX_TOML_DEPTH)), "{e}");

    // The 20 MB file is refused by its size before it is read.
    let big = format!("x = {}", "[".repeat(20 << 20));
    let path = scratch_file("deep", "r.toml", big.as_bytes());
    let e = load_recipe(&path).unwrap_err();
    assert!(matches!(e, RecipeError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: 20971524 bytes is larger than a configuration file may be (1048576 bytes, \
             1 MiB; real ones are a few kB)",
            path.display()
        )
    );
}

#[test]
fn a_config_file_larger_than_the_limit_is_refused_even_without_a_size() {
    // One byte over: refused; exactly the limit: read (and then parsed).
    let over = vec![b'#'; MAX_CONFIG_FILE_BYTES as usize + 1];
    let path = scratch_file("size", "over.toml", &over);
    assert!(matches!(
        load_bench(&path).unwrap_err(),
        RecipeError::TooLarge { .. }
    ));
    // A device has no size on disk: the read stops one byte past the limit.
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        let e = load_recipe(zero).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: the content is larger than a configuration file may be (1048576 \
             bytes, 1 MiB; real ones are a few kB)"
        );
    }
}

#[test]
fn a_line_longer_than_the_limit_is_refused_at_its_column() {
    let text = format!("{HEAD}notes = \"{}\"\n", "x".repeat(MAX_CONFIG_LINE_BYTES));
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (8, MAX_CONFIG_LINE_BYTES + 1));
    assert!(
        msg.starts_with("line of 65546 bytes: at most 65536"),
        "{msg}"
    );
}

const EIS: &str = "[[step]]\nkind = \"eis\"\ndc_V = 0.4\namplitude_V = 0.01\n\
                   freq_Hz = [10000.0, 0.01]\npoints_per_decade = 5\n";

#[test]
fn eis_points_per_decade_is_bounded_before_the_frequency_list_is_built() {
    assert!(parse_recipe(&format!("{HEAD}{EIS}"), "r.toml").is_ok());
    // 4e9 per decade over 6 decades: the list would be u32::MAX points
    // (34 GB) and the process aborted; now an error at the key.
    let text = format!("{HEAD}{EIS}").replace("= 5", "= 4000000000");
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (13, 1));
    assert_eq!(
        msg,
        format!(
            "points_per_decade must be such that the sweep has <= {MAX_SWEEP_POINTS} \
             frequencies (a dense real spectrum has ~100) (got 4000000000 per decade: \
             4294967295 points)"
        )
    );
    // The largest that passes: 6 decades x 1666 + 1 = 9997 points (a
    // spectrum of 1.7 days, within the 7-day step bound).
    let text = format!("{HEAD}{EIS}").replace("= 5", "= 1666");
    let recipe = parse_recipe(&text, "r.toml").unwrap();
    assert!(matches!(&recipe.steps[0], vegard_recipe::Step::Eis(s) if s.n_points() == 9997));
    let text = format!("{HEAD}{EIS}").replace("= 5", "= 1667");
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    assert!(e.message().contains("10003 points"), "{e}");
}

#[test]
fn esm_sweep_frequency_counts_are_bounded() {
    let esm = "[[step]]\nkind = \"esm_sweep\"\ndc_V = 0.4\namplitude_V = 0.02\n\
               freq_range_Hz = [1.0, 0.1]\npoints_per_decade = 4000000000\nperiods = 2\n";
    let e = parse_recipe(&format!("{HEAD}{esm}"), "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (13, 1), "{msg}");
    assert!(msg.contains("4000000001 points"), "{msg}");

    let list = vec!["1.0"; MAX_SWEEP_POINTS as usize + 1].join(", ");
    let esm = format!(
        "[[step]]\nkind = \"esm_sweep\"\ndc_V = 0.4\namplitude_V = 0.02\n\
         freq_Hz = [{list}]\nperiods = 2\n"
    );
    let e = parse_recipe(&format!("{HEAD}{esm}"), "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (12, 1), "{msg}");
    assert!(msg.ends_with("(got 10001 frequencies)"), "{msg}");
}

#[test]
fn a_sweep_that_expands_past_the_plan_limit_is_refused() {
    // 2001 temperatures x (1 + 4 nested steps) = 10 005 planned steps.
    let temps = vec!["25.0"; 2001].join(", ");
    let nested = "[[step.step]]\nkind = \"wait\"\nduration_s = 1.0\n".repeat(4);
    let text = format!(
        "{HEAD}[[step]]\nkind = \"sweep\"\ntemperature_C = [{temps}]\ntolerance_K = 0.5\n\
         hold_s = 10.0\ntimeout_s = 600.0\n{nested}"
    );
    let e = parse_recipe(&text, "r.toml").unwrap_err();
    let (line, col, msg) = err_at(&e);
    assert_eq!((line, col), (10, 1), "{msg}");
    assert_eq!(
        msg,
        format!(
            "temperature_C: 2001 temperatures x (1 + 4 nested steps) bring the plan to 10005 \
             steps; at most {MAX_PLAN_STEPS} (split the campaign into several recipes)"
        )
    );
    // 2000 x 5 = 10 000 is the limit itself: accepted, and planned.
    let temps = vec!["25.0"; 2000].join(", ");
    let text = format!(
        "{HEAD}[[step]]\nkind = \"sweep\"\ntemperature_C = [{temps}]\ntolerance_K = 0.5\n\
         hold_s = 10.0\ntimeout_s = 600.0\n{nested}"
    );
    assert_eq!(
        parse_recipe(&text, "r.toml").unwrap().plan().len(),
        MAX_PLAN_STEPS
    );
}

#[test]
fn a_trigger_pin_past_the_gpio_mask_is_refused_by_validation() {
    let bench = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/sim.toml"),
    )
    .unwrap();
    assert!(parse_bench(&bench, "b.toml").is_ok());
    assert!(bench.contains("trigger_gpio_pin = 0\n"));
    let text = bench.replacen("trigger_gpio_pin = 0\n", "trigger_gpio_pin = 200\n", 1);
    let e = parse_bench(&text, "b.toml").unwrap_err();
    assert!(
        e.message()
            .starts_with("trigger_gpio_pin must be <= 15 (the GPIO outputs are 0..=15) (got 200)"),
        "{e}"
    );
}
