//! The Lake Shore 336 emulator over its TCP socket: identification, the
//! setpoint / reading round trip through the world's stage, sensor noise,
//! the silently-ignored bad command, and the recorded transcript fixture
//! `protocols/transcripts/ls336.txt`.

// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod emu_common;

use emu_common::{LineClient, format_transcript, parse_transcript, record, shape, transcript_path};
use std::time::Duration;
use vegard_recipe::SimParams;
use vegard_sim::{Device, VirtualBench};

fn bench(speed: f64) -> VirtualBench {
    VirtualBench::start(&SimParams {
        time_acceleration: speed,
        ..SimParams::default()
    })
    .unwrap()
}

/// The host sends CR LF, as Lake Shore's own software does; replies end
/// with CR LF.
fn connect(bench: &VirtualBench) -> LineClient {
    LineClient::connect(&bench.temperature_resource().to_string(), "\r\n", "\r\n")
}

const SESSION: &[&str] = &[
    "*IDN?",
    "*RST",
    "*CLS",
    "KRDG? A",
    "CRDG? A",
    "SETP 1,318.15",
    "SETP? 1",
    "RANGE 1,3",
    "RANGE? 1",
    "HTR? 1",
    "RAMP 1,1,5.0",
    "RAMP? 1",
    "PID 1,50,20,0",
    "PID? 1",
    "SETP 1,-5",
    "SETP? 1",
    "*ESR?",
    "BOGUS 1",
    "*ESR?",
    "RANGE 1,0",
    "RANGE? 1",
];

const HEADER: &str = "Lake Shore 336, recorded from the vegard-sim emulator over TCP\n\
(crates/vegard-sim/tests/emu_temperature.rs; VEGARD_RECORD_TRANSCRIPTS=1 rewrites it).\n\
Host sends CR LF (LF alone is accepted); replies end with CR LF. Lines: '> '\n\
host to instrument, '< ' instrument to host; a command without '<' gets no\n\
reply. A bad command is ignored silently (setting unchanged, *ESR? bit 4 or 5).\n\
KRDG?/CRDG?/HTR? values are live readings: replay compares their format only.";

#[test]
fn identifies_as_a_model_336() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    let idn = c.query("*IDN?");
    assert!(idn.starts_with("LSCI,MODEL336,"), "{idn}");
    // A host that sends LF alone is understood too.
    c.send_terminator = "\n";
    assert_eq!(c.query("*IDN?"), idn);
    assert!(bench.received(Device::TemperatureStage, "*IDN?"));
    bench.shutdown();
}

/// At 100x the bench integrates the whole world (lever, lock-in grid,
/// stage) 100 s per wall second: an unoptimised build cannot keep up and
/// the queries time out. `.ci/run` runs it in release
/// (`cargo test --release -p vegard-sim --test emu_temperature`).
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "100x real time needs an optimised build: cargo test --release -p vegard-sim --test emu_temperature"
)]
fn the_stage_follows_the_setpoint_and_the_sensor_reads_it() {
    let bench = bench(100.0);
    let mut c = connect(&bench);
    let k0: f64 = c.query("KRDG? A").parse().unwrap();
    assert!(
        (k0 - 298.15).abs() < 0.2,
        "starts at the cell's temperature: {k0}"
    );
    c.write("SETP 1,310.0");
    c.write("RANGE 1,3");
    assert_eq!(c.query("SETP? 1"), "+310.000");
    assert_eq!(c.query("RANGE? 1"), "3");
    // 300 true seconds: 15 stage time constants.
    std::thread::sleep(Duration::from_secs(3));
    let k: f64 = c.query("KRDG? A").parse().unwrap();
    assert!((k - 310.0).abs() < 0.5, "settled near the setpoint: {k}");
    let celsius: f64 = c.query("CRDG? A").parse().unwrap();
    assert!((celsius - (310.0 - 273.15)).abs() < 0.5, "{celsius}");
    let htr: f64 = c.query("HTR? 1").parse().unwrap();
    assert!((0.0..=100.0).contains(&htr), "{htr}");
    // Sensor noise: consecutive readings differ by sqrt(2) x 0.01 K rms
    // (slow stage motion cancels in the differences). 200 differences:
    // the estimate is within +-25 % at > 99.9 %.
    let readings: Vec<f64> = (0..201)
        .map(|_| c.query("KRDG? A").parse().unwrap())
        .collect();
    let diffs: Vec<f64> = readings.windows(2).map(|w| w[1] - w[0]).collect();
    let rms = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let sigma = rms / std::f64::consts::SQRT_2;
    assert!((sigma - 0.01).abs() < 0.0025, "sensor noise {sigma} K rms");
    bench.shutdown();
}

#[test]
fn bad_commands_are_ignored_and_flagged() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    c.write("SETP 1,300");
    c.write("SETP 1,abc");
    c.write("SETP 3,305");
    c.write("RANGE 1,7");
    c.write("NOSUCH? 1");
    c.assert_silent(0.1);
    assert_eq!(c.query("SETP? 1"), "+300.000");
    assert_eq!(c.query("RANGE? 1"), "0");
    assert_eq!(c.query("*ESR?"), (32 | 16).to_string());
    assert_eq!(c.query("*ESR?"), "0");
    c.write("RAMP 1,1,2.5; PID 1,40,10,1");
    assert_eq!(c.query("RAMP? 1"), "1,+2.5");
    assert_eq!(c.query("PID? 1"), "+40.0,+10.0,+1.0");
    c.write("*RST");
    assert_eq!(c.query("RAMP? 1"), "0,+0.0");
    bench.shutdown();
}

#[test]
fn the_transcript_fixture_replays_against_the_emulator() {
    let bench = bench(1.0);
    let mut c = connect(&bench);
    let live = record(&mut c, SESSION);
    let path = transcript_path("ls336.txt");
    if std::env::var_os("VEGARD_RECORD_TRANSCRIPTS").is_some() {
        std::fs::write(&path, format_transcript(HEADER, &live)).unwrap();
    }
    let fixture = parse_transcript(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(fixture.len(), live.len(), "the fixture is out of date");
    for (want, got) in fixture.iter().zip(&live) {
        assert_eq!(want.command, got.command);
        let live_value = ["KRDG?", "CRDG?", "HTR?"]
            .iter()
            .any(|q| got.command.starts_with(q));
        match (&want.reply, &got.reply) {
            (Some(w), Some(g)) if live_value => {
                assert_eq!(shape(w), shape(g), "{}", got.command)
            }
            (w, g) => assert_eq!(w, g, "{}", got.command),
        }
    }
    bench.shutdown();
}
