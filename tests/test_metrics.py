"""IWAE checked against probabilistic PCA, where log p(x) has a closed form.

A linear-Gaussian VAE, x = W z + b + noise with noise ~ N(0, sigma^2 I) and
z ~ N(0, I), is probabilistic PCA: p(x) = N(b, W W^T + sigma^2 I). When the
columns of W are orthogonal, the exact posterior is a diagonal Gaussian,
q(z | x) = N(M^-1 W^T (x - b), sigma^2 M^-1) with M = W^T W + sigma^2 I
diagonal, so a VAE encoder can represent it exactly.
"""

import math

import keras
import numpy as np
import pytest
from scipy import stats

from vaelib.metrics import bits_per_dim, evaluate_images, iwae_log_likelihood
from vaelib.models import VAE, mlp_vae

DATA_DIM, LATENT_DIM, NOISE_VAR = 6, 2, 0.3


def probabilistic_pca(mean_shift=0.0):
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(DATA_DIM, LATENT_DIM)))
    weights = basis * np.array([2.0, 0.7])  # (DATA_DIM, LATENT_DIM), orthogonal columns
    offset = rng.normal(size=DATA_DIM)
    m_diag = (weights**2).sum(axis=0) + NOISE_VAR

    inputs = keras.Input((DATA_DIM,))
    z_mean = keras.layers.Dense(LATENT_DIM, name="mean")(inputs)
    z_log_var = keras.layers.Dense(LATENT_DIM, name="log_var")(inputs)
    encoder = keras.Model(inputs, [z_mean, z_log_var])
    latent = keras.Input((LATENT_DIM,))
    decoder = keras.Model(latent, keras.layers.Dense(DATA_DIM, name="linear")(latent))
    model = VAE(
        encoder, decoder, likelihood="gaussian", decoder_log_var=math.log(NOISE_VAR)
    )

    mean_kernel = weights / m_diag
    encoder.get_layer("mean").set_weights(
        [mean_kernel, -offset @ mean_kernel + mean_shift]
    )
    encoder.get_layer("log_var").set_weights(
        [np.zeros((DATA_DIM, LATENT_DIM)), np.log(NOISE_VAR / m_diag)]
    )
    decoder.get_layer("linear").set_weights([weights.T, offset])
    covariance = weights @ weights.T + NOISE_VAR * np.eye(DATA_DIM)
    x = rng.multivariate_normal(offset, covariance, size=64).astype("float32")
    log_px = stats.multivariate_normal(offset, covariance).logpdf(x)
    return model, x, log_px


@pytest.mark.every_backend
def test_iwae_equals_the_closed_form_log_likelihood_for_the_exact_posterior():
    model, x, log_px = probabilistic_pca()
    for k in (1, 5, 50):
        np.testing.assert_allclose(
            iwae_log_likelihood(model, x, k=k, seed=0), log_px, atol=2e-3
        )


def test_elbo_is_unbiased_for_log_px_with_the_exact_posterior():
    model, x, log_px = probabilistic_pca()
    repeats = np.repeat(x[:1], 4000, axis=0)
    elbo = np.asarray(keras.ops.convert_to_numpy(model.elbo(repeats)))
    assert abs(elbo.mean() - log_px[0]) < 4 * elbo.std() / math.sqrt(len(elbo))


def test_iwae_rises_with_k_towards_log_px_when_the_encoder_is_wrong():
    model, x, log_px = probabilistic_pca(mean_shift=0.8)
    elbo = np.asarray(keras.ops.convert_to_numpy(model.elbo(x))).mean()
    bounds = [
        iwae_log_likelihood(model, x, k=k, seed=1).mean() for k in (1, 10, 100, 1000)
    ]
    # One-sample bounds are noisy; the true gap between the ELBO and log p(x)
    # here is 0.8**2 * sum(m_diag) / (2 * noise) ~ 6 nats, far above the noise.
    assert elbo < bounds[1] < bounds[2] < bounds[3] < log_px.mean() + 1e-3
    assert abs(bounds[0] - elbo) < 1.0
    assert log_px.mean() - bounds[3] < 0.5 * (log_px.mean() - elbo)


def test_iwae_is_the_same_for_any_chunk_size():
    model, x, log_px = probabilistic_pca()
    a = iwae_log_likelihood(model, x[:4], k=30, seed=0, chunk_size=7)
    b = iwae_log_likelihood(model, x[:4], k=30, seed=0, chunk_size=30)
    np.testing.assert_allclose(a, b, atol=2e-3)
    np.testing.assert_allclose(a, log_px[:4], atol=2e-3)


