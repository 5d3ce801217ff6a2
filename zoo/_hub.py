"""Downloads: ``hf-hub:`` / ``local-dir:`` folders, weights cards' Hub files, and external URLs.

- Hub files go through ``huggingface_hub.hf_hub_download`` and its cache (``HF_HOME``,
  ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``). Weights are safetensors; a pickle (``pytorch_model.bin``)
  is read only by ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
  containers. A weights card's (or ``config.json``'s) sha256 is checked before the file is read
  (:func:`load_weights_file`); a cached file that fails it is removed from the cache (its blob and
  snapshot link), so that a retry downloads it afresh instead of failing the same way.
- External weights (torchvision's and pytorchvideo's files, a cfg's ``url``) go through torch.hub's
  cache, ``$TORCH_HOME/hub/checkpoints/<the URL's file name>``, so a file a user already downloaded
  with torchvision is reused, never copied. A download shows progress, lands under a temporary name
  and is renamed only when complete, and is checked against the source's ``hash_prefix``. The file's
  sha256 is recorded beside it (``<file>.sha256``) on first use and checked on every later one.

What a zoo export folder holds is :mod:`zoo._export`'s (the writing side).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from ._cards import WeightsCard, get_weights_card, list_weights_cards
from ._helpers import load_state_dict_file, sha256_file
from ._pretrained import PretrainedCfg

_logger = logging.getLogger(__name__)

__all__ = [
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "RECIPE_NAME",
    "README_NAME",
    "HubFileUnavailableError",
    "WeightsUnavailableError",
    "split_hub_id",
    "hub_download",
    "endpoint_reachable",
    "download_cfg_weights",
    "load_weights_file",
    "url_cache_path",
    "download_url_weights",
    "read_config",
    "load_model_config",
]

WEIGHTS_NAME = "model.safetensors"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"  # read with weights_only=True, never written
CONFIG_NAME = "config.json"
RECIPE_NAME = "recipe.yaml"
README_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pyth", ".pkl", ".pickle", ".ckpt", ".tar")
CONFIG_CFG_FIELDS = (  # the pretrained-cfg fields config.json carries (no source paths, no state dict)
    "tag", "hf_hub_id", "hf_hub_filename", "sha256", "input_size", "frame_stride", "mean", "std", "crop_pct",
    "interpolation", "resize_size", "min_size", "min_frames", "num_classes", "classifier", "first_conv", "license",
    "paper", "recipe", "dataset", "metrics", "notes",
)


class WeightsUnavailableError(FileNotFoundError):
    """A weights file is neither in its local cache nor downloadable (offline, or the source unreachable)."""


class HubFileUnavailableError(WeightsUnavailableError):
    """A Hub file is neither in the local cache nor downloadable (offline, or the Hub unreachable)."""


# ----------------------------------------------------------------------------------------- download


def split_hub_id(hub_id: str) -> tuple[str, str | None]:
    """``'org/repo@rev'`` -> ``('org/repo', 'rev')``; no ``@`` -> ``('org/repo', None)``."""
    repo_id, sep, revision = hub_id.partition("@")
    if not repo_id or (sep and not revision) or "@" in revision:
        raise ValueError(f"expected a Hub id 'org/repo' or 'org/repo@revision', got {hub_id!r}")
    return repo_id, revision or None


_REACHABLE: dict[str, bool] = {}


def endpoint_reachable(endpoint: str, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to ``endpoint``'s host opens within ``timeout_s`` (asked once per process)."""
    if endpoint not in _REACHABLE:
        parsed = urlparse(endpoint)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
            _REACHABLE[endpoint] = True
        except OSError:
            _REACHABLE[endpoint] = False
    return _REACHABLE[endpoint]


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
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    # One short connection attempt first: an unreachable endpoint then costs seconds, not the client's
    # retries (about 23 s a file); the cache still serves what it holds.
    local_only = not constants.is_offline_mode() and not endpoint_reachable(constants.ENDPOINT)
    try:
        return hf_hub_download(repo_id, filename, revision=revision, library_name="motion-zoo",
                               local_files_only=local_only)
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


def _discard_from_hub_cache(path: Path) -> list[Path]:
    """Remove ``path`` from the Hugging Face cache: the snapshot link and the blob it points to (nothing
    for a file outside the cache). Returns what was removed."""
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE).absolute()
    link = Path(os.path.abspath(path))
    if cache not in link.parents:
        return []
    targets = [link]
    if link.is_symlink() and cache.resolve() in link.resolve().parents:
        targets.append(link.resolve())  # the blob (a copy instead of a link where symlinks are not supported)
    removed = []
    for target in targets:
        try:
            target.unlink()
            removed.append(target)
        except FileNotFoundError:
            pass
        except OSError as e:  # a read-only cache: say so; the sha256 error still stands
            _logger.warning("could not remove %s from the Hugging Face cache: %s", target, e)
    return removed


