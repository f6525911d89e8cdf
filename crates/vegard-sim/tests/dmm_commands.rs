//! The 34465A emulator's documented command set over its TCP socket: every
//! query answers in the meter's format, refused input queues the meter's
//! error and leaves the setting alone, the sample timer's minimum follows
//! the integration time, and READ?/FETCh?/R?/DATA:REMove? return the
//! readings the bench's lever gives, on the meter's timebase.

// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Pstat, Scpi, sleep_true};
use std::time::{Duration, Instant};
use vegard_recipe::SimParams;
use vegard_sim::{SampleTruth, VirtualBench};

fn bench(speed: f64) -> VirtualBench {
    VirtualBench::start(&SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    })
    .unwrap()
}

fn num(reply: &str) -> f64 {
    reply.parse().unwrap_or_else(|e| panic!("{reply:?}: {e}"))
}

/// The lever at rest: holder drift (< 0.01 nm) and 0.02 nm noise over
/// 60 nm/V stay far below 2 mV.
fn assert_at_rest(values: &[f64]) {
    assert!(
        values.iter().all(|v| v.is_finite() && v.abs() < 2e-3),
        "{values:?}"
    );
}

/// `+1.23456789012345E-01`: sign, 15 significant digits, 2-digit exponent.
fn assert_reading_format(v: &str) {
    let b = v.as_bytes();
    assert_eq!(b.len(), 21, "{v}");
    assert!(b[0] == b'+' || b[0] == b'-', "{v}");
    assert_eq!(&v[2..3], ".", "{v}");
    assert!(v[17..19] == *"E+" || v[17..19] == *"E-", "{v}");
}

/// After `*RST`, every query of the implemented set answers, with the
/// meter's reset values in its formats.
#[test]
fn every_documented_query_answers_with_reset_values() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    m.write("*RST");
    m.write("*CLS");
    for (query, want) in [
        ("*OPT?", "DIG"),
        ("STAT:QUES?", "+0"),
        ("STATus:QUEStionable:EVENt?", "+0"),
        ("STAT:QUES:COND?", "+0"),
        ("*ESR?", "0"),
        ("*ESE?", "0"),
        ("*STB?", "0"),
        ("*SRE?", "0"),
        ("*TST?", "0"),
        ("*OPC?", "1"),
        ("SYST:ERR?", "+0,\"No error\""),
        ("SYSTem:LFRequency?", "+50"),
        ("SYST:VERS?", "1999.0"),
        ("SYST:LIC:CAT?", "\"DIG\""),
        ("SENSe:FUNCtion?", "\"VOLT\""),
        ("FUNC?", "\"VOLT\""),
        ("SENSe:VOLTage:DC:RANGe?", "+1.00000000E+01"),
        ("VOLT:RANG? MIN", "+1.00000000E-01"),
        ("VOLT:RANG? MAX", "+1.00000000E+03"),
        ("SENSe:VOLT:RANGe:AUTO?", "1"),
        ("SENSe:VOLT:APERture?", "+1.00000000E-01"),
        ("VOLT:APER? MIN", "+2.00000000E-05"),
        ("SENSe:VOLT:APERture:ENABled?", "0"),
        ("SENSe:VOLT:NPLC?", "+1.00000000E+01"),
        ("VOLT:NPLC? MIN", "+1.00000000E-03"),
        ("SENSe:VOLTage:DC:RESolution?", "+1.00000000E-06"),
        ("SENSe:VOLT:ZERO:AUTO?", "1"),
        ("VOLT:IMP:AUTO?", "0"),
        ("CONF?", "\"VOLT +1.00000000E+01,+1.00000000E-06\""),
        ("TRIGger:SOURce?", "IMM"),
        ("TRIGger:SLOPe?", "NEG"),
        ("TRIGger:DELay?", "+1.60000000E-04"),
        ("TRIG:DEL? MAX", "+3.60000000E+03"),
        ("TRIGger:DELay:AUTO?", "1"),
        ("TRIGger:COUNt?", "+1.00000000E+00"),
        ("TRIG:COUN? MAX", "+1.00000000E+09"),
        ("TRIGger:LEVel?", "+0.00000000E+00"),
        ("SAMPle:SOURce?", "IMM"),
        ("SAMPle:TIMer?", "+1.00000000E+00"),
        // 10 PLC at 50 Hz, twice for auto-zero, once more for autorange.
        ("SAMPle:TIMer? MIN", "+6.00000000E-01"),
        ("SAMPle:COUNt?", "+1"),
        ("SAMP:COUN? MAX", "+1000000"),
        ("SAMPle:COUNt:PRETrigger?", "+0"),
        ("FORM?", "ASC,+9"),
        ("DATA:POIN?", "+0"),
        ("DATA:LAST?", "+9.91000000000000E+37 VDC"),
        ("DISP?", "1"),
        ("DISPlay:STATe?", "1"),
        ("DISPLAY:TEXT?", "\"\""),
    ] {
        assert_eq!(m.query(query), want, "{query}");
    }
    m.assert_no_error();
    // Readings: one each (sample count 1), plausible, in the meter's format.
    for query in [
        "READ?",
        "FETCh?",
        "MEASure:VOLTage:DC?",
        "MEAS:VOLT:DC? 1,MAX",
    ] {
        let r = m.query(query);
        assert_reading_format(&r);
        assert_at_rest(&[num(&r)]);
    }
    assert_eq!(m.query("CONF?"), "\"VOLT +1.00000000E+00,+3.00000000E-05\"");
    let last = m.query("DATA:LAST?");
    assert!(last.ends_with(" VDC"), "{last}");
    assert_eq!(m.query("DATA:REMove? 1").len(), 21);
    assert_eq!(m.query_block("R?"), b"");
    m.assert_no_error();
}

