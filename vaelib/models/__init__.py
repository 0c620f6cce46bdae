"""VAE models: the `VAE` base class and builders for each architecture."""

from vaelib.models.base import VAE
from vaelib.models.causal3d import CausalVideoVAE, causal_video_vae
from vaelib.models.conv import ConvVAE, conv_vae
from vaelib.models.latent_diffusion import LatentFlow
from vaelib.models.learned_prior import LearnedPriorVAE, learned_prior_vae
from vaelib.models.legacy import upgrade_model
from vaelib.models.mlp import MLPVAE, mlp_vae
from vaelib.models.video import (
    ConvLSTMPredictor,
    ConvLSTMVAE,
    FramewiseVAE,
    convlstm_predictor,
    convlstm_vae,
    copy_last_frame,
    framewise_vae,
    predict_frames,
)

__all__ = [
    "VAE",
    "CausalVideoVAE",
    "ConvLSTMPredictor",
    "ConvLSTMVAE",
    "ConvVAE",
    "FramewiseVAE",
    "LatentFlow",
    "LearnedPriorVAE",
    "MLPVAE",
    "causal_video_vae",
    "conv_vae",
    "convlstm_predictor",
    "convlstm_vae",
    "copy_last_frame",
    "framewise_vae",
    "learned_prior_vae",
    "mlp_vae",
    "predict_frames",
    "upgrade_model",
]
