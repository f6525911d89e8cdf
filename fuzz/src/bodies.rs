//! The fuzz target bodies: one function per target, each taking the raw
//! input bytes and feeding them to a parser of user or instrument input the
//! way vegard does. A body returns normally for every input, whatever the
//! parser says (an `Err` is the right answer to bad input); a panic, a hang
//! or a huge allocation is the bug being looked for.
//!
//! Used by the cargo-fuzz targets in `fuzz/fuzz_targets/` and, on stable,
//! by `tests/fuzz_corpus.rs` (`#[path]`-included), which replays every file
//! of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the
//! same function. Keep it free of anything either side lacks: no unwrap or
//! expect (the workspace lints apply in the test), no unsafe code.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serialport::{SerialPort, TTYPort};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vegard_analysis::{Circuit, Spectrum, initial_guess};
use vegard_instruments::device::{DeflectionProbe, DigitizerSetup, DigitizerTrigger, LockIn};
use vegard_instruments::device::{Technique, TemperatureStage};
use vegard_instruments::methodscript::{
    ScriptFrame, build_script, encode_value, parse_line, parse_literal, parse_package,
};
use vegard_instruments::scpi::{ScpiClient, decode_real64, parse_block};
use vegard_instruments::{Ls336, PstatEvent, ScpiDmm, Sr860};
use vegard_recipe::{BenchConfig, PotentiostatConfig, Recipe, Resource, Source};
use vegard_store::schema;

/// A target body.
pub type Body = fn(&[u8]);

/// Every target, by name: what `tests/fuzz_corpus.rs` replays. The names
/// are the cargo-fuzz target names (`fuzz/Cargo.toml`, which
/// `scripts/fuzz.sh` reads) and the folders under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Body)] = &[
    ("recipe", recipe),
    ("bench", bench),
    ("report_spec", report_spec),
    ("circuit", circuit),
    ("formats", formats),
    ("formats_binary", formats_binary),
    ("methodscript", methodscript),
    ("methodscript_driver", methodscript_driver),
    ("scpi", scpi),
    ("run_toml", run_toml),
    ("events", events),
    ("raw_csv", raw_csv),
    ("raw_arrows", raw_arrows),
    ("parquet", parquet),
];

/// The default bench (configs/sim.toml), compiled in.
const SIM_BENCH: &str = include_str!("../../configs/sim.toml");
/// The demo recipe, compiled in: the recipe the `bench` target validates
/// fuzzed bench configs against.
const DEMO_RECIPE: &str = include_str!("../../recipes/demo-cv.toml");

fn sim_bench() -> Option<&'static BenchConfig> {
    static BENCH: OnceLock<Option<BenchConfig>> = OnceLock::new();
    BENCH
        .get_or_init(|| vegard_recipe::parse_bench(SIM_BENCH, "configs/sim.toml").ok())
        .as_ref()
}

fn demo_recipe() -> Option<&'static Recipe> {
    static RECIPE: OnceLock<Option<Recipe>> = OnceLock::new();
    RECIPE
        .get_or_init(|| vegard_recipe::parse_recipe(DEMO_RECIPE, "recipes/demo-cv.toml").ok())
        .as_ref()
}

/// What `vegard run` does with a recipe's steps before anything reaches an
/// instrument: the plan, the potentiostat technique of each planned step
/// and its MethodSCRIPT text.
fn plan_and_scripts(recipe: &Recipe, pot: &PotentiostatConfig) {
    let frame = ScriptFrame {
        trigger_gpio_pin: pot.trigger_gpio_pin,
        current_range_min_A: pot.current_range_min_A,
        current_range_max_A: pot.current_range_max_A,
    };
    for p in recipe.plan() {
        // What `vegard validate` prints per planned step.
        let _ = (p.step.duration_s(), p.step.kind_name());
        let _ = vegard_recipe::step_label(&p);
        if let Some(technique) = Technique::from_step(&p.step, pot) {
            let _ = technique.sample_interval_s();
            // The digitizer's blocks and the sync edge they need, as the
            // engine works them out (the default bench's digitizer).
            let sync = sim_bench().and_then(|b| {
                let d = &b.instruments.deflection;
                let interval_s = recipe
                    .run
                    .deflection_sample_interval_s
                    .unwrap_or(d.sample_interval_s);
                vegard_recipe::deflection_acquisition(&p.step, interval_s, d.max_samples)
                    .ok()
                    .and_then(|a| a.sync_every_samples())
            });
            let _ = build_script(&technique, &frame, sync);
        }
    }
}

