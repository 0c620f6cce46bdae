"""Shared test set-up: offline data, quiet TensorFlow, seeded Keras."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["VAELIB_OFFLINE"] = "1"
os.environ["VAELIB_DIGITS_SOURCE"] = "sklearn"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def digits():
    """Held-out-ready digits: (train_images, test_images), float32 in [0, 1]."""
    from vaelib.data import load_digits_images

    train, _ = load_digits_images("train", source="sklearn")
    test, _ = load_digits_images("test", source="sklearn")
    return train, test


def to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))
