//! SCPI DMM driver against a fake instrument on a loopback TCP socket.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vegard_instruments::scpi::encode_real64_block;
use vegard_instruments::{
    DeflectionProbe, DigitizerSetup, DigitizerTrigger, Resource, open_deflection,
};
use vegard_recipe::DeflectionConfig;

use crate::transcript::{Exchange, fixture, parse};

const SETUP: DigitizerSetup = DigitizerSetup {
    sample_interval_s: 0.01,
    count: 4,
    triggers: 1,
    range_V: 10.0,
    trigger: DigitizerTrigger::External,
};

fn cfg(resource: &str, timeout_s: f64) -> DeflectionConfig {
    DeflectionConfig {
        driver: "scpi-dmm".into(),
        resource: Resource::parse(resource).unwrap(),
        sample_interval_s: 0.01,
        range_V: 10.0,
        max_samples: 1_000_000,
        invols_nm_per_V: 50.0,
        spring_constant_N_per_m: 2.0,
        timeout_s,
    }
}

fn device_bytes(line: &str) -> Vec<u8> {
    if let Some(values) = line.strip_prefix("#REAL64") {
        let v: Vec<f64> = values
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        encode_real64_block(&v)
    } else {
        format!("{line}\n").into_bytes()
    }
}

/// A fake instrument replaying `exchanges` on one connection. Returns the
/// received commands, or the first mismatch. Lines after the transcript are
/// recorded but never answered.
async fn fake(exchanges: Vec<Exchange>) -> (String, JoinHandle<Result<Vec<String>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut received = Vec::new();
        for ex in &exchanges {
            for expected in &ex.host {
                let got = lines.next_line().await.map_err(|e| e.to_string())?;
                let got = got.ok_or("connection closed")?;
                received.push(got.clone());
                if &got != expected {
                    return Err(format!(
                        "command {}: expected {expected:?}, got {got:?}",
                        received.len()
                    ));
                }
            }
            for d in &ex.device {
                w.write_all(&device_bytes(d)).await.unwrap();
            }
        }
        while let Ok(Some(l)) = lines.next_line().await {
            received.push(l);
        }
        Ok(received)
    });
    (format!("TCPIP::127.0.0.1::{port}::SOCKET"), task)
}

async fn connect(resource: &str, timeout_s: f64) -> Box<dyn DeflectionProbe> {
    let c = cfg(resource, timeout_s);
    open_deflection(&c, &Resource::parse(resource).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn session_transcript_configure_arm_fetch_abort() {
    let (resource, peer) = fake(parse(&fixture("scpi_dmm_session.txt"))).await;
    let mut dmm = connect(&resource, 2.0).await;
    assert_eq!(
        dmm.identify().await.unwrap(),
        "Keysight Technologies,34465A,VEGARD-SIM-0001,A.03.02-vegard"
    );
    dmm.configure(SETUP).await.unwrap();
    dmm.arm().await.unwrap();
    // The first block carries a 0x0A byte inside 1.0390625.
    assert_eq!(dmm.fetch().await.unwrap(), [1.0390625, -0.25, 0.0125]);
    assert_eq!(dmm.fetch().await.unwrap(), [0.5]);
    assert_eq!(dmm.fetch().await.unwrap(), Vec::<f64>::new());
    dmm.abort().await.unwrap();
    assert!(!dmm.readings_lost().await.unwrap());
    drop(dmm);
    let received = peer.await.unwrap().unwrap();
    assert_eq!(received.len(), 32);
    assert_eq!(received.last().unwrap(), "STAT:QUES?");
}

#[tokio::test]
async fn instrument_errors_after_configure_are_surfaced() {
    // The meter refuses the aperture: configure stops there, naming it.
    let mut t = String::new();
    for cmd in ["*CLS", "CONF:VOLT:DC 10"] {
        t.push_str(&format!("> {cmd}\n> SYST:ERR?\n< +0,\"No error\"\n"));
    }
    t.push_str("> VOLT:DC:APER 0.008\n");
    t.push_str("> SYST:ERR?\n< -222,\"Data out of range\"\n");
    t.push_str("> SYST:ERR?\n< -113,\"Undefined header\"\n");
    t.push_str("> SYST:ERR?\n< +0,\"No error\"\n");
    let (resource, peer) = fake(parse(&t)).await;
    let mut dmm = connect(&resource, 2.0).await;
    let e = dmm.configure(SETUP).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "dmm {resource}: instrument reported 2 error(s) after VOLT:DC:APER 0.008: -222,\"Data out of range\"; -113,\"Undefined header\""
        )
    );
    drop(dmm);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn silent_fetch_times_out_naming_the_command() {
    let (resource, peer) = fake(Vec::new()).await;
    let mut dmm = connect(&resource, 0.3).await;
    let t0 = Instant::now();
    let e = dmm.fetch().await.unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(
        e.to_string(),
        format!("dmm {resource}: timeout after 0.3 s waiting for reply to R?")
    );
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2));
    drop(dmm);
    assert_eq!(peer.await.unwrap().unwrap(), ["R?"]);
}

#[tokio::test]
async fn garbled_block_is_reported() {
    let (resource, peer) = fake(parse("> R?\n< #15ab\n< 12345\n")).await;
    let mut dmm = connect(&resource, 1.0).await;
    // "#15" announces 5 bytes: "ab\n12" then '3' where '\n' must be.
    let e = dmm.fetch().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("dmm {resource}: unexpected reply to R?: "))
            && e.contains("block length mismatch: header announced 5 bytes"),
        "{e}"
    );
    drop(dmm);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_connection_names_the_address() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let resource = format!("TCPIP::127.0.0.1::{port}::SOCKET");
    let c = cfg(&resource, 1.0);
    let e = open_deflection(&c, &Resource::parse(&resource).unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "dmm {resource}: cannot open TCP 127.0.0.1:{port}: "
        )),
        "{e}"
    );
}