/// An unknown query gets no reply, like the meter: -113 goes to the queue,
/// and the next reply on the line is the answer to the next query.
#[test]
fn unknown_query_queues_undefined_header_and_stays_silent() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    m.write("VOLT:FROB?");
    assert_eq!(m.query("SYST:ERR?"), "-113,\"Undefined header\"");
    // Command error sets bit 5 of the event status register, read and cleared.
    m.write("BOGUS");
    assert_eq!(m.query("*STB?"), "4", "error queue not empty");
    assert_eq!(m.query("*ESR?"), "32");
    assert_eq!(m.query("*ESR?"), "0");
    m.write("*CLS");
    m.assert_no_error();
}

/// Each refused setting queues the meter's error code and leaves the
/// setting as it was.
#[test]
fn refused_input_queues_the_error_and_keeps_the_setting() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    m.write("*RST");
    m.write("SAMP:COUN 5");
    m.write("VOLT:RANG 1");
    m.assert_no_error();
    let long_text = format!("DISP:TEXT \"{}\"", "x".repeat(41));
    for (setting, bad, code) in [
        ("SAMP:COUN?", "SAMP:COUN 0", -222),
        ("SAMP:COUN?", "SAMP:COUN 1000001", -222),
        ("SAMP:COUN?", "SAMP:COUN FIVE", -224),
        ("VOLT:NPLC?", "VOLT:NPLC 0.5", -224),
        ("VOLT:NPLC?", "VOLT:NPLC 200", -222),
        ("VOLT:APER?", "VOLT:APER 1e-5", -222),
        ("VOLT:APER?", "VOLT:APER 2", -222),
        ("VOLT:RANG?", "VOLT:RANG 2000", -222),
        ("VOLT:RES?", "VOLT:RES 1e-9", -222),
        ("VOLT:ZERO:AUTO?", "VOLT:ZERO:AUTO 2", -224),
        ("TRIG:DEL?", "TRIG:DEL -1", -222),
        ("TRIG:DEL?", "TRIG:DEL 3601", -222),
        ("TRIG:COUN?", "TRIG:COUN 0", -222),
        ("TRIG:SOUR?", "TRIG:SOUR FOO", -224),
        ("TRIG:SLOP?", "TRIG:SLOP UP", -224),
        ("TRIG:LEV?", "TRIG:LEV 2", -222),
        ("SAMP:TIM?", "SAMP:TIM 1e-6", -222),
        ("SAMP:SOUR?", "SAMP:SOUR EXT", -224),
        ("SAMP:COUN:PRET?", "SAMP:COUN:PRET 5", -222),
        ("FUNC?", "FUNC \"CURR\"", -224),
        ("FORM?", "FORM REAL,32", -224),
        ("DISP:TEXT?", &long_text, -223),
        ("DATA:POIN?", "DATA:REM? 3", -222),
        ("DATA:POIN?", "R? 0", -222),
    ] {
        let before = m.query(setting);
        m.write(bad);
        let err = m.query("SYST:ERR?");
        assert!(err.starts_with(&format!("{code},")), "{bad}: {err}");
        m.assert_no_error();
        assert_eq!(m.query(setting), before, "{bad} changed {setting}");
    }
    // FETC? with nothing acquired since *RST: -230, no reply.
    m.write("FETC?");
    assert_eq!(m.query("SYST:ERR?"), "-230,\"Data corrupt or stale\"");
    // READ? with a bus trigger cannot be triggered: -214, no reply.
    m.write("TRIG:SOUR BUS");
    m.write("READ?");
    assert_eq!(m.query("SYST:ERR?"), "-214,\"Trigger deadlock\"");
    m.write("TRIG:SOUR IMM;:TRIG:COUN INF");
    assert_eq!(m.query("TRIG:COUN?"), "+9.90000000E+37");
    m.write("READ?");
    assert_eq!(m.query("SYST:ERR?"), "-214,\"Trigger deadlock\"");
    m.assert_no_error();
}

