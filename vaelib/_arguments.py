"""Argument checks shared by the library: Keras' "Expected ... Received: ..." errors.

Each returns the value in canonical form (a Python `int`, a tuple of them, a
`float`) or raises a `ValueError` that names the argument.
"""

import math
import numbers


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
