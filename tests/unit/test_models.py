"""Model cards: every card parses, states its true size, and every tiny variant runs."""

from __future__ import annotations

import pytest

from bench import models
from bench.errors import UsageError

REQUIRED = ["bert-base-uncased", "roberta-base", "distilbert-base-uncased", "vit-base-patch16-224",
            "resnet50", "gpt2", "llama-3.2-1b"]
TINY = sorted(name for name, c in models.registry().items() if c.tiny)


def test_required_cards_and_a_tiny_variant_per_family():
    cards = models.registry()
    for name in REQUIRED:
        assert name in cards
    families = {c.family for c in cards.values() if not c.tiny}
    tiny_families = {c.family for c in cards.values() if c.tiny}
    assert families <= tiny_families


@pytest.mark.parametrize("name", sorted(models.registry()))
def test_card_params_match_the_architecture(name):
    card = models.card(name)
    assert card.params == models.count_params(card)


@pytest.mark.parametrize("name", TINY)
def test_tiny_variant_builds_and_runs(name):
    import torch

    card = models.card(name)
    shape = card.resolve_shape(None, None)
    module = models.build(card)
    inputs = models.make_inputs(card, 2, shape["seq_len"], shape["image_size"])
    with torch.inference_mode():
        out = module(*inputs)
    assert isinstance(out, torch.Tensor) and out.shape[0] == 2
    assert torch.isfinite(out).all()
    again = models.make_inputs(card, 2, shape["seq_len"], shape["image_size"])
    assert all(torch.equal(a, b) for a, b in zip(inputs, again))  # fixed seed
    with torch.inference_mode():
        assert torch.equal(models.build(card)(*inputs), out)  # seeded random weights


def test_sequence_length_beyond_the_model_limit_is_a_usage_error():
    with pytest.raises(UsageError, match="beyond"):
        models.card("tiny-bert").resolve_shape(4096, None)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown model 'nope'.*tiny-bert"):
        models.card("nope")


def test_pretrained_without_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="cannot load pretrained weights 'google-bert/bert-base-uncased'"):
        models.build(models.card("bert-base-uncased"), weights="pretrained")
    with pytest.raises(UsageError, match="cannot load pretrained weights"):
        models.build(models.card("tiny-bert"), weights=str(tmp_path))  # not a model directory
