//! The SR860 emulator's documented command set over its TCP socket, as
//! QCoDeS's and vegard's drivers use it: the internal reference `RSRC 0`,
//! every query answering, refused values leaving settings unchanged with
//! the right `*ESR?` bit, the noise bandwidth of the filters, harmonics,
//! data channels and the capture buffer.

// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod emu_common;

use emu_common::LineClient;
use std::time::Duration;
use vegard_recipe::SimParams;
use vegard_sim::VirtualBench;

fn bench() -> VirtualBench {
    VirtualBench::start(&SimParams {
        time_acceleration: 10.0,
        ..SimParams::default()
    })
    .unwrap()
}

fn connect(bench: &VirtualBench) -> LineClient {
    LineClient::connect(&bench.lockin_resource().to_string(), "\n", "\n")
}

fn number(c: &mut LineClient, query: &str) -> f64 {
    let r = c.query(query);
    r.parse()
        .unwrap_or_else(|_| panic!("{query} -> {r:?} is not a number"))
}

#[test]
fn the_internal_reference_rsrc_0_is_accepted_with_a_clean_status() {
    let bench = bench();
    let mut c = connect(&bench);
    // vegard's driver's first set_sine.
    c.write("RSRC 0");
    c.write("SYNC 1");
    c.write("FREQ 10");
    c.write("SLVL 0.0070710678");
    assert_eq!(c.query("*OPC?"), "1");
    assert_eq!(c.query("*ESR?"), "0");
    assert_eq!(c.query("RSRC?"), "0");
    c.write("RSRC EXT");
    assert_eq!(c.query("RSRC?"), "1");
    // No external reference is wired: nothing to measure its frequency.
    assert_eq!(number(&mut c, "FREQEXT?"), 0.0);
    c.write("RSRC INT");
    assert_eq!(c.query("RSRC?;*ESR?"), "0;0");
    bench.shutdown();
}

/// Every query of the implemented set, with the shape of its reply: `f`
/// a float in the SR860's format, `i` an integer, or a count of
/// comma-separated floats.
const QUERIES: &[(&str, &str)] = &[
    ("*IDN?", "idn"),
    ("FREQ?", "f"),
    ("FREQINT?", "f"),
    ("FREQEXT?", "f"),
    ("FREQDET?", "f"),
    ("HARM?", "i"),
    ("HARMDUAL?", "i"),
    ("RSRC?", "i"),
    ("RTRG?", "i"),
    ("REFZ?", "i"),
    ("SLVL?", "f"),
    ("SOFF?", "f"),
    ("PHAS?", "f"),
    ("IVMD?", "i"),
    ("ISRC?", "i"),
    ("ICPL?", "i"),
    ("IGND?", "i"),
    ("IRNG?", "i"),
    ("ICUR?", "i"),
    ("ILVL?", "i"),
    ("OFLT?", "i"),
    ("OFSL?", "i"),
    ("SYNC?", "i"),
    ("ADVFILT?", "i"),
    ("ENBW?", "f"),
    ("SCAL?", "i"),
    ("COFP? 0", "f"),
    ("COFP? 2", "f"),
    ("CEXP? 1", "i"),
    ("OAUX? 3", "f"),
    ("AUXV? 0", "f"),
    ("OUTP? 0", "f"),
    ("OUTP? THeta", "f"),
    ("SNAP? 0,1", "2"),
    ("SNAP? X,Y,FInt", "3"),
    ("CDSP? 3", "i"),
    ("SNAPD?", "4"),
    ("CAPTURELEN?", "i"),
    ("CAPTURECFG?", "i"),
    ("CAPTURERATEMAX?", "f"),
    ("CAPTURERATE?", "f"),
    ("CAPTURESTAT?", "i"),
    ("CAPTUREBYTES?", "i"),
    ("CAPTUREPROG?", "i"),
    ("CAPTUREVAL? 0", "2"),
    ("OVRM?", "i"),
    ("REFM?", "i"),
    ("TBMODE?", "i"),
    ("TBSTAT?", "i"),
    ("DBLK?", "i"),
    ("DLAY?", "i"),
    ("GSPD?", "i"),
    ("*OPC?", "i"),
    ("*ESR?", "i"),
];

