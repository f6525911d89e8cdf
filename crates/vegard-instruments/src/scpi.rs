//! A small async SCPI client (there is no maintained SCPI client crate that
//! does not need a vendor VISA library): `\n`-terminated commands, replies read
//! with a per-reply timeout, IEEE 488.2 definite-length binary blocks, and the
//! `SYST:ERR?` error queue. Works over any byte stream; in practice a
//! `tokio::net::TcpStream` to port 5025.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::Fault;
use crate::transport::{connect_tcp, reply_timeout};

/// The longest non-block reply accepted; a reply without a newline this long
/// means the link is out of step.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// How many `SYST:ERR?` entries are drained at most. The 34465A queue holds
/// 20; a peer that never answers `+0` must not hang the caller.
const MAX_QUEUED_ERRORS: usize = 32;
/// IEEE 488.2 standard event status register bits that mean a command was
/// refused: query error (2), device-dependent error (3), execution error (4),
/// command error (5). Operation complete (0), request control (1), user
/// request (6) and power on (7, set once after power-up) are not errors.
const ESR_QYE: u8 = 1 << 2;
const ESR_DDE: u8 = 1 << 3;
const ESR_EXE: u8 = 1 << 4;
const ESR_CME: u8 = 1 << 5;
const ESR_ERROR_BITS: u8 = ESR_QYE | ESR_DDE | ESR_EXE | ESR_CME;

/// Why a definite-length block could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("expected '#' starting a binary block, got {0:?}")]
    NoHash(char),
    #[error("indefinite-length block (#0) not supported; the instrument should send #<d><len>")]
    Indefinite,
    #[error("bad block header digit count {0:?}")]
    BadDigitCount(char),
    #[error("bad block length field {0:?}")]
    BadLength(String),
    #[error(
        "block length mismatch: header announced {announced} bytes, but byte {announced} after the header is {found:?}, not the terminating newline"
    )]
    LengthMismatch { announced: usize, found: char },
}

/// Parse one definite-length block `#<d><len><payload>` followed by `\n`
/// (optionally `\r\n`) from the start of `buf`.
///
/// Returns `Ok(None)` while `buf` is still too short, otherwise the payload's
/// byte range in `buf` and the total number of bytes the block occupies
/// (including the terminator). Payload bytes are never inspected, so binary
/// data containing `\n` is fine.
pub fn parse_block(buf: &[u8]) -> Result<Option<(std::ops::Range<usize>, usize)>, BlockError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'#' {
        return Err(BlockError::NoHash(char::from(first)));
    }
    let Some(&d) = buf.get(1) else {
        return Ok(None);
    };
    if d == b'0' {
        return Err(BlockError::Indefinite);
    }
    if !(b'1'..=b'9').contains(&d) {
        return Err(BlockError::BadDigitCount(char::from(d)));
    }
    let digits = usize::from(d - b'0');
    let Some(len_field) = buf.get(2..2 + digits) else {
        return Ok(None);
    };
    if !len_field.iter().all(u8::is_ascii_digit) {
        return Err(BlockError::BadLength(
            String::from_utf8_lossy(len_field).into_owned(),
        ));
    }
    let announced: usize = std::str::from_utf8(len_field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BlockError::BadLength(String::from_utf8_lossy(len_field).into_owned()))?;
    let start = 2 + digits;
    let end = start + announced;
    match buf.get(end) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((start..end, end + 1))),
        Some(b'\r') => match buf.get(end + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((start..end, end + 2))),
            Some(_) => Err(BlockError::LengthMismatch {
                announced,
                found: '\r',
            }),
        },
        Some(&other) => Err(BlockError::LengthMismatch {
            announced,
            found: char::from(other),
        }),
    }
}

/// A `REAL,64` payload whose length is not a whole number of doubles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("REAL,64 payload of {bytes} bytes is not a multiple of 8")]
pub struct Real64LengthError {
    pub bytes: usize,
}

/// Decode a `FORM:DATA REAL,64` payload: big-endian IEEE 754 doubles.
pub fn decode_real64(payload: &[u8]) -> Result<Vec<f64>, Real64LengthError> {
    if !payload.len().is_multiple_of(8) {
        return Err(Real64LengthError {
            bytes: payload.len(),
        });
    }
    Ok(payload
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_be_bytes(b)
        })
        .collect())
}

/// Encode doubles as a `REAL,64` definite-length block with its terminator
/// (what an instrument sends; used by test peers and emulators).
pub fn encode_real64_block(values: &[f64]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(values.len() * 8);
    for v in values {
        payload.extend_from_slice(&v.to_be_bytes());
    }
    encode_block(&payload)
}

