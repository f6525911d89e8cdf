//! The driver registry: bench configs name a driver (`driver =
//! "methodscript"`), and this table turns the name into an opened device.
//! The names, roles and limits are `vegard_recipe::DRIVERS` (validation reads
//! them there); this module only adds how each is opened. Adding a driver
//! means a row there and its opener here (the test below checks both agree).

use vegard_recipe::{
    DRIVERS, DeflectionConfig, DriverSpec, LockInConfig, PotentiostatConfig, Resource, Role,
    TemperatureConfig, driver_names,
};

use crate::device::{BoxFut, DeflectionProbe, LockIn, Potentiostat, TemperatureStage};
use crate::drivers::{Ls336, MethodScriptPotentiostat, ScpiDmm, Sr860};
use crate::error::InstrumentError;

type OpenPotentiostat =
    fn(&PotentiostatConfig, &Resource) -> Result<Box<dyn Potentiostat>, InstrumentError>;
type OpenDeflection =
    for<'a> fn(&'a DeflectionConfig, &'a Resource) -> BoxFut<'a, Box<dyn DeflectionProbe>>;
type OpenLockIn = for<'a> fn(&'a LockInConfig, &'a Resource) -> BoxFut<'a, Box<dyn LockIn>>;
type OpenTemperature =
    for<'a> fn(&'a TemperatureConfig, &'a Resource) -> BoxFut<'a, Box<dyn TemperatureStage>>;

static POTENTIOSTATS: [(&str, OpenPotentiostat); 1] = [("methodscript", |cfg, res| {
    Ok(Box::new(MethodScriptPotentiostat::open(cfg, res)?))
})];

static DEFLECTION: [(&str, OpenDeflection); 1] = [("scpi-dmm", |cfg, res| {
    Box::pin(async move {
        let dmm: Box<dyn DeflectionProbe> = Box::new(ScpiDmm::connect(cfg, res).await?);
        Ok(dmm)
    })
})];

static LOCKINS: [(&str, OpenLockIn); 1] = [("sr860", |cfg, res| {
    Box::pin(async move {
        let li: Box<dyn LockIn> = Box::new(Sr860::connect(cfg, res).await?);
        Ok(li)
    })
})];

static TEMPERATURE: [(&str, OpenTemperature); 1] = [("ls336", |cfg, res| {
    Box::pin(async move {
        let t: Box<dyn TemperatureStage> = Box::new(Ls336::connect(cfg, res).await?);
        Ok(t)
    })
})];

/// Every registered driver.
pub fn drivers() -> &'static [DriverSpec] {
    &DRIVERS
}

fn unknown(role: Role, name: &str) -> InstrumentError {
    InstrumentError::UnknownDriver {
        role: role.name(),
        name: name.to_string(),
        known: driver_names(role),
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
            resource: Resource::Sim,
            baud: 230_400,
            current_range_max_A: 1e-3,
            current_range_min_A: 1e-9,
            trigger_gpio_pin: 0,
            trigger_latency_s: 0.0,
            timeout_s: 1.0,
        }
    }

    /// Every driver in `vegard_recipe::DRIVERS` has exactly one opener of
    /// its role here, and every opener a row there.
    #[test]
    fn openers_agree_with_the_driver_table() {
        let names: Vec<_> = drivers().iter().map(|d| d.name).collect();
        assert_eq!(names, ["methodscript", "scpi-dmm", "sr860", "ls336"]);
        let openers: Vec<(&str, Role)> = POTENTIOSTATS
            .iter()
            .map(|(n, _)| (*n, Role::Potentiostat))
            .chain(DEFLECTION.iter().map(|(n, _)| (*n, Role::Deflection)))
            .chain(LOCKINS.iter().map(|(n, _)| (*n, Role::LockIn)))
            .chain(
                TEMPERATURE
                    .iter()
                    .map(|(n, _)| (*n, Role::TemperatureStage)),
            )
            .collect();
        assert_eq!(openers.len(), DRIVERS.len());
        for d in &DRIVERS {
            assert_eq!(
                openers.iter().filter(|o| **o == (d.name, d.role())).count(),
                1,
                "{}",
                d.name
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
            resource: Resource::Sim,
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
            resource: Resource::Sim,
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
            resource: Resource::Sim,
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
