import keras
import numpy as np
import pytest
from conftest import to_numpy

from vaelib.data import MovingDigits
from vaelib.losses import bernoulli_nll, gaussian_kl
from vaelib.models import LearnedPriorVAE, learned_prior_vae

SHAPE = (5, 16, 16, 1)
SMALL = dict(latent_dim=3, filters=(4, 8), lstm_filters=4, decoder_convs=1)


def build(**overrides):
    return LearnedPriorVAE(input_shape=SHAPE, seed=0, **{**SMALL, **overrides})


@pytest.fixture(scope="module")
def model():
    # One untrained model for the tests that only read it (building and
    # tracing are most of a test's time, on JAX above all).
    return build()


@pytest.fixture(scope="module")
def clips():
    return MovingDigits(
        frame_size=16, num_frames=5, digit_size=7, speed=1.5, split="train", seed=0
    ).clips(8)


def test_shapes_and_config(model, clips):
    assert model.latent_shape == (5, 3) and model.data_shape == SHAPE
    logits, *gaussians = model(clips[:2])
    assert tuple(logits.shape) == (2,) + SHAPE
    assert all(tuple(t.shape) == (2, 5, 3) for t in gaussians)
    config = model.get_config()
    assert config["filters"] == [4, 8] and config["lstm_filters"] == 4
    assert type(learned_prior_vae(SHAPE, seed=0, **SMALL)) is LearnedPriorVAE


@pytest.mark.every_backend
def test_the_loss_is_the_sequential_elbo(model, clips):
    y_pred = model(clips, training=False)
    logits, z_mean, z_log_var, prior_mean, prior_log_var = y_pred
    expected = np.mean(
        to_numpy(bernoulli_nll(clips, logits))
        + to_numpy(gaussian_kl(z_mean, z_log_var, prior_mean, prior_log_var))
    )
    loss = to_numpy(model.compute_loss(x=clips, y_pred=y_pred))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # the KL of each frame is to the learned prior, not to N(0, I)
    assert not np.allclose(
        to_numpy(gaussian_kl(z_mean, z_log_var)),
        to_numpy(gaussian_kl(z_mean, z_log_var, prior_mean, prior_log_var)),
    )


def test_the_prior_reads_the_frames_the_decoder_drew_not_the_real_ones(model, clips):
    # In the loss as when generating: p(z_t | z_<t), through decoded frames.
    logits, _, _, prior_mean, prior_log_var = model(clips[:3], training=False)
    drawn = to_numpy(keras.ops.sigmoid(logits))
    expected_mean, expected_log_var = model.prior(drawn)
    np.testing.assert_allclose(to_numpy(prior_mean), to_numpy(expected_mean), atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(prior_log_var), to_numpy(expected_log_var), atol=1e-5
    )
    real_mean, real_log_var = model.prior(clips[:3])
    assert not np.allclose(to_numpy(prior_mean), to_numpy(real_mean))
    # kl_per_frame can give the prior other frames to read
    z_mean, z_log_var = model.encode(clips[:3])
    expected = to_numpy(
        gaussian_kl(
            *(
                keras.ops.reshape(t, (-1, 3))
                for t in (z_mean, z_log_var, real_mean, real_log_var)
            )
        )
    ).reshape(3, -1)
    np.testing.assert_allclose(
        model.kl_per_frame(clips[:3], prior_reads=clips[:3]), expected, rtol=1e-5
    )


@pytest.mark.every_backend
def test_the_prior_at_step_t_does_not_see_frame_t(model, clips):
    x = clips[:2]
    t = 2
    prior = [to_numpy(v) for v in model.prior(x)]
    changed_now = x.copy()
    changed_now[:, t] = 1.0 - changed_now[:, t]
    after_now = [to_numpy(v) for v in model.prior(changed_now)]
    for before, after in zip(prior, after_now, strict=True):
        np.testing.assert_array_equal(before[:, : t + 1], after[:, : t + 1])
    # (the log-variance head starts at zero: only the mean can move yet)
    assert not np.allclose(prior[0][:, t + 1], after_now[0][:, t + 1])
    changed_before = x.copy()
    changed_before[:, t - 1] = 1.0 - changed_before[:, t - 1]
    after_before = to_numpy(model.prior(changed_before)[0])
    np.testing.assert_array_equal(prior[0][:, :t], after_before[:, :t])
    assert not np.allclose(prior[0][:, t], after_before[:, t])


