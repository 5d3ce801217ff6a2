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
the side of the square crop in pixels; optional ``frame_rate`` (fps) or ``frame_stride`` say how the
frames were sampled. Metric values are percentages. ``crop_pct`` (the test-time centre crop fraction)
defaults to 0.875; ``input.resize_size`` (optional) is the eval resize: an int for the short side,
``[H, W]`` for an exact size. ``intended_use`` (optional, any card) is free text for the model card.

A card for weights another project publishes (torchvision's, pytorchvideo's) names the source's file
by ``url`` instead of ``hf_hub_id``, ``hf_hub_filename``, ``sha256`` and ``size``::

    name: r3d_18.tv_k400
    provider: torchvision               # who publishes the weights
    provider_weights: torchvision.models.video.R3D_18_Weights.KINETICS400_V1   # optional: their name
    url: https://download.pytorch.org/models/r3d_18-b3b3357e.pth
    hash_prefix: b3b3357e               # optional: the sha256 prefix the source publishes
    recipe: https://github.com/...      # a URL, or a recipes/ path
    label_names: kinetics400            # a list, or a label set the package ships (zoo._pretrained.LABEL_SETS)
    num_classes: 174                    # optional; required when label_names is absent

and the other keys as above. Without ``hash_prefix`` the source publishes no hash: the file's sha256
is recorded beside it on first use and checked afterwards (``zoo._hub``). When the architecture's
family defines the tag too (its ``default_cfgs``), the card must agree with that cfg (source, input,
transform, metrics, provenance): registering it raises a ValueError naming each field that differs.
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

from ._pretrained import LABEL_SETS, PretrainedCfg, label_set
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
_URL_RE = re.compile(r"^(https?|file)://\S+$")
_HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
_PROTOCOL_KEYS = ("views", "frames", "resolution", "frame_rate", "frame_stride")
_RESERVED_MODEL_ARGS = ("num_classes", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path")

_cards: dict[str, WeightsCard] = {}
_card_cfgs: dict[str, PretrainedCfg] = {}  # the cfg each card registered, to recognise it in create_model
_family_cfgs: dict[str, PretrainedCfg] = {}  # tags a family's default_cfgs define, as they were before any card


@dataclass(frozen=True)
class MetricResult:
    """Metric values measured under one evaluation protocol.

    Attributes:
        views: ``'TxS'``: T temporal clips times S spatial crops per video, averaged.
        frames: frames per clip.
        resolution: side of the square crop, in pixels.
        values: metric name -> value in percent, e.g. ``{'top1': 74.8, 'top5': 91.6}``.
        frame_rate, frame_stride: how the frames were sampled (fps, or every n-th frame), when known.
    """

    views: str
    frames: int
    resolution: int
    values: dict[str, float]
    frame_rate: float | None = None
    frame_stride: int | None = None

    def protocol(self) -> str:
        """``'10x3 views, 16 frames, 224 px'`` (with ``' at 15 fps'`` or ``' every 5th frame'`` when known)."""
        sampling = f" at {self.frame_rate:g} fps" if self.frame_rate else ""
        sampling += f", every {_ordinal(self.frame_stride)} frame" if self.frame_stride else ""
        return f"{self.views} views, {self.frames} frames{sampling}, {self.resolution} px"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"views": self.views, "frames": self.frames, "resolution": self.resolution}
        out.update({k: getattr(self, k) for k in ("frame_rate", "frame_stride") if getattr(self, k) is not None})
        return {**out, **self.values}


def _ordinal(n: int) -> str:
    return "" if n == 1 else f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@dataclass(frozen=True)
