"""Argument types of the command line: each value checked, one line if it is wrong."""

import argparse
import math


class UsageError(Exception):
    """A problem with the command line or its files: exit status 2."""


class RunFailed(Exception):
    """A run that started but could not finish (training diverged): status 1."""


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line that points to `--help`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def number(convert, minimum, description, strict=False):
    """An argparse type: finite `convert(text)`, at least `minimum`, else one line.

    With `strict`, the value must be above `minimum`.
    """

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or not value >= minimum
            or (strict and value == minimum)
        ):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


positive_int = number(int, 1, "a positive integer")
non_negative_int = number(int, 0, "an integer >= 0")
non_negative_float = number(float, 0, "a finite number >= 0")
positive_float = number(float, 0, "a finite number > 0", strict=True)


def int_list(text):
    """An argparse type: comma-separated positive integers, e.g. "32,64"."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 32,64, got {text!r}"
        )
    return values


def keras_file(text):
    """An argparse type: a path ending in `.keras` (Keras' safe format)."""
    import pathlib

    path = pathlib.Path(text)
    if path.suffix != ".keras":
        raise argparse.ArgumentTypeError(f"expected a .keras file, got {text!r}")
    return path
