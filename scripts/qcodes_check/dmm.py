"""QCoDeS checks of the dmm emulator (see main.py).

Drives QCoDeS's own Keysight 34465A driver, unmodified, over pyvisa-py:
connect, a full snapshot, a voltage, a bus-triggered timer-paced acquisition
of two bursts read with FETCh?, READ?, the driver's time trace, and the
meter's error behaviour. Every reading must be finite and what a lever at
rest gives on the bench (well under 10 mV), and the error queue must be
empty after every step that should not have failed.
"""

import math
import time

import numpy as np
from qcodes.instrument_drivers.Keysight import Keysight34465A

# The lever at rest: holder drift and 0.02 nm noise over 60 nm/V is below
# 1 mV; 10 mV leaves room for drift over a long bench run.
AT_REST_V = 10e-3


class CheckFailed(AssertionError):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def no_error(dmm, after):
    code, msg = dmm.error()
    expect(code == 0, f"error queue after {after}: {code},{msg}")


def plausible(values, what, n=None):
    values = np.asarray(values, dtype=float)
    if n is not None:
        expect(values.size == n, f"{what}: {values.size} readings, expected {n}")
    expect(values.size > 0, f"{what}: no readings")
    expect(np.all(np.isfinite(values)), f"{what}: non-finite readings {values}")
    expect(
        np.all(np.abs(values) < AT_REST_V),
        f"{what}: readings beyond {AT_REST_V} V: {values}",
    )


def check(address):
    dmm = Keysight34465A("dmm", address, visalib="@py", timeout=10)
    try:
        # connect: identity and what the driver derived from *OPT?/*IDN?.
        idn = dmm.IDN()
        expect(idn["model"] == "34465A", f"IDN {idn}")
        expect(dmm.has_DIG, "DIG option not detected")
        expect(dmm.line_frequency() == 50, "line frequency")

        # A full snapshot: every parameter read from the meter.
        snap = dmm.snapshot(update=True)
        params = snap["parameters"]
        for name, want in [
            ("sense_function", "DC Voltage"),
            ("autorange", "ON"),
            ("autozero", "ON"),
            ("aperture_mode", "OFF"),
        ]:
            got = params[name]["value"]
            expect(got == want, f"snapshot {name} = {got!r}, expected {want!r}")
        expect(params["NPLC"]["value"] == 10.0, f"NPLC {params['NPLC']['value']}")
        expect(params["range"]["value"] in dmm.ranges, f"range {params['range']}")
        sub = snap["submodules"]
        expect(sub["trigger"]["parameters"]["count"]["value"] == 1.0, "trigger count")
        expect(sub["sample"]["parameters"]["count"]["value"] == 1, "sample count")
        expect(sub["display"]["parameters"]["enabled"]["value"] is True, "display")
        no_error(dmm, "snapshot")

        # One voltage (READ? with the sense function and count set around it).
        v = dmm.volt()
        plausible([v], "volt()")
        no_error(dmm, "volt()")

        # Integration time and the sample timer's minimum that follows it.
        dmm.range(1)
        dmm.NPLC(0.06)
        dmm.autozero("OFF")
        expect(dmm.aperture_mode() == "OFF", "NPLC turns aperture mode off")
        tmin = dmm.sample.timer_minimum()
        expect(abs(tmin - 0.06 / 50) < 2e-6, f"SAMP:TIM? MIN {tmin} at 0.06 PLC")
        dmm.aperture_time(0.002)
        expect(dmm.aperture_mode() == "ON", "aperture sets aperture mode")
        tmin = dmm.sample.timer_minimum()
        expect(abs(tmin - 0.002) < 2e-6, f"SAMP:TIM? MIN {tmin} at 2 ms aperture")
        no_error(dmm, "integration settings")

        # A triggered acquisition: 2 bus triggers of 25 readings every 5 ms.
        dmm.sample.count(25)
        dmm.sample.source("TIM")
        dmm.sample.timer(0.005)
        dmm.trigger.source("BUS")
        dmm.trigger.count(2)
        dmm.trigger.delay(0)
        expect(dmm.trigger.count() == 2.0, "trigger count")
        expect(abs(dmm.sample.timer() - 0.005) < 1e-9, "sample timer")
        no_error(dmm, "acquisition setup")
        dmm.init_measurement()
        dmm.trigger.force()
        deadline = time.monotonic() + 5
        while int(dmm.ask("DATA:POINts?")) < 25:
            expect(time.monotonic() < deadline, "first burst did not finish")
            time.sleep(0.01)
        dmm.trigger.force()
        data = dmm.fetch()
        plausible(data, "fetch() of 2 x 25", n=50)
        again = dmm.fetch()
        expect(np.array_equal(data, again), "FETCh? leaves readings in memory")
        no_error(dmm, "triggered acquisition")

        # READ? with an immediate trigger: 5 readings.
        dmm.trigger.source("IMM")
        dmm.trigger.count(1)
        dmm.sample.count(5)
        plausible(dmm.read(), "read()", n=5)
        no_error(dmm, "read()")

        # The driver's own time trace (bus trigger, display text, pretrigger 0).
        dmm.timetrace_npts(20)
        dmm.timetrace_dt(0.005)
        trace = dmm.timetrace()
        plausible(trace, "timetrace()", n=20)
        expect(dmm.display.text() == "", "display text restored")
        no_error(dmm, "timetrace()")

        # Range, resolution and display through the driver's own helpers.
        dmm.range(10)
        dmm.resolution(3e-6)  # 0.3 ppm of 10 V: 1 PLC
        expect(dmm.NPLC() == 1.0, f"resolution 3 uV gave NPLC {dmm.NPLC()}")
        expect(abs(dmm.resolution() - 3e-6) < 1e-12, "resolution read back")
        dmm.autorange_once()
        expect(dmm.autorange() == "OFF", "autorange once leaves autorange off")
        expect(dmm.range() == 0.1, f"lever at rest ranges to 0.1 V, not {dmm.range()}")
        dmm.display.text("vegard")
        expect(dmm.display.text() == "vegard", "display text")
        dmm.display.clear()
        expect(dmm.display.text() == "", "display cleared")
        no_error(dmm, "range, resolution, display")

        # Out-of-range input: error queued, setting kept.
        dmm.write("SAMPle:COUNt 0")
        code, _ = dmm.error()
        expect(code == -222, f"SAMP:COUN 0 gave {code}, expected -222")
        expect(dmm.sample.count() == 5, "SAMP:COUN 0 changed the count")
        dmm.write("SENSe:VOLT:NPLC 0.5")
        code, _ = dmm.error()
        expect(code == -224, f"NPLC 0.5 gave {code}, expected -224")
        dmm.trigger.count("INF")
        expect(dmm.trigger.count() == 9.9e37, "TRIG:COUN INF")
        dmm.trigger.count(1)
        no_error(dmm, "error checks")
        expect(math.isfinite(dmm.volt()), "volt() after the error checks")

        # reset(): *RST, *OPC?, and a snapshot of the defaults.
        dmm.reset()
        expect(dmm.sample.count() == 1, "sample count after reset")
        expect(dmm.autorange() == "ON", "autorange after reset")
        expect(dmm.trigger.source() == "IMM", "trigger source after reset")
        no_error(dmm, "reset()")
    finally:
        dmm.close()
