"""The Hugging Face Hub: loading by ``hf-hub:`` / ``local-dir:`` / card name, export, model cards, push.

A Hub repo of the zoo holds what :func:`save_for_hub` writes:

- ``model.safetensors``: the deployed model's state dict (an HCML model without its side branch);
- ``config.json`` in timm's layout: ``architecture``, ``num_classes``, ``label_names``,
  ``model_args`` (the ``create_model`` arguments, adapter included) and ``pretrained_cfg`` (input
  size ``(C, T, H, W)``, frame stride, mean, std, ..., and the sha256 of ``model.safetensors``);
- ``recipe.yaml``: the recipe the weights were trained with;
- ``README.md``: the model card, generated from the weights card.

Loading goes through ``huggingface_hub.hf_hub_download`` and its cache (``HF_HOME``,
``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``). Weights are safetensors; a pickle (``pytorch_model.bin``)
is read only by ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers. A weights card's (or ``config.json``'s) sha256 is checked before the file is read.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ._builder import sha256_file
from ._cards import WeightsCard, get_weights_card, list_weights_cards
from ._pretrained import PretrainedCfg

_logger = logging.getLogger(__name__)

__all__ = [
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "RECIPE_NAME",
    "README_NAME",
    "HubFileUnavailableError",
    "ExportResult",
    "split_hub_id",
    "hub_download",
    "download_cfg_weights",
    "load_model_config",
    "save_for_hub",
    "export_checkpoint",
    "push_folder",
    "push_to_hub",
    "generate_model_card",
]

WEIGHTS_NAME = "model.safetensors"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"  # read with weights_only=True, never written
CONFIG_NAME = "config.json"
RECIPE_NAME = "recipe.yaml"
README_NAME = "README.md"
CHECKPOINT_KEYS = ("model", "model_name", "model_args", "num_classes", "label_names", "recipe")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar")
_CONFIG_CFG_FIELDS = (  # the pretrained-cfg fields config.json carries (no source paths, no state dict)
    "tag", "hf_hub_id", "hf_hub_filename", "sha256", "input_size", "frame_stride", "mean", "std", "crop_pct",
    "interpolation", "num_classes", "classifier", "first_conv", "license", "paper", "recipe", "dataset", "metrics",
    "notes",
)


class HubFileUnavailableError(FileNotFoundError):
    """A Hub file is neither in the local cache nor downloadable (offline, or the Hub unreachable)."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`save_for_hub` wrote: the folder, its files, and the weights' sha256 and size (bytes)."""

    folder: Path
    files: tuple[str, ...]
    sha256: str
    size: int


# ----------------------------------------------------------------------------------------- download


def split_hub_id(hub_id: str) -> tuple[str, str | None]:
    """``'org/repo@rev'`` -> ``('org/repo', 'rev')``; no ``@`` -> ``('org/repo', None)``."""
    repo_id, sep, revision = hub_id.partition("@")
    if not repo_id or (sep and not revision) or "@" in revision:
        raise ValueError(f"expected a Hub id 'org/repo' or 'org/repo@revision', got {hub_id!r}")
    return repo_id, revision or None


def _unavailable_error(repo_id: str, filename: str, revision: str | None) -> HubFileUnavailableError:
    from huggingface_hub import constants

    offline = constants.is_offline_mode()
    why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
    go_online = "unset HF_HUB_OFFLINE" if offline else "check the connection"
    rev = f"@{revision}" if revision else ""
    return HubFileUnavailableError(
        f"{filename} of the Hub repo {repo_id}{rev} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
        f"and {why}. Two ways out: go online ({go_online}) so that it is downloaded into the cache once; or "
        f"download the repo where the Hub is reachable (`hf download {repo_id} --local-dir DIR`), bring DIR here "
        f"and load it with create_model('local-dir:DIR')."
    )


