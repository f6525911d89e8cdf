#!/usr/bin/env python3
"""Writes examples/eis-series/: a synthetic solid-electrolyte EIS temperature
series (bulk arc, grain-boundary arc, blocking electrode) with known
activation energies, so `vegard fit-eis ... --arrhenius --report` can be
tried without an instrument. Standard library only; fixed seed, so the
files are reproducible.

Truth: p(R1,CPE1)-p(R2,CPE2)-CPE3 with R1(25 C) = 1e5 ohm, Ea 0.59 eV;
R2(25 C) = 5e5 ohm, Ea 0.80 eV; Q1 = 1e-11 F s^(a-1), a1 = 0.95;
Q2 = 2e-9, a2 = 0.85; Q3 = 1e-8, a3 = 0.9 (temperature-independent);
-20 .. 60 C, where both arcs stay inside 10 MHz .. 0.01 Hz (10 points
per decade); 0.5 % complex gaussian noise.
"""
import cmath, math, os, random

K_B_EV = 8.617333262e-5
T_C = [-20, 0, 20, 40, 60]
OUT = os.path.join(os.path.dirname(__file__), "..", "examples", "eis-series")


def z_cpe(q, a, w):
    return 1.0 / (q * (1j * w) ** a)


def par(r, q, a, w):
    return 1.0 / (1.0 / r + q * (1j * w) ** a)


def main():
    rng = random.Random(2026)
    os.makedirs(OUT, exist_ok=True)
    freqs = [10 ** (7 - k / 10) for k in range(91)]
    for t_c in T_C:
        t_k = t_c + 273.15
        scale = lambda ea: math.exp(ea / K_B_EV * (1 / t_k - 1 / 298.15))
        r1, r2 = 1e5 * scale(0.59), 5e5 * scale(0.80)
        with open(os.path.join(OUT, f"T{t_c}.csv"), "w") as f:
            f.write("# synthetic: scripts/make-eis-series.py (truth in its docstring)\n")
            f.write("f_Hz,Z_re_ohm,Z_im_ohm\n")
            for fr in freqs:
                w = 2 * math.pi * fr
                z = par(r1, 1e-11, 0.95, w) + par(r2, 2e-9, 0.85, w) + z_cpe(1e-8, 0.9, w)
                z *= 1 + 0.005 * complex(rng.gauss(0, 1), rng.gauss(0, 1)) / math.sqrt(2)
                f.write(f"{fr:.6e},{z.real:.6e},{z.imag:.6e}\n")


if __name__ == "__main__":
    main()
