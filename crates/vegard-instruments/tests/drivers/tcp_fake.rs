//! A transcript-replaying instrument on a loopback TCP socket, for the
//! line-oriented LAN drivers (SR860, LS336). Host lines must match the
//! transcript byte for byte INCLUDING the terminator (`\n` or `\r\n`), so a
//! driver that sends the wrong line ending fails here like on hardware.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::transcript::Exchange;

/// Start the fake; returns its resource string and a handle yielding every
/// host line received (terminator stripped) or the first mismatch. Lines
/// after the transcript are recorded but never answered.
pub async fn serve(
    exchanges: Vec<Exchange>,
    terminator: &'static str,
) -> (String, JoinHandle<Result<Vec<String>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut received = Vec::new();
        let mut next_line = async |sock: &mut tokio::net::TcpStream| -> Option<String> {
            loop {
                if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                let mut chunk = [0u8; 256];
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        for ex in &exchanges {
            for expected in &ex.host {
                let got = next_line(&mut sock).await.ok_or("connection closed")?;
                let wanted = format!("{expected}{terminator}");
                received.push(got.trim_end_matches(['\r', '\n']).to_string());
                if got != wanted {
                    return Err(format!(
                        "host line {}: expected {wanted:?}, got {got:?}",
                        received.len()
                    ));
                }
            }
            for d in &ex.device {
                sock.write_all(format!("{d}{terminator}").as_bytes())
                    .await
                    .unwrap();
            }
        }
        while let Some(l) = next_line(&mut sock).await {
            received.push(l.trim_end_matches(['\r', '\n']).to_string());
        }
        Ok(received)
    });
    (format!("TCPIP::127.0.0.1::{port}::SOCKET"), task)
}