class WeightsCard:
    """One checkpoint's card (see the module docstring for the YAML form)."""

    name: str
    architecture: str
    model_args: dict[str, Any]
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
    hf_hub_id: str | None = None  # a zoo checkpoint on the Hub: hf_hub_id, hf_hub_filename, sha256, size
    hf_hub_filename: str | None = None
    sha256: str | None = None
    size: int | None = None
    url: str | None = None  # weights another project publishes: url, provider (hash_prefix if it publishes one)
    hash_prefix: str | None = None
    provider: str | None = None
    provider_weights: str | None = None
    class_count: int | None = None  # the card's num_classes, when it lists no label names
    crop_pct: float = 0.875
    resize_size: int | tuple[int, int] | None = None
    hf_hub_revision: str | None = None
    intended_use: str | None = None
    citation: str | None = None
    notes: str | None = None
    source: str | None = field(default=None, compare=False)  # the file the card was read from

    @property
    def tag(self) -> str:
        return split_model_name_tag(self.name)[1]

    @property
    def num_classes(self) -> int:
        return self.class_count if self.class_count is not None else len(self.label_names)

    @property
    def external(self) -> bool:
        """True for weights another project publishes at ``url`` (not a zoo checkpoint on the Hub)."""
        return self.url is not None

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
            hf_hub_filename=self.hf_hub_filename or "model.safetensors",
            hf_hub_revision=self.hf_hub_revision,
            sha256=self.sha256,
            url=self.url,
            hash_prefix=self.hash_prefix,
            input_size=self.input_size,
            frame_stride=self.frame_stride,
            mean=self.mean,
            std=self.std,
            crop_pct=self.crop_pct,
            resize_size=self.resize_size,
            num_classes=self.num_classes,
            label_names=self.label_names or None,
            license=self.license,
            paper=self.paper,
            recipe=self.recipe,
            dataset=self.dataset,
            metrics=self.metrics[0].to_dict(),
            notes=self.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        """The card as its YAML holds it."""
        out: dict[str, Any] = {"name": self.name, "architecture": self.architecture}
        out["model_args"] = dict(self.model_args)
        keys = _EXTERNAL_KEYS if self.external else _HUB_KEYS
        out.update({k: getattr(self, k) for k in keys if getattr(self, k) is not None})
        out.update(
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
                **({"resize_size": self.resize_size if isinstance(self.resize_size, int) else list(self.resize_size)}
                   if self.resize_size is not None else {}),
            },
        )
        named = [n for n in LABEL_SETS if self.label_names and label_set(n) == self.label_names]
        if self.label_names:
            out["label_names"] = named[0] if named else list(self.label_names)
        if self.class_count is not None:
            out["num_classes"] = self.class_count
        out.update(license=self.license, paper=self.paper)
        for key in ("intended_use", "citation"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
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


_COMMON = ("name", "architecture", "model_args", "dataset", "split", "recipe", "metrics", "input", "license", "paper",
           "status")
_REQUIRED = _COMMON + ("hf_hub_id", "hf_hub_filename", "sha256", "size", "label_names")
_OPTIONAL = ("hf_hub_revision", "intended_use", "citation", "notes")
_EXTERNAL_REQUIRED = _COMMON + ("url", "provider")
_EXTERNAL_OPTIONAL = ("hash_prefix", "provider_weights", "label_names", "num_classes", "intended_use", "citation",
                      "notes")
_EXTERNAL_KEYS = ("provider", "provider_weights", "url", "hash_prefix")
_HUB_KEYS = ("hf_hub_id", "hf_hub_filename", "hf_hub_revision", "sha256", "size")
_INPUT_REQUIRED = ("size", "frame_stride", "mean", "std")
_INPUT_OPTIONAL = ("crop_pct", "resize_size")


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
        if "url" in data:  # weights another project publishes
            if "hf_hub_id" in data:
                raise self.error("url", "a card names its weights by hf_hub_id (a zoo checkpoint) or by url, not both")
            self.check_keys(data, _EXTERNAL_REQUIRED, _EXTERNAL_OPTIONAL, "")
        else:
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
        source = self.parse_external(data) if "url" in data else self.parse_hub(data)
        label_names = self.parse_label_names(data)
        if source.get("class_count") is not None and label_names and len(label_names) != source["class_count"]:
            raise self.error("num_classes", f"{source['class_count']} classes, but {len(label_names)} label names")
        status = data["status"]
        if status not in STATUSES:
            raise self.error("status", f"expected one of {list(STATUSES)}, got {status!r}")
        recipe = self.string(data, "recipe")
        if not (recipe.startswith("recipes/") and recipe.endswith((".yaml", ".yml"))) and not _URL_RE.match(recipe):
            raise self.error("recipe", f"expected a path recipes/NAME.yaml or a URL, got {recipe!r}")
        inputs = self.parse_input(data["input"])
        optional = {}
        for key in ("hf_hub_revision", "intended_use", "citation", "notes"):
            if data.get(key) is not None:
                optional[key] = self.string(data, key)
        return WeightsCard(
            name=name,
            architecture=architecture,
            model_args=model_args,
            **source,
            dataset=self.string(data, "dataset"),
            split=self.string(data, "split"),
            recipe=recipe,
            metrics=self.parse_metrics(data["metrics"]),
            label_names=label_names,
            license=self.string(data, "license"),
            paper=self.string(data, "paper"),
            status=status,
            source=self.source,
            **inputs,
            **optional,
        )

    def parse_hub(self, data: dict[str, Any]) -> dict[str, Any]:
        filename = self.string(data, "hf_hub_filename")
        if not filename.endswith(".safetensors"):
            raise self.error("hf_hub_filename", f"weights on the Hub are safetensors only, got {filename!r}")
        return dict(
            hf_hub_id=self.string(data, "hf_hub_id", _HUB_ID_RE),
            hf_hub_filename=filename,
            sha256=self.string(data, "sha256", _SHA256_RE),
            size=self.integer(data["size"], "size"),
        )

    def parse_external(self, data: dict[str, Any]) -> dict[str, Any]:
        if "label_names" not in data and "num_classes" not in data:
            raise self.error("num_classes", "missing (required when the card lists no label_names)")
        out = dict(url=self.string(data, "url", _URL_RE), provider=self.string(data, "provider"))
        if data.get("hash_prefix") is not None:
            out["hash_prefix"] = self.string(data, "hash_prefix", _HEX_RE)
        if data.get("provider_weights") is not None:
            out["provider_weights"] = self.string(data, "provider_weights")
        if data.get("num_classes") is not None:
            out["class_count"] = self.integer(data["num_classes"], "num_classes")
        return out

    def parse_label_names(self, data: dict[str, Any]) -> tuple[str, ...]:
        label_names = data.get("label_names")
        if label_names is None:
            return ()
        if isinstance(label_names, str):
            if label_names not in LABEL_SETS:
                raise self.error("label_names", f"a list of names, or one of the shipped sets {sorted(LABEL_SETS)}")
            return label_set(label_names)
        if not isinstance(label_names, list) or not label_names or not all(isinstance(n, str) for n in label_names):
            raise self.error("label_names", "expected a non-empty list of strings (class names in classifier order)")
        if len(set(label_names)) != len(label_names):
            dupes = sorted({n for n in label_names if label_names.count(n) > 1})
            raise self.error("label_names", f"duplicate names {dupes}")
        return tuple(label_names)

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
        resize = data.get("resize_size")
        if resize is not None:
            if isinstance(resize, list) and len(resize) == 2:
                out["resize_size"] = tuple(self.integer(v, "input.resize_size") for v in resize)
            else:
                out["resize_size"] = self.integer(resize, "input.resize_size")
        return out

    def parse_metrics(self, data: Any) -> tuple[MetricResult, ...]:
        if not isinstance(data, list) or not data:
            raise self.error("metrics", "expected a non-empty list of {views, frames, resolution, METRIC: value}")
        results = []
        for i, entry in enumerate(data):
            key = f"metrics[{i}]"
            if not isinstance(entry, dict):
                raise self.error(key, f"expected a mapping, got {entry!r}")
            for p in _PROTOCOL_KEYS[:3]:  # views, frames, resolution; the sampling is optional
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
                    frame_rate=self.number(entry["frame_rate"], f"{key}.frame_rate") if "frame_rate" in entry else None,
                    frame_stride=self.integer(entry["frame_stride"], f"{key}.frame_stride")
                    if "frame_stride" in entry else None,
                )
            )
        return tuple(results)


