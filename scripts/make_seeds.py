"""Write seeds/<card>.npz for every model card (or those named): the fixed-seed inputs at the
card's default shape and batch 1, the eager fp32 output on them, the weights' fingerprint.

    python scripts/make_seeds.py                 # every card (the large ones take a while)
    python scripts/make_seeds.py tiny-bert gpt2  # these

Run it when a card changes, or to re-check after a torch/transformers upgrade:
tests/e2e/test_seeds.py fails when a tiny card no longer builds what seeds/ holds.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np
    import torch

    from bench import models, seeds

    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cards", nargs="*", help="card names (default: all)")
    parser.add_argument("--out", default=str(ROOT / "seeds"))
    args = parser.parse_args()
    cards = args.cards or sorted(models.registry())
    for name in cards:
        t0 = time.perf_counter()
        card = models.card(name)
        shape = card.resolve_shape(None, None)
        module = models.build(card)
        inputs = models.make_inputs(card, 1, shape["seq_len"], shape["image_size"])
        with torch.inference_mode():
            out = module(*inputs)
        output = np.concatenate([t.detach().float().cpu().numpy().ravel()
                                 for t in ([out] if isinstance(out, torch.Tensor) else out)])
        meta = {"card": card.name, "card_digest": card.digest, "fingerprint": seeds.fingerprint(module),
                "batch_size": 1, **shape, "torch": torch.__version__, "transformers": version("transformers"),
                "created": time.strftime("%Y-%m-%d")}
        path = seeds.save(card.name, meta, tuple(t.numpy() for t in inputs), output, Path(args.out))
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: fingerprint {meta['fingerprint']}, "
              f"{output.size} output values ({'all' if output.nbytes <= seeds.FULL_OUTPUT_BYTES else 'summary'}), "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        del module
    return 0


if __name__ == "__main__":
    sys.exit(main())
