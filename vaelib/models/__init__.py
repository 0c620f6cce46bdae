"""VAE models: the `VAE` base class and builders for each architecture."""

from vaelib.models.base import VAE
from vaelib.models.conv import conv_vae
from vaelib.models.mlp import mlp_vae

__all__ = ["VAE", "conv_vae", "mlp_vae"]
