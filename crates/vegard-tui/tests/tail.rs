//! The run-folder tailer against a small hand-written run folder that grows
//! while it is watched: rows appear, a torn last line completes later, the
//! status leaves `running`, and the tailer ends with `Finished`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use vegard_store::{RunAlignment, RunMeta, RunStatus, SegmentAlignment, write_meta};
use vegard_tui::{DashEvent, LogLevel, tail_run_folder};

const SPEED: f64 = 10.0;
const INVOLS: f64 = 60.0;

fn temp_run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vegard-tui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("raw")).expect("mkdir");
    dir
}

fn meta(status: RunStatus, alignment: bool) -> RunMeta {
    let recipe: toml::Table = toml::from_str(
        r#"
        [run]
        name = "t"
        [limits]
        current_max_A = 0.01
        potential_window_V = [-0.2, 1.0]
        [[step]]
        kind = "cv"
        begin_V = 0.4
        vertex_V = [0.9, -0.1]
        scan_rate_V_per_s = 0.2
        step_V = 0.002
        cycles = 3
        "#,
    )
    .expect("recipe");
    let bench: toml::Table = toml::from_str(&format!(
        "[instruments.deflection]\ninvols_nm_per_V = {INVOLS}\n"
    ))
    .expect("bench");
    let alignment = alignment.then(|| RunAlignment {
        alignment_error_estimate_s: Some(0.0004),
        method: "test".into(),
        segments: vec![SegmentAlignment {
            segment: 0,
            step: 0,
            trigger_t_s: 1.25,
            potentiostat_drift_ppm: 20.5,
            deflection_drift_ppm: -34.0,
            alignment_error_estimate_s: 0.0004,
            digitizer_sample_interval_s: 0.005,
            n_potentiostat: 100,
            n_deflection: 200,
            note: None,
        }],
        external: None,
    });
    RunMeta {
        status,
        reason: None,
        time_acceleration: SPEED,
        recipe,
        bench,
        alignment,
        ..RunMeta::default()
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
    f.flush().expect("flush");
}

/// Receive until `pred` holds for an event (returned), failing after 5 s.
async fn until(
    rx: &mut mpsc::UnboundedReceiver<DashEvent>,
    seen: &mut Vec<DashEvent>,
    pred: impl Fn(&DashEvent) -> bool,
) -> DashEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("tailer channel closed early; seen {seen:#?}"),
            Err(_) => panic!("timed out waiting for an event; seen {seen:#?}"),
        };
        seen.push(ev.clone());
        if pred(&ev) {
            return ev;
        }
    }
}

