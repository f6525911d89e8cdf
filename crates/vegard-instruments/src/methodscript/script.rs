//! Script generation. Every script has the same frame: set up the channel
//! and current ranges, configure the trigger output and drive it low, raise
//! it right before the measurement loop (device time 0 of the loop and the
//! digitizer's start signal), and in `on_finished:` switch the cell off and
//! lower the trigger, so an error or an abort (`Z`) also leaves the cell off
//! and the line low.
//!
//! The pin is driven low before it is raised because its level outlives a
//! script: anything that left it high (a script that lowered it only in its
//! body and was aborted, another program's script) would make the next high
//! write no rising edge, and the digitizer would never start. Writing low
//! first makes the high write an edge whatever the line's state; the low
//! write comes right after `set_gpio_cfg`, so in CV `cell_on` lies between
//! the two and the line is low for a while before it rises.

use super::MsError;
use super::literal::format_si;
use crate::device::Technique;

/// Settings of the script frame that come from the bench, not the recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScriptFrame {
    /// Digital output wired to the digitizer's trigger input (0..=15).
    pub trigger_gpio_pin: u8,
    /// Smallest current range autoranging may use, A.
    pub current_range_min_A: f64,
    /// Current range for techniques that do not name one (OCP), A.
    pub current_range_max_A: f64,
}

