"""Recipes: the typed schema of a training run, YAML loading with inheritance, and ``key=value`` overrides.

A recipe is a YAML file whose keys are the fields of :class:`Recipe` (nested dataclasses). An
unknown key is an error naming the key, the file and the closest valid keys; a value of the
wrong type is an error naming the key. ``base: other.yaml`` (a path relative to the recipe's
folder) inherits another recipe: the child's mappings are merged into the base's, its lists
(``stages``, for instance) replace the base's.

>>> recipe = load_recipe('recipes/quickstart.yaml', ['optim.lr=0.05', 'stages.0.epochs=2'])
>>> print(recipe_to_yaml(recipe))
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..layers.temporal_conv import TEMPORAL_CONV_MODES

__all__ = [
    "ModelConfig",
    "DataConfig",
    "OptimConfig",
    "StageConfig",
    "EvalConfig",
    "Recipe",
    "RecipeError",
    "load_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
    "recipe_to_yaml",
    "apply_overrides",
]


@dataclass
class ModelConfig:
    """The network: a registered model, optionally pretrained (``name: hcml`` with ``kwargs.backbone``: any
    backbone with HCML motion adapters)."""

    name: str = MISSING
    """A registered model (``zoo models`` lists them), ``arch.tag``, ``hf-hub:org/repo`` or ``local-dir:/path``."""
    pretrained: bool = False
    """Load the registered pretrained weights of ``name``."""
    checkpoint: str | None = None
    """Initialise from this file (a ``zoo train`` checkpoint or a safetensors state dict) before training;
    a classifier of another size is left at its fresh initialisation."""
    num_classes: int | None = None
    """Classifier size; default: the number of classes of the training set."""
    backbone: str | None = None
    """The backbone of a model that wraps one (``hcml``: any registered name or tag; ``timm2d``: a timm model):
    short for ``kwargs.backbone``, which it replaces."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``create_model`` (``drop_rate``, ``backbone`` for ``timm2d`` and ``hcml``,
    ``hcml_cfg`` for ``hcml`` and the ``hcml_*`` models, ...); a null value removes a keyword a base recipe set."""
    grad_checkpointing: bool = False
    """Recompute activations in backward to save memory."""


@dataclass
class DataConfig:
    """The dataset and its loading: one of ``zoo.data``'s dataset kinds, clip sampling, transforms, batches."""

    kind: str = MISSING
    """``folder``, ``csv``, ``kinetics``, ``ssv1``, ``ssv2``, ``ucf101``, ``moving_digits`` or ``webdataset``
    (shards written by ``zoo data shard``, streamed: :mod:`zoo.data.stream`)."""
    root: str | None = None
    """Dataset folder (``moving_digits``: default ``$ZOO_HOME``, generated when missing; ``webdataset``: the
    shards' folder or URL, with ``<split>/manifest.json``)."""
    train_split: str = "train"
    val_split: str = "val"
    num_frames: int = 16
    """Frames per clip (T)."""
    frame_stride: int = 2
    """Gap between sampled frames."""
    input_size: int | None = None
    """Side of the square crop fed to the model, in pixels; default: the kind's (224; Moving-Digits' frame size)."""
    train_short_side: list[int] | None = None
    """``[min, max]`` short side drawn when training; default: the kind's (``input_size * [256, 320] / 224``)."""
    test_short_side: int | None = None
    """Short side when testing; default: the kind's (``input_size * 256 / 224``)."""
    hflip: bool | None = None
    """Random horizontal flips when training; default: the kind's (off for Something-Something and
    Moving-Digits, whose classes name directions)."""
    temporal_jitter: bool = False
    """Random per-frame offsets of dense clips when training (the HCML paper's temporal jittering)."""
    sampling: str = "dense"
    """``dense`` (``num_frames`` frames ``frame_stride`` apart) or ``segment`` (TSN)."""
    mean: list[float] | None = None
    """Per-channel mean of the [0, 1] frames; default: ImageNet's."""
    std: list[float] | None = None
    reader: str = "decord"
    """Video reader: ``decord``, ``pyav``, ``torchcodec`` or ``auto`` (the fastest available,
    ``zoo.data.readers.auto_readers``); a reader that fails on a file hands it to the next."""
    decode_resize: bool = True
    """Shrink frames to the transform's largest short side while decoding (``train_short_side``'s maximum,
    ``test_short_side``), not after converting them at full size, where the reader does that faster
    (``zoo.data.readers.shrink_ratio``: frames at least twice that size, with decord and PyAV)."""
    strict: bool = False
    """Make a corrupt or too-short video fatal instead of replacing it."""
    batch_size: int = 8
    """Clips per process (per GPU) and step."""
    num_workers: int = 4
    """DataLoader worker processes per training process."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``zoo.data.create_dataset`` for this kind (e.g. the csv file's columns,
    Moving-Digits' generation settings)."""


