//! Minimal hand-written clients for the bench's two byte streams, so the
//! tests exercise exactly what a driver sees: a serial port opened by path
//! and a TCP socket. Each test binary uses a subset of them.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use serialport::SerialPort;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use vegard_sim::VirtualBench;

/// The path inside `ASRL<path>::INSTR`.
pub fn serial_path(resource: &str) -> String {
    resource
        .strip_prefix("ASRL")
        .and_then(|r| r.strip_suffix("::INSTR"))
        .unwrap()
        .to_string()
}

/// `host:port` inside `TCPIP::<host>::<port>::SOCKET`.
pub fn tcp_addr(resource: &str) -> String {
    let parts: Vec<&str> = resource.split("::").collect();
    assert_eq!(parts.len(), 4, "{resource}");
    assert_eq!(parts[0], "TCPIP");
    assert_eq!(parts[3], "SOCKET");
    format!("{}:{}", parts[1], parts[2])
}

/// A MethodSCRIPT host on the pty, opened the way a driver opens a port.
pub struct Pstat {
    pub port: Box<dyn SerialPort>,
    buf: Vec<u8>,
}

impl Pstat {
    pub fn open(bench: &VirtualBench) -> Pstat {
        let path = serial_path(&bench.potentiostat_resource().to_string());
        let port = serialport::new(&path, 230_400)
            .timeout(Duration::from_millis(50))
            .open()
            .unwrap();
        Pstat {
            port,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.port.write_all(text.as_bytes()).unwrap();
    }

    /// Next line (without `\n`), or None after `timeout_s` of wall time.
    pub fn line(&mut self, timeout_s: f64) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(String::from_utf8(raw[..raw.len() - 1].to_vec()).unwrap());
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.port.read(&mut chunk) {
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("pty read: {e}"),
            }
        }
    }

    /// Lines up to and including the empty line that ends a script.
    pub fn until_script_end(&mut self, timeout_s: f64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        let mut lines = Vec::new();
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            let line = self.line(left).unwrap_or_else(|| {
                panic!(
                    "no script end; got {} lines: {:?}",
                    lines.len(),
                    lines.last()
                )
            });
            let end = line.is_empty();
            lines.push(line);
            if end {
                return lines;
            }
        }
    }
}

/// Decodes a MethodSCRIPT package line into (type, value) pairs.
pub fn decode_package(line: &str) -> Vec<(String, f64)> {
    let body = line.strip_prefix('P').unwrap();
    body.split(';')
        .map(|var| {
            let field = var.split(',').next().unwrap();
            let kind = field[..2].to_string();
            let value = &field[2..];
            assert_eq!(value.len(), 8, "{line}");
            let raw = i64::from_str_radix(&value[..7], 16).unwrap();
            let scale = match &value[7..] {
                "a" => 1e-18,
                "f" => 1e-15,
                "p" => 1e-12,
                "n" => 1e-9,
                "u" => 1e-6,
                "m" => 1e-3,
                " " => 1.0,
                "k" => 1e3,
                "M" => 1e6,
                "i" => 1.0,
                other => panic!("prefix {other:?} in {line}"),
            };
            (kind, (raw - 0x800_0000) as f64 * scale)
        })
        .collect()
}

/// A SCPI host on the meter's socket.
pub struct Scpi {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Scpi {
    pub fn connect(bench: &VirtualBench) -> Scpi {
        let stream =
            TcpStream::connect(tcp_addr(&bench.deflection_resource().to_string())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Scpi {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn write(&mut self, cmd: &str) {
        self.stream
            .write_all(format!("{cmd}\n").as_bytes())
            .unwrap();
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "meter closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    pub fn query(&mut self, cmd: &str) -> String {
        self.write(cmd);
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                return String::from_utf8(raw[..raw.len() - 1].to_vec()).unwrap();
            }
            self.fill();
        }
    }

    /// A query answered with an IEEE 488.2 definite-length block.
    pub fn query_block(&mut self, cmd: &str) -> Vec<u8> {
        self.write(cmd);
        while self.buf.len() < 2 {
            self.fill();
        }
        assert_eq!(self.buf[0], b'#', "not a block: {:?}", self.buf);
        let digits = usize::from(self.buf[1] - b'0');
        while self.buf.len() < 2 + digits {
            self.fill();
        }
        let len: usize = std::str::from_utf8(&self.buf[2..2 + digits])
            .unwrap()
            .parse()
            .unwrap();
        let total = 2 + digits + len + 1;
        while self.buf.len() < total {
            self.fill();
        }
        let block: Vec<u8> = self.buf.drain(..total).collect();
        assert_eq!(block[total - 1], b'\n');
        block[2 + digits..total - 1].to_vec()
    }

    pub fn readings_real64(&mut self, cmd: &str) -> Vec<f64> {
        let payload = self.query_block(cmd);
        assert_eq!(payload.len() % 8, 0);
        payload
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// Asserts the error queue is empty.
    pub fn assert_no_error(&mut self) {
        assert_eq!(self.query("SYST:ERR?"), "+0,\"No error\"");
    }
}

/// Sleeps for `t_true_s` of bench time.
pub fn sleep_true(bench: &VirtualBench, t_true_s: f64) {
    std::thread::sleep(Duration::from_secs_f64(t_true_s / bench.speed()));
}
