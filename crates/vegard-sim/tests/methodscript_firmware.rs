//! The MethodSCRIPT emulator as a firmware, over its pseudo-terminal: the
//! EmStat4 identity, the script language (variables, arrays, loops,
//! conditions), the SWV and DPV loops, current ranges (clipping and the
//! overload bit) and the firmware's error replies with code and position.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Pstat, decode_package};
use vegard_recipe::SimParams;
use vegard_sim::VirtualBench;

/// Time acceleration of the pulse-technique tests.
const SPEED_PULSES: f64 = 5.0;

fn bench(speed: f64) -> VirtualBench {
    VirtualBench::start(&SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    })
    .unwrap()
}

/// `(status, range index)` of every variable of a package that has them.
fn metadata(line: &str) -> Vec<Option<(u8, u8)>> {
    line.strip_prefix('P')
        .unwrap()
        .split(';')
        .map(|var| {
            let meta: Vec<&str> = var.split(',').skip(1).collect();
            match meta.as_slice() {
                [s, r] => Some((
                    u8::from_str_radix(s.strip_prefix('1').unwrap(), 16).unwrap(),
                    u8::from_str_radix(r.strip_prefix('2').unwrap(), 16).unwrap(),
                )),
                [] => None,
                other => panic!("metadata {other:?} in {line}"),
            }
        })
        .collect()
}

fn packages(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with('P')).collect()
}

#[test]
fn identifies_as_an_emstat4_not_a_bootloader() {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    p.send("t\n");
    let first = p.line(2.0).unwrap();
    let second = p.line(2.0).unwrap();
    // PalmSens' libraries take the device type from the start of the
    // firmware string: `es4_lr` is an EmStat4 LR, `espbl` the Pico's
    // bootloader (which cannot run scripts).
    assert_eq!(first, "tes4_lr1.4");
    assert!(!first.contains("espbl"));
    assert!(second.starts_with('R') && second.ends_with('*'), "{second}");
    p.send("v\n");
    assert_eq!(p.line(2.0).as_deref(), Some("v0104"));
    // An unknown idle command: its character and the error code.
    p.send("x\n");
    assert_eq!(p.line(2.0).as_deref(), Some("x!0003"));
}

/// Sums 0..5 through an array and a loop, stops a second loop with
/// `breakloop`, branches with if/elseif/else, and packages the results.
const LANGUAGE_SCRIPT: &str = "e\nvar i\nvar s\nvar x\nvar k\narray a 5i\n\
store_var i 0i ja\nloop i < 5i\n  array_set a i i\n  add_var i 1i\nendloop\n\
store_var s 0i ja\nstore_var i 0i ja\nloop i < 5i\n  array_get a i x\n  add_var s x\n  add_var i 1i\nendloop\n\
copy_var s k\nmul_var k 3i\nsub_var k 6i\ndiv_var k 4i\n\
store_var i 0i ja\nloop i < 100i\n  if i == 7i\n    breakloop\n  endif\n  add_var i 1i\nendloop\n\
if s < 10i\n  send_string \"low\"\nelseif s == 10i\n  send_string \"ten\"\nelse\n  send_string \"high\"\nendif\n\
pck_start\n  pck_add s\n  pck_add k\n  pck_add i\npck_end\n\n";

#[test]
fn variables_arrays_loops_and_conditions_compute_like_the_firmware() {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    p.send(LANGUAGE_SCRIPT);
    let lines = p.until_script_end(5.0);
    assert_eq!(lines[0], "e", "{lines:?}");
    // Three loops: each `L` ... `+`.
    assert_eq!(lines.iter().filter(|l| *l == "L").count(), 3, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| *l == "+").count(), 3, "{lines:?}");
    assert!(lines.contains(&"Tten".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l == "Tlow" || l == "Thigh"));
    let pk = packages(&lines);
    assert_eq!(pk.len(), 1, "{lines:?}");
    let v = decode_package(pk[0]);
    // s = 0+1+2+3+4; k = (3 s - 6) / 4; the breakloop left i at 7.
    assert_eq!(v[0].0, "ja");
    assert!((v[0].1 - 10.0).abs() < 1e-9, "{v:?}");
    assert!((v[1].1 - 6.0).abs() < 1e-9, "{v:?}");
    assert!((v[2].1 - 7.0).abs() < 1e-9, "{v:?}");
}

