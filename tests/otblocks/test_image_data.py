"""Image data: torchvision's on-disk formats, stratified splits, augmentation, digits, errors.

The CIFAR-10 and MNIST files here are tiny random data sets written in the real formats
(python pickle batches; idx files, uncompressed, under ``MNIST/raw`` as torchvision 0.29
reads them) and read through torchvision's own classes. Accuracies on them mean nothing.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset
from torchvision import datasets

from otblocks import ConfigError, DataNotFoundError, build_model, load_config, train
from otblocks.cli import main
from otblocks.config import IMAGE_DATASETS
from otblocks.data import build_data
from otblocks.data.augment import AugmentedImages
from otblocks.data.images import SPECS
from otblocks.data.subsets import fraction_counts, stratified_split

PER_CLASS_TRAIN = 12  # CIFAR-10: 120 training images, 5 batches of 24
PER_CLASS_TEST = 3


def _images_with_ids(n: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random uint8 images whose first two bytes spell their index (to check disjointness)."""
    x = rng.integers(0, 256, size=(n, int(np.prod(shape))), dtype=np.uint8)
    x[:, 0], x[:, 1] = np.arange(n) // 256, np.arange(n) % 256
    return x


def _ids(x: torch.Tensor, spec) -> set[int]:
    """Recover the indices spelt by :func:`_images_with_ids` from normalised images."""
    flat = x.flatten(1)[:, :2].double() * spec.std[0] + spec.mean[0]
    raw = torch.round(flat * 255).long()
    return set((raw[:, 0] * 256 + raw[:, 1]).tolist())


def _labels(per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(10), per_class))


def write_cifar10(root, seed=0) -> None:
    """``cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta`` as CIFAR-10 ships them."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = _labels(PER_CLASS_TRAIN, rng)
    images = _images_with_ids(len(labels), (3, 32, 32), rng)
    for b, part in enumerate(np.array_split(np.arange(len(labels)), 5)):
        with open(folder / f"data_batch_{b + 1}", "wb") as fh:
            pickle.dump(
                {"batch_label": f"training batch {b + 1} of 5", "data": images[part], "labels": labels[part].tolist()},
                fh,
            )
    test_labels = _labels(PER_CLASS_TEST, rng)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"data": _images_with_ids(len(test_labels), (3, 32, 32), rng), "labels": test_labels.tolist()}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{c}" for c in range(10)], "num_cases_per_batch": 24}, fh)


def _idx(path, array: np.ndarray) -> None:
    """An idx file: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "i" * array.ndim, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, seed=0, name="MNIST") -> None:
    """``{name}/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, uncompressed (what torchvision reads)."""
    rng = np.random.default_rng(seed)
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    for prefix, per_class in (("train", 10), ("t10k", 2)):
        labels = _labels(per_class, rng)
        _idx(raw / f"{prefix}-images-idx3-ubyte", _images_with_ids(len(labels), (28, 28), rng).reshape(-1, 28, 28))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """Generated CIFAR-10 files; torchvision's MD5 checks of the real files are switched off."""
    write_cifar10(tmp_path)
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[name, None] for name, _ in datasets.CIFAR10.train_list])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [[name, None] for name, _ in datasets.CIFAR10.test_list])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {**datasets.CIFAR10.meta, "md5": None})
    return tmp_path


def cifar_config(root, *overrides):
    return load_config(None, ["data.name=cifar10", f"data.root={root}", "model.kind=resnet", *overrides])


# ---------------------------------------------------------------- torchvision formats
def test_generated_cifar10_is_read_by_torchvision(cifar_root):
    ds = datasets.CIFAR10(str(cifar_root), train=True)
    assert ds.data.shape == (10 * PER_CLASS_TRAIN, 32, 32, 3) and len(ds.classes) == 10