/// `SAMP:TIM? MIN` is the integration time, twice with auto-zero, once more
/// with autorange; the resolution follows the integration time and range.
#[test]
fn sample_timer_minimum_follows_the_integration_time() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    m.write("*RST");
    m.write("VOLT:RANG 10");
    m.write("VOLT:ZERO:AUTO OFF");
    // 1 us grid: a tolerance of half a step.
    let tol_s = 0.5e-6;
    for nplc in [0.001, 0.006, 0.06, 1.0, 10.0, 100.0] {
        m.write(&format!("VOLT:NPLC {nplc}"));
        let min = num(&m.query("SAMP:TIM? MIN"));
        assert!((min - nplc / 50.0).abs() <= tol_s, "NPLC {nplc}: {min}");
    }
    m.write("VOLT:NPLC 0.2");
    assert_eq!(num(&m.query("SAMP:TIM? MIN")), 0.004);
    m.write("VOLT:ZERO:AUTO ON");
    assert_eq!(num(&m.query("SAMP:TIM? MIN")), 0.008);
    m.write("VOLT:RANG:AUTO ON");
    assert_eq!(num(&m.query("SAMP:TIM? MIN")), 0.012);
    // Aperture: 2 us steps, and it takes over from NPLC until NPLC is sent.
    m.write("VOLT:RANG 10");
    m.write("VOLT:ZERO:AUTO OFF");
    m.write("VOLT:APER 0.0020013");
    assert_eq!(m.query("VOLT:APER:ENAB?"), "1");
    assert_eq!(m.query("VOLT:APER?"), "+2.00200000E-03");
    assert!((num(&m.query("SAMP:TIM? MIN")) - 0.002002).abs() <= tol_s);
    m.write("VOLT:NPLC 1");
    assert_eq!(m.query("VOLT:APER:ENAB?"), "0");
    assert!((num(&m.query("SAMP:TIM? MIN")) - 0.02).abs() <= tol_s);
    // SAMP:TIM MIN sets what the query reports.
    m.write("SAMP:TIM MIN");
    assert!((num(&m.query("SAMP:TIM?")) - 0.02).abs() <= tol_s);
    // Resolution = 0.3 ppm x 10 V at 1 PLC; 30 uV asks for 0.02 PLC.
    assert_eq!(m.query("VOLT:RES?"), "+3.00000000E-06");
    m.write("VOLT:RES 3.0e-05");
    assert_eq!(m.query("VOLT:NPLC?"), "+2.00000000E-02");
    m.write("VOLT:RANG 1");
    assert_eq!(m.query("VOLT:RES?"), "+3.00000000E-06");
    m.assert_no_error();
}

