"""Every Parquet file of a run folder, and the CSV `vegard export` writes of
its aligned table, read as a user would: python polars and pandas with their
default options. Checks, per file and column:

- the type: vegard's integer columns read as integers and its float columns
  as floats (pandas: an integer column with missing values is float64, as
  pandas has no missing integer in its default types);
- the missing values: the Parquet nulls are what polars counts
  (`null_count`) and pandas counts (`isna`), and the CSV's empty fields
  count the same in both readers as the Parquet file's nulls;
- the key-value metadata: `vegard.units` names every column, `vegard.run_id`
  is the run folder's name, `vegard.version` is set.

- the label columns: `aligned.parquet`, `data/eis.parquet` and
  `data/esm.parquet` carry the parameter-sweep labels (`sweep_dc_V`,
  `sweep_amplitude_V`, `sweep_scan_rate_V_per_s`, `sweep_freq_Hz`) as
  floats, nulls where no sweep sets them (all null in a run without
  parameter sweeps).

One documented exception, and the script checks it is the only one: polars
infers a CSV column's type from its first 100 rows, so a *label* column
(`sweep_iteration`, `setpoint_K`, the `sweep_*` values) whose first 100 rows
are all missing (a run that starts outside its sweep) reads as text with
default options; the script then checks that `infer_schema_length=None`
types it correctly.

Usage: python data_check.py VEGARD RUN_DIR [RUN_DIR ...]
Exit status 0 only when every file passed; each failure is printed.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import pandas as pd
import polars as pl
import pyarrow.parquet as pq

SWEEP_LABELS = ["sweep_dc_V", "sweep_amplitude_V", "sweep_scan_rate_V_per_s", "sweep_freq_Hz"]
LABELS = {"sweep_iteration", "setpoint_K", *SWEEP_LABELS}
# The tables that carry the parameter-sweep labels (relative to the run).
LABELLED = {"aligned.parquet", "data/eis.parquet", "data/esm.parquet"}
INFER_ROWS = 100  # polars' default infer_schema_length

failures = []


def fail(where, msg):
    failures.append(f"{where}: {msg}")
    print(f"  FAIL {where}: {msg}")


def kind_of(dtype):
    if dtype == pl.Int64:
        return "int"
    if dtype == pl.Float64:
        return "float"
    return str(dtype)


def check_parquet(run, path):
    where = str(path.relative_to(run.parent))
    meta = pq.read_metadata(path).metadata or {}
    meta = {k.decode(): v.decode() for k, v in meta.items()}
    df = pl.read_parquet(path)
    pdf = pd.read_parquet(path)
    units = json.loads(meta.get("vegard.units", "{}"))
    if set(units) != set(df.columns):
        fail(where, f"vegard.units names {sorted(units)}, columns are {df.columns}")
    if meta.get("vegard.run_id") != run.name:
        fail(where, f"vegard.run_id {meta.get('vegard.run_id')!r}, folder {run.name!r}")
    if not meta.get("vegard.version"):
        fail(where, "no vegard.version")
    nulls = {}
    for c in df.columns:
        k = kind_of(df[c].dtype)
        if k not in ("int", "float"):
            fail(where, f"{c}: polars type {df[c].dtype}")
        n = df[c].null_count()
        nulls[c] = (k, n)
        if k == "float" and df[c].is_nan().sum() > 0:
            fail(where, f"{c}: {df[c].is_nan().sum()} NaN (a missing value must be a null)")
        pk = pdf[c].dtype.kind
        want = "f" if k == "float" or n > 0 else "i"
        if pk != want:
            fail(where, f"{c}: pandas dtype {pdf[c].dtype}, expected kind {want!r}")
        if int(pdf[c].isna().sum()) != n:
            fail(where, f"{c}: pandas counts {int(pdf[c].isna().sum())} missing, polars {n}")
    if str(path.relative_to(run)) in LABELLED:
        for c in SWEEP_LABELS:
            if c not in df.columns:
                fail(where, f"no label column {c}")
            elif nulls[c][0] != "float":
                fail(where, f"{c}: polars type {df[c].dtype}, expected Float64")
    missing = {c: n for c, (_, n) in nulls.items() if n}
    print(f"  {where}: {df.height} rows, {df.width} columns, nulls {missing or 'none'}")
    return df, nulls


def check_csv(run, csv, nulls):
    where = f"{run.name}/{csv.name} (vegard export)"
    df = pl.read_csv(csv)
    pdf = pd.read_csv(csv)
    if df.columns != list(nulls):
        fail(where, f"columns {df.columns} differ from aligned.parquet's {list(nulls)}")
        return
    relaxed = []
    for c, (k, n) in nulls.items():
        got = kind_of(df[c].dtype)
        if got != k:
            head_empty = df.height > INFER_ROWS and df[c].head(INFER_ROWS).null_count() == INFER_ROWS
            if c in LABELS and (head_empty or df[c].null_count() == df.height):
                full = pl.read_csv(csv, infer_schema_length=None)
                if kind_of(full[c].dtype) != k and full[c].null_count() != full.height:
                    fail(where, f"{c}: {full[c].dtype} even with infer_schema_length=None")
                relaxed.append(c)
            else:
                fail(where, f"{c}: polars reads {df[c].dtype}, the Parquet file has {k}")
        if df[c].null_count() != n:
            fail(where, f"{c}: polars counts {df[c].null_count()} empty fields, Parquet {n} nulls")
        if int(pdf[c].isna().sum()) != n:
            fail(where, f"{c}: pandas counts {int(pdf[c].isna().sum())} missing, Parquet {n}")
        want = "f" if k == "float" or n > 0 else "i"
        if pdf[c].dtype.kind != want:
            fail(where, f"{c}: pandas dtype {pdf[c].dtype}, expected kind {want!r}")
    note = f"; label columns empty in the first {INFER_ROWS} rows (polars infers text): {relaxed}" if relaxed else ""
    print(f"  {where}: {df.height} rows, types and missing values agree{note}")


def main():
    vegard, runs = sys.argv[1], [pathlib.Path(p) for p in sys.argv[2:]]
    print(f"polars {pl.__version__}, pandas {pd.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            run = run.resolve()
            print(run.name)
            files = [run / "aligned.parquet", *sorted((run / "data").glob("*.parquet"))]
            aligned_nulls = None
            for f in files:
                _, nulls = check_parquet(run, f)
                if f.name == "aligned.parquet":
                    aligned_nulls = nulls
            csv = pathlib.Path(tmp) / f"{run.name}.csv"
            subprocess.run([vegard, "export", str(run), "--out", str(csv)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            check_csv(run, csv, aligned_nulls)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("every file read with the types and missing values vegard wrote")


if __name__ == "__main__":
    main()
