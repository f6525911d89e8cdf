"""Runs QCoDeS's own drivers (unmodified) against a running `vegard sim`.

argv[1]: the first JSON line `vegard sim --json` prints (the resources).
Each instrument's checks live in its own module with a `check(address)`
function that raises on any failure. A check fails on any error the driver
logs as well: a QCoDeS snapshot swallows failed parameter reads into log
warnings, so the log is captured and every WARNING or worse counts.
"""

import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def visa_address(resource):
    # vegard prints VISA resource strings already (TCPIP::host::port::SOCKET).
    return str(resource)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


def main():
    res = json.loads(Path(sys.argv[1]).read_text())
    import dmm, sr860, ls336  # noqa: E401  (each owns one instrument's checks)

    collect = Collect()
    logging.getLogger().addHandler(collect)
    failures = []
    for name, module, key in [
        ("Keysight 34465A", dmm, "deflection"),
        ("SR860", sr860, "lockin"),
        ("Lake Shore 336", ls336, "temperature"),
    ]:
        t0 = time.monotonic()
        before = len(collect.records)
        try:
            module.check(visa_address(res[key]))
        except Exception as e:  # report every instrument, then fail
            failures.append(f"{name}: {type(e).__name__}: {e}")
        logged = collect.records[before:]
        failures += [f"{name}: logged: {r}" for r in logged]
        status = "FAIL" if any(f.startswith(name) for f in failures) else "ok"
        print(f"{name:16s} {status}  ({time.monotonic() - t0:.1f} s)")
    for f in failures:
        print("  " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
