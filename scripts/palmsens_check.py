"""PalmSens' own MethodSCRIPT Python library against vegard's emulator.

Usage: python palmsens_check.py RESOURCES_JSON PALMSENS_DIR

RESOURCES_JSON is the first line `vegard sim --json` (or the standalone
example) prints; PALMSENS_DIR holds the pinned, unmodified files of
PalmSens' MethodSCRIPT_Examples repository (see scripts/palmsens-check.sh):
the library `Example_Python/Example_Python/palmsens/` and the example
scripts. This file only calls the library's public functions: Serial,
Instrument (identification, send_script, readlines_until_end) and
mscript.parse_result_lines; it checks what they return.

Prints one line per check and exits 0 only when every check passed.
"""

import json
import logging
import math
import os
import sys
import time

RESOURCES, PALMSENS = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(PALMSENS, "Example_Python", "Example_Python"))

import palmsens.instrument  # noqa: E402  (PalmSens' library, unmodified)
import palmsens.mscript  # noqa: E402
import palmsens.serialport  # noqa: E402

PY_SCRIPTS = os.path.join(PALMSENS, "Example_Python", "Example_Python", "scripts")
LOOP_SCRIPTS = os.path.join(PALMSENS, "MethodSCRIPTs", "Measurement_Loops")
# Wall seconds the library may wait for one line (a CA pre-loop without
# packages is silent for its whole duration).
LINE_TIMEOUT_S = 30.0

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


