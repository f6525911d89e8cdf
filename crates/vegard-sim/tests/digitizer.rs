//! The SCPI digitizer emulator over its TCP socket, alone and triggered by
//! the potentiostat's GPIO through the bench's trigger line.

mod common;

use common::{Pstat, Scpi, sleep_true};
use std::time::Instant;
use vegard_recipe::SimParams;
use vegard_sim::{Device, SampleTruth, VirtualBench};

/// An OCP record of 2 s with the trigger edge before the loop.
const OCP_TRIGGERED: &str = "e\nvar p\nset_gpio_cfg 0x01 1\nset_gpio 0x01i\n\
meas_loop_ocp p 10m 2\n  pck_start\n  pck_add p\n  pck_end\nendloop\nset_gpio 0x00i\n\
on_finished:\n  cell_off\n\n";

fn params(speed: f64) -> SimParams {
    SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    }
}

/// The driver's configuration sequence: external trigger, timer sampling.
fn arm_external(m: &mut Scpi, samp_tim_s: f64, count: u64) {
    for cmd in [
        "*RST",
        "*CLS",
        "CONF:VOLT:DC 10",
        "VOLT:DC:APER 0.0005",
        "TRIG:SOUR EXT",
        "TRIG:SLOP POS",
        "TRIG:DEL 0",
        "SAMP:SOUR TIM",
        &format!("SAMP:TIM {samp_tim_s}"),
        &format!("SAMP:COUN {count}"),
        "FORM:DATA REAL,64",
        "INIT",
    ] {
        m.write(cmd);
    }
    assert_eq!(m.query("*OPC?"), "1");
    m.assert_no_error();
}

#[test]
fn identity_and_error_queue() {
    let bench = VirtualBench::start(&params(20.0)).unwrap();
    let mut m = Scpi::connect(&bench);
    assert_eq!(
        m.query("*IDN?"),
        "Keysight Technologies,34465A,VEGARD-SIM-0001,A.03.02-vegard"
    );
    m.assert_no_error();
    m.write("FROB:NICATE 3");
    m.write("SAMP:COUN 0");
    m.write("SAMP:COUN 1000001");
    m.write("*TRG");
    assert_eq!(m.query("SYST:ERR?"), "-113,\"Undefined header\"");
    assert_eq!(m.query("SYST:ERR?"), "-222,\"Data out of range\"");
    assert_eq!(m.query("SYST:ERR?"), "-222,\"Data out of range\"");
    assert_eq!(m.query("SYST:ERR?"), "-211,\"Trigger ignored\"");
    m.assert_no_error();
    m.write("SAMP:COUN 1000000");
    assert_eq!(m.query("SAMP:COUN?"), "+1000000");
    m.write("*CLS");
    m.write("BOGUS");
    m.write("*CLS");
    m.assert_no_error();
    // Nothing measured yet: an empty block.
    assert_eq!(m.query("DATA:POIN?"), "+0");
    assert_eq!(m.query("R?"), "#10");
    assert!(bench.received(Device::Deflection, "FROB:NICATE"));
}

#[test]
fn bus_trigger_with_ascii_readings() {
    let bench = VirtualBench::start(&params(50.0)).unwrap();
    let mut m = Scpi::connect(&bench);
    for cmd in [
        "CONF:VOLT:DC 1",
        "TRIG:SOUR BUS",
        "SAMP:SOUR TIM",
        "SAMP:TIM 0.01",
        "SAMP:COUN 5",
        "FORM:DATA ASC",
        "INIT",
    ] {
        m.write(cmd);
    }
    m.assert_no_error();
    sleep_true(&bench, 0.5);
    assert_eq!(m.query("DATA:POIN?"), "+0", "no readings before *TRG");
    m.write("*TRG");
    sleep_true(&bench, 0.2);
    let payload = m.query_block("R? 3");
    let text = String::from_utf8(payload).unwrap();
    let values: Vec<f64> = text.split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(values.len(), 3, "{text}");
    // `+1.23456789012345E-01`: sign, 15 significant digits, 2-digit exponent.
    for v in text.split(',') {
        assert_eq!(v.len(), 21, "{v}");
    }
    // The lever at rest: only holder drift (< 0.01 nm) and 0.02 nm noise, / 60 nm/V.
    assert!(values.iter().all(|v| v.abs() < 2e-3), "{values:?}");
    assert_eq!(m.query("DATA:POIN?"), "+2");
    assert_eq!(
        m.query_block("R?").iter().filter(|&&b| b == b',').count(),
        1
    );
    assert_eq!(m.query("DATA:POIN?"), "+0");
    let truth = bench.truth_log();
    assert_eq!(truth.deflection.len(), 5);
    assert!(
        truth
            .deflection
            .iter()
            .all(|s| s.segment == SampleTruth::NO_TRIGGER)
    );
}

