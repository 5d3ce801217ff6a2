"""Export to the Hugging Face Hub layout, model cards, and push.

A Hub repo of the zoo holds what :func:`save_for_hub` writes:

- ``model.safetensors``: the deployed model's state dict (an HCML model without its side branch);
- ``config.json`` in timm's layout: ``architecture``, ``num_classes``, ``label_names``,
  ``model_args`` (the ``create_model`` arguments) and ``pretrained_cfg`` (input size
  ``(C, T, H, W)``, frame stride, mean, std, ..., and the sha256 of ``model.safetensors``);
- ``recipe.yaml``: the recipe the weights were trained with;
- ``README.md``: the model card, generated from the weights card.

A pretrained tag exports the same way (:func:`export_tag`, ``zoo export TAG OUT_DIR``): the weights of
``create_model(TAG, pretrained=True)`` (torchvision's or pytorchvideo's file, converted unchanged) with the
tag's cfg (source, metrics, eval transform) and its weights card rendered into the model card.

Loading such a folder or repo back (``local-dir:``, ``hf-hub:``) is :mod:`zoo._hub`'s.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ._cards import WeightsCard, get_weights_card, list_weights_cards
from ._checkpoint import build_model_from_checkpoint, check_checkpoint
from ._factory import create_model
from ._helpers import sha256_file
from ._hub import CONFIG_CFG_FIELDS, CONFIG_NAME, PICKLE_SUFFIXES, README_NAME, RECIPE_NAME, WEIGHTS_NAME, read_config
from ._pretrained import PretrainedCfg
from .adapters import HCMLModel

__all__ = [
    "ExportResult",
    "save_for_hub",
    "export_checkpoint",
    "export_tag",
    "generate_model_card",
    "push_folder",
    "push_to_hub",
]


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`save_for_hub` wrote: the folder, its files, and the weights' sha256 and size (bytes)."""

    folder: Path
    files: tuple[str, ...]
    sha256: str
    size: int


# ------------------------------------------------------------------------------------------- export


def _as_card(card: WeightsCard | str | Path | None) -> WeightsCard | None:
    if card is None or isinstance(card, WeightsCard):
        return card
    if Path(card).suffix in (".yaml", ".yml"):
        return WeightsCard.from_file(card)
    return get_weights_card(str(card))


def _recipe_text(recipe: dict[str, Any] | str | Path | None, card: WeightsCard | None) -> str | None:
    """The recipe as YAML text: a dict, a file, or the card's ``recipes/...`` path (from the repository)."""
    if isinstance(recipe, dict):
        return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    if recipe is not None:
        path = Path(recipe)
        if not path.is_file():
            raise FileNotFoundError(f"recipe file not found: {path}")
        text = path.read_text(encoding="utf-8")
        yaml.safe_load(text)  # a broken recipe fails here, not on the Hub
        return text
    if card is not None:
        roots = [Path.cwd()] + ([Path(card.source).resolve().parent.parent] if card.source else [])
        for root in roots:
            if (root / card.recipe).is_file():
                return (root / card.recipe).read_text(encoding="utf-8")
    return None


def _check_equal(what: str, ours: Any, card_value: Any, card: WeightsCard) -> None:
    if ours != card_value:
        raise ValueError(f"weights card {card.name} ({card.source}): {what} is {card_value!r}, the model's {ours!r}")


