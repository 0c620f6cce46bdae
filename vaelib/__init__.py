"""vaelib: variational autoencoders for images and video, in Keras 3.

`import vaelib` registers every Keras class of the library (layers and
models), so `keras.saving.load_model("model.keras", safe_mode=True)` finds
them in a fresh session. The other public names (losses, metrics, data) are
imported on first use.
"""

import importlib
import os
import sys

__version__ = "0.1.0"


def _started_as_the_command_line():
    """Whether this process is vaelib's own command line (`python -m vaelib`).

    Read from `sys.orig_argv`, the interpreter's own arguments: true only
    for `python [options] -m vaelib ...` (or `-m vaelib.cli`) and the
    `vaelib` script, never for another program that imports vaelib (run
    with `-m` or not). The command line then checks its arguments before
    loading Keras (a fraction of a second instead of several), and its
    commands import the models they load.
    """
    argv = list(getattr(sys, "orig_argv", []))
    i = 1
    while i < len(argv):
        argument = argv[i]
        if argument == "-m":
            return argv[i + 1 : i + 2] in (["vaelib"], ["vaelib.cli"])
        if argument.startswith("-m"):
            return argument[2:] in ("vaelib", "vaelib.cli")
        if argument.startswith("-c"):
            return False
        if not argument.startswith("-"):
            # the script Python runs: the installed `vaelib` entry point?
            return os.path.basename(argument) == "vaelib"
        # -X and -W take a value as the next argument
        i += 2 if argument in ("-X", "-W") else 1
    return False


if not _started_as_the_command_line():
    import vaelib.layers  # noqa: F401 - registers the layers for keras.saving
    import vaelib.models  # noqa: F401 - registers the models for keras.saving

_EXPORTS = {
    "GaussianHead": "vaelib.layers",
    "Sampling": "vaelib.layers",
    "bernoulli_nll": "vaelib.losses",
    "gaussian_kl": "vaelib.losses",
    "gaussian_nll": "vaelib.losses",
    "VAE": "vaelib.models",
    "MLPVAE": "vaelib.models",
    "ConvVAE": "vaelib.models",
    "FramewiseVAE": "vaelib.models",
    "ConvLSTMVAE": "vaelib.models",
    "ConvLSTMPredictor": "vaelib.models",
    "LearnedPriorVAE": "vaelib.models",
    "learned_prior_vae": "vaelib.models",
    "convlstm_predictor": "vaelib.models",
    "predict_frames": "vaelib.models",
    "upgrade_model": "vaelib.models",
    "conv_vae": "vaelib.models",
    "mlp_vae": "vaelib.models",
    "framewise_vae": "vaelib.models",
    "convlstm_vae": "vaelib.models",
    "iwae_log_likelihood": "vaelib.metrics",
    "bits_per_dim": "vaelib.metrics",
    "load_digits_images": "vaelib.data",
    "MovingDigits": "vaelib.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vaelib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