def test_cifar10_splits_shapes_and_normalisation(cifar_root):
    data = build_data(cifar_config(cifar_root, "data.val_fraction=0.25").data)
    spec = SPECS["cifar10"]
    assert data.input_shape == (3, 32, 32) and data.n_classes == 10 and data.augmented
    assert isinstance(data.train, AugmentedImages)
    assert len(data.val) == 10 * 3 and len(data.train) == 10 * 9 and len(data.test) == 10 * PER_CLASS_TEST
    x, _ = data.val.tensors
    raw = torch.from_numpy(datasets.CIFAR10(str(cifar_root), train=True).data).permute(0, 3, 1, 2)
    # every normalised validation image is (raw / 255 - mean) / std of one training image
    ids = sorted(_ids(x, spec))
    expected = (raw[ids].float() / 255 - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(
        1, 3, 1, 1
    )
    order = torch.argsort(torch.tensor([next(iter(_ids(v[None], spec))) for v in x]))
    torch.testing.assert_close(x[order], expected)


def test_cifar10_validation_and_training_are_disjoint_and_stratified(cifar_root):
    data = build_data(cifar_config(cifar_root, "data.val_fraction=0.25", "data.augment=false").data)
    spec = SPECS["cifar10"]
    train_ids, val_ids = _ids(data.train.tensors[0], spec), _ids(data.val.tensors[0], spec)
    assert not train_ids & val_ids
    assert len(train_ids | val_ids) == 10 * PER_CLASS_TRAIN  # nothing lost, nothing repeated
    assert np.bincount(data.val.tensors[1].numpy(), minlength=10).tolist() == [3] * 10


def test_mnist_idx_files_load_without_augmentation(tmp_path):
    write_mnist(tmp_path)
    config = load_config(
        None, ["data.name=mnist", f"data.root={tmp_path}", "model.kind=resnet", "data.val_fraction=0.2"]
    )
    data = build_data(config.data)
    assert data.input_shape == (1, 28, 28) and not data.augmented
    assert isinstance(data.train, TensorDataset)
    assert len(data.train) == 80 and len(data.val) == 20 and len(data.test) == 20
    assert _ids(data.train.tensors[0], SPECS["mnist"]).isdisjoint(_ids(data.val.tensors[0], SPECS["mnist"]))


def test_missing_files_raise_one_line_before_any_training(tmp_path):
    config = cifar_config(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError) as err:
        train(config, tmp_path / "run", quiet=True)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta" in message
    assert not (tmp_path / "run").exists()


def test_missing_mnist_names_the_raw_files_and_the_cli_prints_one_line(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\nname = "mnist"\nroot = "{tmp_path}"\n[model]\nkind = "resnet"\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("otblocks: error: The data set 'mnist' is not in")
    assert "MNIST/raw" in err and "t10k-labels-idx1-ubyte" in err and "(missing: all)" in err


def test_corrupt_files_are_reported_as_data_errors(tmp_path):
    write_cifar10(tmp_path)  # real MD5 checks on: the generated files fail them
    with pytest.raises(DataNotFoundError, match="failed torchvision's integrity check"):
        build_data(cifar_config(tmp_path).data)


# ---------------------------------------------------------------- stratified subsets
def test_per_class_subset_has_exactly_the_requested_counts(cifar_root):
    data = build_data(cifar_config(cifar_root, "data.per_class=4", "data.augment=false").data)
    assert np.bincount(data.train.tensors[1].numpy(), minlength=10).tolist() == [4] * 10


def test_train_fraction_subsets_are_nested_and_share_the_validation_split(cifar_root):
    def split(fraction):
        data = build_data(cifar_config(cifar_root, f"data.train_fraction={fraction}", "data.augment=false").data)
        spec = SPECS["cifar10"]
        return _ids(data.train.tensors[0], spec), _ids(data.val.tensors[0], spec), data.train.tensors[1]

    small, val_small, labels = split(0.25)
    large, val_large, _ = split(0.5)
    assert np.bincount(labels.numpy(), minlength=10).tolist() == [3] * 10  # round(0.25 * 11) per class
    assert small < large and val_small == val_large


def test_per_class_larger_than_a_class_is_a_config_error(cifar_root):
    with pytest.raises(ConfigError, match=r"'data.per_class' config key must be at most 11 for 'cifar10'.*got 50"):
        build_data(cifar_config(cifar_root, "data.per_class=50").data)


def test_per_class_and_train_fraction_are_exclusive():
    with pytest.raises(ConfigError, match="'data.per_class' config key must be 0 when data.train_fraction is set"):
        load_config(None, ["data.name=digits", "data.per_class=5", "data.train_fraction=0.5"])


def test_stratified_split_is_a_seeded_partition_with_the_counts():
    labels = np.repeat(np.arange(3), [5, 7, 9])
    picked, rest = stratified_split(labels, np.array([2, 3, 4]), seed=1)
    assert sorted(np.concatenate([picked, rest]).tolist()) == list(range(21))
    assert np.bincount(labels[picked]).tolist() == [2, 3, 4]
    again, _ = stratified_split(labels, np.array([2, 3, 4]), seed=1)
    other, _ = stratified_split(labels, np.array([2, 3, 4]), seed=2)
    np.testing.assert_array_equal(picked, again)
    assert not np.array_equal(picked, other)
    assert fraction_counts(labels, 3, 0.01).tolist() == [1, 1, 1]  # never an empty class
    with pytest.raises(ValueError, match="got 6 for class 0, which has 5"):
        stratified_split(labels, np.array([6, 1, 1]), seed=0)


# ---------------------------------------------------------------- augmentation
def test_augmentation_is_a_padded_crop_possibly_flipped():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    ds = AugmentedImages(images, torch.arange(16), [0.5] * 3, [0.25] * 3, padding=2)
    x, y = ds.batch(torch.arange(16))
    raw = torch.round((x * 0.25 + 0.5) * 255).to(torch.uint8)  # back to bytes
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    seen_flip = set()
    for i in range(16):
        candidates = [
            (dy, dx, flip)
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if torch.equal(raw[i], (lambda c: c.flip(2) if flip else c)(padded[i, :, dy : dy + 8, dx : dx + 8]))
        ]
        assert candidates, f"image {i} is not a padded crop of its source"
        seen_flip.add(candidates[0][2])
    assert y.tolist() == list(range(16)) and seen_flip == {False, True}


def test_augmented_batches_through_the_dataloader_are_reproducible():
    from otblocks.data import iterate_batches

    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    ds = AugmentedImages(images, torch.arange(10), [0.5] * 3, [0.25] * 3, padding=2)

    def epoch():
        torch.manual_seed(3)
        return [x for x, _ in iterate_batches(ds, 4, shuffle=True, seed=7)]

    first, second = epoch(), epoch()
    assert [tuple(x.shape) for x in first] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- digits
def test_digits_split_60_20_20_and_normalised():
    pytest.importorskip("sklearn")
    data = build_data(load_config(None, ["data.name=digits", "model.kind=resnet", "data.val_fraction=0.25"]).data)
    assert data.input_shape == (1, 8, 8) and data.n_classes == 10 and not data.augmented
    sizes = len(data.train), len(data.val), len(data.test)
    assert sum(sizes) == 1797
    np.testing.assert_allclose(np.array(sizes) / 1797, [0.6, 0.2, 0.2], atol=0.01)
    x = data.train.tensors[0]
    np.testing.assert_allclose([float(x.mean()), float(x.std())], [0.0, 1.0], atol=1e-5)
    from sklearn.datasets import load_digits

    n_c = np.bincount(load_digits().target)  # 174-183 images per class
    test_c = np.rint(0.2 * n_c)
    val_c = np.rint(0.25 * (n_c - test_c))
    counts = [np.bincount(split.tensors[1].numpy(), minlength=10) for split in (data.train, data.val, data.test)]
    np.testing.assert_array_equal(counts[2], test_c)  # stratified: every class in proportion
    np.testing.assert_array_equal(counts[1], val_c)
    np.testing.assert_array_equal(counts[0], n_c - test_c - val_c)


# ---------------------------------------------------------------- training and shipped configs
def test_training_on_generated_cifar_goes_through_the_augmented_loader(cifar_root, tmp_path):
    config = cifar_config(
        cifar_root,
        "model.stem_channels=4",
        "model.depth=2",
        "model.head=linear",
        "train.epochs=1",
        "train.batch_size=32",
    )
    summary = train(config, tmp_path / "run", quiet=True)  # accuracy on random images means nothing
    assert len(summary.val_accuracy_by_depth) == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # 120 images less round(0.1 * 12) = 1 per class for validation
    assert [r["n"] for r in records if r["split"] == "train"] == [110, 110]


CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))
IMAGE_CONFIGS = [c for c in CONFIGS if load_config(c).data.name in IMAGE_DATASETS]
SHAPES = {
    "mnist": (1, 28, 28),
    "fashionmnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
    "stl10": (3, 96, 96),
    "digits": (1, 8, 8),
}