/// Wrap `payload` as `#<d><len><payload>\n`.
pub fn encode_block(payload: &[u8]) -> Vec<u8> {
    let len = payload.len().to_string();
    let mut out = Vec::with_capacity(payload.len() + len.len() + 3);
    out.push(b'#');
    out.extend_from_slice(len.len().to_string().as_bytes());
    out.extend_from_slice(len.as_bytes());
    out.extend_from_slice(payload);
    out.push(b'\n');
    out
}

/// Format a number for a SCPI command: 12 significant digits, shortest form,
/// so `0.8 * 0.01` goes out as `0.008`, not `0.008000000000000002`.
pub fn scpi_number(x: f64) -> String {
    let rounded: f64 = format!("{x:.11e}").parse().unwrap_or(x);
    format!("{rounded}")
}

impl ScpiClient<TcpStream> {
    /// The session of a LAN driver: `timeout_s` (a bench config's) checked
    /// and used both for the connection to `host:port` and for every reply,
    /// `terminator` after each command. Nothing is sent yet. The TCP
    /// drivers (scpi-dmm, sr860, ls336) all open their link this way.
    pub async fn connect_tcp(
        host: &str,
        port: u16,
        timeout_s: f64,
        terminator: &'static str,
    ) -> Result<Self, Fault> {
        let timeout = reply_timeout(timeout_s)?;
        let stream = connect_tcp(host, port, timeout).await?;
        Ok(ScpiClient::new(stream, timeout).with_terminator(terminator))
    }
}

