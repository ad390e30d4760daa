"""Running user callables (torch modules or functions of tensors) for the analysis."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["eval_mode", "input_like", "as_tensor_for"]


def _modules(fns):
    return [fn for fn in fns if isinstance(fn, torch.nn.Module)]


@contextlib.contextmanager
def eval_mode(fns):
    """Put the torch modules among ``fns`` in eval mode, and restore their modes after.

    A block analysed in train mode would use batch statistics and update BatchNorm's
    running averages, so measuring it would change it.
    """
    saved = [(m, m.training) for module in _modules(fns) for m in module.modules()]
    try:
        for module in _modules(fns):
            module.eval()
        yield
    finally:
        for m, training in saved:
            m.training = training


def input_like(fns):
    """Device and floating dtype of the first parameter or buffer of the modules in ``fns``.

    Returns ``(None, None)`` when there is none (plain functions): inputs then keep their
    own device, in float64.
    """
    for module in _modules(fns):
        for t in (*module.parameters(), *module.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return None, None


def as_tensor_for(fns, x):
    """``x`` as a torch tensor on the device and in the dtype the callables expect."""
    device, dtype = input_like(fns)
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if dtype is None:  # plain functions: float tensors keep their dtype, the rest is float64
        floating = isinstance(x, torch.Tensor) and t.is_floating_point()
        dtype = t.dtype if floating else torch.float64
    return t.to(device=device if device is not None else t.device, dtype=dtype)