#[test]
fn gpio_edge_triggers_readings_at_the_sample_rate() {
    let speed = 20.0;
    let samp_tim_s = 1e-3;
    let drift_ppm = -35.0;
    let before_start = Instant::now();
    let bench = VirtualBench::start(&params(speed)).unwrap();
    let after_start = Instant::now();
    let mut m = Scpi::connect(&bench);
    arm_external(&mut m, samp_tim_s, 100_000);
    sleep_true(&bench, 0.3);
    assert_eq!(
        m.query("DATA:POIN?"),
        "+0",
        "armed meter waits for the edge"
    );

    let mut p = Pstat::open(&bench);
    p.send(OCP_TRIGGERED);
    let lines = p.until_script_end(5.0);
    assert_eq!(lines.iter().filter(|l| l.starts_with('P')).count(), 200);

    // Readings taken so far = those due between the edge and the query.
    let q0 = Instant::now();
    let points: u64 = m.query("DATA:POIN?").parse().unwrap();
    let q1 = Instant::now();
    let truth = bench.truth_log();
    assert_eq!(truth.triggers_s.len(), 1);
    let t_trig = truth.triggers_s[0];
    let tau_lo = (q0 - after_start).as_secs_f64() * speed;
    let tau_hi = (q1 - before_start).as_secs_f64() * speed;
    let rate = 1.0 + drift_ppm * 1e-6;
    let expected = |tau: f64| ((tau - t_trig) * rate / samp_tim_s).floor() + 1.0;
    assert!(
        (expected(tau_lo) - 1.0..=expected(tau_hi) + 1.0).contains(&(points as f64)),
        "{points} readings, expected {}..{}",
        expected(tau_lo),
        expected(tau_hi)
    );
    // At least the 2 s of the OCP loop.
    assert!(points > 2000);

    let readings = m.readings_real64("R?");
    assert!(readings.len() as u64 >= points);
    assert!(readings.iter().all(|v| v.abs() < 2e-3), "lever at rest");
    m.write("ABOR");
    m.assert_no_error();

    // Reading j is at trigger + j * SAMP:TIM on a clock 35 ppm slow, with
    // 5 us rms jitter.
    let truth = bench.truth_log();
    let n = truth.deflection.len();
    assert!(n >= readings.len());
    let mut sum = 0.0;
    for s in &truth.deflection {
        assert_eq!(s.segment, 0);
        let residual = s.t_true_s - t_trig - s.index as f64 * samp_tim_s / rate;
        assert!(
            residual.abs() < 6.0 * 5e-6,
            "reading {}: {residual}",
            s.index
        );
        sum += residual;
    }
    // Without the rate error the mean residual would be -35e-6 * mean(j *
    // 1 ms), about -40 us here; with it, 5 us / sqrt(n).
    assert!(
        (sum / n as f64).abs() < 1e-6,
        "mean residual {}",
        sum / n as f64
    );
    // The first potentiostat sample is 10 ms after the same edge.
    let first = truth.potentiostat[0];
    assert_eq!((first.segment, first.index), (0, 0));
    assert!((first.t_true_s - t_trig - 0.01).abs() < 1e-4);
}

#[test]
fn cv_shrinks_and_swells_the_film_as_vegard_says() {
    // With the drift and noise switched off the digitizer sees exactly
    // kappa * Q_F / InvOLS; the CV's net charge over a whole cycle is small,
    // but at the cathodic vertex the film holds the most ions.
    let mut prm = params(40.0);
    prm.noise.deflection_nm_rms = 0.0;
    prm.drift.holder_nm_per_min = 0.0;
    prm.drift.random_walk_nm_per_sqrt_min = 0.0;
    let bench = VirtualBench::start(&prm).unwrap();
    let mut m = Scpi::connect(&bench);
    arm_external(&mut m, 0.01, 1000);
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar c\nvar p\nset_e 400m\nset_gpio_cfg 0x01 1\ncell_on\nset_gpio 0x01i\n\
         meas_loop_cv p c 400m 900m -100m 2m 200m\n  pck_start\n  pck_add p\n  pck_add c\n  \
         pck_end\nendloop\nset_gpio 0x00i\non_finished:\n  cell_off\n\n",
    );
    let lines = p.until_script_end(5.0);
    let currents: Vec<f64> = lines
        .iter()
        .filter(|l| l.starts_with('P'))
        .map(|l| common::decode_package(l)[1].1)
        .collect();
    assert_eq!(currents.len(), 1000);
    sleep_true(&bench, 0.1);
    let volts = m.readings_real64("R?");
    assert!(volts.len() >= 990, "{}", volts.len());
    let truth = vegard_sim::truth(&prm).unwrap();
    let invols = prm.lever.invols_nm_per_V;
    // Charge from the potentiostat's current (10 ms samples), deflection
    // from the digitizer (10 ms readings on the same trigger): at the anodic
    // vertex (2.5 s) ions have left, the film shrank (kappa < 0).
    let q_at = |k: usize| currents[..k].iter().sum::<f64>() * 0.01;
    let q_vertex = q_at(250);
    let u_vertex_nm = volts[250] * invols;
    assert!(
        q_vertex > 0.0 && u_vertex_nm < 0.0,
        "Q {q_vertex} C, u {u_vertex_nm} nm"
    );
    // Faradaic charge = total minus the double layer's C_dl * (0.9 - 0.4) V
    // (the IR drop shifts that by C_dl * I R_s, about 1 uC); then u / Q_F
    // is kappa, up to the rectangle-rule integration.
    let q_faradaic = q_vertex - truth.C_dl_F * 0.5;
    let kappa_nm_per_C = u_vertex_nm / q_faradaic;
    let expect = truth.kappa_nm_per_mC * 1e3;
    assert!(
        (kappa_nm_per_C / expect - 1.0).abs() < 0.02,
        "{kappa_nm_per_C} vs {expect} nm/C"
    );
}
