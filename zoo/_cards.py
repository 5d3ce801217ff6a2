"""Weights cards: one YAML file per checkpoint, validated on load and read by the registry.

A card says what a checkpoint is (architecture and its arguments), where it lives on the Hugging
Face Hub (with its sha256 and size), how it was made (dataset, recipe, paper) and how well it does
under which evaluation protocol. ``import zoo`` registers every card shipped in ``weights_cards/``
(installed as ``zoo.weights_cards``), so that ``list_pretrained()`` shows them and
``create_model('arch.tag', pretrained=True)`` downloads, checks and loads them.

A card, with every key (the optional ones are marked)::

    name: hcml.k400_r2d_50              # arch.tag: the name create_model takes
    architecture: hcml                  # the registered entrypoint; the arch part of name
    model_args: {backbone: r2d_50, hcml_cfg: {levels: [1, 2, 3]}}   # create_model arguments
    hf_hub_id: motion-zoo/hcml.k400_r2d_50
    hf_hub_filename: model.safetensors  # safetensors only
    hf_hub_revision: main               # optional: branch, tag or commit
    sha256: 64 hex digits of the file
    size: 94371234                      # bytes
    dataset: kinetics400                # trained on
    split: val                          # the metrics were measured on
    recipe: recipes/k400_r2d_50_hcml.yaml
    metrics:                            # one entry per evaluation protocol
      - {views: 10x3, frames: 16, resolution: 224, top1: 74.8, top5: 91.6}
    input: {size: [3, 16, 224, 224], frame_stride: 2, mean: [...], std: [...], crop_pct: 0.875}
    label_names: [abseiling, air drumming, ...]   # index-aligned with the classifier
    license: apache-2.0
    paper: https://arxiv.org/abs/...
    citation: "@inproceedings{...}"     # optional: BibTeX for the model card
    status: published                   # or: trained, not yet published
    notes: free text                    # optional

``views`` is ``temporal clips x spatial crops``; ``frames`` the frames per clip; ``resolution``
the side of the square crop in pixels. Metric values are percentages. ``crop_pct`` (the test-time
centre crop fraction) defaults to 0.875.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._pretrained import PretrainedCfg
from ._registry import get_arch_pretrained_cfgs, list_models, register_pretrained_cfg, split_model_name_tag

__all__ = [
    "WeightsCard",
    "MetricResult",
    "STATUSES",
    "register_weights_card",
    "load_weights_cards",
    "get_weights_card",
    "list_weights_cards",
    "weights_card_model_args",
    "shipped_cards_dir",
    "list_pretrained",
    "list_pretrained",
]

STATUSES = ("published", "trained, not yet published")
_NAME_RE = re.compile(r"^[a-z0-9_]+\.[A-Za-z0-9_\-]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_VIEWS_RE = re.compile(r"^[1-9]\d*x[1-9]\d*$")
_PROTOCOL_KEYS = ("views", "frames", "resolution")
_RESERVED_MODEL_ARGS = ("num_classes", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path")

_cards: dict[str, WeightsCard] = {}
_card_cfgs: dict[str, PretrainedCfg] = {}  # the cfg each card registered, to recognise it in create_model


@dataclass(frozen=True)
class MetricResult:
    """Metric values measured under one evaluation protocol.

    Attributes:
        views: ``'TxS'``: T temporal clips times S spatial crops per video, averaged.
        frames: frames per clip.
        resolution: side of the square crop, in pixels.
        values: metric name -> value in percent, e.g. ``{'top1': 74.8, 'top5': 91.6}``.
    """

    views: str
    frames: int
    resolution: int
    values: dict[str, float]

    def protocol(self) -> str:
        """``'10x3 views, 16 frames, 224 px'``."""
        return f"{self.views} views, {self.frames} frames, {self.resolution} px"

    def to_dict(self) -> dict[str, Any]:
        return {"views": self.views, "frames": self.frames, "resolution": self.resolution, **self.values}


@dataclass(frozen=True)
class WeightsCard:
    """One checkpoint's card (see the module docstring for the YAML form)."""

    name: str
    architecture: str
    model_args: dict[str, Any]
    hf_hub_id: str
    hf_hub_filename: str
    sha256: str
    size: int
    dataset: str
    split: str
    recipe: str
    metrics: tuple[MetricResult, ...]
    input_size: tuple[int, int, int, int]
    frame_stride: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    label_names: tuple[str, ...]
    license: str
    paper: str
    status: str
    crop_pct: float = 0.875
    hf_hub_revision: str | None = None
    citation: str | None = None
    notes: str | None = None
    source: str | None = field(default=None, compare=False)  # the file the card was read from

    @property
    def tag(self) -> str:
        return split_model_name_tag(self.name)[1]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def published(self) -> bool:
        return self.status == "published"

    def to_pretrained_cfg(self, base: PretrainedCfg | None = None) -> PretrainedCfg:
        """The registry's view of the card, over ``base`` (the architecture's default cfg, which gives
        the fields a card does not hold: ``classifier``, ``first_conv``, ``interpolation``).
        ``metrics`` holds the first (headline) result."""
        return dataclasses.replace(
            base or PretrainedCfg(),
            architecture=self.architecture,
            tag=self.tag,
            file=None,
            state_dict=None,
            hf_hub_id=self.hf_hub_id,
            hf_hub_filename=self.hf_hub_filename,
            hf_hub_revision=self.hf_hub_revision,
            sha256=self.sha256,
            input_size=self.input_size,
            frame_stride=self.frame_stride,
            mean=self.mean,
            std=self.std,
            crop_pct=self.crop_pct,
            num_classes=self.num_classes,
            label_names=self.label_names,
            license=self.license,
            paper=self.paper,
            recipe=self.recipe,
            dataset=self.dataset,
            metrics=self.metrics[0].to_dict(),
            notes=self.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        """The card as its YAML holds it."""
        out: dict[str, Any] = {
            "name": self.name,
            "architecture": self.architecture,
            "model_args": dict(self.model_args),
            "hf_hub_id": self.hf_hub_id,
            "hf_hub_filename": self.hf_hub_filename,
        }
        if self.hf_hub_revision is not None:
            out["hf_hub_revision"] = self.hf_hub_revision
        out.update(
            sha256=self.sha256,
            size=self.size,
            dataset=self.dataset,
            split=self.split,
            recipe=self.recipe,
            metrics=[m.to_dict() for m in self.metrics],
            input={
                "size": list(self.input_size),
                "frame_stride": self.frame_stride,
                "mean": list(self.mean),
                "std": list(self.std),
                "crop_pct": self.crop_pct,
            },
            label_names=list(self.label_names),
            license=self.license,
            paper=self.paper,
        )
        if self.citation is not None:
            out["citation"] = self.citation
        out["status"] = self.status
        if self.notes is not None:
            out["notes"] = self.notes
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=120)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> WeightsCard:
        """Validate ``data`` (a parsed YAML card); any problem raises a ValueError naming the key and ``source``."""
        return _CardParser(source).parse(data)

    @classmethod
    def from_file(cls, path: str | Path) -> WeightsCard:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ValueError(f"weights card {path}: not valid YAML: {e}") from e
        return cls.from_dict(data, source=str(path))


