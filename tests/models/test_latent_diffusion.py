"""Flow matching (issue 30, in progress): the objective by hand, the sampler
against the exact velocity of a Gaussian latent distribution."""

import keras
import numpy as np
import pytest

from vaelib.models.latent_diffusion import (
    TimeEmbedding,
    euler_sample,
    flow_matching_pair,
    velocity_network,
)

pytestmark = pytest.mark.every_backend  # see tests/run.sh


def test_the_pair_is_the_straight_line_and_its_velocity():
    z0 = np.array([[1.0, -2.0], [0.5, 0.0]], "float32")
    noise = np.array([[0.0, 1.0], [2.0, -1.0]], "float32")
    t = np.array([0.25, 1.0], "float32")
    z_t, velocity = (
        keras.ops.convert_to_numpy(v) for v in flow_matching_pair(z0, noise, t)
    )
    np.testing.assert_allclose(z_t, [[0.75, -1.25], [2.0, -1.0]])
    np.testing.assert_allclose(velocity, [[-1.0, 3.0], [1.5, -1.0]])


def exact_gaussian_velocity(mean, std):
    """E[noise - z0 | z_t = x] for z0 ~ N(mean, std^2), noise ~ N(0, 1), per value.

    z_t is Gaussian with mean (1 - t) mean and variance (1 - t)^2 std^2 + t^2;
    Cov(noise, z_t) = t and Cov(z0, z_t) = (1 - t) std^2.
    """

    def velocity(z, t):
        z = keras.ops.convert_to_numpy(z).astype("float64")
        t = keras.ops.convert_to_numpy(t).astype("float64").reshape(-1, 1)
        variance = (1 - t) ** 2 * std**2 + t**2
        centred = z - (1 - t) * mean
        return ((t - (1 - t) * std**2) * centred / variance - mean).astype("float32")

    return velocity


def test_with_the_exact_velocity_samples_have_the_data_distribution():
    mean, std = 1.5, 0.4
    noise = np.random.default_rng(0).normal(size=(20000, 1)).astype("float32")
    samples = euler_sample(exact_gaussian_velocity(mean, std), noise, steps=200)
    # Monte-Carlo: standard error of the mean std / sqrt(n) = 0.003
    assert abs(samples.mean() - mean) < 0.015
    assert abs(samples.std() - std) < 0.015


def test_the_time_embedding_and_the_network_shapes():
    features = keras.ops.convert_to_numpy(TimeEmbedding(8)(np.array([0.0, 0.5])))
    assert features.shape == (2, 8)
    np.testing.assert_allclose(features[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-6)
    network = velocity_network((5, 8, 8, 4), width=8, blocks=1)
    out = network([np.zeros((3, 5, 8, 8, 4), "float32"), np.ones((3,), "float32")])
    assert tuple(out.shape) == (3, 5, 8, 8, 4)


# LatentFlow: the model over a frozen causal 3-D VAE


def tiny_vae(frames=5):
    from vaelib.models import CausalVideoVAE

    return CausalVideoVAE(
        input_shape=(frames, 8, 8, 1),
        latent_dim=2,
        filters=(4,),
        temporal_downsamples=1,
        seed=0,
    )


def clips(n, frames=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, frames, 8, 8, 1)) > 0.7).astype("float32")


def test_the_loss_is_the_masked_squared_velocity_error_by_hand():
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=4, blocks=1, seed=3)
    x = clips(4)
    velocity, target, mask = (
        keras.ops.convert_to_numpy(v) for v in flow(x, training=False)
    )
    mask = np.broadcast_to(mask, velocity.shape)
    by_hand = np.mean(
        [
            ((velocity[i] - target[i]) ** 2 * (1 - mask[i])).sum() / (1 - mask[i]).sum()
            for i in range(4)
        ]
    )
    loss = flow.compute_loss(x, None, (velocity, target, mask[..., :1]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), by_hand, rtol=1e-5)
    # the target is noise - z0: z0 is the scaled posterior mean
    assert velocity.shape == (4, *flow.latent_shape)


def test_given_frames_are_masked_and_never_counted():
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=4, blocks=1, context_rate=1.0, seed=1)
    _, _, mask = (keras.ops.convert_to_numpy(v) for v in flow(clips(64)))
    given = mask[:, :, 0, 0, 0].sum(axis=1)
    # with context_rate 1 every clip gets 1 to frames - 1 latent frames given
    assert given.min() >= 1 and given.max() <= flow.latent_shape[0] - 1
    # and always the first ones: the mask falls, never rises, along time
    assert np.all(np.diff(mask[:, :, 0, 0, 0], axis=1) <= 0)


def test_adapt_gives_the_latents_unit_standard_deviation():
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=4, blocks=1)
    scale = flow.adapt(clips(32))
    assert scale > 0
    np.testing.assert_allclose(np.std(flow.latents(clips(32))), 1.0, rtol=1e-4)


def test_sample_shapes_range_and_seeds():
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=4, blocks=1)
    a = flow.sample(3, seed=5, steps=3)
    assert a.shape == (3, 5, 8, 8, 1) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, flow.sample(3, seed=5, steps=3))
    assert not np.array_equal(a, flow.sample(3, seed=6, steps=3))


