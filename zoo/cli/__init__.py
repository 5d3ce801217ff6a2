"""The ``zoo`` command line: models, data check, train, eval, flow, export, push.

Errors a user can make end with one clear message (exit code 2), not a traceback; set
``ZOO_DEBUG=1`` to see the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from .common import UserError, format_table

__all__ = ["main", "build_parser", "UserError", "format_table"]


def _model_rows(filter: str, with_flops: bool) -> list[dict[str, str]]:
    from .._factory import create_model
    from .._registry import get_arch_pretrained_cfgs, list_models
    from ..utils import count_flops, count_params

    rows = []
    for name in list_models(filter or ""):
        with torch.device("meta"):  # shapes only: no memory, no compute
            model = create_model(name)
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


def cmd_models(args: argparse.Namespace) -> int:
    rows = _model_rows(args.filter, with_flops=not args.no_flops)
    if not rows:
        raise UserError(f"no registered model matches {args.filter!r}; try `zoo models` for all of them")
    print(format_table(rows))
    if not args.no_flops:
        print("\nGFLOPs are multiply-adds per clip at the model's default input, as video papers count them.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models with parameters, GFLOPs and pretrained tags")
    p.add_argument("filter", nargs="?", default="", help="fnmatch wildcard, e.g. 'r2plus1d_*'")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOPs column")
    p.set_defaults(func=cmd_models)

    from ..data.check import add_subparser as add_data_commands
    from .train import add_train_commands

    add_train_commands(sub)
    add_data_commands(sub)

    p = sub.add_parser("export", help="write a checkpoint as a Hub folder (weights, config, recipe, model card)")
    p.add_argument("checkpoint", help="a training checkpoint written by `zoo train`")
    p.add_argument("out_dir", help="folder to write (model.safetensors, config.json, recipe.yaml, README.md)")
    p.add_argument("--card", default=None, help="weights card (YAML path or registered name) for the model card")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("push", help="create a Hub model repo and upload an exported folder in one commit")
    p.add_argument("out_dir", help="a folder written by `zoo export`")
    p.add_argument("repo_id", help="org/name on the Hugging Face Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    p.add_argument("-m", "--message", default="Add model", help="commit message")
    p.set_defaults(func=cmd_push)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from .._export import export_checkpoint

    result = export_checkpoint(args.checkpoint, args.out_dir, card=args.card)
    print(f"wrote {result.folder}: {', '.join(sorted(str(f) for f in result.files))}")
    print(f"model.safetensors sha256 {result.sha256}, {result.size} bytes (for the weights card)")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .._export import push_folder

    commit = push_folder(args.out_dir, args.repo_id, private=args.private, revision=args.revision,
                         commit_message=args.message)
    print(f"pushed {args.out_dir} to {args.repo_id}: {getattr(commit, 'commit_url', commit)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, OSError) as e:  # FileNotFoundError and Hub HTTP errors are OSErrors
        if os.environ.get("ZOO_DEBUG"):
            raise
        print(f"zoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130