@dataclass
class OptimConfig:
    """Optimizer, learning-rate scaling and gradient handling."""

    name: str = "sgd"
    """``sgd`` (momentum) or ``adamw``."""
    lr: float = 0.0025
    """Learning rate at ``base_batch_size`` clips per step; scaled linearly with the global batch."""
    base_batch_size: int = 8
    """The batch ``lr`` is given for: the rate used is ``lr * global_batch / base_batch_size``."""
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW's betas."""
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = False
    """Apply weight decay to normalisation weights and biases too (off: only to conv/linear weights)."""
    clip_grad: float | None = None
    """Clip the global gradient norm to this value."""
    accum_steps: int = 1
    """Micro-batches accumulated per optimizer step (the global batch counts them)."""
    warmup_start_factor: float = 0.01
    """Learning rate at the first warm-up step, as a fraction of the peak rate."""
    min_lr_factor: float = 0.0
    """Learning rate at the end of the cosine schedule, as a fraction of the peak rate."""


@dataclass
class StageConfig:
    """One stage of training: an objective, its epochs and schedule, what is frozen."""

    name: str = "train"
    objective: str = "classification"
    """A registered objective (``zoo.methods.list_objectives()``): ``classification``, ``hcml``, ..."""
    objective_cfg: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the objective (HCML: ``stage: level1|level2|level3|joint``, loss weights...)."""
    epochs: int = 1
    warmup_epochs: float = 0.0
    """Linear warm-up length, in epochs, before the cosine decay."""
    lr: float | None = None
    """This stage's ``optim.lr`` (at ``optim.base_batch_size``), when it differs."""
    freeze: list[str] = field(default_factory=list)
    """Parameter-name patterns (fnmatch, e.g. ``'layer1.*'``) to freeze, besides what the objective freezes."""
    trainable: list[str] | None = None
    """When given, only parameters matching these patterns train (a linear probe: ``['head.fc.*']``)."""
    global_bn: bool = False
    """Batch-norm statistics over the global batch (SyncBatchNorm; CUDA only), as the papers' SSL phase."""
    evaluate: bool = True
    """Measure validation accuracy after this stage's epochs (off for self-supervised stages)."""


@dataclass
class EvalConfig:
    """Evaluation: views, metrics and feature probes."""

    split: str | None = None
    """Split to evaluate (default: ``data.val_split``)."""
    accuracy: bool = True
    """Report the classifier's top-1/top-5 (off for self-supervised runs, whose classifier is never trained)."""
    every: int = 1
    """Validate every this many epochs during training (0: only at the end of each stage)."""
    batch_size: int | None = None
    """Videos per evaluation batch (default: ``data.batch_size``)."""
    n_clips: int = 1
    """Clips per video for the final multi-view evaluation."""
    n_crops: int = 1
    """Spatial crops per clip (1 or 3) for the final multi-view evaluation."""
    confusion_matrix: bool = True
    """Write ``confusion_matrix.png`` with the final evaluation."""
    knn: list[int] = field(default_factory=list)
    """k values of kNN retrieval recall@k (val queries against the training set); empty: off."""
    efficacy: bool = False
    """The HCML paper's efficacy score of a linear probe (train vs val accuracy) on ``features``."""
    features: str | None = None
    """Module whose output feeds kNN and the efficacy probe (its map is averaged over T, H, W);
    default: the pooled backbone features (``forward_head(..., pre_logits=True)``)."""
    output: str | None = None
    """File name of ``zoo eval``'s JSON, beside the checkpoint; default ``eval_<n_clips>x<n_crops>.json`` (the end of a
    training run writes ``eval.json``)."""


