//! The Lake Shore 336 emulator's documented command set over its TCP
//! socket, as QCoDeS's and vegard's drivers use it: every query of inputs
//! A-D and outputs 1-4 answering in the 336's format, refused values
//! leaving settings unchanged with the right `*ESR?` bit, and the output
//! commands (mode, range, setpoint, ramp, temperature limit) driving the
//! stage's thermal model.

// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod emu_common;

use emu_common::LineClient;
use std::time::{Duration, Instant};
use vegard_recipe::SimParams;
use vegard_sim::VirtualBench;

fn bench(speed: f64) -> VirtualBench {
    VirtualBench::start(&SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    })
    .unwrap()
}

fn connect(bench: &VirtualBench) -> LineClient {
    LineClient::connect(&bench.temperature_resource().to_string(), "\r\n", "\r\n")
}

fn number(c: &mut LineClient, query: &str) -> f64 {
    let r = c.query(query);
    r.parse()
        .unwrap_or_else(|_| panic!("{query} -> {r:?} is not a number"))
}

/// `+nnn.nnn`-style: a sign and exactly `decimals` decimals.
fn signed_fixed(s: &str, decimals: usize) -> bool {
    (s.starts_with('+') || s.starts_with('-'))
        && s.split_once('.').is_some_and(|(_, d)| d.len() == decimals)
        && s.parse::<f64>().is_ok_and(f64::is_finite)
}

#[test]
fn every_documented_query_answers_in_the_instruments_format() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    for input in ["A", "B", "C", "D"] {
        for q in ["KRDG?", "CRDG?", "SRDG?", "TLIMIT?"] {
            let r = c.query(&format!("{q} {input}"));
            assert!(signed_fixed(&r, 3), "{q} {input} -> {r:?}");
        }
        let st = c.query(&format!("RDGST? {input}"));
        assert!(
            st.len() == 3 && st.parse::<u8>().is_ok(),
            "RDGST? {input} -> {st:?}"
        );
        assert_eq!(
            c.query(&format!("INNAME? {input}")),
            format!("Input {input}")
        );
        let t = c.query(&format!("INTYPE? {input}"));
        assert_eq!(t.split(',').count(), 5, "INTYPE? {input} -> {t}");
        assert_eq!(c.query(&format!("INCRV? {input}")), "06");
    }
    assert_eq!(c.query("RDGST? A"), "000");
    assert_eq!(c.query("RDGST? B"), "001", "a disabled input reads invalid");
    assert_eq!(c.query("INTYPE? B"), "0,0,0,0,1");
    assert_eq!(
        c.query("CRVHDR? 6"),
        "PT-100         ,STANDARD  ,3,+800.000,2"
    );
    let all = c.query("KRDG? 0");
    assert_eq!(all.split(',').count(), 4, "{all}");
    for out in 1..=4 {
        let mode = c.query(&format!("OUTMODE? {out}"));
        assert_eq!(mode.split(',').count(), 3, "OUTMODE? {out} -> {mode}");
        assert!(signed_fixed(&c.query(&format!("SETP? {out}")), 3));
        assert!(c.query(&format!("RANGE? {out}")).parse::<u8>().is_ok());
        let ramp = c.query(&format!("RAMP? {out}"));
        assert_eq!(ramp, "0,+0.0", "RAMP? {out}");
        assert_eq!(c.query(&format!("RAMPST? {out}")), "0");
        assert!(signed_fixed(&c.query(&format!("HTR? {out}")), 1));
        assert!(signed_fixed(&c.query(&format!("MOUT? {out}")), 2));
    }
    assert_eq!(c.query("OUTMODE? 1"), "1,1,0", "output 1 controls input A");
    for out in 1..=2 {
        assert_eq!(c.query(&format!("PID? {out}")), "+50.0,+20.0,+0.0");
        assert_eq!(c.query(&format!("HTRSET? {out}")), "2,1,+0.000,1");
        assert_eq!(c.query(&format!("HTRST? {out}")), "0");
    }
    assert!(signed_fixed(&c.query("AOUT? 3"), 1));
    assert_eq!(c.query("*ESR?"), "0", "no query was refused");
    bench.shutdown();
}

