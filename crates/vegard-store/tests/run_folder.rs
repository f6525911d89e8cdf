//! Run-folder behaviour as the engine and a crash see it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use vegard_core::UtcStamp;
use vegard_store::*;

/// A fresh empty folder under the system temp dir (no tempfile dependency).
fn scratch(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vegard-store-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stamp() -> UtcStamp {
    UtcStamp::from_unix(1_795_392_000 + 3_723, 0) // 2026-11-23T01:02:03Z
}

fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

const TRICKY: [f64; 9] = [
    0.1,
    -0.0,
    1e-300,
    -1.7976931348623157e308,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1.0 / 3.0,
    5e-324,
];

/// Streams can be declared as constants.
const PSTAT: [ColumnSpec; 3] = [
    ColumnSpec::new("t_ns", ColKind::I64),
    ColumnSpec::new("E_V", ColKind::F64),
    ColumnSpec::new("I_A", ColKind::F64),
];

#[test]
fn raw_to_parquet_round_trip_is_bit_exact() {
    let parent = scratch("roundtrip");
    let run = RunWriter::create(&parent, "cv", stamp()).unwrap();
    let mut s = run.stream("pstat", &PSTAT).unwrap();
    let t: Vec<i64> = vec![i64::MIN, -1, 0, 1, 2, 3, 4, 5, i64::MAX];
    let i_a: Vec<f64> = (0..9).map(|k| (k as f64 * 0.37).sin() * 1e-5).collect();
    for k in 0..9 {
        s.append(&[t[k].into(), TRICKY[k].into(), i_a[k].into()])
            .unwrap();
    }
    assert_eq!(s.rows(), 9);
    s.close().unwrap();

    let raw = read_raw(run.dir(), "pstat").unwrap();
    assert_eq!(raw.names(), vec!["t_ns", "E_V", "I_A"]);
    assert_eq!(raw.i64("t_ns").unwrap(), t);
    assert!(same_f64(&raw.f64("E_V").unwrap(), &TRICKY));
    assert!(same_f64(&raw.f64("I_A").unwrap(), &i_a));

    let done = run.finalize_streams().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].name.as_str(), done[0].rows), ("pstat", 9));
    assert_eq!(done[0].parquet_path, run.dir().join("data/pstat.parquet"));
    let pq = read_parquet(&done[0].parquet_path).unwrap();
    assert_eq!(pq.names(), raw.names());
    assert_eq!(pq.i64("t_ns").unwrap(), t);
    assert!(same_f64(&pq.f64("E_V").unwrap(), &TRICKY));
    assert!(same_f64(&pq.f64("I_A").unwrap(), &i_a));
    // Raw files are kept next to the Parquet.
    assert!(run.dir().join("raw/pstat.arrows").exists());
    assert_eq!(
        list_raw_streams(run.dir()).unwrap(),
        vec!["pstat".to_owned()]
    );
}

#[test]
fn empty_stream_and_empty_table_round_trip() {
    let parent = scratch("empty");
    let run = RunWriter::create(&parent, "x", stamp()).unwrap();
    run.stream("dmm", &[ColumnSpec::i64("seq"), ColumnSpec::f64("V")])
        .unwrap()
        .close()
        .unwrap();
    let done = run.finalize_streams().unwrap();
    assert_eq!(done[0].rows, 0);
    let pq = read_parquet(&done[0].parquet_path).unwrap();
    assert_eq!(pq.names(), vec!["seq", "V"]);
    assert_eq!(pq.len(), 0);
}

#[test]
fn aligned_table_written_and_read_back() {
    let dir = scratch("aligned");
    let table = Table::new()
        .with(
            "t_s",
            Column::F64((0..1000).map(|k| k as f64 * 1e-3).collect()),
        )
        .with("cycle", Column::I64((0..1000).map(|k| k / 250).collect()));
    let path = dir.join(ALIGNED_FILE);
    write_parquet(&path, &table).unwrap();
    assert_eq!(read_parquet(&path).unwrap(), table);
    assert!(!dir.join("aligned.parquet.tmp").exists());

    let ragged = table.with("x", Column::F64(vec![1.0]));
    assert!(matches!(
        write_parquet(&path, &ragged),
        Err(StoreError::Table { .. })
    ));
}