/// The scan of PalmSens' SWV loop example, arguments in variables: -0.3 V
/// to 0.3 V in 5 mV steps, 50 mV amplitude, 20 Hz.
const SWV_SCRIPT: &str = "e\nvar p\nvar c\nvar f\nvar r\nvar b\nvar n\n\
store_var b -300m ja\nstore_var n 300m ja\n\
set_range ba 10m\nset_autoranging ba 1n 10m\nset_e b\ncell_on\n\
meas_loop_swv p c f r b n 5m 50m 20\n  pck_start\n  pck_add p\n  pck_add c\n  pck_add f\n  pck_add r\n  pck_end\nendloop\n\
on_finished:\n  cell_off\n\n";

#[test]
fn swv_reports_every_step_with_forward_reverse_and_difference() {
    // Pulses make the electrode solver work (debug build, shared CPUs):
    // a moderate acceleration keeps the device's timing.
    let bench = bench(SPEED_PULSES);
    let mut p = Pstat::open(&bench);
    p.send(SWV_SCRIPT);
    let lines = p.until_script_end(60.0);
    assert_eq!(&lines[..2], ["e", "M0000"], "{lines:?}");
    assert_eq!(&lines[lines.len() - 2..], ["*", ""]);
    let pk = packages(&lines);
    // round(0.6 / 0.005) + 1 = 121 steps.
    assert_eq!(pk.len(), 121);
    let mut overloaded = 0;
    for (k, l) in pk.iter().enumerate() {
        let v = decode_package(l);
        let types: Vec<&str> = v.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["da", "ba", "ba", "ba"], "{l}");
        assert!(
            (v[0].1 - (-0.3 + 0.005 * k as f64)).abs() < 2e-6,
            "{k}: {l}"
        );
        let (i, i_f, i_r) = (v[1].1, v[2].1, v[3].1);
        assert!(i.is_finite() && i_f.is_finite() && i_r.is_finite(), "{l}");
        assert!((i - (i_f - i_r)).abs() <= 1e-5 * i.abs() + 2e-9, "{l}");
        // Both currents on the range all three report, within its full
        // scale; at full scale when flagged overload.
        let meta = metadata(l);
        let (status, index) = meta[1].unwrap();
        assert!(meta[2..].iter().all(|m| *m == Some((status, index))), "{l}");
        let range_A = 1e-9 * 10f64.powi(i32::from(index) / 3 - 1);
        let peak_A = i_f.abs().max(i_r.abs());
        assert!(peak_A <= range_A * (1.0 + 1e-9), "{l}");
        if status & 0x2 != 0 {
            overloaded += 1;
            assert!((peak_A - range_A).abs() < 1e-9 * range_A, "{l}");
        }
    }
    eprintln!("{overloaded} of 121 SWV steps overloaded the 10 mA range");
    // Far below the film's rest potential (0.4 V) both pulses reduce it:
    // the forward and reverse currents are cathodic there.
    for l in &pk {
        let v = decode_package(l);
        if v[0].1 < 0.0 {
            assert!(v[2].1 < 0.0 && v[3].1 < 0.0, "{l}");
        }
    }
    assert!(!bench.cell_is_on());
}

#[test]
fn dpv_reports_one_difference_per_step_on_time() {
    // Pulses make the electrode solver work (debug build, shared CPUs):
    // a moderate acceleration keeps the device's timing.
    let bench = bench(SPEED_PULSES);
    let mut p = Pstat::open(&bench);
    // -0.2 .. 0.6 V, 10 mV steps at 100 mV/s (0.1 s each), 25 mV pulses of 20 ms.
    p.send(
        "e\nvar p\nvar c\nset_range ba 10m\nset_autoranging ba 1n 10m\nset_e -200m\ncell_on\n\
         meas_loop_dpv p c -200m 600m 10m 25m 20m 100m\n  pck_start\n  pck_add p\n  pck_add c\n  pck_end\nendloop\n\
         on_finished:\n  cell_off\n\n",
    );
    let started = std::time::Instant::now();
    let lines = p.until_script_end(60.0);
    // 81 steps x 0.1 s = 8.1 s of device time.
    assert!(started.elapsed().as_secs_f64() > 8.1 / SPEED_PULSES * 0.9);
    let pk = packages(&lines);
    assert_eq!(pk.len(), 81);
    let currents: Vec<f64> = pk.iter().map(|l| decode_package(l)[1].1).collect();
    for (k, l) in pk.iter().enumerate() {
        let v = decode_package(l);
        assert!((v[0].1 - (-0.2 + 0.01 * k as f64)).abs() < 2e-6, "{l}");
        assert!(v[1].1.is_finite() && v[1].1.abs() < 10e-3, "{l}");
    }
    // A differential current: the pulse changes the current, so not all
    // differences are zero, and they stay far below the currents' range.
    let spread = currents.iter().fold(0.0_f64, |m, i| m.max(i.abs()));
    assert!(spread > 1e-9, "{currents:?}");
}

