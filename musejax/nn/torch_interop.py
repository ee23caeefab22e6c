"""Convert recurrent-stack weights to and from PyTorch state dicts (numpy in/out; torch is never imported).

torch.nn.GRU / LSTM / RNN store per layer k: weight_ih_l{k} (G*H, I), weight_hh_l{k} (G*H, H), bias_ih_l{k},
bias_hh_l{k} (G*H,), gates in the order musejax uses (GRU r, z, n; LSTM i, f, g, o). A musejax stack
(`params["rnn"]` of a model) is {"layer_k": {"w_x" (I, G*H), "b_x", "w_h" (H, G*H), "b_h"}}: the same numbers,
weights transposed. The default "gru" cell is exactly torch.nn.GRU; "gru-cho" has no torch counterpart.
torch.nn.Linear weight (O, H) / bias (O,) map to a Flax Dense kernel (H, O) / bias (O,).
Only unidirectional, batch-agnostic, bias=True modules without proj_size are supported.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor: detach from autograd, move to host
        value = value.detach().cpu().numpy()
    return np.array(value)  # a writable copy: torch.from_numpy warns on read-only views of JAX buffers


def rnn_params_from_torch(state_dict: Mapping[str, Any], *, prefix: str = "") -> dict[str, dict[str, np.ndarray]]:
    """torch.nn.GRU/LSTM/RNN state dict (keys optionally under `prefix`, e.g. "gru.") -> musejax stack params."""
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        match = _KEY.match(key[len(prefix):])
        if match is None:
            if key[len(prefix):].startswith(("weight_", "bias_")):
                raise ValueError(f"musejax/nn/torch_interop.py: unsupported recurrent weight {key!r} "
                                 "(bidirectional, proj_size or missing bias are not supported)")
            continue
        layers.setdefault(int(match.group(2)), {})[match.group(1)] = _to_numpy(value)
    if not layers:
        raise ValueError(f"musejax/nn/torch_interop.py: no weight_ih_l0 ... keys under prefix {prefix!r}")
    if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"musejax/nn/torch_interop.py: layers {sorted(layers)} are not 0..{len(layers) - 1}")
    params = {}
    for k in range(len(layers)):
        missing = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"} - set(layers[k])
        if missing:
            raise ValueError(f"musejax/nn/torch_interop.py: layer {k} lacks {sorted(missing)} (bias=False "
                             "modules are not supported)")
        w_ih, w_hh = layers[k]["weight_ih"], layers[k]["weight_hh"]
        if w_hh.ndim != 2 or w_ih.ndim != 2 or w_hh.shape[0] % w_hh.shape[1] or w_ih.shape[0] != w_hh.shape[0]:
            raise ValueError(f"musejax/nn/torch_interop.py: layer {k}: inconsistent shapes "
                             f"weight_ih {w_ih.shape}, weight_hh {w_hh.shape}")
        params[f"layer_{k}"] = {"w_x": np.ascontiguousarray(w_ih.T), "b_x": layers[k]["bias_ih"],
                                "w_h": np.ascontiguousarray(w_hh.T), "b_h": layers[k]["bias_hh"]}
    return params


def rnn_params_to_torch(stack_params: Mapping[str, Mapping[str, Any]], *, prefix: str = "") -> dict[str, np.ndarray]:
    """musejax stack params {"layer_k": {w_x, b_x, w_h, b_h}} -> state dict for torch.nn.GRU/LSTM/RNN
    (wrap values with torch.from_numpy before load_state_dict)."""
    n_layers = len(stack_params)
    if sorted(stack_params) != [f"layer_{k}" for k in range(n_layers)]:
        raise ValueError(f"musejax/nn/torch_interop.py: expected keys layer_0..layer_{n_layers - 1}; got "
                         f"{sorted(stack_params)}")
    state = {}
    for k in range(n_layers):
        layer = stack_params[f"layer_{k}"]
        state[f"{prefix}weight_ih_l{k}"] = np.ascontiguousarray(_to_numpy(layer["w_x"]).T)
        state[f"{prefix}weight_hh_l{k}"] = np.ascontiguousarray(_to_numpy(layer["w_h"]).T)
        state[f"{prefix}bias_ih_l{k}"] = _to_numpy(layer["b_x"])
        state[f"{prefix}bias_hh_l{k}"] = _to_numpy(layer["b_h"])
    return state


def dense_params_from_torch(weight: Any, bias: Any) -> dict[str, np.ndarray]:
    """torch.nn.Linear weight (O, H), bias (O,) -> Flax Dense {"kernel" (H, O), "bias" (O,)}."""
    return {"kernel": np.ascontiguousarray(_to_numpy(weight).T), "bias": _to_numpy(bias)}


def dense_params_to_torch(dense_params: Mapping[str, Any], *, prefix: str = "") -> dict[str, np.ndarray]:
    """Flax Dense {"kernel", "bias"} -> torch.nn.Linear state dict {prefix+"weight", prefix+"bias"}."""
    return {f"{prefix}weight": np.ascontiguousarray(_to_numpy(dense_params["kernel"]).T),
            f"{prefix}bias": _to_numpy(dense_params["bias"])}