/// An async SCPI session over a byte stream.
pub struct ScpiClient<S> {
    stream: S,
    /// Received bytes not yet consumed by a reply.
    buf: Vec<u8>,
    timeout: Duration,
    /// Appended to every command: `\n` for SCPI, `\r\n` for Lake Shore.
    terminator: &'static str,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ScpiClient<S> {
    /// `timeout` applies to each reply as a whole (a large block included).
    pub fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            timeout,
            terminator: "\n",
        }
    }

    /// Use `terminator` after each command instead of `\n` (replies are
    /// accepted with `\n` or `\r\n` either way).
    pub fn with_terminator(mut self, terminator: &'static str) -> Self {
        self.terminator = terminator;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send a command that has no reply.
    pub async fn write(&mut self, cmd: &str) -> Result<(), Fault> {
        tracing::trace!(cmd, "scpi >");
        let mut line = Vec::with_capacity(cmd.len() + self.terminator.len());
        line.extend_from_slice(cmd.as_bytes());
        line.extend_from_slice(self.terminator.as_bytes());
        let deadline = Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.stream.write_all(&line)).await {
            Ok(r) => r?,
            Err(_) => return Err(self.timeout_fault(&format!("the link to accept {cmd}"))),
        }
        match tokio::time::timeout_at(deadline, self.stream.flush()).await {
            Ok(r) => r?,
            Err(_) => return Err(self.timeout_fault(&format!("the link to accept {cmd}"))),
        }
        Ok(())
    }

    /// Send a query and return its reply line without the terminator.
    pub async fn query(&mut self, cmd: &str) -> Result<String, Fault> {
        self.discard_stale(cmd);
        self.write(cmd).await?;
        let deadline = Instant::now() + self.timeout;
        let line = loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                break line;
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                let reply = String::from_utf8_lossy(&self.buf[..80]).into_owned();
                self.buf.clear();
                return Err(Fault::BadReply {
                    command: cmd.into(),
                    reply,
                    reason: format!("no newline in {MAX_REPLY_BYTES} bytes"),
                });
            }
            self.fill(cmd, deadline).await?;
        };
        let reply = String::from_utf8(line).map_err(|e| Fault::BadReply {
            command: cmd.into(),
            reply: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "not UTF-8".into(),
        })?;
        tracing::trace!(cmd, reply, "scpi <");
        Ok(reply)
    }

    /// Send a query whose reply is a definite-length block; return the payload.
    pub async fn query_block(&mut self, cmd: &str) -> Result<Vec<u8>, Fault> {
        self.discard_stale(cmd);
        self.write(cmd).await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            // Tolerate whitespace left before the block (e.g. a stray newline).
            let skip = self
                .buf
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            self.buf.drain(..skip);
            match parse_block(&self.buf) {
                Ok(Some((payload, used))) => {
                    let data = self.buf[payload].to_vec();
                    self.buf.drain(..used);
                    tracing::trace!(cmd, bytes = data.len(), "scpi < block");
                    return Ok(data);
                }
                Ok(None) => self.fill(cmd, deadline).await?,
                Err(e) => {
                    let reply =
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(80)]).into_owned();
                    // The stream is out of step; drop what we have so the
                    // next exchange starts clean.
                    self.buf.clear();
                    return Err(Fault::BadReply {
                        command: cmd.into(),
                        reply,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// `*IDN?`.
    pub async fn idn(&mut self) -> Result<String, Fault> {
        self.query("*IDN?").await
    }

    /// Drain `SYST:ERR?` until `+0,...`; any entries found become
    /// [`Fault::ErrorQueue`] naming `after` (the step that was being checked).
    pub async fn check_errors(&mut self, after: &str) -> Result<(), Fault> {
        let mut errors = Vec::new();
        for _ in 0..MAX_QUEUED_ERRORS {
            let reply = self.query("SYST:ERR?").await?;
            let code: i32 = reply
                .split(',')
                .next()
                .map(str::trim)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| Fault::BadReply {
                    command: "SYST:ERR?".into(),
                    reply: reply.clone(),
                    reason: "expected <code>,\"<message>\"".into(),
                })?;
            if code == 0 {
                return if errors.is_empty() {
                    Ok(())
                } else {
                    Err(Fault::ErrorQueue {
                        after: after.into(),
                        errors,
                    })
                };
            }
            errors.push(reply);
        }
        errors.push(format!("(stopped after {MAX_QUEUED_ERRORS} entries)"));
        Err(Fault::ErrorQueue {
            after: after.into(),
            errors,
        })
    }

    /// `cmd`, then `SYST:ERR?` drained: a setting the instrument refused
    /// fails naming it ([`Fault::ErrorQueue`] with `after` = `cmd`). One
    /// round trip per command, paid once per configuration, buys an error
    /// that says which command was refused.
    pub async fn write_checked(&mut self, cmd: &str) -> Result<(), Fault> {
        self.write(cmd).await?;
        self.check_errors(cmd).await
    }

    /// `cmd`, then `*ESR?`, for instruments that report refused commands
    /// only in the standard event status register (SR860, Lake Shore 336):
    /// a query, execution, device-dependent or command error bit fails
    /// naming `cmd` ([`Fault::Rejected`]). Reading `*ESR?` clears it, and
    /// its reply proves `cmd` was processed (commands run in order).
    pub async fn write_checked_esr(&mut self, cmd: &str) -> Result<(), Fault> {
        self.write(cmd).await?;
        let reply = self.query("*ESR?").await?;
        let esr: u8 =
            reply
                .trim()
                .trim_start_matches('+')
                .parse()
                .map_err(|_| Fault::BadReply {
                    command: "*ESR?".into(),
                    reply: reply.clone(),
                    reason: "expected the event status register, 0..255".into(),
                })?;
        let bits = esr & ESR_ERROR_BITS;
        if bits == 0 {
            return Ok(());
        }
        let names: Vec<&str> = [
            (ESR_QYE, "query error"),
            (ESR_DDE, "device-dependent error"),
            (
                ESR_EXE,
                "execution error (value out of range or not allowed now)",
            ),
            (ESR_CME, "command error (not understood)"),
        ]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect();
        Err(Fault::Rejected {
            command: cmd.into(),
            detail: format!("*ESR? = {esr}: {}", names.join(", ")),
        })
    }

    /// SCPI instruments send nothing unasked, so bytes buffered before a
    /// query are the rest of an earlier reply that failed (timed out or was
    /// garbled); they must not be read as this query's reply.
    fn discard_stale(&mut self, cmd: &str) {
        if !self.buf.is_empty() {
            tracing::debug!(
                cmd,
                stale = %String::from_utf8_lossy(&self.buf[..self.buf.len().min(80)]),
                "discarding bytes left from an earlier reply"
            );
            self.buf.clear();
        }
    }

    /// Read more bytes into the buffer before `deadline`.
    async fn fill(&mut self, cmd: &str, deadline: Instant) -> Result<(), Fault> {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(self.timeout_fault(&format!("reply to {cmd}"))),
            Ok(Err(e)) => Err(Fault::Io(e)),
            Ok(Ok(0)) => Err(Fault::Closed {
                waiting_for: format!("reply to {cmd}"),
            }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    fn timeout_fault(&self, waiting_for: &str) -> Fault {
        Fault::Timeout {
            waiting_for: waiting_for.into(),
            after_s: self.timeout.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    #[test]
    fn block_parser_handles_binary_payload_with_newlines() {
        // 0x0A bytes inside the doubles must not end the block early.
        let values = [
            f64::from_bits(0x3FF0_0A0A_0A0A_0A0A),
            -1.25,
            f64::from_bits(0x0A0A_0A0A_0A0A_0A0A),
        ];
        let block = encode_real64_block(&values);
        assert_eq!(&block[..4], b"#224");
        assert!(block[4..28].contains(&b'\n'));
        let (range, used) = parse_block(&block).unwrap().unwrap();
        assert_eq!(used, block.len());
        assert_eq!(range, 4..28);
        let decoded = decode_real64(&block[range]).unwrap();
        assert_eq!(decoded.len(), 3);
        for (a, b) in decoded.iter().zip(values) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn block_parser_needs_whole_block() {
        let block = encode_real64_block(&[1.0, 2.0]);
        for cut in 0..block.len() {
            assert_eq!(parse_block(&block[..cut]), Ok(None), "cut at {cut}");
        }
        // Trailing bytes after the block are left for the next reply.
        let mut two = block.clone();
        two.extend_from_slice(b"+0,\"No error\"\n");
        assert_eq!(parse_block(&two).unwrap().unwrap().1, block.len());
    }

    #[test]
    fn block_parser_empty_and_crlf() {
        assert_eq!(parse_block(b"#10\n"), Ok(Some((3..3, 4))));
        assert_eq!(parse_block(b"#13abc\r\n"), Ok(Some((3..6, 8))));
    }

    #[test]
    fn block_parser_rejects_garbage() {
        assert_eq!(parse_block(b"#0abc\n"), Err(BlockError::Indefinite));
        assert!(
            BlockError::Indefinite
                .to_string()
                .contains("indefinite-length block (#0) not supported")
        );
        assert_eq!(parse_block(b"+1.0\n"), Err(BlockError::NoHash('+')));
        assert_eq!(parse_block(b"#x12\n"), Err(BlockError::BadDigitCount('x')));
        assert_eq!(
            parse_block(b"#2a4xxxx\n"),
            Err(BlockError::BadLength("a4".into()))
        );
        // Header says 3 bytes, 5 follow.
        assert_eq!(
            parse_block(b"#13abcde\n"),
            Err(BlockError::LengthMismatch {
                announced: 3,
                found: 'd'
            })
        );
        assert!(
            decode_real64(&[0u8; 12])
                .unwrap_err()
                .to_string()
                .contains("multiple of 8")
        );
    }

    #[test]
    fn scpi_numbers_are_short() {
        assert_eq!(scpi_number(0.8 * 0.01), "0.008");
        assert_eq!(scpi_number(10.0), "10");
        assert_eq!(scpi_number(0.001), "0.001");
        assert_eq!(scpi_number(-2.5e-6), "-0.0000025");
        assert_eq!(scpi_number(0.0), "0");
    }

    /// A peer that answers each line from a table; unknown lines get nothing.
    async fn peer(stream: tokio::io::DuplexStream, replies: Vec<(&'static str, Vec<u8>)>) {
        let (r, mut w) = tokio::io::split(stream);
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, reply)) = replies.iter().find(|(q, _)| *q == line) {
                w.write_all(reply).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn client_reads_replies_blocks_and_errors() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(peer(
            b,
            vec![
                ("*IDN?", b"Keysight Technologies,34465A,X,1\r\n".to_vec()),
                ("R?", encode_real64_block(&[0.5, -0.25])),
                ("BAD?", b"\xff\xfe\n".to_vec()),
                ("BLK?", b"#0abc\n".to_vec()),
                ("SHORT?", b"#15ab\n".to_vec()),
            ],
        ));
        let mut c = ScpiClient::new(a, Duration::from_millis(200));
        assert_eq!(c.idn().await.unwrap(), "Keysight Technologies,34465A,X,1");
        let block = c.query_block("R?").await.unwrap();
        assert_eq!(decode_real64(&block).unwrap(), vec![0.5, -0.25]);
        let e = c.query("BAD?").await.unwrap_err().to_string();
        assert!(
            e.contains("unexpected reply to BAD?") && e.contains("not UTF-8"),
            "{e}"
        );
        let e = c.query_block("BLK?").await.unwrap_err().to_string();
        assert!(e.contains("#0") && e.contains("not supported"), "{e}");
        // Announced 5 bytes, only 2 + newline arrive: the reply is incomplete.
        let e = c.query_block("SHORT?").await.unwrap_err().to_string();
        assert_eq!(e, "timeout after 0.2 s waiting for reply to SHORT?");
        let e = c.query("NOTHING?").await.unwrap_err().to_string();
        assert_eq!(e, "timeout after 0.2 s waiting for reply to NOTHING?");
    }

    #[tokio::test]
    async fn check_errors_drains_queue() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(b);
            let mut lines = BufReader::new(r).lines();
            let mut queue = vec!["-113,\"Undefined header\"", "-222,\"Data out of range\""];
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "SYST:ERR?" {
                    let reply = if queue.is_empty() {
                        "+0,\"No error\"".to_string()
                    } else {
                        queue.remove(0).to_string()
                    };
                    w.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
                }
            }
        });
        let mut c = ScpiClient::new(a, Duration::from_millis(500));
        let e = c.check_errors("configure").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "instrument reported 2 error(s) after configure: -113,\"Undefined header\"; -222,\"Data out of range\""
        );
        // Queue now empty.
        c.check_errors("again").await.unwrap();
    }
}