class ErrorLog(logging.Handler):
    """Collects the library's 'MethodSCRIPT error: ...' log records."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors = []

    def emit(self, record):
        self.errors.append(record.getMessage())


def finite(xs):
    return all(math.isfinite(x) for x in xs)


def close(a, b, tol):
    return abs(a - b) <= tol


def staircase(values, first, step, n, tol=2e-6):
    """values[k] == first + k * step for k < n."""
    return len(values) == n and all(
        close(v, first + k * step, tol) for k, v in enumerate(values)
    )


def currents_ok(loop, columns, full_scale_A):
    vals = [v for c in columns for v in loop.get_column_values(c)]
    return finite(vals) and all(abs(v) <= full_scale_A * (1 + 1e-9) for v in vals)


def types_of(loop):
    return [var.id for var in loop.packages[0]] if loop.packages else []


def run_script(device, errors, path):
    errors.errors.clear()
    started = time.monotonic()
    device.send_script(path)
    lines = device.readlines_until_end(line_timeout=LINE_TIMEOUT_S)
    name = os.path.basename(path)
    check(not errors.errors, f"{name}: no device error {errors.errors}")
    check(bool(lines) and lines[0] == "e\n", f"{name}: accepted ('e')")
    curves = palmsens.mscript.parse_result_lines(lines)
    print(
        f"      {name}: {len(lines)} lines in {time.monotonic() - started:.1f} s wall",
        flush=True,
    )
    return curves


def main():
    with open(RESOURCES, encoding="ascii") as f:
        resources = json.load(f)
    resource = resources["potentiostat"]
    port = resource.removeprefix("ASRL").removesuffix("::INSTR")
    print(f"potentiostat {resource} -> {port}", flush=True)
    errors = ErrorLog()
    logging.getLogger("palmsens").addHandler(errors)

    dt = palmsens.instrument.DeviceType
    # 921600 baud: what PalmSens' library uses for an EmStat4 (a pty ignores it).
    with palmsens.serialport.Serial(port, 921600, 1) as comm:
        device = palmsens.instrument.Instrument(comm)
        device.abort_and_sync()
        firmware = device.get_firmware_version()
        device_type = device.get_device_type()
        print(f"      firmware {firmware!r}, device type {device_type!r}", flush=True)
        check(
            device_type in (dt.EMSTAT4_LR, dt.EMSTAT4_HR, dt.EMSTAT_PICO),
            f"identified as a real EmStat ({device_type}), not a bootloader",
        )
        check(device_type != dt.EMSTAT_PICO_BOOTLOADER, "not the Pico bootloader")
        check(device.get_mscript_version() == "0104", "MethodSCRIPT version 0104")
        check(len(device.get_serial_number()) > 0, "serial number")

        # --- CV (PalmSens' plot_cv example script): 0 -> 0.5 -> -0.5 -> 0 V,
        # 10 mV steps; autoranging 1 nA .. 100 uA.
        cv = run_script(device, errors, os.path.join(PY_SCRIPTS, "example_cv.mscr"))
        E = cv.get_column_values(0)
        check(types_of(cv) == ["da", "ba"], f"CV: packages da, ba ({types_of(cv)})")
        check(len(E) == 200, f"CV: 200 points ({len(E)})")
        check(
            finite(E) and close(max(E), 0.5, 2e-6) and close(min(E), -0.5, 2e-6),
            f"CV: potentials span -0.5 .. 0.5 V ({min(E):.4f} .. {max(E):.4f})",
        )
        check(
            close(E[0], 0.01, 2e-6) and close(E[49], 0.5, 2e-6) and close(E[-1], 0.0, 2e-6),
            "CV: potentials follow the script (E[0]=10 mV, E[49]=0.5 V, E[-1]=0)",
        )
        check(currents_ok(cv, [1], 100e-6), "CV: currents finite and within 100 uA")
        I = cv.get_column_values(1)
        check(max(I) > 0 and min(I) < 0, f"CV: anodic and cathodic current ({max(I):.3e}, {min(I):.3e})")
        # The library's own metadata decoding: every current on a range the
        # EmStat4 has; readings at the 100 uA full scale flagged OVERLOAD.
        ms = palmsens.mscript
        ranges = {ms.metadata_range_to_text(device_type, c.type, c.metadata.get("range", -1)) for c in cv.get_column(1)}
        check(all("UNKNOWN" not in r for r in ranges), f"CV: current ranges known to the library ({sorted(ranges)})")
        full = [c for c in cv.get_column(1) if abs(abs(c.value) - 100e-6) < 1e-15]
        flags = {ms.metadata_status_to_text(c.metadata.get("status", 0)) for c in full}
        check(bool(full) and flags == {"OVERLOAD"}, f"CV: {len(full)} full-scale readings, status {sorted(flags)}")
        inside = [c for c in cv.get_column(1) if abs(c.value) < 100e-6 * (1 - 1e-9)]
        check(
            all(c.metadata.get("status") == 0 for c in inside),
            f"CV: {len(inside)} readings inside the range have status OK {[c.data for c in inside if c.metadata.get('status')]}",
        )

        cvn = run_script(device, errors, os.path.join(PY_SCRIPTS, "example_cv_nscans.mscr"))
        check(len(cvn.loops) == 3, f"CV nscans(3): three scans ({len(cvn.loops)})")
        check(
            all(len(s.packages) == 200 for s in cvn.loops),
            "CV nscans(3): 200 points per scan",
        )
        check(
            all(currents_ok(s, [1], 100e-6) for s in cvn.loops),
            "CV nscans(3): currents within 100 uA",
        )

        # --- SWV, forward and reverse (plot_advanced_swv example script).
        swv = run_script(device, errors, os.path.join(PY_SCRIPTS, "example_advanced_swv.mscr"))
        check(len(swv.loops) == 2, f"advanced SWV: two curves ({len(swv.loops)})")
        for i, (first, step) in enumerate([(-0.3, 0.005), (0.3, -0.005)]):
            c = swv.loops[i] if len(swv.loops) > i else palmsens.mscript.MScriptLoop(None, None)
            E = c.get_column_values(0)
            check(staircase(E, first, step, 121), f"advanced SWV curve {i}: 121 steps from {first} V by {step} V")
            check(types_of(c) == ["da", "ba", "ba", "ba"], f"advanced SWV curve {i}: da, ba, ba, ba")
            # Forward and reverse currents are measured on the 100 uA range
            # (at most its full scale); I is their difference.
            check(currents_ok(c, [2, 3], 100e-6), f"advanced SWV curve {i}: I_forward, I_reverse within 100 uA")
            check(currents_ok(c, [1], 200e-6), f"advanced SWV curve {i}: I within 2 x 100 uA")
            diff_ok = all(
                close(p[1].value, p[2].value - p[3].value, 1e-5 * abs(p[1].value) + 2e-9)
                for p in c.packages
            )
            check(diff_ok, f"advanced SWV curve {i}: I = I_forward - I_reverse")

        swv2 = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample006-SWV.mscr"))
        check(staircase(swv2.get_column_values(0), -0.5, 0.01, 101), "SWV loop example: 101 steps -0.5 .. 0.5 V")
        check(currents_ok(swv2, [1], 10e-3), "SWV loop example: currents finite, within 10 mA")

        # --- DPV, NPV, LSV, CA, OCP, CV and EIS loop examples.
        dpv = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample005-DPV.mscr"))
        check(staircase(dpv.get_column_values(0), -0.5, 0.01, 101), "DPV loop example: 101 steps -0.5 .. 0.5 V")
        check(currents_ok(dpv, [1], 10e-3), "DPV loop example: currents finite, within 10 mA")
        I = dpv.get_column_values(1)
        check(max(I) - min(I) > 1e-9, f"DPV loop example: the differential current varies ({min(I):.3e} .. {max(I):.3e} A)")

        npv = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample007-NPV.mscr"))
        check(staircase(npv.get_column_values(0), -0.5, 0.01, 101), "NPV loop example: 101 steps")
        check(currents_ok(npv, [1], 10e-3), "NPV loop example: currents finite, within 10 mA")

        lsv = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample001-LSV.mscr"))
        check(staircase(lsv.get_column_values(0), -0.49, 0.01, 100), "LSV loop example: 100 points -0.49 .. 0.5 V")
        check(currents_ok(lsv, [1], 10e-3), "LSV loop example: currents finite, within 10 mA")

        cv3 = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample004-CV.mscr"))
        check(len(cv3.loops) == 3 and all(len(s.packages) == 200 for s in cv3.loops), "CV loop example: 3 scans of 200")

        ca = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample008-CA.mscr"))
        t = ca.get_column_values(0)
        check(types_of(ca) == ["eb", "ba"] and len(t) == 20, f"CA loop example: 20 packages of time, current ({len(t)})")
        check(
            finite(t) and all(b > a for a, b in zip(t, t[1:])) and 1.5 < t[-1] - t[0] + 0.1 < 2.5,
            f"CA loop example: timer_get times increase over ~2 s ({t[0]:.3f} .. {t[-1]:.3f})",
        )
        check(currents_ok(ca, [1], 10e-3), "CA loop example: currents within 10 mA")

        ocp = run_script(device, errors, os.path.join(LOOP_SCRIPTS, "MSLoopExample011-OCP.mscr"))
        E = ocp.get_column_values(1)
        check(len(E) == 21 and finite(E) and all(-1.0 < e < 1.5 for e in E), f"OCP loop example: 21 plausible potentials ({len(E)})")

        for name, n, f0, f1 in [
            (os.path.join(PY_SCRIPTS, "example_eis.mscr"), 41, 200e3, 20.0),
            (os.path.join(LOOP_SCRIPTS, "MSLoopExample012-EIS.mscr"), 11, 100e3, 100.0),
        ]:
            eis = run_script(device, errors, name)
            f = eis.get_column_values(0)
            zr = eis.get_column_values(1)
            zi = eis.get_column_values(2)
            base = os.path.basename(name)
            check(len(f) == n and close(f[0], f0, f0 * 1e-5) and close(f[-1], f1, f1 * 1e-5), f"{base}: {n} frequencies {f0:g} .. {f1:g} Hz")
            check(finite(zr + zi) and all(r > 0 for r in zr), f"{base}: finite Z with Z' > 0")
            # Above ~10 kHz Z'' is the noise around ~0 of the series resistance.
            low = [i for fk, i in zip(f, zi) if fk <= 10e3]
            check(bool(low) and all(i < 0 for i in low), f"{base}: capacitive Z'' < 0 below 10 kHz")
            check(-zi[-1] > -zi[0], f"{base}: -Z'' grows towards low frequency ({-zi[0]:.3g} -> {-zi[-1]:.3g} ohm)")

        # --- Firmware errors, as the library's own error pattern sees them.
        errors.errors.clear()
        device.writelines(["e\n", "var c\n", "frobnicate 1\n", "\n"])
        lines = device.readlines_until_end(line_timeout=5.0)
        check(
            lines == [] and any("2001: Line 3, Col 1" in e for e in errors.errors),
            f"unknown command: !2001 at Line 3, Col 1 ({errors.errors})",
        )
        errors.errors.clear()
        device.writelines(["e\n", "var c\n", "set_e 1x\n", "\n"])
        device.readlines_until_end(line_timeout=5.0)
        check(any("2003: Line 3, Col 7" in e for e in errors.errors), f"bad argument: !2003 at Line 3, Col 7 ({errors.errors})")
        device.abort_and_sync()

    print(f"{'PASS' if not failures else 'FAIL'}: {len(failures)} check(s) failed", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
