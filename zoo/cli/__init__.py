"""The ``zoo`` command line: models, data check, train, eval, flow, export, push, publish.

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


def _pretrained_rows(filter: str) -> list[dict[str, str]]:
    """One row per tag with weights: who publishes them, the dataset and top-1 its source states, size, input."""
    from .._cards import get_weights_card, list_weights_cards
    from .._factory import create_model
    from .._registry import get_pretrained_cfg, list_models
    from ..utils import count_params

    rows, carded = [], set(list_weights_cards())
    for name in list_models(filter or "", pretrained=True):
        cfg = get_pretrained_cfg(name)
        card = get_weights_card(name) if name in carded else None
        with torch.device("meta"):
            params = count_params(create_model(name))
        source = card.provider if card is not None and card.external else "motion-zoo" if card else "-"
        if card is None and cfg.hf_hub_id:
            source = cfg.hf_hub_id.split("/")[0]
        top1 = cfg.metrics.get("top1")
        rows.append({
            "tag": name,
            "source": source,
            "dataset": cfg.dataset or "-",
            "acc@1 (%)": f"{top1:.2f}" if top1 is not None else "-",
            "views": str(cfg.metrics.get("views", "-")),
            "params (M)": f"{params / 1e6:.2f}",
            "input (C,T,H,W)": "x".join(str(v) for v in cfg.input_size),
        })
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    if args.pretrained:
        rows = _pretrained_rows(args.filter)
        if not rows:
            raise UserError(f"no pretrained tag matches {args.filter!r}; try `zoo models --pretrained` for all of them")
        print(format_table(rows))
        print("\nacc@1: top-1 on the dataset's val split as the weights' source states it, under its views "
              "(clips x crops); the weights card of each tag (weights_cards/) gives the protocol.")
        return 0
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
    p.add_argument("--pretrained", action="store_true",
                   help="list the pretrained tags instead: source, dataset, acc@1, params, input")
    p.set_defaults(func=cmd_models)

    from ..data.check import add_subparser as add_data_commands
    from .train import add_train_commands

    add_train_commands(sub)
    add_data_commands(sub)

    p = sub.add_parser("export", help="write a checkpoint or a pretrained tag as a Hub folder (weights, config, "
                                      "recipe, model card)")
    p.add_argument("checkpoint", help="a training checkpoint written by `zoo train`, or a pretrained tag ARCH.TAG "
                                      "(`zoo models --pretrained`)")
    p.add_argument("out_dir", help="folder to write (model.safetensors, config.json, recipe.yaml, README.md)")
    p.add_argument("--card", default=None, help="weights card (YAML path or registered name) for the model card")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="run a model on video files and print the top-k classes")
    p.add_argument("model", help="a run checkpoint or folder (runs/NAME/last.pt), a tag (r3d_18.tv_k400), "
                                 "hf-hub:ORG/REPO or local-dir:PATH")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    p.add_argument("--topk", type=int, default=5, help="classes to print per video (default: 5)")
    p.add_argument("--clips", type=int, default=None, help="clips per video (default: the model's views)")
    p.add_argument("--json", action="store_true", help="print JSON (one object: video -> [{label, probability}])")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("push", help="create a Hub model repo and upload an exported folder in one commit")
    p.add_argument("out_dir", help="a folder written by `zoo export`")
    p.add_argument("repo_id", help="org/name on the Hugging Face Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    p.add_argument("-m", "--message", default="Add model", help="commit message")
    p.set_defaults(func=cmd_push)

    from .publish import add_publish_command

    add_publish_command(sub)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from .._export import export_checkpoint, export_tag
    from .._registry import list_models

    if not os.path.exists(args.checkpoint) and args.checkpoint in list_models(pretrained=True):
        if args.card is not None:
            raise UserError("--card is for checkpoints: a pretrained tag's weights card is its own")
        result = export_tag(args.checkpoint, args.out_dir)
    else:
        result = export_checkpoint(args.checkpoint, args.out_dir, card=args.card)
    print(f"wrote {result.folder}: {', '.join(sorted(str(f) for f in result.files))}")
    print(f"model.safetensors sha256 {result.sha256}, {result.size} bytes (for the weights card)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import json

    from ..inference import describe, load_model, predict

    model = load_model(args.model)
    results = {}
    for video in args.videos:
        if not os.path.isfile(video):
            raise UserError(f"no video file {video!r}")
        results[video] = predict(model, video, topk=args.topk, n_clips=args.clips)
    if args.json:
        print(json.dumps(describe(results), indent=1))
        return 0
    for video, predictions in results.items():
        print(video)
        for label, probability in predictions:
            print(f"  {probability:6.1%}  {label}")
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
