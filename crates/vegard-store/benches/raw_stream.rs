//! Raw-stream cost per deflection row: CPU to append (and flush), bytes on
//! disk, CPU to read back; the text format's formatting cost beside it.
//!
//! `cargo bench -p vegard-store --bench raw_stream` (README "Raw streams").
//! Rows are shaped like a real run's: 1 kS/s readings in 998-reading
//! blocks, host stamps per 10 ms fetch, volts as the 34465A sends them
//! (9 significant digits) around a slow swing plus noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vegard_core::UtcStamp;
use vegard_store::schema::{DeflectionRaw, DeflectionRow};
use vegard_store::{RawBatches, RunWriter, write_raw_csv};

/// Process CPU time (user + system), s.
fn cpu_s() -> f64 {
    // SAFETY-free: getrusage through libc's safe-to-call FFI wrapper.
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code)]
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn rows(n: usize) -> Vec<DeflectionRow> {
    let (dt_d, dt_p, per_block, k) = (1e-3, 1e-2, 998usize, 100u64);
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    (0..n)
        .map(|i| {
            let (b, j) = (i / per_block, i % per_block);
            let t_dev_s = b as f64 * k as f64 * dt_p + j as f64 * dt_d;
            let v = 2e-3 * (t_dev_s * 0.05).sin() + 3e-5 * noise();
            let v: f64 = format!("{v:.8e}").parse().unwrap();
            DeflectionRow {
                seq: i as i64,
                step: 3,
                segment: 3,
                index: i as i64,
                t_dev_s,
                host_ns: 1_000_000_000 + (i as i64 / 10) * 10_000_000 + (i as i64 * 7919) % 400_000,
                V: v,
            }
        })
        .collect()
}

fn main() {
    let n = 2_000_000;
    let data = rows(n);
    let parent = std::env::temp_dir().join(format!("vegard-raw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&parent).unwrap();
    println!(
        "{n} deflection rows ({} columns)",
        DeflectionRaw::COLUMNS.len()
    );
    // 1 s flushes at 1 kS/s and at 40 kS/s (the DIG option's top rate is 50 kS/s),
    // and the writer's own cut at 65 536 rows.
    for batch_rows in [1_000usize, 40_000, 65_536] {
        let run = RunWriter::create(&parent, &format!("b{batch_rows}"), UtcStamp::now())
            .unwrap()
            .with_flush_interval(Duration::from_secs(3600));
        let mut s = run
            .stream(DeflectionRaw::FILE, DeflectionRaw::COLUMNS)
            .unwrap();
        let c0 = cpu_s();
        for (i, r) in data.iter().enumerate() {
            s.append(&r.cells()).unwrap();
            if (i + 1) % batch_rows == 0 {
                s.flush().unwrap();
            }
        }
        s.close().unwrap();
        let write_cpu = cpu_s() - c0;
        let path = vegard_store::raw_path(run.dir(), DeflectionRaw::FILE);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let c0 = cpu_s();
        let mut b = RawBatches::open(&path).unwrap();
        let mut read = 0;
        while let Some(t) = b.next_batch().unwrap() {
            read += t.len();
        }
        let read_cpu = cpu_s() - c0;
        assert_eq!(read, n);
        println!(
            "binary, batches of {batch_rows:>6} rows: append {:.3} us CPU/row (incl. flush+sync), \
             {:.2} bytes/row on disk, read {:.3} us CPU/row",
            write_cpu / n as f64 * 1e6,
            bytes as f64 / n as f64,
            read_cpu / n as f64 * 1e6
        );
    }
    // The text format's cost on the same rows, formatting only (to a sink).
    let table = {
        let mut t = DeflectionRaw::default();
        for r in &data {
            t.push(r);
        }
        t.into_table()
    };
    let c0 = cpu_s();
    let mut sink = CountingSink(0);
    write_raw_csv(&table, true, &mut sink).unwrap();
    let csv_cpu = cpu_s() - c0;
    println!(
        "text (legacy CSV) formatting only: {:.3} us CPU/row, {:.2} bytes/row",
        csv_cpu / n as f64 * 1e6,
        sink.0 as f64 / n as f64
    );
    let _ = std::fs::remove_dir_all(&parent);
}

struct CountingSink(u64);
impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
