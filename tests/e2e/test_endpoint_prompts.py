"""Synthetic endpoint prompts of an exact token length with any tokenizer, and through the
server's own tokenizer (`POST /tokenize`) when none is here (issue 24, item 6).

The tokenizer here is a byte-level BPE trained on four sentences (vocabulary 1000 asked,
a few hundred learnt): decode -> encode merges across the joins on nearly every try, the
case where every endpoint cell used to fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.errors import UsageError
from bench.targets.endpoint import prompts
from bench.targets.endpoint.options import Endpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from tests.support.endpoint import StandinProcess, free_port
from tests.support.llm_standin import Standin
from tests.support.paths import ROOT

NO_LOCAL = "trnbench-test/no-local-tokenizer"  # a served name with no tokenizer on this machine
SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "A benchmark harness times what users run: inference, generation and serving.",
             "Every result is one row of a tidy table, compared across runs and machines.",
             "Tokenizers split text into pieces; byte-level BPE merges frequent pairs of bytes."]


def train_tiny(out: Path) -> Path:
    """A byte-level BPE, vocabulary up to 1000, trained on SENTENCES with the `tokenizers` library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(SENTENCES * 3, trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("tiny") / "tok")


def _count(tok, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False))


# -- (a) exact lengths with a tiny BPE -------------------------------------------------------


def test_a_tiny_bpe_gets_exactly_16_32_64_tokens_for_many_seeds(tiny, monkeypatch):
    tok = prompts.load_tokenizer(str(tiny))
    assert 300 < len(tok) <= 1000
    repaired = []
    real_repair = prompts._repair
    monkeypatch.setattr(prompts, "_repair", lambda *a: repaired.append(a[2]) or real_repair(*a))
    for seq_len in (16, 32, 64):
        for seed in range(12):
            made = prompts.synthetic(tok, 4, seq_len, 8, seed=seed)
            assert [_count(tok, p.text) for p in made] == [seq_len] * 4, (seq_len, seed)
            assert {p.tokens for p in made} == {seq_len} and len({p.text for p in made}) == 4
    # decode -> encode alone does not settle for many of these (the bug's condition: the old code failed them)
    assert set(repaired) == {16, 32, 64} and len(repaired) > 12 * 3
    assert prompts.synthetic(tok, 4, 32, 8, seed=3) == prompts.synthetic(tok, 4, 32, 8, seed=3)  # seeded


def test_transformers_loads_the_same_tiny_tokenizer_and_it_is_exact_too(tiny):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(tiny / "tokenizer.json"))
    for seq_len in (1, 7, 32):
        made = prompts.synthetic(tok, 6, seq_len, 4, seed=seq_len)
        assert {_count(tok, p.text) for p in made} == {seq_len}


# -- (b) any length from 1 to 128 ------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq_len=st.integers(1, 128), seed=st.integers(0, 2**32 - 1))
def test_every_length_1_to_128_is_exact(tiny, seq_len, seed):
    tok = prompts.load_tokenizer(str(tiny))
    made = prompts.synthetic(tok, 2, seq_len, 4, seed=seed)
    assert [(_count(tok, p.text), p.tokens) for p in made] == [(seq_len, seq_len)] * 2


def test_an_unreachable_length_gives_the_nearest_and_says_so():
    class Pairs:
        """Every text is an even number of tokens: an odd length is out of reach."""

        all_special_ids: list[int] = []

        def __len__(self) -> int:
            return 26

        def decode(self, ids):
            return "".join(chr(97 + i) * 2 for i in ids)

        def encode(self, text, add_special_tokens=False):
            return [ord(c) - 97 for c in text] + ([0] if len(text) % 2 else [])

    (p,) = prompts.synthetic(Pairs(), 1, 7, 4)
    assert p.tokens in (6, 8) and len(Pairs().encode(p.text)) == p.tokens  # the nearest, recorded; no error


# -- through the server's /tokenize ----------------------------------------------------------


