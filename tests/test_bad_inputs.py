"""Every bad input of issue 18 gets a clear error that names the argument.

Each case is a call, the error it must raise, and the argument its message
must name, in Keras' "Expected ... Received: ..." style.
"""

import keras
import numpy as np
import pytest

from vaelib.layers import FusedConvLSTM2D, Sampling
from vaelib.losses import bernoulli_nll, gaussian_kl
from vaelib.metrics import (
    bits_per_dim,
    evaluate_prediction,
    evaluate_video,
    iwae_log_likelihood,
    ssim,
)
from vaelib.models import conv_vae, convlstm_vae, mlp_vae
from vaelib.training import KLAnnealing


def _image_model():
    return mlp_vae(input_shape=(4, 4, 1), latent_dim=2, hidden=(4,))


def _video_model():
    return convlstm_vae(
        input_shape=(2, 8, 8, 1), latent_dim=2, filters=(4,), lstm_filters=4
    )


IMAGES = np.full((3, 4, 4, 1), 0.5, "float32")
CLIPS = np.full((2, 2, 8, 8, 1), 0.5, "float32")

CASES = {
    "gaussian_kl int32": (
        lambda: gaussian_kl(np.zeros((2, 3), "int32"), np.zeros((2, 3), "int32")),
        "z_mean",
    ),
    "bernoulli_nll x=255": (
        lambda: bernoulli_nll(np.full((2, 3), 255.0), np.zeros((2, 3), "float32")),
        "x",
    ),
    "bits_per_dim 784.0": (lambda: bits_per_dim(100.0, 784.0), "num_dims"),
    "bits_per_dim 0": (lambda: bits_per_dim(100.0, 0), "num_dims"),
    "iwae chunk_size 0": (
        lambda: iwae_log_likelihood(_image_model(), IMAGES, k=4, chunk_size=0),
        "chunk_size",
    ),
    "iwae chunk_size -1": (
        lambda: iwae_log_likelihood(_image_model(), IMAGES, k=4, chunk_size=-1),
        "chunk_size",
    ),
    "iwae k=2.7": (lambda: iwae_log_likelihood(_image_model(), IMAGES, k=2.7), "k"),
    "sample(2.7)": (lambda: _image_model().sample(2.7), "n"),
    "evaluate_video batch_size=0": (
        lambda: evaluate_video(_video_model(), CLIPS, batch_size=0),
        "batch_size",
    ),
    "Sampling (4, 2) and (4, 1)": (
        lambda: Sampling(seed=0)((keras.ops.zeros((4, 2)), keras.ops.zeros((4, 1)))),
        "z_log_var",
    ),
    "conv_vae filters=()": (lambda: conv_vae(filters=()), "filters"),
    "FusedConvLSTM2D (3, 5)": (lambda: FusedConvLSTM2D(8, (3, 5)), "kernel_size"),
    "KLAnnealing cycles=0": (
        lambda: KLAnnealing("cyclical", epochs=8, cycles=0),
        "cycles",
    ),
    "KLAnnealing ratio=0": (
        lambda: KLAnnealing("cyclical", epochs=8, ratio=0),
        "ratio",
    ),
    "KLAnnealing beta_max=-1": (lambda: KLAnnealing(beta_max=-1.0), "beta_max"),
    "KLAnnealing warmup_epochs=0": (
        lambda: KLAnnealing(warmup_epochs=0),
        "warmup_epochs",
    ),
    "ssim on 10x10 frames": (
        lambda: ssim(np.zeros((1, 10, 10, 1)), np.zeros((1, 10, 10, 1))),
        "10x10",
    ),
    "ssim sigma=0": (
        lambda: ssim(np.zeros((1, 16, 16, 1)), np.zeros((1, 16, 16, 1)), sigma=0),
        "sigma",
    ),
    "evaluate_prediction 4-D": (
        lambda: evaluate_prediction(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 1))),
        "probabilities",
    ),
    "mlp_vae latent_dim=0": (lambda: mlp_vae(latent_dim=0), "latent_dim"),
    "VAE beta=nan": (lambda: mlp_vae(beta=float("nan")), "beta"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_value_error_naming_the_argument(case):
    call, argument = CASES[case]
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert "Expected" in message, message
    assert argument in message, message
    assert "Received" in message, message


def test_fused_convlstm_takes_a_square_kernel_as_a_pair_like_keras():
    assert FusedConvLSTM2D(8, (3, 3)).kernel_size == 3
    assert FusedConvLSTM2D(8, [5]).kernel_size == 5
