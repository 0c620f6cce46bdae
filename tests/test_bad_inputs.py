"""Every bad input of issue 18 gets a clear error that names the argument.

Each case is a call, the error it must raise, and the argument its message
must name, in Keras' "Expected ... Received: ..." style.
"""

import keras
import numpy as np
import pytest

from vaelib.data import MovingDigits, binarize
from vaelib.layers import FusedConvLSTM2D, GaussianHead, Sampling
from vaelib.losses import bernoulli_nll, gaussian_kl, gaussian_nll
from vaelib.metrics import (
    bits_per_dim,
    evaluate_prediction,
    evaluate_video,
    frechet_distance,
    generation_statistics,
    iwae_log_likelihood,
    psnr,
    ssim,
    video_codec_round_trip,
)
from vaelib.models import (
    MLPVAE,
    VAE,
    ConvLSTMVAE,
    LearnedPriorVAE,
    conv_vae,
    convlstm_predictor,
    convlstm_vae,
    mlp_vae,
    predict_frames,
)
from vaelib.models.video import copy_last_frame
from vaelib.training import KLAnnealing, fit_vae
from vaelib.viz import tile_images

pytestmark = pytest.mark.every_backend  # see tests/run.sh


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

# Issue 25: inputs that were accepted silently or failed with another
# library's error. The same contract: a ValueError naming the argument.
DIGITS = np.random.default_rng(0).random((20, 28, 28, 1)).astype("float32")
CLIPS_16 = np.random.default_rng(0).random((2, 4, 16, 16, 1)).astype("float32")


def _tiny_learned_prior():
    return LearnedPriorVAE(
        input_shape=(4, 8, 8, 1), latent_dim=2, filters=(4,), lstm_filters=4
    )


def _moving(**kwargs):
    return MovingDigits(frame_size=16, digit_size=8, digits=DIGITS, **kwargs)


ISSUE_25_CASES = {
    "Sampling on one tensor": (
        lambda: Sampling(seed=0)(keras.ops.zeros((2, 3))),
        "inputs",
    ),
    "GaussianHead(2.7)": (lambda: GaussianHead(2.7), "latent_dim"),
    "GaussianHead('3')": (lambda: GaussianHead("3"), "latent_dim"),
    "GaussianHead(True)": (lambda: GaussianHead(True), "latent_dim"),
    "decoder_log_var=inf": (
        lambda: MLPVAE(likelihood="gaussian", decoder_log_var=float("inf")),
        "decoder_log_var",
    ),
    "fast='no'": (
        lambda: ConvLSTMVAE(input_shape=(2, 8, 8, 1), filters=(4,), fast="no"),
        "fast",
    ),
    "skip='yes'": (
        lambda: ConvLSTMVAE(input_shape=(2, 8, 8, 1), filters=(4,), skip="yes"),
        "skip",
    ),
    "VAE('x', 'y')": (lambda: VAE("x", "y"), "encoder"),
    "fit_vae learning_rate=-1": (
        lambda: fit_vae(_image_model(), IMAGES, learning_rate=-1, verbose=0),
        "learning_rate",
    ),
    "fit_vae learning_rate=nan": (
        lambda: fit_vae(_image_model(), IMAGES, learning_rate=float("nan")),
        "learning_rate",
    ),
    "fit_vae on empty data": (
        lambda: fit_vae(_image_model(), IMAGES[:0], verbose=0),
        "train_data",
    ),
    "psnr max_value=-1": (lambda: psnr(IMAGES, IMAGES, max_value=-1), "max_value"),
    "psnr on 0-255 data": (lambda: psnr(IMAGES * 255, IMAGES * 255), "max_value"),
    "ssim on 0-255 data": (
        lambda: ssim(CLIPS_16[0] * 255, CLIPS_16[0] * 255),
        "max_value",
    ),
    "evaluate_prediction on logits": (
        lambda: evaluate_prediction(CLIPS_16, CLIPS_16 * 8 - 4),
        "probabilities",
    ),
    "predict_future on NaN": (
        lambda: _tiny_learned_prior().predict_future(
            np.full((1, 2, 8, 8, 1), np.nan, "float32"), 2
        ),
        "context",
    ),
    "predict_future on an empty batch": (
        lambda: _tiny_learned_prior().predict_future(
            np.zeros((0, 2, 8, 8, 1), "float32"), 2
        ),
        "context",
    ),
    "MovingDigits seed=1.5": (lambda: _moving(seed=1.5), "seed"),
    "MovingDigits seed=-1": (lambda: _moving(seed=-1), "seed"),
    "clips(2.7)": (lambda: _moving().clips(2.7), "n"),
    "as_dataset batch_size=0": (
        lambda: _moving().as_dataset(4, batch_size=0),
        "batch_size",
    ),
    "copy_last_frame 2.5": (lambda: copy_last_frame(CLIPS, 2.5), "future_frames"),
    "copy_last_frame -1": (lambda: copy_last_frame(CLIPS, -1), "future_frames"),
    "predict_frames on uint8": (
        lambda: predict_frames(
            convlstm_predictor(
                input_shape=(3, 8, 8, 1), context_frames=2, filters=(4,), lstm_filters=4
            ),
            np.zeros((1, 2, 8, 8, 1), "uint8"),
        ),
        "context",
    ),
    "generation_statistics ink_threshold=5": (
        lambda: generation_statistics(CLIPS_16, ink_threshold=5),
        "ink_threshold",
    ),
    "video_codec_round_trip crf=99": (
        lambda: video_codec_round_trip(CLIPS_16, crf=99),
        "crf",
    ),
    "gaussian_nll wrong shape": (
        lambda: gaussian_nll(np.zeros((2, 3)), np.zeros((2, 4)), 0.0),
        "mean",
    ),
    "gaussian_nll int mean": (
        lambda: gaussian_nll(np.zeros((2, 3)), np.zeros((2, 3), "int32"), 0.0),
        "mean",
    ),
    "bits_per_dim('100')": (lambda: bits_per_dim("100", 784), "nll"),
    "frechet_distance NaN": (
        lambda: frechet_distance(np.full((4, 3), np.nan), np.zeros((4, 3))),
        "features_a",
    ),
    "binarize seed=-1": (lambda: binarize(IMAGES, seed=-1), "seed"),
    "tile_images columns=0": (lambda: tile_images(IMAGES, columns=0), "columns"),
}
CASES.update(ISSUE_25_CASES)


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


def test_gaussian_kl_of_float32_and_float64_is_computed_in_float64():
    """Mixed dtypes raised TensorFlow's error; they meet in the wider dtype."""
    mean = np.array([[0.5, -1.0]], "float32")
    log_var = np.array([[0.2, -0.3]], "float64")
    kl = keras.ops.convert_to_numpy(gaussian_kl(mean, log_var))
    m, v = mean.astype("float64"), log_var
    expected = 0.5 * np.sum(np.exp(v) - 1 - v + m**2, axis=1)
    np.testing.assert_allclose(kl, expected, rtol=1e-6)


def test_gaussian_nll_takes_integer_targets():
    x = np.array([[0, 1]], "int32")
    nll = keras.ops.convert_to_numpy(gaussian_nll(x, np.zeros((1, 2)), 0.0))
    np.testing.assert_allclose(nll, [np.log(2 * np.pi) + 0.5], rtol=1e-6)
