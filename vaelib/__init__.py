"""vaelib: variational autoencoders for images and video, in Keras 3.

The public names below are imported on first use, so `import vaelib` (and the
command line's argument checking) does not wait for TensorFlow to load.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GaussianHead": "vaelib.layers",
    "Sampling": "vaelib.layers",
    "bernoulli_nll": "vaelib.losses",
    "gaussian_kl": "vaelib.losses",
    "gaussian_nll": "vaelib.losses",
    "VAE": "vaelib.models",
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