/// A recipe TOML (`vegard validate RECIPE`, `vegard run RECIPE`): parse
/// with positions, validate against the default bench, expand the plan and
/// build the MethodSCRIPT of every step.
pub fn recipe(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(recipe) = vegard_recipe::parse_recipe(&text, "fuzz.toml") else {
        return;
    };
    let _ = recipe.duration_s();
    let _ = vegard_recipe::plan_rows(&recipe);
    let Some(bench) = sim_bench() else {
        panic!("fuzz harness: configs/sim.toml does not parse");
    };
    let src = Source::new("fuzz.toml", text.as_ref());
    if let Err(e) = vegard_recipe::validate_with_bench(&recipe, &src, bench) {
        // The message is printed to the user: it must be formattable.
        let _ = e.to_string();
    }
    plan_and_scripts(&recipe, &bench.instruments.potentiostat);
}

/// A bench config TOML (`--bench FILE`): parse, validate the demo recipe
/// against it, and build the demo's scripts with its potentiostat settings.
pub fn bench(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let bench = match vegard_recipe::parse_bench(&text, "fuzz.toml") {
        Ok(b) => b,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let Some(recipe) = demo_recipe() else {
        panic!("fuzz harness: recipes/demo-cv.toml does not parse");
    };
    let src = Source::new("recipes/demo-cv.toml", DEMO_RECIPE);
    if vegard_recipe::validate_with_bench(recipe, &src, &bench).is_ok() {
        plan_and_scripts(recipe, &bench.instruments.potentiostat);
    }
}

/// A report spec TOML (`vegard report --spec FILE`).
pub fn report_spec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = vegard_report::ReportSpec::parse("fuzz.toml", &text) {
        let _ = e.to_string();
    }
}

/// A small two-arc spectrum (R0-p(R1,C1) with a Warburg tail), 12 points
/// over 6 decades, for the circuit target's automatic guess.
fn circuit_spectrum() -> &'static Spectrum {
    static SPECTRUM: OnceLock<Spectrum> = OnceLock::new();
    SPECTRUM.get_or_init(|| {
        let f: Vec<f64> = (0..12).map(|k| 10f64.powf(5.0 - 0.5 * k as f64)).collect();
        let z = f
            .iter()
            .map(|&f| {
                let w = std::f64::consts::TAU * f;
                // R0 = 10, R1 = 100 || C1 = 1e-5, Warburg sigma = 20.
                let (r1, c1) = (100.0, 1e-5);
                let den = 1.0 + (w * r1 * c1).powi(2);
                let s = 20.0 / w.sqrt();
                (10.0 + r1 / den + s, -w * r1 * r1 * c1 / den - s)
            })
            .collect();
        (f, z)
    })
}

/// A circuit string (`vegard fit-eis --circuit C`, a report spec's
/// `[eis] circuit`): parse, evaluate at a few frequencies, and the
/// automatic guess on a small spectrum. Not a fit: a CNLS fit of an
/// 8-parameter circuit takes 0.6 s of CPU in the instrumented fuzz build,
/// so it would drown the parser in LM iterations and trip the 1 s limit.
pub fn circuit(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(circuit) = Circuit::parse(&text) else {
        return;
    };
    let _ = circuit.param_names();
    let ones = vec![1.0; circuit.n_params()];
    let _ = circuit.impedance_spectrum(&ones, &[1e-3, 1.0, 1e3, 1e6]);
    let (f, z) = circuit_spectrum();
    let _ = initial_guess(&circuit, f, z);
}