def _export_cfg(
    model: nn.Module, card: WeightsCard | None, label_names: list[str] | None, overlay: dict[str, Any] | None
) -> PretrainedCfg:
    """The model's pretrained cfg as it is exported.

    The provenance of the weights the model was initialised from (tag, Hub id, metrics, dataset,
    recipe, notes) does not describe the exported weights and is dropped; ``overlay`` then sets
    fields, and a card's fields win (its classes and label names must agree with the model's).
    """
    base = getattr(model, "pretrained_cfg", None)
    if card is not None and card.external:  # a tag's weights, unchanged: their provenance is the tag's
        if not isinstance(base, PretrainedCfg) or (base.architecture, base.tag) != (card.architecture, card.tag):
            raise ValueError(f"weights card {card.name} describes the weights of create_model({card.name!r}, "
                             "pretrained=True); this model was not built from them")
        _check_equal("the number of classes", model.num_classes, card.num_classes, card)
        return dataclasses.replace(base, file=None, state_dict=None, hf_hub_revision=None, sha256=None).merged(overlay)
    cfg = copy.copy(base) if isinstance(base, PretrainedCfg) else PretrainedCfg()
    cfg = dataclasses.replace(
        cfg, tag="", file=None, state_dict=None, hf_hub_id=None, hf_hub_revision=None, sha256=None, url=None,
        hash_prefix=None, metrics={}, num_params=None, gflops=None, dataset=None, recipe=None, notes=None,
    ).merged(overlay)
    cfg.num_classes = model.num_classes
    if label_names is not None:
        if len(label_names) != model.num_classes:
            raise ValueError(f"{len(label_names)} label names for a model with {model.num_classes} classes")
        cfg.label_names = tuple(label_names)
    if card is not None:
        _check_equal("the number of classes (len(label_names))", model.num_classes, card.num_classes, card)
        if label_names is not None:
            _check_equal("label_names", tuple(label_names), card.label_names, card)
        cfg = card.to_pretrained_cfg(base=cfg)
    return cfg


def _deployed(model: nn.Module) -> nn.Module:
    """A deployed copy of ``model`` (``model.deploy()`` drops an HCML side branch); ``model`` without ``deploy``."""
    if not isinstance(model, HCMLModel):
        return model
    model = copy.deepcopy(model)
    model.deploy()
    return model


def _deployed_model_args(model: nn.Module, model_args: dict[str, Any]) -> dict[str, Any]:
    """``model_args`` (JSON-normalised) that rebuild the deployed ``model`` exactly: a model with HCML
    adapters gets their whole config as ``hcml_cfg`` (``side_branch: false`` once deployed)."""
    try:
        args = json.loads(json.dumps(model_args))
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_args must be JSON-serialisable to go into config.json: {e}") from e
    hcml_cfg = getattr(model, "hcml_cfg", None)
    if hcml_cfg is not None:
        args["hcml_cfg"] = json.loads(json.dumps(dataclasses.asdict(hcml_cfg)))
    return args


