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

from vaelib.metrics import bits_per_dim, iwae_log_likelihood
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
    with pytest.raises(ValueError, match="k >= 1"):
        iwae_log_likelihood(model, x, k=0)
    with pytest.raises(ValueError, match="Expected input of shape"):
        iwae_log_likelihood(model, x[:, :3], k=2)


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
    # An untrained decoder predicts about 0.5 everywhere: BCE near 256 log 2 per frame.
    assert 100 < report["mean"]["bce"] < 400
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
