"""The data a command trains or measures on, chosen by `--data` and `--source`."""

import os
from typing import NamedTuple

from vaelib.commands.arguments import UsageError


class Data(NamedTuple):
    """Train, validation and test arrays, and where they came from."""

    train: object
    validation: object
    test: object
    description: str
    source: str


def _moving_digits(args, split, seed):
    from vaelib.data import MovingDigits

    previous = os.environ.get("VAELIB_DIGITS_SOURCE")
    if args.source != "auto":
        # MovingDigits takes its digits from load_digits_images, which reads it.
        os.environ["VAELIB_DIGITS_SOURCE"] = args.source
    try:
        return MovingDigits.scaled(
            args.frame_size,
            num_frames=args.num_frames,
            split=split,
            seed=seed,
            stochastic=getattr(args, "stochastic", False),
        )
    finally:
        if previous is None:
            os.environ.pop("VAELIB_DIGITS_SOURCE", None)
        else:
            os.environ["VAELIB_DIGITS_SOURCE"] = previous


def load_data(args, with_train=True):
    """Train, validation and test arrays for `--data`, and where they came from."""
    if args.data == "moving-digits":
        if args.frame_size < 16:
            raise UsageError(f"--frame-size must be at least 16, got {args.frame_size}")
        test_maker = _moving_digits(args, "test", 1)
        test = test_maker.clips(args.test_clips)
        train = validation = None
        if with_train:
            train = _moving_digits(args, "train", args.seed).clips(args.clips)
            validation = _moving_digits(args, "train", args.seed + 1_000_003).clips(
                max(16, args.clips // 10)
            )
        kind = "stochastic moving digits" if test_maker.stochastic else "moving digits"
        description = (
            f"{kind} ({test_maker.digit_source} digits), clips of "
            f"{args.num_frames} frames of {args.frame_size}x{args.frame_size}: "
            f"{args.clips if with_train else 0} train / {args.test_clips} test clips"
        )
        return Data(train, validation, test, description, test_maker.digit_source)

    from vaelib.data import load_digits_images

    source = args.source
    if args.data == "mnist":
        if source == "sklearn":
            raise UsageError("--data mnist cannot use --source sklearn")
    test = load_digits_images("test", source=source)
    if args.data == "mnist" and test.source == "sklearn":
        raise UsageError(
            "MNIST is not available here (no VAELIB_MNIST file, no Keras cache, no "
            "TFDS copy, no download); use --data digits, which falls back to "
            "scikit-learn's digits"
        )
    train = load_digits_images("train", source=test.source) if with_train else None
    validation = None
    if with_train:
        import numpy as np

        order = np.random.default_rng(args.seed).permutation(len(train.images))
        cut = len(order) // 10
        validation = train.images[order[:cut]]
        train_images = train.images[order[cut:]]
    test_images = test.images
    binary = getattr(args, "binarize", "none") == "dynamic"
    if binary:
        from vaelib.data import STATIC_BINARIZATION_SEED, binarize

        test_images = binarize(test_images, seed=STATIC_BINARIZATION_SEED)
        if with_train:
            validation = binarize(validation, seed=STATIC_BINARIZATION_SEED + 1)
    description = (
        f"{test.description}: "
        f"{len(train_images) if with_train else 0} train / "
        f"{0 if validation is None else len(validation)} validation / "
        f"{len(test.images)} test images"
        + (
            ", train binarised afresh every epoch, validation and test statically "
            f"binarised (seeds {STATIC_BINARIZATION_SEED + 1}, "
            f"{STATIC_BINARIZATION_SEED})"
            if binary
            else ", grey pixels (no binarisation)"
        )
    )
    return Data(
        train_images if with_train else None,
        validation,
        test_images,
        description,
        test.source,
    )
