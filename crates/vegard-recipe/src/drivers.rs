//! The one table of instrument drivers: each driver's name (as written in a
//! bench config), the device role it fills, the resource form it accepts and
//! the limits of the instrument family it speaks to. Bench and recipe
//! validation ask this table; `vegard-instruments` maps the same names to
//! the code that opens them (its registry test checks that both lists agree).
//!
//! Why here, as plain data: validation must know the drivers without opening
//! anything, and `vegard-recipe` sits below `vegard-instruments`.

use crate::resource::Resource;

/// Which device trait a driver implements, i.e. which `[instruments.*]`
/// table of a bench config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Potentiostat,
    Deflection,
    LockIn,
    TemperatureStage,
}

impl Role {
    /// Human name, used in instrument error messages (`lock-in`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Potentiostat => "potentiostat",
            Role::Deflection => "deflection",
            Role::LockIn => "lock-in",
            Role::TemperatureStage => "temperature",
        }
    }

    /// The bench-config table, `[instruments.<table>]` (`lockin`).
    pub fn table(self) -> &'static str {
        match self {
            Role::Potentiostat => "potentiostat",
            Role::Deflection => "deflection",
            Role::LockIn => "lockin",
            Role::TemperatureStage => "temperature",
        }
    }
}

/// The link a driver talks over, i.e. which resource form it accepts
/// (besides `sim`, which the CLI replaces with the emulator's resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ASRL<device path>::INSTR`.
    Serial,
    /// `TCPIP[n]::<host>::<port>::SOCKET`.
    Tcp,
}

impl Transport {
    /// Whether `resource` is of this transport (`sim` is not).
    pub fn accepts(self, resource: &Resource) -> bool {
        matches!(
            (self, resource),
            (Transport::Serial, Resource::Serial { .. }) | (Transport::Tcp, Resource::Tcp { .. })
        )
    }

    /// How the accepted form is described in bench-config errors.
    pub fn describe(self) -> &'static str {
        match self {
            Transport::Serial => "a serial port (`ASRL<device path>::INSTR`)",
            Transport::Tcp => "a TCP socket (`TCPIP::<host>::<port>::SOCKET`)",
        }
    }
}

/// What the instrument family can do, as far as validation checks it. The
/// variant fixes the driver's [`Role`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DriverLimits {
    Potentiostat {
        /// Shortest sample interval the instrument sustains while streaming
        /// every sample to the host, s.
        min_sample_interval_s: f64,
    },
    Deflection {
        /// Model name used in messages (`34465A`).
        model: &'static str,
        /// Shortest and longest timer-paced sample interval, s.
        sample_interval_s: [f64; 2],
        /// Most readings one trigger may take (`SAMP:COUN`).
        max_sample_count: u64,
        /// Why the shortest interval is what it is, for messages.
        rate_hint: &'static str,
    },
    LockIn {
        /// Model name used in messages (`SR860`).
        model: &'static str,
        /// Reference (sine) frequency range, Hz.
        freq_range_Hz: [f64; 2],
        /// Highest sine-out amplitude it may be asked for, V peak.
        max_sine_V_peak: f64,
    },
    TemperatureStage {
        /// Heater outputs / control loops, inclusive range.
        outputs: [u8; 2],
        /// How the outputs are described in messages.
        outputs_hint: &'static str,
        /// Sensor input names.
        inputs: &'static [&'static str],
        /// Heater ranges usable while controlling, inclusive (0 is off).
        heater_ranges: [u8; 2],
        /// How the heater ranges are described in messages.
        heater_ranges_hint: &'static str,
    },
}

/// One registered driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriverSpec {
    /// The name used in bench configs (`driver = "methodscript"`).
    pub name: &'static str,
    pub transport: Transport,
    /// The accepted resource form, for listings and error hints.
    pub resources: &'static str,
    pub description: &'static str,
    pub limits: DriverLimits,
}

impl DriverSpec {
    pub fn role(&self) -> Role {
        match self.limits {
            DriverLimits::Potentiostat { .. } => Role::Potentiostat,
            DriverLimits::Deflection { .. } => Role::Deflection,
            DriverLimits::LockIn { .. } => Role::LockIn,
            DriverLimits::TemperatureStage { .. } => Role::TemperatureStage,
        }
    }
}