def test_the_published_image_settings_and_the_quick_ones_are_shipped():
    names = {c.stem for c in IMAGE_CONFIGS}
    assert {
        "digits_sequential",
        "mnist_quick",
        "mnist_small_sequential",
        "cifar10_small_sequential",
        "stl10_resnet110_parallel",
    } <= names


@pytest.mark.parametrize("path", IMAGE_CONFIGS, ids=lambda p: p.stem)
def test_image_config_says_what_it_follows_and_its_network_runs(path):
    text = path.read_text()
    assert text.startswith("# ") and ("Published setting" in text or "Not a published setting" in text)
    config = load_config(path)
    shape = SHAPES[config.data.name]
    net = build_model(config.model, shape, SPECS[config.data.name].n_classes).eval()
    with torch.no_grad():
        logits = net.forward_all(torch.zeros(1, *shape))
    assert len(logits) == config.n_modules and logits[-1].shape == (1, SPECS[config.data.name].n_classes)


def test_digits_config_trains(tmp_path):
    pytest.importorskip("sklearn")
    shrunk = ["train.epochs=1", "data.per_class=40"]  # 400 of its 1,078 training images: about 2 s
    config = load_config(Path(__file__).parents[2] / "configs" / "digits_sequential.toml", shrunk)
    summary = train(config, tmp_path / "digits", quiet=True)
    assert (
        summary.n_modules == 4 and summary.val_accuracy_at_best_depth > 0.3
    )  # chance 0.1; 7 steps a module (seen: 0.55)
