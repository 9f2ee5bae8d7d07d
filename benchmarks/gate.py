"""A benchmark of the comparison gate itself (docs/comparing.md; figures in docs/validation.md).

    .venv/bin/python benchmarks/gate.py aa-runs      # 10 smoke runs, 9 consecutive pairs compared
    .venv/bin/python benchmarks/gate.py aa-ab        # 5 x `trnbench ab --suite smoke` (A/A)
    .venv/bin/python benchmarks/gate.py regression   # 6- vs 7-layer encoder: ab, separate runs, run --control
    .venv/bin/python benchmarks/gate.py hog          # a latency cell under a 2-core CPU hog
    .venv/bin/python benchmarks/gate.py ttr          # time to a row, bert-base b1 seq 128, defaults
    .venv/bin/python benchmarks/gate.py threads      # latency, 1 vs 2 threads, under 0, 1, 2 busy cores
    .venv/bin/python benchmarks/gate.py all

Each experiment prints its figures: how often the gate trips, how often the 95 % CI of B/A
holds 1 (coverage), what a regression looks like, and the wall times.  Nothing here is a
unit test: on a shared machine the figures move, which is what the gate has to survive.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "bench.cli"]

# A 6-layer, hidden-256 encoder at seq 64, its 7-layer twin (~15 % more work), and a
# control that does not change between the sides.
ENCODER = """description = "gate benchmark: {layers}-layer hidden-256 encoder"
family = "bert"
model_type = "bert"
task = "sequence-classification"
input = "tokens"
params = 0

[shape]
seq_len = 64
max_seq_len = 128

[config]
hidden_size = 256
num_hidden_layers = {layers}
num_attention_heads = 4
intermediate_size = 1024
vocab_size = 2048
max_position_embeddings = 128
num_labels = 2
"""


def cli(*argv: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, cwd=ROOT, check=check,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def one_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def coverage(comparison) -> tuple[int, int]:
    """Rows whose 95 % CI of B/A holds 1, of rows with a CI."""
    rows = [r for r in comparison.rows if r.ci_low == r.ci_low]
    return sum(r.ci_low <= 1.0 <= r.ci_high for r in rows), len(rows)


def shift_text(comparison) -> str:
    return ", ".join(f"{m} {s[0]:.3f} [{s[1]:.3f}, {s[2]:.3f}]" for m, s in comparison.shift.items()) or "-"


def aa_runs(n: int, keep: Path | None = None, reuse: bool = False) -> dict:
    """n consecutive smoke runs with the defaults; each pair (i, i+1) through the gate.
    `keep`: the runs stay under it; `reuse`: compare the runs already there again."""
    from bench.analysis.compare import compare_runs

    walls, runs = [], []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = keep or Path(tmp_s)
        for i in range(n):
            out = Path(tmp) / f"r{i}"
            if reuse:
                runs.append(one_run(out))
                walls.append(float("nan"))
                continue
            t0 = time.perf_counter()
            cli("run", "--suite", "smoke", "--out", str(out), "--no-progress")
            walls.append(time.perf_counter() - t0)
            runs.append(one_run(out))
            print(f"aa-runs: run {i + 1}/{n} took {walls[-1]:.1f} s", flush=True)
        per_run = [smoke_figures(run, wall) for run, wall in zip(runs, walls)]
        for i, f in enumerate(per_run, 1):
            print(f"aa-runs: run {i}: {f['unstable']} of {f['cells']} unstable; latency p50 CI half-width median "
                  f"{f['half_median']:.1%}, widest {f['half_max']:.1%}; median round spread {f['spread_median']:.1%}; "
                  f"rounds {f['rounds_min']}-{f['rounds_max']}; wall {f['wall_s']:.1f} s; {f['machine']}", flush=True)
        trips, held, total, geo = 0, 0, 0, []
        for a, b in zip(runs, runs[1:]):
            c = compare_runs(a, b)
            h, t = coverage(c)
            held, total = held + h, total + t
            trips += bool(c.regressions)
            geo.append(c.geomean["p50"][0])
            print(f"aa-runs: pair: gate {'TRIPS' if c.regressions else 'passes'} ({c.regressions} cells), "
                  f"CI holds 1 on {h}/{t} rows, geomean p50 {c.geomean['p50'][0]:.3f}, shift {shift_text(c)}",
                  flush=True)
            for r in c.rows:
                if r.verdict_vs_shift == "slower":
                    print(f"aa-runs:   slower: {r.label} {r.metric} B/A {r.ratio:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
                          f"p_holm {r.p_adj:.2g}; {'; '.join(r.notes)}", flush=True)
    res = {"runs": per_run, "pairs": n - 1, "trips": trips, "coverage": held / max(total, 1), "rows": total,
           "smoke_wall_s_median": statistics.median(walls), "smoke_wall_s_max": max(walls),
           "geomean_p50_range": [min(geo), max(geo)]}
    print(f"A/A separate runs: gate tripped on {trips} of {n - 1} pairs; the 95 % CI of B/A held 1 on "
          f"{held}/{total} rows ({held / max(total, 1):.1%}); geomean p50 B/A {min(geo):.3f}..{max(geo):.3f}; "
          f"smoke wall median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
    return res


def smoke_figures(run: Path, wall: float) -> dict:
    """A smoke run as issue 24 tabulates it: unstable cells, the latency cells' p50 interval
    half-widths relative to p50, their round spread, the machine's own line."""
    from bench.analysis.noise import machine_noise
    from bench.results.store import read_rows

    rows = read_rows(run)
    lat = [r for r in rows if r["scenario"] == "latency" and r.get("latency_ms_p50_ci_low") is not None]
    halves = [max(r["latency_ms_p50"] - r["latency_ms_p50_ci_low"], r["latency_ms_p50_ci_high"] - r["latency_ms_p50"])
              / r["latency_ms_p50"] for r in lat]
    noise = machine_noise(rows, read_rows(run, "rounds.jsonl"))
    return {"cells": len(rows), "unstable": sum(r["status"] == "unstable" for r in rows),
            "half_median": statistics.median(halves) if halves else float("nan"),
            "half_max": max(halves) if halves else float("nan"),
            "spread_median": statistics.median([r.get("round_spread") or 0.0 for r in lat]) if lat else float("nan"),
            "rounds_min": min(r["rounds"] for r in lat) if lat else 0, "rounds_max": max(r["rounds"] for r in lat) if lat else 0,
            "wall_s": wall, "machine_moved": noise.moved if noise else float("nan"),
            "machine": noise.line() if noise else "machine: too few rounds to say"}


