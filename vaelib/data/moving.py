"""Moving digits: Moving-MNIST-style clips made on the fly, deterministic per clip."""

import functools
import os

import numpy as np

from vaelib import _arguments
from vaelib.data.digits import load_digits_images, resize_images

SPLITS = ("train", "test")
# sha256 of the published mnist_test_seq.npy (Srivastava et al., 2015).
MOVING_MNIST_SHA256 = "c2a3e8d3939c001ab77bf543f130157424efa486bb4d0974d2cebb773b13f8b3"


def bounce(positions, free):
    """Folds unbounded 1-D positions into `[0, free]` by exact reflection.

    A digit moving at constant velocity between two walls follows a triangle
    wave: `p mod 2 * free`, mirrored on its second half. This is the same
    reflection as TFDS' `moving_sequence._bounce_to_bbox`, in pixels rather
    than in fractions of the free range. With no free range (a digit as
    large as the frame) every position is 0.
    """
    if free <= 0:
        return np.zeros_like(positions, dtype=float)
    folded = np.mod(positions, 2.0 * free)
    return np.minimum(folded, 2.0 * free - folded)


def _as_digit_images(digits, name="digits"):
    images = np.asarray(digits)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[0] < 1 or min(images.shape[1:]) < 1:
        raise ValueError(
            f"Expected `{name}` to be grey images of shape (n, height, width) or "
            f"(n, height, width, 1). Received: shape={images.shape}"
        )
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"Expected numeric `{name}`. Received: dtype={images.dtype}")
    images = images.astype("float32")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(
            f"Expected `{name}` values in [0, 1]. "
            f"Received: min={images.min():.4g}, max={images.max():.4g}"
        )
    return images


@functools.lru_cache(maxsize=8)
def _split_digits(split, digit_size, mnist_path, source):
    """Digits of one split resized to `digit_size`, read-only, loaded once.

    `mnist_path` and `source` (the environment's `VAELIB_MNIST` and
    `VAELIB_DIGITS_SOURCE`) are part of the cache key, so changing them loads
    again. Resizing MNIST's 60,000 training digits takes seconds; the cache
    makes every further `MovingDigits` of the same split and size instant.
    """
    del mnist_path, source  # cache key only; load_digits_images reads them
    loaded = load_digits_images(split)
    digits = resize_images(
        _as_digit_images(loaded.images), digit_size, resample="bilinear"
    )
    digits_uint8 = np.round(digits * 255).astype("uint8")
    for array in (digits, digits_uint8, loaded.labels):
        array.setflags(write=False)
    return digits, digits_uint8, loaded.labels, loaded.source