def test_iwae_is_at_least_the_elbo_on_an_image_vae_and_handles_k_1000(digits):
    _, test = digits
    model = mlp_vae(latent_dim=4, hidden=(64,), seed=0)
    x = test[:8]
    elbo = np.asarray(keras.ops.convert_to_numpy(model.elbo(x)))
    bound = iwae_log_likelihood(model, x, k=1000, seed=0)
    assert bound.shape == (8,) and np.all(np.isfinite(bound))
    assert bound.mean() > elbo.mean()


def test_iwae_rejects_bad_arguments():
    model, x, _ = probabilistic_pca()
    with pytest.raises(ValueError, match="k to be an integer >= 1"):
        iwae_log_likelihood(model, x, k=0)
    with pytest.raises(ValueError, match="Expected input of shape"):
        iwae_log_likelihood(model, x[:, :3], k=2)


@pytest.fixture
def images_28():
    return np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert bits_per_dim(784 * math.log(2) * 2, (28, 28, 1)) == pytest.approx(2.0)
    np.testing.assert_allclose(
        bits_per_dim(np.array([0.0, 10.0]), 10), [0, 1 / math.log(2)]
    )
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)


def test_psnr_and_ssim_agree_with_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from vaelib.metrics import psnr, ssim

    rng = np.random.default_rng(0)
    target = rng.random((2, 3, 24, 24, 1))
    prediction = np.clip(target + 0.15 * rng.normal(size=target.shape), 0, 1)
    ours_psnr, ours_ssim = psnr(target, prediction), ssim(target, prediction)
    assert ours_psnr.shape == ours_ssim.shape == (2, 3)
    for i in range(2):
        for t in range(3):
            a, b = target[i, t, ..., 0], prediction[i, t, ..., 0]
            assert ours_psnr[i, t] == pytest.approx(
                peak_signal_noise_ratio(a, b, data_range=1)
            )
            expected = structural_similarity(
                a,
                b,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
            )
            assert ours_ssim[i, t] == pytest.approx(expected, abs=1e-6)
    assert np.all(ssim(target, target) == pytest.approx(1.0))
    assert np.all(np.isinf(psnr(target, target)))
    with pytest.raises(ValueError, match="same shape"):
        psnr(target, prediction[:, :2])


@pytest.mark.parametrize("size, sigma", [(11, 1.5), (12, 0.1), (24, 0.5)])
def test_ssim_agrees_with_scikit_image_at_the_edges_of_its_window(size, sigma):
    from skimage.metrics import structural_similarity

    from vaelib.metrics import ssim

    rng = np.random.default_rng(1)
    target = rng.random((1, size, size, 1))
    prediction = np.clip(target + 0.2 * rng.normal(size=target.shape), 0, 1)
    expected = structural_similarity(
        target[0, ..., 0],
        prediction[0, ..., 0],
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert ssim(target, prediction, sigma=sigma)[0] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="Received: 10x10 images"):
        ssim(target[:, :10, :10], prediction[:, :10, :10])


def test_evaluate_prediction_sums_bce_over_each_frame_and_refuses_4d_input():
    from vaelib.metrics import evaluate_prediction

    target = np.zeros((2, 3, 16, 16, 1))
    target[..., 4:8, 4:8, :] = 1.0
    probabilities = np.full(target.shape, 0.5)
    report = evaluate_prediction(target, probabilities)
    assert report["bce"] == pytest.approx(256 * math.log(2))
    assert report["mse_per_frame"] == pytest.approx(256 * 0.25)
    with pytest.raises(ValueError, match=r"\(n, frames, height, width, channels\)"):
        evaluate_prediction(target[:, 0], probabilities[:, 0])