/// A potential step far from the film's rest potential (0.4 V) on a fixed
/// range: `range` is the `set_range` literal.
fn step_on_range(range: &str) -> Vec<String> {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    p.send(&format!(
        "e\nvar p\nvar c\nset_range ba {range}\nset_e 400m\ncell_on\n\
         meas_loop_ca p c 900m 20m 400m\n  pck_start\n  pck_add p\n  pck_add c\n  pck_end\nendloop\n\
         on_finished:\n  cell_off\n\n"
    ));
    p.until_script_end(10.0)
}

#[test]
fn current_beyond_the_range_reads_full_scale_with_the_overload_bit() {
    // On 10 mA the model's current is seen as it is: well above 100 uA.
    let wide = step_on_range("10m");
    let wide_I: Vec<f64> = packages(&wide)
        .iter()
        .map(|l| decode_package(l)[1].1)
        .collect();
    assert_eq!(wide_I.len(), 20);
    assert!(wide_I[0].abs() > 200e-6, "{wide_I:?}");
    // On 100 uA the same step reads the range's full scale, flagged.
    let narrow = step_on_range("100u");
    let pk = packages(&narrow);
    assert_eq!(pk.len(), 20);
    let mut overloaded = 0;
    for l in &pk {
        let v = decode_package(l);
        let (status, index) = metadata(l)[1].unwrap();
        assert_eq!(index, 18, "100 uA is EmStat4 range 18: {l}");
        assert!(v[1].1.abs() <= 100e-6 * (1.0 + 1e-9), "{l}");
        if status & 0x2 != 0 {
            overloaded += 1;
            assert!((v[1].1.abs() - 100e-6).abs() < 1e-12, "{l}");
        }
    }
    // The first samples, where the 10 mA run saw more than 100 uA, overload.
    let expected = wide_I.iter().take_while(|i| i.abs() > 100e-6).count();
    assert!(expected >= 1);
    assert!(
        overloaded >= expected.min(pk.len()) - 1,
        "{overloaded} vs {expected}"
    );
}

#[test]
fn refused_scripts_name_code_line_and_column_and_never_run() {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    let cases = [
        // Unknown command, at its first character.
        (
            "e\nvar c\ncell_on\n  frobnicate 3\n\n",
            "!2001: Line 4, Col 3",
        ),
        // Wrong number of arguments.
        ("e\nset_e 1 2\n\n", "!2002: Line 2, Col 1"),
        // A malformed literal, at the argument.
        ("e\nvar c\ncell_on\nset_e 4x00m\n\n", "!2003: Line 4, Col 7"),
        // A variable never declared, at the argument.
        (
            "e\nvar p\nmeas_loop_ocp p ivl 2\nendloop\n\n",
            "!2004: Line 3, Col 17",
        ),
        // A block never closed, at its opener.
        (
            "e\nvar i\nloop i < 3i\n  add_var i 1i\n\n",
            "!2005: Line 3, Col 1",
        ),
    ];
    for (script, reply) in cases {
        p.send(script);
        assert_eq!(p.line(2.0).as_deref(), Some(reply), "{script:?}");
        assert_eq!(p.line(0.3), None, "nothing after a refusal: {script:?}");
        assert!(!bench.cell_is_on(), "a refused script must not run");
    }
}

#[test]
fn runtime_errors_stop_the_script_and_run_on_finished() {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar z\nvar x\nstore_var z 0i ja\nstore_var x 1i ja\ncell_on\ndiv_var x z\nsend_string \"after\"\n\
         on_finished:\n  cell_off\n\n",
    );
    let lines = p.until_script_end(5.0);
    assert_eq!(lines, ["e", "!4002: Line 7, Col 1", ""]);
    assert!(!bench.cell_is_on());
    p.send("e\nvar i\narray a 3i\nstore_var i 3i ja\narray_get a i i\n\n");
    let lines = p.until_script_end(5.0);
    assert_eq!(lines, ["e", "!4003: Line 5, Col 1", ""]);
}

#[test]
fn z_aborts_an_endless_loop() {
    let bench = bench(20.0);
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar i\nstore_var i 0i ja\ncell_on\nloop i < 1i\nendloop\non_finished:\n  cell_off\n\n",
    );
    assert_eq!(p.line(2.0).as_deref(), Some("e"));
    assert_eq!(p.line(2.0).as_deref(), Some("L"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(bench.cell_is_on(), "the loop runs");
    p.send("Z\n");
    assert_eq!(p.until_script_end(2.0), ["Z", ""]);
    assert!(!bench.cell_is_on(), "on_finished ran");
}
