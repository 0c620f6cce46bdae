import os

import numpy as np
import pytest

from vaelib.data import binarize, dynamically_binarized, load_digits_images
from vaelib.data import digits as digits_module

SHARED_MNIST = os.environ.get("VAELIB_MNIST")


def test_sklearn_digits_are_mnist_shaped_and_split_without_leaks():
    train = load_digits_images("train", source="sklearn")
    test = load_digits_images("test", source="sklearn")
    assert train.source == test.source == "sklearn"
    assert train.images.shape == (1437, 28, 28, 1) and test.images.shape == (
        360,
        28,
        28,
        1,
    )
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int32
    for images in (train.images, test.images):
        assert images.min() == 0.0 and images.max() <= 1.0 and images.max() > 0.9
    # MNIST's 4-pixel empty border around a 20x20 digit box.
    assert train.images[:, :4].max() == 0 and train.images[:, -4:].max() == 0
    assert set(np.unique(train.labels)) == set(range(10))
    # Stratified: every class holds about a tenth of each split.
    assert np.bincount(test.labels).min() >= 35
    train_rows = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in train_rows for row in test.images)


def test_the_pair_unpacks_and_is_deterministic():
    images, labels = load_digits_images("test", source="sklearn")
    again = load_digits_images("test", source="sklearn")
    np.testing.assert_array_equal(images, again.images)
    np.testing.assert_array_equal(labels, again.labels)


def test_mnist_through_tfds_uses_the_real_loading_code():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        result = load_digits_images("train", source="tfds", download=False)
    assert result.source == "tfds"
    assert result.images.shape == (10, 28, 28, 1) and result.images.dtype == np.float32
    assert 0 <= result.images.min() and result.images.max() <= 1
    assert result.labels.shape == (10,) and result.labels.max() <= 9


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    (tmp_path / "datasets").mkdir()
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 12, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 5, dtype=np.uint8),
    }
    np.savez(tmp_path / "datasets" / "mnist.npz", **arrays)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return arrays


def test_mnist_from_the_keras_cache(keras_cache):
    result = load_digits_images("test", source="keras", download=False)
    assert result.source == "keras"
    np.testing.assert_allclose(result.images[..., 0], keras_cache["x_test"] / 255.0)
    np.testing.assert_array_equal(result.labels, keras_cache["y_test"])


def test_auto_takes_cached_mnist_before_the_fallback(
    keras_cache, tmp_path, monkeypatch
):
    monkeypatch.delenv("VAELIB_MNIST", raising=False)
    monkeypatch.setattr(
        digits_module, "_network_reachable", lambda: pytest.fail("no network")
    )
    result = load_digits_images(
        "train", source="auto", data_dir=str(tmp_path / "tfds"), download=False
    )
    assert result.source == "keras" and result.images.shape == (12, 28, 28, 1)