/// READ? takes SAMP:COUN readings one integration-plus-zero time apart (the
/// automatic trigger delay before each), FETC? returns the same ones again,
/// R? and DATA:REM? remove them; REAL,64 carries the same values.
#[test]
fn read_fetch_and_remove_return_the_levers_readings() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    m.write("*RST");
    m.write("CONF:VOLT:DC 1");
    m.write("VOLT:NPLC 0.02");
    m.write("SAMP:COUN 10");
    let text = m.query("READ?");
    let parts: Vec<&str> = text.split(',').collect();
    assert_eq!(parts.len(), 10, "{text}");
    parts.iter().for_each(|p| assert_reading_format(p));
    let values: Vec<f64> = parts.iter().map(|p| num(p)).collect();
    assert_at_rest(&values);
    assert_eq!(m.query("FETC?"), text, "FETC? leaves memory as it is");
    m.write("FORM REAL,64");
    let block = m.readings_real64("FETC?");
    // 15 significant digits in ASCII: equal to 1 part in 1e14.
    let same = |a: &[f64], b: &[f64]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-14 * y.abs().max(1e-300))
    };
    assert!(same(&values, &block), "{values:?} vs {block:?}");
    assert_eq!(m.query("DATA:POIN?"), "+10");
    assert_eq!(m.readings_real64("R? 4"), block[..4]);
    assert_eq!(m.query("DATA:POIN?"), "+6");
    m.write("FORM ASC");
    let removed: Vec<f64> = m.query("DATA:REM? 2").split(',').map(num).collect();
    assert!(same(&removed, &block[4..6]), "{removed:?}");
    assert_eq!(m.query("DATA:POIN?"), "+4");
    m.assert_no_error();

    // On the meter's timebase the readings are (0.4 ms x 2 for auto-zero +
    // 0.1 ms automatic delay) apart; its clock runs 35 ppm slow and jitters
    // 5 us rms, so 6 sigma of a difference is 45 us.
    let truth = bench.truth_log();
    assert_eq!(truth.deflection.len(), 10);
    for w in truth.deflection.windows(2) {
        assert_eq!(w[0].segment, SampleTruth::NO_TRIGGER);
        assert_eq!(w[1].index, w[0].index + 1);
        let dt = w[1].t_true_s - w[0].t_true_s;
        assert!((dt - 0.9e-3).abs() < 45e-6, "{dt}");
    }
}

/// Bus triggers with a trigger count: each `*TRG` starts one burst, FETC?
/// returns all of them once the last is over, `*TRG` after that is ignored.
#[test]
fn trigger_count_takes_one_burst_per_bus_trigger() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    for cmd in [
        "*RST",
        "VOLT:RANG 1",
        "TRIG:SOUR BUS",
        "TRIG:COUN 3",
        "TRIG:DEL 0",
        "SAMP:SOUR TIM",
        "SAMP:TIM 0.002",
        "SAMP:COUN 4",
        "INIT",
    ] {
        m.write(cmd);
    }
    m.assert_no_error();
    sleep_true(&bench, 0.1);
    assert_eq!(m.query("DATA:POIN?"), "+0", "no readings before *TRG");
    for burst in 1..=3 {
        m.write("*TRG");
        // Each burst ends at 4 readings, however late it is looked at.
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.query("DATA:POIN?") != format!("{:+}", 4 * burst) {
            assert!(Instant::now() < deadline, "burst {burst} not complete");
            std::thread::sleep(Duration::from_millis(2));
        }
        sleep_true(&bench, 0.05);
        assert_eq!(m.query("DATA:POIN?"), format!("{:+}", 4 * burst));
    }
    let values: Vec<f64> = m.query("FETC?").split(',').map(num).collect();
    assert_eq!(values.len(), 12);
    assert_at_rest(&values);
    m.write("*TRG");
    assert_eq!(m.query("SYST:ERR?"), "-211,\"Trigger ignored\"");
    // Within a burst, readings are SAMP:TIM apart on the meter's clock.
    let truth = bench.truth_log();
    assert_eq!(truth.deflection.len(), 12);
    for burst in truth.deflection.chunks(4) {
        for w in burst.windows(2) {
            let dt = w[1].t_true_s - w[0].t_true_s;
            assert!((dt - 0.002).abs() < 45e-6, "{dt}");
        }
    }
}

/// A query waiting for an acquisition holds no lock: another connection is
/// answered meanwhile, and its ABOR ends the wait.
#[test]
fn waiting_fetch_leaves_the_meter_to_other_clients() {
    let bench = bench(1.0);
    let mut a = Scpi::connect(&bench);
    let mut b = Scpi::connect(&bench);
    for cmd in [
        "*RST",
        "VOLT:RANG 1",
        "TRIG:SOUR EXT",
        "SAMP:COUN 3",
        "INIT",
    ] {
        a.write(cmd);
    }
    a.assert_no_error();
    // Armed for an edge that never comes: FETC? waits.
    a.write("FETC?");
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    assert!(b.query("*IDN?").contains("34465A"));
    assert_eq!(b.query("DATA:POIN?"), "+0");
    // Blocked behind the waiting query, these would never be answered (the
    // client's read timeout is 5 s); 3 s leaves room for a loaded machine.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    b.write("ABOR");
    // The wait ends with the acquisition; aborted before any reading,
    // there is nothing to return: -230 and no reply, as for stale data.
    assert_eq!(a.query("SYST:ERR?"), "-230,\"Data corrupt or stale\"");
    a.assert_no_error();
}