def aa_ab(n: int) -> dict:
    """n repeats of `trnbench ab --suite smoke` with no B change."""
    from bench.analysis.paired import compare_paired

    trips, held, total, walls, floors = 0, 0, 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            out = Path(tmp) / f"ab{i}"
            t0 = time.perf_counter()
            res = cli("ab", "--suite", "smoke", "--out", str(out), "--no-progress", "--fail-on-regression",
                      check=False)
            walls.append(time.perf_counter() - t0)
            if res.returncode not in (0, 1):
                raise SystemExit(f"ab failed: {res.stderr.strip()[-400:]}")
            root = one_run(out)
            c, cal = compare_paired(root / "a", root / "b")
            h, t = coverage(c)
            held, total = held + h, total + t
            trips += res.returncode == 1
            floors.append(cal.lines()[0] if cal.lines() else "")
            print(f"aa-ab: repeat {i + 1}/{n}: {walls[-1]:.1f} s, gate "
                  f"{'TRIPS' if res.returncode == 1 else 'passes'}, CI holds 1 on {h}/{t} rows; "
                  f"{floors[-1]}", flush=True)
    print(f"A/A trnbench ab (smoke): gate tripped on {trips} of {n}; the 95 % CI of B/A held 1 on {held}/{total} "
          f"rows ({held / max(total, 1):.1%}); wall median {statistics.median(walls):.1f} s")
    return {"repeats": n, "trips": trips, "coverage": held / max(total, 1), "rows": total,
            "wall_s_median": statistics.median(walls)}


# Unchanged encoders beside gate-enc and gate-ctrl in the separate runs: 8 cells, so that
# `compare` estimates a run-wide shift (bench.analysis.compare.SHIFT_MIN_CELLS) and the gate
# judges the control against it, as it would in a suite.
SAME_LAYERS = (1, 2, 3, 5, 8, 10)
SEPARATE_MODELS = ",".join(["gate-enc", "gate-ctrl", *(f"gate-same-{layers}" for layers in SAME_LAYERS)])