def test_predict_future_keeps_the_context_latents_and_returns_the_future():
    from vaelib.models.latent_diffusion import LatentFlow

    vae = tiny_vae(frames=9)
    flow = LatentFlow(vae, width=4, blocks=1)
    context = clips(2, frames=4)
    future = flow.predict_future(context, num_future=5, seed=0, steps=2)
    assert future.shape == (2, 5, 8, 8, 1)
    # frames up to 3 (1 + 2 * 1) are encoded; the decoded clip's first frames
    # come from the context's latents alone, whatever the seed (causal decoder)
    full_a = flow._generate(
        flow.vae.encode_chunked(context[:, :3], chunk_frames=2)[0]
        * float(flow.latent_scale.numpy()),
        steps=2,
        seed=0,
    )
    full_b = flow._generate(
        flow.vae.encode_chunked(context[:, :3], chunk_frames=2)[0]
        * float(flow.latent_scale.numpy()),
        steps=2,
        seed=1,
    )
    np.testing.assert_allclose(full_a[:, :3], full_b[:, :3], atol=1e-6)
    np.testing.assert_array_equal(future, full_a[:, 4:9])


def test_a_longer_clip_length_reuses_the_vaes_weights():
    from vaelib.models.latent_diffusion import LatentFlow

    vae = tiny_vae(frames=5)
    flow = LatentFlow(vae, num_frames=9, width=4, blocks=1)
    assert flow.latent_shape[0] == 5 and flow.clip_shape == (9, 8, 8, 1)
    x = clips(2, frames=9)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(flow.vae.encode(x)[0]),
        vae.encode_chunked(x, chunk_frames=2)[0],
        atol=1e-5,
    )


def test_fit_lowers_the_loss_then_save_and_load_give_the_same_samples(tmp_path):
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=8, blocks=1, seed=0)
    x = clips(64)
    flow.adapt(x)
    vae_weights = [w.copy() for w in flow.vae.get_weights()]
    flow.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = flow.fit(x, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]
    for before, after in zip(vae_weights, flow.vae.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # the VAE stays frozen
    path = tmp_path / "flow.keras"
    flow.save(path)
    loaded = keras.saving.load_model(path)
    assert float(loaded.latent_scale.numpy()) == float(flow.latent_scale.numpy())
    np.testing.assert_allclose(
        loaded.sample(2, seed=4, steps=3), flow.sample(2, seed=4, steps=3), atol=1e-6
    )


def test_bad_arguments_name_themselves():
    from vaelib.models.latent_diffusion import LatentFlow

    with pytest.raises(ValueError, match="vae"):
        LatentFlow(object())
    with pytest.raises(ValueError, match="num_frames"):
        LatentFlow(tiny_vae(), num_frames=6)
    flow = LatentFlow(tiny_vae(), width=4, blocks=1)
    with pytest.raises(ValueError, match="num_future"):
        flow.predict_future(clips(1, frames=3), num_future=3)
    with pytest.raises(ValueError, match="context"):
        flow.predict_future(clips(1)[..., 0], num_future=1)
    with pytest.raises(ValueError, match="steps"):
        flow.sample(1, steps=0)


def test_training_on_latents_computed_once_is_training_on_the_clips():
    from vaelib.models.latent_diffusion import LatentFlow

    x = clips(8)
    vae, losses, weights = tiny_vae(), [], None
    for inputs in ("clips", "latents"):
        flow = LatentFlow(vae, width=4, blocks=1, seed=7)
        weights = weights or flow.velocity.get_weights()
        flow.velocity.set_weights(weights)
        flow.adapt(x)
        data = x if inputs == "clips" else flow.latents(x)
        losses.append(flow.compute_loss(None, None, flow(data)))
    # the same seed draws the same t, noise and context: the same loss
    np.testing.assert_allclose(
        *(keras.ops.convert_to_numpy(v) for v in losses), rtol=1e-5
    )


def test_the_network_sees_the_given_frames_clean_and_the_rest_on_the_line():
    """With context_rate 1: the given latent frames enter as latents(x) with
    the mask set; every other number is z0 + t (noise - z0) = z0 + t target
    for one t per clip in [0, 1], the target being noise - z0."""
    from vaelib.models.latent_diffusion import LatentFlow

    flow = LatentFlow(tiny_vae(), width=4, blocks=1, context_rate=1.0, seed=2)
    x = clips(16)
    flow.adapt(x)
    seen = {}
    original = flow._velocity

    def spy(z, t, mask, training=False):
        seen.update(z=keras.ops.convert_to_numpy(z), t=keras.ops.convert_to_numpy(t))
        return original(z, t, mask, training=training)

    flow._velocity = spy
    _, target, mask = (keras.ops.convert_to_numpy(v) for v in flow(x))
    z0 = flow.latents(x)
    given = np.broadcast_to(mask, z0.shape).astype(bool)
    np.testing.assert_allclose(seen["z"][given], z0[given], atol=1e-6)
    for i in range(len(x)):
        free = ~given[i]
        np.testing.assert_allclose(
            seen["z"][i][free], z0[i][free] + seen["t"][i] * target[i][free], atol=1e-5
        )
    assert np.all((seen["t"] >= 0) & (seen["t"] <= 1))
