"""Every binary raw stream of a run folder, read by pyarrow (the reference
Arrow implementation), must equal what vegard exports as text.

Usage: python arrow_check.py RUN_DIR VEGARD
Exit status 0 only when every stream matched exactly (NaN included).
"""

import math
import pathlib
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.ipc


def vegard_rows(vegard, run, stream, tmp):
    out = pathlib.Path(tmp) / f"{stream}.csv"
    subprocess.run([vegard, "export", str(run), "--raw", stream, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    lines = out.read_text().splitlines()
    header = [f.rsplit(":", 1) for f in lines[0].split(",")]
    cols = {name: [] for name, _ in header}
    for line in lines[1:]:
        for (name, kind), cell in zip(header, line.split(",")):
            cols[name].append(int(cell) if kind == "i64" else float(cell))
    return header, cols


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def main():
    run, vegard = pathlib.Path(sys.argv[1]), sys.argv[2]
    streams = sorted(run.glob("raw/*.arrows"))
    if not streams:
        print(f"FAIL no raw/*.arrows in {run}")
        return 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in streams:
            stream = path.stem
            with pa.OSFile(str(path), "rb") as f:
                reader = pa.ipc.open_stream(f)
                table = reader.read_all()
            header, cols = vegard_rows(vegard, run, stream, tmp)
            kinds = {"i64": pa.int64(), "f64": pa.float64()}
            problems = []
            if [f.name for f in table.schema] != [n for n, _ in header]:
                problems.append(f"columns {table.schema.names} vs {[n for n, _ in header]}")
            for field, (name, kind) in zip(table.schema, header):
                if field.type != kinds[kind] or field.nullable:
                    problems.append(f"{name}: {field.type} nullable={field.nullable}, expected {kind}")
            for name, _ in header:
                got = table.column(name).to_pylist() if name in table.column_names else []
                want = cols[name]
                if len(got) != len(want) or not all(same(a, b) for a, b in zip(got, want)):
                    problems.append(f"{name}: values differ ({len(got)} vs {len(want)} rows)")
            status = "ok  " if not problems else "FAIL"
            print(f"{status} {path.relative_to(run)}: {table.num_rows} rows, {len(header)} columns, "
                  f"{path.stat().st_size / max(table.num_rows, 1):.1f} bytes/row"
                  + ("" if not problems else ": " + "; ".join(problems)))
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
