#!/usr/bin/env python3
"""Summarise scripts/coverage.sh: coverage of the 95 % intervals against the
bench's truth, and the bias of each estimate in units of its own standard
error. Standard library only.

For kappa the interval is the analysis' own slope_ci95_nm_per_mC (Student t
at the noise model's effective degrees of freedom; 1.96 SE where an older
analysis has none); for tau_EIS and tau_ESM estimate +- 1.96 SE (one entry
per analysed step); for Ea the analysis' own ea_ci95_eV (Student t or normal,
see crates/vegard-analysis/src/arrhenius.rs). tau's truth is L^2 / D(T) at the
step's measured temperature, D(T) = D0 exp(-Ea_D / (k_B T)).
"""
import glob
import json
import math
import os
import re
import sys

K_B_EV = 8.617333262e-5


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def seed_of(path):
    m = re.search(r"seed(\d+)\.json$", path)
    return int(m.group(1)) if m else -1


class Tally:
    def __init__(self, name):
        self.name, self.z, self.cover, self.seeds = name, [], [], set()

    def add(self, seed, est, se, truth, ci=None):
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (est, se, truth)) or se <= 0:
            return
        lo, hi = ci if ci else (est - 1.96 * se, est + 1.96 * se)
        self.z.append((est - truth) / se)
        self.cover.append(lo <= truth <= hi)
        self.seeds.add(seed)

    def line(self):
        n = len(self.z)
        if n == 0:
            return f"{self.name:<34} no data"
        cov = sum(self.cover) / n
        mean = sum(self.z) / n
        rms = math.sqrt(sum(z * z for z in self.z) / n)
        # Binomial standard error of the coverage at 95 %.
        se_cov = math.sqrt(0.95 * 0.05 / n)
        return (f"{self.name:<34} {sum(self.cover):>3}/{n:<3} = {100 * cov:5.1f} %"
                f" (+-{100 * se_cov:.1f}) | mean z {mean:+.2f} +- {1 / math.sqrt(n):.2f},"
                f" rms z {rms:.2f} | {len(self.seeds)} seeds")


def main(out):
    truth = load(os.path.join(out, "truth.json"))
    if truth is None:
        sys.exit(f"no {out}/truth.json")
    L = truth["thickness_m"]
    D0, Ea = truth["D0_m2_per_s"], truth["Ea_D_eV"]
    kappa_true = truth["kappa_nm_per_mC"]

    def tau_true(T_K):
        return L * L / (D0 * math.exp(-Ea / (K_B_EV * T_K)))

    t = {k: Tally(k) for k in [
        "kappa (demo CV)", "kappa (campaign CVs)", "tau_EIS", "tau_ESM",
        "Ea (EIS)", "Ea (ESM)"]}
    failed = []
    for path in sorted(glob.glob(os.path.join(out, "demo-seed*.json")), key=seed_of):
        a, s = load(path), seed_of(path)
        dvc = (a or {}).get("deformation_vs_charge")
        if not dvc:
            failed.append(os.path.basename(path))
            continue
        t["kappa (demo CV)"].add(s, dvc["slope_nm_per_mC"], dvc["slope_se_nm_per_mC"], kappa_true,
                                    dvc.get("slope_ci95_nm_per_mC"))
    for path in sorted(glob.glob(os.path.join(out, "campaign-seed*.json")), key=seed_of):
        a, s = load(path), seed_of(path)
        if not a:
            failed.append(os.path.basename(path))
            continue
        for cv in a.get("cv_steps", []):
            d = cv.get("deformation_vs_charge") or {}
            t["kappa (campaign CVs)"].add(s, d.get("slope_nm_per_mC"), d.get("slope_se_nm_per_mC"), kappa_true,
                                         d.get("slope_ci95_nm_per_mC"))
        for e in a.get("eis_fits", []):
            t["tau_EIS"].add(s, e["tau_s"], e["tau_se_s"], tau_true(e["T_K"]))
        for e in a.get("esm_fits", []):
            f = e["fit"]
            t["tau_ESM"].add(s, f["tau_s"], f["tau_se_s"], tau_true(e["T_K"]))
        arr = a.get("arrhenius") or {}
        for key, name in [("eis", "Ea (EIS)"), ("esm", "Ea (ESM)")]:
            fit = arr.get(key)
            if fit and fit.get("ea_ci95_eV"):
                t[name].add(s, fit["ea_eV"], fit["ea_se_eV"], Ea, fit["ea_ci95_eV"])
        for issue in a.get("analysis_errors", []):
            failed.append(f"{os.path.basename(path)}: {issue.get('message', issue)}")
    print(f"coverage of the 95 % intervals ({out}); z = (estimate - truth) / SE")
    for v in t.values():
        print("  " + v.line())
    if failed:
        print("not analysed / analysis errors:")
        for f in failed:
            print("  " + f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "coverage-runs")