def test_auto_falls_back_to_sklearn_offline_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("VAELIB_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    result = load_digits_images("test", source="auto", data_dir=str(tmp_path / "tfds"))
    assert result.source == "sklearn" and not result.is_mnist
    assert caplog.records[-1].levelname == "WARNING"
    assert "scikit-learn's handwritten digits" in caplog.text
    assert "NOT MNIST" in caplog.text and "VAELIB_MNIST" in caplog.text


@pytest.fixture
def mnist_file(tmp_path):
    """A small MNIST-layout .npz (Keras' keys, uint8 images) in a temp dir."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 7, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    path = tmp_path / "my-mnist.npz"
    np.savez_compressed(path, **arrays)
    return path, arrays


def test_mnist_from_a_file_given_by_path_or_environment(
    mnist_file, keras_cache, monkeypatch
):
    path, arrays = mnist_file
    given = load_digits_images("train", source="auto", path=path)
    assert given.source == "mnist-file" and given.is_mnist
    assert "MNIST" in given.description and "my-mnist.npz" in given.description
    np.testing.assert_allclose(given.images[..., 0], arrays["x_train"] / 255.0)
    np.testing.assert_array_equal(given.labels, arrays["y_train"])
    assert given.images.dtype == np.float32 and given.labels.dtype == np.int32
    # The environment variable comes before the Keras cache (also present here).
    monkeypatch.setenv("VAELIB_MNIST", str(path))
    from_env = load_digits_images("test", source="auto", download=False)
    assert from_env.source == "mnist-file" and from_env.images.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(from_env.labels, arrays["y_test"])


def test_a_named_mnist_file_that_is_missing_or_malformed_is_a_clear_error(
    tmp_path, monkeypatch
):
    with pytest.raises(FileNotFoundError, match="No MNIST file at .*nowhere.npz"):
        load_digits_images("train", source="auto", path=tmp_path / "nowhere.npz")
    monkeypatch.setenv("VAELIB_MNIST", str(tmp_path / "gone.npz"))
    with pytest.raises(FileNotFoundError, match="gone.npz .*VAELIB_MNIST"):
        load_digits_images("train", source="auto")
    monkeypatch.delenv("VAELIB_MNIST")
    with pytest.raises(FileNotFoundError, match="pass path= or set VAELIB_MNIST"):
        load_digits_images("train", source="mnist-file")
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"x_train.*Received.*\['images'\]"):
        load_digits_images("train", source="mnist-file", path=tmp_path / "wrong.npz")
    np.savez(
        tmp_path / "float.npz",
        x_train=np.zeros((2, 28, 28), np.float32),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 28, 28), np.float32),
        y_test=np.zeros(1),
    )
    with pytest.raises(ValueError, match="Expected uint8 images"):
        load_digits_images("test", source="auto", path=tmp_path / "float.npz")


@pytest.mark.skipif(not SHARED_MNIST, reason="VAELIB_MNIST (the real MNIST) not set")
def test_the_shared_file_is_the_genuine_mnist():
    train = load_digits_images("train", source="mnist-file", path=SHARED_MNIST)
    test = load_digits_images("test", source="mnist-file", path=SHARED_MNIST)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (
        10000,
        28,
        28,
        1,
    )
    # The published checks of the data card (../shared/data/README.md).
    assert train.labels[0] == 5
    assert np.bincount(train.labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949
    ]  # fmt: skip
    assert np.bincount(test.labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]  # fmt: skip


def test_keras_source_without_cache_or_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="source='keras'.*mnist.npz"):
        load_digits_images("train", source="keras", download=False)


def test_bad_split_and_source():
    with pytest.raises(ValueError, match="split"):
        load_digits_images("validation")
    with pytest.raises(ValueError, match="source"):
        load_digits_images("train", source="emnist")


def test_static_binarisation():
    images = np.random.default_rng(0).random((200, 28, 28, 1)).astype("float32")
    binary = binarize(images, seed=0)
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, binarize(images, seed=0))
    np.testing.assert_array_equal(binary, binarize(images))  # the documented seed
    assert (binary != binarize(images, seed=1)).mean() > 0.3
    assert abs(binary.mean() - images.mean()) < 0.01
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        binarize(images * 2)


def test_dynamic_binarisation_draws_afresh_and_averages_to_the_grey_image():
    grey = np.random.default_rng(0).random((8, 6, 6, 1)).astype("float32")
    batches = dynamically_binarized(grey, batch_size=8, shuffle=False, seed=3)
    epochs = np.stack([next(iter(batches)).numpy() for _ in range(400)])
    assert set(np.unique(epochs)) == {0.0, 1.0}
    # Every epoch a new draw...
    assert (epochs[0] != epochs[1]).mean() > 0.2
    # ...whose average tends to the grey values (400 draws: std <= 0.025).
    np.testing.assert_allclose(epochs.mean(0), grey, atol=0.11)
    assert np.abs(epochs.mean(0) - grey).mean() < 0.025
    # The same seed gives the same epochs.
    again = dynamically_binarized(grey, batch_size=8, shuffle=False, seed=3)
    np.testing.assert_array_equal(next(iter(again)).numpy(), epochs[0])
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        dynamically_binarized(grey + 1)
