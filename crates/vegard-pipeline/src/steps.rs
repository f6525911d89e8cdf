//! The aligned table one plan step at a time.
//!
//! A day of potentiostat samples every 10 ms is 8.6 M aligned rows (760 MB
//! as columns): finalisation and `vegard analyze` must not hold them all.
//! Every analysis works on one step, so `aligned.parquet` is read a step at
//! a time: an index of where each step's rows lie (built while the file is
//! written, or from its `step` and `segment` columns in bounded slices),
//! then only the row groups of that step are decoded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vegard_store::ROW_GROUP_ROWS;
use vegard_store::schema::Aligned;

use crate::PipelineError;

/// Where each step's rows lie in an aligned table, and the recording
/// segments each step has rows in.
#[derive(Debug, Clone, Default)]
pub struct StepIndex {
    /// step -> (first row, one past the last row).
    span: BTreeMap<i64, (usize, usize)>,
    /// step -> rows of that step (less than the span when steps interleave).
    count: BTreeMap<i64, usize>,
    segments: BTreeMap<i64, BTreeSet<i64>>,
    rows: usize,
}

impl StepIndex {
    /// Index the next `step.len()` rows (their `step` and `segment`
    /// columns), which follow the rows indexed so far.
    pub fn add(&mut self, step: &[i64], segment: &[i64]) {
        for (i, (&s, &seg)) in step.iter().zip(segment).enumerate() {
            let row = self.rows + i;
            let span = self.span.entry(s).or_insert((row, row + 1));
            span.1 = row + 1;
            *self.count.entry(s).or_insert(0) += 1;
            self.segments.entry(s).or_default().insert(seg);
        }
        self.rows += step.len().min(segment.len());
    }

    /// Rows indexed.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The segments each step has rows in.
    pub fn segments(&self) -> &BTreeMap<i64, BTreeSet<i64>> {
        &self.segments
    }

    /// Rows from the first to the last of `step`, and whether they are all
    /// of `step` (no other step's rows between).
    fn span(&self, step: i64) -> Option<((usize, usize), bool)> {
        let span = *self.span.get(&step)?;
        let whole = self.count.get(&step).copied() == Some(span.1 - span.0);
        Some((span, whole))
    }
}

/// `aligned.parquet` (or the finalisation's not yet published copy of it),
/// read a plan step at a time.
#[derive(Debug, Clone)]
pub struct AlignedFile {
    path: PathBuf,
    index: StepIndex,
}

impl AlignedFile {
    /// Open and index a finished aligned table: its `step` and `segment`
    /// columns are read in slices of [`ROW_GROUP_ROWS`] rows.
    pub fn open(path: &Path) -> Result<Self, PipelineError> {
        let rows = vegard_store::parquet_rows(path)?;
        let mut index = StepIndex::default();
        let mut offset = 0;
        while offset < rows {
            let n = ROW_GROUP_ROWS.min(rows - offset);
            let t = vegard_store::read_parquet_part(
                path,
                Some(&["step", "segment"]),
                Some((offset, n)),
            )?;
            let wrap = |e: vegard_store::StoreError| vegard_store::StoreError::Schema {
                table: "aligned.parquet",
                msg: e.to_string(),
            };
            let (step, segment) = (
                t.i64("step").map_err(wrap)?,
                t.i64("segment").map_err(wrap)?,
            );
            if step.len() != n {
                return Err(vegard_store::StoreError::Schema {
                    table: "aligned.parquet",
                    msg: format!(
                        "{}: rows {offset}..{}: read {} rows",
                        path.display(),
                        offset + n,
                        step.len()
                    ),
                }
                .into());
            }
            index.add(&step, &segment);
            offset += n;
        }
        Ok(AlignedFile::indexed(path, index))
    }

    /// A file whose index was built while it was written.
    pub fn indexed(path: &Path, index: StepIndex) -> Self {
        AlignedFile {
            path: path.to_owned(),
            index,
        }
    }

    pub fn index(&self) -> &StepIndex {
        &self.index
    }

