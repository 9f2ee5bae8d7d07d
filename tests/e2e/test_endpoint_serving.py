"""Serving as Neuron users deploy it: data-parallel replicas (`--url A,B`), reasoning models,
the server's profiler (`--profile`), and what a launched server's start says (its time, its
compile cache, its timeout). Against the stand-in server (tests/support/llm_standin.py), a
real HTTP server in a process of its own on 127.0.0.1 that stops by itself.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.store import load_samples
from bench.targets.endpoint import launch
from bench.targets.endpoint.client import Outcome, _take
from bench.targets.endpoint.sse import Event
from tests.support.endpoint import LLM_STANDIN, StandinProcess, free_port, train_tokenizer
from tests.support.paths import ROOT

BASE = ["run", "-t", "endpoint", "-m", "standin", "--seq-len", "16", "--output-len", "8", "--no-progress",
        "--format", "json"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture
def servers():
    started: list[StandinProcess] = []

    def start(*args: str, **kw) -> StandinProcess:
        kw.setdefault("first_ms", 10.0)
        kw.setdefault("gap_ms", 2.0)
        started.append(StandinProcess(*args, **kw))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def _cli(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _row(res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, res.stderr[-2000:]
    (row,) = json.loads(res.stdout)
    return row


# -- data-parallel replicas ---------------------------------------------------------------------


def test_round_robin_over_two_replicas_at_a_poisson_rate_splits_the_requests_in_half(servers, tok, tmp_path):
    a, b = servers(), servers()
    row = _row(_cli(*BASE, "--url", f"{a.url},{b.url}", "--tokenizer", str(tok), "-s", "server", "--rate", "40",
                    "--duration", "2", "--warmup", "0.2", "--min-samples", "40", "--out", str(tmp_path)))
    assert row["replicas"] == 2 and row["endpoint_replicas"] == 2 and row["endpoint_url"] == f"{a.url},{b.url}"
    sent = json.loads(row["replica_requests"])
    assert sum(sent) == row["samples"] + row["requests_failed"] + row["requests_unserved"]
    # round-robin by request index: the two halves differ by at most one, whatever the arrivals
    assert abs(sent[0] - sent[1]) <= 1
    arrived = [len(a.arrivals), len(b.arrivals)]  # what each server saw (warm-up and the first probe too)
    assert abs(arrived[0] - arrived[1]) <= 2, arrived
    samples = load_samples(tmp_path / row["run_id"], row["cell_id"])
    assert sorted(set(samples["replica"].tolist())) == [0, 1]  # each one's latencies, apart
    # each replica's /metrics, summed: both servers' requests are in the server's own mean
    assert row["server_ttft_ms_mean"] == pytest.approx(10.0, abs=3.0)


def test_a_bad_replica_list_is_one_line_and_exit_2_with_nothing_written(servers, tok, tmp_path):
    a = servers()
    other = servers(model="other-model")
    for argv, says in (([f"{a.url},"], "element 2 is empty"),
                       ([f",{a.url}"], "element 1 is empty"),
                       ([f"{a.url},{a.url}"], "a replica is given twice"),
                       ([f"{a.url},{other.url}"], f"not served at {other.url}")):
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        res = _cli(*BASE, "--url", *argv, "--tokenizer", str(tok), "--out", str(out))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and says in lines[0], (says, res.stderr)
        assert not out.exists() or not any(out.iterdir())


# -- reasoning models -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_ttft_counts_to_the_first_reasoning_token_and_the_answer_is_timed_apart(servers, tok, tmp_path, field):
    s = servers("--reasoning", "3", f"--reasoning-field={field}", first_ms=20.0, gap_ms=10.0)
    row = _row(_cli(*BASE, "--url", s.url, "--api", "chat", "--tokenizer", str(tok), "--duration", "0.6",
                    "--min-samples", "6", "--out", str(tmp_path)))
    assert row["reasoning_requests"] == row["samples"] and row["reasoning_tokens_mean"] == 3
    # the first token (reasoning) at 20 ms, the first answer token 3 gaps later
    assert row["ttft_ms_p50"] == pytest.approx(20.0, abs=8.0)
    assert row["ttft_content_ms_p50"] - row["ttft_ms_p50"] == pytest.approx(30.0, abs=8.0)


def test_a_stream_without_reasoning_has_no_reasoning_columns(servers, tok, tmp_path):
    s = servers()
    row = _row(_cli(*BASE, "--url", s.url, "--api", "chat", "--tokenizer", str(tok), "--duration", "0.4",
                    "--min-samples", "5", "--out", str(tmp_path)))
    assert "reasoning_requests" not in row and "ttft_content_ms_p50" not in row


def test_both_spellings_of_the_reasoning_field_are_read_once():
    out = Outcome(sent_ns=0)
    both = {"choices": [{"delta": {"reasoning": "a", "reasoning_content": "a"}}]}  # vLLM's transitional copy
    _take(Event(json.dumps(both)), 5, out, "chat")
    _take(Event(json.dumps({"choices": [{"delta": {"content": "b"}}]})), 9, out, "chat")
    usage = {"choices": [], "usage": {"completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1}}}
    _take(Event(json.dumps(usage)), 10, out, "chat")
    assert out.chunk_ns == [5, 9] and out.content_ns == 9 and out.reasoning_chunks == 1 and out.text_chars == 2
    assert out.usage_reasoning == 1


# -- the server's profiler --------------------------------------------------------------------------


def test_profile_wraps_a_window_in_the_servers_profiler_and_collects_its_traces(tok, tmp_path):
    port = free_port()
    traces = tmp_path / "vllm_profile"
    command = (f"{sys.executable} {LLM_STANDIN} --port {port} --lifetime 60 --first-ms 5 --gap-ms 1 "
               f"--profiler-config '{{\"profiler\": \"torch\", \"torch_profiler_dir\": \"{traces}\"}}'")
    row = _row(_cli(*BASE, "--url", f"http://127.0.0.1:{port}/v1", "--tokenizer", str(tok), "--duration", "0.4",
                    "--min-samples", "5", "--profile", "--launch", command, "--out", str(tmp_path / "r")))
    assert row["status"] in ("ok", "unstable") and row["profile_tool"].startswith("the server's profiler")
    copied = list((tmp_path / "r" / row["run_id"] / row["profile_dir"] / "server").glob("*.pt.trace.json.gz"))
    assert len(copied) == 1 and "3 requests" in row["profile_note"]
    assert row["server_start_s"] > 0


def test_a_server_without_a_profiler_says_so_in_the_row(servers, tok, tmp_path):
    s = servers()  # no --profiler-dir: /start_profile is 404, as on a vLLM started without --profiler-config
    row = _row(_cli(*BASE, "--url", s.url, "--tokenizer", str(tok), "--duration", "0.4", "--min-samples", "5",
                    "--profile", "--out", str(tmp_path)))
    assert row["status"] in ("ok", "unstable") and not row.get("profile_dir")
    assert "has no profiler" in row["profile_note"] and "--profiler-config" in row["profile_note"]


# -- a launched vLLM Neuron server: its start, its compile cache, its timeout ------------------------


def test_the_launch_timeout_follows_vllm_neurons_compile_timeout(monkeypatch):
    monkeypatch.delenv("VLLM_NEURON_COMPILATION_TIMEOUT", raising=False)
    assert launch.timeout_for("vllm serve m", None) == (600.0, "the default")
    assert launch.timeout_for("VLLM_NEURON_COMPILATION_TIMEOUT=1200 vllm serve m", None)[0] == 1500.0
    assert launch.timeout_for("export VLLM_NEURON_COMPILATION_TIMEOUT=900; vllm serve m", None)[0] == 1200.0
    assert launch.timeout_for("VLLM_NEURON_COMPILATION_TIMEOUT=1200 vllm serve m", 30.0) == (30.0, "--launch-timeout")
    monkeypatch.setenv("VLLM_NEURON_COMPILATION_TIMEOUT", "100")
    assert launch.timeout_for("vllm serve m", None)[0] == 400.0


def test_a_launch_records_its_start_time_and_whether_the_compile_cache_was_warm(tok, tmp_path):
    cache_root = tmp_path / "vllm-cache"
    port = free_port()
    # a stand-in "compile": the first launch adds one entry to the cache, the second finds it
    compile_step = f"mkdir -p {cache_root}/neuron/compile_cache/graph-1a2b && "
    command = (f"VLLM_CACHE_ROOT={cache_root} sh -c '{compile_step}exec {sys.executable} {LLM_STANDIN} "
               f"--port {port} --lifetime 30'")
    rows = []
    for i in range(2):
        rows.append(_row(_cli(*BASE, "--url", f"http://127.0.0.1:{port}/v1", "--tokenizer", str(tok), "--duration",
                              "0.3", "--min-samples", "3", "--launch", command, "--out", str(tmp_path / f"r{i}"))))
    assert rows[0]["server_compile_cache"] == "cold (1 entries added)"
    assert rows[1]["server_compile_cache"] == "warm (1 entries, none added)"
    assert all(math.isfinite(r["server_start_s"]) and r["server_start_s"] > 0 for r in rows)
    assert rows[0]["server_version"] == "standin-1"


def test_neuron_plugin_versions_come_from_the_servers_own_description():
    from bench.targets.endpoint.http import plugin_versions

    text = json.dumps({"system_env": "[pip3] vllm-neuron==0.24.0.1.1.0\n[pip3] libtorch_neuronx_lite==2.9.0.1.0"})
    assert plugin_versions(text) == {"vllm_neuron_version": "0.24.0.1.1.0",
                                     "libtorch_neuronx_lite_version": "2.9.0.1.0"}
    assert plugin_versions('{"version": "0.11.0"}') == {}


# -- a suite of endpoint cells -------------------------------------------------------------------


def test_a_suite_holds_an_endpoint_sweep_with_its_server(servers, tok, tmp_path):
    s = servers()
    suite = tmp_path / "serve.toml"
    suite.write_text(f'[measure]\nrounds = 1\nmin_duration_s = 0.3\nmin_samples = 4\n[[sweep]]\nmodels = ["standin"]\n'
                     f'targets = ["endpoint"]\nscenarios = ["throughput"]\nseq_lens = [16]\noutput_lens = [8]\n'
                     f'[sweep.endpoint]\nurl = "{s.url}"\ntokenizer = "{tok}"\nconcurrency = [2]\n'
                     f'slo = "ttft=5s"\n')
    row = _row(_cli("run", "--suite", str(suite), "--no-progress", "--format", "json", "--out", str(tmp_path / "r")))
    assert row["workers_per_model"] == 2 and row["endpoint_slo"] == "ttft=5000ms" and row["samples"] >= 4
    suite.write_text(suite.read_text().replace('slo = "ttft=5s"', 'timeout = 3'))
    res = _cli("run", "--suite", str(suite), "--no-progress", "--out", str(tmp_path / "bad"))
    assert res.returncode == 2 and "unknown key 'timeout'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_trn2_vllm_suite_launches_vllm_neuron_as_its_docs_do():
    from bench.plan.grid import Plan

    plan = Plan.from_suite("trn2-vllm")
    spec = plan.cells[0].options
    assert spec.launch.startswith("VLLM_NEURON_COMPILATION_TIMEOUT=1200 vllm serve meta-llama/Llama-3.1-8B-Instruct")
    assert "--tensor-parallel-size 8" in spec.launch and '--additional-config \'{"neuron_config"' in spec.launch
    assert launch.timeout_for(spec.launch, None)[0] == 1500.0
    assert {c.scenario for c in plan.cells} == {"latency", "throughput", "server"}
    assert all(c.seq_len == 1024 and c.output_len == 256 for c in plan.cells)
