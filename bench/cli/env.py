"""`trnbench env` (host, accelerators, versions, why a target is unavailable) and `trnbench doctor`."""

from __future__ import annotations

import argparse


def add(sub) -> None:
    env = sub.add_parser("env", help="host, accelerators, software versions, and why a target is unavailable")
    env.add_argument("--instance-type")
    env.add_argument("--format", choices=("text", "json"), default="text")
    env.set_defaults(func=cmd_env)

    doc = sub.add_parser("doctor", help="one screen on what a first run will do on this host, and why "
                                        "(with a Neuron device: compiles and runs tiny-bert)")
    doc.add_argument("--bundle", metavar="FILE",
                     help="also write FILE (.tar.gz): neuron-ls in both forms, a neuron-monitor report, the "
                          "compile's work-directory listing and log, `pytest -m neuron` output")
    doc.add_argument("--no-check", action="store_true", help="do not compile and run tiny-bert")
    doc.set_defaults(func=cmd_doctor)


def cmd_env(args: argparse.Namespace) -> int:
    import json

    from bench import targets
    from bench.results import env

    info = env.capture(args.instance_type)
    info["targets"] = {}
    for name in targets.names():
        a = targets.get(name).availability()
        info["targets"][name] = {"available": a.ok, "reason": a.reason}
    if args.format == "json":
        print(json.dumps(info, indent=1, default=str))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if k != "targets":
            print(f"{k:<{width}}  {v if v not in ('', None) else '-'}")
    for name, a in info["targets"].items():
        state = ("available" + (f" ({a['reason']})" if a["reason"] else "")) if a["available"] \
            else "unavailable: " + a["reason"]
        print(f"{'target ' + name:<{width}}  {state}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bench.doctor import run

    return run(bundle=args.bundle, do_check=not args.no_check)