#[tokio::test]
async fn tails_a_growing_folder_and_waits_for_torn_lines() {
    let dir = temp_run_dir("tail");
    write_meta(&dir, &meta(RunStatus::Running, false)).expect("run.toml");
    let events = dir.join("events.jsonl");
    let pot = dir.join("raw/potentiostat.csv");
    let defl = dir.join("raw/deflection.csv");
    append(
        &events,
        concat!(
            r#"{"t_ns":1000,"utc":"x","kind":"run_start","potentiostat":{"idn":"PSTAT-1"},"deflection":{"idn":"DMM-1"},"lockin":null,"time_acceleration":10.0}"#,
            "\n",
            r#"{"t_ns":100000000,"utc":"x","kind":"step_start","step":0,"technique":"cv","duration_s":30.0,"setpoint_K":null}"#,
            "\n",
            r#"{"t_ns":150000000,"utc":"x","kind":"mark"#, // torn: no newline yet
        ),
    );
    append(
        &pot,
        "seq:i64,step:i64,segment:i64,index:i64,cycle:i64,t_dev_s:f64,host_ns:i64,E_V:f64,I_A:f64,status:i64\n\
         0,0,0,0,1,0.01,125000000,0.402,1e-4,0\n\
         1,0,0,1,1,0.02,127000000,0.404,2e-4,0\n\
         2,0,0,2,1,0.03,128500000,0.406,3e-4,0\n",
    );
    append(
        &defl,
        "seq:i64,step:i64,segment:i64,index:i64,t_dev_s:f64,host_ns:i64,V:f64\n\
         0,0,0,0,0.0,140000000,0.001\n\
         1,0,0,1,0.005,140000000,0.002\n\
         2,0,0,2,0.01,140000000,0.003\n\
         3,0,0,3,0.015,140000000,0.004\n\
         4,0,0,4,0.02,1400",
    );

    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(tail_run_folder(dir.clone(), tx, Duration::from_millis(10)));
    let mut seen = Vec::new();

    // Started, then the instruments from run_start.
    let ev = until(
        &mut rx,
        &mut seen,
        |e| matches!(e, DashEvent::Started { instruments, .. } if !instruments.is_empty()),
    )
    .await;
    let DashEvent::Started {
        total_s,
        speed,
        plan,
        instruments,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(speed, SPEED);
    assert!((total_s - 30.0).abs() < 1e-9);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].label, "cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3");
    assert_eq!(instruments[0], ("potentiostat".into(), "PSTAT-1".into()));

    // Potentiostat rows on host_ns × 1e-9 × speed.
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Potentiostat { .. })
    })
    .await;
    let DashEvent::Potentiostat {
        t_s,
        E_V,
        I_A,
        cycle,
        step,
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(t_s.len(), 3);
    assert!((t_s[0] - 1.25).abs() < 1e-12 && (t_s[2] - 1.285).abs() < 1e-12);
    assert_eq!(E_V, vec![0.402, 0.404, 0.406]);
    assert_eq!(I_A[1], 2e-4);
    assert_eq!(cycle, vec![1, 1, 1]);
    assert_eq!(step, vec![0, 0, 0]);

    // Deflection: the four complete rows only, placed from the trigger:
    // t0 = 1.25 s - 0.01 s (first potentiostat row), + t_dev; nm = V × invols.
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Deflection { .. })
    })
    .await;
    let DashEvent::Deflection { t_s, deflection_nm } = ev else {
        unreachable!()
    };
    assert_eq!(t_s.len(), 4, "the torn fifth row must wait");
    assert!((t_s[0] - 1.24).abs() < 1e-12 && (t_s[3] - 1.255).abs() < 1e-12);
    assert!((deflection_nm[2] - 0.18).abs() < 1e-12);

    // Complete the torn lines; add a row and a warning-ish event.
    append(&defl, "00000,0.005\n5,0,0,5,0.025,150000000,0.006\n");
    append(
        &events,
        concat!(
            r#"er","note":"bubble on the tip"}"#,
            "\n",
            r#"{"t_ns":160000000,"utc":"x","kind":"limit_hit","what":"current"}"#,
            "\n",
        ),
    );
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Deflection { .. })
    })
    .await;
    let DashEvent::Deflection { t_s, deflection_nm } = ev else {
        unreachable!()
    };
    assert_eq!(t_s.len(), 2);
    assert!((t_s[0] - 1.26).abs() < 1e-12);
    assert!((deflection_nm[0] - 0.3).abs() < 1e-12 && (deflection_nm[1] - 0.36).abs() < 1e-12);
    // Events are read before rows in each pass: both are in by now.
    let marker = seen.iter().find_map(|e| match e {
        DashEvent::Log {
            t_s,
            level: LogLevel::Marker,
            text,
        } => Some((*t_s, text.clone())),
        _ => None,
    });
    let (t_marker, note) = marker.expect("marker line once completed");
    assert!((t_marker - 1.5).abs() < 1e-9);
    assert_eq!(note, "bubble on the tip");
    assert!(seen.iter().any(|e| matches!(e,
        DashEvent::Log { level: LogLevel::Error, text, .. } if text.starts_with("limit_hit"))));

    // The run ends: status and alignment in run.toml; the tailer finishes.
    append(
        &events,
        "{\"t_ns\":170000000,\"utc\":\"x\",\"kind\":\"run_end\",\"status\":\"complete\",\"reason\":null}\n",
    );
    write_meta(&dir, &meta(RunStatus::Complete, true)).expect("run.toml");
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Finished { .. })
    })
    .await;
    assert_eq!(
        ev,
        DashEvent::Finished {
            status: "complete".into(),
            reason: None
        }
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("tailer returns after Finished")
        .expect("join")
        .expect("tailer ok");
    // Final clocks from [alignment] came before Finished.
    assert!(seen.iter().any(|e| matches!(e,
        DashEvent::Clock { device, drift_ppm, alignment_error_s: Some(err), .. }
            if device == "deflection" && *drift_ppm == -34.0 && *err == 0.0004)));
    // Progress follows the step: cycle 1 of 3, elapsed = time into the step.
    assert!(seen.iter().any(|e| matches!(
        e,
        DashEvent::Progress {
            step: 0,
            cycle: 1,
            cycles: 3,
            ..
        }
    )));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn replays_a_finished_run_and_ends() {
    let dir = temp_run_dir("replay");
    write_meta(&dir, &meta(RunStatus::Aborted, true)).expect("run.toml");
    let mut m = meta(RunStatus::Aborted, true);
    m.reason = Some("user abort".into());
    write_meta(&dir, &m).expect("run.toml");
    append(
        &dir.join("raw/potentiostat.csv"),
        "seq:i64,step:i64,segment:i64,index:i64,cycle:i64,t_dev_s:f64,host_ns:i64,E_V:f64,I_A:f64,status:i64\n0,0,0,0,1,0.01,100000000,0.4,1e-4,0\n",
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::time::timeout(
        Duration::from_secs(10),
        tail_run_folder(dir.clone(), tx, Duration::from_millis(10)),
    )
    .await
    .expect("replay ends")
    .expect("replay ok");
    let mut all = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        all.push(ev);
    }
    assert!(matches!(all.first(), Some(DashEvent::Started { .. })));
    assert_eq!(
        all.last(),
        Some(&DashEvent::Finished {
            status: "aborted".into(),
            reason: Some("user abort".into())
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Everything the tailer sent, once it has returned.
fn drain(rx: &mut mpsc::UnboundedReceiver<DashEvent>) -> Vec<DashEvent> {
    let mut all = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        all.push(ev);
    }
    all
}

/// The dashboard's 80 × 24 frame after these events, as text.
fn frame_text(events: &[DashEvent]) -> String {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut state = vegard_tui::DashState::new(vegard_tui::Mode::Watch);
    for e in events {
        state.apply(e.clone());
    }
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let ui = vegard_tui::UiState::default();
    term.draw(|f| vegard_tui::draw(f, &state, &ui)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Why: `vegard watch` on a run.toml that cannot be parsed showed "waiting
/// for the run to start" forever; the tailer's error was dropped. Now it is
/// on the screen, with file, line and column.
#[tokio::test]
async fn tail_names_an_unparsable_run_toml_on_the_dashboard() {
    let dir = temp_run_dir("bad-toml");
    let toml_path = dir.join("run.toml");
    std::fs::write(&toml_path, "status = \"running\"\ntime_acceleration = [\n").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        tail_run_folder(dir.clone(), tx, Duration::from_millis(10)),
    )
    .await
    .expect("the tailer stops instead of waiting")
    .expect_err("an unparsable run.toml is an error");
    let msg = err.to_string();
    let want = format!("{}:2:22: ", toml_path.display());
    assert!(msg.starts_with(&want), "want {want:?}, got {msg:?}");

    let all = drain(&mut rx);
    assert!(
        all.iter().any(|e| matches!(e,
            DashEvent::Log { level: LogLevel::Error, text, .. } if text.contains(&want))),
        "{all:#?}"
    );
    assert_eq!(
        all.last(),
        Some(&DashEvent::Finished {
            status: "unreadable".into(),
            reason: Some(msg)
        })
    );
    let frame = frame_text(&all);
    assert!(frame.contains("UNREADABLE"), "{frame}");
    assert!(frame.contains("run.toml:2:22"), "{frame}");
    assert!(!frame.contains("waiting for the run to start"), "{frame}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Why: one junk line of events.jsonl stopped the tailer (and so the whole
/// view) without a word. Now it is skipped and named; the rest shows.
#[tokio::test]
async fn tail_skips_and_names_a_junk_event_line() {
    let dir = temp_run_dir("junk-events");
    write_meta(&dir, &meta(RunStatus::Complete, true)).expect("run.toml");
    append(
        &dir.join("events.jsonl"),
        concat!(
            r#"{"t_ns":1000,"utc":"x","kind":"run_start","potentiostat":{"idn":"PSTAT-1"}}"#,
            "\n",
            "garbage from a text editor\n",
            "[1,2]\n",
            r#"{"t_ns":100000000,"utc":"x","kind":"marker","note":"after the junk"}"#,
            "\n",
        ),
    );
    // An event of a kind the dashboard does not know, shown clipped to 200
    // characters: byte 200 falls inside an 'é' here, which must not panic.
    append(
        &dir.join("events.jsonl"),
        &format!(
            "{{\"t_ns\":110000000,\"utc\":\"x\",\"kind\":\"custom\",\"s\":\"{}\"}}\n",
            "é".repeat(300)
        ),
    );
    append(
        &dir.join("raw/potentiostat.csv"),
        "seq:i64,step:i64,segment:i64,index:i64,cycle:i64,t_dev_s:f64,host_ns:i64,E_V:f64,I_A:f64,status:i64\n\
         0,0,0,0,1,0.01,100000000,0.4,1e-4,0\n\
         1,0,0,1,1,0.02,oops,0.5,1e-4,0\n\
         2,0,0,2,1,0.03,120000000,0.6,1e-4,0\n",
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::time::timeout(
        Duration::from_secs(10),
        tail_run_folder(dir.clone(), tx, Duration::from_millis(10)),
    )
    .await
    .expect("replay ends")
    .expect("a junk line is not an error");
    let all = drain(&mut rx);
    let warns: Vec<&str> = all
        .iter()
        .filter_map(|e| match e {
            DashEvent::Log {
                level: LogLevel::Warn,
                text,
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("events.jsonl:2: not JSON") && w.ends_with("(line skipped)")),
        "{warns:#?}"
    );
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("events.jsonl:3: not an event")),
        "{warns:#?}"
    );
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("raw/potentiostat.csv:3: ") && w.contains("oops")),
        "{warns:#?}"
    );
    let custom = all
        .iter()
        .find_map(|e| match e {
            DashEvent::Log { text, .. } if text.starts_with("custom ") => Some(text.clone()),
            _ => None,
        })
        .expect("the custom event is shown");
    assert_eq!(custom.chars().count(), 200, "{custom}");
    // The lines around the junk are shown: the marker after it, both good rows.
    assert!(all.iter().any(|e| matches!(e,
        DashEvent::Log { level: LogLevel::Marker, text, .. } if text == "after the junk")));
    let e_v: Vec<f64> = all
        .iter()
        .filter_map(|e| match e {
            DashEvent::Potentiostat { E_V, .. } => Some(E_V.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(e_v, vec![0.4, 0.6]);
    assert_eq!(
        all.last(),
        Some(&DashEvent::Finished {
            status: "complete".into(),
            reason: None
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run.toml that does not exist yet is waited for, but visibly (and for
/// at most `RUN_TOML_WAIT`); once it appears the run is followed as usual.
#[tokio::test]
async fn tail_waits_visibly_for_a_missing_run_toml() {
    let dir = temp_run_dir("no-toml");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(tail_run_folder(dir.clone(), tx, Duration::from_millis(10)));
    let mut seen = Vec::new();
    let ev = until(&mut rx, &mut seen, |e| matches!(e, DashEvent::Log { .. })).await;
    let DashEvent::Log { level, text, .. } = ev else {
        unreachable!()
    };
    assert_eq!(level, LogLevel::Warn);
    assert!(
        text.ends_with(&format!(
            "no run.toml yet; waiting up to {} s for the run to write it",
            vegard_tui::tail::RUN_TOML_WAIT.as_secs()
        )),
        "{text}"
    );
    write_meta(&dir, &meta(RunStatus::Complete, true)).expect("run.toml");
    until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Started { .. })
    })
    .await;
    until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Finished { .. })
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("tailer returns after Finished")
        .expect("join")
        .expect("tailer ok");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check_run_folder` (what `vegard watch` runs before taking the
/// terminal): an unreadable events.jsonl is an error naming it; junk lines
/// are returned to warn about; a torn last line (a live run mid-write) is not.
#[test]
fn check_run_folder_names_what_it_cannot_read() {
    let dir = temp_run_dir("check");
    write_meta(&dir, &meta(RunStatus::Running, false)).expect("run.toml");
    let events = dir.join("events.jsonl");
    append(&events, "{\"kind\":\"run_start\"}\nnope\n{\"kind\":\"ma");
    let warn = vegard_tui::tail::check_run_folder(&dir).unwrap();
    assert_eq!(warn.len(), 1, "{warn:?}");
    assert!(warn[0].starts_with("events.jsonl:2: not JSON"), "{warn:?}");
    std::fs::remove_file(&events).unwrap();
    std::fs::create_dir(&events).unwrap();
    let err = vegard_tui::tail::check_run_folder(&dir)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}: ", events.display())), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bytes of a binary raw stream holding `rows`, one batch per entry of
/// `batches` (rows per batch), closed; written through the store's writer
/// in a scratch folder.
fn binary_stream(
    tag: &str,
    columns: &[vegard_store::ColumnSpec],
    rows: &[Vec<vegard_store::Cell>],
    batches: &[usize],
) -> Vec<u8> {
    let parent = temp_run_dir(&format!("src-{tag}"));
    let run = vegard_store::RunWriter::create(&parent, tag, vegard_core::UtcStamp::now())
        .unwrap()
        .with_flush_interval(Duration::from_secs(3600));
    let mut s = run.stream("s", columns).unwrap();
    let mut it = rows.iter();
    for &n in batches {
        for r in it.by_ref().take(n) {
            s.append(r).unwrap();
        }
        s.flush().unwrap();
    }
    s.close().unwrap();
    let bytes = std::fs::read(vegard_store::raw_path(run.dir(), "s")).unwrap();
    let _ = std::fs::remove_dir_all(&parent);
    bytes
}

#[tokio::test]
async fn tails_binary_streams_and_waits_for_a_torn_batch() {
    use vegard_store::Cell::{F64, I64};
    use vegard_store::schema::{DeflectionRaw, PotentiostatRaw};
    let dir = temp_run_dir("tail-bin");
    write_meta(&dir, &meta(RunStatus::Running, false)).expect("run.toml");
    append(
        &dir.join("events.jsonl"),
        concat!(
            r#"{"t_ns":1000,"utc":"x","kind":"run_start","potentiostat":{"idn":"PSTAT-1"},"deflection":{"idn":"DMM-1"},"lockin":null,"time_acceleration":10.0}"#,
            "\n",
            r#"{"t_ns":100000000,"utc":"x","kind":"step_start","step":0,"technique":"cv","duration_s":30.0,"setpoint_K":null}"#,
            "\n",
        ),
    );
    let pot_rows: Vec<Vec<_>> = (0..3)
        .map(|k| {
            vec![
                I64(k),
                I64(0),
                I64(0),
                I64(k),
                I64(1),
                F64(0.01 * (k + 1) as f64),
                I64(125_000_000 + k * 1_000_000),
                F64(0.402 + 0.002 * k as f64),
                F64(1e-4 * (k + 1) as f64),
                I64(0),
            ]
        })
        .collect();
    let pot = binary_stream("pot", PotentiostatRaw::COLUMNS, &pot_rows, &[3]);
    std::fs::write(dir.join("raw/potentiostat.arrows"), &pot).unwrap();
    let defl_rows: Vec<Vec<_>> = (0..5)
        .map(|k| {
            vec![
                I64(k),
                I64(0),
                I64(0),
                I64(k),
                F64(0.005 * k as f64),
                I64(140_000_000),
                F64(0.001 * (k + 1) as f64),
            ]
        })
        .collect();
    let defl = binary_stream("defl", DeflectionRaw::COLUMNS, &defl_rows, &[4, 1]);
    // The second batch is still being written: cut inside it.
    let defl_path = dir.join("raw/deflection.arrows");
    std::fs::write(&defl_path, &defl[..defl.len() - 40]).unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(tail_run_folder(dir.clone(), tx, Duration::from_millis(10)));
    let mut seen = Vec::new();
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Potentiostat { .. })
    })
    .await;
    let DashEvent::Potentiostat { t_s, E_V, .. } = ev else {
        unreachable!()
    };
    assert_eq!(E_V, vec![0.402, 0.404, 0.406]);
    assert!((t_s[0] - 1.25).abs() < 1e-12);
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Deflection { .. })
    })
    .await;
    let DashEvent::Deflection { t_s, deflection_nm } = ev else {
        unreachable!()
    };
    assert_eq!(t_s.len(), 4, "the torn second batch must wait");
    assert!((t_s[0] - 1.24).abs() < 1e-12 && (t_s[3] - 1.255).abs() < 1e-12);
    assert!((deflection_nm[2] - 0.18).abs() < 1e-12);

    // The batch completes: its row arrives; then the run ends.
    std::fs::write(&defl_path, &defl).unwrap();
    let ev = until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Deflection { .. })
    })
    .await;
    let DashEvent::Deflection { t_s, .. } = ev else {
        unreachable!()
    };
    assert_eq!(t_s.len(), 1);
    assert!((t_s[0] - 1.26).abs() < 1e-12);
    write_meta(&dir, &meta(RunStatus::Complete, true)).expect("run.toml");
    until(&mut rx, &mut seen, |e| {
        matches!(e, DashEvent::Finished { .. })
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("tailer ends")
        .expect("join")
        .expect("tail ok");
    // No note about the torn batch: it was a batch being written.
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, DashEvent::Log { text, .. } if text.contains("arrows"))),
        "{seen:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