/// Any file given to `vegard fit-eis` or `vegard import`: every reader of
/// vegard-formats through its content sniffing (spectrum, potentiostat
/// time series, deflection trace), and the analysis crate's plain
/// three-column reader.
pub fn formats(data: &[u8]) {
    let _ = vegard_formats::sniff(data);
    let _ = vegard_formats::parse_impedance(data, "fuzz");
    let _ = vegard_formats::parse_ec_series(data, "fuzz");
    let _ = vegard_formats::parse_trace(data, "fuzz");
    let _ = vegard_analysis::parse_eis_text(&String::from_utf8_lossy(data), "fuzz");
}

/// The binary readers directly, without the content sniffing in front:
/// EC-Lab `.mpr` (spectrum and time series) and Igor `.ibw`.
pub fn formats_binary(data: &[u8]) {
    let _ = vegard_formats::biologic::mpr_impedance(data, "fuzz");
    let _ = vegard_formats::biologic::mpr_series(data, "fuzz");
    let _ = vegard_formats::igor::trace(data, "fuzz");
}

/// Lines from a MethodSCRIPT device (what the potentiostat driver reads):
/// each line classified (`parse_line`), decoded as a data package, each
/// token read as a literal, and every decoded value encoded back.
pub fn methodscript(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        if let Ok(vegard_instruments::methodscript::Line::Data(p)) = parse_line(line) {
            for v in &p.vars {
                let _ = encode_value(v.value);
            }
            let _ = p.status();
        }
        let _ = parse_package(line);
        for token in line.split([' ', ',', ';']) {
            let _ = parse_literal(token);
        }
    }
}

/// Segments separated by this byte in a `methodscript_driver` input.
const SEGMENT_SEPARATOR: u8 = 0x1e;
/// Reply timeout of the MethodSCRIPT driver under test, s.
const PSTAT_TIMEOUT_S: f64 = 0.05;
/// Data events read at most per input.
const MAX_PSTAT_EVENTS: usize = 4096;
/// `TTYPort::pair()` is not thread-safe; replay tests run in parallel.
static PTY_LOCK: Mutex<()> = Mutex::new(());

/// The techniques a `methodscript_driver` input can run (first byte, mod 4).
fn technique(which: u8) -> Technique {
    match which % 4 {
        0 => Technique::Cv {
            begin_V: 0.2,
            vertex_V: [0.3, 0.1],
            scan_rate_V_per_s: 0.1,
            step_V: 0.05,
            cycles: 2,
            current_range_A: 1e-3,
        },
        1 => Technique::Eis {
            dc_V: 0.4,
            amplitude_V: 0.01,
            f_start_Hz: 1e4,
            f_end_Hz: 1e-2,
            n_points: 31,
            equilibrate_s: 0.0,
            current_range_A: 1e-3,
        },
        2 => Technique::Steps {
            levels_V: vec![0.45, 0.5],
            hold_s: vec![1.0, 1.0],
            sample_interval_s: 0.1,
            current_range_A: 1e-3,
        },
        _ => Technique::Ocp {
            duration_s: 2.0,
            sample_interval_s: 0.1,
        },
    }
}

