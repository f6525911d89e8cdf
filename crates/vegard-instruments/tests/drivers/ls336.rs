//! LS336 temperature-controller driver against a transcript-replaying fake
//! on loopback TCP (CR LF both ways).

use vegard_instruments::{Resource, TemperatureStage, open_temperature};
use vegard_recipe::TemperatureConfig;

use crate::tcp_fake::serve;
use crate::transcript::{fixture, parse};

fn cfg(resource: &str) -> TemperatureConfig {
    TemperatureConfig {
        driver: "ls336".into(),
        resource: Resource::parse(resource).unwrap(),
        output: 1,
        input: "A".into(),
        heater_range: 3,
        timeout_s: 0.5,
    }
}

async fn connect(resource: &str) -> Box<dyn TemperatureStage> {
    let c = cfg(resource);
    open_temperature(&c, &Resource::parse(resource).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn session_transcript_setpoint_readings_heater_off() {
    let (resource, peer) = serve(parse(&fixture("ls336_session.txt")), "\r\n").await;
    let mut t = connect(&resource).await;
    assert_eq!(
        t.identify().await.unwrap(),
        "LSCI,MODEL336,LSA1X2Y/#######,2.9"
    );
    // 45 C; the binary noise of 45 + 273.15 must not reach the wire.
    t.set_setpoint_K(45.0 + 273.15).await.unwrap();
    assert_eq!(t.read_K().await.unwrap(), 298.15);
    assert_eq!(t.read_K().await.unwrap(), 317.982);
    t.heater_off().await.unwrap();
    drop(t);
    assert_eq!(peer.await.unwrap().unwrap().len(), 11);
}

#[tokio::test]
async fn wrong_instrument_is_named() {
    let (resource, peer) = serve(
        parse("> *IDN?\n< LSCI,MODEL335,LSA0000/#######,1.4\n"),
        "\r\n",
    )
    .await;
    let mut t = connect(&resource).await;
    let e = t.identify().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "temperature {resource}: unexpected reply to *IDN?: \"LSCI,MODEL335,LSA0000/#######,1.4\" \
             (wrong instrument: expected a Lake Shore 336 (LSCI,MODEL336,...))"
        )
    );
    drop(t);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_readings_are_errors_naming_command_and_reply() {
    let (resource, peer) = serve(
        parse("> KRDG? A\n< +0.000\n> KRDG? A\n< T_OVER\n> KRDG? A\n< +1.0E+04\n"),
        "\r\n",
    )
    .await;
    let mut t = connect(&resource).await;
    let e = t.read_K().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "temperature {resource}: unexpected reply to KRDG? A: \"+0.000\" \
             (outside 0.001..1505 K (an open or overloaded sensor reads 0))"
        )
    );
    let e = t.read_K().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("temperature {resource}: unexpected reply to KRDG? A: \"T_OVER\" (not a number)")
    );
    assert!(t.read_K().await.is_err());
    drop(t);
    peer.await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_setpoint_and_heater_off_are_caught_by_read_back() {
    let (resource, peer) = serve(
        parse(
            "> SETP 1,318.15\n> *ESR?\n< 0\n> RANGE 1,3\n> *ESR?\n< 0\n> SETP? 1\n< +300.000\n\
             > RANGE 1,0\n> *ESR?\n< 0\n> RANGE? 1\n< 3\n",
        ),
        "\r\n",
    )
    .await;
    let mut t = connect(&resource).await;
    let e = t.set_setpoint_K(318.15).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "temperature {resource}: unexpected reply to SETP? 1: "
        )) && e.contains("instrument kept 300 K after SETP 1,318.15"),
        "{e}"
    );
    let e = t.heater_off().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "temperature {resource}: unexpected reply to RANGE? 1: \"3\" \
             (heater still on after RANGE <out>,0)"
        )
    );
    // A setpoint no sensor can reach never goes on the wire.
    assert!(t.set_setpoint_K(-5.0).await.is_err());
    drop(t);
    assert_eq!(peer.await.unwrap().unwrap().len(), 8);
}

/// A setpoint the 336 refuses (execution error) fails naming the command,
/// before the read-back could blame it on something else.
#[tokio::test]
async fn refused_setpoint_fails_naming_the_command() {
    let (resource, peer) = serve(parse("> SETP 1,318.15\n> *ESR?\n< 16\n"), "\r\n").await;
    let mut t = connect(&resource).await;
    let e = t.set_setpoint_K(318.15).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "temperature {resource}: instrument rejected \"SETP 1,318.15\": *ESR? = 16: \
             execution error (value out of range or not allowed now)"
        )
    );
    drop(t);
    peer.await.unwrap().unwrap();
}
