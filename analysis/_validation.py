"""Input checks shared by the public functions.

Every check raises before any heavy work, with scikit-learn's message template: the
parameter, the function, what is allowed, and what was given. Arrays come back as float64:
numpy arrays for host data, torch tensors for data that already lives on an accelerator (so
the pairwise work runs there).
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

__all__ = [
    "check_array",
    "check_paired",
    "check_same_features",
    "check_callable",
    "check_finite_output",
    "check_int",
    "check_float",
    "check_option",
    "check_solver_options",
    "is_torch_tensor",
    "to_numpy",
]


def is_torch_tensor(x) -> bool:
    """True when ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x) -> np.ndarray:
    """A float64 numpy copy or view of an array or tensor (tensors are moved to the host)."""
    if is_torch_tensor(x):
        import torch

        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(x, *, name: str, func: str, min_samples: int = 2, min_ndim: int = 2, max_ndim: int | None = 2):
    """Validate a sample array and return it in float64.

    Parameters
    ----------
    x : array-like or torch.Tensor
        The samples, first axis indexing them.
    name, func : str
        The parameter and function names used in error messages.
    min_samples : int
        Smallest number of samples allowed.
    min_ndim, max_ndim : int or None
        Allowed number of dimensions (``max_ndim=None``: no upper limit).

    Returns
    -------
    ndarray or torch.Tensor
        A float64 numpy array, or a float64 torch tensor when ``x`` is a tensor on an
        accelerator (it stays on its device).
    """
    if is_torch_tensor(x):
        import torch

        if x.is_complex():
            raise TypeError(
                f"The {name!r} parameter of `{func}` must hold real numbers; got a tensor of dtype {x.dtype}."
            )
        arr = x.detach().to(torch.float64)
        if arr.device.type == "cpu":
            arr = arr.numpy()
    else:
        try:
            probe = np.asarray(x)
        except ValueError as exc:  # ragged nested sequences
            raise ValueError(
                f"The {name!r} parameter of `{func}` must be a rectangular array-like of real "
                f"numbers; got a ragged {type(x).__name__}."
            ) from exc
        if probe.dtype.kind not in "biuf":
            got = f"an array of dtype {probe.dtype}" if probe.ndim else type(x).__name__
            raise TypeError(f"The {name!r} parameter of `{func}` must be an array-like of real numbers; got {got}.")
        arr = np.asarray(probe, dtype=np.float64)
    shape = tuple(arr.shape)
    too_few = len(shape) < min_ndim
    too_many = max_ndim is not None and len(shape) > max_ndim
    if too_few or too_many:
        if max_ndim == min_ndim == 2:
            allowed = "a 2-D array of shape (n_samples, n_features)"
        else:
            allowed = f"an array of at least {min_ndim} dimensions (n_samples, ...)"
        raise ValueError(
            f"The {name!r} parameter of `{func}` must be {allowed}; got an array of shape {_shape(shape)}."
        )
    if shape[0] < min_samples:
        raise ValueError(
            f"The {name!r} parameter of `{func}` must hold at least {min_samples} samples; "
            f"got {shape[0]} (shape {_shape(shape)})."
        )
    if any(s == 0 for s in shape[1:]):
        raise ValueError(
            f"The {name!r} parameter of `{func}` must have at least one feature; got an array of shape {_shape(shape)}."
        )
    bad = int((~np.isfinite(arr)).sum()) if isinstance(arr, np.ndarray) else int((~arr.isfinite()).sum().item())
    if bad:
        raise ValueError(
            f"The {name!r} parameter of `{func}` must contain only finite values; got {bad} NaN or infinite entries."
        )
    return arr


def _co_locate(a, b):
    """Put two validated arrays on one device: both numpy, or both tensors on ``a``'s device."""
    a_t, b_t = is_torch_tensor(a), is_torch_tensor(b)
    if not a_t and not b_t:
        return a, b
    import torch

    device = a.device if a_t else b.device
    a = a.to(device) if a_t else torch.as_tensor(a, device=device)
    b = b.to(device) if b_t else torch.as_tensor(b, device=device)
    return a, b


def check_paired(x, tx, *, func: str, names: tuple[str, str] = ("x", "tx")):
    """Validate a block's input samples and its outputs at the same points (same shape)."""
    x = check_array(x, name=names[0], func=func)
    tx = check_array(tx, name=names[1], func=func)
    if tuple(tx.shape) != tuple(x.shape):
        raise ValueError(
            f"The {names[1]!r} parameter of `{func}` must have the same shape as "
            f"{names[0]!r}, {_shape(x.shape)} (the same points, before and after the map); "
            f"got {_shape(tx.shape)}."
        )
    return _co_locate(x, tx)


def check_same_features(x, y, *, func: str, names: tuple[str, str] = ("x", "y")):
    """Validate two samples of one space: any numbers of samples, equal ``n_features``."""
    x = check_array(x, name=names[0], func=func)
    y = check_array(y, name=names[1], func=func)
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"The {names[1]!r} parameter of `{func}` must have as many features as "
            f"{names[0]!r} ({x.shape[1]}); got an array of shape {_shape(y.shape)}."
        )
    return _co_locate(x, y)


def check_callable(fn, *, name: str, func: str):
    """Raise a TypeError unless ``fn`` is callable."""
    if not callable(fn):
        raise TypeError(
            f"The {name!r} parameter of `{func}` must be a callable mapping (n, ...) tensors "
            f"to (n, ...) tensors; got {type(fn).__name__}."
        )
    return fn


def check_finite_output(out, *, name: str, func: str):
    """Raise a ValueError when a callable's output ``out`` (tensor or array) holds NaN or inf.

    Checked before the output feeds a solver (an eigensolver fed NaN fails with a LAPACK
    error that names nothing the caller gave).
    """
    if is_torch_tensor(out):
        bad = int((~out.detach().isfinite()).sum().item())
        total = out.numel()
    else:
        arr = np.asarray(out, dtype=np.float64)
        bad, total = int((~np.isfinite(arr)).sum()), arr.size
    if bad:
        raise ValueError(
            f"The {name!r} parameter of `{func}` must return finite values; "
            f"got {bad} NaN or infinite entries of {total}."
        )
    return out


def check_int(value, *, name: str, func: str, low: int, high: int | None = None) -> int:
    """Validate an integer parameter in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter of `{func}` must be an int; got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"The {name!r} parameter of `{func}` must be an int {bounds}; got {value!r}.")
    return int(value)


def check_float(
    value,
    *,
    name: str,
    func: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a finite real parameter in a (half-)open or closed interval."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"The {name!r} parameter of `{func}` must be a real number; got {value!r}.")
    v = float(value)
    ok = np.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"The {name!r} parameter of `{func}` must be a finite number in {lo}, {hi}; got {value!r}.")
    return v


def check_solver_options(max_iter, check, memory_budget_gib, *, func: str) -> tuple[int | None, float]:
    """Validate the exact solver's options shared by the public functions:
    ``(max_iter or None, memory budget in GiB)``; ``check`` must be a bool."""
    if max_iter is not None:
        max_iter = check_int(max_iter, name="max_iter", func=func, low=1)
    if not isinstance(check, (bool, np.bool_)):
        raise TypeError(f"The 'check' parameter of `{func}` must be a bool; got {check!r}.")
    budget = check_float(memory_budget_gib, name="memory_budget_gib", func=func, low=0.0, low_open=True)
    return max_iter, budget


def check_option(value, *, name: str, func: str, options) -> str:
    """Validate a string option."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"The {name!r} parameter of `{func}` must be one of {{{listed}}}; got {value!r}.")
    return value