def test_the_posterior_and_decoder_do_not_see_the_future(model, clips):
    x = clips[:2]
    z = np.random.default_rng(0).normal(size=(2,) + model.latent_shape)
    changed = x.copy()
    changed[:, 3] = 1.0 - changed[:, 3]
    posterior = to_numpy(model.encoder(x)[0])
    np.testing.assert_array_equal(
        posterior[:, :3], to_numpy(model.encoder(changed)[0])[:, :3]
    )
    decoded = to_numpy(model.decode(z))
    changed_z = z.copy()
    changed_z[:, 3] += 1.0
    # z_3 is an input of frames 3, 4, ... (through the decoder's memory)
    np.testing.assert_array_equal(
        decoded[:, :3], to_numpy(model.decode(changed_z))[:, :3]
    )
    assert not np.allclose(decoded[:, 3:], to_numpy(model.decode(changed_z))[:, 3:])


@pytest.mark.every_backend
def test_generation_one_frame_at_a_time_equals_the_teacher_forced_pass(model, clips):
    x = clips[:3]
    frames, prior_mean, prior_log_var = model._rollout(x, 0, use_means=True)
    z_mean, _ = model.encode(x)
    np.testing.assert_allclose(frames, to_numpy(model.decode(z_mean)), atol=1e-5)
    # the prior read the decoded frames, one by one
    expected_mean, expected_log_var = model.prior(frames)
    np.testing.assert_allclose(prior_mean, to_numpy(expected_mean), atol=1e-5)
    np.testing.assert_allclose(prior_log_var, to_numpy(expected_log_var), atol=1e-5)


def test_sample_and_predict_future_shapes_range_and_seeds(model, clips):
    samples = model.sample(3, seed=0)
    assert samples.shape == (3,) + SHAPE and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, model.sample(3, seed=0))
    assert model.sample(2, seed=0, num_frames=7).shape == (2, 7) + SHAPE[1:]
    future = model.predict_future(clips[:2, :3], 4, seed=1)
    assert future.shape == (2, 4) + SHAPE[1:]
    assert future.min() >= 0 and future.max() <= 1
    np.testing.assert_array_equal(
        future, model.predict_future(clips[:2, :3], 4, seed=1)
    )
    assert not np.allclose(future, model.predict_future(clips[:2, :3], 4, seed=2))


