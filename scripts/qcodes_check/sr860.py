"""QCoDeS checks of the sr860 emulator (see main.py).

QCoDeS's own SR860 driver (qcodes.instrument_drivers.stanford_research.SR860,
unmodified) over pyvisa-py: connect (the driver reads CAPTURERATEMAX?, IVMD?
and ISRC? while connecting), a full snapshot with every parameter read from
the instrument, X/Y/R/theta singly and from one instant (SNAP?, SNAPD?), and
settings written and read back. Raises AssertionError with the mismatch.
"""

import math
import time


def _close(got, want, rel=1e-6, what=""):
    if not math.isclose(got, want, rel_tol=rel, abs_tol=1e-12):
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def check(address):
    from qcodes.instrument_drivers.stanford_research import SR860

    lockin = SR860("sr860_check", address, visalib="@py", timeout=5)
    try:
        idn = lockin.get_idn()
        if idn.get("model") != "SR860":
            raise AssertionError(f"IDN: {idn}")

        # Settings written through the driver and read back from the
        # instrument (get_latest would only echo the cache).
        lockin.frequency(1234.5)
        _close(lockin.frequency.get(), 1234.5, what="frequency")
        lockin.amplitude(0.1)
        _close(lockin.amplitude.get(), 0.1, what="amplitude (V rms)")
        lockin.reference_source("INT")
        if lockin.reference_source.get() != "INT":
            raise AssertionError("reference_source did not read back INT")
        lockin.harmonic(2)
        if lockin.harmonic.get() != 2:
            raise AssertionError("harmonic did not read back 2")
        lockin.harmonic(1)
        lockin.time_constant(30e-3)
        lockin.filter_slope(24)
        lockin.sensitivity(1e-3)
        _close(lockin.sensitivity.get(), 1e-3, what="sensitivity")
        # ENBW of 4 cascaded sections: 5 / (64 tc).
        _close(lockin.noise_bandwidth.get(), 5 / (64 * 30e-3), what="ENBW")
        lockin.data_channels[3].assigned_parameter("frequency")

        time.sleep(0.3)  # let the filters settle on the new sine
        snap = lockin.snapshot(update=True)
        params = snap["parameters"]
        for name in ("frequency", "amplitude", "X", "Y", "R", "P", "noise_bandwidth"):
            if params[name]["value"] is None:
                raise AssertionError(f"snapshot: {name} has no value")

        x, y = lockin.X(), lockin.Y()
        r, p = lockin.R(), lockin.P()
        for name, v in (("X", x), ("Y", y), ("R", r), ("P", p)):
            if not math.isfinite(v):
                raise AssertionError(f"{name} = {v}")
        if not -180 <= p <= 180:
            raise AssertionError(f"theta {p} outside (-180, 180]")
        sx, sy, sr = lockin.get_values("X", "Y", "R")
        _close(sr, math.hypot(sx, sy), rel=1e-5, what="SNAP? R vs X, Y")
        sf, samp = lockin.get_values("frequency", "amplitude")
        _close(sf, 1234.5, what="SNAP? frequency")
        _close(samp, 0.1, what="SNAP? amplitude")
        data = lockin.get_data_channels_dict()
        if list(data) != ["X", "Y", "R", "frequency"]:
            raise AssertionError(f"data channels {list(data)}")
        _close(data["frequency"], 1234.5, what="SNAPD? frequency")
        v = lockin.complex_voltage()
        if not (math.isfinite(v.real) and math.isfinite(v.imag)):
            raise AssertionError(f"complex_voltage {v}")

        # Park the sine again (the bench's safe state).
        lockin.amplitude(1e-9)
        if lockin.ask("*ESR?") != "0":
            raise AssertionError("the session left an error in *ESR?")
    finally:
        lockin.close()