#[test]
fn refused_values_leave_the_setting_unchanged_and_set_the_right_bit() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    let cases: &[(&str, &str, &str, u8)] = &[
        ("INTYPE A,5,1,0,1,1", "INTYPE? A", "2,1,3,1,1", 16),
        ("INTYPE A,2,1,7,1,1", "INTYPE? A", "2,1,3,1,1", 16),
        ("INTYPE A,2,1", "INTYPE? A", "2,1,3,1,1", 32),
        ("INTYPE E,2,1,0,1,1", "INTYPE? A", "2,1,3,1,1", 16),
        ("INCRV A,60", "INCRV? A", "06", 16),
        ("INCRV A,21", "INCRV? A", "06", 16),
        ("TLIMIT A,-1", "TLIMIT? A", "+0.000", 16),
        ("OUTMODE 1,4,1,0", "OUTMODE? 1", "1,1,0", 16),
        ("OUTMODE 5,1,1,0", "OUTMODE? 1", "1,1,0", 16),
        ("OUTMODE 2,1,5,0", "OUTMODE? 2", "1,2,0", 16),
        ("RANGE 4,4", "RANGE? 4", "0", 16),
        ("HTRSET 3,1,1,0,1", "HTRSET? 1", "2,1,+0.000,1", 16),
        ("HTRSET 1,3,1,0,1", "HTRSET? 1", "2,1,+0.000,1", 16),
        ("PID 3,50,20,0", "PID? 1", "+50.0,+20.0,+0.0", 16),
        ("PID 1,0,20,0", "PID? 1", "+50.0,+20.0,+0.0", 16),
        ("MOUT 1,101", "MOUT? 1", "+000.00", 16),
        ("RAMP 2,1,101", "RAMP? 2", "0,+0.0", 16),
        ("SETP 2,1001", "SETP? 2", "+0.000", 16),
        ("SETP 2,warm", "SETP? 2", "+0.000", 32),
        ("HEAT 1", "RANGE? 1", "0", 32),
    ];
    for &(cmd, query, keeps, bit) in cases {
        c.write(cmd);
        c.assert_silent(0.05);
        assert_eq!(c.query(query), keeps, "after {cmd}");
        assert_eq!(c.query("*ESR?"), bit.to_string(), "after {cmd}");
    }
    // The 336 goes on with the rest of a line after a refused command.
    c.write("RANGE 1,9; RANGE 2,1");
    assert_eq!(c.query("RANGE? 1;RANGE? 2"), "0;1");
    assert_eq!(c.query("*ESR?"), "16");
    bench.shutdown();
}

#[test]
fn input_setup_round_trips_and_sets_what_the_readings_mean() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    c.write("INNAME A,\"Stage PT100\"");
    assert_eq!(c.query("INNAME? A"), "Stage PT100");
    c.write("INNAME B,\"a name longer than fifteen\"");
    assert_eq!(c.query("INNAME? B"), "a name longer t");
    // The PT100 (IEC 60751) in ohms against its own kelvin reading.
    let k = number(&mut c, "KRDG? A");
    let ohm = number(&mut c, "SRDG? A");
    let t = k - 273.15;
    let want = 100.0 * (1.0 + 3.9083e-3 * t - 5.775e-7 * t * t);
    assert!((ohm - want).abs() < 0.02, "{ohm} ohm at {k} K, want {want}");
    // Autorange picks the 300 ohm range for ~110 ohm.
    assert_eq!(c.query("INTYPE? A"), "2,1,3,1,1");
    // A fixed 100 ohm range is too small: sensor units overrange.
    c.write("INTYPE A,2,0,2,1,1");
    assert_eq!(c.query("RDGST? A"), "128");
    c.write("INTYPE A,2,1,0,1,1");
    assert_eq!(c.query("RDGST? A"), "000");
    // No curve: no temperature, the sensor still reads.
    c.write("INCRV A,0");
    assert_eq!(c.query("KRDG? A"), "+0.000");
    assert!(number(&mut c, "SRDG? A") > 100.0);
    // The PT-1000 curve reads the PT100 as far too cold.
    c.write("INCRV A,7");
    assert!(number(&mut c, "KRDG? A") < 80.0);
    c.write("INCRV A,6");
    // Setpoints come in the control input's preferred units.
    c.write("SETP 1,310");
    c.write("INTYPE A,2,1,0,1,2");
    assert_eq!(c.query("SETP? 1"), "+36.850");
    c.write("SETP 1,40");
    c.write("INTYPE A,2,1,0,1,3");
    let setp_ohm = number(&mut c, "SETP? 1");
    let want = 100.0 * (1.0 + 3.9083e-3 * 40.0 - 5.775e-7 * 1600.0);
    assert!((setp_ohm - want).abs() < 0.01, "{setp_ohm}");
    c.write("INTYPE A,2,1,0,1,1");
    assert_eq!(c.query("SETP? 1"), "+313.150");
    // Disabled: no reading at all.
    c.write("INTYPE A,0,0,0,0,1");
    assert_eq!(c.query("KRDG? A;RDGST? A"), "+0.000;001");
    assert_eq!(c.query("*ESR?"), "0");
    bench.shutdown();
}

