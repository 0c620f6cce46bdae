"""The names that string options of the library accept, importable without Keras.

`vaelib.training` checks its arguments against them, and the command line
offers them as choices before it loads Keras (so a mistyped option fails in
a fraction of a second).
"""

# Distribution engines of `vaelib.training.get_strategy`.
STRATEGIES = ("auto", "none", "one-device", "mirrored", "multiworker")
# Mixed-precision modes of `vaelib.training.set_mixed_precision`.
PRECISIONS = ("off", "auto", "float16", "bfloat16")
