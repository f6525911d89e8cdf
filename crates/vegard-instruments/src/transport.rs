//! Byte links to instruments: a blocking, line-oriented serial port (the
//! potentiostat runs on its own thread, so blocking reads with explicit
//! timeouts are the simplest correct thing) and TCP connects for the async
//! SCPI client.
//!
//! Serial ports are always opened 8N1 without flow control and with an
//! explicit timeout: `serialport`'s builder defaults to a zero timeout, which
//! turns every read into a busy poll.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};
use tokio::net::TcpStream;

use crate::error::Fault;
use vegard_recipe::Resource;

/// The longest line accepted from an instrument; a peer that streams bytes
/// without newlines is broken, not slow.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// A serial port read and written as `\n`-terminated ASCII lines.
pub struct SerialLine {
    port: Box<dyn SerialPort>,
    /// Bytes read but not yet returned as a line (a partial line survives a
    /// timeout and is completed by the next read).
    pending: Vec<u8>,
    path: String,
}

impl SerialLine {
    /// Open `path` at `baud`, 8N1, no flow control, exclusively.
    pub fn open(path: &str, baud: u32, timeout: Duration) -> Result<SerialLine, Fault> {
        let timeout = timeout.max(Duration::from_millis(1));
        let port = serialport::new(path, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(timeout)
            .open()
            .map_err(|e| Fault::Open {
                target: format!("serial port {path}"),
                reason: e.to_string(),
            })?;
        Ok(SerialLine {
            port,
            pending: Vec::new(),
            path: path.to_string(),
        })
    }

    /// The device path this line was opened on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Write `line` followed by `\n`.
    pub fn write_line(&mut self, line: &str) -> Result<(), Fault> {
        tracing::trace!(port = %self.path, line, "serial >");
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        write_all(self.port.as_mut(), &bytes)
    }

    /// Write raw bytes (a whole script at once).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        tracing::trace!(port = %self.path, bytes = %String::from_utf8_lossy(bytes), "serial >");
        write_all(self.port.as_mut(), bytes)
    }

    /// Read one line (without its `\n` and an optional `\r`), waiting at most
    /// `timeout`. `Ok(None)` on timeout; a partial line is kept for the next
    /// call.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Option<String>, Fault> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 512];
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return match String::from_utf8(line) {
                    Ok(s) => {
                        tracing::trace!(port = %self.path, line = %s, "serial <");
                        Ok(Some(s))
                    }
                    Err(e) => Err(Fault::BadReply {
                        command: "serial read".into(),
                        reply: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        reason: "not UTF-8".into(),
                    }),
                };
            }
            if self.pending.len() > MAX_LINE_BYTES {
                let reply = String::from_utf8_lossy(&self.pending[..80]).into_owned();
                self.pending.clear();
                return Err(Fault::BadReply {
                    command: "serial read".into(),
                    reply,
                    reason: format!("no newline in {MAX_LINE_BYTES} bytes"),
                });
            }
            // Always try one read, so a zero timeout polls what has arrived.
            let remaining = deadline.saturating_duration_since(Instant::now());
            // The per-handle timeout only affects this handle: a cloned
            // writer (the safety path) keeps its own.
            self.port
                .set_timeout(remaining)
                .map_err(|e| Fault::Io(e.into()))?;
            match self.port.read(&mut chunk) {
                Ok(0) => {
                    return Err(Fault::Closed {
                        waiting_for: "a line".into(),
                    });
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {
                    if remaining.is_zero() {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(Fault::Io(e)),
            }
        }
    }

    /// Drop everything received so far, so replies to an earlier exchange
    /// (e.g. the safety script) cannot be taken for replies to the next one.
    pub fn discard_input(&mut self) -> Result<(), Fault> {
        self.pending.clear();
        self.port
            .clear(ClearBuffer::Input)
            .map_err(|e| Fault::Io(e.into()))
    }

    /// A second handle on the same port for writing from another thread while
    /// this one blocks in [`SerialLine::read_line`].
    pub fn try_clone_writer(&self) -> Result<SerialWriter, Fault> {
        let port = self.port.try_clone().map_err(|e| Fault::Open {
            target: format!("second handle on serial port {}", self.path),
            reason: e.to_string(),
        })?;
        Ok(SerialWriter {
            port: std::sync::Mutex::new(port),
            path: self.path.clone(),
        })
    }
}

/// A write-only handle on a serial port, shareable between threads.
pub struct SerialWriter {
    port: std::sync::Mutex<Box<dyn SerialPort>>,
    path: String,
}

impl SerialWriter {
    /// Write raw bytes; callers on several threads are serialised so their
    /// lines do not interleave.
    pub fn write_raw(&self, bytes: &[u8]) -> Result<(), Fault> {
        tracing::trace!(port = %self.path, bytes = %String::from_utf8_lossy(bytes), "serial (2nd handle) >");
        // A poisoned lock only means another writer panicked mid-write; the
        // port itself is still usable and the safety path must not give up.
        let mut port = match self.port.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        write_all(port.as_mut(), bytes)
    }
}

fn write_all(port: &mut dyn SerialPort, bytes: &[u8]) -> Result<(), Fault> {
    // `flush` is deliberately not called: it maps to tcdrain, which can hang
    // on pseudo-terminals; the kernel sends what write() accepted.
    port.write_all(bytes).map_err(|e| {
        if e.kind() == ErrorKind::TimedOut {
            Fault::Timeout {
                waiting_for: "the serial port to accept data".into(),
                after_s: port.timeout().as_secs_f64(),
            }
        } else {
            Fault::Io(e)
        }
    })
}

/// The reply timeout of a bench config's `timeout_s`: a positive, finite
/// number of seconds (0 would make every query fail at once).
pub fn reply_timeout(timeout_s: f64) -> Result<Duration, Fault> {
    Duration::try_from_secs_f64(timeout_s)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Fault::InvalidSetting(format!("timeout_s = {timeout_s} must be > 0")))
}

/// Host and port of a LAN resource (`TCPIP::<host>::<port>::SOCKET`), the
/// only kind the SCPI drivers (`driver`) can use; any other resource is
/// `Fault::UnsupportedResource`, with `port_hint` (`<port>`, or the
/// instrument's fixed port) in the example it gives.
pub fn lan_address<'a>(
    resource: &'a Resource,
    driver: &str,
    port_hint: &str,
) -> Result<(&'a str, u16), Fault> {
    match resource {
        Resource::Tcp { host, port } => Ok((host, *port)),
        _ => Err(Fault::UnsupportedResource(format!(
            "the {driver} driver needs a LAN resource (TCPIP::<host>::{port_hint}::SOCKET)"
        ))),
    }
}

/// Connect to `host:port` within `timeout`; Nagle is switched off because
/// every SCPI exchange is a short command waiting for a short reply.
pub async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Fault> {
    let target = format!("{host}:{port}");
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&target))
        .await
        .map_err(|_| Fault::Timeout {
            waiting_for: format!("a TCP connection to {target}"),
            after_s: timeout.as_secs_f64(),
        })?
        .map_err(|e| Fault::Open {
            target: format!("TCP {target}"),
            reason: e.to_string(),
        })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