def hub_download(repo_id: str, filename: str, revision: str | None = None) -> str:
    """Local path of ``filename`` of model repo ``repo_id``, from the cache or downloaded into it.

    Raises:
        HubFileUnavailableError: not cached, and offline or the Hub unreachable (names both ways out).
        FileNotFoundError: the Hub answered that the repo has no such file.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        return hf_hub_download(repo_id, filename, revision=revision, library_name="motion-zoo")
    except LocalEntryNotFoundError as e:
        raise _unavailable_error(repo_id, filename, revision) from e
    except RemoteEntryNotFoundError as e:
        rev = f"@{revision}" if revision else ""
        raise FileNotFoundError(f"the Hub repo {repo_id}{rev} has no file {filename}") from e


def _card_of(cfg: PretrainedCfg) -> WeightsCard | None:
    name = f"{cfg.architecture}.{cfg.tag}"
    if name not in list_weights_cards():
        return None
    card = get_weights_card(name)
    return card if card.hf_hub_id == cfg.hf_hub_id else None


def download_cfg_weights(cfg: PretrainedCfg) -> tuple[str, str | None]:
    """Download (or find in the cache) the weights a cfg names by ``hf_hub_id``.

    Returns:
        The local path and the sha256 the file must have (the card's; ``None`` when the cfg has none).
    """
    try:
        path = hub_download(cfg.hf_hub_id, cfg.hf_hub_filename, cfg.hf_hub_revision)
    except FileNotFoundError as e:
        card = _card_of(cfg)
        if card is None or card.published:
            raise
        raise type(e)(
            f"{e} Note: the weights card {card.name} has status {card.status!r}; until they are published, "
            "load the exported folder with create_model('local-dir:DIR')."
        ) from e
    return path, cfg.sha256


def _read_config(path: str | Path) -> dict[str, Any]:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise ValueError(f"{path}: expected a JSON object with an 'architecture' string (timm's config.json layout)")
    return config


def _parse_config(config: dict[str, Any], where: str) -> tuple[str, PretrainedCfg, dict[str, Any]]:
    """``config.json`` (timm's layout) -> architecture, pretrained cfg (over the arch's default) and model args."""
    from ._registry import get_pretrained_cfg

    arch = config["architecture"]
    values = dict(config.get("pretrained_cfg") or {})
    known = {f.name for f in dataclasses.fields(PretrainedCfg)}
    known -= {"architecture", "file", "state_dict", "hf_hub_revision"}
    unknown = sorted(set(values) - known)
    if unknown:
        _logger.warning("%s: ignoring pretrained_cfg fields this version of the zoo does not know: %s", where, unknown)
    values = {k: v for k, v in values.items() if k in known}
    if "num_classes" in config:
        values["num_classes"] = config["num_classes"]
    if "label_names" in config:
        values["label_names"] = config["label_names"]
    model_args = config.get("model_args") or {}
    if not isinstance(model_args, dict):
        raise ValueError(f"{where}: 'model_args' must be a JSON object, got {model_args!r}")
    cfg = get_pretrained_cfg(arch).merged(values)
    if model_args.get("in_chans") is not None:
        cfg.input_size = (model_args["in_chans"], *cfg.input_size[1:])
    return arch, cfg, dict(model_args)


def load_model_config(source: str, name: str) -> tuple[str, PretrainedCfg, dict[str, Any]]:
    """Resolve ``hf-hub:org/repo[@rev]`` or ``local-dir:PATH`` to what ``create_model`` builds.

    The folder (or repo) holds ``config.json`` and ``model.safetensors`` (or, read with
    ``weights_only=True`` only, ``pytorch_model.bin``).

    Returns:
        The architecture, a pretrained cfg whose ``file`` is the local weights file (with the
        sha256 ``config.json`` gives for it), and the model arguments.
    """
    if source == "hf-hub":
        repo_id, revision = split_hub_id(name)
        config = _read_config(hub_download(repo_id, CONFIG_NAME, revision))
        arch, cfg, model_args = _parse_config(config, f"hf-hub:{name}/{CONFIG_NAME}")
        path, filename = _hub_weights(repo_id, revision, cfg.hf_hub_filename or WEIGHTS_NAME)
        cfg.hf_hub_id, cfg.hf_hub_revision = repo_id, revision
    elif source == "local-dir":
        folder = Path(name).expanduser()
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"local-dir:{name}: no {CONFIG_NAME} in {folder} (`zoo export` writes one)")
        arch, cfg, model_args = _parse_config(_read_config(config_path), str(config_path))
        candidates = [cfg.hf_hub_filename or WEIGHTS_NAME, WEIGHTS_NAME, PICKLE_WEIGHTS_NAME]
        found = [folder / c for c in dict.fromkeys(candidates) if (folder / c).is_file()]
        if not found:
            raise FileNotFoundError(f"local-dir:{name}: no weights file ({' or '.join(dict.fromkeys(candidates))})")
        path, filename = str(found[0]), found[0].name
    else:
        raise ValueError(f"unknown model source {source!r}; use 'hf-hub' or 'local-dir'")
    if filename != cfg.hf_hub_filename:
        cfg.sha256 = None  # config.json's sha256 is that of its own weights file
    if filename.endswith(_PICKLE_SUFFIXES):
        _logger.warning("%s:%s has no safetensors weights; reading %s with weights_only=True", source, name, filename)
    cfg.file, cfg.hf_hub_filename = path, filename
    return arch, cfg, model_args


def _hub_weights(repo_id: str, revision: str | None, filename: str) -> tuple[str, str]:
    """The weights file of a repo: ``filename`` (safetensors), else ``pytorch_model.bin``."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return hub_download(repo_id, filename, revision), filename
    except HubFileUnavailableError:
        cached = try_to_load_from_cache(repo_id, PICKLE_WEIGHTS_NAME, revision=revision)
        if isinstance(cached, str):
            return cached, PICKLE_WEIGHTS_NAME
        raise
    except FileNotFoundError:
        return hub_download(repo_id, PICKLE_WEIGHTS_NAME, revision), PICKLE_WEIGHTS_NAME


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
    cfg = copy.copy(base) if isinstance(base, PretrainedCfg) else PretrainedCfg()
    cfg = dataclasses.replace(
        cfg, tag="", file=None, state_dict=None, hf_hub_id=None, hf_hub_revision=None, sha256=None, metrics={},
        dataset=None, recipe=None, notes=None,
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
    if not hasattr(model, "deploy"):
        return model
    model = copy.deepcopy(model)
    model.deploy()
    return model


def _deployed_model_args(model: nn.Module, arch: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """``model_args`` (JSON-normalised) that rebuild the deployed ``model`` exactly.

    A model with HCML adapters gets their whole config (``side_branch: false`` once deployed): as
    ``hcml_cfg`` for the ``hcml_*`` architectures, else as ``adapter='hcml'`` and ``adapter_cfg``.
    """
    try:
        args = json.loads(json.dumps(model_args))
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_args must be JSON-serialisable to go into config.json: {e}") from e
    hcml_cfg = getattr(model, "hcml_cfg", None)
    if hcml_cfg is None:
        return args
    from ._registry import list_models

    for key in ("hcml_cfg", "adapter", "adapter_cfg"):
        args.pop(key, None)
    adapter_cfg = json.loads(json.dumps(dataclasses.asdict(hcml_cfg)))
    if arch in list_models(module="hcml"):
        args["hcml_cfg"] = adapter_cfg
    else:
        args.update(adapter="hcml", adapter_cfg=adapter_cfg)
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
    model_args = _deployed_model_args(deployed, cfg.architecture, model_args)
    if card is not None:
        _check_equal("model_args", model_args, card.model_args, card)
    if repo_id is not None and card is not None and repo_id != card.hf_hub_id:
        raise ValueError(f"weights card {card.name} names hf_hub_id {card.hf_hub_id!r}, not {repo_id!r}")

    from safetensors.torch import save_file

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    weights_path = save_dir / WEIGHTS_NAME
    # copies: safetensors refuses tensors that share storage
    state_dict = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in deployed.state_dict().items()}
    save_file(state_dict, str(weights_path), metadata={"format": "pt"})
    sha256, size = sha256_file(weights_path), weights_path.stat().st_size
    if card is not None and (card.sha256, card.size) != (sha256, size):
        raise ValueError(
            f"weights card {card.name} ({card.source}) says sha256 {card.sha256} and size {card.size}, but the "
            f"exported {weights_path} has sha256 {sha256} and size {size}: export the checkpoint the card "
            "describes, or update the card's sha256 and size"
        )
    cfg.hf_hub_filename, cfg.sha256 = WEIGHTS_NAME, sha256

    config: dict[str, Any] = {"architecture": cfg.architecture, "num_classes": cfg.num_classes}
    if getattr(model, "num_features", None) is not None:
        config["num_features"] = int(model.num_features)
    if cfg.label_names is not None:
        config["label_names"] = list(cfg.label_names)
    config["model_args"] = model_args
    config["pretrained_cfg"] = {f: getattr(cfg, f) for f in _CONFIG_CFG_FIELDS}
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

    The checkpoint contract (what the training engine writes; read with ``weights_only=True``, so
    every value is a tensor or a plain Python container of str / int / float / bool / None):

    - ``model``: ``model.state_dict()`` of the unwrapped training model (no DDP ``module.`` or
      ``torch.compile`` ``_orig_mod.`` prefix), HCML side branch included;
    - ``model_name``: the registered ``arch`` (or ``arch.tag``) it was created from;
    - ``model_args``: the other ``create_model`` keyword arguments (``adapter``, ``adapter_cfg``,
      ``hcml_cfg``, ``drop_rate``, ...), JSON-serialisable, without ``pretrained`` (a
      ``num_classes`` there must equal the top-level one);
    - ``num_classes``: the classifier's size;
    - ``label_names``: class names index-aligned with the classifier, or ``None``;
    - ``recipe``: the recipe as a plain dict, or the path of its YAML file;
    - optional ``pretrained_cfg``: data fields that override the architecture's defaults
      (``input_size`` as ``[C, T, H, W]``, ``frame_stride``, ``mean``, ``std``, ``crop_pct``,
      ``dataset``); other keys (``optimizer``, ``epoch``, ...) are ignored.

    The model is rebuilt with ``create_model(model_name, num_classes=..., **model_args)``, loaded
    strictly, deployed, and written by :func:`save_for_hub`.
    """
    from ._factory import create_model

    where = "<dict>" if isinstance(checkpoint, dict) else str(checkpoint)
    if not isinstance(checkpoint, dict):
        try:
            checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a non-plain pickle is refused here, never executed
            raise ValueError(f"checkpoint {where} could not be read with torch.load(weights_only=True): {e}") from e
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {where}: expected a dict with keys {list(CHECKPOINT_KEYS)}")
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint]
    if missing:
        raise ValueError(
            f"checkpoint {where} lacks {missing}; a training checkpoint holds {list(CHECKPOINT_KEYS)} "
            "(see zoo._hub.export_checkpoint)"
        )
    model_args = dict(checkpoint["model_args"] or {})
    if "pretrained" in model_args:
        raise ValueError(f"checkpoint {where}: model_args must not hold 'pretrained'")
    if model_args.pop("num_classes", checkpoint["num_classes"]) != checkpoint["num_classes"]:
        raise ValueError(f"checkpoint {where}: model_args' num_classes differs from num_classes")
    model = create_model(checkpoint["model_name"], num_classes=checkpoint["num_classes"], **model_args)
    model.load_state_dict(checkpoint["model"], strict=True)
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


# --------------------------------------------------------------------------------------- model card


def _front_matter(config: dict[str, Any], card: WeightsCard | None) -> dict[str, Any]:
    cfg = config["pretrained_cfg"]
    adapter = config["model_args"].get("adapter")
    tags = ["video-classification", "action-recognition", "motion-zoo", config["architecture"]]
    if adapter:
        tags.append(str(adapter))
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
        values = [f"{r.values[m]:.2f}" if m in r.values else "-" for m in names]
        lines.append("| " + " | ".join([r.views, str(r.frames), f"{r.resolution} px", *values]) + " |")
    return "\n".join(lines)


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
    )
    size_text = f", {size:,} bytes" if size is not None else ""
    lines.append(f"- **Weights:** `{WEIGHTS_NAME}` (safetensors), sha256 `{cfg['sha256']}`{size_text}")
    if card is not None:
        lines.append(f"- **Dataset:** {card.dataset} (metrics on split {card.split})")
    for key, label in (("paper", "Paper"), ("license", "License")):
        if cfg.get(key):
            lines.append(f"- **{label}:** {cfg[key]}")

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
        "top5 = probs.topk(5)",
        "print([(cfg.label_names[i], round(p, 3)) for p, i in zip(top5.values[0].tolist(), top5.indices[0].tolist())])",
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
    else:
        lines.append(f"`{cfg['recipe']}` in motion-zoo." if cfg.get("recipe") else "Not recorded.")
    lines += ["", "## Results", ""]
    if card is not None:
        lines += [f"On {card.dataset} ({card.split}), in percent:", "", _metrics_table(card)]
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
    pickles = sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name.endswith(_PICKLE_SUFFIXES))
    if pickles:
        raise ValueError(f"{folder} holds pickle files {pickles}; only safetensors weights are pushed")
    cfg = _read_config(folder / CONFIG_NAME).get("pretrained_cfg") or {}
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
