"""Handwritten digit images: MNIST where it can be had, else scikit-learn digits."""

import logging
import os
import socket

import numpy as np

logger = logging.getLogger(__name__)

SOURCES = ("auto", "tfds", "keras", "sklearn")
SPLITS = ("train", "test")
SKLEARN_TEST_FRACTION = 0.2
SKLEARN_SPLIT_SEED = 0


class DigitImages(tuple):
    """`(images, labels)` that also says where it came from.

    Unpacks like a pair, `images, labels = load_digits_images()`, and carries
    the attributes `images`, `labels` and `source` (`"tfds"`, `"keras"` or
    `"sklearn"`).
    """

    def __new__(cls, images, labels, source):
        instance = super().__new__(cls, (images, labels))
        instance.source = source
        return instance

    @property
    def images(self):
        return self[0]

    @property
    def labels(self):
        return self[1]


def _keras_home():
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def _network_reachable(host="storage.googleapis.com", port=443, timeout=3.0):
    if os.environ.get("VAELIB_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_uint8(images, labels):
    images = np.asarray(images, dtype="float32").reshape(-1, 28, 28, 1) / 255.0
    return images, np.asarray(labels, dtype="int32")


def _load_tfds(split, data_dir, download):
    import tensorflow_datasets as tfds

    dataset = tfds.load(
        "mnist",
        split=split,
        batch_size=4096,
        as_supervised=True,
        data_dir=data_dir,
        download=download,
    )
    batches = list(tfds.as_numpy(dataset))
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return _from_uint8(images, labels)


def _load_keras(split, download):
    path = os.path.join(_keras_home(), "datasets", "mnist.npz")
    if not os.path.exists(path):
        if not download:
            raise FileNotFoundError(f"No cached MNIST at {path}")
        import keras

        keras.datasets.mnist.load_data()
    with np.load(path) as arrays:
        return _from_uint8(arrays[f"x_{split}"], arrays[f"y_{split}"])


def _load_sklearn(split):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 8x8 images with values 0..16. MNIST centres each digit in a 20x20 box
    # inside a 28x28 frame; do the same so both sources look alike.
    images = digits.images.astype("float32") / 16.0
    images = resize_images(images, 20)
    images = np.pad(images, ((0, 0), (4, 4), (4, 4)))[..., None]
    train_x, test_x, train_y, test_y = train_test_split(
        images,
        digits.target.astype("int32"),
        test_size=SKLEARN_TEST_FRACTION,
        random_state=SKLEARN_SPLIT_SEED,
        stratify=digits.target,
    )
    return (train_x, train_y) if split == "train" else (test_x, test_y)


def resize_images(images, size, resample="bicubic"):
    """Resizes `(n, h, w)` images in [0, 1] to `(n, size, size)`, clipped to [0, 1].

    `resample` is `"bicubic"` or `"bilinear"` (Pillow's filters); images that
    already have the size are returned as they are.
    """
    from PIL import Image

    images = np.asarray(images, dtype="float32")
    if images.shape[1:] == (size, size):
        return images
    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[resample]
    resized = [
        np.asarray(Image.fromarray(image, mode="F").resize((size, size), method))
        for image in images
    ]
    return np.clip(np.stack(resized), 0.0, 1.0).astype("float32")


def _quietly(function, *args):
    """Runs `function` with TFDS' "no dataset_info.json" probe warnings muted."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        return function(*args)
    finally:
        absl_logger.setLevel(level)


def load_digits_images(split="train", source=None, data_dir=None, download=None):
    """Loads 28x28 grey images of handwritten digits, values in [0, 1].

    With `source="auto"` (the default) it takes the first of these that works:

    1. `"tfds"`: MNIST through `tensorflow_datasets`, from `data_dir` (or
       TFDS' default `~/tensorflow_datasets`) when prepared there.
    2. `"keras"`: MNIST from Keras' cache, `$KERAS_HOME/datasets/mnist.npz`.
    3. MNIST downloaded by TFDS, when `download` allows it and the network
       answers (checked with a 3-second connection attempt).
    4. `"sklearn"`: the 1,797 handwritten digits that scikit-learn ships
       (8x8, 17 grey levels), upsampled bicubically to 20x20 and centred in a
       28x28 frame as MNIST digits are; a fixed, stratified 80/20 split gives
       1,437 train and 360 test images. Always available, no network.

    The source used is logged and returned as the `.source` attribute. The
    environment variables `VAELIB_DIGITS_SOURCE` (a source name) and
    `VAELIB_OFFLINE=1` (never download) set the defaults of `source` and
    `download`.

    Args:
        split: `"train"` or `"test"`.
        source: `"auto"`, `"tfds"`, `"keras"` or `"sklearn"`.
        data_dir: TFDS data directory.
        download: Whether MNIST may be downloaded. Defaults to `True` unless
            `VAELIB_OFFLINE` is set.

    Returns:
        A `DigitImages` pair `(images, labels)`: float32 images
        `(n, 28, 28, 1)` in [0, 1] and int32 labels `(n,)` in 0..9.

    Example:

    >>> images, labels = load_digits_images("test", source="sklearn")
    >>> images.shape, images.dtype.name, labels.shape
    ((360, 28, 28, 1), 'float32', (360,))

    Introduced in: course/00_setup_and_data.ipynb
    """
    if split not in SPLITS:
        raise ValueError(f"Expected split in {SPLITS}. Received: split={split!r}")
    if source is None:
        source = os.environ.get("VAELIB_DIGITS_SOURCE", "auto")
    if source not in SOURCES:
        raise ValueError(f"Expected source in {SOURCES}. Received: source={source!r}")
    if download is None:
        download = os.environ.get("VAELIB_OFFLINE", "") in ("", "0")

    if source == "tfds":
        images, labels = _load_tfds(split, data_dir, download)
    elif source == "keras":
        images, labels = _load_keras(split, download)
    elif source == "sklearn":
        images, labels = _load_sklearn(split)
    else:
        images = None
        attempts = [("tfds", lambda: _quietly(_load_tfds, split, data_dir, False))]
        attempts.append(("keras", lambda: _load_keras(split, False)))
        if download and _network_reachable():
            attempts.append(("tfds", lambda: _load_tfds(split, data_dir, True)))
        for name, attempt in attempts:
            try:
                images, labels = attempt()
                source = name
                break
            except Exception as error:  # noqa: BLE001 - any failure means "try the next"
                logger.debug("MNIST through %s not available: %s", name, error)
        if images is None:
            source = "sklearn"
            images, labels = _load_sklearn(split)

    message = {
        "tfds": "MNIST (tensorflow_datasets)",
        "keras": "MNIST (keras.datasets cache)",
        "sklearn": "scikit-learn handwritten digits, upsampled to 28x28 "
        "(MNIST not available offline)",
    }[source]
    log = logger.warning if source == "sklearn" else logger.info
    log("Digits %s split: %d images from %s", split, len(images), message)
    return DigitImages(images, labels, source)


def binarize(images, seed=0):
    """Static binarisation: each pixel becomes 1 with probability equal to its value.

    Drawn once with a fixed seed, so the same images are binary in every run
    (the "statically binarised MNIST" of the likelihood literature). On binary
    data the Bernoulli likelihood is an exact likelihood and NLL values are
    comparable with published ones.
    """
    images = np.asarray(images, dtype="float32")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            "Expected values in [0, 1]. "
            f"Received: min={images.min():.4g}, max={images.max():.4g}"
        )
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype="float32") < images).astype("float32")
