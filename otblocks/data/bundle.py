"""The data a run trains on: train/validation/test splits (:class:`DataBundle`) and how to iterate them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["DataBundle", "iterate_batches"]


@dataclass(frozen=True)
class DataBundle:
    """Three disjoint splits of one problem.

    Attributes
    ----------
    train, val, test : torch.utils.data.Dataset
        ``val`` chooses the best depth; ``test`` is only ever reported.
    n_classes : int
    input_shape : tuple of int
        Shape of one input, e.g. ``(2,)`` or ``(3, 32, 32)``.
    augmented : bool
        Whether ``train`` applies random augmentation (then frozen outputs cannot be cached).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    n_classes: int
    input_shape: tuple[int, ...]
    augmented: bool = False

    def split(self, name: str) -> Dataset:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"The 'split' parameter must be one of {{'train', 'val', 'test'}}; got {name!r}.")
        return getattr(self, name)


def iterate_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches; the order is fixed by ``seed`` alone.

    In-memory :class:`~torch.utils.data.TensorDataset` splits are sliced directly (no
    per-sample collation); other data sets go through a :class:`~torch.utils.data.DataLoader`
    whose generator is seeded with ``seed``, so worker augmentation is reproducible too.
    ``pin_memory`` (for CUDA) pins the batches of CPU tensors so the copy to the GPU can
    overlap with compute.
    """
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        n = len(y)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        pin = pin_memory and x.device.type == "cpu"
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size].to(x.device)
            xb, yb = x[index], y[index.to(y.device)]
            yield (xb.pin_memory(), yb.pin_memory()) if pin else (xb, yb)
        return
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    yield from loader