def test_prompts_through_vllm_shaped_tokenize_and_detokenize_are_exact(tiny):
    local = prompts.load_tokenizer(str(tiny))
    with Standin(model=NO_LOCAL, tokenizer=str(tiny)) as s:
        spec = Endpoint(url=s.url)
        tok, label = prompts.resolve(spec, NO_LOCAL)
        assert label == "server:/tokenize (vLLM)" and isinstance(tok, prompts.ServerTokenizer)
        made = prompts.synthetic(tok, 3, 24, 4)
        assert [_count(local, p.text) for p in made] == [24] * 3
        assert made == prompts.synthetic(tok, 3, 24, 4)  # seeded: every client process sends these
        assert s.requests == 0  # /tokenize is not a completion
        _, label = prompts.resolve(Endpoint(url=s.url, tokenizer=str(tiny)), NO_LOCAL)
        assert label == str(tiny)  # --tokenizer wins; the server is not asked


class TGIStandin:
    """TGI's `POST /tokenize` only (huggingface/text-generation-inference router/src/server.rs):
    {"inputs": "..."} -> [{"id", "text", "start", "stop"}], with a BOS it adds at (0, 0)."""

    def __init__(self, tokenizer_dir: Path):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        bos = tok.token_to_id("<s>")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/tokenize" or "inputs" not in body:
                    data, code = b'{"error": "Input validation error"}', 422
                else:
                    text = body["inputs"]
                    enc = tok.encode(text, add_special_tokens=False)
                    out = [{"id": bos, "text": "", "start": 0, "stop": 0}] + [
                        {"id": i, "text": text[a:b], "start": a, "stop": b} for i, (a, b) in zip(enc.ids, enc.offsets)]
                    data, code = json.dumps(out).encode(), 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_prompts_through_tgi_shaped_tokenize_are_exact(tiny):
    local = prompts.load_tokenizer(str(tiny))
    server = TGIStandin(tiny)
    try:
        tok = prompts.ServerTokenizer.probe(server.url, "tgi")
        assert tok is not None and tok.label == "server:/tokenize (TGI)"
        assert tok.encode("hello world") == local.encode("hello world")  # the added BOS is not counted
        for seq_len in (1, 16, 40):
            made = prompts.synthetic(tok, 3, seq_len, 4)
            assert [_count(local, p.text) for p in made] == [seq_len] * 3, seq_len
    finally:
        server.stop()


# -- the command line: a served name with no tokenizer here ------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=180, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_a_run_without_a_local_tokenizer_builds_exact_prompts_through_the_server(tiny, tmp_path):
    s = StandinProcess(f"--model={NO_LOCAL}", f"--tokenizer={tiny}", first_ms=2, gap_ms=1)
    try:
        res = _cli("run", "-t", "endpoint", "--url", s.url, "-m", NO_LOCAL, "--seq-len", "32", "--output-len", "4",
                   "--duration", "0.5", "--min-samples", "5", "--no-progress", "--format", "json",
                   "--out", str(tmp_path / "out"))
        assert res.returncode == 0, res.stderr
        (row,) = json.loads(res.stdout)
        assert row["status"] != "failed", row.get("error")
        assert row["prompt_tokenizer"] == "server:/tokenize (vLLM)" and row["endpoint_tokenizer"] is None
        assert row["input_tokens"] == 32
        seen = httpx.get(f"http://127.0.0.1:{s.port}/prompt-tokens").json()
        assert len(seen) >= 5 and set(seen) == {32}  # every prompt the server received: exactly --seq-len
    finally:
        s.stop()


def test_no_local_tokenizer_and_no_tokenize_route_is_one_line_exit_2_nothing_written(tmp_path):
    s = StandinProcess(f"--model={NO_LOCAL}", first_ms=2, gap_ms=1)  # no --tokenizer: /tokenize is 404
    try:
        out = tmp_path / "out"
        res = _cli("run", "-t", "endpoint", "--url", s.url, "-m", NO_LOCAL, "--seq-len", "16", "--output-len", "4",
                   "--no-progress", "--out", str(out))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert "cannot load the tokenizer" in lines[0] and "/tokenize" in lines[0] and "--tokenizer" in lines[0]
        assert "Traceback" not in res.stderr
        assert not out.exists() or not any(out.iterdir())  # no run directory left
    finally:
        s.stop()
    with pytest.raises(UsageError, match="cannot load the tokenizer"):
        prompts.resolve(Endpoint(url=f"http://127.0.0.1:{free_port()}/v1"), NO_LOCAL)  # nothing answers at all