_REQUIRED = (
    "name", "architecture", "model_args", "hf_hub_id", "hf_hub_filename", "sha256", "size", "dataset", "split",
    "recipe", "metrics", "input", "label_names", "license", "paper", "status",
)
_OPTIONAL = ("hf_hub_revision", "citation", "notes")
_INPUT_REQUIRED = ("size", "frame_stride", "mean", "std")
_INPUT_OPTIONAL = ("crop_pct",)


class _CardParser:
    """Checks one card's keys and values; errors name the key and the file."""

    def __init__(self, source: str):
        self.source = source

    def error(self, key: str, problem: str) -> ValueError:
        return ValueError(f"weights card {self.source}: key {key!r}: {problem}")

    def check_keys(self, data: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...], where: str):
        for key in required:
            if key not in data:
                raise self.error(where + key, "missing (required)")
        for key in data:
            if key not in required and key not in optional:
                raise self.error(where + str(key), f"unknown key; allowed keys are {sorted(required + optional)}")

    def string(self, data: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, label: str = "") -> str:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(label or key, f"expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.error(label or key, f"{value!r} does not match {pattern.pattern}")
        return value

    def integer(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {value!r}")
        return float(value)

    def parse(self, data: Any) -> WeightsCard:
        if not isinstance(data, dict):
            raise ValueError(f"weights card {self.source}: expected a mapping of keys, got {type(data).__name__}")
        self.check_keys(data, _REQUIRED, _OPTIONAL, "")
        name = self.string(data, "name", _NAME_RE)
        architecture = self.string(data, "architecture")
        if split_model_name_tag(name)[0] != architecture:
            raise self.error("architecture", f"{architecture!r} is not the arch part of name {name!r}")
        model_args = data["model_args"]
        if model_args is None:
            model_args = {}
        if not isinstance(model_args, dict):
            raise self.error("model_args", f"expected a mapping of create_model arguments, got {model_args!r}")
        for key in _RESERVED_MODEL_ARGS:
            if key in model_args:
                raise self.error(f"model_args.{key}", "not allowed in a card (num_classes comes from label_names)")
        filename = self.string(data, "hf_hub_filename")
        if not filename.endswith(".safetensors"):
            raise self.error("hf_hub_filename", f"weights on the Hub are safetensors only, got {filename!r}")
        label_names = data["label_names"]
        if not isinstance(label_names, list) or not label_names or not all(isinstance(n, str) for n in label_names):
            raise self.error("label_names", "expected a non-empty list of strings (class names in classifier order)")
        if len(set(label_names)) != len(label_names):
            dupes = sorted({n for n in label_names if label_names.count(n) > 1})
            raise self.error("label_names", f"duplicate names {dupes}")
        status = data["status"]
        if status not in STATUSES:
            raise self.error("status", f"expected one of {list(STATUSES)}, got {status!r}")
        recipe = self.string(data, "recipe")
        if not (recipe.startswith("recipes/") and recipe.endswith((".yaml", ".yml"))):
            raise self.error("recipe", f"expected a path recipes/NAME.yaml, got {recipe!r}")
        inputs = self.parse_input(data["input"])
        optional = {}
        for key in _OPTIONAL:
            if data.get(key) is not None:
                optional[key] = self.string(data, key)
        return WeightsCard(
            name=name,
            architecture=architecture,
            model_args=model_args,
            hf_hub_id=self.string(data, "hf_hub_id", _HUB_ID_RE),
            hf_hub_filename=filename,
            sha256=self.string(data, "sha256", _SHA256_RE),
            size=self.integer(data["size"], "size"),
            dataset=self.string(data, "dataset"),
            split=self.string(data, "split"),
            recipe=recipe,
            metrics=self.parse_metrics(data["metrics"]),
            label_names=tuple(label_names),
            license=self.string(data, "license"),
            paper=self.string(data, "paper"),
            status=status,
            source=self.source,
            **inputs,
            **optional,
        )

    def parse_input(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error("input", f"expected a mapping with keys {list(_INPUT_REQUIRED)}, got {data!r}")
        self.check_keys(data, _INPUT_REQUIRED, _INPUT_OPTIONAL, "input.")
        size = data["size"]
        if not isinstance(size, list) or len(size) != 4:
            raise self.error("input.size", f"expected [C, T, H, W], got {size!r}")
        size = tuple(self.integer(v, "input.size") for v in size)
        out: dict[str, Any] = {"input_size": size}
        out["frame_stride"] = self.integer(data["frame_stride"], "input.frame_stride")
        for key in ("mean", "std"):
            values = data[key]
            if not isinstance(values, list) or len(values) != size[0]:
                raise self.error(f"input.{key}", f"expected {size[0]} numbers (one per channel), got {values!r}")
            out[key] = tuple(self.number(v, f"input.{key}") for v in values)
        if any(s <= 0 for s in out["std"]):
            raise self.error("input.std", f"expected positive values, got {list(out['std'])}")
        if "crop_pct" in data:
            crop_pct = self.number(data["crop_pct"], "input.crop_pct")
            if not 0 < crop_pct <= 1:
                raise self.error("input.crop_pct", f"expected a fraction in (0, 1], got {crop_pct}")
            out["crop_pct"] = crop_pct
        return out

    def parse_metrics(self, data: Any) -> tuple[MetricResult, ...]:
        if not isinstance(data, list) or not data:
            raise self.error("metrics", "expected a non-empty list of {views, frames, resolution, METRIC: value}")
        results = []
        for i, entry in enumerate(data):
            key = f"metrics[{i}]"
            if not isinstance(entry, dict):
                raise self.error(key, f"expected a mapping, got {entry!r}")
            for p in _PROTOCOL_KEYS:
                if p not in entry:
                    raise self.error(f"{key}.{p}", "missing (the evaluation protocol is required)")
            views = str(entry["views"])
            if not _VIEWS_RE.match(views):
                raise self.error(f"{key}.views", f"expected 'TxS' (temporal clips x spatial crops), got {views!r}")
            values = {str(k): self.number(v, f"{key}.{k}") for k, v in entry.items() if k not in _PROTOCOL_KEYS}
            if not values:
                raise self.error(key, "no metric values (e.g. top1: 74.8)")
            results.append(
                MetricResult(
                    views=views,
                    frames=self.integer(entry["frames"], f"{key}.frames"),
                    resolution=self.integer(entry["resolution"], f"{key}.resolution"),
                    values=values,
                )
            )
        return tuple(results)


def register_weights_card(card: WeightsCard | str | Path) -> WeightsCard:
    """Register a card (or the card file at a path): its ``arch.tag`` joins the registry.

    A card with the name of a registered one replaces it. Register cards after their architecture
    (``import zoo`` does), so that the family's ``classifier`` and ``first_conv`` paths apply.
    """
    if not isinstance(card, WeightsCard):
        card = WeightsCard.from_file(card)
    cfg = card.to_pretrained_cfg(get_arch_pretrained_cfgs(card.architecture).get(""))
    register_pretrained_cfg(card.name, cfg)
    _cards[card.name] = card
    _card_cfgs[card.name] = cfg
    return card


def shipped_cards_dir() -> Path:
    """The folder of the cards that ship with the package (``weights_cards/`` in the repository)."""
    return Path(str(importlib.resources.files("zoo.weights_cards")))


def load_weights_cards(directory: str | Path | None = None) -> list[WeightsCard]:
    """Validate and register every ``*.yaml`` card in ``directory`` (default: the shipped cards).

    Two cards with the same name in one folder raise a ValueError naming both files.
    """
    directory = shipped_cards_dir() if directory is None else Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"weights cards folder not found: {directory}")
    cards: dict[str, WeightsCard] = {}
    for path in sorted(directory.glob("*.y*ml")):
        card = WeightsCard.from_file(path)
        if card.name in cards:
            raise ValueError(f"weights card {card.name!r} is defined twice: {cards[card.name].source} and {path}")
        cards[card.name] = card
    for card in cards.values():
        register_weights_card(card)
    return list(cards.values())


def get_weights_card(name: str) -> WeightsCard:
    """The registered card ``arch.tag``; an unknown name raises a ValueError listing the cards."""
    if name not in _cards:
        raise ValueError(f"no weights card {name!r}; registered cards: {sorted(_cards) or 'none'}")
    return _cards[name]


def list_weights_cards() -> list[str]:
    """Names of the registered cards."""
    return sorted(_cards)


def weights_card_model_args(cfg: PretrainedCfg) -> dict[str, Any]:
    """``create_model`` arguments of the card that registered ``cfg`` (``{}`` for any other cfg).

    ``cfg`` must be the registered object itself, so a tag that was later replaced by
    ``register_pretrained_cfg`` does not pick up a stale card's arguments.
    """
    name = f"{cfg.architecture}.{cfg.tag}"
    if _card_cfgs.get(name) is not cfg:
        return {}
    return dict(_cards[name].model_args)


def list_pretrained(filter: str | Iterable[str] = "", exclude_filters: str | Iterable[str] = "") -> list[str]:
    """The zoo's checkpoints: ``arch.tag`` names that have a weights card (``weights_cards/*.yaml``, or one
    registered with :func:`register_weights_card`).

    Other tags with a source of weights, such as timm's ImageNet initialisations (``r2d_50.timm_in1k``,
    inflated on load), are not checkpoints of ours and have no card: ``list_models(pretrained=True)``
    lists them all.
    """
    carded = set(list_weights_cards())
    return [n for n in list_models(filter, pretrained=True, exclude_filters=exclude_filters) if n in carded]
