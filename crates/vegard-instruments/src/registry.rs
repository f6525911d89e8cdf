//! The driver registry: bench configs name a driver (`driver =
//! "methodscript"`), and this table turns the name into an opened device.
//! Adding a driver means adding one row here.

use vegard_recipe::{DeflectionConfig, LockInConfig, PotentiostatConfig, TemperatureConfig};

use crate::device::{BoxFut, DeflectionProbe, LockIn, Potentiostat, TemperatureStage};
use crate::drivers::{Ls336, MethodScriptPotentiostat, ScpiDmm, Sr860};
use crate::error::InstrumentError;
use crate::resource::Resource;

/// Which trait a driver implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Potentiostat,
    Deflection,
    LockIn,
    TemperatureStage,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Potentiostat => "potentiostat",
            Role::Deflection => "deflection",
            Role::LockIn => "lock-in",
            Role::TemperatureStage => "temperature",
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
type OpenLockIn = for<'a> fn(&'a LockInConfig, &'a Resource) -> BoxFut<'a, Box<dyn LockIn>>;
type OpenTemperature =
    for<'a> fn(&'a TemperatureConfig, &'a Resource) -> BoxFut<'a, Box<dyn TemperatureStage>>;

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

const SR860: DriverInfo = DriverInfo {
    name: "sr860",
    role: Role::LockIn,
    resources: "TCPIP::<host>::<port>::SOCKET",
    description: "Stanford Research SR860-family lock-in amplifiers over LAN (sine out + X/Y)",
};
const LS336: DriverInfo = DriverInfo {
    name: "ls336",
    role: Role::TemperatureStage,
    resources: "TCPIP::<host>::7777::SOCKET",
    description: "Lake Shore 336 temperature controller over LAN (setpoint, heater, sensor)",
};

static DRIVERS: [DriverInfo; 4] = [METHODSCRIPT, SCPI_DMM, SR860, LS336];

static POTENTIOSTATS: [(&str, OpenPotentiostat); 1] = [(METHODSCRIPT.name, |cfg, res| {
    Ok(Box::new(MethodScriptPotentiostat::open(cfg, res)?))
})];

static DEFLECTION: [(&str, OpenDeflection); 1] = [(SCPI_DMM.name, |cfg, res| {
    Box::pin(async move {
        let dmm: Box<dyn DeflectionProbe> = Box::new(ScpiDmm::connect(cfg, res).await?);
        Ok(dmm)
    })
})];

static LOCKINS: [(&str, OpenLockIn); 1] = [(SR860.name, |cfg, res| {
    Box::pin(async move {
        let li: Box<dyn LockIn> = Box::new(Sr860::connect(cfg, res).await?);
        Ok(li)
    })
})];

static TEMPERATURE: [(&str, OpenTemperature); 1] = [(LS336.name, |cfg, res| {
    Box::pin(async move {
        let t: Box<dyn TemperatureStage> = Box::new(Ls336::connect(cfg, res).await?);
        Ok(t)
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

/// Connect the lock-in driver named by `cfg.driver` to `resource`.
pub fn open_lockin<'a>(
    cfg: &'a LockInConfig,
    resource: &'a Resource,
) -> BoxFut<'a, Box<dyn LockIn>> {
    Box::pin(async move {
        let (_, open) = LOCKINS
            .iter()
            .find(|(n, _)| *n == cfg.driver)
            .ok_or_else(|| unknown(Role::LockIn, &cfg.driver))?;
        reject_sim(resource)?;
        open(cfg, resource).await
    })
}

/// Connect the temperature-stage driver named by `cfg.driver` to `resource`.
pub fn open_temperature<'a>(
    cfg: &'a TemperatureConfig,
    resource: &'a Resource,
) -> BoxFut<'a, Box<dyn TemperatureStage>> {
    Box::pin(async move {
        let (_, open) = TEMPERATURE
            .iter()
            .find(|(n, _)| *n == cfg.driver)
            .ok_or_else(|| unknown(Role::TemperatureStage, &cfg.driver))?;
        reject_sim(resource)?;
        open(cfg, resource).await
    })
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
        assert_eq!(names, ["methodscript", "scpi-dmm", "sr860", "ls336"]);
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
        for (n, _) in &LOCKINS {
            assert!(
                DRIVERS
                    .iter()
                    .any(|d| d.name == *n && d.role == Role::LockIn)
            );
        }
        for (n, _) in &TEMPERATURE {
            assert!(
                DRIVERS
                    .iter()
                    .any(|d| d.name == *n && d.role == Role::TemperatureStage)
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

    #[tokio::test]
    async fn unknown_lockin_and_temperature_drivers_list_known_ones() {
        let cfg = LockInConfig {
            driver: "sr830".into(),
            resource: "sim".into(),
            sine_to_cell_V_per_V: 1.0,
            timeout_s: 1.0,
        };
        let e = open_lockin(&cfg, &Resource::Sim)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "unknown lock-in driver \"sr830\"; known lock-in drivers: sr860"
        );
        let cfg = TemperatureConfig {
            driver: "ls335".into(),
            resource: "sim".into(),
            output: 1,
            input: "A".into(),
            heater_range: 3,
            timeout_s: 1.0,
        };
        let e = open_temperature(&cfg, &Resource::Sim)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "unknown temperature driver \"ls335\"; known temperature drivers: ls336"
        );
        let cfg = TemperatureConfig {
            driver: "ls336".into(),
            ..cfg
        };
        let e = open_temperature(&cfg, &Resource::Sim)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("start the virtual bench"), "{e}");
        let serial = Resource::parse("ASRL/dev/ttyUSB0::INSTR").unwrap();
        let e = open_temperature(&cfg, &serial)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "temperature ASRL/dev/ttyUSB0::INSTR: unsupported resource: the ls336 driver needs a LAN resource (TCPIP::<host>::7777::SOCKET)"
        );
    }
}
