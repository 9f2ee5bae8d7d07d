"""The peer in `gate.py ttr --peer-python`: optimum-benchmark's inline launcher on the same
cell (bert-base-uncased b1 seq 128, CPU, PyTorch eager, random weights), at its defaults
(10 warm-up runs, then at least 10 iterations and 10 s). Run it with a Python that has
optimum-benchmark installed; it prints one JSON line: the latencies it measured.

The model is built from a local config (BertConfig's defaults are bert-base's), so no hub
is reached; optimum-benchmark's `no_weights` path then creates the random weights itself.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from optimum_benchmark import (
        Benchmark,
        BenchmarkConfig,
        InferenceConfig,
        InlineConfig,
        PyTorchConfig,
    )
    from transformers import BertConfig

    with tempfile.TemporaryDirectory() as model_dir:
        BertConfig(num_labels=2, architectures=["BertForSequenceClassification"]).save_pretrained(model_dir)
        config = BenchmarkConfig(
            name="peer",
            launcher=InlineConfig(),
            scenario=InferenceConfig(latency=True, memory=False,
                                     input_shapes={"batch_size": 1, "sequence_length": 128}),
            backend=PyTorchConfig(model=model_dir, device="cpu", no_weights=True, task="text-classification",
                                  torch_dtype="float32"),
        )
        report = Benchmark.launch(config)
    latency = report.forward.latency
    print(json.dumps({"values_s": [float(v) for v in latency.values]}))


if __name__ == "__main__":
    sys.exit(main())