#[test]
fn legacy_csv_stream_torn_last_line_is_dropped_and_bad_middle_line_is_located() {
    // Folders recorded before the binary streams hold raw/<stream>.csv.
    let parent = scratch("torn");
    let run = RunWriter::create(&parent, "t", stamp()).unwrap();
    let path = run.dir().join("raw/x.csv");
    std::fs::write(&path, "seq:i64,v:f64\n0,0.0\n1,0.25\n2,0.5\n3,0.75\n").unwrap();
    assert_eq!(list_raw_streams(run.dir()).unwrap(), vec!["x".to_owned()]);
    // A new stream of that name would shadow recorded data: refused.
    assert!(matches!(
        run.stream("x", &[ColumnSpec::i64("seq")]),
        Err(StoreError::StreamExists { .. })
    ));

    // What a kill mid-write leaves: half a line, no newline.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("4,0.12");
    std::fs::write(&path, &text).unwrap();
    let t = read_raw(run.dir(), "x").unwrap();
    assert_eq!(t.i64("seq").unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(t.f64("v").unwrap(), vec![0.0, 0.25, 0.5, 0.75]);

    // A complete but malformed line in the middle is corruption: error with
    // file and line (header is line 1, so the third row is line 4).
    let lines: Vec<&str> = text.lines().collect();
    let corrupt = format!(
        "{}\n{}\n{}\n3,oops\n{}\n",
        lines[0], lines[1], lines[2], lines[4]
    );
    std::fs::write(&path, corrupt).unwrap();
    let err = read_raw(run.dir(), "x").unwrap_err().to_string();
    assert!(err.contains("raw/x.csv:4:"), "{err}");
    assert!(err.contains("\"v\""), "{err}");

    std::fs::write(&path, format!("{}\n1,2.0,3\n", lines[0])).unwrap();
    let err = read_raw(run.dir(), "x").unwrap_err().to_string();
    assert!(
        err.contains("raw/x.csv:2:") && err.contains("more than 2"),
        "{err}"
    );

    // A header that never made it to disk: no rows, and finalize skips it.
    std::fs::write(&path, "seq:i64,v:f").unwrap();
    assert!(matches!(
        read_raw(run.dir(), "x"),
        Err(StoreError::NoHeader { .. })
    ));
    assert!(run.finalize_streams().unwrap().is_empty());
}

/// Rows 0..n of a two-column stream, flushed every `per_batch` rows, closed.
fn batched_stream(tag: &str, n: i64, per_batch: i64) -> (PathBuf, PathBuf) {
    let parent = scratch(tag);
    let run = RunWriter::create(&parent, "b", stamp())
        .unwrap()
        .with_flush_interval(Duration::from_secs(3600));
    let mut s = run
        .stream("x", &[ColumnSpec::i64("seq"), ColumnSpec::f64("v")])
        .unwrap();
    for k in 0..n {
        s.append(&[Cell::I64(k), Cell::F64(k as f64 / 8.0)])
            .unwrap();
        if (k + 1) % per_batch == 0 {
            s.flush().unwrap();
        }
    }
    s.close().unwrap();
    let path = run.dir().join("raw/x.arrows");
    (run.dir().to_path_buf(), path)
}

#[test]
fn binary_stream_cut_at_every_byte_reads_the_complete_batches_only() {
    let (dir, path) = batched_stream("cut", 12, 3);
    let full = std::fs::read(&path).unwrap();
    let whole = RawBatches::open(&path).unwrap();
    assert_eq!(whole.columns().len(), 2);
    let t = read_raw(&dir, "x").unwrap();
    assert_eq!(t.i64("seq").unwrap(), (0..12).collect::<Vec<_>>());
    // Batch boundaries: where a cut leaves k complete batches.
    let mut rows_at_cut = Vec::new();
    let cut_path = dir.join("raw/cut.arrows");
    for cut in 0..=full.len() {
        std::fs::write(&cut_path, &full[..cut]).unwrap();
        match RawBatches::open(&cut_path) {
            Err(StoreError::NoHeader { .. }) => {
                rows_at_cut.push(None);
                continue;
            }
            Err(e) => panic!("cut at {cut}: {e}"),
            Ok(mut b) => {
                let mut seq = Vec::new();
                while let Some(batch) = b.next_batch().unwrap() {
                    seq.extend(batch.i64("seq").unwrap());
                }
                // Whole batches, in order, never a partial one.
                assert_eq!(seq, (0..seq.len() as i64).collect::<Vec<_>>());
                assert_eq!(seq.len() % 3, 0, "cut at {cut}: {} rows", seq.len());
                let at_boundary = b.torn_bytes().is_none();
                if cut == full.len() {
                    assert!(b.closed() && at_boundary && seq.len() == 12);
                } else if !at_boundary {
                    assert!(b.torn_bytes().unwrap() > 0);
                }
                rows_at_cut.push(Some(seq.len()));
            }
        }
    }
    // Every count from 0 to 12 rows was seen, growing with the cut.
    let counts: Vec<usize> = rows_at_cut.iter().flatten().copied().collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    for k in [0, 3, 6, 9, 12] {
        assert!(counts.contains(&k), "no cut gave {k} rows");
    }
}

#[test]
fn binary_stream_zero_tail_is_torn_and_a_bad_middle_message_is_located() {
    let (dir, path) = batched_stream("corrupt", 9, 3);
    let full = std::fs::read(&path).unwrap();
    // A power loss can leave the file extended with zeros.
    let mut zeros = full[..full.len() - 8].to_vec(); // no end marker
    zeros.extend(std::iter::repeat_n(0u8, 5000));
    std::fs::write(&path, &zeros).unwrap();
    let mut b = RawBatches::open(&path).unwrap();
    let mut n = 0;
    while let Some(t) = b.next_batch().unwrap() {
        n += t.len();
    }
    assert_eq!((n, b.torn_bytes()), (9, Some(5000)));

    // Garbage over the second batch's metadata: corruption, named by offset.
    let mut bad = full.clone();
    let first_batch = {
        let len = i32::from_le_bytes(full[4..8].try_into().unwrap()) as usize;
        8 + len
    };
    for byte in &mut bad[first_batch + 8..first_batch + 40] {
        *byte = 0x5A;
    }
    std::fs::write(&path, &bad).unwrap();
    let err = read_raw(&dir, "x").unwrap_err().to_string();
    assert!(
        err.contains("raw/x.arrows: at byte ") && err.contains("metadata"),
        "{err}"
    );
    // Every single-byte corruption of the file: never a panic; a read that
    // succeeds has the schema's columns of equal length.
    let mut errors = 0;
    for at in 0..full.len() {
        let mut flipped = full.clone();
        flipped[at] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        match read_raw(&dir, "x") {
            Err(_) => errors += 1,
            Ok(t) => t.check().unwrap(),
        }
    }
    assert!(errors > 0, "no corruption was noticed");
}

#[test]
fn rows_flushed_before_a_kill_are_all_readable_while_the_writer_is_open() {
    let parent = scratch("kill");
    let run = RunWriter::create(&parent, "k", stamp())
        .unwrap()
        .with_flush_interval(Duration::from_secs(3600));
    let mut s = run
        .stream("pstat", &[ColumnSpec::i64("seq"), ColumnSpec::f64("I_A")])
        .unwrap();
    for k in 0..1000 {
        s.append(&[Cell::I64(k), Cell::F64(k as f64 * 1e-6)])
            .unwrap();
    }
    s.flush().unwrap();
    // Rows after the last flush sit in the writer's buffer: a SIGKILL now
    // loses them, and a reader of the file must see exactly the first 1000.
    for k in 1000..1010 {
        s.append(&[Cell::I64(k), Cell::F64(0.0)]).unwrap();
    }
    let t = read_raw(run.dir(), "pstat").unwrap();
    assert_eq!(t.len(), 1000);
    assert_eq!(t.i64("seq").unwrap(), (0..1000).collect::<Vec<_>>());
    assert_eq!(t.f64("I_A").unwrap()[999], 999.0 * 1e-6);
    // Simulate the kill: the buffer is never flushed.
    std::mem::forget(s);
    assert_eq!(read_raw(run.dir(), "pstat").unwrap().len(), 1000);
}

#[test]
fn append_flushes_by_itself_once_the_interval_has_passed() {
    let parent = scratch("interval");
    let run = RunWriter::create(&parent, "i", stamp())
        .unwrap()
        .with_flush_interval(Duration::from_millis(500));
    let mut s = run.stream("x", &[ColumnSpec::i64("seq")]).unwrap();
    s.append(&[Cell::I64(0)]).unwrap();
    s.append(&[Cell::I64(1)]).unwrap();
    assert_eq!(
        read_raw(run.dir(), "x").unwrap().len(),
        0,
        "flushed too early"
    );
    std::thread::sleep(Duration::from_millis(550));
    s.append(&[Cell::I64(2)]).unwrap();
    assert_eq!(read_raw(run.dir(), "x").unwrap().len(), 3);
    std::mem::forget(s);
}

#[test]
fn rows_and_names_are_checked_before_writing() {
    let parent = scratch("checks");
    let run = RunWriter::create(&parent, "c", stamp()).unwrap();
    let mut s = run
        .stream("x", &[ColumnSpec::i64("seq"), ColumnSpec::f64("v")])
        .unwrap();
    let err = s.append(&[Cell::I64(1)]).unwrap_err().to_string();
    assert!(
        err.contains("row has 1 cells but the stream has 2"),
        "{err}"
    );
    let err = s
        .append(&[Cell::F64(1.0), Cell::F64(1.0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("column \"seq\" is i64, got a f64"), "{err}");
    s.append(&[Cell::I64(7), Cell::F64(0.5)]).unwrap();
    s.close().unwrap();
    assert_eq!(
        read_raw(run.dir(), "x").unwrap().i64("seq").unwrap(),
        vec![7]
    );

    assert!(matches!(
        run.stream("x", &[ColumnSpec::i64("seq")]),
        Err(StoreError::StreamExists { .. })
    ));
    for bad in ["", "../up", "a/b", ".hidden", "a b"] {
        assert!(
            matches!(
                run.stream(bad, &[ColumnSpec::i64("seq")]),
                Err(StoreError::InvalidName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    assert!(run.stream("y", &[ColumnSpec::f64("a,b")]).is_err());
    assert!(run.stream("y", &[ColumnSpec::f64("a:b")]).is_err());
    assert!(
        run.stream("y", &[ColumnSpec::f64("a"), ColumnSpec::i64("a")])
            .is_err()
    );
    assert!(run.stream("y", &[]).is_err());
}

/// A run.toml whose `[alignment]` lacks keys (written by another version or
/// program) still opens: missing numbers read as NaN, not as an error.
#[test]
fn a_partial_alignment_table_still_reads() {
    let parent = scratch("partial-alignment");
    let run = RunWriter::create(&parent, "p", stamp()).unwrap();
    run.write_meta(&RunMeta::default()).unwrap();
    let path = run.dir().join(RUN_META_FILE);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[alignment]\n[[alignment.segments]]\nsegment = 0\ntrigger_t_s = 1.25\n");
    std::fs::write(&path, text).unwrap();
    let meta = read_meta(run.dir()).unwrap();
    let a = meta.alignment.unwrap();
    assert_eq!(a.segments.len(), 1);
    assert_eq!(a.segments[0].trigger_t_s, 1.25);
    assert!(a.segments[0].potentiostat_drift_ppm.is_nan());
    assert_eq!(a.segments[0].n_potentiostat, 0);
}

#[test]
fn meta_round_trips_through_run_toml() {
    let parent = scratch("meta");
    let run = RunWriter::create(&parent, "m", stamp()).unwrap();
    let recipe: toml::Table = toml::from_str(
        "[run]\nname = \"demo\"\n[[steps]]\nkind = \"cv\"\nscan_rate_V_per_s = 0.2\n",
    )
    .unwrap();
    let bench: toml::Table = toml::from_str("[bench]\nname = \"sim\"\n").unwrap();
    // Typed tables round-trip too, an absent note included.
    let alignment = RunAlignment {
        alignment_error_estimate_s: Some(1.5e-3),
        method: "trigger".into(),
        segments: vec![SegmentAlignment {
            segment: 0,
            step: 1,
            potentiostat_drift_ppm: 12.5,
            deflection_drift_ppm: -3.0,
            trigger_t_s: 2.0,
            alignment_error_estimate_s: 1.5e-3,
            digitizer_sample_interval_s: 0.005,
            n_potentiostat: 10,
            n_deflection: 20,
            note: None,
        }],
        external: None,
    };
    let mut meta = RunMeta {
        status: RunStatus::Running,
        reason: None,
        vegard_version: "0.1.0".into(),
        hostname: "bench-pc".into(),
        utc_start: stamp().rfc3339(),
        time_acceleration: 20.0,
        recipe_path: "recipes/demo.toml".into(),
        bench_path: "configs/sim.toml".into(),
        recipe,
        bench,
        alignment: Some(alignment),
        analysis_summary: Some(AnalysisSummary {
            step: 1,
            slope_nm_per_mC: Some(-0.2053),
            slope_se_nm_per_mC: Some(1e-4),
            r2: Some(0.9997),
            withheld: None,
        }),
        steps: vec![StepRecord {
            step: 0,
            kind: "cv".into(),
            recipe_step: 0,
            sweep_iteration: Some(1),
            setpoint_K: Some(318.15),
            sweep_dc_V: None,
            sweep_amplitude_V: None,
            sweep_scan_rate_V_per_s: Some(0.05),
            sweep_freq_Hz: None,
            nominal_duration_s: 30.0,
            T_mean_K: Some(318.1),
            T_min_K: Some(318.0),
            T_max_K: Some(318.2),
            T_readings: Some(12),
        }],
        data_issues: vec![RecordedIssue {
            step: Some(4),
            kind: "esm_window".into(),
            message: "step 4 (esm_sweep) at 10 Hz: warning: lock-in switched late".into(),
        }],
        bench_overrun: Some("the virtual bench could not keep up at 100x".into()),
        deflection_readings_lost: vec![2, 5],
        // An imported run's provenance (tables nested in tables) round-trips.
        import: Some(ImportProvenance {
            vegard_version: "0.1.0".into(),
            imported_utc: stamp().rfc3339(),
            invols_nm_per_V: 55.0,
            trace_unit: "V".into(),
            timeline: "potentiostat file time".into(),
            sources: vec![ImportSource {
                role: "potentiostat".into(),
                path: "cv.mpt".into(),
                sha256: "ab".repeat(32),
                size_bytes: 41687,
                format: "biologic_mpt".into(),
                technique: Some("Cyclic Voltammetry".into()),
                start_unix_ns: Some(1_596_018_661_000_000_000),
                start_note: None,
                n_rows: 223,
                meta: [("dE/dt".to_string(), "100 mV/s".to_string())].into(),
            }],
        }),
    };
    run.write_meta(&meta).unwrap();
    assert_eq!(read_meta(run.dir()).unwrap(), meta);
    let text = std::fs::read_to_string(run.dir().join(RUN_META_FILE)).unwrap();
    assert!(text.contains("status = \"running\""), "{text}");
    assert!(!text.contains("reason"), "{text}");
    assert!(!run.dir().join("run.toml.tmp").exists());

    meta.status = RunStatus::Aborted;
    meta.reason = Some("user abort".into());
    write_meta(run.dir(), &meta).unwrap();
    let back = read_meta(run.dir()).unwrap();
    assert_eq!(back, meta);
    let text = std::fs::read_to_string(run.dir().join(RUN_META_FILE)).unwrap();
    assert!(text.contains("status = \"aborted\""), "{text}");

    // Display and the serde name agree for every status.
    for status in [
        RunStatus::Running,
        RunStatus::Complete,
        RunStatus::Aborted,
        RunStatus::Interrupted,
    ] {
        write_meta(
            run.dir(),
            &RunMeta {
                status,
                ..meta.clone()
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(run.dir().join(RUN_META_FILE)).unwrap();
        assert!(text.contains(&format!("status = \"{status}\"")), "{text}");
    }

    std::fs::write(run.dir().join(RUN_META_FILE), "status = \"exploded\"\n").unwrap();
    let err = read_meta(run.dir()).unwrap_err().to_string();
    assert!(err.contains("run.toml"), "{err}");
}

#[test]
fn events_are_json_lines_with_fixed_leading_keys() {
    let parent = scratch("events");
    let run = RunWriter::create(&parent, "e", stamp()).unwrap();
    let log = run.events().unwrap();
    log.append(
        "step_start",
        5,
        serde_json::json!({"step": 0, "kind": "cv"}),
    )
    .unwrap_err();
    log.append(
        "step_start",
        5,
        serde_json::json!({"step": 0, "name": "cv \"1\""}),
    )
    .unwrap();
    let clone = log.clone();
    std::thread::spawn(move || clone.append("marker", 7, serde_json::Value::Null).unwrap())
        .join()
        .unwrap();
    assert!(log.append("x", 9, serde_json::json!([1, 2])).is_err());

    let text = std::fs::read_to_string(run.dir().join(EVENTS_FILE)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("{\"t_ns\":5,\"utc\":\"20"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(",\"kind\":\"step_start\","),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("{\"t_ns\":7,") && lines[1].ends_with("\"kind\":\"marker\"}"));

    // A torn trailing event is left out of the events and named.
    std::fs::write(
        run.dir().join(EVENTS_FILE),
        format!("{text}{{\"t_ns\":9,\"ut"),
    )
    .unwrap();
    let read = read_events(run.dir()).unwrap();
    let events = &read.events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["name"], "cv \"1\"");
    assert_eq!(events[0]["step"], 0);
    assert_eq!(events[1]["kind"], "marker");
    assert_eq!(events[1]["t_ns"], 7);
    assert_eq!(read.skipped.len(), 1);
    assert!(read.skipped[0].torn);
    assert_eq!(
        read.skipped[0].to_string(),
        "events.jsonl:3: torn last line (13 bytes), a crash mid-write"
    );
}

#[test]
fn a_junk_line_in_events_jsonl_is_skipped_and_named_not_fatal() {
    let dir = scratch("junk-events");
    std::fs::write(
        dir.join(EVENTS_FILE),
        concat!(
            "{\"t_ns\":1,\"kind\":\"run_start\"}\n",
            "this is not json\n",
            "\n",
            "[1,2]\n",
            "{\"t_ns\":2,\"kind\":\"step_start\",\"step\":0}\r\n",
            "{\"t_ns\":3,\"kind\":\"run_end\"}\n",
        ),
    )
    .unwrap();
    let read = read_events(&dir).unwrap();
    let kinds: Vec<&str> = read
        .events
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["run_start", "step_start", "run_end"]);
    let skipped: Vec<String> = read.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped[0].starts_with("events.jsonl:2: not JSON: "),
        "{skipped:?}"
    );
    assert_eq!(skipped[1], "events.jsonl:3: empty line");
    assert_eq!(
        skipped[2],
        "events.jsonl:4: not an event (a JSON array, not an object)"
    );
    assert!(read.skipped.iter().all(|s| !s.torn));
    assert_eq!(read.skipped[0].bytes, "this is not json".len());

    // A file that exists but cannot be read is still an error naming it.
    let unreadable = scratch("dir-events");
    std::fs::create_dir(unreadable.join(EVENTS_FILE)).unwrap();
    let err = read_events(&unreadable).unwrap_err().to_string();
    assert!(err.contains("events.jsonl"), "{err}");
}

#[test]
fn open_append_never_appends_onto_a_torn_event_line() {
    let dir = scratch("torn-append");
    let good = "{\"t_ns\":1,\"utc\":\"x\",\"kind\":\"run_start\"}\n";
    let fragment = "{\"t_ns\":2,\"utc\":\"x\",\"kind\":\"step_st";
    std::fs::write(dir.join(EVENTS_FILE), format!("{good}{fragment}")).unwrap();

    let log = vegard_store::EventLog::open_append(&dir).unwrap();
    assert_eq!(log.torn_bytes_set_aside(), Some(fragment.len() as u64));
    log.append(
        "recovered",
        -1,
        serde_json::json!({"status": "interrupted"}),
    )
    .unwrap();

    // Every line of events.jsonl is a whole event again, nothing glued.
    let text = std::fs::read_to_string(dir.join(EVENTS_FILE)).unwrap();
    assert!(text.starts_with(good) && text.ends_with('\n'), "{text}");
    let read = read_events(&dir).unwrap();
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    let kinds: Vec<&str> = read
        .events
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["run_start", TORN_LINE_SET_ASIDE, "recovered"]);
    assert_eq!(read.events[1]["bytes"], fragment.len());
    assert_eq!(read.events[1]["kept_in"], EVENTS_TORN_FILE);
    // The fragment's bytes are kept, not lost.
    assert_eq!(
        std::fs::read_to_string(dir.join(EVENTS_TORN_FILE)).unwrap(),
        format!("{fragment}\n")
    );

    // A second open finds nothing torn and changes nothing.
    let again = vegard_store::EventLog::open_append(&dir).unwrap();
    assert_eq!(again.torn_bytes_set_aside(), None);
    assert_eq!(
        std::fs::read_to_string(dir.join(EVENTS_FILE)).unwrap(),
        text
    );
}

#[test]
fn create_appends_a_suffix_when_the_folder_exists() {
    let parent = scratch("collide").join("runs"); // parent created on demand
    let a = RunWriter::create(&parent, "demo cv/1", stamp()).unwrap();
    let b = RunWriter::create(&parent, "demo cv/1", stamp()).unwrap();
    let c = RunWriter::create(&parent, "demo cv/1", stamp()).unwrap();
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(name(a.dir()), "20261123T010203Z_demo-cv-1");
    assert_eq!(name(b.dir()), "20261123T010203Z_demo-cv-1-2");
    assert_eq!(name(c.dir()), "20261123T010203Z_demo-cv-1-3");
    for w in [&a, &b, &c] {
        assert!(w.dir().join("raw").is_dir() && w.dir().join("data").is_dir());
    }
    let d = RunWriter::create(&parent, "///", stamp()).unwrap();
    assert_eq!(name(d.dir()), "20261123T010203Z_run");
}

#[test]
fn recovery_finalises_a_dead_run_but_not_a_live_one() {
    let parent = scratch("recover");
    let run = RunWriter::create(&parent, "r", stamp())
        .unwrap()
        .with_flush_interval(Duration::from_secs(3600));
    run.write_meta(&RunMeta::default()).unwrap();
    let mut s = run.stream("pstat", &[ColumnSpec::i64("seq")]).unwrap();
    for k in 0..50 {
        s.append(&[Cell::I64(k)]).unwrap();
    }
    s.flush().unwrap();
    s.append(&[Cell::I64(50)]).unwrap();
    std::mem::forget(s); // killed: row 50 never reaches the disk

    let dir = run.dir().to_owned();
    let err = recover_run(&dir).unwrap_err().to_string();
    assert!(err.contains("still being recorded"), "{err}");
    drop(run); // the process is gone: the kernel releases the lock

    let Recovery::Recovered(streams) = recover_run(&dir).unwrap() else {
        panic!("not recovered")
    };
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].rows, 50);
    let pq = read_parquet(&dir.join("data/pstat.parquet")).unwrap();
    assert_eq!(pq.i64("seq").unwrap(), (0..50).collect::<Vec<_>>());
    let meta = read_meta(&dir).unwrap();
    assert_eq!(meta.status, RunStatus::Interrupted);
    assert!(meta.reason.unwrap().contains("recovered"));
    assert_eq!(
        recover_run(&dir).unwrap(),
        Recovery::AlreadyClosed(RunStatus::Interrupted)
    );
}

#[test]
fn parquet_written_in_row_groups_reads_back_as_the_whole_table() {
    let dir = scratch("rowgroups");
    let cols = [ColumnSpec::i64("seq"), ColumnSpec::f64("v")];
    let path = dir.join("t.parquet");
    let mut w = ParquetTableWriter::create(&path, &cols).unwrap();
    let mut all_seq: Vec<i64> = Vec::new();
    let mut all_v: Vec<f64> = Vec::new();
    for b in 0..3i64 {
        let seq: Vec<i64> = (b * 1000..(b + 1) * 1000).collect();
        let v: Vec<f64> = seq.iter().map(|&k| TRICKY[(k % 9) as usize]).collect();
        all_seq.extend(&seq);
        all_v.extend(&v);
        let t = Table::new()
            .with("seq", Column::I64(seq))
            .with("v", Column::F64(v));
        w.write(&t).unwrap();
    }
    // A batch whose columns are not the file's is refused.
    let wrong = Table::new().with("v", Column::F64(vec![1.0]));
    assert!(matches!(w.write(&wrong), Err(StoreError::Table { .. })));
    assert!(!path.exists(), "the real name appears only when finished");
    assert_eq!(w.finish().unwrap(), 3000);
    let t = read_parquet(&path).unwrap();
    assert_eq!(t.i64("seq").unwrap(), all_seq);
    assert!(same_f64(&t.f64("v").unwrap(), &all_v));

    // Dropped unfinished: neither name holds a half file.
    let path2 = dir.join("u.parquet");
    let mut w = ParquetTableWriter::create(&path2, &cols).unwrap();
    w.write(
        &Table::new()
            .with("seq", Column::I64(vec![1]))
            .with("v", Column::F64(vec![1.0])),
    )
    .unwrap();
    drop(w);
    assert!(!path2.exists() && !dir.join("u.parquet.tmp").exists());
}
