"""The bad-input battery: every user mistake is one clear line, exit status 2, nothing written."""

from __future__ import annotations

import json

import pytest

from bench.cli import main

GOOD_SUITE = '[[sweep]]\nmodels = ["tiny-bert"]\n'


def _suite(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return ["run", "--suite", str(path)]


def _card_dir(tmp_path, monkeypatch, text):
    d = tmp_path / "cards"
    d.mkdir()
    (d / "bad-card.toml").write_text(text)
    monkeypatch.setenv("TRNBENCH_MODELS", str(d))
    return ["run", "-m", "tiny-bert"]


def _newer_run(tmp_path):
    from bench.results.schema import SCHEMA_VERSION
    from bench.results.store import RunStore

    store = RunStore.create(tmp_path / "runs", {"name": "x", "cells": []}, {})
    meta = json.loads((store.path / "run.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    (store.path / "run.json").write_text(json.dumps(meta))
    return str(store.path)


CASES = {
    "unknown model": (["run", "-m", "nope"], "unknown model 'nope'"),
    "zero rate": (["run", "-m", "tiny-bert", "-s", "server", "--rate", "0"], "rate must be a positive number"),
    "negative rate": (["run", "-m", "tiny-bert", "-s", "server", "--rate", "-5"], "rate must be a positive number"),
    "price not a number": (["run", "-m", "tiny-bert", "--price-per-hour", "cheap"], "--price-per-hour must be"),
    "unknown target": (["run", "-m", "tiny-bert", "-t", "tpu"], "unknown target 'tpu'"),
    "unknown compiler": (["run", "-m", "tiny-bert", "-c", "xla"], "unknown compiler 'xla' for target cpu"),
    "unknown scenario": (["run", "-m", "tiny-bert", "-s", "offline"], "unknown scenario 'offline'"),
    "unknown suite": (["run", "--suite", "nope"], "unknown suite 'nope'"),
    "unknown dtype": (["run", "-m", "tiny-bert", "-d", "int4"], "unknown dtype 'int4'"),
    "batch size 0": (["run", "-m", "tiny-bert", "-b", "0"], "batch size must be a positive integer, got 0"),
    "batch size negative": (["run", "-m", "tiny-bert", "-b", "-3"], "batch size must be a positive integer, got -3"),
    "batch size not a number": (["run", "-m", "tiny-bert", "-b", "x"], "batch size must be an integer, got 'x'"),
    "batch size empty": (["run", "-m", "tiny-bert", "-b", ","], "batch size: empty list"),
    "batch size float": (["run", "-m", "tiny-bert", "-b", "1.5"], "batch size must be an integer, got '1.5'"),
    "seq len beyond limit": (["run", "-m", "tiny-bert", "--seq-len", "100000"], "beyond tiny-bert's limit of 128"),
    "seq len 0": (["run", "-m", "tiny-bert", "--seq-len", "0"], "must be a positive integer, got 0"),
    "image size not a number": (["run", "-m", "tiny-vit", "--image-size", "big"], "image size must be an integer"),
    "negative duration": (["run", "-m", "tiny-bert", "--duration", "-1"], "min_duration_s must be a number >= 0"),
    "min samples 0": (["run", "-m", "tiny-bert", "--min-samples", "0"], "min_samples must be an integer >= 1"),
    "max below min duration": (["run", "-m", "tiny-bert", "--duration", "5", "--max-duration", "1"],
                               "max_duration_s must be >= min_duration_s"),
    "negative target ci": (["run", "-m", "tiny-bert", "--target-ci", "-0.1"], "target_ci must be a number >= 0"),
    "zero cell timeout": (["run", "-m", "tiny-bert", "--cell-timeout", "0"], "cell_timeout_s must be a number > 0"),
    "duration not a number": (["run", "-m", "tiny-bert", "--duration", "soon"], "invalid float value: 'soon'"),
    "nothing to run": (["run"], "give --suite NAME or -m MODEL"),
    "suite path missing": (["run", "--suite", "/no/such/suite.toml"], "suite file not found"),
    "weights dir missing": (["run", "-m", "tiny-bert", "--weights", "/no/such/dir"], "unknown weights '/no/such/dir'"),
    "pretrained offline": (["run", "-m", "bert-base-uncased", "--weights", "pretrained"],
                           "cannot load pretrained weights 'google-bert/bert-base-uncased'"),
    "no pretrained id": (["run", "-m", "tiny-bert", "--weights", "pretrained"], "has no pretrained id"),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "unknown option": (["run", "-m", "tiny-bert", "--turbo"], "unrecognized arguments: --turbo"),
    "bad format": (["show", "x", "--format", "xml"], "invalid choice: 'xml'"),
    "show missing path": (["show", "/no/such/run"], "no such results directory"),
    "show not a results dir": (lambda t, m: ["show", str(t)], "not a results directory"),
    "show newer schema": (lambda t, m: ["show", _newer_run(t)], "written by a newer trnbench"),
    "resume not a results dir": (lambda t, m: ["resume", str(t)], "not a results directory"),
    "suite malformed toml": (lambda t, m: _suite(t, "[[sweep]\nmodels = 1"), "malformed TOML"),
    "suite unknown key": (lambda t, m: _suite(t, GOOD_SUITE + "batchsizes = [1]\n"),
                          "unknown key 'batchsizes' in [[sweep]] #1 (line 3)"),
    "suite wrong type": (lambda t, m: _suite(t, GOOD_SUITE + 'batch_sizes = ["one"]\n'),
                         "batch_sizes must be a list of int"),
    "suite no models": (lambda t, m: _suite(t, "[[sweep]]\nbatch_sizes = [1]\n"), "'models' is required"),
    "suite no sweep": (lambda t, m: _suite(t, 'description = "empty"\n'), "needs at least one [[sweep]]"),
    "suite measure unknown key": (lambda t, m: _suite(t, "[measure]\nwarmup = 1\n" + GOOD_SUITE),
                                  "unknown key 'warmup' in [measure] (line 2)"),
    "suite measure bad value": (lambda t, m: _suite(t, "[measure]\nmin_samples = -5\n" + GOOD_SUITE),
                                "min_samples must be an integer >= 1"),
    "suite measure keep not bool": (lambda t, m: _suite(t, '[measure]\nkeep_freed_memory = "yes"\n' + GOOD_SUITE),
                                    "keep_freed_memory must be true or false, got 'yes'"),
    "suite unknown model": (lambda t, m: _suite(t, '[[sweep]]\nmodels = ["gpt5"]\n'), "unknown model 'gpt5'"),
    "card unknown key": (lambda t, m: _card_dir(t, m, 'model_type = "bert"\ntask = "base"\ninput = "tokens"\nlayers = 3\n'),
                         "bad-card.toml: unknown key 'layers' in model card"),
    "card bad task": (lambda t, m: _card_dir(t, m, 'model_type = "bert"\ntask = "translate"\ninput = "tokens"\n'),
                      "bad-card.toml: unknown task 'translate'"),
    # -s train (issue 26): what cannot train is refused before anything runs
    "train on the endpoint": (["run", "-m", "served", "--url", "http://127.0.0.1:9/v1", "-s", "train"],
                              "target endpoint cannot time a training step"),
    "grad accum 0": (["run", "-m", "tiny-bert", "-s", "train", "--grad-accum", "0"],
                     "--grad-accum must be a positive integer, got 0"),
    "dp above the cores": (["run", "-m", "tiny-bert", "-s", "train", "--dp", "4096"],
                           "--dp 4096 is more ranks than this host has CPU cores"),
    "trace with train": (["run", "-m", "tiny-bert", "-t", "neuron", "-c", "trace", "-s", "train"],
                         "trace on neuron is inference-only"),
    "jit with train": (["run", "-m", "tiny-bert", "-c", "jit", "-s", "train"], "jit on cpu is inference-only"),
    "xla off trn1": (["run", "-m", "tiny-bert", "-t", "neuron", "-c", "xla", "-s", "train"],
                     "-c xla trains through PyTorch/XLA on Trn1 with Neuron 2.29 or earlier"),
    "xla for inference": (["run", "-m", "tiny-bert", "-t", "neuron", "-c", "xla"],
                          "-c xla is Trn1's PyTorch/XLA training flow"),
    "unknown optimizer": (["run", "-m", "tiny-bert", "-s", "train", "--optimizer", "lamb"],
                          "unknown optimizer 'lamb'"),
    "auto-cast off neuron": (["run", "-m", "tiny-bert", "-s", "train", "--precision", "auto-cast"],
                             "--precision auto-cast is the Neuron compiler's"),
    "card with no training task": (lambda tmp_path, mp: [*_card_dir(tmp_path, mp, 'name = "base-bert"\nmodel_type = '
                                   '"bert"\ntask = "base"\ninput = "tokens"\n')[:2], "base-bert", "-s", "train"],
                                   "base-bert (task base) has no training task"),
    # argparse abbreviations are off: --out is not --output-len, --dur not --duration
    "compile --out is no abbreviation": (["compile", "-m", "tiny-bert", "-t", "neuron", "--out", "DIR"],
                                         "unrecognized arguments: --out DIR"),
    "run --dur is no abbreviation": (["run", "-m", "tiny-bert", "--dur", "1"], "unrecognized arguments: --dur"),
    "card malformed toml": (lambda t, m: _card_dir(t, m, 'model_type = "bert\n'), "bad-card.toml: malformed TOML"),
    "card bad shape": (lambda t, m: _card_dir(t, m, 'model_type = "bert"\ntask = "base"\ninput = "tokens"\n'
                                              '[shape]\nseq_len = "long"\n'), "[shape] seq_len must be a positive integer"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(name, tmp_path, monkeypatch, capsys):
    args, message = CASES[name]
    if callable(args):
        args = args(tmp_path, monkeypatch)
    out = tmp_path / "out"
    if args[0] == "run":
        args = [*args, "--out", str(out)]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_the_battery_is_big_enough():
    assert len(CASES) >= 25


def test_no_parser_takes_abbreviations():
    """Every subcommand's parser (and --b's) is made with allow_abbrev=False."""
    import argparse

    from bench.cli import make_parser

    def parsers(p: argparse.ArgumentParser):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    found = list(parsers(make_parser()))
    assert len(found) >= 12 and all(p.allow_abbrev is False for p in found), [p.prog for p in found if p.allow_abbrev]