def _cards(tmp: Path) -> tuple[Path, Path]:
    """Two model folders: in A, gate-enc has 6 layers; in B, 7. gate-ctrl (4 layers) and the
    gate-same-N encoders are in both."""
    dirs = []
    for side, layers in (("a", 6), ("b", 7)):
        d = tmp / f"models-{side}"
        d.mkdir(exist_ok=True)
        (d / "gate-enc.toml").write_text(ENCODER.format(layers=layers))
        (d / "gate-ctrl.toml").write_text(ENCODER.format(layers=4))
        for n in SAME_LAYERS:
            (d / f"gate-same-{n}.toml").write_text(ENCODER.format(layers=n))
        dirs.append(d)
    return dirs[0], dirs[1]


def _encoder_row(comparison, model: str):
    rows = [r for r in comparison.rows if r.key["model"] == model and r.metric == "p50"]
    return rows[0] if rows else None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def regression(n: int, parts: tuple[str, ...] = ("ab", "separate", "beside"), keep: Path | None = None,
               sep_rounds: tuple[int | None, ...] = (None,)) -> dict:
    """A 6 -> 7 layer change: caught by ab n of n? By separate runs beside a control? Each
    `sep_rounds` setting (None: the default rounds) is tried in every repeat, one after the other,
    so that settings are compared in the same hour."""
    from bench.analysis.compare import compare_runs
    from bench.analysis.paired import compare_paired

    cell = ["-s", "latency", "-b", "1", "-c", "eager", "--no-progress"]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        dir_a, dir_b = _cards(tmp)
        caught_ab, ratios_ab = 0, []
        (dir_a / "gate-enc7.toml").write_text(ENCODER.format(layers=7))  # side B's card, beside A's
        for i in range(n if "ab" in parts else 0):
            out = tmp / f"ab{i}"
            cli("ab", "-m", "gate-enc", "--b", "-m gate-enc7", *cell, "--out", str(out),
                env={"TRNBENCH_MODELS": str(dir_a)}, check=False)
            c, _ = compare_paired(one_run(out) / "a", one_run(out) / "b")
            row = c.rows[0] if c.rows else None
            hit = row is not None and row.verdict == "slower"
            caught_ab += hit
            ratios_ab.append(row.ratio if row else float("nan"))
            print(f"regression ab {i + 1}/{n}: B/A p50 {row.ratio:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] "
                  f"{row.verdict}", flush=True)
        # each setting in every repeat, one after the other (the same hour): separate runs judged
        # with `compare --control gate-ctrl` (rounds paired by pass), and runs made with
        # `run --control gate-ctrl` (the control's windows beside every cell, compared as pairs)
        settings = [(_rounds_name(r), [] if r is None else ["--rounds", str(r)])
                    for r in (sep_rounds if "separate" in parts else ())]
        if "beside" in parts:
            settings.append(("run --control", ["--control", "gate-ctrl"]))
        sep = {name: {"caught": 0, "ctrl_slower": 0, "ctrl_slower_alone": 0, "false_alarms": 0, "ratios": [],
                      "walls": []}
               for name, _ in settings}
        for i in range(n if settings else 0):
            for name, flags in settings:
                tally = sep[name]
                sides = []
                for side, models in (("a", dir_a), ("b", dir_b)):
                    out = tmp / f"sep{i}{side}{''.join(flags).replace('-', '')}"
                    t0 = time.perf_counter()
                    cli("run", "-m", SEPARATE_MODELS, *cell, *flags, "--out", str(out),
                        env={"TRNBENCH_MODELS": str(models)})
                    tally["walls"].append(time.perf_counter() - t0)
                    sides.append(one_run(out))
                plain = compare_runs(*sides, ignore=[])  # `compare`: 8 cells, judged against the run-wide shift
                beside = "--control" in flags
                # `compare` of runs made beside a control uses their pairs by itself; else `compare --control`
                c = plain if beside else compare_runs(*sides, ignore=[], control=["gate-ctrl"])
                enc, ctrl = _encoder_row(c, "gate-enc"), _encoder_row(plain, "gate-ctrl")
                tally["caught"] += enc is not None and enc.verdict_vs_shift == "slower"
                tally["ctrl_slower"] += ctrl is not None and ctrl.verdict_vs_shift == "slower"  # by the gate
                tally["ctrl_slower_alone"] += ctrl is not None and ctrl.verdict == "slower"  # B/A, no shift out
                tally["ratios"].append(enc.ratio / c.shift["p50"][0] if enc else float("nan"))
                # the unchanged encoders: any verdict but ~ on them is a false alarm
                false = [r for r in c.rows if str(r.key["model"]).startswith("gate-same")
                         and r.verdict_vs_shift != "~"]
                tally["false_alarms"] += len(false)
                for r in false:
                    print(f"regression separate {i + 1}/{n} ({name}): FALSE ALARM {r.label} {r.metric} "
                          f"{r.verdict_vs_shift}: {r.notes[-1]}", flush=True)
                print(f"regression separate {i + 1}/{n} ({name}): encoder B/A {enc.ratio:.3f} "
                      f"[{enc.ci_low:.3f}, {enc.ci_high:.3f}], against the control: {enc.notes[-1]} -> "
                      f"{enc.verdict_vs_shift}; control B/A {ctrl.ratio:.3f} [{ctrl.ci_low:.3f}, "
                      f"{ctrl.ci_high:.3f}] {ctrl.verdict}, against the run-wide shift "
                      f"x{plain.shift.get('p50', (1.0,))[0]:.3f}: {ctrl.verdict_vs_shift}; "
                      f"walls {tally['walls'][-2]:.0f} s, {tally['walls'][-1]:.0f} s", flush=True)
    print(f"regression (6 -> 7 layers): ab caught it {caught_ab}/{n} (median B/A {_median(ratios_ab):.3f})")
    for name, tally in sep.items():
        print(f"regression (6 -> 7 layers), separate runs, {name}: caught it "
              f"{tally['caught']}/{n} (median against the control {_median(tally['ratios']):.3f}), "
              f"control called slower by the gate {tally['ctrl_slower']}/{n} (B/A alone, no shift taken out: "
              f"{tally['ctrl_slower_alone']}/{n}); unchanged encoders called slower or faster: "
              f"{tally['false_alarms']} of {n * len(SAME_LAYERS) * 3} rows; wall per run median "
              f"{_median(tally['walls']):.1f} s")
    first = sep[settings[0][0]] if settings else {"caught": 0, "ctrl_slower": 0, "ratios": []}
    return {"ab_caught": caught_ab, "separate_caught": first["caught"], "control_slower": first["ctrl_slower"],
            "repeats": n, "ab_ratio_median": _median(ratios_ab), "separate_ratio_median": _median(first["ratios"]),
            "separate_by_setting": {name: {k: v for k, v in t.items() if k != "ratios"} for name, t in sep.items()}}


