"""``zoo publish ORG [--tags PATTERN]``: the external pretrained tags as Hub repos, one per tag.

For a maintainer with network. Each tag whose weights card names another project's file (``url``:
torchvision's, pytorchvideo's) and matches ``PATTERN`` (fnmatch, default all) is

1. loaded from its source: ``create_model(TAG, pretrained=True)``, the file through torch.hub's cache
   (downloaded once, its hash prefix or recorded sha256 checked);
2. exported (:func:`zoo._export.export_tag`) for the repo ``ORG/ARCH.TAG``, as timm names its repos
   (``timm/resnet50.a1_in1k``): ``model.safetensors``, ``config.json``, the model card;
3. verified: the export, reloaded through ``local-dir:``, must give the source model's outputs on a
   fixed clip (seeded noise at the tag's input size, or ``verify_clip``);
4. pushed in one commit (:func:`zoo._export.push_folder`), unless the repo's ``model.safetensors``
   already has the export's sha256 (the export is deterministic): then the repo is left as it is.

Once published, ``create_model("hf-hub:ORG/ARCH.TAG")`` gives the model ``create_model("ARCH.TAG",
pretrained=True)`` gives, without the source's file.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._cards import get_weights_card, list_pretrained
from .._export import export_tag, push_folder
from .._factory import create_model
from .._hub import WEIGHTS_NAME
from .common import UserError, format_table

__all__ = ["PublishResult", "publishable_tags", "hub_repo_id", "remote_sha256", "verify_export", "publish",
           "add_publish_command"]


@dataclasses.dataclass(frozen=True)
class PublishResult:
    """One tag's outcome: ``status`` is ``'pushed'``, ``'unchanged'`` (the repo already holds these weights)
    or ``'verified'`` (a dry run); ``max_abs_diff`` the largest output difference of the check."""

    tag: str
    repo_id: str
    sha256: str
    status: str
    max_abs_diff: float
    commit: Any = None


def publishable_tags(pattern: str = "") -> list[str]:
    """The tags with a weights card of external weights (``url``) that match ``pattern`` (fnmatch)."""
    return [name for name in list_pretrained(pattern) if get_weights_card(name).external]


def hub_repo_id(org: str, tag: str) -> str:
    """``ORG/ARCH.TAG``: one repo per tag, named as timm names its repos."""
    if not org or "/" in org:
        raise ValueError(f"expected a Hub user or organisation name (no '/'), got {org!r}")
    return f"{org}/{tag}"


def remote_sha256(api: Any, repo_id: str, filename: str = WEIGHTS_NAME) -> str | None:
    """The sha256 of ``filename`` in the Hub repo (its LFS object id); ``None`` if the repo or file does not exist."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        infos = api.get_paths_info(repo_id, [filename], repo_type="model")
    except (RepositoryNotFoundError, EntryNotFoundError):
        return None
    for info in infos:
        lfs = getattr(info, "lfs", None)
        if getattr(info, "path", None) == filename and lfs is not None:
            return getattr(lfs, "sha256", None) or lfs.get("sha256")
    return None


@torch.no_grad()
def verify_export(source: torch.nn.Module, folder: str | Path, clip_size: tuple[int, ...] | None = None) -> float:
    """Reload the export in ``folder`` through ``local-dir:`` and compare its outputs with ``source``'s on a
    fixed clip (``torch.randn`` seeded 0, ``(1, C, T, H, W)`` at the source's input size or ``(C,) + clip_size``).

    Returns:
        The largest absolute difference.

    Raises:
        ValueError: the outputs differ by more than float rounding (1e-5 relative), or their shapes differ.
    """
    cfg = source.pretrained_cfg
    size = tuple(cfg.input_size) if clip_size is None else (cfg.input_size[0], *clip_size)
    clip = torch.randn(1, *size, generator=torch.Generator().manual_seed(0))
    reloaded = create_model(f"local-dir:{folder}").eval()
    expected, got = source.eval()(clip), reloaded(clip)
    if expected.shape != got.shape:
        raise ValueError(f"{folder}: the export gives outputs of shape {tuple(got.shape)}, the source "
                         f"{tuple(expected.shape)}")
    diff = (expected - got).abs().max().item()
    if diff > 1e-5 * max(1.0, expected.abs().max().item()):
        raise ValueError(f"{folder}: the export's outputs differ from the source model's by up to {diff:.3g} on "
                         f"the check clip {size}: not published")
    return diff


