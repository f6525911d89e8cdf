//! Steering a run from outside (what the dashboard does): a pause takes
//! effect at the next step boundary with the cell off, markers land in
//! events.jsonl with their step, resume continues the plan, and a stop while
//! paused ends the run safely. Drivers talk to the virtual bench over its
//! real pty/TCP links.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vegard_core::RunEvent;
use vegard_engine::{AbortReason, Resources, RunControl, RunRequest, run};
use vegard_recipe::{load_bench, parse_recipe};
use vegard_sim::VirtualBench;

const RECIPE: &str = r#"
[run]
name = "controls"
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "steps"
levels_V = [0.45]
hold_s = [0.6]
sample_interval_s = 0.02
[[step]]
kind = "steps"
levels_V = [0.42]
hold_s = [0.6]
sample_interval_s = 0.02
"#;

/// The run's inputs and the test's handles on it. The engine future is not
/// `Send` (instrument trait objects), so the test awaits it on its own task
/// and steers it from a spawned one, as the CLI does from the dashboard.
struct Setup {
    vb: Arc<VirtualBench>,
    req: RunRequest,
    control: tokio::sync::mpsc::UnboundedSender<RunControl>,
    cancel: tokio::sync::watch::Sender<Option<vegard_engine::StopCause>>,
    cancel_rx: vegard_engine::StopRx,
}

fn setup(name: &str) -> Setup {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bench = load_bench(&root.join("configs/sim.toml")).unwrap();
    let vb = Arc::new(VirtualBench::start(bench.sim.as_ref().unwrap()).unwrap());
    let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cancel, cancel_rx) = tokio::sync::watch::channel(None);
    let emulators = Resources {
        potentiostat: vb.potentiostat_resource(),
        deflection: vb.deflection_resource(),
        lockin: Some(vb.lockin_resource()),
        temperature: Some(vb.temperature_resource()),
        time_acceleration: vb.speed(),
        bench_health: Some(vegard_engine::BenchHealth(std::sync::Arc::new(
            vb.overrun_probe(),
        ))),
        release_bench: None,
    };
    let resources = Resources::resolve(&bench.instruments, Some(&emulators)).unwrap();
    let req = RunRequest {
        recipe: parse_recipe(RECIPE, "controls.toml").unwrap(),
        recipe_path: "controls.toml".into(),
        bench,
        bench_path: root.join("configs/sim.toml"),
        out_dir: std::env::temp_dir().join(format!("vegard-{name}-{}", std::process::id())),
        resources,
        fault: None,
        control: Some(control_rx),
    };
    Setup {
        vb,
        req,
        control,
        cancel,
        cancel_rx,
    }
}

/// Waits (at most 30 s) for the first progress report `want` accepts.
async fn wait_for(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
    want: impl Fn(&RunEvent) -> bool,
) -> RunEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let p = rx.recv().await.expect("run ended first");
            if want(&p) {
                return p;
            }
        }
    })
    .await
    .expect("progress report not seen within 30 s")
}

fn kinds(run_dir: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let read = vegard_store::read_events(run_dir).unwrap();
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    read.events
        .into_iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_waits_with_the_cell_off_and_markers_are_recorded() {
    let s = setup("pause");
    let (ptx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let (vb, control) = (s.vb.clone(), s.control.clone());
    let steer = tokio::spawn(async move {
        // Pause as soon as the first step runs: it takes effect before step 1.
        wait_for(&mut progress, |p| {
            matches!(p, RunEvent::StepStarted { index: 0, .. })
        })
        .await;
        control
            .send(RunControl::Marker("first level".into()))
            .unwrap();
        control.send(RunControl::TogglePause).unwrap();
        // It takes effect before step 1 (events.jsonl's `paused` line says
        // so too, checked below).
        wait_for(&mut progress, |p| matches!(p, RunEvent::Paused(true))).await;
        // Paused: the cell is off and stays off.
        for _ in 0..5 {
            assert!(!vb.cell_is_on(), "cell on while paused");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        control
            .send(RunControl::Marker("checked the tip".into()))
            .unwrap();
        wait_for(
            &mut progress,
            |p| matches!(p, RunEvent::Marker { note, .. } if note == "checked the tip"),
        )
        .await;
        control.send(RunControl::TogglePause).unwrap();
        wait_for(&mut progress, |p| matches!(p, RunEvent::Paused(false))).await;
    });
    let outcome = run(s.req, s.cancel_rx, move |p| {
        let _ = ptx.send(p);
    })
    .await
    .unwrap();
    steer.await.unwrap();
    assert_eq!(outcome.status.to_string(), "complete");
    assert!(!s.vb.cell_is_on());

    let ev = kinds(&outcome.run_dir);
    let pos = |k: &str| ev.iter().position(|(kind, _)| kind == k).unwrap();
    let markers: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|(k, _)| k == "marker")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(markers.len(), 2, "{ev:?}");
    assert_eq!(markers[0]["note"], "first level");
    assert_eq!(markers[0]["step"], 0);
    assert_eq!(markers[1]["note"], "checked the tip");
    // Order: step 0 ends, paused, marker, resumed, step 1 starts.
    let step1_start = ev
        .iter()
        .position(|(k, e)| k == "step_start" && e["step"] == 1)
        .unwrap();
    let step0_end = ev
        .iter()
        .position(|(k, e)| k == "step_end" && e["step"] == 0)
        .unwrap();
    assert!(step0_end < pos("paused"));
    assert!(pos("paused") < pos("resumed") && pos("resumed") < step1_start);
    assert_eq!(ev[pos("paused")].1["next_step"], 1);
    let second_marker = ev
        .iter()
        .position(|(k, e)| k == "marker" && e["note"] == "checked the tip")
        .unwrap();
    assert!(pos("paused") < second_marker && second_marker < pos("resumed"));
    // The pause lasted at least the 0.5 s the test held it.
    let t = |i: usize| ev[i].1["t_ns"].as_i64().unwrap();
    assert!(t(pos("resumed")) - t(pos("paused")) >= 500_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_paused_aborts_safely() {
    let s = setup("pause-stop");
    let (ptx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    s.control.send(RunControl::TogglePause).unwrap();
    let cancel = s.cancel;
    let steer = tokio::spawn(async move {
        wait_for(&mut progress, |p| matches!(p, RunEvent::Paused(true))).await;
        cancel
            .send(Some(vegard_engine::StopCause::Requested))
            .unwrap();
    });
    let outcome = run(s.req, s.cancel_rx, move |p| {
        let _ = ptx.send(p);
    })
    .await
    .unwrap();
    steer.await.unwrap();
    assert_eq!(outcome.status.to_string(), "aborted");
    assert!(
        matches!(outcome.abort, Some(AbortReason::StopRequested)),
        "{:?}",
        outcome.abort
    );
    let reason = outcome.reason.unwrap();
    assert!(reason.contains("stop requested"), "{reason}");
    assert!(!s.vb.cell_is_on());
    let ev = kinds(&outcome.run_dir);
    assert!(ev.iter().any(|(k, _)| k == "cell_off"), "{ev:?}");
}