/// Build the complete script text for `technique`, ending with the empty
/// line that makes the device start it.
///
/// `sync_every_samples = Some(K)` repeats the sync edge inside the
/// measurement loop: a counter `n` counts samples (across the back-to-back
/// loops of potential steps), the line is lowered one sample after each
/// edge and raised again after every K-th sample, so edge b comes right
/// after sample `b * K - 1`, at `b * K * interval` of device time: the
/// start of the digitizer's block b (see `vegard_core::sync_blocks`). Not
/// for EIS, whose loop body runs once per frequency.
pub fn build_script(
    technique: &Technique,
    frame: &ScriptFrame,
    sync_every_samples: Option<u64>,
) -> Result<String, MsError> {
    let fail = |m: String| Err(MsError::Script(m));
    if frame.trigger_gpio_pin > 15 {
        return fail(format!(
            "trigger_gpio_pin {} is not a GPIO (0..=15)",
            frame.trigger_gpio_pin
        ));
    }
    let mask = 1u32 << frame.trigger_gpio_pin;
    let interval_s = technique.sample_interval_s();
    // EIS has no sample interval of its own; its frequencies are checked below.
    if !matches!(technique, Technique::Eis { .. }) && !positive(interval_s) {
        return fail(format!("sample interval {interval_s} s must be > 0"));
    }
    let range_max_A = match technique {
        Technique::Cv {
            current_range_A, ..
        }
        | Technique::Steps {
            current_range_A, ..
        }
        | Technique::Lsv {
            current_range_A, ..
        }
        | Technique::Eis {
            current_range_A, ..
        } => *current_range_A,
        Technique::Ocp { .. } => frame.current_range_max_A,
    };
    let range_min_A = frame.current_range_min_A;
    if !(range_min_A > 0.0 && range_min_A <= range_max_A) {
        return fail(format!(
            "current ranges must satisfy 0 < min ({range_min_A} A) <= max ({range_max_A} A)"
        ));
    }
    let is_eis = matches!(technique, Technique::Eis { .. });
    // The lines each loop body ends with when the edge repeats.
    let sync_lines: Vec<String> = match sync_every_samples {
        None => Vec::new(),
        Some(_) if is_eis => {
            return fail("EIS cannot repeat the sync edge (one loop body per frequency)".into());
        }
        Some(k) if !(2..=MAX_SYNC_EVERY).contains(&k) => {
            return fail(format!(
                "sync edge every {k} samples: must be 2..={MAX_SYNC_EVERY}"
            ));
        }
        Some(k) => vec![
            "  add_var n 1i".to_string(),
            "  if n == 1i".to_string(),
            "    set_gpio 0x00i".to_string(),
            "  endif".to_string(),
            format!("  if n >= {k}i"),
            format!("    set_gpio 0x{mask:02X}i"),
            "    store_var n 0i ja".to_string(),
            "  endif".to_string(),
        ],
    };

    let mut s = String::new();
    let mut push = |line: &str| {
        s.push_str(line);
        s.push('\n');
    };
    push("e");
    if is_eis {
        // One-letter names as in PalmSens' own EIS scripts: frequency, Z', Z''.
        push("var f");
        push("var r");
        push("var j");
    } else {
        if matches!(
            technique,
            Technique::Cv { .. } | Technique::Steps { .. } | Technique::Lsv { .. }
        ) {
            push("var c");
        }
        push("var p");
        if !sync_lines.is_empty() {
            push("var n");
            push("store_var n 0i ja");
        }
    }
    push("set_pgstat_chan 0");
    if is_eis {
        // High speed mode: the only mode in which meas_loop_eis runs; the
        // loop sets the bandwidth per frequency itself.
        push("set_pgstat_mode 3");
    } else {
        push("set_pgstat_mode 2");
        // Analog bandwidth four times the sample rate: enough to follow the
        // signal between samples, low enough to suppress mains pickup at
        // slow rates.
        let bandwidth_Hz = 4.0 / interval_s;
        push(&format!("set_max_bandwidth {}", format_si(bandwidth_Hz)?));
    }
    push(&format!("set_range ba {}", format_si(range_max_A)?));
    push(&format!(
        "set_autoranging ba {} {}",
        format_si(range_min_A)?,
        format_si(range_max_A)?
    ));
    match technique {
        Technique::Cv {
            begin_V,
            vertex_V,
            scan_rate_V_per_s,
            step_V,
            cycles,
            ..
        } => {
            if *cycles == 0 {
                return fail("cycles must be >= 1".into());
            }
            if !(positive(*step_V) && positive(*scan_rate_V_per_s)) {
                return fail(format!(
                    "step_V ({step_V}) and scan_rate_V_per_s ({scan_rate_V_per_s}) must be > 0"
                ));
            }
            push(&format!("set_e {}", format_si(*begin_V)?));
            push(&format!("set_gpio_cfg 0x{mask:02X} 1"));
            push("set_gpio 0x00i");
            push("cell_on");
            // The rising edge stays right before the loop: its instant is
            // device time 0 of the loop (trigger_latency_s is measured from it).
            push(&format!("set_gpio 0x{mask:02X}i"));
            push(&format!(
                "meas_loop_cv p c {} {} {} {} {} nscans({cycles})",
                format_si(*begin_V)?,
                format_si(vertex_V[0])?,
                format_si(vertex_V[1])?,
                format_si(*step_V)?,
                format_si(*scan_rate_V_per_s)?
            ));
            push("  pck_start");
            push("    pck_add p");
            push("    pck_add c");
            push("  pck_end");
            for l in &sync_lines {
                push(l);
            }
        }
        Technique::Steps {
            levels_V,
            hold_s,
            sample_interval_s,
            ..
        } => {
            let Some(&first_V) = levels_V.first() else {
                return fail("potential steps need at least one level".into());
            };
            if hold_s.len() != levels_V.len() {
                return fail(format!(
                    "{} levels but {} hold times",
                    levels_V.len(),
                    hold_s.len()
                ));
            }
            if let Some(h) = hold_s
                .iter()
                .find(|h| h.is_nan() || **h < *sample_interval_s)
            {
                return fail(format!(
                    "hold {h} s is shorter than one sample interval ({sample_interval_s} s)"
                ));
            }
            push(&format!("set_e {}", format_si(first_V)?));
            push(&format!("set_gpio_cfg 0x{mask:02X} 1"));
            push("set_gpio 0x00i");
            // Unlike CV (which starts at rest), switching the cell on here IS
            // the first step: the edge goes first so the digitizer and the
            // device clock see the whole transient from its start.
            push(&format!("set_gpio 0x{mask:02X}i"));
            push("cell_on");
            // One chronoamperometry loop per level, back to back: device time
            // keeps counting samples across them (sample k of the step is at
            // (k+1) x interval after the edge; levels are whole multiples).
            for (k, (E_V, t_s)) in levels_V.iter().zip(hold_s).enumerate() {
                push(&format!(
                    "meas_loop_ca p c {} {} {}",
                    format_si(*E_V)?,
                    format_si(*sample_interval_s)?,
                    format_si(*t_s)?
                ));
                push("  pck_start");
                push("    pck_add p");
                push("    pck_add c");
                push("  pck_end");
                for l in &sync_lines {
                    push(l);
                }
                if k + 1 < levels_V.len() {
                    push("endloop");
                }
            }
        }
        Technique::Lsv {
            begin_V,
            end_V,
            scan_rate_V_per_s,
            step_V,
            ..
        } => {
            if !(positive(*step_V) && positive(*scan_rate_V_per_s)) {
                return fail(format!(
                    "step_V ({step_V}) and scan_rate_V_per_s ({scan_rate_V_per_s}) must be > 0"
                ));
            }
            let span_V = (end_V - begin_V).abs();
            if span_V.is_nan() || span_V < *step_V {
                return fail(format!(
                    "LSV from {begin_V} V to {end_V} V spans less than one step ({step_V} V)"
                ));
            }
            // Like CV: the cell rests at the start potential, then the edge
            // marks the start of the sweep.
            push(&format!("set_e {}", format_si(*begin_V)?));
            push(&format!("set_gpio_cfg 0x{mask:02X} 1"));
            push("set_gpio 0x00i");
            push("cell_on");
            push(&format!("set_gpio 0x{mask:02X}i"));
            push(&format!(
                "meas_loop_lsv p c {} {} {} {}",
                format_si(*begin_V)?,
                format_si(*end_V)?,
                format_si(*step_V)?,
                format_si(*scan_rate_V_per_s)?
            ));
            push("  pck_start");
            push("    pck_add p");
            push("    pck_add c");
            push("  pck_end");
            for l in &sync_lines {
                push(l);
            }
        }
        Technique::Eis {
            dc_V,
            amplitude_V,
            f_start_Hz,
            f_end_Hz,
            n_points,
            equilibrate_s,
            ..
        } => {
            if !positive(*amplitude_V) {
                return fail(format!("EIS amplitude {amplitude_V} V must be > 0"));
            }
            if !(positive(*f_start_Hz) && positive(*f_end_Hz)) {
                return fail(format!(
                    "EIS frequencies ({f_start_Hz} Hz, {f_end_Hz} Hz) must be > 0"
                ));
            }
            if *n_points == 0 {
                return fail("EIS needs at least one frequency point".into());
            }
            if !(equilibrate_s.is_finite() && *equilibrate_s >= 0.0) {
                return fail(format!("equilibrate_s = {equilibrate_s} must be >= 0"));
            }
            push(&format!("set_e {}", format_si(*dc_V)?));
            push(&format!("set_gpio_cfg 0x{mask:02X} 1"));
            push("set_gpio 0x00i");
            push("cell_on");
            if *equilibrate_s > 0.0 {
                push(&format!("wait {}", format_si(*equilibrate_s)?));
            }
            // The edge after equilibration: time 0 is the first frequency.
            push(&format!("set_gpio 0x{mask:02X}i"));
            // The device takes the AC amplitude as RMS; recipes give peak.
            let ac_V_rms = amplitude_V / std::f64::consts::SQRT_2;
            push(&format!(
                "meas_loop_eis f r j {} {} {} {n_points} {}",
                format_si(ac_V_rms)?,
                format_si(*f_start_Hz)?,
                format_si(*f_end_Hz)?,
                format_si(*dc_V)?
            ));
            push("  pck_start");
            push("    pck_add f");
            push("    pck_add r");
            push("    pck_add j");
            push("  pck_end");
        }
        Technique::Ocp {
            duration_s,
            sample_interval_s,
        } => {
            if duration_s.is_nan() || *duration_s < *sample_interval_s {
                return fail(format!(
                    "OCP duration {duration_s} s is shorter than one sample interval ({sample_interval_s} s)"
                ));
            }
            push(&format!("set_gpio_cfg 0x{mask:02X} 1"));
            push("set_gpio 0x00i");
            push(&format!("set_gpio 0x{mask:02X}i"));
            push(&format!(
                "meas_loop_ocp p {} {}",
                format_si(*sample_interval_s)?,
                format_si(*duration_s)?
            ));
            push("  pck_start");
            push("    pck_add p");
            push("  pck_end");
            for l in &sync_lines {
                push(l);
            }
        }
    }
    push("endloop");
    // Runs after completion, a device error and an abort alike. cell_off
    // first: it is the part that matters.
    push("on_finished:");
    push("  cell_off");
    push("  set_gpio 0x00i");
    push("");
    Ok(s)
}

