//! Plan rows and step labels from a recipe: what the dashboard's plan panel
//! lists and what its ETA adds up. Here, beside `Recipe::plan()`, so the
//! engine (announcing a run) and the run-folder tailer (reading one back)
//! compute the same rows.

use vegard_core::PlanRow;

use crate::schema::{PlannedStep, Recipe, Step, ZERO_C_IN_K};

/// One [`PlanRow`] per step of `recipe.plan()` (sweeps expanded).
pub fn plan_rows(recipe: &Recipe) -> Vec<PlanRow> {
    recipe
        .plan()
        .iter()
        .enumerate()
        .map(|(index, p)| PlanRow {
            index,
            kind: p.step.kind_name().to_string(),
            label: step_label(p),
            duration_s: p.step.duration_s(),
            cycles: step_cycles(&p.step),
        })
        .collect()
}

/// What the progress counter counts in a step: CV cycles, potential levels,
/// ESM frequencies or impedance points (the engine's own convention), else 1.
pub fn step_cycles(step: &Step) -> u32 {
    match step {
        Step::Cv(c) => c.cycles,
        Step::Steps(s) => s.levels_V.len() as u32,
        Step::EsmSweep(e) => e.frequencies_Hz().len() as u32,
        Step::Eis(e) => e.n_points(),
        _ => 1,
    }
}

/// A short human label of a planned step, e.g.
/// `cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3` or `eis 0.4 V ±10 mV 1e4->0.01 Hz @ 30.0 C`
/// (the temperature label is the setpoint in force, in °C), with the
/// enclosing parameter sweeps' values in parentheses before it:
/// `esm 0.3 V ±20 mV 1->0.5 Hz (2 f) (dc_V = 0.3 V) @ 25.0 C`.
/// What a technique's progress counter counts (`cycle 2/3`), by step kind;
/// `None` for techniques without one. The CLI's progress lines and the
/// dashboard say the same.
pub fn counter_name(kind: &str) -> Option<&'static str> {
    match kind {
        "cv" => Some("cycle"),
        "steps" => Some("level"),
        "esm_sweep" => Some("frequency"),
        "eis" => Some("point"),
        _ => None,
    }
}

pub fn step_label(p: &PlannedStep) -> String {
    let base = match &p.step {
        Step::Ocp(s) => format!("ocp {} s", num(s.duration_s)),
        Step::Cv(c) => format!(
            "cv {}->[{},{}] V @ {} V/s x{}",
            num(c.begin_V),
            num(c.vertex_V[0]),
            num(c.vertex_V[1]),
            num(c.scan_rate_V_per_s),
            c.cycles
        ),
        Step::Lsv(l) => format!(
            "lsv {}->{} V @ {} V/s",
            num(l.begin_V),
            num(l.end_V),
            num(l.scan_rate_V_per_s)
        ),
        Step::Steps(s) => {
            let levels: Vec<String> = s.levels_V.iter().map(|v| num(*v)).collect();
            format!(
                "steps [{}] V, {} s",
                levels.join(","),
                num(s.hold_s.iter().sum())
            )
        }
        Step::Wait(w) => format!("wait {} s", num(w.duration_s)),
        Step::Eis(e) => format!(
            "eis {} V ±{} mV {}->{} Hz",
            num(e.dc_V),
            num(e.amplitude_V * 1e3),
            num(e.freq_Hz[0]),
            num(e.freq_Hz[1])
        ),
        Step::EsmSweep(e) => {
            let f = e.frequencies_Hz();
            format!(
                "esm {} V ±{} mV {}->{} Hz ({} f)",
                num(e.dc_V),
                num(e.amplitude_V * 1e3),
                num(f.first().copied().unwrap_or(f64::NAN)),
                num(f.last().copied().unwrap_or(f64::NAN)),
                f.len()
            )
        }
        Step::Temperature(t) => format!("temperature -> {:.1} C", t.target_K() - ZERO_C_IN_K),
        Step::Sweep(_) => "sweep".to_string(),
    };
    let values = p.label.sweep_values_text();
    let base = if values.is_empty() {
        base
    } else {
        format!("{base} ({values})")
    };
    match (&p.step, p.label.setpoint_K) {
        (Step::Temperature(_), _) | (_, None) => base,
        (_, Some(k)) => format!("{base} @ {:.1} C", k - ZERO_C_IN_K),
    }
}

/// Shortest round-trip decimal (0.4, 1e4 stays 10000, 0.005), as recipes write them.
fn num(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_the_demo_and_a_sweep() {
        let recipe: Recipe = toml::from_str(
            r#"
            [run]
            name = "x"
            [limits]
            current_max_A = 0.01
            potential_window_V = [-0.2, 1.0]
            [[step]]
            kind = "cv"
            begin_V = 0.4
            vertex_V = [0.9, -0.1]
            scan_rate_V_per_s = 0.2
            step_V = 0.002
            cycles = 3
            [[step]]
            kind = "sweep"
            temperature_C = [30.0]
            tolerance_K = 0.5
            hold_s = 10.0
            timeout_s = 100.0
            [[step.step]]
            kind = "eis"
            dc_V = 0.4
            amplitude_V = 0.01
            freq_Hz = [10000.0, 0.01]
            points_per_decade = 5
            "#,
        )
        .expect("recipe");
        let rows = plan_rows(&recipe);
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3",
                "temperature -> 30.0 C",
                "eis 0.4 V ±10 mV 10000->0.01 Hz @ 30.0 C"
            ]
        );
        assert_eq!(rows[0].cycles, 3);
        assert_eq!(rows[2].cycles, 31);
        assert!((rows[0].duration_s - 30.0).abs() < 1e-9);
    }
}
