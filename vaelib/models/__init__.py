"""VAE models: the `VAE` base class and builders for each architecture."""

from vaelib.models.base import VAE
from vaelib.models.conv import conv_vae
from vaelib.models.mlp import mlp_vae
from vaelib.models.video import (
    convlstm_predictor,
    convlstm_vae,
    copy_last_frame,
    framewise_vae,
    predict_frames,
)

__all__ = [
    "VAE",
    "conv_vae",
    "convlstm_predictor",
    "convlstm_vae",
    "copy_last_frame",
    "framewise_vae",
    "mlp_vae",
    "predict_frames",
]
