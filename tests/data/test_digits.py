import numpy as np
import pytest

from vaelib.data import binarize, load_digits_images
from vaelib.data import digits as digits_module


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
    monkeypatch.setattr(
        digits_module, "_network_reachable", lambda: pytest.fail("no network")
    )
    result = load_digits_images(
        "train", source="auto", data_dir=str(tmp_path / "tfds"), download=False
    )
    assert result.source == "keras" and result.images.shape == (12, 28, 28, 1)


def test_auto_falls_back_to_sklearn_offline_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    result = load_digits_images("test", source="auto", data_dir=str(tmp_path / "tfds"))
    assert result.source == "sklearn"
    assert "scikit-learn handwritten digits" in caplog.text
    assert "MNIST not available" in caplog.text


def test_keras_source_without_cache_or_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
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
    assert abs(binary.mean() - images.mean()) < 0.01
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        binarize(images * 2)
