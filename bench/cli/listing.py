"""`trnbench list models|suites|targets`."""

from __future__ import annotations

import argparse

from bench.cli.options import add_format

MODEL_COLUMNS = ["model", "family", "task", "input", "params", "default shape", "pretrained"]


def add(sub) -> None:
    lst = sub.add_parser("list", help="list models, suites or targets")
    lst.add_argument("what", choices=("models", "suites", "targets"))
    add_format(lst)
    lst.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from bench.render.tables import print_rows

    if args.what == "models":
        from bench import models

        rows = []
        for c in sorted(models.registry().values(), key=lambda c: (c.tiny, c.family, c.name)):
            params = c.params if c.params is not None else models.count_params(c)
            shape = (f"seq {c.shape.get('seq_len', 128)}" if c.input != "image"
                     else f"{c.shape.get('image_size', 224)}px")
            rows.append({"model": c.name, "family": c.family, "task": c.task, "input": c.input,
                         "params": f"{params / 1e6:.2f}M", "default shape": shape,
                         "pretrained": c.pretrained or ""})
        print_rows(rows, args.format, columns=MODEL_COLUMNS)
    elif args.what == "suites":
        from bench.plan.suite import find_suite, list_suites
        from bench.tomlfile import read_toml

        rows = [{"suite": n, "description": read_toml(find_suite(n)).get("description", "")}
                for n in list_suites()]
        print_rows(rows, args.format, columns=["suite", "description"])
    else:
        from bench import targets

        rows = []
        for name in targets.names():
            t = targets.get(name)
            a = t.availability()
            rows.append({"target": name, "compilers": ", ".join(t.compilers), "dtypes": ", ".join(t.dtypes),
                         "available": "yes" if a.ok else "no", "reason": a.reason})
        print_rows(rows, args.format, columns=["target", "compilers", "dtypes", "available", "reason"])
    return 0