/// A MethodSCRIPT device talking to the potentiostat driver over a
/// pseudo-terminal: `identify` (`t`, `i`, `v`), `start` of a technique
/// (the script), then data events until the script ends, as `vegard run`
/// drives it. The fake device answers each host command (a `t`, `i` or `v`
/// line, or a whole script up to its empty line) with the next segment of
/// the input, verbatim; out of segments it hangs up.
///
/// Input: the first byte picks the technique (mod 4: CV, EIS, potential
/// steps, OCP), the rest is the device's answers separated by 0x1E.
pub fn methodscript_driver(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let segments: Vec<Vec<u8>> = rest
        .split(|&b| b == SEGMENT_SEPARATOR)
        .take(MAX_REPLIES)
        .map(<[u8]>::to_vec)
        .collect();
    let (mut master, slave) = {
        let _guard = PTY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        match TTYPort::pair() {
            Ok(p) => p,
            Err(e) => panic!("fuzz harness: no pseudo-terminal: {e}"),
        }
    };
    let path = match slave.name() {
        Some(p) => p,
        None => panic!("fuzz harness: the pseudo-terminal has no name"),
    };
    if let Err(e) = master.set_timeout(Duration::from_millis(250)) {
        panic!("fuzz harness: pseudo-terminal timeout: {e}");
    }
    let Some(bench) = sim_bench() else {
        panic!("fuzz harness: configs/sim.toml does not parse");
    };
    let mut cfg = bench.instruments.potentiostat.clone();
    cfg.resource = match Resource::parse(&format!("ASRL{path}::INSTR")) {
        Ok(r) => r,
        Err(e) => panic!("fuzz harness: bad resource: {e}"),
    };
    cfg.timeout_s = PSTAT_TIMEOUT_S;
    let device = std::thread::spawn(move || fake_methodscript_device(master, segments));
    if let Ok(mut pstat) = vegard_instruments::open_potentiostat(&cfg, &cfg.resource) {
        drop(slave);
        let _ = pstat.identify();
        if pstat.start(&technique(which)).is_ok() {
            let timeout = Duration::from_secs_f64(PSTAT_TIMEOUT_S);
            for _ in 0..MAX_PSTAT_EVENTS {
                match pstat.read_event(timeout) {
                    Ok(Some(PstatEvent::Finished)) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
        }
    }
    // The driver's port is closed: the fake device sees it and ends.
    let _ = device.join();
}

/// The device side of [`methodscript_driver`].
fn fake_methodscript_device(mut master: TTYPort, segments: Vec<Vec<u8>>) {
    let mut segments = segments.into_iter();
    let mut buf: Vec<u8> = Vec::new();
    let mut in_script = false;
    loop {
        let line = loop {
            if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = buf.drain(..=pos).collect();
                line.pop();
                break line;
            }
            let mut chunk = [0u8; 1024];
            match master.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => match chunk.get(..n) {
                    Some(c) => buf.extend_from_slice(c),
                    None => return,
                },
            }
        };
        // A script is `e`, its lines, then an empty line.
        let command_done = if in_script {
            in_script = !line.is_empty();
            !in_script
        } else if line == b"e" {
            in_script = true;
            false
        } else {
            true
        };
        if !command_done {
            continue;
        }
        let Some(segment) = segments.next() else {
            return;
        };
        if master.write_all(&segment).is_err() {
            return;
        }
    }
}

/// Replies separated by this byte in a `scpi` input.
const REPLY_SEPARATOR: u8 = 0x1e;
/// At most this many replies are served per input (bounds the run time).
const MAX_REPLIES: usize = 32;
/// The fake instrument sends its next reply unasked after this much
/// silence from the host (a host waiting for the rest of a reply).
const PEER_IDLE: Duration = Duration::from_millis(10);
/// Reply timeout of the clients: never reached while the fake instrument
/// answers or closes within `PEER_IDLE`.
const CLIENT_TIMEOUT_S: f64 = 0.5;

thread_local! {
    static RUNTIME: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok();
}

/// Replies from an instrument on the LAN: the SCPI client and the SR860,
/// Lake Shore 336 and 34465A drivers, each against a fake instrument on a
/// loopback socket that answers every query with the next reply of the
/// input, verbatim (terminator, binary block and all).
///
/// Input: the first byte picks the client (mod 4: the bare SCPI client,
/// SR860, LS336, 34465A), the rest is the replies separated by 0x1E.
pub fn scpi(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let replies: Vec<Vec<u8>> = rest
        .split(|&b| b == REPLY_SEPARATOR)
        .take(MAX_REPLIES)
        .map(<[u8]>::to_vec)
        .collect();
    // The protocol-level parsers on the raw bytes too.
    for r in &replies {
        if let Ok(Some((payload, _))) = parse_block(r) {
            let _ = r.get(payload).map(decode_real64);
        }
    }
    RUNTIME.with(|rt| {
        let Some(rt) = rt else {
            panic!("fuzz harness: cannot build a tokio runtime");
        };
        rt.block_on(scpi_session(which % 4, replies));
    });
}

