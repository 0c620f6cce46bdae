"""Data sets of the course: digit images now, moving-digit clips next."""

from vaelib.data.digits import DigitImages, binarize, load_digits_images

__all__ = ["DigitImages", "binarize", "load_digits_images"]