fn is_sr860_float(s: &str) -> bool {
    // d.ddddddde+XX
    let Some((mantissa, exp)) = s.split_once('e') else {
        return false;
    };
    let m = mantissa.trim_start_matches('-');
    m.len() == 9
        && m.as_bytes()[1] == b'.'
        && exp.len() == 3
        && (exp.starts_with('+') || exp.starts_with('-'))
        && s.parse::<f64>().is_ok_and(f64::is_finite)
}

#[test]
fn every_documented_query_answers_in_the_instruments_format() {
    let bench = bench();
    let mut c = connect(&bench);
    for &(query, shape) in QUERIES {
        let r = c.query(query);
        let ok = match shape {
            "idn" => r.starts_with("Stanford_Research_Systems,SR860,"),
            "f" => is_sr860_float(&r),
            "i" => r.parse::<u64>().is_ok(),
            n => {
                let fields: Vec<&str> = r.split(',').collect();
                fields.len().to_string() == n && fields.iter().all(|f| is_sr860_float(f))
            }
        };
        assert!(ok, "{query} -> {r:?} (want {shape})");
    }
    assert_eq!(c.query("*ESR?"), "0", "no query was refused");
    // Several queries on one line: one reply line, joined by ';'.
    assert_eq!(c.query("HARM?;RSRC?;CDSP? 0"), "1;0;0");
    bench.shutdown();
}

#[test]
fn refused_values_leave_the_setting_unchanged_and_set_the_right_bit() {
    let bench = bench();
    let mut c = connect(&bench);
    // (command, query, value the query keeps, ESR bit)
    let cases: &[(&str, &str, &str, u8)] = &[
        ("HARM 0", "HARM?", "1", 16),
        ("HARM 100", "HARM?", "1", 16),
        ("HARM two", "HARM?", "1", 32),
        ("RSRC 4", "RSRC?", "0", 16),
        ("RSRC SIDEWAYS", "RSRC?", "0", 32),
        ("IRNG 5", "IRNG?", "0", 16),
        ("IVMD 2", "IVMD?", "0", 16),
        ("ICUR 2", "ICUR?", "0", 16),
        ("SCAL 28", "SCAL?", "0", 16),
        ("OFSL -1", "OFSL?", "1", 16),
        ("CDSP 4,0", "CDSP? 3", "3", 16),
        ("CDSP 0,17", "CDSP? 0", "0", 16),
        ("AUXV 1,10.6", "AUXV? 1", "0.0000000e+00", 16),
        ("COFP 0,1000", "COFP? 0", "0.0000000e+00", 16),
        ("CEXP 2,3", "CEXP? 2", "0", 16),
        ("CAPTURELEN 4097", "CAPTURELEN?", "256", 16),
        ("CAPTURECFG 4", "CAPTURECFG?", "1", 16),
        ("CAPTURERATE 21", "CAPTURERATE?", "", 16),
        ("SOFF 5.5", "SOFF?", "0.0000000e+00", 16),
        ("FREQ 1e-4", "FREQ?", "1.0000000e+03", 16),
        ("FREQ", "FREQ?", "1.0000000e+03", 32),
        ("NOSUCH 1", "HARM?", "1", 32),
    ];
    let rate = c.query("CAPTURERATE?");
    for &(cmd, query, keeps, bit) in cases {
        c.write(cmd);
        c.assert_silent(0.05);
        let want = if keeps.is_empty() {
            rate.as_str()
        } else {
            keeps
        };
        assert_eq!(c.query(query), want, "after {cmd}");
        assert_eq!(c.query("*ESR?"), bit.to_string(), "after {cmd}");
    }
    // The detection frequency HARM x FREQ stays within 500 kHz.
    c.write("FREQ 200e3; HARM 2");
    assert_eq!(c.query("*ESR?"), "0");
    assert_eq!(number(&mut c, "FREQDET?"), 400e3);
    c.write("HARM 3");
    c.write("FREQ 300e3");
    assert_eq!(c.query("HARM?;FREQ?"), "2;2.0000000e+05");
    assert_eq!(c.query("*ESR?"), "16");
    // A refused command drops the rest of its line.
    c.write("HARM 0; HARM 5");
    assert_eq!(c.query("HARM?"), "2");
    bench.shutdown();
}