def publish(
    org: str,
    pattern: str = "",
    api: Any = None,
    out_dir: str | Path | None = None,
    token: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    verify_clip: tuple[int, int, int] | None = None,
) -> list[PublishResult]:
    """Convert, verify and push every external tag that matches ``pattern`` (see the module docstring).

    Args:
        org: the Hub user or organisation; repos are ``ORG/ARCH.TAG``.
        pattern: fnmatch wildcard over the tags (default: all of them).
        api: an ``HfApi`` (default: a new one with ``token``).
        out_dir: keep the exports under ``out_dir/ORG/ARCH.TAG`` (default: temporary folders).
        private: create new repos private.
        dry_run: convert and verify only; nothing is sent to the Hub.
        verify_clip: ``(T, H, W)`` of the check clip (default: the tag's input size).
    """
    tags = publishable_tags(pattern)
    if not tags:
        raise UserError(f"no external pretrained tag matches {pattern!r}; `zoo models --pretrained` lists them")
    if api is None and not dry_run:
        from huggingface_hub import HfApi

        api = HfApi(token=token, library_name="motion-zoo")
    results = []
    for tag in tags:
        repo_id = hub_repo_id(org, tag)
        with tempfile.TemporaryDirectory(prefix="zoo_publish_") as tmp:
            folder = Path(out_dir) / org / tag if out_dir is not None else Path(tmp) / tag
            source = create_model(tag, pretrained=True).eval()
            exported = export_tag(tag, folder, repo_id=repo_id, model=source)
            diff = verify_export(source, folder, verify_clip)
            del source
            if dry_run:
                results.append(PublishResult(tag, repo_id, exported.sha256, "verified", diff))
                continue
            if remote_sha256(api, repo_id) == exported.sha256:
                results.append(PublishResult(tag, repo_id, exported.sha256, "unchanged", diff))
                continue
            provider = get_weights_card(tag).provider
            commit = push_folder(folder, repo_id, private=private, api=api,
                                 commit_message=f"{tag}: {provider}'s weights, converted by motion-zoo")
            results.append(PublishResult(tag, repo_id, exported.sha256, "pushed", diff, commit))
    return results


# ------------------------------------------------------------------------------------------ command


def _clip(text: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected T,H,W (e.g. 8,112,112), got {text!r}") from None
    return t, h, w


def cmd_publish(args: argparse.Namespace) -> int:
    results = publish(args.org, args.tags, out_dir=args.out, private=args.private, dry_run=args.dry_run,
                      verify_clip=args.verify_clip)
    rows = [{"tag": r.tag, "repo": r.repo_id, "status": r.status, "sha256": r.sha256[:16],
             "max |diff|": f"{r.max_abs_diff:.1e}"} for r in results]
    print(format_table(rows))
    pushed = sum(r.status == "pushed" for r in results)
    print(f"\n{pushed} pushed, {len(results) - pushed} left as they were"
          + (" (dry run: nothing sent)" if args.dry_run else ""))
    return 0


def add_publish_command(sub: Any) -> None:
    """Register ``zoo publish`` on the ``zoo`` parser's sub-commands."""
    p = sub.add_parser("publish", help="convert the external pretrained tags and push one Hub repo per tag "
                                       "(ORG/ARCH.TAG), skipping repos that already hold the same weights")
    p.add_argument("org", help="Hub user or organisation to publish under")
    p.add_argument("--tags", default="", help="fnmatch wildcard over the tags, e.g. '*.tv_k400' (default: all)")
    p.add_argument("--out", default=None, help="keep the exports under OUT/ORG/ARCH.TAG (default: temporary)")
    p.add_argument("--private", action="store_true", help="create new repos private")
    p.add_argument("--dry-run", action="store_true", help="convert and verify only; send nothing to the Hub")
    p.add_argument("--verify-clip", type=_clip, default=None, metavar="T,H,W",
                   help="size of the check clip (default: each tag's input size)")
    p.set_defaults(func=cmd_publish)