#[test]
fn output_1_heats_the_stage_only_in_closed_loop_on_input_a() {
    // 20 x: the stage (time constant ~20 s) moves visibly within a wall
    // second, while the world's integration keeps up on a loaded host.
    let bench = bench(20.0);
    let mut c = connect(&bench);
    let ambient = number(&mut c, "KRDG? A");
    c.write("SETP 1,315; RANGE 1,3; OUTMODE 1,0,1,0");
    std::thread::sleep(Duration::from_millis(1500));
    let off = number(&mut c, "KRDG? A");
    assert!(
        (off - ambient).abs() < 0.1,
        "output off: stays at {ambient}, {off}"
    );
    assert_eq!(c.query("HTR? 1"), "+000.0");
    c.write("OUTMODE 1,1,2,0");
    std::thread::sleep(Duration::from_millis(1500));
    let other = number(&mut c, "KRDG? A");
    assert!((other - ambient).abs() < 0.1, "controlling on B: {other}");
    c.write("OUTMODE 1,1,1,0");
    std::thread::sleep(Duration::from_millis(1500));
    let on = number(&mut c, "KRDG? A");
    assert!(
        on > ambient + 3.0 && on < 317.0,
        "closed loop on A heats: {on}"
    );
    assert!(number(&mut c, "HTR? 1") > 0.0);
    // A temperature limit below the stage switches every output off.
    c.write(&format!("TLIMIT A,{:.1}", ambient + 1.0));
    assert_eq!(c.query("RANGE? 1"), "0");
    assert_eq!(c.query("*ESR?"), "0");
    bench.shutdown();
}

#[test]
fn a_setpoint_ramp_moves_the_setpoint_at_its_rate() {
    let speed = 20.0;
    let bench = bench(speed);
    let mut c = connect(&bench);
    // The setpoint ramps with the heater off too.
    c.write("SETP 1,300");
    // 30 K/min = 0.5 K per true s = 10 K per wall s here.
    let rate_K_per_s = 0.5;
    c.write("RAMP 1,1,30");
    let t0 = Instant::now();
    c.write("SETP 1,320");
    assert_eq!(c.query("RAMPST? 1"), "1");
    std::thread::sleep(Duration::from_millis(500));
    let before_s = t0.elapsed().as_secs_f64();
    let sp = number(&mut c, "SETP? 1");
    let after_s = t0.elapsed().as_secs_f64();
    // t0 is taken before the SETP left: the ramp started after it, by at
    // most the time the query took on a loaded host.
    let hi = 300.0 + rate_K_per_s * speed * after_s;
    let lo = 300.0 + rate_K_per_s * speed * (before_s - (after_s - before_s) - 0.2);
    assert!(sp <= hi + 1e-3 && sp >= lo, "{lo} <= {sp} <= {hi}");
    assert!(sp < 320.0, "{sp}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.query("RAMPST? 1"), "0");
    assert_eq!(c.query("SETP? 1"), "+320.000");
    // Ramp off: a new setpoint applies at once.
    c.write("RAMP 1,0,30; SETP 1,305");
    assert_eq!(c.query("RAMPST? 1;SETP? 1"), "0;+305.000");
    assert_eq!(c.query("*ESR?"), "0");
    bench.shutdown();
}