#[test]
fn the_noise_bandwidth_follows_the_time_constant_and_the_slope() {
    let bench = bench();
    let mut c = connect(&bench);
    // ENBW of n cascaded first-order sections: 1/(4 tc), 1/(8 tc),
    // 3/(32 tc), 5/(64 tc).
    let factor = [1.0 / 4.0, 1.0 / 8.0, 3.0 / 32.0, 5.0 / 64.0];
    for (oflt, tc_s) in [(0, 1e-6), (7, 3e-3), (10, 0.1), (13, 3.0), (21, 3e4)] {
        for (ofsl, f) in factor.iter().enumerate() {
            c.write(&format!("OFLT {oflt}; OFSL {ofsl}"));
            let enbw = number(&mut c, "ENBW?");
            let want = f / tc_s;
            assert!(
                (enbw - want).abs() <= 1e-6 * want,
                "OFLT {oflt} OFSL {ofsl}: {enbw} Hz, want {want}"
            );
        }
    }
    bench.shutdown();
}

#[test]
fn data_channels_snap_the_assigned_parameters() {
    let bench = bench();
    let mut c = connect(&bench);
    c.write("FREQ 7.5; SLVL 0.02; PHAS 30; AUXV 1,-2.5");
    c.write("CDSP 0,FInt; CDSP 1,SAMp; CDSP 2,OUT2; CDSP 3,PHAse");
    assert_eq!(c.query("CDSP? 0;CDSP? 1;CDSP? 2;CDSP? 3"), "15;13;11;12");
    assert_eq!(
        c.query("SNAPD?"),
        "7.5000000e+00,2.0000000e-02,-2.5000000e+00,3.0000000e+01"
    );
    // *RST gives X, Y, R, theta back.
    c.write("*RST");
    assert_eq!(c.query("CDSP? 0;CDSP? 3"), "0;3");
    let snap: Vec<f64> = c
        .query("SNAPD?")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((snap[2] - snap[0].hypot(snap[1])).abs() <= 1e-6 * snap[2].abs() + 1e-15);
    bench.shutdown();
}

#[test]
fn a_capture_records_at_its_rate_into_the_buffer() {
    let bench = bench();
    let mut c = connect(&bench);
    // 100 ms time constant: maximum rate 1.25 MHz / 2^14 = 76.29 Hz.
    c.write("FREQ 10; SLVL 0.01; OFLT 10; CAPTURELEN 2; CAPTURECFG XY; CAPTURERATE 2");
    let max = number(&mut c, "CAPTURERATEMAX?");
    assert!((max - 1.25e6 / 16384.0).abs() < 1e-6, "{max}");
    assert!((number(&mut c, "CAPTURERATE?") - max / 4.0).abs() < 1e-6 * max);
    c.write("CAPTURESTART ONE, IMM");
    assert_eq!(c.query("*ESR?"), "0");
    // Configuration is locked while recording; CAPTUREPROG? needs a stop.
    c.write("CAPTURELEN 4");
    c.write("CAPTUREPROG?");
    c.assert_silent(0.05);
    assert_eq!(c.query("*ESR?"), "16");
    // 0.8 wall s = 8 true s at 19.07 Hz: ~150 of the 256 XY samples.
    std::thread::sleep(Duration::from_millis(800));
    c.write("CAPTURESTOP");
    let stat: u8 = c.query("CAPTURESTAT?").parse().unwrap();
    assert_eq!(stat & 3, 2, "stopped, triggered: {stat}");
    let bytes: u64 = c.query("CAPTUREBYTES?").parse().unwrap();
    assert!(
        bytes.is_multiple_of(8) && (100 * 8..=2048).contains(&bytes),
        "{bytes}"
    );
    let kb: u64 = c.query("CAPTUREPROG?").parse().unwrap();
    assert_eq!(kb, 2);
    let first: Vec<f64> = c
        .query("CAPTUREVAL? 0")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|v| v.is_finite()));
    // Nothing recorded after the stop.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.query("CAPTUREBYTES?"), bytes.to_string());
    assert_eq!(c.query("*ESR?"), "0");
    bench.shutdown();
}
