//! The store's in-memory table: named, equally long columns of i64 or f64.
//!
//! Deliberately tiny and polars-free so the engine, the CLI and the analysis
//! can pass data around without depending on a dataframe library; polars is
//! only used at the Parquet boundary (see `parquet.rs`).

use crate::{ColKind, ColumnSpec, StoreError};

/// A missing integer in a [`Table`]: an integer label with no value (e.g.
/// `sweep_iteration` of a step outside any sweep). Written as a Parquet
/// null and an empty CSV field, as a missing float (NaN) is, so other
/// readers count both as missing; read back from a null as this value.
/// `i64::MIN` because no counter, stamp or label vegard records can take it.
pub const MISSING_I64: i64 = i64::MIN;

/// One column's values. Only the two kinds vegard records: integer stamps
/// and counters (`t_ns`, `seq`, `cycle`) and floating-point measurements.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::I64(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"i64"` or `"f64"`, as written in raw-stream headers.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Column::I64(_) => "i64",
            Column::F64(_) => "f64",
        }
    }
}

/// Named columns of equal length, in a fixed order.
///
/// `columns` is public so callers can build a table with a literal; use
/// [`Table::check`] (called by every writer) to catch ragged input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<(String, Column)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table with these columns and no rows (e.g. for a stream that was
    /// never opened, so downstream code sees the expected schema).
    pub fn empty(columns: &[ColumnSpec]) -> Self {
        Table {
            columns: columns
                .iter()
                .map(|c| {
                    let col = match c.kind {
                        ColKind::I64 => Column::I64(Vec::new()),
                        ColKind::F64 => Column::F64(Vec::new()),
                    };
                    (c.name.to_string(), col)
                })
                .collect(),
        }
    }

    /// Append one column. Lengths are checked when the table is written
    /// ([`Table::check`]), so columns can be added in any order.
    pub fn push(&mut self, name: impl Into<String>, column: Column) {
        self.columns.push((name.into(), column));
    }

    /// Builder-style [`Table::push`].
    pub fn with(mut self, name: impl Into<String>, column: Column) -> Self {
        self.columns.push((name.into(), column));
        self
    }

    /// Number of rows (0 for a table without columns).
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    fn require(&self, name: &str) -> Result<&Column, StoreError> {
        self.column(name).ok_or_else(|| StoreError::NoColumn {
            name: name.to_owned(),
        })
    }

    /// A column as f64; an I64 column is converted (stamps become floats,
    /// exact up to 2^53, i.e. 104 days in nanoseconds).
    pub fn f64(&self, name: &str) -> Result<Vec<f64>, StoreError> {
        Ok(match self.require(name)? {
            Column::F64(v) => v.clone(),
            Column::I64(v) => v.iter().map(|&x| x as f64).collect(),
        })
    }

    /// A column as i64. An F64 column is an error rather than a silent
    /// truncation: integer columns are counters and stamps, never rounded.
    pub fn i64(&self, name: &str) -> Result<Vec<i64>, StoreError> {
        match self.require(name)? {
            Column::I64(v) => Ok(v.clone()),
            Column::F64(_) => Err(StoreError::ColumnKind {
                name: name.to_owned(),
                actual: "f64",
                wanted: "i64",
            }),
        }
    }

    /// Append `other`'s rows; it must have this table's columns (names and
    /// kinds, in order). Used to gather small batches into row groups.
    pub fn append(&mut self, other: &Table) -> Result<(), StoreError> {
        let same = self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|((a, ca), (b, cb))| a == b && ca.kind_name() == cb.kind_name());
        if !same {
            return Err(StoreError::Table {
                msg: format!(
                    "cannot append columns {:?} to columns {:?}",
                    other.names(),
                    self.names()
                ),
            });
        }
        for ((_, dst), (_, src)) in self.columns.iter_mut().zip(&other.columns) {
            match (dst, src) {
                (Column::I64(d), Column::I64(s)) => d.extend_from_slice(s),
                (Column::F64(d), Column::F64(s)) => d.extend_from_slice(s),
                _ => {} // kinds checked above
            }
        }
        Ok(())
    }

    /// Equal column lengths and unique, non-empty names.
    pub fn check(&self) -> Result<(), StoreError> {
        let n = self.len();
        for (i, (name, col)) in self.columns.iter().enumerate() {
            if name.is_empty() {
                return Err(StoreError::Table {
                    msg: format!("column {i} has an empty name"),
                });
            }
            if col.len() != n {
                return Err(StoreError::Table {
                    msg: format!("column {name:?} has {} rows, expected {n}", col.len()),
                });
            }
            if self.columns[..i].iter().any(|(other, _)| other == name) {
                return Err(StoreError::Table {
                    msg: format!("column name {name:?} appears twice"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accessors_convert_and_check() {
        let t = Table::new()
            .with("t_ns", Column::I64(vec![1, 2, 3]))
            .with("E_V", Column::F64(vec![0.5, 0.25, -1.0]));
        assert_eq!(t.len(), 3);
        assert_eq!(t.names(), vec!["t_ns", "E_V"]);
        assert_eq!(t.f64("t_ns").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(t.i64("t_ns").unwrap(), vec![1, 2, 3]);
        assert!(matches!(t.i64("E_V"), Err(StoreError::ColumnKind { .. })));
        assert!(matches!(t.f64("nope"), Err(StoreError::NoColumn { .. })));
        t.check().unwrap();

        let empty = Table::empty(&[ColumnSpec::i64("seq"), ColumnSpec::f64("v")]);
        assert_eq!(empty.names(), vec!["seq", "v"]);
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.column("v"), Some(&Column::F64(vec![])));

        let mut ragged = t.clone();
        ragged.push("x", Column::F64(vec![1.0]));
        assert!(
            ragged
                .check()
                .unwrap_err()
                .to_string()
                .contains("\"x\" has 1 rows")
        );
        let mut twice = t.clone();
        twice.append(&t).unwrap();
        assert_eq!(twice.len(), 6);
        assert_eq!(twice.f64("E_V").unwrap()[3..], [0.5, 0.25, -1.0]);
        let other = Table::new().with("t_ns", Column::F64(vec![1.0]));
        assert!(twice.append(&other).is_err());
        let dup = t.with("E_V", Column::F64(vec![0.0; 3]));
        assert!(dup.check().unwrap_err().to_string().contains("twice"));
    }
}
