"""Reading official checkpoints: mmseg 0.x `.pth` files and the DALL-E decoder in its three forms, and
checking their keys against the modules we build, with errors that name the keys.

Files are read with `torch.load(weights_only=True)` first. `decoder.pkl` is a pickled whole module of
openai's `dall_e` package, which that refuses; it is then read with an unpickler that only builds
an allowlist (torch tensors and storages, torch.nn containers and activations, OrderedDict, numpy
scalars) and stands in empty `nn.Module` subclasses for `dall_e.*` classes, so neither the `dall_e`
package nor arbitrary code from the file is needed: only the state dict is taken.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

# Where an mmseg GSS checkpoint keeps the frozen dVAE (GenerativeSegHeadFF.d_vae = Dalle_VAE, whose
# `encoder` / `decoder` are the loaded dall_e modules, so they are saved with the model).
DVAE_DECODER_PREFIX = "decode_head.d_vae.decoder."
DVAE_ENCODER_PREFIX = "decode_head.d_vae.encoder."
# Prefixes a stand-alone decoder state dict may carry, tried in this order after the full one.
_DECODER_PREFIXES = (DVAE_DECODER_PREFIX, "d_vae.decoder.", "decoder.", "module.", "")


class CheckpointError(ValueError):
    """The file is not a checkpoint this converter understands; the message says which keys."""


class _DallEStub(nn.Module):
    """Stands in for any `dall_e.*` class while unpickling: nn.Module's own __setstate__ restores
    `_parameters` / `_modules`, which is all `state_dict()` needs."""

    def forward(self, *args: Any) -> Any:  # pragma: no cover - never run
        raise RuntimeError("a dall_e module read by gss_convert carries weights only")


_STUBS: dict[tuple[str, str], type] = {}


def _stub(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUBS:
        _STUBS[key] = type(name, (_DallEStub,), {"__module__": module, "__qualname__": name})
    return _STUBS[key]


# No getattr, no copyreg / functools helpers: with those a pickle can reach any function.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (
            module == "__builtin__"
        ):  # protocol-2 pickles (torch.save's) name builtins the Python 2 way
            module = "builtins"
        if module == "dall_e" or module.startswith("dall_e."):
            return _stub(module, name)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module.startswith(("torch.nn.modules.", "torch.nn.parameter")) or module in (
            "torch",
            "torch._utils",
            "torch.storage",
            "torch.serialization",
        ):
            obj = super().find_class(module, name)
            # Classes and torch's tensor-rebuild helpers only, never an arbitrary callable from torch.
            if isinstance(obj, (type, torch.dtype)) or name.startswith("_rebuild"):
                return obj
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} (not a tensor, torch.nn module or dall_e class)"
        )


_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler, load=pickle.load, __name__="gss_convert_restricted_pickle"
)


def load_file(path: Path) -> Any:
    """torch.load on the CPU, safe mode first; see the module docstring for the fallback."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as first:
        try:
            return torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle
            )
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"{path}: cannot read it as a checkpoint: {e} (safe load: {first})"
            ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({e})") from None


def _tensors(obj: Mapping[str, Any], where: str) -> dict[str, torch.Tensor]:
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{where}: entries that are not tensors: {', '.join(map(str, bad[:8]))}"
        )
    return dict(obj)


def model_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The model tensors of an mmseg checkpoint: `{'meta': ..., 'state_dict': {...}}` (mmcv's
    save_checkpoint), a bare state dict, with a DataParallel `module.` prefix stripped."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        state = obj["state_dict"]
    elif (
        isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        state = obj
    else:
        keys = (
            ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
        )
        raise CheckpointError(
            f"{path}: expected an mmseg checkpoint (a dict with 'state_dict'), found {keys}"
        )
    state = _tensors(state, str(path))
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def decoder_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The DALL-E decoder's tensors from `decoder.pkl` (a pickled module), a state dict of it (with or
    without a `decoder.` / `d_vae.decoder.` / full GSS prefix), or a whole GSS checkpoint."""
    if isinstance(obj, nn.Module):
        return {k: v for k, v in obj.state_dict().items()}
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: expected the DALL-E decoder (decoder.pkl or a state dict), found {type(obj).__name__}"
        )
    state = _tensors(obj, str(path))
    for prefix in _DECODER_PREFIXES:
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if any(k.startswith("blocks.") for k in picked):
            return picked
    raise CheckpointError(
        f"{path}: no DALL-E decoder keys (blocks.input.w, ...) under any of the prefixes "
        f"{', '.join(repr(p) for p in _DECODER_PREFIXES)}; found e.g. {', '.join(list(state)[:5])}"
    )


def _fmt(shape: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _listing(keys: list[str], limit: int = 12) -> str:
    more = f", … ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(
    what: str,
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    ignored_prefixes: tuple[str, ...] = (),
    hint: str = "",
) -> None:
    """Raises CheckpointError naming every missing, unexpected and wrongly shaped key (up to a dozen of
    each, with a count). `ignored_prefixes` are known training-only parts that are accepted unread."""
    present = (
        {k for k in state if not k.startswith(ignored_prefixes)} if ignored_prefixes else set(state)
    )
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    wrong = [
        f"{k}: {_fmt(state[k].shape)} in the file, {_fmt(expected[k].shape)} expected"
        for k in sorted(present & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} key(s) with the wrong shape: {_listing(wrong, 6)}")
    raise CheckpointError(f"{what}: " + "; ".join(parts) + (f". {hint}" if hint else ""))


def guess_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which backbone the keys belong to, for a hint when --arch does not match."""
    if any(k.startswith("backbone.patch_embed.") for k in state):
        return "swin-l"
    if any(k.startswith("backbone.stem.") for k in state):
        return "r101"
    return None


__all__ = [
    "CheckpointError",
    "load_file",
    "model_state_dict",
    "decoder_state_dict",
    "check_keys",
    "guess_arch",
    "DVAE_DECODER_PREFIX",
    "DVAE_ENCODER_PREFIX",
]
