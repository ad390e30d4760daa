"""Weight initialisation of a built network (``model.init``, ``model.init_gain``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["init_weights"]


def init_weights(net: nn.Module, scheme: str, gain: float = 1.0) -> None:
    """Re-initialise every convolution and linear layer of ``net`` in place.

    ``default`` keeps PyTorch's initialisation. ``orthogonal``: (semi-)orthogonal weights
    times ``gain`` (the papers' parallel runs use gain 0.1). ``kaiming``: He normal
    initialisation (fan-out, ReLU) times ``gain``. Biases are set to zero; BatchNorm layers
    keep weight 1 and bias 0.
    """
    if scheme == "default":
        return
    if scheme not in ("orthogonal", "kaiming"):
        raise ValueError(
            "The 'scheme' parameter of `init_weights` must be one of {'default', 'orthogonal', 'kaiming'}; "
            f"got {scheme!r}."
        )
    for layer in net.modules():
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            continue
        if scheme == "orthogonal":
            nn.init.orthogonal_(layer.weight, gain=gain)
        else:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            with torch.no_grad():
                layer.weight.mul_(gain)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
