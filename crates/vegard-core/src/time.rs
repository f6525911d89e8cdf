//! The host timebase: integer nanoseconds on a monotonic clock since the run
//! started, plus the UTC wall time of that start (the anchor). Device stamps
//! are mapped onto this timeline by vegard-clock; the host stamps themselves
//! are stored unmodified.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A monotonic clock started once per run. Cheap to copy into every task.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    start: Instant,
    utc_anchor: SystemTime,
}

impl HostClock {
    /// Start the run's clock now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
            utc_anchor: SystemTime::now(),
        }
    }

    /// Nanoseconds since the clock started (monotonic, never goes back).
    pub fn now_ns(&self) -> i64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds since start for an `Instant` taken elsewhere (e.g. when a
    /// line arrived on a reader thread).
    pub fn ns_at(&self, at: Instant) -> i64 {
        let d = at.saturating_duration_since(self.start);
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }

    /// The `Instant` the clock started at.
    pub fn start_instant(&self) -> Instant {
        self.start
    }

    /// UTC wall time of the start as Unix seconds (for machine consumers).
    pub fn utc_anchor_unix_s(&self) -> f64 {
        self.utc_anchor
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// UTC wall time of the start.
    pub fn utc_anchor(&self) -> UtcStamp {
        UtcStamp::from_system_time(self.utc_anchor)
    }
}

/// A UTC time split into civil fields, enough for run-folder names and
/// RFC 3339 strings. Hand-written because it is 20 lines, not a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcStamp {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl UtcStamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self::from_unix(d.as_secs() as i64, d.subsec_nanos())
    }

    /// Civil date from Unix seconds (Howard Hinnant's days-from-civil inverse).
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: ((sod % 3600) / 60) as u32,
            second: (sod % 60) as u32,
            nanos,
        }
    }

    /// `2026-11-23T20:40:12.123456789Z`
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }

    /// `20261123T204012Z`, sortable and safe in folder names.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_unix_times() {
        // 2000-02-29T12:34:56Z = 951827696
        let s = UtcStamp::from_unix(951_827_696, 0);
        assert_eq!((s.year, s.month, s.day), (2000, 2, 29));
        assert_eq!((s.hour, s.minute, s.second), (12, 34, 56));
        assert_eq!(s.compact(), "20000229T123456Z");
        // 2026-11-23T00:00:00Z = 1795392000
        let s = UtcStamp::from_unix(1_795_392_000, 5);
        assert_eq!(s.rfc3339(), "2026-11-23T00:00:00.000000005Z");
        assert_eq!(
            UtcStamp::from_unix(0, 0).rfc3339(),
            "1970-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn host_clock_is_monotonic() {
        let c = HostClock::start();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a && a >= 0);
    }
}
