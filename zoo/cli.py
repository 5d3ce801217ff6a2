"""The ``zoo`` command line: ``zoo models``, ``zoo data check``, ``zoo train``, ``zoo eval``, ``zoo export``, ``zoo push``.

Errors a user can make end with one clear message (exit code 2), not a traceback; set
``ZOO_DEBUG=1`` to see the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch


def _model_rows(filter: str, with_flops: bool) -> list[dict[str, str]]:
    import zoo
    from zoo._registry import get_arch_pretrained_cfgs
    from zoo.utils import count_flops, count_params

    rows = []
    for name in zoo.list_models(filter or ""):
        with torch.device("meta"):  # shapes only: no memory, no compute
            model = zoo.create_model(name)
        cfg = model.pretrained_cfg
        row = {
            "model": name,
            "params (M)": f"{count_params(model) / 1e6:.2f}",
            "input (C,T,H,W)": "x".join(str(v) for v in cfg.input_size),
        }
        if with_flops:
            row["GFLOPs (MACs)"] = f"{count_flops(model, cfg.input_size)['gflops']:.2f}"
        tags = [t for t, c in get_arch_pretrained_cfgs(name).items() if t and c.has_weights]
        row["pretrained tags"] = ", ".join(tags) or "-"
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """A plain-text table of ``rows`` (dicts with the same keys)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys), "  ".join("-" * widths[k] for k in keys)]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    rows = _model_rows(args.filter, with_flops=not args.no_flops)
    if not rows:
        raise UserError(f"no registered model matches {args.filter!r}; try `zoo models` for all of them")
    print(format_table(rows))
    if not args.no_flops:
        print("\nGFLOPs are multiply-adds per clip at the model's default input, as video papers count them.")
    return 0


class UserError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models with parameters, GFLOPs and pretrained tags")
    p.add_argument("filter", nargs="?", default="", help="fnmatch wildcard, e.g. 'r2plus1d_*'")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOPs column")
    p.set_defaults(func=cmd_models)

    from zoo.train.cli import add_train_commands

    add_train_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, FileNotFoundError) as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        print(f"zoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