    /// The rows of `step` (none if it has none), in file order.
    pub fn step_rows(&self, step: i64) -> Result<Aligned, PipelineError> {
        let Some(((first, end), whole)) = self.index.span(step) else {
            return Ok(Aligned::default());
        };
        let t = vegard_store::read_parquet_part(&self.path, None, Some((first, end - first)))?;
        let a = Aligned::from_table(&t)?;
        Ok(if whole { a } else { rows_of_step(&a, step) })
    }
    /// The columns a CV analysis reads, of `step`, in file order: read in
    /// slices of [`ROW_GROUP_ROWS`] rows, so a day-long CV step costs its
    /// five columns (40 bytes a row) and one slice, not the whole table.
    pub fn cv_samples(&self, step: i64) -> Result<CvSamples, PipelineError> {
        let mut out = CvSamples::default();
        // Exact capacity: grown by doubling, a day-long step's columns would
        // take up to twice their size (three times while reallocating).
        let n = self.index.count.get(&step).copied().unwrap_or(0);
        out.t_s.reserve_exact(n);
        out.E_V.reserve_exact(n);
        out.I_A.reserve_exact(n);
        out.deflection_nm.reserve_exact(n);
        out.cycle.reserve_exact(n);
        self.for_each_slice_of(step, &CvSamples::READS, |t| out.push_from(t, step))?;
        Ok(out)
    }

    /// Calls `f` with consecutive slices (at most [`ROW_GROUP_ROWS`] rows)
    /// of the named columns, over the whole table: for passes (decimating a
    /// time series, say) that must not hold the table.
    pub fn for_each_slice(
        &self,
        columns: &[&str],
        mut f: impl FnMut(&vegard_store::Table) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        self.for_each_slice_in((0, self.index.rows), columns, &mut f)
    }

    /// [`Self::for_each_slice`] over the rows from the first to the last
    /// of `step` (rows of other steps between them included: filter on the
    /// `step` column). Nothing when the step has no rows.
    pub fn for_each_slice_of(
        &self,
        step: i64,
        columns: &[&str],
        mut f: impl FnMut(&vegard_store::Table) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        let Some((span, _)) = self.index.span(step) else {
            return Ok(());
        };
        self.for_each_slice_in(span, columns, &mut f)
    }

    fn for_each_slice_in(
        &self,
        (first, end): (usize, usize),
        columns: &[&str],
        f: &mut dyn FnMut(&vegard_store::Table) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        let mut offset = first;
        while offset < end {
            let n = ROW_GROUP_ROWS.min(end - offset);
            let t = vegard_store::read_parquet_part(&self.path, Some(columns), Some((offset, n)))?;
            if t.len() != n {
                return Err(vegard_store::StoreError::Schema {
                    table: "aligned.parquet",
                    msg: format!(
                        "{}: rows {offset}..{}: read {} rows",
                        self.path.display(),
                        offset + n,
                        t.len()
                    ),
                }
                .into());
            }
            f(&t)?;
            offset += n;
        }
        Ok(())
    }
}

/// The entries of `v` whose row is of `step`.
fn of_step<T>(steps: &[i64], step: i64, v: Vec<T>) -> impl Iterator<Item = T> {
    v.into_iter()
        .zip(steps)
        .filter(move |(_, s)| **s == step)
        .map(|(x, _)| x)
}

/// One step's samples as a CV analysis reads them (a subset of the aligned
/// table's columns), with the recording segments they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CvSamples {
    pub t_s: Vec<f64>,
    pub E_V: Vec<f64>,
    pub I_A: Vec<f64>,
    pub deflection_nm: Vec<f64>,
    pub cycle: Vec<i64>,
    pub segments: BTreeSet<i64>,
}

impl CvSamples {
    /// The aligned columns read to build it.
    pub const READS: [&'static str; 7] = [
        "step",
        "segment",
        "t_s",
        "E_V",
        "I_A",
        "deflection_nm",
        "cycle",
    ];

