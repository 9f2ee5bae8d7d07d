"""The command line: fast help, clear one-line errors with exit status 2, show/list/env."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.cli import main


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_help_is_fast_and_imports_neither_torch_nor_transformers():
    code = ("import sys, time; t = time.perf_counter(); from bench.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print('heavy', [m for m in ('torch', 'transformers', 'pandas') if m in sys.modules])")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert time.perf_counter() - t0 < 5  # generous for a loaded CI box; benchmarked in docs/validation.md
    assert "heavy []" in out.stdout


def test_run_explicit_form_then_show_in_every_format(tmp_path):
    out = _run("run", "-m", "tiny-bert", "-t", "cpu", "-c", "eager,jit", "-s", "latency", "-b", "1",
               "--seq-len", "16", "--duration", "0.2", "--warmup", "0.05", "--min-samples", "20",
               "--out", str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "tiny-bert" in out.stdout and "p50 ms" in out.stdout
    run_dir = next(tmp_path.iterdir())
    shown = _run("show", str(run_dir), "--format", "json")
    rows = json.loads(shown.stdout)
    assert [r["compiler"] for r in rows] == ["eager", "jit"] and rows[0]["seq_len"] == 16
    assert "latency_ms_p50" in _run("show", str(run_dir), "--format", "csv").stdout.splitlines()[0]
    md = _run("show", str(run_dir), "--format", "md").stdout.splitlines()
    start = next(i for i, line in enumerate(md) if line.startswith("|"))
    assert md[start].startswith("| model |")  # above it: only the machine's own line, for the reader
    assert all(not line or line.startswith("this machine's speed moved") for line in md[:start])


def test_dry_run_plans_without_running(tmp_path, capsys):
    assert main(["run", "--suite", "smoke", "--dry-run", "--format", "json", "--out", str(tmp_path / "o")]) == 0
    cells = json.loads(capsys.readouterr().out)
    # the smoke grid: 3 models x eager/jit x latency/throughput x b1/b4, one thread each
    grid = {(c["model"], c["compiler"], c["scenario"], c["batch_size"]) for c in cells}
    assert len(cells) == 26 and len(grid) == 26  # and two training cells
    assert grid - {("tiny-bert", "eager", "train", 4), ("tiny-gpt2", "eager", "train", 4)} == {(m, c, s, b) for m in ("tiny-bert", "tiny-vit", "tiny-gpt2") for c in ("eager", "jit")
                    for s in ("latency", "throughput") for b in (1, 4)}
    assert {c["threads_per_worker"] for c in cells} == {1} and not (tmp_path / "o").exists()


def test_list_and_env(capsys):
    assert main(["list", "models", "--format", "json"]) == 0
    models = {m["model"]: m for m in json.loads(capsys.readouterr().out)}
    assert models["bert-base-uncased"]["params"] == "109.48M"
    assert main(["list", "suites", "--format", "json"]) == 0
    assert "smoke" in {s["suite"] for s in json.loads(capsys.readouterr().out)}
    assert main(["list", "targets", "--format", "json"]) == 0
    targets = {t["target"]: t for t in json.loads(capsys.readouterr().out)}
    assert targets["cpu"]["available"] == "yes"
    assert main(["env", "--format", "json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["python"] and env["torch"] and env["targets"]["cpu"]["available"] is True


def test_keep_freed_memory_flag_reaches_every_cell_and_suites_too():
    from bench.cli import make_parser
    from bench.cli.plans import build_plan

    args = make_parser().parse_args(["run", "-m", "tiny-bert", "-s", "latency,throughput", "--keep-freed-memory"])
    assert [c.measure.keep_freed_memory for c in build_plan(args).cells] == [True, True]
    args = make_parser().parse_args(["run", "--suite", "smoke", "--keep-freed-memory"])
    assert all(c.measure.keep_freed_memory for c in build_plan(args).cells)
    args = make_parser().parse_args(["run", "--suite", "smoke"])
    assert not any(c.measure.keep_freed_memory for c in build_plan(args).cells)
