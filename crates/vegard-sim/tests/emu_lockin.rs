//! The SR860 lock-in emulator over its TCP socket: identification, settings
//! round trips, data queries, error reporting through `*ESR?`, and the
//! recorded transcript fixture `protocols/transcripts/sr860.txt`.

// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod emu_common;

use emu_common::{LineClient, format_transcript, parse_transcript, record, shape, transcript_path};
use vegard_recipe::SimParams;
use vegard_sim::{Device, VirtualBench};

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

/// The driver's session: identify, configure the sine and the filters,
/// read X, Y and f, provoke both error kinds, switch the sine off.
const SESSION: &[&str] = &[
    "*IDN?",
    "*RST",
    "*CLS",
    "FREQ 10",
    "FREQ?",
    "SLVL 0.014142136",
    "SLVL?",
    "SOFF 0",
    "PHAS 0",
    "PHAS?",
    "OFLT 13",
    "OFLT?",
    "OFSL 3",
    "OFSL?",
    "SYNC 1",
    "SYNC?",
    "SCAL 9",
    "SCAL?",
    "OUTP? 0",
    "OUTP? THeta",
    "SNAP? 0,1,15",
    "FREQ 1e6",
    "*ESR?",
    "FREQ?",
    "BOGUS 1",
    "*ESR?",
    "SLVL 1e-9",
    "SLVL?",
];

const HEADER: &str = "SR860 lock-in, recorded from the vegard-sim emulator over TCP\n\
(crates/vegard-sim/tests/emu_lockin.rs; VEGARD_RECORD_TRANSCRIPTS=1 rewrites it).\n\
Host sends LF-terminated lines; replies end with LF. Lines: '> ' host to\n\
instrument, '< ' instrument to host; a command without '<' gets no reply.\n\
OUTP?/SNAP? values are live readings: replay compares their format only.";

#[test]
fn identifies_as_an_sr860() {
    let bench = bench();
    let mut c = connect(&bench);
    let idn = c.query("*IDN?");
    assert!(idn.starts_with("Stanford_Research_Systems,SR860,"), "{idn}");
    assert!(bench.received(Device::LockIn, "*IDN?"));
    bench.shutdown();
}

#[test]
fn settings_read_back_in_the_instruments_format() {
    let bench = bench();
    let mut c = connect(&bench);
    c.write("FREQ 1234.5; SLVL 0.5; PHAS 370; OFLT 21; OFSL 0; SCAL 27");
    assert_eq!(c.query("FREQ?"), "1.2345000e+03");
    assert_eq!(c.query("SLVL?"), "5.0000000e-01");
    assert_eq!(c.query("PHAS?"), "1.0000000e+01");
    assert_eq!(c.query("OFLT?; OFSL?; SCAL?"), "21;0;27");
    assert_eq!(c.query("*ESR?"), "0");
    // Out of range: execution error, setting unchanged.
    c.write("OFLT 22");
    c.write("SLVL 2.5");
    assert_eq!(c.query("*ESR?"), "16");
    assert_eq!(c.query("OFLT?"), "21");
    assert_eq!(c.query("SLVL?"), "5.0000000e-01");
    // Unknown command or malformed argument: command error, no reply.
    c.write("XYZZY?");
    c.assert_silent(0.1);
    c.write("FREQ ten");
    assert_eq!(c.query("*ESR?"), "32");
    assert_eq!(c.query("*ESR?"), "0", "*ESR? clears the register");
    // *RST restores the power-on settings.
    c.write("*RST");
    assert_eq!(c.query("FREQ?"), "1.0000000e+03");
    assert_eq!(c.query("SLVL?"), "1.0000000e-09");
    assert_eq!(c.query("OFLT?"), "10");
    bench.shutdown();
}

#[test]
fn data_queries_report_current_finite_values() {
    let bench = bench();
    let mut c = connect(&bench);
    c.write("FREQ 5; SLVL 0.01; OFLT 8; OFSL 1; SYNC 1");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let snap: Vec<f64> = c
        .query("SNAP? X,Y,R")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(snap.len(), 3);
    assert!(snap.iter().all(|v| v.is_finite()), "{snap:?}");
    // One snapshot: R belongs to the same X and Y (7 significant digits).
    assert!((snap[2] - snap[0].hypot(snap[1])).abs() <= 1e-6 * snap[2].abs() + 1e-15);
    assert_eq!(c.query("SNAP? FInt,SAMp"), "5.0000000e+00,1.0000000e-02");
    let theta: f64 = c.query("OUTP? 3").parse().unwrap();
    assert!((-180.0..=180.0).contains(&theta));
    // SNAP? takes two or three parameters, OUTP? only 0..3.
    c.write("SNAP? 0");
    c.write("OUTP? 15");
    c.assert_silent(0.1);
    assert_eq!(c.query("*ESR?"), (32 | 16).to_string());
    bench.shutdown();
}

#[test]
fn the_transcript_fixture_replays_against_the_emulator() {
    let bench = bench();
    let mut c = connect(&bench);
    let live = record(&mut c, SESSION);
    let path = transcript_path("sr860.txt");
    if std::env::var_os("VEGARD_RECORD_TRANSCRIPTS").is_some() {
        std::fs::write(&path, format_transcript(HEADER, &live)).unwrap();
    }
    let fixture = parse_transcript(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(fixture.len(), live.len(), "the fixture is out of date");
    for (want, got) in fixture.iter().zip(&live) {
        assert_eq!(want.command, got.command);
        let live_value = got.command.starts_with("OUTP?") || got.command.starts_with("SNAP?");
        match (&want.reply, &got.reply) {
            (Some(w), Some(g)) if live_value => {
                assert_eq!(shape(w), shape(g), "{}", got.command)
            }
            (w, g) => assert_eq!(w, g, "{}", got.command),
        }
    }
    bench.shutdown();
}
