//! The run folder's schema as types: one struct of columns per stream and
//! per finished table, written and read through the same definition.
//!
//! Why: the column names used to be string literals spread over the engine,
//! the post-run pipeline, the report, the dashboard and the CLI (about 65
//! `table.f64("...")` lookups), so a rename in one place broke a reader
//! somewhere else at run time. Here every table is declared once with
//! [`table_schema!`]; the declaration gives
//!
//! - `Name` — the columns as `Vec`s (`Name::from_table`, `Name::into_table`,
//!   `Name::COLUMNS` for creating a raw stream, `Name::FILE` for its path);
//! - `NameRow` — one row, `NameRow::cells()` for [`crate::RawStream::append`];
//! - `name_col::field` — the column's name, for readers that find columns in
//!   a header (the dashboard's tailer).
//!
//! A table read from an older or foreign folder that lacks a column is a
//! [`StoreError::Schema`] naming the table and the column.
//!
//! Streams (`raw/<stream>.arrows`, written while a run records):
//! [`PotentiostatRaw`], [`DeflectionRaw`], [`EisRaw`], [`LockInRaw`],
//! [`TemperatureRaw`]. Finished tables (written at finalisation):
//! `data/*.parquet` ([`PotentiostatData`], [`DeflectionData`],
//! [`TemperatureData`], [`EisData`], [`EsmData`], and `lockin.parquet` =
//! [`LockInRaw`]) and `aligned.parquet` ([`Aligned`]).

use std::path::{Path, PathBuf};

use crate::{Cell, ColKind, Column, ColumnSpec, StoreError, Table};

/// The Rust type of a column kind (type position in [`table_schema!`]).
macro_rules! kind_ty {
    (I64) => {
        i64
    };
    (F64) => {
        f64
    };
}

