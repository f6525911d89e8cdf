//! The driver registry: bench configs name a driver (`driver =
//! "methodscript"`), and this table turns the name into an opened device.
//! Adding a driver means adding one row here.

use vegard_recipe::{DeflectionConfig, PotentiostatConfig};

use crate::device::{BoxFut, DeflectionProbe, Potentiostat};
use crate::drivers::{MethodScriptPotentiostat, ScpiDmm};
use crate::error::InstrumentError;
use crate::resource::Resource;

/// Which trait a driver implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Potentiostat,
    Deflection,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Potentiostat => "potentiostat",
            Role::Deflection => "deflection",
        }
    }
}

/// A registered driver, for `vegard drivers`-style listings and error hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverInfo {
    /// The name used in bench configs.
    pub name: &'static str,
    pub role: Role,
    /// Which resource forms it accepts.
    pub resources: &'static str,
    pub description: &'static str,
}

type OpenPotentiostat =
    fn(&PotentiostatConfig, &Resource) -> Result<Box<dyn Potentiostat>, InstrumentError>;
type OpenDeflection =
    for<'a> fn(&'a DeflectionConfig, &'a Resource) -> BoxFut<'a, Box<dyn DeflectionProbe>>;

const METHODSCRIPT: DriverInfo = DriverInfo {
    name: "methodscript",
    role: Role::Potentiostat,
    resources: "ASRL<path>::INSTR",
    description: "PalmSens MethodSCRIPT potentiostats (EmStat Pico, EmStat4, Sensit) over serial",
};
const SCPI_DMM: DriverInfo = DriverInfo {
    name: "scpi-dmm",
    role: Role::Deflection,
    resources: "TCPIP::<host>::<port>::SOCKET",
    description: "SCPI DMM as externally triggered digitizer (Keysight 34465A family) over LAN",
};

static DRIVERS: [DriverInfo; 2] = [METHODSCRIPT, SCPI_DMM];

static POTENTIOSTATS: [(&str, OpenPotentiostat); 1] = [(METHODSCRIPT.name, |cfg, res| {
    Ok(Box::new(MethodScriptPotentiostat::open(cfg, res)?))
})];

static DEFLECTION: [(&str, OpenDeflection); 1] = [(SCPI_DMM.name, |cfg, res| {
    Box::pin(async move {
        let dmm: Box<dyn DeflectionProbe> = Box::new(ScpiDmm::connect(cfg, res).await?);
        Ok(dmm)
    })
})];

/// Every registered driver.
pub fn drivers() -> &'static [DriverInfo] {
    &DRIVERS
}

fn known(role: Role) -> String {
    DRIVERS
        .iter()
        .filter(|d| d.role == role)
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown(role: Role, name: &str) -> InstrumentError {
    InstrumentError::UnknownDriver {
        role: role.name(),
        name: name.to_string(),
        known: known(role),
    }
}

/// `sim` must have been replaced by the virtual bench's resource; reaching a
/// driver with it is an engine bug or a skipped bench start.
fn reject_sim(resource: &Resource) -> Result<(), InstrumentError> {
    if *resource == Resource::Sim {
        return Err(InstrumentError::Resource {
            text: "sim".into(),
            reason: "start the virtual bench and pass its resource instead of `sim`".into(),
        });
    }
    Ok(())
}

/// Open the potentiostat driver named by `cfg.driver` on `resource`.
pub fn open_potentiostat(
    cfg: &PotentiostatConfig,
    resource: &Resource,
) -> Result<Box<dyn Potentiostat>, InstrumentError> {
    let (_, open) = POTENTIOSTATS
        .iter()
        .find(|(n, _)| *n == cfg.driver)
        .ok_or_else(|| unknown(Role::Potentiostat, &cfg.driver))?;
    reject_sim(resource)?;
    open(cfg, resource)
}

/// Connect the deflection driver named by `cfg.driver` to `resource`.
pub async fn open_deflection(
    cfg: &DeflectionConfig,
    resource: &Resource,
) -> Result<Box<dyn DeflectionProbe>, InstrumentError> {
    let (_, open) = DEFLECTION
        .iter()
        .find(|(n, _)| *n == cfg.driver)
        .ok_or_else(|| unknown(Role::Deflection, &cfg.driver))?;
    reject_sim(resource)?;
    open(cfg, resource).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcfg(driver: &str) -> PotentiostatConfig {
        PotentiostatConfig {
            driver: driver.into(),
            resource: "sim".into(),
            baud: 230_400,
            current_range_max_A: 1e-3,
            current_range_min_A: 1e-9,
            trigger_gpio_pin: 0,
            trigger_latency_s: 0.0,
            timeout_s: 1.0,
        }
    }

    #[test]
    fn table_is_consistent() {
        let names: Vec<_> = drivers().iter().map(|d| d.name).collect();
        assert_eq!(names, ["methodscript", "scpi-dmm"]);
        for (n, _) in &POTENTIOSTATS {
            assert!(
                DRIVERS
                    .iter()
                    .any(|d| d.name == *n && d.role == Role::Potentiostat)
            );
        }
        for (n, _) in &DEFLECTION {
            assert!(
                DRIVERS
                    .iter()
                    .any(|d| d.name == *n && d.role == Role::Deflection)
            );
        }
    }

    #[test]
    fn unknown_driver_lists_known_ones() {
        let e = open_potentiostat(&pcfg("gamry"), &Resource::Sim)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "unknown potentiostat driver \"gamry\"; known potentiostat drivers: methodscript"
        );
    }

    #[test]
    fn sim_must_be_substituted() {
        let e = open_potentiostat(&pcfg("methodscript"), &Resource::Sim)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("start the virtual bench"), "{e}");
    }

    #[test]
    fn wrong_resource_kind_is_named() {
        let res = Resource::parse("TCPIP::127.0.0.1::1::SOCKET").unwrap();
        let e = open_potentiostat(&pcfg("methodscript"), &res)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "potentiostat TCPIP::127.0.0.1::1::SOCKET: unsupported resource: the methodscript driver needs a serial resource (ASRL<path>::INSTR)"
        );
    }

    #[tokio::test]
    async fn unknown_deflection_driver() {
        let cfg = DeflectionConfig {
            driver: "lockin".into(),
            resource: "sim".into(),
            sample_interval_s: 0.01,
            range_V: 10.0,
            max_samples: 1000,
            invols_nm_per_V: 50.0,
            spring_constant_N_per_m: 2.0,
            timeout_s: 1.0,
        };
        let e = open_deflection(&cfg, &Resource::Sim)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "unknown deflection driver \"lockin\"; known deflection drivers: scpi-dmm"
        );
    }
}