/// Largest block in potentiostat samples: what the integer literal of the
/// loop body's comparison holds comfortably (MethodSCRIPT integers are 32
/// bit).
pub const MAX_SYNC_EVERY: u64 = 1 << 30;

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: ScriptFrame = ScriptFrame {
        trigger_gpio_pin: 0,
        current_range_min_A: 1e-9,
        current_range_max_A: 10e-3,
    };

    #[test]
    fn potential_steps_are_back_to_back_ca_loops_after_the_edge() {
        let steps = Technique::Steps {
            levels_V: vec![0.45, 0.5],
            hold_s: vec![60.0, 30.0],
            sample_interval_s: 0.05,
            current_range_A: 10e-3,
        };
        let expected = "e
var c
var p
set_pgstat_chan 0
set_pgstat_mode 2
set_max_bandwidth 80
set_range ba 10m
set_autoranging ba 1n 10m
set_e 450m
set_gpio_cfg 0x01 1
set_gpio 0x00i
set_gpio 0x01i
cell_on
meas_loop_ca p c 450m 50m 60
  pck_start
    pck_add p
    pck_add c
  pck_end
endloop
meas_loop_ca p c 500m 50m 30
  pck_start
    pck_add p
    pck_add c
  pck_end
endloop
on_finished:
  cell_off
  set_gpio 0x00i

";
        assert_eq!(build_script(&steps, &FRAME, None).unwrap(), expected);
        let uneven = Technique::Steps {
            levels_V: vec![0.45, 0.5],
            hold_s: vec![60.0],
            sample_interval_s: 0.05,
            current_range_A: 10e-3,
        };
        assert!(build_script(&uneven, &FRAME, None).is_err());
    }

    #[test]
    fn cv_script_matches_contract_text() {
        let cv = Technique::Cv {
            begin_V: 0.4,
            vertex_V: [0.9, -0.1],
            scan_rate_V_per_s: 0.2,
            step_V: 0.002,
            cycles: 3,
            current_range_A: 10e-3,
        };
        let expected = "e
var c
var p
set_pgstat_chan 0
set_pgstat_mode 2
set_max_bandwidth 400
set_range ba 10m
set_autoranging ba 1n 10m
set_e 400m
set_gpio_cfg 0x01 1
set_gpio 0x00i
cell_on
set_gpio 0x01i
meas_loop_cv p c 400m 900m -100m 2m 200m nscans(3)
  pck_start
    pck_add p
    pck_add c
  pck_end
endloop
on_finished:
  cell_off
  set_gpio 0x00i

";
        assert_eq!(build_script(&cv, &FRAME, None).unwrap(), expected);
    }

    #[test]
    fn a_repeated_sync_edge_counts_samples_across_back_to_back_loops() {
        let steps = Technique::Steps {
            levels_V: vec![0.45, 0.5],
            hold_s: vec![2.0, 2.0],
            sample_interval_s: 0.01,
            current_range_A: 10e-3,
        };
        let script = build_script(&steps, &FRAME, Some(100)).unwrap();
        // Declared and zeroed once, before the first loop: the count runs on
        // from one level to the next, so edges stay 100 samples apart.
        assert_eq!(script.matches("var n\nstore_var n 0i ja\n").count(), 1);
        let body = "  pck_end
  add_var n 1i
  if n == 1i
    set_gpio 0x00i
  endif
  if n >= 100i
    set_gpio 0x01i
    store_var n 0i ja
  endif
";
        assert_eq!(script.matches(body).count(), 2, "{script}");
        let cv = Technique::Cv {
            begin_V: 0.4,
            vertex_V: [0.9, -0.1],
            scan_rate_V_per_s: 0.2,
            step_V: 0.002,
            cycles: 3,
            current_range_A: 10e-3,
        };
        assert_eq!(
            build_script(&cv, &FRAME, Some(100))
                .unwrap()
                .matches(body)
                .count(),
            1
        );
        // The pin of the bench, not pin 0.
        let pin3 = ScriptFrame {
            trigger_gpio_pin: 3,
            ..FRAME
        };
        assert!(
            build_script(&cv, &pin3, Some(7))
                .unwrap()
                .contains("  if n >= 7i\n    set_gpio 0x08i\n")
        );
        assert!(build_script(&cv, &FRAME, Some(1)).is_err());
    }

    #[test]
    fn ocp_script_has_no_cell_on() {
        let ocp = Technique::Ocp {
            duration_s: 2.0,
            sample_interval_s: 0.01,
        };
        let frame = ScriptFrame {
            trigger_gpio_pin: 3,
            ..FRAME
        };
        let expected = "e
var p
set_pgstat_chan 0
set_pgstat_mode 2
set_max_bandwidth 400
set_range ba 10m
set_autoranging ba 1n 10m
set_gpio_cfg 0x08 1
set_gpio 0x00i
set_gpio 0x08i
meas_loop_ocp p 10m 2
  pck_start
    pck_add p
  pck_end
endloop
on_finished:
  cell_off
  set_gpio 0x00i

";
        assert_eq!(build_script(&ocp, &frame, None).unwrap(), expected);
    }

    #[test]
    fn refuses_bad_settings() {
        let cv = |step_V: f64, cycles: u32| Technique::Cv {
            begin_V: 0.0,
            vertex_V: [0.5, -0.5],
            scan_rate_V_per_s: 0.1,
            step_V,
            cycles,
            current_range_A: 1e-3,
        };
        assert!(build_script(&cv(0.0, 1), &FRAME, None).is_err());
        assert!(build_script(&cv(0.001, 0), &FRAME, None).is_err());
        let bad_pin = ScriptFrame {
            trigger_gpio_pin: 16,
            ..FRAME
        };
        assert!(build_script(&cv(0.001, 1), &bad_pin, None).is_err());
        let bad_range = ScriptFrame {
            current_range_min_A: 1.0,
            ..FRAME
        };
        let e = build_script(&cv(0.001, 1), &bad_range, None).unwrap_err();
        assert!(e.to_string().contains("min (1 A) <= max (0.001 A)"), "{e}");
        let ocp = Technique::Ocp {
            duration_s: 0.001,
            sample_interval_s: 0.01,
        };
        assert!(build_script(&ocp, &FRAME, None).is_err());
    }

    #[test]
    fn lsv_golden_script() {
        let mk = |begin_V: f64, end_V: f64, scan_rate_V_per_s: f64| Technique::Lsv {
            begin_V,
            end_V,
            scan_rate_V_per_s,
            step_V: 0.002,
            current_range_A: 1e-3,
        };
        let lsv = mk(0.2, 0.8, 0.01);
        // Sample interval 0.2 s -> bandwidth 20 Hz.
        let expected = "e
var c
var p
set_pgstat_chan 0
set_pgstat_mode 2
set_max_bandwidth 20
set_range ba 1m
set_autoranging ba 1n 1m
set_e 200m
set_gpio_cfg 0x01 1
set_gpio 0x00i
cell_on
set_gpio 0x01i
meas_loop_lsv p c 200m 800m 2m 10m
  pck_start
    pck_add p
    pck_add c
  pck_end
endloop
on_finished:
  cell_off
  set_gpio 0x00i

";
        assert_eq!(build_script(&lsv, &FRAME, None).unwrap(), expected);
        assert!((lsv.sample_interval_s() - 0.2).abs() < 1e-15);
        // Downward sweeps are fine; a span below one step is not.
        let down = mk(0.8, 0.2, 0.01);
        assert!(
            build_script(&down, &FRAME, None)
                .unwrap()
                .contains("meas_loop_lsv p c 800m 200m 2m 10m\n")
        );
        let flat = mk(0.2, 0.201, 0.01);
        let e = build_script(&flat, &FRAME, None).unwrap_err().to_string();
        assert!(e.contains("spans less than one step"), "{e}");
        let bad_rate = mk(0.2, 0.8, 0.0);
        assert!(build_script(&bad_rate, &FRAME, None).is_err());
    }

    #[test]
    fn eis_golden_script_with_rms_amplitude_and_equilibration() {
        let mk =
            |amplitude_V: f64, f_end_Hz: f64, n_points: u32, equilibrate_s: f64| Technique::Eis {
                dc_V: 0.4,
                amplitude_V,
                f_start_Hz: 10_000.0,
                f_end_Hz,
                n_points,
                equilibrate_s,
                current_range_A: 1e-3,
            };
        let eis = mk(0.01, 0.01, 31, 5.0);
        // 10 mV peak = 7.0710678 mV RMS on the wire.
        let expected = "e
var f
var r
var j
set_pgstat_chan 0
set_pgstat_mode 3
set_range ba 1m
set_autoranging ba 1n 1m
set_e 400m
set_gpio_cfg 0x01 1
set_gpio 0x00i
cell_on
wait 5
set_gpio 0x01i
meas_loop_eis f r j 7.07106781187m 10k 10m 31 400m
  pck_start
    pck_add f
    pck_add r
    pck_add j
  pck_end
endloop
on_finished:
  cell_off
  set_gpio 0x00i

";
        let script = build_script(&eis, &FRAME, None).unwrap();
        assert_eq!(script, expected);
        let ac = script
            .lines()
            .find_map(|l| l.strip_prefix("meas_loop_eis f r j "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap();
        let ac_V = crate::methodscript::parse_literal(ac).unwrap();
        assert!(
            (ac_V * std::f64::consts::SQRT_2 - 0.01).abs() < 1e-13,
            "{ac_V}"
        );

        // No equilibration: no wait, the edge follows cell_on directly.
        let quick = mk(0.01, 0.01, 31, 0.0);
        let script = build_script(&quick, &FRAME, None).unwrap();
        assert!(!script.contains("wait"));
        assert!(script.contains("cell_on\nset_gpio 0x01i\nmeas_loop_eis"));

        for bad in [
            mk(0.0, 0.01, 31, 0.0),
            mk(0.01, 0.0, 31, 0.0),
            mk(0.01, 0.01, 0, 0.0),
            mk(0.01, 0.01, 31, -1.0),
        ] {
            assert!(build_script(&bad, &FRAME, None).is_err(), "{bad:?}");
        }
    }
}