/// Declare a table: see the module docs for what it generates.
macro_rules! table_schema {
    (
        $(#[$meta:meta])*
        $name:ident, $row:ident, $cols:ident, $file:literal {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Vec<kind_ty!($kind)>, )+
        }

        #[doc = concat!("One row of [`", stringify!($name), "`].")]
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $row {
            $( $(#[$fmeta])* pub $field: kind_ty!($kind), )+
        }

        #[doc = concat!("Column names of [`", stringify!($name), "`].")]
        #[allow(non_upper_case_globals)]
        pub mod $cols {
            $( pub const $field: &str = stringify!($field); )+
        }

        impl $name {
            /// File name inside its folder (`raw/` as `.arrows`, `data/` as
            /// `.parquet`, or the run folder itself).
            pub const FILE: &'static str = $file;
            /// The columns in file order.
            pub const COLUMNS: &'static [ColumnSpec] =
                &[ $( ColumnSpec::new(stringify!($field), ColKind::$kind), )+ ];

            /// Rows: the shortest column's length, so that indexing every
            /// column below `len()` cannot go out of bounds even when a
            /// caller built the (public) columns unevenly.
            pub fn len(&self) -> usize {
                [$( self.$field.len() ),+].into_iter().min().unwrap_or(0)
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The typed columns of `t`; a missing column or one of the
            /// wrong kind is an error naming this table and the column.
            pub fn from_table(t: &Table) -> Result<Self, StoreError> {
                let wrap = |source: StoreError| StoreError::Schema {
                    table: $file,
                    msg: source.to_string(),
                };
                t.check().map_err(wrap)?;
                Ok(Self {
                    $( $field: get_column!(t, $kind, stringify!($field)).map_err(wrap)?, )+
                })
            }

            /// The Parquet table at `path`, typed; `None` when there is no
            /// such file (a run without this technique).
            pub fn read_parquet_if_exists(path: &Path) -> Result<Option<Self>, StoreError> {
                if !path.is_file() {
                    return Ok(None);
                }
                Self::from_table(&crate::read_parquet(path)?).map(Some)
            }

            /// The untyped table, columns in [`Self::COLUMNS`] order.
            pub fn into_table(self) -> Table {
                Table {
                    columns: vec![ $( (stringify!($field).to_string(), Column::$kind(self.$field)), )+ ],
                }
            }

            /// Append all of `other`'s rows.
            pub fn extend_from(&mut self, other: &Self) {
                $( self.$field.extend_from_slice(&other.$field); )+
            }

            /// Append one row.
            pub fn push(&mut self, r: &$row) {
                $( self.$field.push(r.$field); )+
            }

            /// Row `i`, if there is one.
            pub fn row(&self, i: usize) -> Option<$row> {
                (i < self.len()).then(|| $row { $( $field: self.$field[i], )+ })
            }
        }

        impl $row {
            /// The row as cells for [`crate::RawStream::append`], in
            #[doc = concat!("[`", stringify!($name), "::COLUMNS`] order.")]
            /// An array, not a `Vec`: this is on the hot path of every
            /// sample recorded, and an allocation per row cost more than
            /// the append itself.
            pub fn cells(&self) -> [Cell; [$(stringify!($field)),+].len()] {
                [ $( Cell::$kind(self.$field), )+ ]
            }
        }
    };
}

macro_rules! get_column {
    ($t:expr, I64, $name:expr) => {
        $t.i64($name)
    };
    ($t:expr, F64, $name:expr) => {
        $t.f64($name)
    };
}

table_schema! {
    /// `raw/potentiostat.arrows`: every potentiostat sample with its raw stamps.
    /// `t_dev_s` is the device time (sample index x nominal interval from the
    /// segment's trigger), `host_ns` the host receive time.
    PotentiostatRaw, PotentiostatRow, potentiostat_col, "potentiostat" {
        seq: I64,
        /// Plan step index (0-based).
        step: I64,
        /// Recording segment (one trigger edge each).
        segment: I64,
        index: I64,
        /// CV cycle, step level or ESM frequency, 1-based.
        cycle: I64,
        t_dev_s: F64,
        host_ns: I64,
        E_V: F64,
        I_A: F64,
        status: I64,
    }
}

table_schema! {
    /// `raw/deflection.arrows`: every digitizer reading (photodetector volts).
    DeflectionRaw, DeflectionRow, deflection_col, "deflection" {
        seq: I64,
        step: I64,
        segment: I64,
        index: I64,
        t_dev_s: F64,
        host_ns: I64,
        V: F64,
    }
}

table_schema! {
    /// `raw/eis.arrows`: one row per impedance point the potentiostat reported
    /// (Z = Z' + j Z'', Z'' negative for a capacitive cell).
    EisRaw, EisRow, eis_raw_col, "eis" {
        seq: I64,
        step: I64,
        segment: I64,
        index: I64,
        host_ns: I64,
        f_Hz: F64,
        Z_re_ohm: F64,
        Z_im_ohm: F64,
        status: I64,
    }
}

table_schema! {
    /// `raw/lockin.arrows` (and `data/lockin.parquet`): the hardware lock-in's
    /// X/Y at the end of each ESM frequency, and when that frequency's sine
    /// was switched on.
    LockInRaw, LockInRow, lockin_col, "lockin" {
        seq: I64,
        step: I64,
        freq_index: I64,
        f_Hz: F64,
        switched_host_ns: I64,
        host_ns: I64,
        x_V_rms: F64,
        y_V_rms: F64,
        time_constant_s: F64,
    }
}

table_schema! {
    /// `raw/temperature.arrows`: one row per temperature-stage reading.
    TemperatureRaw, TemperatureRow, temperature_col, "temperature" {
        seq: I64,
        step: I64,
        host_ns: I64,
        T_K: F64,
        setpoint_K: F64,
    }
}

table_schema! {
    /// `data/potentiostat.parquet`: the raw stream plus the shared time.
    PotentiostatData, PotentiostatDataRow, potentiostat_data_col, "potentiostat" {
        seq: I64,
        step: I64,
        segment: I64,
        index: I64,
        cycle: I64,
        t_dev_s: F64,
        host_ns: I64,
        E_V: F64,
        I_A: F64,
        status: I64,
        /// Shared time, experiment s since run start.
        t_s: F64,
    }
}

table_schema! {
    /// `data/deflection.parquet`: the raw stream plus the shared time and the
    /// deflection in nm (volts x InvOLS).
    DeflectionData, DeflectionDataRow, deflection_data_col, "deflection" {
        seq: I64,
        step: I64,
        segment: I64,
        index: I64,
        t_dev_s: F64,
        host_ns: I64,
        V: F64,
        t_s: F64,
        deflection_nm: F64,
    }
}

table_schema! {
    /// `data/temperature.parquet`: the raw stream plus the shared time.
    TemperatureData, TemperatureDataRow, temperature_data_col, "temperature" {
        seq: I64,
        step: I64,
        host_ns: I64,
        T_K: F64,
        setpoint_K: F64,
        t_s: F64,
    }
}

table_schema! {
    /// `data/eis.parquet`: the raw impedance points with the measured
    /// temperature, shared time and the plan's labels.
    EisData, EisDataRow, eis_data_col, "eis" {
        seq: I64,
        step: I64,
        segment: I64,
        index: I64,
        host_ns: I64,
        f_Hz: F64,
        Z_re_ohm: F64,
        Z_im_ohm: F64,
        status: I64,
        /// Measured temperature when the point was taken (NaN without a stage).
        T_K: F64,
        t_s: F64,
        /// Enclosing sweep's iteration, missing ([`crate::MISSING_I64`], a
        /// null in the file) outside a sweep.
        sweep_iteration: I64,
        /// Temperature setpoint of the step, NaN if none.
        setpoint_K: F64,
    }
}

table_schema! {
    /// `data/esm.parquet`: one row per demodulated ESM frequency: the
    /// software lock-in's phasors over the last whole periods of the dwell,
    /// their ratios, and the hardware lock-in's X/Y beside them.
    EsmData, EsmDataRow, esm_data_col, "esm" {
        step: I64,
        freq_index: I64,
        sweep_iteration: I64,
        setpoint_K: F64,
        T_K: F64,
        f_Hz: F64,
        t_start_s: F64,
        E_amp_V: F64,
        I_amp_A: F64,
        deflection_amp_nm: F64,
        /// Deflection per volt of cell potential (software lock-in).
        response_nm_per_V: F64,
        response_phase_deg: F64,
        Z_re_ohm: F64,
        Z_im_ohm: F64,
        deflection_h2_ratio: F64,
        deflection_residual_nm_rms: F64,
        lockin_x_V_rms: F64,
        lockin_y_V_rms: F64,
        lockin_deflection_amp_nm: F64,
        lockin_phase_deg: F64,
        /// 0 for a clean point; else bits saying why its analysed window is
        /// compromised (1 lock-in switched late, 2 dwell too short, 4
        /// modulation missing: `vegard_pipeline::esm_flag`). Flagged
        /// points are left out of the ESM fit.
        flagged: I64,
    }
}

table_schema! {
    /// `aligned.parquet`: the shared-timeline table on the potentiostat's
    /// sample grid, deflection resampled onto it, with the plan's labels and
    /// the measured temperature.
    Aligned, AlignedRow, aligned_col, "aligned" {
        t_s: F64,
        step: I64,
        segment: I64,
        /// CV cycle, step level or ESM frequency, 1-based.
        cycle: I64,
        E_V: F64,
        I_A: F64,
        deflection_V: F64,
        deflection_nm: F64,
        sweep_iteration: I64,
        setpoint_K: F64,
        T_K: F64,
    }
}

table_schema! {
    /// The parameter-sweep labels of `aligned.parquet`, `data/eis.parquet`
    /// and `data/esm.parquet`, appended after each table's own columns:
    /// the value each enclosing parameter sweep (`kind = "sweep"`,
    /// `parameter = ...`) gave the row's plan step; missing (NaN, a null in
    /// the file) where no sweep sets it, as `setpoint_K` is outside a
    /// temperature step. One struct for the three tables, so the four
    /// names are spelled once; folders written before parameter sweeps
    /// lack the columns, which [`SweepLabels::from_table_or_missing`] reads
    /// as missing.
    SweepLabels, SweepLabelsRow, sweep_label_col, "sweep_labels" {
        sweep_dc_V: F64,
        sweep_amplitude_V: F64,
        sweep_scan_rate_V_per_s: F64,
        sweep_freq_Hz: F64,
    }
}

impl SweepLabels {
    /// `n` rows of missing labels (no parameter sweep).
    pub fn missing(n: usize) -> Self {
        SweepLabels {
            sweep_dc_V: vec![f64::NAN; n],
            sweep_amplitude_V: vec![f64::NAN; n],
            sweep_scan_rate_V_per_s: vec![f64::NAN; n],
            sweep_freq_Hz: vec![f64::NAN; n],
        }
    }

    /// The label columns of `t`; each one `t` lacks (a folder written
    /// before parameter sweeps) reads as missing values. A column of the
    /// wrong kind is still an error.
    pub fn from_table_or_missing(t: &Table) -> Result<Self, StoreError> {
        let wrap = |source: StoreError| StoreError::Schema {
            table: Self::FILE,
            msg: source.to_string(),
        };
        t.check().map_err(wrap)?;
        let n = t.len();
        let col = |name: &str| -> Result<Vec<f64>, StoreError> {
            match t.column(name) {
                None => Ok(vec![f64::NAN; n]),
                Some(_) => t.f64(name).map_err(wrap),
            }
        };
        Ok(SweepLabels {
            sweep_dc_V: col(sweep_label_col::sweep_dc_V)?,
            sweep_amplitude_V: col(sweep_label_col::sweep_amplitude_V)?,
            sweep_scan_rate_V_per_s: col(sweep_label_col::sweep_scan_rate_V_per_s)?,
            sweep_freq_Hz: col(sweep_label_col::sweep_freq_Hz)?,
        })
    }

    /// `table` with these columns appended (the caller gives as many rows).
    pub fn append_to(self, mut table: Table) -> Table {
        for (name, column) in self.into_table().columns {
            table.push(name, column);
        }
        table
    }

    /// `columns` followed by the label columns: the schema of a table
    /// written with [`SweepLabels::append_to`].
    pub fn after(columns: &[ColumnSpec]) -> Vec<ColumnSpec> {
        [columns, Self::COLUMNS].concat()
    }
}

/// `data/<name>.parquet` of a run folder.
pub fn data_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir
        .join(crate::DATA_DIR)
        .join(format!("{name}.parquet"))
}

/// `aligned.parquet` of a run folder.
pub fn aligned_path(run_dir: &Path) -> PathBuf {
    run_dir.join(crate::ALIGNED_FILE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sweep_labels_append_and_read_back_missing_columns_as_nan() {
        let labels = SweepLabels {
            sweep_dc_V: vec![f64::NAN, 0.3],
            sweep_amplitude_V: vec![0.02, 0.02],
            sweep_scan_rate_V_per_s: vec![f64::NAN, f64::NAN],
            sweep_freq_Hz: vec![f64::NAN, 1.0],
        };
        let t = labels.append_to(Table::default().with("step", Column::I64(vec![0, 1])));
        assert_eq!(
            t.names(),
            [
                "step",
                "sweep_dc_V",
                "sweep_amplitude_V",
                "sweep_scan_rate_V_per_s",
                "sweep_freq_Hz"
            ]
        );
        let back = SweepLabels::from_table_or_missing(&t).unwrap();
        assert_eq!(back.sweep_dc_V[1], 0.3);
        assert!(back.sweep_dc_V[0].is_nan());
        assert_eq!(back.sweep_freq_Hz[1], 1.0);
        // An older table without the columns: missing values, one a row.
        let old = Table::default().with("step", Column::I64(vec![0, 1, 2]));
        let back = SweepLabels::from_table_or_missing(&old).unwrap();
        assert_eq!(back.len(), 3);
        assert!(back.sweep_amplitude_V.iter().all(|v| v.is_nan()));
        assert_eq!(
            SweepLabels::after(Aligned::COLUMNS).len(),
            Aligned::COLUMNS.len() + 4
        );
    }

    #[test]
    fn a_table_round_trips_through_the_untyped_form() {
        let mut p = PotentiostatRaw::default();
        let row = PotentiostatRow {
            seq: 1,
            step: 2,
            segment: 3,
            index: 4,
            cycle: 5,
            t_dev_s: 0.25,
            host_ns: 6,
            E_V: 0.4,
            I_A: -1e-3,
            status: 0,
        };
        p.push(&row);
        assert_eq!(p.len(), 1);
        assert_eq!(p.row(0), Some(row));
        assert_eq!(p.row(1), None);
        let cells = row.cells();
        assert_eq!(cells.len(), PotentiostatRaw::COLUMNS.len());
        assert_eq!(cells[7], Cell::F64(0.4));
        let t = p.clone().into_table();
        assert_eq!(
            t.names(),
            PotentiostatRaw::COLUMNS
                .iter()
                .map(|c| c.name.as_ref())
                .collect::<Vec<_>>()
        );
        assert_eq!(PotentiostatRaw::from_table(&t).ok(), Some(p));
        assert_eq!(potentiostat_col::E_V, "E_V");
    }

    #[test]
    fn ragged_columns_are_an_error_not_a_panic() {
        let t = Table::default()
            .with("seq", Column::I64(vec![0, 1]))
            .with("step", Column::I64(vec![0]));
        assert!(TemperatureRaw::from_table(&t).is_err());
        let r = TemperatureRaw {
            seq: vec![1, 2, 3],
            T_K: vec![300.0],
            ..TemperatureRaw::default()
        };
        // Unevenly built by hand: len() is the shortest column.
        assert_eq!(r.len(), 0);
        assert_eq!(r.row(0), None);
    }

    #[test]
    fn a_missing_column_names_the_table_and_the_column() {
        let t = Table::default().with("t_s", Column::F64(vec![0.0]));
        let e = Aligned::from_table(&t).err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("aligned") && e.contains("\"step\""), "{e}");
    }
}