def register_weights_card(card: WeightsCard | str | Path) -> WeightsCard:
    """Register a card (or the card file at a path): its ``arch.tag`` joins the registry.

    A card with the name of a registered one replaces it. Register cards after their architecture
    (``import zoo`` does), so that the family's ``classifier`` and ``first_conv`` paths apply. A card
    of external weights (``url``) whose tag the family defines keeps the family's cfg, which it must
    agree with: a disagreement raises a ValueError naming the card's file and each field.
    """
    if not isinstance(card, WeightsCard):
        card = WeightsCard.from_file(card)
    family = _family_cfg(card.name) if card.external else None
    if family is not None:
        differences = _disagreements(card, family)
        if differences:
            raise ValueError(
                f"weights card {card.name} ({card.source}) disagrees with the tag its family defines "
                f"(zoo/models/, default_cfgs): {'; '.join(differences)}. Make the card state what the cfg does."
            )
        cfg = family
    else:
        cfg = card.to_pretrained_cfg(get_arch_pretrained_cfgs(card.architecture).get(""))
    register_pretrained_cfg(card.name, cfg)
    _cards[card.name] = card
    _card_cfgs[card.name] = cfg
    return card


def _family_cfg(name: str) -> PretrainedCfg | None:
    """The cfg an architecture's family defines for ``name`` (before any card was registered for it)."""
    if name not in _family_cfgs:
        arch, tag = split_model_name_tag(name)
        existing = get_arch_pretrained_cfgs(arch).get(tag)
        if existing is not None and existing is not _card_cfgs.get(name):
            _family_cfgs[name] = existing
    return _family_cfgs.get(name)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
    return a == b


def _disagreements(card: WeightsCard, cfg: PretrainedCfg) -> list[str]:
    """``'field: card X, cfg Y'`` for each field an external card states differently from ``cfg``."""
    ours = card.to_pretrained_cfg(cfg)
    fields = ("url", "hash_prefix", "input_size", "frame_stride", "mean", "std", "crop_pct", "resize_size",
              "num_classes", "label_names", "license", "paper", "recipe", "dataset")
    out = [f"{f}: card {getattr(ours, f)!r}, cfg {getattr(cfg, f)!r}" for f in fields
           if (f != "label_names" or card.label_names) and not _same(getattr(ours, f), getattr(cfg, f))]
    headline = card.metrics[0]
    stated = {"top1": headline.values.get("top1"), "top5": headline.values.get("top5"), "views": headline.views,
              "clip_len": headline.frames, "frame_rate": headline.frame_rate, "frame_stride": headline.frame_stride}
    out += [f"metrics.{k}: card {v!r}, cfg {cfg.metrics.get(k)!r}" for k, v in stated.items()
            if v is not None and not _same(v, cfg.metrics.get(k))]
    return out


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