/// Level trigger (`TRIG:SOUR INT`): a level the input never reaches keeps
/// the meter waiting; the input's own mean, which its noise crosses all the
/// time, triggers a burst at once.
#[test]
fn level_trigger_fires_when_the_input_crosses_the_level() {
    // Without holder drift the input's mean stays put however long the
    // test is held up; its noise keeps crossing it.
    let mut params = SimParams {
        time_acceleration: 20.0,
        ..SimParams::default()
    };
    params.drift.holder_nm_per_min = 0.0;
    params.drift.random_walk_nm_per_sqrt_min = 0.0;
    let bench = VirtualBench::start(&params).unwrap();
    let mut m = Scpi::connect(&bench);
    for cmd in ["*RST", "CONF:VOLT:DC 1", "VOLT:NPLC 0.02", "SAMP:COUN 50"] {
        m.write(cmd);
    }
    let rest: Vec<f64> = m.query("READ?").split(',').map(num).collect();
    assert_at_rest(&rest);
    let mean = rest.iter().sum::<f64>() / rest.len() as f64;
    // The lever at rest stays within 2 mV: 1 V is never crossed.
    for cmd in [
        "SAMP:COUN 3",
        "TRIG:SOUR INT",
        "TRIG:SLOP POS",
        "TRIG:LEV 1",
        "INIT",
    ] {
        m.write(cmd);
    }
    sleep_true(&bench, 0.5);
    assert_eq!(m.query("DATA:POIN?"), "+0", "level 1 V never crossed");
    m.write("ABOR");
    m.write(&format!("TRIG:LEV {mean:.9}"));
    m.write("INIT");
    m.assert_no_error();
    let values: Vec<f64> = m.query("FETC?").split(',').map(num).collect();
    assert_eq!(values.len(), 3);
    assert_at_rest(&values);
}

/// Pretrigger readings (`SAMP:COUN:PRET`): of the sample count, that many
/// come from before the trigger edge, on the same timer grid as the rest.
#[test]
fn pretrigger_readings_come_from_before_the_trigger() {
    let bench = bench(20.0);
    let mut m = Scpi::connect(&bench);
    for cmd in [
        "*RST",
        "VOLT:RANG 1",
        "TRIG:SOUR EXT",
        "TRIG:SLOP POS",
        "TRIG:DEL 0",
        "SAMP:SOUR TIM",
        "SAMP:TIM 0.002",
        "SAMP:COUN 10",
        "SAMP:COUN:PRET 4",
        "INIT",
    ] {
        m.write(cmd);
    }
    assert_eq!(m.query("SAMP:COUN:PRET?"), "+4");
    m.assert_no_error();
    // 0.1 s armed holds far more than 4 readings of 2 ms before the edge
    // the potentiostat raises.
    sleep_true(&bench, 0.1);
    let mut p = Pstat::open(&bench);
    p.send(
        "e\nvar p\nset_gpio_cfg 0x01 1\nset_gpio 0x01i\nmeas_loop_ocp p 10m 100m\n  \
         pck_start\n  pck_add p\n  pck_end\nendloop\nset_gpio 0x00i\non_finished:\n  \
         cell_off\n\n",
    );
    p.until_script_end(5.0);
    let values: Vec<f64> = m.query("FETC?").split(',').map(num).collect();
    assert_eq!(values.len(), 10);
    assert_at_rest(&values);
    let truth = bench.truth_log();
    assert_eq!(truth.triggers_s.len(), 1);
    let t_edge = truth.triggers_s[0];
    assert_eq!(truth.deflection.len(), 10);
    // Readings 0-3 end one 2 ms step before the edge and belong to no edge;
    // 4-9 are readings 0-5 of edge 0. Jitter 5 us rms: 6 sigma is 30 us.
    for (j, r) in truth.deflection.iter().enumerate() {
        let (segment, index, offset_s) = if j < 4 {
            (SampleTruth::NO_TRIGGER, r.index, -((4 - j) as f64) * 0.002)
        } else {
            (0, (j - 4) as u64, (j - 4) as f64 * 0.002)
        };
        assert_eq!((r.segment, r.index), (segment, index), "reading {j}");
        let residual = r.t_true_s - t_edge - offset_s;
        assert!(residual.abs() < 30e-6, "reading {j}: {residual}");
    }
}
