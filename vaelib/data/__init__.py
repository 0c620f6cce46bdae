"""Data sets of the course: digit images and moving-digit clips."""

from vaelib.data.digits import DigitImages, binarize, load_digits_images
from vaelib.data.moving import MovingDigits, load_moving_mnist

__all__ = [
    "DigitImages",
    "MovingDigits",
    "binarize",
    "load_digits_images",
    "load_moving_mnist",
]
