"""The pretrained config: timm's ``PretrainedCfg`` idea with the fields a video model needs."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
LABEL_SETS = {"kinetics400": "kinetics400_labels.txt"}  # label sets the package ships: name -> file in zoo/


@functools.cache
def label_set(name: str) -> tuple[str, ...]:
    """The class names of a label set the package ships, index-aligned with the classifiers trained on it.

    ``'kinetics400'``: the 400 Kinetics-400 classes in the standard index (sorted by name), as torchvision's
    ``torchvision.models._meta._KINETICS400_CATEGORIES`` lists them (copied into ``zoo/kinetics400_labels.txt``,
    so that no model imports torchvision). torchvision's and pytorchvideo's Kinetics-400 heads both use this order.
    """
    if name not in LABEL_SETS:
        raise ValueError(f"unknown label set {name!r}; the package ships {sorted(LABEL_SETS)}")
    path = Path(__file__).with_name(LABEL_SETS[name])
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def kinetics400_label_names() -> tuple[str, ...]:
    """The 400 Kinetics-400 class names (``label_set('kinetics400')``)."""
    return label_set("kinetics400")


@dataclass
class PretrainedCfg:
    """What a model (and its weights, when it has any) expects and where its weights come from.

    Attributes:
        architecture: registered architecture name (``arch``), set by the registry.
        tag: pretrained tag (the ``tag`` in ``arch.tag``), ``''`` for the default config.
        file: a local weights file (safetensors, or a torch file loaded with ``weights_only=True``).
        state_dict: weights given directly.
        hf_hub_id: ``org/repo`` on the Hugging Face Hub; ``hf_hub_filename`` the file in it;
            ``hf_hub_revision`` a branch, tag or commit.
        sha256: hex digest the weights file must have; checked before loading.
        url: an external weights file (torchvision's or pytorchvideo's), downloaded once into
            torch.hub's cache, ``$TORCH_HOME/hub/checkpoints/<the URL's file name>``.
        hash_prefix: the leading hex digits of the URL file's sha256 that its source publishes
            (torchvision's file names carry them); checked on download and before loading.
        input_size: ``(C, T, H, W)`` of one clip at the model's default resolution.
        frame_stride: frames skipped between sampled frames (1 = consecutive frames).
        mean, std: per-channel normalisation of ``[0, 1]`` pixel values.
        crop_pct: centre-crop fraction used at test time (resize short side to H / crop_pct).
        resize_size: eval resize before the centre crop: an int resizes the short side, a pair
            ``(H, W)`` resizes to exactly that size; ``None`` resizes the short side to
            ``H / crop_pct``.
        min_size, min_frames: the smallest ``H, W`` and ``T`` the weights accept (None: no bound).
        num_classes: classes of the classifier the weights were trained with.
        label_names: class names, index-aligned with the classifier.
        classifier: module path of the classifier (dropped when num_classes differs).
        first_conv: module path of the first conv (adapted when in_chans differs).
        license, paper, recipe, dataset: provenance. ``metrics`` maps metric names to values,
            e.g. ``{'top1': 74.8, 'top5': 91.6, 'views': '10x3', 'clip_len': 16, 'frame_rate': 15}``
            (as the source states them). ``num_params`` and ``gflops``: the source's stated size
            and cost per view.
    """

    architecture: str | None = None
    tag: str = ""
    file: str | None = None
    state_dict: dict[str, Any] | None = None
    hf_hub_id: str | None = None
    hf_hub_filename: str = "model.safetensors"
    hf_hub_revision: str | None = None
    sha256: str | None = None
    url: str | None = None
    hash_prefix: str | None = None
    input_size: tuple[int, int, int, int] = (3, 16, 224, 224)
    frame_stride: int = 2
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    resize_size: int | tuple[int, int] | None = None
    min_size: int | None = None
    min_frames: int | None = None
    num_classes: int = 400
    label_names: tuple[str, ...] | None = None
    classifier: str | None = "fc"
    first_conv: str | None = "stem.conv"
    license: str | None = None
    paper: str | None = None
    recipe: str | None = None
    dataset: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    num_params: int | None = None
    gflops: float | None = None
    notes: str | None = None

    @property
    def has_weights(self) -> bool:
        """True when the cfg names a source of weights."""
        return bool(self.file or self.state_dict is not None or self.hf_hub_id or self.url)

    def to_dict(self, remove_source: bool = False) -> dict[str, Any]:
        """A plain dict (tuples as lists where JSON needs it); drops the state dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "state_dict"}
        if remove_source:
            for key in ("file", "hf_hub_revision"):
                out.pop(key, None)
        return out

    def merged(self, overlay: dict[str, Any] | None) -> PretrainedCfg:
        """A copy with the keys of ``overlay`` set; unknown keys raise a ValueError naming them."""
        if not overlay:
            return replace(self)
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overlay) - known)
        if unknown:
            raise ValueError(f"unknown pretrained cfg field(s) {unknown}; known fields are {sorted(known)}")
        values = dict(overlay)
        for key in ("input_size", "mean", "std", "label_names"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if isinstance(values.get("resize_size"), list):
            values["resize_size"] = tuple(values["resize_size"])
        return replace(self, **values)


def video_cfg(**kwargs: Any) -> PretrainedCfg:
    """Shorthand used by the model families' ``default_cfgs`` tables."""
    return PretrainedCfg().merged(kwargs)