@dataclass
class Recipe:
    """A training run: model, data, optimizer, stages, evaluation, and where the run lives."""

    name: str = MISSING
    """Run name; the run folder defaults to ``runs/<name>``."""
    base: str | None = None
    """A recipe this one inherits (path relative to this file's folder)."""
    description: str = ""
    seed: int = 0
    output_dir: str | None = None
    """Run folder (checkpoints, metrics, plots); default ``runs/<name>``."""
    save_stage_checkpoints: bool = True
    """Keep a checkpoint of each stage's end (``stage_<name>.pt``) beside ``last.pt`` and ``best.pt``."""
    resume: bool = True
    """Resume the run folder's ``last.pt`` when it holds a run of the same model and recipe (a folder holding
    another model's run is never resumed: the run stops and says so); ``false`` starts over there."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    amp: str = "auto"
    """Mixed precision: ``auto`` (bf16 on CUDA when supported, else fp16; none on CPU), ``bf16``, ``fp16``, ``none``.
    On a CPU ``bf16`` autocasts where the CPU computes bf16 in hardware (AVX512_BF16, AMX, Arm BF16; float32 with a
    warning elsewhere, where it would be emulated and slower); ``fp16`` is CUDA-only."""
    channels_last: bool | None = None
    """Channels-last memory format (``channels_last_3d`` for the clips and 3-D convs, ``channels_last`` for 2-D
    ones); default: on CUDA only (on a CPU it speeds up R2D's per-frame convs and slows 3x3x3 ones:
    ``benchmarks/train_step.py``'s channels_last group)."""
    compile: bool = False
    """``torch.compile`` each stage's objective (the model and its loss in one graph; the kernels' custom ops are
    single nodes of it). If compiling fails, or one function recompiles more than ``compile_recompile_limit``
    times, the run says so and goes on eagerly. Off by default: on a CPU the compile takes minutes of a short run
    (``benchmarks/train_step.py`` measures both)."""
    compile_mode: str = "default"
    """``torch.compile`` mode: ``default``, ``reduce-overhead``, ``max-autotune``, ``max-autotune-no-cudagraphs``."""
    compile_backend: str = "inductor"
    """``torch.compile`` backend (``aot_eager`` traces and checks the graph without generating code)."""
    compile_recompile_limit: int = 8
    """Recompilations allowed per compiled function before the stage continues eagerly."""
    conv_weight_grad: str = "auto"
    """How CPU training computes convolutions' weight gradients: ``conv`` (as a convolution, for the stride-1
    convolutions where that was measured faster: ``zoo.layers.use_weight_grad_as_conv``), ``native`` (PyTorch's
    own kernel) or ``auto`` (``conv`` on a CPU whose PyTorch capability is AVX2, where it was measured:
    ``benchmarks/conv_weight_grad.py``; ``native`` elsewhere and on CUDA)."""
    temporal_conv: str = "auto"
    """How CPU runs compute temporal 3-D convolutions (``kt x 1 x 1`` kernels: R(2+1)D, S3D, SlowFast): ``conv2d``
    (as 2-D convolutions of a ``(T, H * W)`` view, oneDNN's kernel: ``zoo.layers.use_conv2d_for_temporal_convs``),
    ``native`` (PyTorch's ``conv3d``, its slow im2col path on a CPU) or ``auto`` (``conv2d`` on a CPU, ``native``
    on CUDA; ``benchmarks/train_step.py``'s ``temporal_conv`` group)."""
    deterministic: bool = False
    """Deterministic algorithms (slower on CUDA); CPU runs are deterministic anyway."""
    threads: int | None = None
    """torch intra-op threads per process (CPU runs)."""
    log_every: int = 20
    """Write training metrics every this many optimizer steps."""
    progress: bool = True
    """tqdm progress bars (rank 0 only)."""
    max_steps_per_epoch: int | None = None
    """Cap on optimizer steps per epoch (smoke tests, short runs)."""
    max_epochs: int | None = None
    """Cap on every stage's epochs (smoke tests)."""
    checkpoint: str | None = None
    """Weights ``zoo eval`` evaluates (default: the run folder's ``last.pt``)."""
    compare: list[str] = field(default_factory=list)
    """Recipes (paths relative to this file's folder) trained after this one, with the same overrides;
    the final table lists the top-1 of all of them."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig()])
    eval: EvalConfig = field(default_factory=EvalConfig)


class RecipeError(ValueError):
    """A recipe that does not fit the schema (unknown key, wrong type, missing value)."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _check_keys(raw: Any, cls: type, path: str, source: str) -> None:
    """Raise a :class:`RecipeError` for the first key of ``raw`` that ``cls`` (a dataclass) has no field for."""
    if not isinstance(raw, dict):
        where = path or "the recipe"
        raise RecipeError(f"{source}: {where} must be a mapping, got {type(raw).__name__} {raw!r}")
    types = _field_types(cls)
    for key, value in raw.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in types:
            close = difflib.get_close_matches(str(key), list(types), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise RecipeError(f"{source}: unknown key {full!r}{hint} (valid keys here: {', '.join(types)})")
        tp = _unwrap(types[key])
        if dataclasses.is_dataclass(tp) and value is not None:
            _check_keys(value, tp, full, source)
        elif typing.get_origin(tp) is list and value is not None:
            (item_tp,) = typing.get_args(tp)
            if dataclasses.is_dataclass(item_tp):
                if not isinstance(value, list):
                    raise RecipeError(f"{source}: {full} must be a list, got {value!r}")
                for i, item in enumerate(value):
                    _check_keys(item, item_tp, f"{full}.{i}", source)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    _check_keys(raw, Recipe, "", str(path))
    return raw


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) in ``child`` replaces ``base``'s."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise RecipeError(f"{path}: recipe inheritance loops through {' -> '.join(str(p) for p in seen)}")
    raw = _read_yaml(path)
    base = raw.get("base")
    if base:
        raw = _merge(_load_raw(path.parent / base, (*seen, path)), {k: v for k, v in raw.items() if k != "base"})
    return raw


def _structured(raw: dict[str, Any], source: str) -> Any:
    try:
        return OmegaConf.merge(OmegaConf.structured(Recipe), raw)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        message = str(e).splitlines()[0]
        raise RecipeError(f"{source}: {key + ': ' if key else ''}{message}") from None


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: Any, overrides: Sequence[str], source: str = "override") -> Any:
    """Apply ``key=value`` overrides (dotted keys, list items by index: ``stages.0.epochs=2``) to a config.

    Values are parsed as YAML (``1e-3``, ``[256, 320]``, ``null``, ``true``). An unknown key or a
    value of the wrong type raises a :class:`RecipeError` naming it.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"{source}: expected key=value, got {item!r}")
        value = _parse_value(text)
        _check_override_key(key, source)  # first, for a did-you-mean message
        parts = key.split(".")
        for i, part in enumerate(parts):
            container = OmegaConf.select(config, ".".join(parts[:i])) if i else config
            if part.isdigit() and OmegaConf.is_list(container) and int(part) >= len(container):
                raise RecipeError(f"{source} {item!r}: {'.'.join(parts[:i])} has {len(container)} items")
        try:
            OmegaConf.update(config, key, value, merge=False)
        except OmegaConfBaseException as e:
            raise RecipeError(f"{source} {item!r}: {str(e).splitlines()[0]}") from None
    return config


def _check_override_key(key: str, source: str) -> None:
    cls: Any = Recipe
    parts = key.split(".")
    for i, part in enumerate(parts):
        if cls is None:  # inside a free-form dict (options, kwargs, objective_cfg)
            return
        if part.isdigit():
            continue
        types = _field_types(cls)
        if part not in types:
            close = difflib.get_close_matches(part, list(types), n=3)
            hint = f"; did you mean {' or '.join(repr('.'.join([*parts[:i], c])) for c in close)}?" if close else ""
            raise RecipeError(f"{source}: unknown key {key!r}{hint}")
        tp = _unwrap(types[part])
        if typing.get_origin(tp) is list:
            (tp,) = typing.get_args(tp)
        cls = tp if dataclasses.is_dataclass(tp) else None


def recipe_from_dict(raw: dict[str, Any], overrides: Sequence[str] = (), source: str = "recipe") -> Recipe:
    """Validate a recipe mapping (and overrides) against the schema and return the :class:`Recipe`."""
    _check_keys(raw, Recipe, "", source)
    config = _structured(raw, source)
    apply_overrides(config, overrides, source=f"{source}: override")
    missing = sorted(k for k in _missing_keys(config))
    if missing:
        raise RecipeError(f"{source}: missing value for {', '.join(missing)}")
    recipe = OmegaConf.to_object(config)
    _fold_backbone(recipe.model, source)
    _validate(recipe, source)
    return recipe


WRAPPER_MODELS = ("hcml", "timm2d")  # the models whose ``backbone`` keyword names another model


def _fold_backbone(model: ModelConfig, source: str) -> None:
    """``model.backbone`` into ``model.kwargs['backbone']`` (one place for it in the resolved recipe)."""
    if model.backbone is None:
        return
    if model.name not in WRAPPER_MODELS:
        raise RecipeError(f"{source}: model.backbone is for models that wrap a backbone ({', '.join(WRAPPER_MODELS)}); "
                          f"model.name is {model.name!r}: set model.name to the backbone instead")
    model.kwargs["backbone"] = model.backbone
    model.backbone = None


def _missing_keys(config: Any, prefix: str = "") -> list[str]:
    out = []
    for key in config:
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(config, key):
            out.append(full)
            continue
        value = config[key]
        if OmegaConf.is_dict(value) and OmegaConf.get_type(value) is not dict:
            out += _missing_keys(value, full + ".")
    return out


def _validate(recipe: Recipe, source: str) -> None:
    """Checks across fields that the types alone do not express."""
    choices = {
        "optim.name": (recipe.optim.name, ("sgd", "adamw")),
        "amp": (recipe.amp, ("auto", "none", "bf16", "fp16")),
        "compile_mode": (recipe.compile_mode,
                         ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")),
        "eval.n_crops": (recipe.eval.n_crops, (1, 3)),
        "conv_weight_grad": (recipe.conv_weight_grad, ("auto", "conv", "native")),
        "temporal_conv": (recipe.temporal_conv, TEMPORAL_CONV_MODES),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise RecipeError(f"{source}: {key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    if not recipe.stages:
        raise RecipeError(f"{source}: stages must list at least one stage")
    positive = {"data.batch_size": recipe.data.batch_size, "optim.accum_steps": recipe.optim.accum_steps,
                "compile_recompile_limit": recipe.compile_recompile_limit,
                "data.num_frames": recipe.data.num_frames, "optim.base_batch_size": recipe.optim.base_batch_size,
                "eval.n_clips": recipe.eval.n_clips}
    for i, stage in enumerate(recipe.stages):
        positive[f"stages.{i}.epochs"] = stage.epochs
        if not 0 <= stage.warmup_epochs <= stage.epochs:
            raise RecipeError(f"{source}: stages.{i}.warmup_epochs must lie in [0, epochs={stage.epochs}]")
    for key, value in positive.items():
        if value < 1:
            raise RecipeError(f"{source}: {key} must be at least 1; got {value}")
    names = [s.name for s in recipe.stages]
    if len(set(names)) != len(names):
        raise RecipeError(f"{source}: stage names must differ (they name the checkpoints); got {names}")
    if recipe.data.train_short_side is not None and len(recipe.data.train_short_side) != 2:
        raise RecipeError(f"{source}: data.train_short_side must be [min, max]; got {recipe.data.train_short_side}")


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe file (following ``base:``), apply ``key=value`` overrides, validate, return it.

    Raises:
        FileNotFoundError: the file (or a base) does not exist.
        RecipeError: an unknown key (named, with the file and the closest valid keys), a value
            of the wrong type, or a missing required value.
    """
    path = Path(path)
    raw = _load_raw(path)
    raw.pop("base", None)
    # Companion recipes are named relative to this file; keep them findable from anywhere.
    raw["compare"] = [str((path.parent / p).resolve()) for p in raw.get("compare") or []]
    return recipe_from_dict(raw, overrides, source=str(path))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain dicts and lists (what checkpoints store)."""
    return dataclasses.asdict(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (printed at start and saved as ``recipe.yaml`` in the run folder)."""
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, default_flow_style=None, width=120)
