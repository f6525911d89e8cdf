//! SR860 lock-in driver against a transcript-replaying fake on loopback TCP.

use vegard_instruments::{LockIn, LockInReading, Resource, open_lockin};
use vegard_recipe::LockInConfig;

use crate::tcp_fake::serve;
use crate::transcript::{fixture, parse};

fn cfg(resource: &str) -> LockInConfig {
    LockInConfig {
        driver: "sr860".into(),
        resource: Resource::parse(resource).unwrap(),
        sine_to_cell_V_per_V: 1.0,
        timeout_s: 0.5,
    }
}

async fn connect(resource: &str) -> Box<dyn LockIn> {
    let c = cfg(resource);
    open_lockin(&c, &Resource::parse(resource).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn session_transcript_sine_time_constant_snapshots_sine_off() {
    let (resource, peer) = serve(parse(&fixture("sr860_session.txt")), "\n").await;
    let mut li = connect(&resource).await;
    assert_eq!(
        li.identify().await.unwrap(),
        "Stanford_Research_Systems,SR860,003101,v1.51"
    );
    // 0.08 s is not in the table: the next longer one (100 ms, index 10).
    assert_eq!(li.set_time_constant(0.08).await.unwrap(), 0.1);
    li.set_sine(1.0, 0.02).await.unwrap();
    assert_eq!(
        li.read_xy().await.unwrap(),
        LockInReading {
            x_V_rms: 1.23456e-3,
            y_V_rms: -4.5e-4,
            f_Hz: 1.0
        }
    );
    // RSRC 0 goes out with the first set_sine only.
    li.set_sine(0.3, 0.02).await.unwrap();
    assert_eq!(
        li.read_xy().await.unwrap(),
        LockInReading {
            x_V_rms: -2.5e-6,
            y_V_rms: 7.125e-6,
            f_Hz: 0.3
        }
    );
    li.sine_off().await.unwrap();
    drop(li);
    let received = peer.await.unwrap().unwrap();
    assert_eq!(received.len(), 20);
    assert_eq!(received[received.len() - 3], "SLVL 0.000000001");
    assert_eq!(received.last().unwrap(), "SLVL?");
}

/// The emulator of an earlier version refused `RSRC 0`, and nobody noticed:
/// a refused setting must fail, naming the command and the status bits.
#[tokio::test]
async fn refused_setting_fails_naming_the_command() {
    let (resource, peer) = serve(
        parse("> RSRC 0\n> *ESR?\n< 32\n> OFLT 12\n> *ESR?\n< 16\n"),
        "\n",
    )
    .await;
    let mut li = connect(&resource).await;
    let e = li.set_sine(1.0, 0.02).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "lock-in {resource}: instrument rejected \"RSRC 0\": *ESR? = 32: command error (not understood)"
        )
    );
    let e = li.set_time_constant(1.0).await.unwrap_err().to_string();
    assert!(
        e.ends_with("instrument rejected \"OFLT 12\": *ESR? = 16: execution error (value out of range or not allowed now)"),
        "{e}"
    );
    drop(li);
    peer.await.unwrap().unwrap();
}

/// A sine that reads back anything but the minimum is not off.
#[tokio::test]
async fn sine_off_needs_the_read_back() {
    let (resource, peer) = serve(
        parse("> SLVL 0.000000001\n> *ESR?\n< 0\n> SLVL?\n< 1.0000000e-02\n"),
        "\n",
    )
    .await;
    let mut li = connect(&resource).await;
    let e = li.sine_off().await.unwrap_err().to_string();
    assert!(e.contains("sine still on"), "{e}");
    drop(li);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn garbled_snapshot_names_command_and_reply() {
    let (resource, peer) = serve(
        parse("> SNAP? 0,1,15\n< 1.0,2.0\n> SNAP? 0,1,15\n< 1.0,OVLD,3\n"),
        "\n",
    )
    .await;
    let mut li = connect(&resource).await;
    for reply in ["1.0,2.0", "1.0,OVLD,3"] {
        let e = li.read_xy().await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "lock-in {resource}: unexpected reply to SNAP? 0,1,15: {reply:?} \
                 (expected three comma-separated numbers (X, Y, frequency))"
            )
        );
    }
    drop(li);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn wrong_instrument_and_bad_settings_are_refused() {
    let (resource, peer) = serve(
        parse("> *IDN?\n< Stanford_Research_Systems,SR830,s/n12345,ver1.07\n"),
        "\n",
    )
    .await;
    let mut li = connect(&resource).await;
    let e = li.identify().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("lock-in {resource}: unexpected reply to *IDN?: "))
            && e.contains("wrong instrument"),
        "{e}"
    );
    // Nothing reaches the wire for settings the SR860 cannot take.
    let e = li.set_sine(1.0, 3.0).await.unwrap_err().to_string();
    assert!(e.contains("outside the SR860's"), "{e}");
    assert!(li.set_sine(1e6, 0.01).await.is_err());
    assert!(li.set_time_constant(1e5).await.is_err());
    drop(li);
    assert_eq!(peer.await.unwrap().unwrap(), ["*IDN?"]);
}

#[tokio::test]
async fn silent_lockin_times_out_naming_the_query() {
    let (resource, peer) = serve(Vec::new(), "\n").await;
    let mut li = connect(&resource).await;
    let e = li.read_xy().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("lock-in {resource}: timeout after 0.5 s waiting for reply to SNAP? 0,1,15")
    );
    drop(li);
    peer.await.unwrap().unwrap();
}
