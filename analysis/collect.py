"""Per-block input/output samples of any residual network: a chain of blocks, or named sub-modules."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._callables import as_tensor_for, eval_mode
from ._results import Result
from ._validation import check_array, check_callable, check_int

__all__ = ["BlockSample", "collect_blocks"]

#: Child names under which common residual blocks keep their shortcut (torchvision: ``downsample``).
_SHORTCUT_NAMES = ("downsample", "shortcut", "projection", "proj")


@dataclass(frozen=True, eq=False)
class BlockSample(Result):
    """One block's inputs and outputs at the same points.

    Attributes
    ----------
    index : int
        Position of the block (0 for the first): in the chain, or in ``names``.
    x_in : ndarray of shape (n, d_in)
        Inputs of the block (or its shortcut image, see ``shortcuts`` in
        :func:`collect_blocks`), flattened per sample, float64, read-only.
    x_out : ndarray of shape (n, d_out)
        Outputs at the same points, in the same order (read-only; for a chain, the same array
        as the next block's ``x_in``).
    name : str or None
        The sub-module's name in the model (``model.named_modules()``) when collected by name;
        None for a chain of blocks.
    """

    index: int
    x_in: np.ndarray
    x_out: np.ndarray
    name: str | None = None


def collect_blocks(blocks, x, batch_size=1024, *, names=None, shortcuts=None, residuals=None):
    r"""Keep every block's inputs and outputs: run a chain of blocks, or hook named sub-modules.

    *Chain* (``names=None``): with :math:`\psi_0 = x` and :math:`\psi_{k+1} = T_k(\psi_k)`,
    block ``k`` gets the sample :math:`(\psi_k, \psi_{k+1})`.

    *Named sub-modules* (``names`` given): ``blocks`` is a whole model, run as ``blocks(x)``;
    forward hooks record the input :math:`x` and the output :math:`T(x)` of each named
    sub-module :math:`T` during that forward pass. For a block

    .. math::

        T(x) = \sigma\big(P(x) + g(x)\big)

    with shortcut :math:`P` (the identity unless the block changes shape), residual branch
    :math:`g` and an activation :math:`\sigma` after the sum (torchvision's ``BasicBlock``:
    ReLU), the sample is :math:`(x, T(x))`, or :math:`(P(x), T(x))` with ``shortcuts``, or
    :math:`(P(x), P(x) + g(x))`, the residual map before :math:`\sigma`, with ``residuals``.
    Every sample is flattened to ``(n, d)`` float64.

    Parameters
    ----------
    blocks : sequence of callable, torch.nn.Sequential, torch.nn.ModuleList or torch.nn.Module
        Without ``names``: the blocks :math:`T_0, T_1, \dots` in application order, torch
        modules or functions mapping an ``(n, ...)`` tensor to an ``(n, ...)`` tensor (a
        ``Sequential`` or ``ModuleList`` stands for the list of its children). With ``names``:
        the model, a module whose forward takes the batch.
    x : array-like or torch.Tensor of shape (n, ...)
        Inputs of the first block, or of the model. Converted to the device and floating
        dtype of the first parameter found in the modules (float64 on its own device when
        there is none).
    batch_size : int, default=1024
        Points per forward pass.
    names : sequence of str, optional
        Sub-modules of ``blocks`` to record, as in ``blocks.named_modules()`` (e.g.
        ``["layer1.0", "layer2.0"]``), each run exactly once per forward pass, with the batch
        as first argument, keeping its shape: a block that changes shape (stride 2, more
        channels) needs an entry in ``shortcuts``.
    shortcuts : mapping of str to str, optional
        Block name to the sub-module computing its shortcut image :math:`P(x)`, which then
        replaces the block's input in the sample (torchvision: ``{"layer2.0":
        "layer2.0.downsample"}``): the block is compared with its shortcut image, which has
        the output's shape, rather than with an input of another shape.
    residuals : mapping of str to str, optional
        Block name to the sub-module whose output is the residual branch :math:`g(x)`
        (torchvision's ``BasicBlock``: ``"<block>.bn2"``): the block's output in the sample is
        then :math:`P(x) + g(x)`, the sum before the activation that follows it.

    Returns
    -------
    list of BlockSample
        One per block, in order (the order of ``names`` when given).

    Raises
    ------
    ValueError
        Unknown names, a sub-module that did not run or ran more than once per forward pass,
        or a block whose output shape differs from its input's (or its shortcut image's).

    Notes
    -----
    Runs under ``torch.no_grad()`` with every module in eval mode (restored afterwards), so
    BatchNorm uses and keeps its running statistics. Blocks must act on each sample
    independently (true of residual blocks in eval mode), otherwise the batch size changes
    the result. Hooks copy what they record at once, so in-place activations (``ReLU(inplace=
    True)``) later in the forward pass do not change it. In a chain, a block may change the
    feature dimension (``d_in != d_out``); :func:`map_vs_ot` and :func:`holder_fit` then
    refuse the sample. Memory: one float64 ``(n, d)`` array per recorded tensor.

    Examples
    --------
    >>> import torch
    >>> from analysis import collect_blocks
    >>> samples = collect_blocks([lambda h: 2 * h, lambda h: h + 1], torch.zeros(3, 2))
    >>> samples[1].x_in[0].tolist(), samples[1].x_out[0].tolist()
    ([0.0, 0.0], [1.0, 1.0])
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())
    >>> [s.name for s in collect_blocks(net, torch.zeros(3, 2), names=["1"])]
    ['1']
    """
    func = "collect_blocks"
    if names is None:
        for option, value in (("shortcuts", shortcuts), ("residuals", residuals)):
            if value is not None:
                raise TypeError(
                    f"The {option!r} parameter of `{func}` applies to named sub-modules only; "
                    f"got {option}={value!r} with names=None (pass names=[...] and the whole model)."
                )
        return _collect_chain(blocks, x, batch_size, func)
    return _collect_named(blocks, x, batch_size, names, shortcuts, residuals, func)


def _collect_chain(blocks, x, batch_size, func):
    if isinstance(blocks, (torch.nn.Sequential, torch.nn.ModuleList)):
        blocks = list(blocks)
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)) or not blocks:
        raise TypeError(
            f"The 'blocks' parameter of `{func}` must be a non-empty sequence of callables, an "
            f"nn.Sequential or an nn.ModuleList (or a model, with names=[...]); got {type(blocks).__name__}"
            + (" of length 0." if isinstance(blocks, Sequence) and not blocks else ".")
        )
    for k, block in enumerate(blocks):
        check_callable(block, name=f"blocks[{k}]", func=func)
    check_array(x, name="x", func=func, min_samples=1, max_ndim=None)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)

    h_all = as_tensor_for(blocks, x)
    n = h_all.shape[0]
    boundaries = [[] for _ in range(len(blocks) + 1)]
    with torch.no_grad(), eval_mode(blocks):
        for start in range(0, n, batch_size):
            h = h_all[start : start + batch_size]
            boundaries[0].append(_flat(h))
            for k, block in enumerate(blocks):
                out = block(h)
                if not isinstance(out, torch.Tensor) or out.shape[:1] != h.shape[:1]:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
                    raise ValueError(
                        f"The 'blocks[{k}]' parameter of `{func}` must return a tensor of "
                        f"shape ({h.shape[0]}, ...) for an input of shape {tuple(h.shape)}; "
                        f"got {got}."
                    )
                boundaries[k + 1].append(_flat(out))
                h = out
    arrays = [np.concatenate(parts) for parts in boundaries]
    for a in arrays:
        a.setflags(write=False)
    return [BlockSample(index=k, x_in=arrays[k], x_out=arrays[k + 1]) for k in range(len(blocks))]


def _collect_named(model, x, batch_size, names, shortcuts, residuals, func):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"The 'blocks' parameter of `{func}` must be a torch.nn.Module when 'names' is given "
            f"(the model whose sub-modules are named); got {type(model).__name__}."
        )
    modules = dict(model.named_modules())
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
        raise TypeError(
            f"The 'names' parameter of `{func}` must be a non-empty sequence of sub-module names "
            f"(as in model.named_modules()); got {names!r}."
        )
    for name in names:
        _check_name(name, modules, "names", func)
    if len(set(names)) != len(names):
        raise ValueError(f"The 'names' parameter of `{func}` must not repeat a name; got {list(names)!r}.")
    parts = {}  # option -> {block name: sub-module name}
    for option, mapping in (("shortcuts", shortcuts), ("residuals", residuals)):
        mapping = {} if mapping is None else mapping
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"The {option!r} parameter of `{func}` must be a mapping of block names to "
                f"sub-module names; got {type(mapping).__name__}."
            )
        for block, part in mapping.items():
            if block not in names:
                raise ValueError(
                    f"The {option!r} parameter of `{func}` must have keys among 'names' {list(names)!r}; got {block!r}."
                )
            _check_name(part, modules, f"{option}[{block!r}]", func)
        parts[option] = dict(mapping)
    check_array(x, name="x", func=func, min_samples=1, max_ndim=None)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)

    # (role, module name) -> one list of flattened batches; shapes per sample from the first batch.
    wanted = [("in", b) for b in names if b not in parts["shortcuts"]] + [("out", b) for b in names]
    wanted += [("out", s) for s in parts["shortcuts"].values()] + [("out", r) for r in parts["residuals"].values()]
    wanted = list(dict.fromkeys(wanted))
    records = {key: [] for key in wanted}
    shapes = {}
    calls = {}
    batch = [0]  # points in the current forward pass, read by the hooks

    def record(key, t, n_batch):
        if not isinstance(t, torch.Tensor) or t.shape[:1] != (n_batch,):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            word = "take" if key[0] == "in" else "return"
            raise ValueError(
                f"The sub-module {key[1]!r} named in `{func}` must {word} a tensor of shape "
                f"({n_batch}, ...) as its first {'argument' if key[0] == 'in' else 'output'} "
                f"for a batch of {n_batch}; got {got}."
            )
        calls[key] = calls.get(key, 0) + 1
        shapes.setdefault(key, tuple(t.shape[1:]))
        records[key].append(_flat(t))

    h_all = as_tensor_for([model], x)
    n = h_all.shape[0]
    handles = []
    try:
        for role, name in wanted:
            module = modules[name]
            if role == "in":
                handles.append(
                    module.register_forward_pre_hook(
                        lambda m, args, key=(role, name): record(key, args[0] if args else None, batch[0])
                    )
                )
            else:
                handles.append(
                    module.register_forward_hook(lambda m, args, out, key=(role, name): record(key, out, batch[0]))
                )
        with torch.no_grad(), eval_mode([model]):
            for start in range(0, n, batch_size):
                h = h_all[start : start + batch_size]
                batch[0] = h.shape[0]
                calls.clear()
                model(h)
                for key in wanted:
                    if calls.get(key, 0) != 1:
                        raise ValueError(
                            f"The sub-module {key[1]!r} named in `{func}` must run exactly once per "
                            f"forward pass of the model; it ran {calls.get(key, 0)} times (name the "
                            f"module that applies it once, or a container of it)."
                        )
    finally:
        for handle in handles:
            handle.remove()

    samples = []
    for k, name in enumerate(names):
        source = ("out", parts["shortcuts"][name]) if name in parts["shortcuts"] else ("in", name)
        residual = parts["residuals"].get(name)
        _check_shapes(name, shapes, source, residual, modules, func)
        x_in = np.concatenate(records[source])
        if residual is None:
            x_out = np.concatenate(records[("out", name)])
        else:
            x_out = x_in + np.concatenate(records[("out", residual)])
        x_in.setflags(write=False)
        x_out.setflags(write=False)
        samples.append(BlockSample(index=k, x_in=x_in, x_out=x_out, name=name))
    return samples


def _check_name(name, modules, option, func):
    if isinstance(name, str) and name in modules and name != "":
        return
    close = difflib.get_close_matches(str(name), [m for m in modules if m], n=3)
    hint = f" (closest: {', '.join(map(repr, close))})" if close else ""
    raise ValueError(
        f"The {option!r} parameter of `{func}` must name sub-modules of the model, as in "
        f"model.named_modules(); got {name!r}{hint}."
    )


def _check_shapes(name, shapes, source, residual, modules, func):
    shape_in, shape_out = shapes[source], shapes[("out", name)]
    if shape_in != shape_out and source[0] == "out":
        raise ValueError(
            f"The 'shortcuts' parameter of `{func}` must name, for block {name!r}, a sub-module "
            f"whose output has the block's output shape {shape_out}; got {source[1]!r} with output shape {shape_in}."
        )
    if shape_in != shape_out:
        children = [c for c, _ in modules[name].named_children() if c in _SHORTCUT_NAMES]
        candidate = f"{name}.{children[0]}" if children else "<its shortcut sub-module>"
        raise ValueError(
            f"The 'names' parameter of `{func}` names block {name!r}, which maps shape {shape_in} to "
            f"{shape_out}: compare a dimension-changing block with its shortcut image, "
            f"shortcuts={{{name!r}: {candidate!r}}}, or leave it out."
        )
    if residual is not None and shapes[("out", residual)] != shape_in:
        raise ValueError(
            f"The 'residuals' parameter of `{func}` must name, for block {name!r}, a sub-module whose "
            f"output has the block's output shape {shape_in}; got {residual!r} with output shape "
            f"{shapes[('out', residual)]}."
        )


def _flat(t: torch.Tensor) -> np.ndarray:
    """A float64 host copy of ``t``, one row per sample (a copy even when ``t`` is float64 on the
    CPU, so a later in-place operation cannot change it)."""
    return t.detach().reshape(t.shape[0], -1).to(device="cpu", dtype=torch.float64, copy=True).numpy()
