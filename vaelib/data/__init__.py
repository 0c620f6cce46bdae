"""Data sets of the course: digit images and moving-digit clips."""

from vaelib.data.digits import (
    STATIC_BINARIZATION_SEED,
    DigitImages,
    binarize,
    dynamically_binarized,
    load_digits_images,
)
from vaelib.data.moving import MovingDigits, load_moving_mnist

__all__ = [
    "STATIC_BINARIZATION_SEED",
    "DigitImages",
    "MovingDigits",
    "binarize",
    "dynamically_binarized",
    "load_digits_images",
    "load_moving_mnist",
]