def load_weights_file(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """:func:`zoo._helpers.load_state_dict_file` of ``path``, its sha256 checked first (when given). A file of
    the Hugging Face cache that fails the check is removed from the cache (blob and snapshot link), so that the
    next load downloads it afresh; the error says so."""
    path = Path(path)
    if expected_sha256 and path.is_file():
        actual = sha256_file(path)
        if actual.lower() != expected_sha256.lower():
            removed = _discard_from_hub_cache(path)
            note = (f" It was removed from the Hugging Face cache ({', '.join(str(p) for p in removed)}): the next "
                    "load downloads it afresh." if removed else "")
            raise ValueError(
                f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}. "
                f"The file is corrupt or was replaced; it was not loaded.{note}"
            )
    return load_state_dict_file(path)


def read_config(path: str | Path) -> dict[str, Any]:
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
        config = read_config(hub_download(repo_id, CONFIG_NAME, revision))
        arch, cfg, model_args = _parse_config(config, f"hf-hub:{name}/{CONFIG_NAME}")
        path, filename = _hub_weights(repo_id, revision, cfg.hf_hub_filename or WEIGHTS_NAME)
        cfg.hf_hub_id, cfg.hf_hub_revision = repo_id, revision
    elif source == "local-dir":
        folder = Path(name).expanduser()
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"local-dir:{name}: no {CONFIG_NAME} in {folder} (`zoo export` writes one)")
        arch, cfg, model_args = _parse_config(read_config(config_path), str(config_path))
        candidates = [cfg.hf_hub_filename or WEIGHTS_NAME, WEIGHTS_NAME, PICKLE_WEIGHTS_NAME]
        found = [folder / c for c in dict.fromkeys(candidates) if (folder / c).is_file()]
        if not found:
            raise FileNotFoundError(f"local-dir:{name}: no weights file ({' or '.join(dict.fromkeys(candidates))})")
        path, filename = str(found[0]), found[0].name
    else:
        raise ValueError(f"unknown model source {source!r}; use 'hf-hub' or 'local-dir'")
    if filename != cfg.hf_hub_filename:
        cfg.sha256 = None  # config.json's sha256 is that of its own weights file
    if filename.endswith(PICKLE_SUFFIXES):
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


# --------------------------------------------------------------------------------- external URLs


def url_cache_path(url: str) -> Path:
    """Where torch.hub keeps the file of ``url``: ``$TORCH_HOME/hub/checkpoints/<the URL's file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _url_unavailable_error(url: str, path: Path, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"the weights file {path.name} is not in torch.hub's cache ({path}) and {reason}. Two ways out: "
        f"go online (unset HF_HUB_OFFLINE; check the connection) so that it is downloaded from {url} once; or "
        f"download {url} where the network is reachable and put the file at {path} (or point TORCH_HOME at "
        "a folder whose hub/checkpoints/ holds it)."
    )


def _download_url(url: str, path: Path, hash_prefix: str | None) -> None:
    """Download ``url`` to ``path`` (progress bar; a temporary file renamed when complete; the hash
    prefix checked before the rename); a failure leaves no file at ``path``."""
    if _offline():
        raise _url_unavailable_error(url, path, "HF_HUB_OFFLINE is set")
    path.parent.mkdir(parents=True, exist_ok=True)
    _logger.info("downloading %s to %s", url, path)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    except RuntimeError as e:  # torch.hub's hash-prefix mismatch; the partial file is already removed
        raise ValueError(f"{url}: the downloaded file does not have the sha256 prefix {hash_prefix}: {e}") from None
    except OSError as e:  # URLError, timeouts, a refused connection
        raise _url_unavailable_error(url, path, f"the download failed ({e})") from None


def _check_recorded_sha256(path: Path) -> str:
    """The sha256 of ``path``, checked against the one recorded beside it (``<file>.sha256``) on first
    use, or recorded now."""
    record = path.with_name(path.name + ".sha256")
    actual = sha256_file(path)
    if record.is_file():
        expected = record.read_text().split()[0] if record.read_text().strip() else ""
        if expected and expected != actual:
            raise ValueError(
                f"{path} has sha256 {actual}, but {expected} was recorded for it ({record}) when it was first "
                f"used: the file was replaced or is corrupt. Delete both files to download it again, or delete "
                f"{record} to accept the new file."
            )
    else:
        try:
            record.write_text(f"{actual}  {path.name}\n")
        except OSError:  # a read-only cache: nothing recorded, nothing lost
            _logger.info("could not record the sha256 of %s beside it", path)
    return actual


def download_url_weights(cfg: PretrainedCfg) -> dict[str, torch.Tensor]:
    """The state dict of the file a cfg names by ``url``, from torch.hub's cache or downloaded into it.

    A file that cannot be read (a truncated or corrupt download) is removed from the cache with
    its sha256 record and refused, so that the next call downloads it afresh.

    Raises:
        WeightsUnavailableError: not cached, and offline or the URL unreachable (names the URL, the
            cache path and the ways out).
        ValueError: a hash mismatch (download or recorded sha256) or an unreadable file.
    """
    url = cfg.url
    path = url_cache_path(url)
    if not path.is_file():
        _download_url(url, path, cfg.hash_prefix)
    _check_recorded_sha256(path)
    try:
        return load_state_dict_file(path)
    except ValueError as e:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
        raise ValueError(
            f"{e}\nThe file was removed from torch.hub's cache; the next load downloads it again from {url}."
        ) from None
