"""The option groups of the command line, each defined once and shared by the commands that
take it (run, resume, ab, compile, and ab's --b; compare and ab), and the parser that turns a
user's mistake into one line and exit status 2. Only argparse is imported."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bench.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line and exit status 2 (no usage dump), and a flag is
    never read as the prefix of another (`--out` is not `--output-len`): abbreviations are off
    in this parser and every subcommand's (they are made with this class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def csv_of(kind: Callable[[str], object], what: str) -> Callable[[str], list]:
    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise UsageError(f"{what}: empty list")
        out = []
        for t in items:
            try:
                out.append(kind(t))
            except ValueError:
                raise UsageError(f"{what} must be {'an integer' if kind is int else 'a number'}, got {t!r}") from None
        return out

    return parse


def int_flag(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{flag} must be an integer, got {text!r}") from None

    return parse


def names_of(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_plan_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to run (a suite, or axes of a grid)")
    g.add_argument("--suite", help="suite name (suites/NAME.toml) or path to a suite TOML")
    g.add_argument("-m", "--model", type=names_of, help="model card name(s), comma-separated")
    g.add_argument("-t", "--target", type=names_of,
                   help="cpu, cuda, neuron, or auto (first available of neuron, cuda, cpu); default cpu")
    g.add_argument("-c", "--compiler", type=names_of,
                   help="eager, jit, inductor, cudagraphs, trace, trace-dp, native-eager, native-compile, nxdi "
                        "(default: the target's first: eager, or trace on neuron)")
    g.add_argument("-d", "--dtype", type=names_of, help="fp32, bf16, fp16 (default fp32)")
    g.add_argument("-s", "--scenario", type=names_of,
                   help="latency, throughput, server, generate, train (default latency)")
    g.add_argument("-b", "--batch-size", type=csv_of(int, "batch size"), help="e.g. 1,8")
    g.add_argument("--seq-len", type=csv_of(int, "sequence length"), help="token models: e.g. 128")
    g.add_argument("--image-size", type=csv_of(int, "image size"), help="vision models: e.g. 224")
    g.add_argument("--weights", help="random (default, seeded), pretrained (card's hub id) or a local directory")
    g.add_argument("--compiler-args", help="extra compiler flags, e.g. '--auto-cast=matmult'")
    g.add_argument("--n-models", type=csv_of(int, "n_models"), help="model copies (throughput)")
    g.add_argument("--workers-per-model", type=csv_of(int, "workers_per_model"),
                   help="requests in flight per copy (throughput)")
    g.add_argument("--threads", type=csv_of(int, "threads"), help="CPU threads per worker")
    s = p.add_argument_group("server and generate scenarios")
    s.add_argument("--rate", type=csv_of(float, "rate"), help="server: offered load in queries/s, e.g. 50,100")
    s.add_argument("--find-max-rate", action="store_true",
                   help="server: search for the highest rate whose p99 stays under --p99-bound")
    s.add_argument("--p99-bound", type=float, metavar="MS",
                   help="server: p99 latency bound in ms; a run over it is INVALID")
    s.add_argument("--burstiness", type=float,
                   help="server: gamma shape of the arrivals (1 = Poisson, default; <1 burstier)")
    s.add_argument("--output-len", type=csv_of(int, "output length"),
                   help="generate: new tokens per request, e.g. 128 (input length is --seq-len)")
    t = p.add_argument_group("train scenario (-s train: whole optimizer steps)")
    t.add_argument("--grad-accum", type=csv_of(int, "--grad-accum"), metavar="K",
                   help="micro-batches per optimizer step (default 1); samples are counted per step")
    t.add_argument("--optimizer", type=names_of, help="adamw (default) or sgd")
    t.add_argument("--precision", type=names_of,
                   help="fp32 (default), amp-bf16 (bf16 autocast, fp32 master weights), bf16 (pure), "
                        "auto-cast (the Neuron compiler's)")
    t.add_argument("--dp", type=csv_of(int, "--dp"), metavar="N",
                   help="data-parallel ranks through torch's elastic launcher, e.g. 1,2 (default 1)")
    e = p.add_argument_group("an LLM server over HTTP (-t endpoint: any OpenAI-compatible API)")
    e.add_argument("--url", help="the API's base URL, e.g. http://127.0.0.1:8000/v1 (implies -t endpoint)")
    e.add_argument("--api", choices=("completions", "chat"), help="the API to drive (default completions)")
    e.add_argument("--concurrency", type=csv_of(int, "concurrency"),
                   help="throughput: requests in flight, e.g. 1,4,16")
    e.add_argument("--tokenizer", metavar="DIR", help="the served model's tokenizer, a local directory "
                   "(default: -m's name, from the local cache); prompts are exactly --seq-len tokens by it")
    e.add_argument("--dataset", metavar="FILE", help="prompts from a local JSONL/JSON file ({'prompt': ...} "
                   "or ShareGPT 'conversations') instead of synthetic ones")
    e.add_argument("--slo", help="bounds a good request meets, e.g. ttft=500ms,tpot=50ms,e2e=5s (goodput; "
                   "--find-max-rate searches on them)")
    e.add_argument("--api-key-env", metavar="NAME", help="the environment variable that holds the API key "
                   "(the key is never written anywhere)")
    e.add_argument("--launch", metavar="CMD", help="start the server with CMD first (log kept in the run "
                   "directory; its process group stopped at the end), e.g. 'vllm serve MODEL --port 8000'")
    e.add_argument("--launch-timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for the launched server to answer (default 600, or "
                        "$VLLM_NEURON_COMPILATION_TIMEOUT + 300 when that is set)")
    m = p.add_argument_group("measurement")
    m.add_argument("--warmup", type=float, help="warm-up seconds (recorded, not counted)")
    m.add_argument("--duration", type=float, help="minimum measured seconds per cell (over all its rounds)")
    m.add_argument("--max-duration", type=float, help="maximum measured seconds per cell (default 3x --duration)")
    m.add_argument("--min-samples", type=int, help="minimum measured requests per cell")
    m.add_argument("--target-ci", type=float,
                   help="stop early once the p50 95%% CI is within +-this fraction (0 disables)")
    m.add_argument("--trim", type=float, help="throughput: seconds trimmed from each end")
    m.add_argument("--cell-timeout", type=float, help="seconds before a hung cell is failed")
    m.add_argument("--rounds", type=int_flag("--rounds"),
                   help="measure every cell in N windows spread over the run (round 1 of every cell, "
                        "then round 2, ...); its CIs then include the variance between rounds")
    m.add_argument("--max-rounds", type=int_flag("--max-rounds"),
                   help="more rounds, up to this many, while a cell's interval is wider than --target-ci "
                        "(default 2 x --rounds)")
    m.add_argument("--round-budget", type=float, metavar="S",
                   help="seconds of measuring the run may spend, over all its cells, on rounds beyond the "
                        "planned ones (the widest intervals first; default: no limit but --max-rounds)")
    m.add_argument("--fresh-process-per-round", action="store_true", default=None,
                   help="with --rounds: every round in new worker processes (default: kept)")
    m.add_argument("--profile", action="store_true", default=None,
                   help="after each cell's measurement, one untimed pass under the target's profiler "
                        "(torch.profiler; Neuron's runtime capture; a vLLM server's): files in the run "
                        "directory's profiles/<cell_id>/, the top operators in the row")
    m.add_argument("--keep-freed-memory", action="store_true", default=None,
                   help="CPU/CUDA workers: glibc malloc keeps freed memory instead of returning it "
                        "to the kernel (steadier eager-CPU latency; recorded in the row)")


FORMATS = ("table", "csv", "md", "json")  # bench.render.formats prints each; parquet writes a file


def add_format(p: argparse.ArgumentParser, extra: tuple[str, ...] = (), help: str = "output format") -> None:
    p.add_argument("--format", choices=(*FORMATS, *extra), default="table", help=help)


def add_run_options(p: argparse.ArgumentParser, executors: bool = True) -> None:
    """Where results and artifacts go, what the rows record, and (run, resume) where cells run."""
    p.add_argument("--cache-dir", help="compiled-artifact cache (default ~/.cache/trnbench/artifacts)")
    p.add_argument("--instance-type", help="record this instance type instead of the DMI product name")
    p.add_argument("--worker-memory-gb", type=float, help="cap each worker's memory (address space)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_format(p, help="final table format")
    if not executors:
        return
    p.add_argument("--price-per-hour", metavar="USD", help="the instance's hourly price, for cost_per_1m_inf "
                   "(default: results/reference/instance-prices.csv for the instance type)")
    x = p.add_argument_group("where the cells run (default: here, one after another)")
    x.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="ray: every cell is a Ray task on a cluster (pip install 'trnbench[ray]')")
    x.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to use, e.g. auto or HEAD_IP:6379 (default: $RAY_ADDRESS, "
                        "else a new local Ray instance)")
    x.add_argument("--on", type=names_of, metavar="TYPES",
                   help="run every cell once on each instance type, e.g. inf2.xlarge,trn1.32xlarge "
                        "(nodes advertise the resource instance:TYPE)")
    x.add_argument("--retries", type=int,
                   help="re-run a cell whose Ray process or node died this many times (default 1), "
                        "then record it as failed")


def add_verdict_options(p: argparse.ArgumentParser) -> None:
    """How a comparison decides (compare, ab): the metrics, the threshold, alpha, the gate."""
    p.add_argument("--metric", help="comma-separated: p50, p90, p95, p99, mean, throughput; ttft, tpot "
                   "for generate and endpoint rows (default p50,p99,throughput)")
    p.add_argument("--threshold", default="5%", help="smallest change that counts, e.g. 5%% or 0.05 (default 5%%)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (Holm; default 0.05)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit status 1 when a cell is significantly slower than the threshold, relative to "
                        "the run-wide shift, or broke")


def glue_compiler_args(argv: list[str]) -> list[str]:
    """`--compiler-args '--auto-cast=matmult'` -> `--compiler-args=--auto-cast=matmult`.

    argparse takes a value that starts with '-' for an option; compiler flags always do.
    """
    out: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok in ("--compiler-args", "--b"):
            nxt = next(it, None)
            out.append(tok if nxt is None else f"{tok}={nxt}")
        else:
            out.append(tok)
    return out