async fn scpi_session(which: u8, replies: Vec<Vec<u8>>) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("fuzz harness: cannot listen on loopback: {e}"),
    };
    let port = match listener.local_addr() {
        Ok(a) => a.port(),
        Err(e) => panic!("fuzz harness: no local address: {e}"),
    };
    let peer = tokio::spawn(fake_instrument(listener, replies));
    let resource = match Resource::parse(&format!("TCPIP::127.0.0.1::{port}::SOCKET")) {
        Ok(r) => r,
        Err(e) => panic!("fuzz harness: bad resource: {e}"),
    };
    let Some(bench) = sim_bench() else {
        panic!("fuzz harness: configs/sim.toml does not parse");
    };
    let inst = &bench.instruments;
    match which {
        0 => {
            if let Ok(mut c) =
                ScpiClient::connect_tcp("127.0.0.1", port, CLIENT_TIMEOUT_S, "\n").await
            {
                let _ = c.idn().await;
                let _ = c.query("MEAS?").await;
                let _ = c.query_block("R?").await;
                let _ = c.check_errors("INIT").await;
                let _ = c.write_checked("SAMP:COUN 4").await;
                let _ = c.write_checked_esr("FREQ 1").await;
                let _ = c.query_block("R?").await;
            }
        }
        1 => {
            let Some(mut cfg) = inst.lockin.clone() else {
                panic!("fuzz harness: configs/sim.toml has no lock-in");
            };
            cfg.timeout_s = CLIENT_TIMEOUT_S;
            if let Ok(mut d) = Sr860::connect(&cfg, &resource).await {
                let _ = d.identify().await;
                let _ = d.set_time_constant(0.1).await;
                let _ = d.set_sine(1.0, 0.02).await;
                let _ = d.read_xy().await;
                let _ = d.read_xy().await;
                let _ = d.sine_off().await;
            }
        }
        2 => {
            let Some(mut cfg) = inst.temperature.clone() else {
                panic!("fuzz harness: configs/sim.toml has no temperature stage");
            };
            cfg.timeout_s = CLIENT_TIMEOUT_S;
            if let Ok(mut d) = Ls336::connect(&cfg, &resource).await {
                let _ = d.identify().await;
                let _ = d.set_setpoint_K(318.15).await;
                let _ = d.read_K().await;
                let _ = d.read_K().await;
                let _ = d.heater_off().await;
            }
        }
        _ => {
            let mut cfg = inst.deflection.clone();
            cfg.timeout_s = CLIENT_TIMEOUT_S;
            if let Ok(mut d) = ScpiDmm::connect(&cfg, &resource).await {
                let _ = d.identify().await;
                let _ = d
                    .configure(DigitizerSetup {
                        sample_interval_s: 0.01,
                        count: 4,
                        triggers: 1,
                        range_V: 10.0,
                        trigger: DigitizerTrigger::External,
                    })
                    .await;
                let _ = d.arm().await;
                let _ = d.fetch().await;
                let _ = d.fetch().await;
                let _ = d.abort().await;
            }
        }
    }
    // The host is done (its socket dropped): the fake sees EOF and ends.
    let _ = peer.await;
}

/// One host connection: after every line with a `?` (a query) send the
/// next reply; after `PEER_IDLE` of host silence send the next one anyway
/// (the host may be waiting for the rest of a reply); out of replies, close.
async fn fake_instrument(listener: TcpListener, replies: Vec<Vec<u8>>) {
    let Ok((mut sock, _)) = listener.accept().await else {
        return;
    };
    let mut replies = replies.into_iter();
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(PEER_IDLE, host_line(&mut sock, &mut buf)).await {
            Ok(None) => return,
            Ok(Some(line)) if !line.contains(&b'?') => continue,
            Ok(Some(_)) | Err(_) => {}
        }
        let Some(reply) = replies.next() else {
            return;
        };
        if sock.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The next `\n`-terminated line from the host; `None` at EOF.
async fn host_line(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            return Some(buf.drain(..=pos).collect());
        }
        let mut chunk = [0u8; 1024];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(chunk.get(..n)?),
        }
    }
}

