"""Handwritten digit images: MNIST where it can be had, else scikit-learn digits."""

import functools
import logging
import os
import socket
import zipfile

import numpy as np

from vaelib import _arguments

logger = logging.getLogger(__name__)

SOURCES = ("auto", "mnist-file", "keras", "tfds", "sklearn")
SPLITS = ("train", "test")
SKLEARN_TEST_FRACTION = 0.2
SKLEARN_SPLIT_SEED = 0
MNIST_SOURCES = ("mnist-file", "keras", "tfds")
# The seed of the statically binarised test set every likelihood number uses.
STATIC_BINARIZATION_SEED = 0


class DigitImages(tuple):
    """`(images, labels)` that also says where it came from.

    Unpacks like a pair, `images, labels = load_digits_images()`, and carries
    the attributes `images`, `labels`, `source` (`"mnist-file"`, `"keras"`,
    `"tfds"` or `"sklearn"`) and `description` (e.g. `"MNIST (file mnist.npz)"`).
    """

    def __new__(cls, images, labels, source):
        instance = super().__new__(cls, (images, labels))
        instance.source = source
        return instance

    @property
    def is_mnist(self):
        """True when the images are MNIST (any source but `"sklearn"`)."""
        return self.source in MNIST_SOURCES

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


def _mnist_path(path):
    """The MNIST file to read: `path`, else `$VAELIB_MNIST`, else None."""
    if path is None:
        path = os.environ.get("VAELIB_MNIST") or None
    return None if path is None else os.path.abspath(os.path.expanduser(str(path)))