/// Shortest sample interval any supported potentiostat can sustain while
/// streaming every sample to the host, s. Recipe checks that do not know the
/// bench use it; with a bench, the driver's own limit applies.
pub const MIN_SAMPLE_INTERVAL_S: f64 = 1e-3;

/// Reference frequency range of the SR860 family, Hz (1 mHz to 500 kHz).
pub const SR860_FREQ_RANGE_HZ: [f64; 2] = [1e-3, 500e3];
/// Heater outputs of a Lake Shore 336 (3 and 4 are voltage outputs with
/// on/off only: useless for a stage heater).
pub const LS336_OUTPUTS: [u8; 2] = [1, 2];
/// Sensor inputs of a Lake Shore 336 (`D1`..`D5` with the 3062 scanner card).
pub const LS336_INPUTS: &[&str] = &["A", "B", "C", "D", "D1", "D2", "D3", "D4", "D5"];
/// Heater ranges of a Lake Shore 336 usable while controlling (0 is off).
pub const LS336_HEATER_RANGES: [u8; 2] = [1, 3];

/// Every driver vegard has. Adding one means a row here and its opener in
/// `vegard-instruments`' registry.
pub static DRIVERS: [DriverSpec; 4] = [
    DriverSpec {
        name: "methodscript",
        transport: Transport::Serial,
        resources: "ASRL<path>::INSTR",
        description: "PalmSens MethodSCRIPT potentiostats (EmStat Pico, EmStat4, Sensit) over serial",
        limits: DriverLimits::Potentiostat {
            min_sample_interval_s: MIN_SAMPLE_INTERVAL_S,
        },
    },
    DriverSpec {
        name: "scpi-dmm",
        transport: Transport::Tcp,
        resources: "TCPIP::<host>::<port>::SOCKET",
        description: "SCPI DMM as externally triggered digitizer (Keysight 34465A family) over LAN",
        // The meter's documented limits, shared with the driver and the
        // emulator (vegard_core::keysight_34465a).
        limits: DriverLimits::Deflection {
            model: "34465A",
            sample_interval_s: [
                vegard_core::keysight_34465a::SAMPLE_TIMER_MIN_S,
                vegard_core::keysight_34465a::SAMPLE_TIMER_MAX_S,
            ],
            max_sample_count: vegard_core::keysight_34465a::SAMPLE_COUNT_MAX,
            rate_hint: "50 kSa/s with the DIG option",
        },
    },
    DriverSpec {
        name: "sr860",
        transport: Transport::Tcp,
        resources: "TCPIP::<host>::<port>::SOCKET",
        description: "Stanford Research SR860-family lock-in amplifiers over LAN (sine out + X/Y)",
        // The sine out goes to 2 V; whether `SLVL` is RMS or peak, 2 V peak
        // is within range, so that is the safe bound.
        limits: DriverLimits::LockIn {
            model: "SR860",
            freq_range_Hz: SR860_FREQ_RANGE_HZ,
            max_sine_V_peak: 2.0,
        },
    },
    DriverSpec {
        name: "ls336",
        transport: Transport::Tcp,
        resources: "TCPIP::<host>::7777::SOCKET",
        description: "Lake Shore 336 temperature controller over LAN (setpoint, heater, sensor)",
        limits: DriverLimits::TemperatureStage {
            outputs: LS336_OUTPUTS,
            outputs_hint: "1 or 2 (the heater outputs)",
            inputs: LS336_INPUTS,
            heater_ranges: LS336_HEATER_RANGES,
            heater_ranges_hint: "1 (low), 2 (medium) or 3 (high)",
        },
    },
];

/// The driver of `role` named `name`, if there is one.
pub fn driver(role: Role, name: &str) -> Option<&'static DriverSpec> {
    DRIVERS.iter().find(|d| d.role() == role && d.name == name)
}

/// The names of the drivers of `role`, comma-separated (for messages).
pub fn driver_names(role: Role) -> String {
    DRIVERS
        .iter()
        .filter(|d| d.role() == role)
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_role_has_a_driver() {
        for (i, a) in DRIVERS.iter().enumerate() {
            assert!(
                DRIVERS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
        for role in [
            Role::Potentiostat,
            Role::Deflection,
            Role::LockIn,
            Role::TemperatureStage,
        ] {
            assert!(!driver_names(role).is_empty(), "{role:?}");
        }
        assert_eq!(driver_names(Role::LockIn), "sr860");
        assert!(driver(Role::LockIn, "methodscript").is_none());
    }
}