def test_bad_input_is_refused_with_the_expected_shape(model, clips):
    with pytest.raises(ValueError, match="context_frames"):
        model.predict_future(clips[:, :, :8], 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.predict_future(clips[:, :2] * 3, 2)
    with pytest.raises(ValueError, match="n"):
        model.sample(0)
    with pytest.raises(ValueError, match="divisible"):
        LearnedPriorVAE(input_shape=(5, 18, 18, 1), filters=(4, 8))


@pytest.mark.every_backend
def test_fit_then_save_and_load_give_identical_prior_outputs(clips, tmp_path):
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(clips, epochs=3, batch_size=4, verbose=0).history
    assert set(history) >= {"loss", "reconstruction", "kl"}
    assert history["loss"][-1] < history["loss"][0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is LearnedPriorVAE and loaded.get_config() == model.get_config()
    for before, after in zip(model.prior(clips), loaded.prior(clips), strict=True):
        np.testing.assert_array_equal(to_numpy(before), to_numpy(after))
    np.testing.assert_array_equal(model.sample(2, seed=3), loaded.sample(2, seed=3))


# The mixture for z_0 (`fit_first_frame_prior`): ex-post density estimation.


def _set_mixture(model, log_weights, means, scale_tril):
    model.first_frame_log_weights.assign(np.asarray(log_weights, "float32"))
    model.first_frame_means.assign(np.asarray(means, "float32"))
    model.first_frame_scale_tril.assign(np.asarray(scale_tril, "float32"))
    model.first_frame_fitted.assign(1.0)


def test_first_frame_draws_have_the_mixtures_mean_and_covariance():
    model = build(first_frame_components=2)
    weights = np.array([0.3, 0.7])
    means = np.array([[2.0, 0.0, -1.0], [-1.0, 1.0, 0.5]])
    scale_tril = np.array(
        [
            [[1.0, 0, 0], [0.5, 0.8, 0], [0, 0, 0.3]],
            [[0.4, 0, 0], [0, 1.2, 0], [0.2, -0.3, 0.6]],
        ]
    )
    _set_mixture(model, np.log(weights), means, scale_tril)
    draws = model.first_frame_latents(20000, seed=0)
    # The moments of a mixture, in closed form
    mean = weights @ means
    second = sum(
        w * (s @ s.T + np.outer(m, m))
        for w, m, s in zip(weights, means, scale_tril, strict=True)
    )
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(
        np.cov(draws.T), second - np.outer(mean, mean), atol=0.12
    )


def test_sample_draws_z0_from_the_mixture_once_fitted(clips):
    model = build(first_frame_components=1)
    assert not model.has_first_frame_mixture
    with pytest.raises(ValueError, match="fit_first_frame_prior"):
        model.sample(2, first_frame="mixture")
    # One component of zero width: every clip's z_0 is this vector
    z0 = np.array([1.5, -2.0, 0.7], "float32")
    _set_mixture(model, [0.0], [z0], np.zeros((1, 3, 3)))
    assert model.has_first_frame_mixture
    samples = model.sample(3, seed=0)
    np.testing.assert_allclose(samples[0, 0], samples[1, 0], atol=1e-6)
    # the decoder is causal: frame 0 is the decoding of z_0 alone
    z = np.zeros((1,) + model.latent_shape, "float32")
    z[0, 0] = z0
    np.testing.assert_allclose(
        samples[0, 0], to_numpy(model.decode(z))[0, 0], atol=1e-5
    )
    from_prior = model.sample(3, seed=0, first_frame="prior")
    assert not np.allclose(from_prior[0, 0], from_prior[1, 0], atol=1e-3)
    with pytest.raises(ValueError, match="first_frame="):
        model.sample(2, first_frame="posterior")


def test_fit_first_frame_prior_fits_posterior_draws_and_survives_saving(
    clips, tmp_path
):
    with pytest.raises(ValueError, match="first_frame_components > 0"):
        build().fit_first_frame_prior(clips)
    with pytest.raises(ValueError, match="first_frame_components"):
        build(first_frame_components=-1)
    model = build(first_frame_components=2)
    with pytest.raises(ValueError, match="at least 4 clips"):
        model.fit_first_frame_prior(clips[:3])
    mixture = model.fit_first_frame_prior(clips, seed=0)
    np.testing.assert_allclose(
        to_numpy(model.first_frame_means), mixture.means_, rtol=1e-5
    )
    # Its components sit where the posterior's draws of z_0 are
    z_mean = to_numpy(model.encode(clips)[0])[:, 0]
    assert np.abs(mixture.means_.mean(axis=0) - z_mean.mean(axis=0)).max() < 0.5
    path = tmp_path / "mixture.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (
        loaded.has_first_frame_mixture
        and loaded.get_config()["first_frame_components"] == 2
    )
    np.testing.assert_allclose(
        loaded.sample(2, seed=1), model.sample(2, seed=1), atol=1e-6
    )


def test_iwae_uses_the_learned_prior_and_agrees_with_the_elbo_at_k_1():
    """L_1 of `iwae_log_likelihood` is the ELBO in expectation (issue 25, 4).

    With the N(0, I) prior in place of the model's, L_1 fell hundreds of
    nats below the model's own ELBO. Monte-Carlo means of both, with their
    standard errors, must agree; L_k for larger k sits above the ELBO.
    """
    from vaelib.metrics import iwae_log_likelihood

    model = LearnedPriorVAE(
        input_shape=(4, 8, 8, 1), latent_dim=3, filters=(4,), lstm_filters=4, seed=0
    )
    # A prior far from N(0, I): the two priors' bounds then differ a lot.
    model.prior_head.mean_layer.bias.assign(np.full(3, 2.0, "float32"))
    x = (np.random.default_rng(0).random((3, 4, 8, 8, 1)) > 0.7).astype("float32")
    draws = 200  # each clip repeated: one call, a fresh draw per copy
    repeated = np.repeat(x, draws, axis=0)
    elbo = np.asarray(model.elbo(repeated)).reshape(3, draws).T
    bound_1 = iwae_log_likelihood(model, repeated, k=1, seed=0).reshape(3, draws).T
    error = np.sqrt(elbo.var(0) / draws + bound_1.var(0) / draws)
    np.testing.assert_array_less(np.abs(elbo.mean(0) - bound_1.mean(0)), 5 * error)
    bound_50 = iwae_log_likelihood(model, x, k=50, seed=0)
    assert np.all(bound_50 > elbo.mean(0) - 5 * error)
