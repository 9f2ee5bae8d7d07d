"""Fixtures for endpoint tests: a tokenizer trained here (no hub), a tiny random Llama, runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from bench import Plan, run_plan
from bench.plan.cell import Measure
from bench.results.store import read_rows
from bench.targets.endpoint.options import Endpoint
from tests.support.paths import SUPPORT

LLM_STANDIN = SUPPORT / "llm_standin.py"

FAST = Measure(rounds=1, warmup_s=0.2, min_duration_s=1.0, max_duration_s=3.0, min_samples=20)


def train_tokenizer(out: Path) -> Path:
    """A byte-level BPE with 512 tokens, trained on made-up words with the `tokenizers` library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(400)] + "the quick brown fox jumps over a lazy dog".split()
    corpus = [" ".join(words[i:i + 12]) for i in range(0, len(words), 3)] * 5
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=512, special_tokens=["<unk>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    fast.save_pretrained(str(out))
    return out


def tiny_llama(out: Path, tokenizer_dir: Path) -> Path:
    """A 2-layer, hidden-64 Llama with random (seeded) weights and the local tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_endpoint(url: str, tok: Path, out: Path, *, scenarios=("latency",), model: str = "standin",
                 measure: Measure = FAST, **kw) -> list[dict]:
    spec = Endpoint(url=url, tokenizer=str(tok), slo=kw.pop("slo", ()), dataset=kw.pop("dataset", None))
    plan = Plan.from_grid(models=[model], targets=["endpoint"], scenarios=list(scenarios),
                          seq_lens=[kw.pop("seq_len", 16)], output_lens=[kw.pop("output_len", 8)],
                          options=spec, measure=measure, **kw)
    run_dir = run_plan(plan, out, progress=False)
    return read_rows(run_dir)


class StandinProcess:
    """The stand-in server in a process of its own, as a real server would be (not under pytest's GIL)."""

    def __init__(self, *args: str, **kw):
        self.port = free_port()
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
        self.proc = subprocess.Popen([sys.executable, str(LLM_STANDIN), f"--port={self.port}", "--lifetime=120",
                                      *flags, *args], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == str(self.port)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    @property
    def arrivals(self) -> list[int]:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/arrivals").json()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
