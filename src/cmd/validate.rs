//! `vegard validate`: check a recipe against a bench without touching hardware.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::input::load_checked;
use vegard_core::format::duration_words;

pub fn cmd_validate(recipe_path: &Path, bench: Option<&Path>) -> Result<ExitCode> {
    let (recipe, _bench, bench_path) = load_checked(recipe_path, bench)?;
    let plan = recipe.plan();
    let total = recipe.duration_s();
    println!(
        "{}: ok on bench {}",
        recipe_path.display(),
        bench_path.display()
    );
    println!(
        "  {} recipe steps -> {} planned steps, ~{:.0} s of experiment ({})",
        recipe.steps.len(),
        plan.len(),
        total,
        duration_words(total)
    );
    // The expanded plan, one line per step, so a campaign can be checked
    // before it occupies the bench for hours.
    for (k, p) in plan.iter().enumerate() {
        // The innermost sweep's iteration, the setpoint in force and the
        // enclosing parameter sweeps' values: `[sweep 2 @ 25.00 C, dc_V = 0.5 V]`.
        let values = p.label.sweep_values_text();
        let values_after = |sep: &str| {
            if values.is_empty() {
                String::new()
            } else {
                format!("{sep}{values}")
            }
        };
        let label = match (p.label.sweep_iteration, p.label.setpoint_K) {
            (Some(i), Some(sp)) => format!(
                "  [sweep {} @ {:.2} C{}]",
                i + 1,
                sp - 273.15,
                values_after(", ")
            ),
            (Some(i), None) => format!("  [sweep {}{}]", i + 1, values_after(": ")),
            (None, Some(sp)) => format!("  [@ {:.2} C]", sp - 273.15),
            (None, None) => String::new(),
        };
        let at_least = if matches!(p.step, vegard_recipe::Step::Temperature(_)) {
            ">="
        } else {
            ""
        };
        let dur = format!("{at_least}{:.1} s", p.step.duration_s());
        println!(
            "  {:>3}. {:<12} {dur:>10}{label}",
            k + 1,
            p.step.kind_name()
        );
    }
    Ok(ExitCode::SUCCESS)
}