def _rounds_name(rounds: int | None) -> str:
    return "default rounds" if rounds is None else f"--rounds {rounds}"


def hogged_row(cores: int, *argv: str) -> dict:
    """Run one cell (JSON row) while `cores` busy loops run beside it."""
    loop = "import time\nend = time.time() + 300\nwhile time.time() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(cores)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            res = cli("run", *argv, "--out", tmp, "--no-progress", "--format", "json")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    return json.loads(res.stdout)[0]


def hog() -> dict:
    """One tiny-bert latency cell, default settings, while two busy loops hold both cores."""
    row = hogged_row(2, "-m", "tiny-bert", "-s", "latency", "-b", "1", "-c", "eager")
    print(f"hog: tiny-bert b1 latency under a 2-core hog: status {row['status']}, foreign_cpu_frac "
          f"{row['foreign_cpu_frac']:.2f}, busy_retries {row['busy_retries']}, stability {row['stability']!r}")
    return {k: row[k] for k in ("status", "foreign_cpu_frac", "cpu_steal_frac", "load_avg_1m", "busy_retries",
                                "stability")}


def median_ci_halfwidth(values) -> float:
    """Half-width of the 95 % distribution-free CI of the median (binomial order statistics),
    relative to the median: the precision a single window of iid samples states."""
    import numpy as np
    from scipy import stats

    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    lo = max(int(stats.binom.ppf(0.025, n, 0.5)) - 1, 0)
    hi = min(int(stats.binom.isf(0.025, n, 0.5)), n - 1)
    med = float(np.median(v))
    return max(med - v[lo], v[hi] - med) / med