def save_for_hub(
    model: nn.Module,
    save_dir: str | Path,
    card: WeightsCard | str | Path | None = None,
    model_args: dict[str, Any] | None = None,
    recipe: dict[str, Any] | str | Path | None = None,
    label_names: list[str] | None = None,
    repo_id: str | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
) -> ExportResult:
    """Write what a Hub repo of ``model`` holds into ``save_dir`` (see the module docstring).

    Args:
        model: a zoo model; it is deep-copied and deployed (``model.deploy()``) when it can be, and
            its HCML config (if any) goes into ``model_args``.
        save_dir: the folder, created if needed.
        card: the weights card (a :class:`~zoo._cards.WeightsCard`, a YAML path or a registered
            card name). Its architecture, model args, label names, sha256 and size must agree
            with the model and the written file: a mismatch raises (the error gives the file's
            sha256 and size, to put in a new card).
        model_args: ``create_model`` arguments that rebuild the model (default: the card's, or the
            ``model.model_args`` that ``create_model`` recorded).
            A card's must equal the exported ones: copy them from the ``config.json`` of an export.
        recipe: the training recipe: a dict, a YAML file, or (default) the card's ``recipes/`` file.
        label_names: class names, index-aligned with the classifier (default: the card's or the model's).
        repo_id: the Hub repo the folder goes to, for the README's usage (default: the card's).
        pretrained_cfg_overlay: pretrained-cfg fields of the exported weights (``input_size``,
            ``frame_stride``, ``mean``, ``std``, ``dataset``, ...); a card's fields win over them.

    Returns:
        An :class:`ExportResult`.
    """
    card = _as_card(card)
    cfg = _export_cfg(model, card, label_names, pretrained_cfg_overlay)
    if not cfg.architecture:
        raise ValueError("the model has no pretrained_cfg.architecture; give a weights card (card=...)")
    deployed = _deployed(model)
    if model_args is None:
        model_args = dict(card.model_args) if card is not None else dict(getattr(model, "model_args", {}))
    model_args = _deployed_model_args(deployed, model_args)
    if card is not None:
        _check_equal("model_args", model_args, card.model_args, card)
    if repo_id is not None and card is not None and not card.external and repo_id != card.hf_hub_id:
        raise ValueError(f"weights card {card.name} names hf_hub_id {card.hf_hub_id!r}, not {repo_id!r}")

    # Written into a temporary folder beside the target and moved there only when complete: a failed
    # export (a card that disagrees, a full disk) leaves nothing behind.
    final_dir = Path(save_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".partial", dir=final_dir.parent))
    try:
        result = _write_export(tmp, model, deployed, cfg, card, model_args, recipe, repo_id)
        final_dir.mkdir(exist_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        for name in result.files:
            # the mode a plain open() gives (safetensors writes its file readable by its owner only)
            os.chmod(tmp / name, 0o666 & ~umask)
            os.replace(tmp / name, final_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dataclasses.replace(result, folder=final_dir)


def _write_export(save_dir: Path, model: nn.Module, deployed: nn.Module, cfg: PretrainedCfg, card: WeightsCard | None,
                  model_args: dict[str, Any], recipe: Any, repo_id: str | None) -> ExportResult:
    """Write the export's files into ``save_dir`` (see :func:`save_for_hub`)."""
    from safetensors.torch import save_file

    weights_path = save_dir / WEIGHTS_NAME
    # copies: safetensors refuses tensors that share storage
    state_dict = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in deployed.state_dict().items()}
    save_file(state_dict, str(weights_path), metadata={"format": "pt"})
    sha256, size = sha256_file(weights_path), weights_path.stat().st_size
    if card is not None and not card.external and (card.sha256, card.size) != (sha256, size):
        raise ValueError(
            f"weights card {card.name} ({card.source}) says sha256 {card.sha256} and size {card.size}, but the "
            f"exported {WEIGHTS_NAME} has sha256 {sha256} and size {size}: export the checkpoint the card "
            "describes, or update the card's sha256 and size"
        )
    cfg.hf_hub_filename, cfg.sha256 = WEIGHTS_NAME, sha256
    if card is not None and card.external:  # the Hub repo of the conversion (none for a local export)
        cfg.hf_hub_id = repo_id

    config: dict[str, Any] = {"architecture": cfg.architecture, "num_classes": cfg.num_classes}
    if getattr(model, "num_features", None) is not None:
        config["num_features"] = int(model.num_features)
    if cfg.label_names is not None:
        config["label_names"] = list(cfg.label_names)
    config["model_args"] = model_args
    config["pretrained_cfg"] = {f: getattr(cfg, f) for f in CONFIG_CFG_FIELDS}
    (save_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    files = [WEIGHTS_NAME, CONFIG_NAME]

    recipe_text = _recipe_text(recipe, card)
    if recipe_text is not None:
        (save_dir / RECIPE_NAME).write_text(recipe_text, encoding="utf-8")
        files.append(RECIPE_NAME)
    readme = generate_model_card(config, card, recipe_text, repo_id or (card.hf_hub_id if card else None), size)
    (save_dir / README_NAME).write_text(readme, encoding="utf-8")
    files.append(README_NAME)
    return ExportResult(folder=save_dir, files=tuple(files), sha256=sha256, size=size)

def export_checkpoint(
    checkpoint: str | Path | dict[str, Any],
    out_dir: str | Path,
    card: WeightsCard | str | Path | None = None,
) -> ExportResult:
    """Export a training checkpoint to a Hub folder (``zoo export CHECKPOINT OUT_DIR [--card CARD]``).

    The checkpoint contract is :mod:`zoo._checkpoint`'s. The model is rebuilt with
    ``create_model(model_name, num_classes=..., **model_args)``, loaded strictly, deployed, and
    written by :func:`save_for_hub`.
    """
    where = "<dict>" if isinstance(checkpoint, dict) else str(checkpoint)
    if not isinstance(checkpoint, dict):
        try:
            checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a non-plain pickle is refused here, never executed
            raise ValueError(f"checkpoint {where} could not be read with torch.load(weights_only=True): {e}") from e
    model_args = check_checkpoint(checkpoint, where)
    model = build_model_from_checkpoint(checkpoint)
    label_names = checkpoint["label_names"]
    return save_for_hub(
        model,
        out_dir,
        card=card,
        model_args=model_args,
        recipe=checkpoint["recipe"],
        label_names=list(label_names) if label_names is not None else None,
        pretrained_cfg_overlay=checkpoint.get("pretrained_cfg"),
    )


def export_tag(name: str, out_dir: str | Path, repo_id: str | None = None, model: nn.Module | None = None
               ) -> ExportResult:
    """Export the weights of a pretrained tag to a Hub folder (``zoo export TAG OUT_DIR``).

    The model is ``create_model(name, pretrained=True)`` (torchvision's or pytorchvideo's file comes through
    torch.hub's cache), or ``model`` when given (built that way already). Its weights card, when the tag has
    one, goes into the model card; ``repo_id`` is the Hub repo the folder is for (``config.json``'s
    ``hf_hub_id`` and the model card's usage).
    """
    if "." not in name:
        raise ValueError(f"expected a pretrained tag 'arch.tag', got {name!r} (zoo models --pretrained lists them)")
    card = get_weights_card(name) if name in list_weights_cards() else None
    if model is None:
        model = create_model(name, pretrained=True)
    model_args = dict(card.model_args) if card is not None else dict(getattr(model, "model_args", {}))
    return save_for_hub(model, out_dir, card=card, model_args=model_args, repo_id=repo_id)


# --------------------------------------------------------------------------------------- model card


def _front_matter(config: dict[str, Any], card: WeightsCard | None) -> dict[str, Any]:
    cfg = config["pretrained_cfg"]
    tags = ["video-classification", "action-recognition", "motion-zoo", config["architecture"]]
    if "hcml_cfg" in config["model_args"]:
        tags.append("hcml")
    front: dict[str, Any] = {"library_name": "motion-zoo", "pipeline_tag": "video-classification"}
    if cfg.get("license"):
        front["license"] = cfg["license"]
    front["tags"] = tags
    if cfg.get("dataset"):
        front["datasets"] = [cfg["dataset"]]
    if card is not None:
        front["model-index"] = [
            {
                "name": card.name,
                "results": [
                    {
                        "task": {"type": "video-classification", "name": "Action recognition"},
                        "dataset": {"name": card.dataset, "type": card.dataset, "split": card.split},
                        "metrics": [
                            {"type": metric, "name": f"{metric} ({result.protocol()})", "value": value}
                            for result in card.metrics
                            for metric, value in result.values.items()
                        ],
                    }
                ],
            }
        ]
    return front


def _metrics_table(card: WeightsCard) -> str:
    names = list(dict.fromkeys(m for result in card.metrics for m in result.values))
    header = ["views (clips x crops)", "frames", "resolution", *names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in card.metrics:
        as_stated = "g" if card.external else ".2f"  # a source's figures as it states them
        values = [f"{r.values[m]:{as_stated}}" if m in r.values else "-" for m in names]
        frames = str(r.frames) + (f" at {r.frame_rate:g} fps" if r.frame_rate else "")
        frames += f", every {r.frame_stride}" if r.frame_stride and r.frame_stride > 1 else ""
        lines.append("| " + " | ".join([r.views, frames, f"{r.resolution} px", *values]) + " |")
    return "\n".join(lines)


def _resize_text(resize: Any) -> str:
    if not resize:
        return ""
    if isinstance(resize, int):
        return f", eval resize: short side to {resize} px"
    return f", eval resize: to {resize[0]}x{resize[1]} px"


def _source_lines(card: WeightsCard) -> list[str]:
    """The model card's account of external weights: who publishes them, the file, its hash, the conversion."""
    name = f" (`{card.provider_weights}`)" if card.provider_weights else ""
    if card.hash_prefix:
        hashed = (f"{card.provider} publishes the sha256 prefix `{card.hash_prefix}` (in the file name); the "
                  "zoo checks it on download.")
    else:
        hashed = (f"{card.provider} publishes no hash for this file: the zoo records its sha256 beside the cached "
                  "file on first use and checks it on every later load.")
    return [
        f"- **Published by:** {card.provider}{name}",
        f"- **Original file:** {card.url}",
        f"- **Hash:** {hashed}",
        f"- **Conversion:** the original state dict loaded unchanged into motion-zoo's `{card.architecture}` "
        f"(`create_model(\"{card.name}\", pretrained=True)`), saved as safetensors; the metrics below are "
        f"{card.provider}'s, not re-measured.",
    ]


def generate_model_card(
    config: dict[str, Any],
    card: WeightsCard | None = None,
    recipe_text: str | None = None,
    repo_id: str | None = None,
    size: int | None = None,
) -> str:
    """The Hub README of an exported model: YAML front matter (library, license, tags, datasets,
    model-index metrics), details, usage with ``create_model``, the recipe, the metrics table and
    the citation. Without a weights card the metrics and citation sections say that none are known."""
    cfg = config["pretrained_cfg"]
    name = card.name if card else ".".join(filter(None, (config["architecture"], cfg.get("tag"))))
    front = yaml.safe_dump(_front_matter(config, card), sort_keys=False, allow_unicode=True, width=1000)
    c, t, h, w = cfg["input_size"]
    lines = [f"---\n{front}---", f"# {name}", ""]
    summary = f"The motion-zoo video classifier `{config['architecture']}`"
    if cfg.get("dataset"):
        summary += f", trained on {cfg['dataset']}"
    lines += [summary + ".", ""]
    if card is not None and not card.published:
        lines += [f"Status: {card.status}.", ""]
    lines += ["## Model details", ""]
    lines.append(f"- **Architecture:** `{config['architecture']}`, model args `{json.dumps(config['model_args'])}`")
    names = " (names in `config.json`)" if "label_names" in config else ""
    lines.append(f"- **Classes:** {config['num_classes']}{names}")
    lines.append(
        f"- **Input:** (C, T, H, W) = ({c}, {t}, {h}, {w}), frame stride {cfg['frame_stride']}, "
        f"mean {list(cfg['mean'])}, std {list(cfg['std'])} on [0, 1] pixels, test crop fraction {cfg['crop_pct']}"
        + _resize_text(cfg.get("resize_size"))
    )
    size_text = f", {size:,} bytes" if size is not None else ""
    lines.append(f"- **Weights:** `{WEIGHTS_NAME}` (safetensors), sha256 `{cfg['sha256']}`{size_text}")
    if card is not None:
        lines.append(f"- **Dataset:** {card.dataset} (metrics on split {card.split})")
    for key, label in (("paper", "Paper"), ("license", "License")):
        if cfg.get(key):
            lines.append(f"- **{label}:** {cfg[key]}")
    if card is not None and card.external:
        lines += ["", "## Source", "", *_source_lines(card)]
    if card is not None and card.intended_use:
        lines += ["", "## Intended use", "", card.intended_use]

    source = f"hf-hub:{repo_id}" if repo_id else "local-dir:PATH/TO/THIS/FOLDER"
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "import torch",
        "import zoo",
        "",
        f'model = zoo.create_model("{source}").eval()',
    ]
    if card is not None:
        lines.append(f'# or, by the name of its weights card: zoo.create_model("{card.name}", pretrained=True)')
    lines += [
        "cfg = model.pretrained_cfg",
        "clip = torch.rand(1, *cfg.input_size)  # (B, C, T, H, W) frames in [0, 1]",
        "mean = torch.tensor(cfg.mean).view(1, -1, 1, 1, 1)",
        "std = torch.tensor(cfg.std).view(1, -1, 1, 1, 1)",
        "with torch.no_grad():",
        "    probs = model((clip - mean) / std).softmax(-1)",
        "top = probs.topk(min(5, probs.shape[-1]))  # at most 5, and no more than the classes",
        "names = cfg.label_names or [str(i) for i in range(probs.shape[-1])]",
        "print([(names[i], round(p, 3)) for p, i in zip(top.values[0].tolist(), top.indices[0].tolist())])",
        "```",
        "",
        "For fine-tuning, `num_classes=N` re-initialises the classifier.",
        "",
        "## Training recipe",
        "",
    ]
    if recipe_text is not None:
        origin = f" (`{cfg['recipe']}` in motion-zoo)" if cfg.get("recipe") else ""
        lines += [f"`{RECIPE_NAME}`{origin}:", "", "```yaml", recipe_text.rstrip("\n"), "```"]
    elif str(cfg.get("recipe") or "").startswith(("http://", "https://")):
        lines.append(f"The source's recipe: {cfg['recipe']}")
    else:
        lines.append(f"`{cfg['recipe']}` in motion-zoo." if cfg.get("recipe") else "Not recorded.")
    lines += ["", "## Results", ""]
    if card is not None:
        stated = f", as {card.provider} states them" if card.external else ""
        lines += [f"On {card.dataset} ({card.split}), in percent{stated}:", "", _metrics_table(card)]
    else:
        lines.append("Not evaluated (exported without a weights card).")
    lines += ["", "## Citation", ""]
    if card is not None and card.citation:
        lines += ["```bibtex", card.citation.strip(), "```"]
    elif cfg.get("paper"):
        lines.append(f"Please cite {cfg['paper']}.")
    else:
        lines.append("No paper recorded.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- push


def push_folder(
    folder: str | Path,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Add model",
    api: Any = None,
) -> Any:
    """Create the model repo ``repo_id`` (if needed) and upload ``folder`` in one commit (``zoo push``).

    The folder must be an export (``model.safetensors``, ``config.json``, ``README.md``) with no
    pickle files, and ``config.json``'s sha256 must be that of its weights. ``token`` defaults to
    the usual places (``HF_TOKEN``, ``hf auth login``); ``api`` is an ``HfApi`` (default: a new one).

    Returns:
        The ``CommitInfo`` of the upload.
    """
    folder = Path(folder)
    for required in (WEIGHTS_NAME, CONFIG_NAME, README_NAME):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder} is not an export: {required} is missing (run `zoo export` first)")
    pickles = sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ValueError(f"{folder} holds pickle files {pickles}; only safetensors weights are pushed")
    cfg = read_config(folder / CONFIG_NAME).get("pretrained_cfg") or {}
    if cfg.get("sha256") and cfg["sha256"] != sha256_file(folder / WEIGHTS_NAME):
        raise ValueError(f"{folder / WEIGHTS_NAME} does not have the sha256 {CONFIG_NAME} gives: re-export the folder")
    if cfg.get("hf_hub_id") and cfg["hf_hub_id"] != repo_id:
        raise ValueError(
            f"{folder} was exported for {cfg['hf_hub_id']!r} (its weights card's hf_hub_id), not {repo_id!r}"
        )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token, library_name="motion-zoo")
    repo_url = api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(folder),
        repo_type="model",
        revision=revision,
        commit_message=commit_message,
    )


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    card: WeightsCard | str | Path | None = None,
    model_args: dict[str, Any] | None = None,
    recipe: dict[str, Any] | str | Path | None = None,
    label_names: list[str] | None = None,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Add model",
    api: Any = None,
) -> Any:
    """:func:`save_for_hub` into a temporary folder, then :func:`push_folder` it to ``repo_id``."""
    with tempfile.TemporaryDirectory(prefix="zoo_push_") as tmp:
        save_for_hub(
            model, tmp, card=card, model_args=model_args, recipe=recipe, label_names=label_names, repo_id=repo_id
        )
        return push_folder(
            tmp, repo_id, token=token, private=private, revision=revision, commit_message=commit_message, api=api
        )