    /// The samples of `step` in an aligned table held in memory.
    pub fn of_step(a: &Aligned, step: i64) -> Self {
        let mut out = CvSamples::default();
        for i in (0..a.len()).filter(|&i| a.step[i] == step) {
            out.t_s.push(a.t_s[i]);
            out.E_V.push(a.E_V[i]);
            out.I_A.push(a.I_A[i]);
            out.deflection_nm.push(a.deflection_nm[i]);
            out.cycle.push(a.cycle[i]);
            out.segments.insert(a.segment[i]);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.t_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_s.is_empty()
    }

    /// Append the rows of `step` from a slice holding [`Self::READS`].
    fn push_from(&mut self, t: &vegard_store::Table, step: i64) -> Result<(), PipelineError> {
        let wrap = |e: vegard_store::StoreError| vegard_store::StoreError::Schema {
            table: "aligned.parquet",
            msg: e.to_string(),
        };
        let steps = t.i64("step").map_err(wrap)?;
        self.t_s
            .extend(of_step(&steps, step, t.f64("t_s").map_err(wrap)?));
        self.E_V
            .extend(of_step(&steps, step, t.f64("E_V").map_err(wrap)?));
        self.I_A
            .extend(of_step(&steps, step, t.f64("I_A").map_err(wrap)?));
        self.deflection_nm
            .extend(of_step(&steps, step, t.f64("deflection_nm").map_err(wrap)?));
        self.cycle
            .extend(of_step(&steps, step, t.i64("cycle").map_err(wrap)?));
        self.segments
            .extend(of_step(&steps, step, t.i64("segment").map_err(wrap)?));
        Ok(())
    }
}

/// The rows of `step` in an aligned table held in memory.
pub fn rows_of_step(a: &Aligned, step: i64) -> Aligned {
    let mut out = Aligned::default();
    for i in 0..a.len() {
        if a.step[i] == step
            && let Some(r) = a.row(i)
        {
            out.push(&r);
        }
    }
    out
}

/// Plan steps with rows in an untrusted segment: step -> (its first such
/// segment, why).
pub(crate) fn untrusted_steps(
    segments: &BTreeMap<i64, BTreeSet<i64>>,
    untrusted: &crate::UntrustedSegments,
) -> BTreeMap<i64, (i64, String)> {
    segments
        .iter()
        .filter_map(|(&step, segs)| {
            segs.iter()
                .find_map(|seg| untrusted.get(seg).map(|why| (step, (*seg, why.clone()))))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vegard_store::schema::AlignedRow;

    fn row(step: i64, segment: i64, t_s: f64) -> AlignedRow {
        AlignedRow {
            t_s,
            step,
            segment,
            cycle: 1,
            E_V: t_s,
            I_A: 0.0,
            deflection_V: 0.0,
            deflection_nm: 0.0,
            sweep_iteration: vegard_store::MISSING_I64,
            setpoint_K: 298.15,
            T_K: t_s + 0.5,
        }
    }

    /// A file written in several row groups gives each step's rows back,
    /// whole, from its own index and from one rebuilt from the file; a step
    /// whose rows interleave with another's is filtered; a step without rows
    /// is empty.
    #[test]
    fn steps_read_back_from_a_multi_row_group_file() {
        let dir = std::env::temp_dir().join(format!("vegard-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("aligned.parquet");
        let mut w = vegard_store::ParquetTableWriter::create(&path, Aligned::COLUMNS).unwrap();
        let mut index = StepIndex::default();
        let mut all = Aligned::default();
        // Step 0: 300 000 rows (two row groups), step 1: 10 rows, then
        // step 2 and step 3 interleaved.
        let mut batch = Aligned::default();
        for i in 0..300_000 {
            batch.push(&row(0, 0, i as f64));
        }
        for i in 0..10 {
            batch.push(&row(1, 1, 1e6 + i as f64));
        }
        for i in 0..6 {
            batch.push(&row(2 + (i % 2), 2, 2e6 + i as f64));
        }
        index.add(&batch.step, &batch.segment);
        all.extend_from(&batch);
        w.write(&batch.into_table()).unwrap();
        w.finish().unwrap();

        for file in [
            AlignedFile::indexed(&path, index),
            AlignedFile::open(&path).unwrap(),
        ] {
            assert_eq!(file.index().rows(), 300_016);
            let s0 = file.step_rows(0).unwrap();
            assert_eq!(s0.len(), 300_000);
            assert_eq!((s0.E_V[0], s0.E_V[299_999]), (0.0, 299_999.0));
            let s1 = file.step_rows(1).unwrap();
            assert_eq!(s1.E_V, (0..10).map(|i| 1e6 + i as f64).collect::<Vec<_>>());
            let s3 = file.step_rows(3).unwrap();
            assert_eq!(s3.E_V, [2e6 + 1.0, 2e6 + 3.0, 2e6 + 5.0]);
            assert_eq!(s3, rows_of_step(&all, 3));
            assert!(file.step_rows(7).unwrap().is_empty());
            assert_eq!(
                file.index().segments()[&2]
                    .iter()
                    .copied()
                    .collect::<Vec<_>>(),
                [2]
            );
        }
        let untrusted = crate::UntrustedSegments::from([(1, "why".to_string())]);
        let u = untrusted_steps(
            AlignedFile::open(&path).unwrap().index().segments(),
            &untrusted,
        );
        assert_eq!(u.len(), 1);
        assert_eq!(u[&1], (1, "why".to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