def holds_others(runs: list[tuple[float, float, float]]) -> str:
    """How often a run's stated p50 interval holds the median p50 of the tool's other runs:
    what a stated precision is worth when the command is run again."""
    if len(runs) < 2:
        return "-"
    held = sum(lo <= statistics.median([p for j, (p, _, _) in enumerate(runs) if j != i]) <= hi
               for i, (_, lo, hi) in enumerate(runs))
    return f"{held}/{len(runs)} runs"


def ttr(n: int, peer_python: str | None) -> dict:
    """bert-base-uncased b1 seq 128, CPU eager, default settings: wall time to a row, and its
    parts; with peer_python, optimum-benchmark on the same cell, alternating with ours."""
    walls, cis, peer_walls, peer_cis = [], [], [], []
    p50s: list[tuple[float, float, float]] = []  # (p50, CI low, CI high) of each run
    peer_p50s: list[tuple[float, float, float]] = []
    for i in range(n):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = cli("run", "-m", "bert-base-uncased", "-b", "1", "--seq-len", "128", "-c", "eager", "-s", "latency",
                      "--out", out, "--no-progress", "--format", "json")
            wall = time.perf_counter() - t0
        row = json.loads(res.stdout)[0]
        walls.append(wall)
        ci = max(row["latency_ms_p50"] - row["latency_ms_p50_ci_low"],
                 row["latency_ms_p50_ci_high"] - row["latency_ms_p50"]) / row["latency_ms_p50"]
        cis.append(ci)
        p50s.append((row["latency_ms_p50"], row["latency_ms_p50_ci_low"], row["latency_ms_p50_ci_high"]))
        parts = {"worker start": row.get("worker_start_s") or 0.0, "model build": row.get("build_s") or 0.0,
                 "compile": row.get("compile_s") or 0.0, "first call": (row.get("first_call_ms") or 0.0) / 1e3,
                 "warm-up": row.get("warmup_s") or 0.0, "measurement": row.get("duration_s") or 0.0}
        parts["CLI, env, store, between rounds"] = wall - sum(parts.values())
        shares = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
        print(f"ttr {i + 1}/{n}: trnbench {wall:.1f} s to a row; p50 {row['latency_ms_p50']:.1f} ms +-{ci:.1%} "
              f"(over {row['rounds']} rounds), n={row['samples']}; {shares}", flush=True)
        if peer_python:
            t0 = time.perf_counter()
            res = subprocess.run([peer_python, str(ROOT / "benchmarks" / "peer_optimum_benchmark.py")],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "HF_HUB_OFFLINE": "1"})
            peer_walls.append(time.perf_counter() - t0)
            values = json.loads(res.stdout.strip().splitlines()[-1])["values_s"]
            peer_cis.append(median_ci_halfwidth(values))
            med = statistics.median(values) * 1e3
            peer_p50s.append((med, med * (1 - peer_cis[-1]), med * (1 + peer_cis[-1])))
            print(f"ttr {i + 1}/{n}: optimum-benchmark {peer_walls[-1]:.1f} s; p50 "
                  f"{statistics.median(values) * 1e3:.1f} ms +-{peer_cis[-1]:.1%} (one window, iid), "
                  f"n={len(values)}", flush=True)
    out = {"wall_s_median": statistics.median(walls), "ci_halfwidth_median": statistics.median(cis),
           "ci_holds_other_runs": holds_others(p50s)}
    print(f"time to a row, bert-base-uncased b1 seq 128 cpu eager, defaults: median {out['wall_s_median']:.1f} s, "
          f"p50 CI +-{out['ci_halfwidth_median']:.1%} (between-round variance included); a run's CI holds the "
          f"median p50 of the other runs in {out['ci_holds_other_runs']}")
    if peer_python:
        out.update(peer_wall_s_median=statistics.median(peer_walls), peer_ci_halfwidth_median=statistics.median(peer_cis),
                   peer_ci_holds_other_runs=holds_others(peer_p50s))
        print(f"optimum-benchmark (inline launcher, defaults) on the same cell, alternating: median "
              f"{out['peer_wall_s_median']:.1f} s, p50 CI +-{out['peer_ci_halfwidth_median']:.1%} "
              f"(within one window only); a run's CI holds the median p50 of the other runs in "
              f"{out['peer_ci_holds_other_runs']}")
    return out


