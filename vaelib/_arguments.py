"""Argument checks shared by the library: Keras' "Expected ... Received: ..." errors.

Each returns the value in canonical form (a Python `int`, a tuple of them, a
`float`) or raises a `ValueError` that names the argument.
"""

import math
import numbers

import numpy as np


def positive_int(name, value):
    """`value` as an `int` >= 1; floats such as 2.7 are refused, not truncated."""
    return integer(name, value, minimum=1)


def integer(name, value, minimum=None):
    """`value` as an `int` (at least `minimum`); a bool or a float is refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (minimum is not None and value < minimum)
    ):
        wanted = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"Expected {name} to be {wanted}. Received: {name}={value!r}")
    return int(value)


def positive_ints(name, values, allow_empty=False):
    """`values` (a sequence, or one integer) as a tuple of `int`s >= 1."""
    original = values
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if (
        values is None
        or (not values and not allow_empty)
        or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
            for v in values
        )
    ):
        wanted = "a tuple of positive integers" + ("" if allow_empty else ", not empty")
        raise ValueError(
            f"Expected {name} to be {wanted}. Received: {name}={original!r}"
        )
    return tuple(int(v) for v in values)


def finite_float(name, value, minimum=None):
    """`value` as a finite `float` (at least `minimum`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        wanted = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"Expected {name} to be {wanted}. Received: {name}={value!r}")
    return number


def boolean(name, value):
    """`value` as a `bool`; only True, False (and NumPy's bools) are accepted."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"Expected {name} to be True or False. Received: {name}={value!r}")


def in_range(name, value, low, high):
    """`value` as a finite `float` in [low, high]."""
    number = finite_float(name, value)
    if not low <= number <= high:
        raise ValueError(
            f"Expected {name} in [{low}, {high}]. Received: {name}={value!r}"
        )
    return number


def unit_interval(name, values, allow_empty=False):
    """`values` as a float32 array of finite values in [0, 1]: images, clips, frames.

    The library's one check for "pixels in [0, 1]": integer arrays (uint8
    images) are refused with the hint to divide by 255, never rescaled
    silently, and so are NaN, inf and an empty batch (unless `allow_empty`).
    """
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"Expected {name} as floats in [0, 1] (divide uint8 images by 255). "
            f"Received: {name} of dtype {array.dtype}"
        )
    if array.ndim and not len(array) and not allow_empty:
        raise ValueError(
            f"Expected {name} to hold at least one example. Received: "
            f"shape={array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Expected finite {name}. Received: NaN or inf values")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(
            f"Expected {name} in [0, 1]. Received: min={array.min():.4g}, "
            f"max={array.max():.4g}"
        )
    return array.astype("float32", copy=False)
