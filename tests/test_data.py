"""Dataset loaders: real formats, and errors that name the file and what was expected."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from resilq.data import DATA_DIR_VARIABLE, DEBIAN_FASHION_MNIST, load_dataset
from resilq.data.idx import read_idx
from resilq.errors import DatasetError


def write_idx(path, array, compress=False):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def make_mnist_dir(tmp_path, n=20, compress=True):
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        sfx = ".gz" if compress else ""
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n, dtype=np.uint8), compress)
    return tmp_path


def test_digits_is_bundled_and_28x28():
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert tr.images.shape[1:] == (1, 28, 28) and tr.images.dtype == np.float32
    assert len(tr) + len(te) == 1797 and len(te) == 360
    assert 0.0 <= tr.images.min() and tr.images.max() <= 1.0
    assert set(np.unique(te.labels)) == set(range(10))


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_round_trip(tmp_path, compress):
    make_mnist_dir(tmp_path, compress=compress)
    ds = load_dataset("mnist", "train", tmp_path)
    assert ds.images.shape == (20, 1, 28, 28) and ds.labels.shape == (20,)
    raw = read_idx(next(tmp_path.glob("train-images*")))
    assert np.array_equal((raw.astype(np.float32) / 255.0)[:, None], ds.images)


def test_torchvision_layout_is_found(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    make_mnist_dir(tmp_path / "MNIST" / "raw")
    assert len(load_dataset("mnist", "test", tmp_path)) == 20


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: data directory for 'mnist' does not exist"):
        load_dataset("mnist", "test", tmp_path / "nowhere")


def test_missing_data_dir_option(monkeypatch):
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    with pytest.raises(DatasetError, match=r"needs a data directory \(--data-dir DIR, or \$RESILQ_DATA_DIR/mnist\)"):
        load_dataset("mnist", "test")


def test_the_data_folder_variable_holds_one_folder_per_dataset(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    make_mnist_dir(tmp_path / "mnist", n=7)
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path))
    assert len(load_dataset("mnist", "test")) == 7 and load_dataset("mnist", "test").source == str(tmp_path / "mnist")
    assert len(load_dataset("mnist", "test", tmp_path / "mnist")) == 7  # an explicit folder still wins
    with pytest.raises(DatasetError, match="needs a data directory"):  # no cifar10/ in it: said, not guessed
        load_dataset("cifar10", "test")


def test_missing_file_is_named(tmp_path):
    make_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", "test", tmp_path)


def test_truncated_idx(tmp_path):
    make_mnist_dir(tmp_path, compress=False)
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte: IDX header declares shape"):
        load_dataset("mnist", "test", tmp_path)


def test_bad_magic(tmp_path):
    make_mnist_dir(tmp_path, compress=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"GARBAGE!" * 10)
    with pytest.raises(DatasetError, match="not an IDX file"):
        load_dataset("mnist", "test", tmp_path)


def test_label_count_mismatch(tmp_path):
    make_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8), True)
    with pytest.raises(DatasetError, match="holds 7 labels for 20 images"):
        load_dataset("mnist", "test", tmp_path)


def test_not_gzip(tmp_path):
    make_mnist_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"plain bytes")
    with pytest.raises(DatasetError, match="gzip"):
        load_dataset("mnist", "test", tmp_path)


def _cifar_python(folder, n=10):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        batch[b"labels"] = [int(v) for v in batch[b"labels"]]
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)


def test_cifar_python_batches(tmp_path):
    _cifar_python(tmp_path / "cifar-10-batches-py")
    tr = load_dataset("cifar10", "train", tmp_path)
    te = load_dataset("cifar10", "test", tmp_path)
    assert tr.images.shape == (50, 3, 32, 32) and te.images.shape == (10, 3, 32, 32)


def test_cifar_binary_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rec = rng.integers(0, 256, (4, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        rec.tofile(folder / f"{name}.bin")
    assert load_dataset("cifar10", "test", tmp_path).images.shape == (4, 3, 32, 32)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar_pickle_cannot_execute_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _cifar_python(folder)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": []}, fh)
    with pytest.raises(DatasetError, match="refusing to load posix.system"):
        load_dataset("cifar10", "test", tmp_path)


def test_cifar_missing(tmp_path):
    with pytest.raises(DatasetError, match="missing CIFAR-10 test batches"):
        load_dataset("cifar10", "test", tmp_path)


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_is_found_without_data_dir():
    ds = load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.classes[0] == "T-shirt/top"


def test_rgb32_pads_and_repeats_grey_images():
    from resilq.data import Dataset, rgb32

    grey = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    out = rgb32(Dataset("fashion-mnist", "test", grey, np.arange(3), ("a", "b", "c"), "here"))
    assert out.images.shape == (3, 3, 32, 32) and out.name == "fashion-mnist-rgb32"
    for c in range(3):
        assert np.array_equal(out.images[:, c, 2:30, 2:30], grey[:, 0])
    assert not out.images[:, :, :2].any() and not out.images[:, :, :, 30:].any()
    with pytest.raises(DatasetError, match="rgb32"):
        rgb32(Dataset("x", "test", np.zeros((1, 3, 8, 8), np.float32), np.zeros(1), ("a",), "here"))
