"""``cobre-mpi-io policy info DIR`` and ``cobre-mpi-io policy convert SRC DST --format F``.

Plain processes (no MPI): thin layers over
:func:`cobre_mpi_io.policy.convert.policy_info` and
:func:`cobre_mpi_io.policy.convert.convert_policy`.  Exit status 0 done,
1 error (the message names the file and field), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_policy_arguments", "policy_main"]


def positive_float(text: str) -> float:
    """A finite number > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value

EPILOG = """\
examples:
  cobre-mpi-io policy info out/policy
  cobre-mpi-io policy info cobre-run/policy --json
  cobre-mpi-io policy convert cobre-run/policy upgraded/policy --format cobre-0.18 --case case-v018
      (a Cobre 0.5.x policy for Cobre 0.18: values x its cost scale factor, from
       cobre-run/training/scaling_report.json, or --value-scale 1000)
  cobre-mpi-io policy convert out/policy for-cobre/policy --format cobre-0.18 --case case-v018
  cobre-mpi-io policy convert cobre18-run/policy ours --format spec

formats read: spec (this package), cobre-0.5 (Cobre 0.5.x), cobre-0.18 (Cobre >= 0.14: manifest.bin);
written: spec, cobre-0.18. DST must not exist; it appears complete or not at all."""


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``info`` and ``convert`` to the ``policy`` parser."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION",
                                help="info or convert")
    info = sub.add_parser("info", help="format, stages, cuts, dimensions, units and producer of a policy",
                          description="Print what a policy directory holds (every file is read and checked).",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("directory", type=Path, help="policy directory (OUT/policy, a checkpoint, Cobre's)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    conv = sub.add_parser("convert", help="rewrite a policy in another format (atomically)",
                          description="Read any policy this package reads and write it in --format.",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("source", type=Path, help="policy directory to read")
    conv.add_argument("destination", type=Path, help="directory to create (must not exist)")
    conv.add_argument("--format", required=True, choices=("spec", "cobre-0.18"), help="format to write")
    conv.add_argument("--case", type=Path, default=None,
                      help="Cobre 0.18 case (or a Cobre 0.18 policy of it) giving what 0.18 records and older "
                           "policies lack: policy graph, entity manifests, dates, cost scale factor")
    conv.add_argument("--value-scale", type=positive_float, default=None, metavar="X",
                      help="the source's stored values times X are costs, when the source does not record it "
                           "(a bare Cobre 0.5.x policy: its cost scale factor, 1000 by default)")
    conv.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def _print_info(info: dict[str, Any]) -> None:
    lines = [
        f"policy     {info['path']}",
        f"format     {info['format']} (written by {info['producer']})",
        f"stages     {info['num_stages']}, state dimension {info['state_dimension']}",
        f"cuts       {info['cuts']} ({info['active_cuts']} active), {info['bases']} bases",
        f"iterations {info['completed_iterations']}, final lower bound {info['final_lower_bound']}",
        f"units      {info['units']}",
    ]
    for s in info["stages"]:
        extra = (f", node {s['node_id']}, cost_scale_factor {s['cost_scale_factor']:g}"
                 if "cost_scale_factor" in s else "")
        lines.append(f"  stage {s['stage_id']:>3}: {s['cuts']} cuts ({s['active']} active), "
                     f"capacity {s['capacity']}{extra}")
    print("\n".join(lines))


def policy_main(args: argparse.Namespace) -> int:
    """Run ``policy info`` / ``policy convert``; returns the exit code (errors propagate as OutputError)."""
    from ..policy.convert import convert_policy, policy_info

    if args.policy_command == "info":
        if not args.directory.is_dir():
            print(f"cobre-mpi-io policy info: error: {args.directory} is not a directory", file=sys.stderr)
            return 2
        info = policy_info(args.directory)
        if args.json:
            print(json.dumps(info))
        else:
            _print_info(info)
        return 0
    if not args.source.is_dir():
        print(f"cobre-mpi-io policy convert: error: {args.source} is not a directory", file=sys.stderr)
        return 2
    convert_policy(args.source, args.destination, args.format, case=args.case, value_scale=args.value_scale)
    info = policy_info(args.destination)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {args.destination}: {info['format']}, {info['num_stages']} stages, {info['cuts']} cuts, "
              f"units {info['units']}")
    return 0
