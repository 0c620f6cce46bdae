"""vaelib: variational autoencoders for images and video, in Keras 3."""

from vaelib.layers import GaussianHead, Sampling
from vaelib.losses import bernoulli_nll, gaussian_kl, gaussian_nll
from vaelib.models import VAE, conv_vae, mlp_vae

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "GaussianHead",
    "Sampling",
    "bernoulli_nll",
    "conv_vae",
    "gaussian_kl",
    "gaussian_nll",
    "mlp_vae",
]