class MovingDigits:
    """Clips of digits bouncing inside a square frame (Moving MNIST, made here).

    Each clip shows `num_digits` digit images, each starting at a uniformly
    random position in the free area (`frame_size - digit_size` pixels wide),
    moving with a constant velocity of random direction and a speed drawn
    uniformly from `speed` (pixels per frame), reflected when it reaches a
    wall, and combined with the others by a pixel-wise maximum. With the
    defaults (64x64 frames, 20 frames, two 28x28 digits, 3.6 pixels per frame,
    i.e. TFDS' normalised speed 0.1 of the 36-pixel free range) and MNIST
    digits (`load_digits_images` finds them, e.g. through `VAELIB_MNIST`), this
    is the generator of Moving MNIST by Srivastava et al. (2015); it is not
    their published file `mnist_test_seq.npy` (see `load_moving_mnist`).

    Clip `i` depends only on `seed` and `i`: `clips(10)` equals the first ten
    clips of `clips(10_000)`, and so does `clips(10, start=0)` on another
    machine. Train clips use only train-split digits and test clips only
    test-split digits, so no digit image appears in both.

    Args:
        frame_size: Height and width of a frame, in pixels.
        num_digits: Digits per clip.
        num_frames: Frames per clip.
        digit_size: Height and width a digit is resized to.
        speed: Pixels per frame: a number, or a `(low, high)` range.
        split: `"train"` or `"test"`: which digits to use when `digits` is
            not given (loaded with `load_digits_images`).
        digits: Optional digit images `(n, h, w)` or `(n, h, w, 1)` in [0, 1]
            to use instead (any grey images work).
        labels: Optional labels of `digits`, reported by `metadata`.
        seed: Integer seed.
        stochastic: Draw a new direction at every bounce (see above).

    Example:

    >>> clips = MovingDigits(frame_size=32, num_frames=6, digit_size=14,
    ...                      speed=2.0, split="test").clips(3)
    >>> clips.shape, clips.dtype.name
    ((3, 6, 32, 32, 1), 'float32')

    Introduced in: course/06_video_data.ipynb
    """

    def __init__(
        self,
        frame_size=64,
        num_digits=2,
        num_frames=20,
        digit_size=28,
        speed=3.6,
        split="train",
        digits=None,
        labels=None,
        seed=0,
        stochastic=False,
    ):
        for name, value, low in (
            ("frame_size", frame_size, 1),
            ("num_digits", num_digits, 1),
            ("num_frames", num_frames, 1),
            ("digit_size", digit_size, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(
                    f"Expected `{name}` to be an integer >= {low}. "
                    f"Received: {name}={value!r}"
                )
        if digit_size > frame_size:
            raise ValueError(
                "Expected `digit_size` <= `frame_size`: a digit must fit in the frame. "
                f"Received: digit_size={digit_size}, frame_size={frame_size}"
            )
        low_speed, high_speed = (speed, speed) if np.ndim(speed) == 0 else tuple(speed)
        if not 0 <= low_speed <= high_speed:
            raise ValueError(
                "Expected `speed` >= 0, as a number or a (low, high) range with low <= "
                f"high. Received: speed={speed!r}"
            )
        if split not in SPLITS:
            raise ValueError(f"Expected `split` in {SPLITS}. Received: split={split!r}")

        self.frame_size = int(frame_size)
        self.num_digits = int(num_digits)
        self.num_frames = int(num_frames)
        self.digit_size = int(digit_size)
        self.speed = (float(low_speed), float(high_speed))
        self.split = split
        self.seed = _arguments.integer("seed", seed, minimum=0)
        self.stochastic = _arguments.boolean("stochastic", stochastic)
        if digits is None:
            self.digits, self._digits_uint8, self.labels, self.digit_source = (
                _split_digits(
                    split,
                    self.digit_size,
                    os.environ.get("VAELIB_MNIST"),
                    os.environ.get("VAELIB_DIGITS_SOURCE"),
                )
            )
            return
        self.digit_source = "given"
        self.digits = resize_images(
            _as_digit_images(digits), self.digit_size, resample="bilinear"
        )
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and len(self.labels) != len(self.digits):
            raise ValueError(
                "Expected one label per digit image. "
                f"Received: {len(self.labels)} labels for {len(self.digits)} images"
            )
        self._digits_uint8 = np.round(self.digits * 255).astype("uint8")

    @classmethod
    def scaled(cls, frame_size, **kwargs):
        """Moving MNIST's proportions at another frame size.

        Digit size (28 px) and speed (3.6 px per frame) scale with
        `frame_size / 64`; e.g. 32x32 frames get 14-pixel digits moving 1.8 px
        per frame, the laptop-sized clips of the course. Other arguments are
        passed to the constructor.
        """
        scale = frame_size / 64
        kwargs.setdefault("digit_size", max(4, round(28 * scale)))
        kwargs.setdefault("speed", 3.6 * scale)
        return cls(frame_size=frame_size, **kwargs)

    @property
    def clip_shape(self):
        """`(num_frames, frame_size, frame_size, 1)`."""
        return (self.num_frames, self.frame_size, self.frame_size, 1)

    def metadata(self, n, start=0):
        """What clips `start .. start + n - 1` show, without drawing them.

        Returns:
            A dict of numpy arrays: `digit_index` `(n, num_digits)` into
            `self.digits`; `labels` `(n, num_digits)` (-1 when unknown);
            `start_position` and `velocity` `(n, num_digits, 2)` in pixels
            (row, column) and pixels per frame (the first frame's velocity);
            `positions` `(n, num_digits, num_frames, 2)`, the exact, unrounded
            top-left corner of each digit in each frame; `bounces` `(n,
            num_digits, num_frames)`, True where the step into that frame hit
            a wall (where a stochastic clip's digit changes direction).
        """
        n = _arguments.integer("n", n, minimum=0)
        start = _arguments.integer("start", start, minimum=0)
        free = float(self.frame_size - self.digit_size)
        digit_index = np.empty((n, self.num_digits), "int64")
        start_position = np.empty((n, self.num_digits, 2))
        velocity = np.empty((n, self.num_digits, 2))
        for row, clip in enumerate(range(start, start + n)):
            rng = np.random.default_rng((self.seed, clip))
            digit_index[row] = rng.integers(len(self.digits), size=self.num_digits)
            start_position[row] = rng.uniform(0.0, free, size=(self.num_digits, 2))
            angle = rng.uniform(0.0, 2.0 * np.pi, size=self.num_digits)
            speed = rng.uniform(*self.speed, size=self.num_digits)
            velocity[row] = speed[:, None] * np.stack(
                [np.sin(angle), np.cos(angle)], -1
            )
        if self.stochastic:
            positions, bounces = self._stochastic_paths(
                start_position, velocity, start, free
            )
        else:
            time = np.arange(self.num_frames)[:, None]
            unfolded = start_position[:, :, None] + velocity[:, :, None] * time
            # (n, num_digits, num_frames, 2)
            positions = bounce(unfolded, free)
            # a wall was hit between two frames where the fold count changes
            laps = np.floor(unfolded / free) if free > 0 else np.zeros_like(unfolded)
            bounces = np.zeros(positions.shape[:3], bool)
            bounces[:, :, 1:] = (np.diff(laps, axis=2) != 0).any(-1)
        labels = (
            np.full_like(digit_index, -1)
            if self.labels is None
            else self.labels[digit_index]
        )
        return {
            "digit_index": digit_index,
            "labels": labels,
            "start_position": start_position,
            "velocity": velocity,
            "positions": positions,
            "bounces": bounces,
        }

    def _stochastic_paths(self, start_position, velocity, start, free):
        """Paths that take a new inward direction, same speed, at every bounce.

        Stepped frame by frame (vectorised over clips and digits). A step that
        leaves `[0, free]` is reflected back in, as in the deterministic
        clips; then the velocity turns to an angle drawn uniformly and flipped
        to point away from each wall hit. The angles come from a generator of
        their own per clip, `(seed, clip, 1)`, so the first frame and the
        initial velocity are the deterministic clip's, and clip `i` depends
        only on `seed` and `i`.
        """
        n, num_digits = start_position.shape[:2]
        angles = np.empty((n, self.num_frames, num_digits))
        for row, clip in enumerate(range(start, start + n)):
            rng = np.random.default_rng((self.seed, clip, 1))
            angles[row] = rng.uniform(0.0, 2.0 * np.pi, (self.num_frames, num_digits))
        positions = np.empty((n, num_digits, self.num_frames, 2))
        bounces = np.zeros((n, num_digits, self.num_frames), bool)
        position, velocity = start_position.copy(), velocity.copy()
        positions[:, :, 0] = position
        speed = np.linalg.norm(velocity, axis=-1)
        for t in range(1, self.num_frames):
            moved = position + velocity
            low, high = moved < 0, moved > free
            position = bounce(moved, free)
            hit = low | high  # (n, num_digits, 2): which walls, per axis
            turned = speed[..., None] * np.stack(
                [np.sin(angles[:, t]), np.cos(angles[:, t])], -1
            )
            # point away from each wall hit: + off the low wall, - off the high one
            turned = np.where(low, np.abs(turned), turned)
            turned = np.where(high, -np.abs(turned), turned)
            any_hit = hit.any(-1, keepdims=True)
            velocity = np.where(any_hit, turned, velocity)
            positions[:, :, t] = position
            bounces[:, :, t] = any_hit[..., 0]
        return positions, bounces

    def clips_uint8(self, n, start=0):
        """Clips `start .. start + n - 1` as uint8 `(n, num_frames, size, size, 1)`."""
        info = self.metadata(n, start)
        n, size, digit = len(info["digit_index"]), self.frame_size, self.digit_size
        frames = np.zeros((n, self.num_frames, size, size), "uint8")
        corners = np.rint(info["positions"]).astype("int64")
        offsets = np.arange(digit)
        clip_index = np.arange(n)[:, None, None, None]
        frame_index = np.arange(self.num_frames)[None, :, None, None]
        for d in range(self.num_digits):
            # (n, num_frames, digit, 1) rows and (n, num_frames, 1, digit) columns
            rows = corners[:, d, :, 0, None, None] + offsets[:, None]
            columns = corners[:, d, :, 1, None, None] + offsets[None, :]
            patches = self._digits_uint8[info["digit_index"][:, d]][:, None]
            region = frames[clip_index, frame_index, rows, columns]
            frames[clip_index, frame_index, rows, columns] = np.maximum(region, patches)
        return frames[..., None]

    def clips(self, n, start=0):
        """Clips `start .. start + n - 1`, float32 `(n, frames, h, w, 1)` in [0, 1]."""
        return np.divide(self.clips_uint8(n, start), np.float32(255), dtype="float32")

    def as_dataset(
        self,
        num_clips,
        batch_size=16,
        shuffle=True,
        cache=True,
        context_frames=None,
        render_batch=256,
        prefetch=True,
    ):
        """A `tf.data.Dataset` of the first `num_clips` clips, float32 in [0, 1].

        Clips are drawn in blocks of `render_batch` inside the pipeline (as
        uint8, so a cache holds a quarter of the bytes), then optionally cached
        in memory, shuffled (a new order each epoch), batched and prefetched.

        Args:
            num_clips: Clips in one epoch.
            batch_size: Clips per batch.
            shuffle: Reshuffle clips every epoch.
            cache: Keep the drawn clips in memory after the first epoch.
            context_frames: If given, yield `(context, future)` pairs, the
                first `context_frames` frames and the rest, for prediction.
            render_batch: Clips drawn by one call of the generator.
            prefetch: Prepare the next batch while the model trains.

        Returns:
            Batches of clips `(batch, frames, size, size, 1)`, or pairs of
            `(batch, context_frames, ...)` and `(batch, frames - context_frames, ...)`.
        """
        import tensorflow as tf

        num_clips = _arguments.positive_int("num_clips", num_clips)
        batch_size = _arguments.positive_int("batch_size", batch_size)
        render_batch = _arguments.positive_int("render_batch", render_batch)
        if context_frames is not None and not 0 < context_frames < self.num_frames:
            raise ValueError(
                f"Expected 0 < context_frames < num_frames={self.num_frames}. "
                f"Received: context_frames={context_frames}"
            )

        def render(block_start):
            count = min(render_batch, num_clips - int(block_start))
            return self.clips_uint8(count, int(block_start))

        starts = tf.data.Dataset.range(0, num_clips, render_batch)
        dataset = starts.map(
            lambda block: tf.ensure_shape(
                tf.numpy_function(render, [block], tf.uint8), (None,) + self.clip_shape
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).unbatch()
        # unbatch() forgets the length; Keras needs it for the steps per epoch
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_clips))
        if cache:
            dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(
                min(num_clips, 4096), seed=self.seed, reshuffle_each_iteration=True
            )
        dataset = dataset.batch(batch_size).map(
            lambda clips: tf.cast(clips, tf.float32) / 255.0,
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if context_frames is not None:
            dataset = dataset.map(
                lambda clips: (clips[:, :context_frames], clips[:, context_frames:])
            )
        return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_moving_mnist(path, max_clips=None, check_hash=True):
    """Loads the official Moving MNIST file (`mnist_test_seq.npy`).

    The file of Srivastava et al. (2015) holds uint8 frames of shape
    `(frames, clips, 64, 64)` = `(20, 10000, 64, 64)`, time first. This returns
    them in the layout of `MovingDigits.clips`. `MovingDigits` follows the
    same generator but draws its own clips; numbers on this file are the ones
    to set beside published Moving MNIST results.

    Args:
        path: Path of the `.npy` file.
        max_clips: Keep only the first `max_clips` clips (the whole file as
            float32 takes 3.3 GB).
        check_hash: Check the file's sha256 against the published file's
            (`MOVING_MNIST_SHA256`) and refuse another file.

    Returns:
        float32 array `(clips, frames, 64, 64, 1)` in [0, 1].
    """
    if check_hash:
        digest = _sha256(path)
        if digest != MOVING_MNIST_SHA256:
            raise ValueError(
                "Expected the published Moving MNIST file, sha256 "
                f"{MOVING_MNIST_SHA256}. Received: {path} with sha256 {digest} "
                "(pass check_hash=False to load another file in its layout)"
            )
    frames = np.load(path, mmap_mode="r")
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(
            "Expected the Moving MNIST layout: uint8 array (frames, clips, height, "
            f"width), e.g. (20, 10000, 64, 64). Received: dtype={frames.dtype}, "
            f"shape={frames.shape}"
        )
    if max_clips is not None:
        frames = frames[:, : int(max_clips)]
    # (frames, clips, h, w) -> (clips, frames, h, w, 1)
    return np.transpose(frames, (1, 0, 2, 3))[..., None].astype("float32") / 255.0