@functools.lru_cache(maxsize=4)
def _read_mnist_file(path, modified):
    del modified  # part of the cache key only: a rewritten file is read again
    try:
        with np.load(path) as arrays:
            loaded = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            "Expected an MNIST .npz file in Keras' layout (x_train, y_train, "
            f"x_test, y_test). Received: path={path!r}, which numpy cannot read "
            f"({error})"
        ) from None
    for split in SPLITS:
        images = loaded.get(f"x_{split}")
        labels = loaded.get(f"y_{split}")
        if images is None or labels is None:
            raise ValueError(
                "Expected an MNIST .npz file in Keras' layout with arrays x_train, "
                f"y_train, x_test, y_test. Received: path={path!r} with arrays "
                f"{sorted(loaded)}"
            )
        if (
            images.ndim != 3
            or images.shape[1:] != (28, 28)
            or len(labels) != len(images)
        ):
            raise ValueError(
                f"Expected x_{split} of shape (n, 28, 28) and y_{split} of shape "
                f"(n,) in {path!r}. Received: x_{split} {images.shape}, y_{split} "
                f"{labels.shape}"
            )
        if len(images) == 0:
            raise ValueError(
                f"Expected images in x_{split} of {path!r}. Received: an empty array"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(
                f"Expected digit labels 0-9 in y_{split} of {path!r}. Received: "
                f"min={labels.min()}, max={labels.max()}"
            )
        if images.dtype != np.uint8:
            raise ValueError(
                f"Expected uint8 images (0..255) in {path!r}. "
                f"Received: x_{split} of dtype {images.dtype}"
            )
    return loaded


def _load_file(split, path):
    if path is None:
        raise FileNotFoundError(
            "No MNIST file given: pass path= or set VAELIB_MNIST to an mnist.npz "
            "in Keras' layout"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No MNIST file at {path} (from path= or $VAELIB_MNIST). Expected an "
            ".npz in Keras' layout (x_train, y_train, x_test, y_test)"
        )
    arrays = _read_mnist_file(path, os.path.getmtime(path))
    return _from_uint8(arrays[f"x_{split}"], arrays[f"y_{split}"])


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


def _load_named_source(source, split, data_dir, download):
    """MNIST from `source="tfds"` or `"keras"`, or a `ValueError` saying why not."""
    try:
        if source == "tfds":
            return _load_tfds(split, data_dir, download)
        return _load_keras(split, download)
    except Exception as error:  # noqa: BLE001 - TFDS raises AssertionError offline
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(
            f"Expected MNIST from source={source!r}. Received: not available "
            f"({'download allowed' if download else 'no download'}): {reason}. "
            "Set VAELIB_MNIST to an mnist.npz, or use source='auto'."
        ) from None


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


def load_digits_images(
    split="train", source=None, path=None, data_dir=None, download=None
):
    """Loads 28x28 grey images of handwritten digits, values in [0, 1].

    With `source="auto"` (the default) it takes the first of these that works:

    1. `"mnist-file"`: MNIST from an `.npz` file in Keras' layout (`x_train`,
       `y_train`, `x_test`, `y_test`, uint8 images `(n, 28, 28)`), named by
       `path` or by the environment variable `VAELIB_MNIST`. A named file
       that is missing or malformed is an error, never silently skipped.
    2. `"keras"`: MNIST from Keras' cache, `$KERAS_HOME/datasets/mnist.npz`.
    3. `"tfds"`: MNIST through `tensorflow_datasets`, from `data_dir` (or
       TFDS' default `~/tensorflow_datasets`) when prepared there.
    4. MNIST downloaded by TFDS, when `download` allows it and the network
       answers (checked with a 3-second connection attempt).
    5. `"sklearn"`: the 1,797 handwritten digits that scikit-learn ships
       (8x8, 17 grey levels), upsampled bicubically to 20x20 and centred in a
       28x28 frame as MNIST digits are; a fixed, stratified 80/20 split gives
       1,437 train and 360 test images. Always available, no network; a
       warning says it is used, because numbers on it are not MNIST numbers.

    The source used is logged and returned as the `.source` attribute. The
    environment variables `VAELIB_DIGITS_SOURCE` (a source name) and
    `VAELIB_OFFLINE=1` (never download) set the defaults of `source` and
    `download`; without them, passing `path` means `source="mnist-file"`.

    Args:
        split: `"train"` or `"test"`.
        source: `"auto"`, `"mnist-file"`, `"keras"`, `"tfds"` or `"sklearn"`.
        path: An MNIST `.npz` in Keras' layout; defaults to `$VAELIB_MNIST`.
        data_dir: TFDS data directory.
        download: Whether MNIST may be downloaded. Defaults to `True` unless
            `VAELIB_OFFLINE` is set.

    Returns:
        A `DigitImages` pair `(images, labels)`: float32 images
        `(n, 28, 28, 1)` in [0, 1] and int32 labels `(n,)` in 0..9, with
        `.source` and `.description`.

    Example:

    >>> images, labels = load_digits_images("test", source="sklearn")
    >>> images.shape, images.dtype.name, labels.shape
    ((360, 28, 28, 1), 'float32', (360,))

    Introduced in: course/00_setup_and_data.ipynb
    """
    if split not in SPLITS:
        raise ValueError(f"Expected split in {SPLITS}. Received: split={split!r}")
    if source is None:
        default = "mnist-file" if path is not None else "auto"
        source = os.environ.get("VAELIB_DIGITS_SOURCE", default)
    if source not in SOURCES:
        raise ValueError(f"Expected source in {SOURCES}. Received: source={source!r}")
    if download is None:
        download = os.environ.get("VAELIB_OFFLINE", "") in ("", "0")
    path = _mnist_path(path)

    if source == "mnist-file":
        images, labels = _load_file(split, path)
    elif source in ("tfds", "keras"):
        images, labels = _load_named_source(source, split, data_dir, download)
    elif source == "sklearn":
        images, labels = _load_sklearn(split)
    elif path is not None:
        images, labels = _load_file(split, path)
        source = "mnist-file"
    else:
        images = None
        attempts = [
            ("keras", lambda: _load_keras(split, False)),
            ("tfds", lambda: _quietly(_load_tfds, split, data_dir, False)),
        ]
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

    description = {
        "mnist-file": f"MNIST (file {os.path.basename(path or '')})",
        "tfds": "MNIST (tensorflow_datasets)",
        "keras": "MNIST (keras.datasets cache)",
        "sklearn": "scikit-learn handwritten digits upsampled to 28x28, NOT MNIST",
    }[source]
    if source == "sklearn":
        logger.warning(
            "Digits %s split: %d images from scikit-learn's handwritten digits "
            "(8x8, upsampled to 28x28), NOT MNIST: MNIST not available offline. "
            "Set VAELIB_MNIST to an mnist.npz to use MNIST.",
            split,
            len(images),
        )
    else:
        logger.info(
            "Digits %s split: %d images from %s", split, len(images), description
        )
    result = DigitImages(images, labels, source)
    result.description = description
    return result


def _check_unit_range(images):
    return _arguments.unit_interval("images", images, allow_empty=True)


def binarize(images, seed=STATIC_BINARIZATION_SEED):
    """Static binarisation: each pixel becomes 1 with probability equal to its value.

    Drawn once with a fixed seed (`STATIC_BINARIZATION_SEED` = 0 by default), so
    the same images are binary in every run: the "statically binarised MNIST"
    of the likelihood literature, on which every test likelihood of the course
    (-ELBO, IWAE NLL, bits/dim) is measured. On binary data the Bernoulli
    likelihood is an exact likelihood and NLL values are comparable with
    published ones.

    Args:
        images: Array of any shape, values in [0, 1].
        seed: Integer seed of the draw.

    Returns:
        float32 array of 0s and 1s, the shape of `images`.

    Example:

    >>> binary = binarize(np.full((2, 3), 0.5), seed=0)
    >>> sorted(np.unique(binary).tolist())
    [0.0, 1.0]
    """
    images = _check_unit_range(images)
    rng = np.random.default_rng(_arguments.integer("seed", seed, minimum=0))
    return (rng.random(images.shape, dtype="float32") < images).astype("float32")


def dynamically_binarized(images, batch_size=64, shuffle=True, seed=0):
    """A `tf.data.Dataset` of batches binarised afresh every epoch.

    Dynamic binarisation (as in Burda et al., 2016): each time an image is
    seen, each pixel is drawn anew as 1 with probability equal to its grey
    value, so the model trains on binary data (its Bernoulli likelihood is a
    true likelihood) without memorising one fixed draw. The draws depend on
    `seed` and the epoch only: a rerun gives the same epochs.

    Args:
        images: float32 array `(n, ...)` with values in [0, 1].
        batch_size: Images per batch.
        shuffle: Reshuffle the images every epoch.
        seed: Integer seed of the order and of the draws.

    Returns:
        A dataset of float32 batches `(batch_size, ...)` of 0s and 1s; iterate
        it again (the next epoch) and the bits are new.

    Example:

    >>> batches = dynamically_binarized(np.full((4, 2), 0.5), batch_size=4)
    >>> first, second = (next(iter(batches)).numpy() for _ in range(2))
    >>> bool((first != second).any())
    True
    """
    import tensorflow as tf

    images = _check_unit_range(images)
    dataset = tf.data.Dataset.from_tensor_slices(images)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    # One fresh (and reproducible) seed per batch and per epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return (
        tf.data.Dataset.zip((dataset, seeds))
        .map(
            lambda batch, pair: tf.cast(
                tf.random.stateless_uniform(tf.shape(batch), seed=pair) < batch,
                tf.float32,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