/// A folder of its own per thread (tests run in parallel), removed when
/// the thread ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<ScratchDir>> = const { RefCell::new(None) };
}

/// Run `f` on a scratch run folder holding `data` as `file` (relative).
fn with_file(file: &str, data: &[u8], f: impl FnOnce(&Path, &Path)) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dir = slot
            .get_or_insert_with(|| {
                ScratchDir(std::env::temp_dir().join(format!(
                    "vegard-fuzz-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                )))
            })
            .0
            .clone();
        let path = dir.join(file);
        if let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            panic!("fuzz harness: cannot create {}: {e}", parent.display());
        }
        if let Err(e) = std::fs::write(&path, data) {
            panic!("fuzz harness: cannot write {}: {e}", path.display());
        }
        f(&dir, &path);
    });
}

/// A run folder's `run.toml` (`vegard analyze`, `report`, `watch`, `recover`).
pub fn run_toml(data: &[u8]) {
    with_file("run.toml", data, |dir, _| {
        if let Err(e) = vegard_store::read_meta(dir) {
            let _ = e.to_string();
        }
    });
}

/// A run folder's `events.jsonl`.
pub fn events(data: &[u8]) {
    with_file("events.jsonl", data, |dir, _| {
        let _ = vegard_store::read_events(dir);
    });
}

/// A raw stream as text, `raw/<stream>.csv` of older folders (`vegard
/// recover`, the dashboard); the reader tells the format by the first
/// bytes, so this also reaches the binary reader:
/// read, then typed as each raw stream's schema.
pub fn raw_csv(data: &[u8]) {
    with_file("raw/stream.csv", data, |_, path| {
        let Ok(table) = vegard_store::read_raw_file(path) else {
            return;
        };
        let _ = table.check();
        let _ = schema::PotentiostatRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::DeflectionRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::EisRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::LockInRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::TemperatureRaw::from_table(&table).map(|t| t.row(0));
    });
}

/// A binary raw stream `raw/<stream>.arrows` (Arrow IPC stream; `vegard
/// recover`, finalisation, the dashboard, `export --raw`): read batch by
/// batch as the streaming readers do, then whole and typed as each raw
/// stream's schema.
pub fn raw_arrows(data: &[u8]) {
    with_file("raw/stream.arrows", data, |_, path| {
        if let Ok(mut batches) = vegard_store::RawBatches::open(path) {
            while let Ok(Some(batch)) = batches.next_batch() {
                let _ = batch.check();
            }
            let _ = batches.torn_bytes();
        }
        let Ok(table) = vegard_store::read_raw_file(path) else {
            return;
        };
        let _ = table.check();
        let _ = schema::PotentiostatRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::DeflectionRaw::from_table(&table).map(|t| t.row(0));
        let _ = schema::TemperatureRaw::from_table(&table).map(|t| t.row(0));
    });
}

/// A Parquet table of a run folder (`data/*.parquet`, `aligned.parquet`):
/// read, then typed as each finished table's schema.
pub fn parquet(data: &[u8]) {
    with_file("data/table.parquet", data, |_, path| {
        let Ok(table) = vegard_store::read_parquet(path) else {
            return;
        };
        let _ = table.check();
        let _ = schema::PotentiostatData::from_table(&table).map(|t| t.row(0));
        let _ = schema::DeflectionData::from_table(&table).map(|t| t.row(0));
        let _ = schema::TemperatureData::from_table(&table).map(|t| t.row(0));
        let _ = schema::EisData::from_table(&table).map(|t| t.row(0));
        let _ = schema::EsmData::from_table(&table).map(|t| t.row(0));
        let _ = schema::Aligned::from_table(&table).map(|t| t.row(0));
    });
}