def threads(rounds: int, busy: tuple[int, ...] = (0, 1, 2)) -> dict:
    """What the latency thread default does when a neighbour takes a core: p50 at 1 and 2
    intra-op threads, with 0, 1 and 2 busy cores beside the worker, interleaved over rounds."""
    cells = [(m, t, h) for m in ("tiny-bert", "bert-base-uncased") for h in busy for t in (1, 2)]
    p50: dict[tuple, list[float]] = {c: [] for c in cells}
    for r in range(rounds):
        for model, t, h in cells:
            row = hogged_row(h, "-m", model, "-s", "latency", "-b", "1", "-c", "eager", "--threads", str(t),
                             "--rounds", "1")
            p50[(model, t, h)].append(row["latency_ms_p50"])
            print(f"threads round {r + 1}/{rounds}: {model} threads={t} busy cores={h}: p50 "
                  f"{row['latency_ms_p50']:.2f} ms, IQR/median {row['latency_iqr_ratio']:.2f}, foreign "
                  f"{row['foreign_cpu_frac']:.2f}", flush=True)
    out = {}
    for model in ("tiny-bert", "bert-base-uncased"):
        for h in busy:
            one, two = (statistics.median(p50[(model, t, h)]) for t in (1, 2))
            out[f"{model} busy={h}"] = {"threads_1_ms": one, "threads_2_ms": two, "ratio_2_over_1": two / one}
            print(f"threads: {model}, {h} busy cores: p50 1 thread {one:.2f} ms, 2 threads {two:.2f} ms "
                  f"(2/1 = {two / one:.2f})")
    return out


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["aa-runs", "aa-ab", "regression", "hog", "ttr", "threads", "all"])
    p.add_argument("--runs", type=int, default=10, help="aa-runs: consecutive smoke runs (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="aa-ab, regression: repeats (default 5)")
    p.add_argument("--parts", default="ab,separate,beside",
                   help="regression: ab, separate (compare --control on plain runs), beside (run --control); "
                        "default all three")
    p.add_argument("--sep-rounds", default="default",
                   help="regression: comma-separated --rounds for the separate runs, each tried in every repeat "
                        "('default': the run's default)")
    p.add_argument("--keep", metavar="DIR", help="aa-runs, regression: keep the runs under DIR (default: a temporary "
                                                 "folder)")
    p.add_argument("--reuse", action="store_true", help="aa-runs: compare the runs kept under --keep again")
    p.add_argument("--ttr-repeats", type=int, default=3)
    p.add_argument("--peer-python", metavar="PYTHON",
                   help="ttr: a Python with optimum-benchmark, run alternately on the same cell")
    p.add_argument("--thread-rounds", type=int, default=3)
    p.add_argument("--busy", default="0,1,2", help="threads: busy cores beside the worker (default 0,1,2)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = p.parse_args()
    figures = {}
    if args.what in ("hog", "all"):
        figures["hog"] = hog()
    if args.what in ("aa-runs", "all"):
        figures["aa_runs"] = aa_runs(args.runs, Path(args.keep) if args.keep else None, args.reuse)
    if args.what in ("aa-ab", "all"):
        figures["aa_ab"] = aa_ab(args.repeats)
    if args.what in ("regression", "all"):
        figures["regression"] = regression(
            args.repeats, tuple(args.parts.split(",")), Path(args.keep) if args.keep else None,
            tuple(None if r == "default" else int(r) for r in args.sep_rounds.split(",")))
    if args.what in ("ttr", "all"):
        figures["ttr"] = ttr(args.ttr_repeats, args.peer_python)
    if args.what in ("threads", "all"):
        figures["threads"] = threads(args.thread_rounds, tuple(int(b) for b in args.busy.split(",")))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