@pytest.mark.every_backend
def test_evaluate_video_reports_per_frame_metrics():
    from vaelib.data import MovingDigits
    from vaelib.metrics import evaluate_video
    from vaelib.models import framewise_vae

    clips = MovingDigits(frame_size=16, digit_size=8, num_frames=4, split="test").clips(
        5
    )
    model = framewise_vae(input_shape=(4, 16, 16, 1), latent_dim=2, filters=(4,))
    report = evaluate_video(model, clips, batch_size=2)
    for name in ("bce", "psnr", "ssim", "kl"):
        assert report[name].shape == (4,)
        assert report["mean"][name] == pytest.approx(float(report[name].mean()))
    # With its last layer zeroed the decoder says 0.5 for every pixel, whatever
    # the latent: BCE is 256 log 2 per 16x16 frame, PSNR that of a grey frame.
    pixel_logits = model.decoder.get_layer("pixel_logits")
    pixel_logits.set_weights([np.zeros_like(w) for w in pixel_logits.get_weights()])
    grey = evaluate_video(model, clips, batch_size=2)
    np.testing.assert_allclose(grey["bce"], 256 * math.log(2), rtol=1e-5)
    grey_psnr = 10 * np.log10(1 / np.mean((clips - 0.5) ** 2, axis=(2, 3, 4)))
    np.testing.assert_allclose(grey["psnr"], grey_psnr.mean(axis=0), rtol=1e-5)
    assert np.all(report["kl"] >= 0)
    from vaelib.losses import gaussian_kl

    per_clip = keras.ops.convert_to_numpy(gaussian_kl(*model.encode(clips)))
    assert report["kl"].sum() == pytest.approx(float(per_clip.mean()), rel=1e-5)


def test_evaluate_images_reports_the_closed_form_likelihood():
    from vaelib.metrics import evaluate_images

    model, x, log_px = probabilistic_pca()
    report = evaluate_images(model, x, iwae_k=20, batch_size=16)
    assert report["num_images"] == len(x)
    assert report["negative_elbo"] == pytest.approx(
        report["reconstruction"] + report["kl"]
    )
    assert report["iwae_nll_k20"] == pytest.approx(-log_px.mean(), abs=2e-3)
    assert report["bits_per_dim"] == pytest.approx(
        -log_px.mean() / (DATA_DIM * math.log(2)), abs=1e-3
    )


@pytest.mark.every_backend
def test_kl_of_a_mixed_precision_model_is_the_float32_kl_everywhere(images_28):
    # A log-variance of 12 overflows float16's exp (e**12 > 65,504).
    keras.config.set_dtype_policy("mixed_float16")
    model = mlp_vae(latent_dim=2, hidden=(8,), seed=0)
    head = model.encoder.get_layer("posterior")
    head.log_var_layer.bias.assign(np.full(2, 12.0, "float32"))
    metrics = evaluate_images(model, images_28, iwae_k=2, seed=0)
    z_mean, _ = model.encode(images_28)
    expected = np.mean(
        0.5
        * (
            np.expm1(12.0)
            - 12.0
            + np.square(keras.ops.convert_to_numpy(z_mean).astype("float64"))
        ).sum(axis=1)
    )
    assert np.isfinite(metrics["kl"])
    assert metrics["kl"] == pytest.approx(expected, rel=1e-3)
    elbo = keras.ops.convert_to_numpy(model.elbo(images_28))
    assert np.all(np.isfinite(elbo))


def _narrow_posterior_model(mean, log_var=-30.0, latent_dim=2):
    """q(z | x) = N(mean, exp(log_var)) for every x; a decoder that ignores z."""
    inputs = keras.Input((3,))
    z_mean = keras.layers.Dense(latent_dim, name="mean")(inputs)
    z_log_var = keras.layers.Dense(latent_dim, name="log_var")(inputs)
    latent = keras.Input((latent_dim,))
    decoder = keras.Model(latent, keras.layers.Dense(3, name="linear")(latent))
    model = VAE(keras.Model(inputs, [z_mean, z_log_var]), decoder, "gaussian")
    model.encoder.get_layer("mean").set_weights(
        [np.zeros((3, latent_dim)), np.full(latent_dim, mean)]
    )
    model.encoder.get_layer("log_var").set_weights(
        [np.zeros((3, latent_dim)), np.full(latent_dim, log_var)]
    )
    decoder.get_layer("linear").set_weights([np.zeros((latent_dim, 3)), np.zeros(3)])
    return model


def test_iwae_takes_log_q_from_the_noise_for_a_narrow_posterior():
    # With the same seed both models draw the same noise; z = mean + 3e-7 * noise
    # and log q(z | x) is the same function of the noise, so the bounds differ
    # only by log p(z) at the two means. Recomputing the noise as
    # (z - mean) / std in float32 rounds it (float32 spacing at 1.7 is 1.2e-7,
    # a third of the std) and each bound moves by up to a nat.
    x = np.zeros((500, 3), "float32")
    at_zero = iwae_log_likelihood(_narrow_posterior_model(0.0), x, k=1, seed=0)
    at_mean = iwae_log_likelihood(_narrow_posterior_model(1.7), x, k=1, seed=0)
    np.testing.assert_allclose(at_mean - at_zero, -(1.7**2), atol=1e-3)
