"""Issue 19's "done means" on the virtual bench: recipes/signal-origin.toml
run on benches with each mechanism alone, all together, and none (the ideal
bench); `vegard analyze` must recover every coefficient that is on within its
95 % interval, report every mechanism that is off as consistent with zero
(p >= 0.05 and an interval that contains 0), and call the ideal bench
"Vegard". The truth comes from `vegard sim --truth`.

Usage: python3 scripts/signal_origin_check.py VEGARD [--seeds N] [--first-seed S] [--speed X] [--report-only]
Exit status 0 when every check on every bench and seed held; with several
seeds it also prints the coverage of each coefficient.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
ALL_ON = (ROOT / "configs" / "sim-signal-origin.toml").read_text()
OFF = {
    "electrostatic": ("dC_dz_F_per_m = 2e-9", "dC_dz_F_per_m = 0.0"),
    "electrostriction": ("coefficient_nm_per_V2 = 2.0", "coefficient_nm_per_V2 = 0.0"),
    "joule_heating": ("R_th_K_per_W = 2000.0", "R_th_K_per_W = 0.0"),
}
BENCHES = {
    "ideal": [],
    "electrostatic": ["electrostriction", "joule_heating"],
    "electrostriction": ["electrostatic", "joule_heating"],
    "joule_heating": ["electrostatic", "electrostriction"],
    "all": None,
}
BENCHES["ideal"] = list(OFF)
# coefficient key in analysis.json -> (truth key, mechanism)
COEFS = {
    "kappa_nm_per_mC": ("kappa_nm_per_mC", "vegard"),
    "electrostatic_nm_per_V2": ("electrostatic_nm_per_V2", "electrostatic"),
    "V_cpd_V": ("V_cpd_V", "electrostatic"),
    "electrostriction_nm_per_V2": ("electrostriction_nm_per_V2", "electrostriction"),
    "E_zero_V": ("electrostriction_E_zero_V", "electrostriction"),
    "joule_nm_per_W": ("joule_nm_per_W", "joule_heating"),
    "joule_tau_s": ("joule_tau_s", "joule_heating"),
}
# Derived quantities that exist only when their mechanism is resolved.
DERIVED = {"V_cpd_V", "E_zero_V", "joule_tau_s"}
ZERO_WHEN_OFF = {"electrostatic_nm_per_V2", "electrostriction_nm_per_V2", "joule_nm_per_W"}


def bench_text(off, seed):
    s = ALL_ON
    for m in off or []:
        a, b = OFF[m]
        assert a in s, a
        s = s.replace(a, b)
    assert "seed = 42" in s
    return s.replace("seed = 42", f"seed = {seed}", 1)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    # 5: the run completed but its analysis found problems (e.g. an ESM
    # film fit that cannot resolve tau at 0.1 V): the JSON still says.
    if r.returncode not in (0, 5):
        sys.exit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


class Broken(Exception):
    """A run that did not complete or was not separated: always an error."""


def check(vegard, name, off, seed, speed, work):
    bench = work / f"{name}-{seed}.toml"
    bench.write_text(bench_text(off, seed))
    truth = json.loads(run([vegard, "sim", "--bench", bench, "--truth", "--json"]))
    out = run([vegard, "run", "recipes/signal-origin.toml", "--bench", bench, "--speed", str(speed),
               "--no-tui", "--json", "--out", work / f"runs-{name}-{seed}"])
    res = json.loads(out.strip().splitlines()[-1])
    if res["status"] != "complete":
        raise Broken(f"{name} seed {seed}: run {res['status']}: {res.get('reason')}")
    a = json.loads(run([vegard, "analyze", res["run_dir"], "--json"]))
    so = a.get("signal_origin")
    if so is None:
        raise Broken(f"{name} seed {seed}: no separation: {a.get('signal_origin_note')} {a['analysis_errors']}")
    on = {"vegard"} | (set(OFF) - set(off or []))
    sig = {m["mechanism"]: m for m in so["mechanisms"]}
    fails, covered = [], {}
    print(f"\n== {name} (seed {seed}): {so['verdict']}: {so['verdict_text']}")
    print(f"   reduced chi2 {so['reduced_chi2']:.2f}, drift walk {so['drift_walk_nm_per_sqrt_min']:.3f} nm/sqrt(min)")
    for key, (tkey, mech) in COEFS.items():
        est = so["coefficients"][key]
        t = truth[tkey] if mech in on else 0.0
        if mech not in on and key in DERIVED:
            if est is not None and key != "V_cpd_V" and key != "E_zero_V":
                fails.append(f"{name}: {key} given for a mechanism that is off")
            print(f"   {key:28s} off: {'—' if est is None else est['value']}")
            continue
        if est is None:
            fails.append(f"{name}: {key} not identified (truth {t})")
            print(f"   {key:28s} not identified        truth {t:.6g}  MISS")
            covered[key] = False
            continue
        lo, hi = est["ci95"]
        ok = lo <= t <= hi
        covered[key] = ok
        print(f"   {key:28s} {est['value']:+.5g} ± {est['se']:.3g}  [{lo:+.5g}, {hi:+.5g}]  truth {t:+.6g}  {'ok' if ok else 'MISS'}")
        if not ok:
            fails.append(f"{name}: {key} = {est['value']:.5g} [{lo:.5g}, {hi:.5g}] misses {t}")
    for m, test in sig.items():
        state = "on" if m in on else "off"
        print(f"   {m:28s} {state:3s}  F = {test['F']:.3g}, p = {test['p_value']:.3g}, significant: {test['significant']}")
        if m in on and not test["significant"]:
            fails.append(f"{name}: {m} is on but not significant (p = {test['p_value']:.3g})")
        if m not in on and test["significant"]:
            fails.append(f"{name}: {m} is off but significant (p = {test['p_value']:.3g})")
    if name == "ideal" and so["verdict"] != "vegard":
        fails.append(f"ideal: verdict {so['verdict']}, not vegard")
    return fails, covered


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vegard")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=42)
    ap.add_argument("--speed", type=float, default=50)
    ap.add_argument("--report-only", action="store_true",
                    help="exit 0 when every run completed and was separated, whatever the checks found "
                         "(CI: issue 19 is open while the gamma/c checks fail, README)")
    args = ap.parse_args()
    vegard = str(pathlib.Path(args.vegard).resolve())
    fails, cover = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name, off in BENCHES.items():
                f, c = check(vegard, name, off, seed, args.speed, work)
                fails += f
                for k, ok in c.items():
                    n, h = cover.get(k, (0, 0))
                    cover[k] = (n + 1, h + int(ok))
    print("\ncoverage of the 95 % intervals (coefficients that are on, and those that are off against 0):")
    for k, (n, h) in cover.items():
        print(f"   {k:28s} {h}/{n} = {100 * h / n:.0f} %")
    if fails:
        print("\nFAILED:\n  " + "\n  ".join(fails))
        if args.report_only:
            print("(--report-only: not an error)")
            return
        sys.exit(1)
    print("\nsignal-origin check: every bench passed")


if __name__ == "__main__":
    main()
