"""Image data sets: torchvision's MNIST, FashionMNIST, CIFAR-10/100, STL-10, and 8x8 digits.

The torchvision data sets are read from ``data.root`` by torchvision's own classes (and
downloaded there when ``data.download``); the digits come with scikit-learn. Every data set
ends as uint8 or float images ``(n, C, H, W)`` in memory, then:

1. the test set is the data set's own (digits: a seeded stratified 20 %);
2. a stratified validation split of ``data.val_fraction`` is carved out of the training set;
3. the training set is the rest, or a stratified subset of it (``data.train_fraction`` or
   ``data.per_class`` images per class), nested across sizes for one seed;
4. images are scaled to :math:`[0, 1]` and normalised per channel by the usual constants
   (digits: the training split's mean and standard deviation); the training set is
   augmented when fetched if ``data.augment`` and the data set has an augmentation.

All draws are seeded by ``data.seed``. The validation split does not depend on the training
fraction, so runs on shrinking training sets are compared on the same validation images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..config import DataConfig
from ..errors import ConfigError, DataNotFoundError
from .augment import AugmentedImages
from .bundle import DataBundle
from .subsets import fraction_counts, stratified_split

__all__ = ["SPECS", "ImageSpec", "build_image_data", "expected_files"]


@dataclass(frozen=True)
class ImageSpec:
    """What is fixed per data set.

    Attributes
    ----------
    n_classes : int
    mean, std : tuple of float
        Per-channel normalisation of images scaled to [0, 1] (``None`` for digits: the
        training split's own statistics).
    padding : int
        Padding of the random crop of the usual augmentation (with a horizontal flip); 0 for
        no augmentation.
    """

    n_classes: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    padding: int


SPECS: dict[str, ImageSpec] = {
    "mnist": ImageSpec(10, (0.1307,), (0.3081,), 0),
    "fashionmnist": ImageSpec(10, (0.2860,), (0.3530,), 0),
    "cifar10": ImageSpec(10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 4),
    "cifar100": ImageSpec(100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4),
    "stl10": ImageSpec(10, (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713), 12),
    "digits": ImageSpec(10, None, None, 0),
}
"""The usual normalisation constants and augmentation of each image data set."""

DIGITS_TEST_FRACTION = 0.2
"""Share of scikit-learn's 1,797 digits held out (stratified, seeded) as the test set."""


def _torchvision_class(name: str) -> type:
    from torchvision import datasets

    return {
        "mnist": datasets.MNIST,
        "fashionmnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100,
        "stl10": datasets.STL10,
    }[name]


def expected_files(name: str) -> tuple[str, list[str]]:
    """The folder under ``data.root`` and the files in it that torchvision reads for ``name``.

    Taken from torchvision's own class attributes, so they follow its version.

    >>> expected_files("cifar100")
    ('cifar-100-python', ['train', 'test', 'meta'])
    """
    cls = _torchvision_class(name)
    if name in ("mnist", "fashionmnist"):
        return f"{cls.__name__}/raw", [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]
    files = [f for f, _ in cls.train_list + cls.test_list]
    if name in ("cifar10", "cifar100"):
        files.append(cls.meta["filename"])
    return cls.base_folder, files


def _check_files(name: str, root: Path) -> None:
    folder, files = expected_files(name)
    missing = [f for f in files if not (root / folder / f).is_file()]
    if missing:
        which = "all" if len(missing) == len(files) else ", ".join(missing)
        raise DataNotFoundError(
            f"The data set '{name}' is not in '{root / folder}': torchvision expects {', '.join(files)} "
            f"there (missing: {which}); set data.download = true or copy the files there."
        )


def _read_torchvision(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(n, C, H, W)`` and int64 labels of one split, read by torchvision."""
    cls = _torchvision_class(name)
    try:
        if name == "stl10":
            ds = cls(str(root), split="train" if train else "test", download=download)
        else:
            ds = cls(str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:
        action = "could not be downloaded to" if download else "failed torchvision's integrity check in"
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataNotFoundError(f"The data set '{name}' {action} '{root}': {message}") from None
    if name in ("mnist", "fashionmnist"):
        images, labels = ds.data.unsqueeze(1), ds.targets
    elif name == "stl10":
        images, labels = torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))
    else:
        images, labels = torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.as_tensor(ds.targets)
    return images.contiguous(), labels.long()


def _read_digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits in [0, 1], ``(n, 1, 8, 8)``, split into train and test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataNotFoundError(
            "The data set 'digits' is read by scikit-learn, which is not installed: pip install scikit-learn."
        ) from None
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    test, train = stratified_split(labels, fraction_counts(labels, 10, DIGITS_TEST_FRACTION), (seed, 0))
    labels_t = torch.from_numpy(labels)
    return images[train], labels_t[train], images[test], labels_t[test]


def _normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return (x - mean) / std


def _train_indices(labels: np.ndarray, n_classes: int, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training subset and of the validation split, both stratified."""
    val, rest = stratified_split(labels, fraction_counts(labels, n_classes, cfg.val_fraction), (cfg.seed, 1))
    if cfg.per_class == 0 and cfg.train_fraction == 1:
        return rest, val
    if cfg.per_class:
        smallest = int(np.bincount(labels[rest], minlength=n_classes).min())
        if cfg.per_class > smallest:
            raise ConfigError(
                f"The 'data.per_class' config key must be at most {smallest} for '{cfg.name}' (the images of its "
                f"smallest class left after the validation split); got {cfg.per_class}."
            )
        counts = np.full(n_classes, cfg.per_class)
    else:
        counts = fraction_counts(labels[rest], n_classes, cfg.train_fraction)
    picked, _ = stratified_split(labels[rest], counts, (cfg.seed, 2))
    return rest[picked], val


def build_image_data(cfg: DataConfig) -> DataBundle:
    """The train, validation and test splits of the image data set ``cfg.name``.

    Raises
    ------
    DataNotFoundError
        When the files are missing and ``cfg.download`` is false (before anything is read),
        when a download fails, or when the files fail torchvision's integrity check.
    ConfigError
        When ``cfg.per_class`` asks for more images than a class has.
    """
    spec = SPECS[cfg.name]
    if cfg.name == "digits":
        images, labels, test_images, test_labels = _read_digits(cfg.seed)
    else:
        root = Path(cfg.root)
        if not cfg.download:
            _check_files(cfg.name, root)
        images, labels = _read_torchvision(cfg.name, root, True, cfg.download)
        test_images, test_labels = _read_torchvision(cfg.name, root, False, cfg.download)

    train, val = (torch.from_numpy(i) for i in _train_indices(labels.numpy(), spec.n_classes, cfg))
    if spec.mean is None:  # digits: the training split's own statistics, one channel
        mean, std = images[train].mean().view(1, 1, 1, 1), images[train].std().view(1, 1, 1, 1)
    else:
        mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
        std = torch.tensor(spec.std).view(1, -1, 1, 1)

    augmented = cfg.augment and spec.padding > 0
    train_set: Dataset
    if augmented:
        train_set = AugmentedImages(images[train], labels[train], spec.mean, spec.std, spec.padding)
    else:
        train_set = TensorDataset(_normalise(images[train], mean, std), labels[train])
    return DataBundle(
        train=train_set,
        val=TensorDataset(_normalise(images[val], mean, std), labels[val]),
        test=TensorDataset(_normalise(test_images, mean, std), test_labels),
        n_classes=spec.n_classes,
        input_shape=tuple(images.shape[1:]),
        augmented=augmented,
    )
