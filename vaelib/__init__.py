"""vaelib: variational autoencoders for images and video, in Keras 3.

`import vaelib` registers every Keras class of the library (layers and
models), so `keras.saving.load_model("model.keras", safe_mode=True)` finds
them in a fresh session. The other public names (losses, metrics, data) are
imported on first use.
"""

import importlib
import sys

__version__ = "0.1.0"

# `python -m vaelib` imports this package while sys.argv[0] is still "-m"
# (Python documents it): the command line then checks its arguments before
# loading Keras, and its commands import the models themselves.
if getattr(sys, "argv", [""])[:1] != ["-m"]:
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
