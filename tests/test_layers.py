import keras
import numpy as np
import pytest
from conftest import to_numpy

from vaelib.layers import MAX_LOG_VAR, MIN_LOG_VAR, GaussianHead, Sampling

pytestmark = pytest.mark.every_backend  # see tests/run.sh


def test_sampling_has_the_requested_mean_and_variance():
    n = 200_000
    mean = np.tile(np.array([[1.0, -2.0, 0.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[1.0, 4.0, 0.01]], "float32")), (n, 1))
    z = to_numpy(Sampling(seed=0)((mean, log_var)))
    variance = np.exp(log_var[0])
    assert np.all(np.abs(z.mean(axis=0) - mean[0]) < 5 * np.sqrt(variance / n))
    # The sample variance has standard error variance * sqrt(2 / n).
    assert np.all(np.abs(z.var(axis=0) - variance) < 5 * variance * np.sqrt(2 / n))


def test_sampling_is_reproducible_with_a_seed_and_fresh_on_each_call():
    mean, log_var = np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32")
    first, second = Sampling(seed=7), Sampling(seed=7)
    a, b = to_numpy(first((mean, log_var))), to_numpy(second((mean, log_var)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, to_numpy(first((mean, log_var))))
    assert not np.allclose(a, to_numpy(Sampling(seed=8)((mean, log_var))))


def test_sampling_passes_gradients_to_mean_and_log_variance():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape to inspect gradients")
    import tensorflow as tf

    mean = tf.Variable(np.zeros((2, 3), "float32"))
    log_var = tf.Variable(np.zeros((2, 3), "float32"))
    with tf.GradientTape() as tape:
        z = Sampling(seed=0)((mean, log_var))
        total = tf.reduce_sum(z)
    grad_mean, grad_log_var = tape.gradient(total, [mean, log_var])
    np.testing.assert_allclose(grad_mean.numpy(), 1.0)
    np.testing.assert_allclose(grad_log_var.numpy(), 0.5 * z.numpy(), rtol=1e-6)


def test_sampling_works_under_jax_jit_and_advances_its_seed():
    if keras.backend.backend() != "jax":
        pytest.skip("jax.jit only on the JAX backend")
    import jax

    layer = Sampling(seed=3)
    mean, log_var = np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32")
    layer((mean, log_var))
    state = [v.value for v in layer.non_trainable_variables]

    @jax.jit
    def step(state, mean, log_var):
        return layer.stateless_call([], state, (mean, log_var))

    z1, state = step(state, mean, log_var)
    z2, state = step(state, mean, log_var)
    assert np.all(np.isfinite(z1)) and not np.allclose(z1, z2)


def test_gaussian_head_dense_conv2d_conv3d_shapes():
    z_mean, z_log_var = GaussianHead(4)(np.ones((2, 10), "float32"))
    assert tuple(z_mean.shape) == tuple(z_log_var.shape) == (2, 4)
    z_mean, _ = GaussianHead(5, kernel_size=3)(np.ones((2, 8, 8, 3), "float32"))
    assert tuple(z_mean.shape) == (2, 8, 8, 5)
    z_mean, _ = GaussianHead(6, kernel_size=3)(np.ones((2, 4, 8, 8, 3), "float32"))
    assert tuple(z_mean.shape) == (2, 4, 8, 8, 6)


def test_gaussian_head_conv3d_never_mixes_frames():
    head = GaussianHead(2, kernel_size=3)
    clip = np.random.default_rng(0).random((1, 3, 6, 6, 1)).astype("float32")
    z_mean, _ = head(clip)
    changed = clip.copy()
    changed[:, 2] = 0.0
    z_mean_changed, _ = head(changed)
    np.testing.assert_allclose(to_numpy(z_mean)[:, :2], to_numpy(z_mean_changed)[:, :2])


def test_gaussian_head_clamps_the_log_variance_but_not_the_mean():
    head = GaussianHead(3)
    features = np.full((2, 5), 1e6, "float32")
    head.build(features.shape)
    head.log_var_layer.kernel.assign(np.ones((5, 3), "float32"))
    head.mean_layer.kernel.assign(-np.ones((5, 3), "float32"))
    z_mean, z_log_var = head(features)
    np.testing.assert_allclose(to_numpy(z_log_var), MAX_LOG_VAR)
    assert to_numpy(z_mean).max() < -1e6
    _, z_log_var = head(-features)
    np.testing.assert_allclose(to_numpy(z_log_var), MIN_LOG_VAR)


def test_gaussian_head_starts_at_unit_variance():
    _, z_log_var = GaussianHead(3)(np.random.default_rng(0).normal(size=(4, 9)))
    np.testing.assert_array_equal(to_numpy(z_log_var), 0.0)


def test_gaussian_head_config_round_trip_and_bad_arguments():
    head = GaussianHead(7, kernel_size=3, min_log_var=-5.0, max_log_var=5.0)
    clone = GaussianHead.from_config(head.get_config())
    assert (
        clone.latent_dim,
        clone.kernel_size,
        clone.min_log_var,
        clone.max_log_var,
    ) == (
        7,
        3,
        -5.0,
        5.0,
    )
    with pytest.raises(ValueError, match="latent_dim"):
        GaussianHead(0)
    with pytest.raises(ValueError, match="min_log_var"):
        GaussianHead(2, min_log_var=1.0, max_log_var=0.0)
    with pytest.raises(ValueError, match="rank 3"):
        GaussianHead(2, kernel_size=3)(np.ones((2, 4, 4), "float32"))


def test_fused_convlstm_equals_keras_convlstm_with_the_same_weights():
    from vaelib.layers import FusedConvLSTM2D

    x = np.random.default_rng(0).normal(size=(2, 5, 6, 6, 3)).astype("float32")
    stock = keras.layers.ConvLSTM2D(8, 3, padding="same", return_sequences=True)
    expected = to_numpy(stock(x))
    for unroll in (None, 1, 2):
        fused = FusedConvLSTM2D(8, 3, unroll=unroll)
        fused.build(x.shape)
        assert [w.shape for w in fused.get_weights()] == [
            w.shape for w in stock.get_weights()
        ]
        fused.set_weights(stock.get_weights())
        np.testing.assert_allclose(to_numpy(fused(x)), expected, atol=1e-5)


def test_fused_convlstm_starts_like_keras_and_round_trips_its_config():
    from vaelib.layers import FusedConvLSTM2D

    layer = FusedConvLSTM2D(4, 3, unroll=2)
    layer.build((None, 3, 5, 5, 2))
    bias = to_numpy(layer.bias)
    np.testing.assert_array_equal(bias, [0] * 4 + [1] * 4 + [0] * 8)
    clone = FusedConvLSTM2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.unroll) == (4, 3, 2)
    with pytest.raises(ValueError, match="known height, width and channels"):
        FusedConvLSTM2D(4).build((None, 3, None, 5, 2))


def test_fused_convlstm_is_causal_in_time():
    from vaelib.layers import FusedConvLSTM2D

    layer = FusedConvLSTM2D(4, 3)
    x = np.random.default_rng(1).normal(size=(1, 6, 5, 5, 2)).astype("float32")
    changed = x.copy()
    changed[:, 4:] = 0
    before, after = to_numpy(layer(x)), to_numpy(layer(changed))
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert not np.allclose(before[:, 4:], after[:, 4:])


def test_per_frame_equals_time_distributed_and_saves(tmp_path):
    from vaelib.layers import PerFrame

    x = np.random.default_rng(0).random((3, 4, 8, 8, 2)).astype("float32")
    conv = keras.layers.Conv2D(5, 3, strides=2, padding="same")
    expected = to_numpy(keras.layers.TimeDistributed(conv)(x))
    per_frame = PerFrame(conv)
    np.testing.assert_allclose(to_numpy(per_frame(x)), expected, atol=1e-6)
    assert per_frame.compute_output_shape((None, 4, 8, 8, 2)) == (None, 4, 4, 4, 5)

    inputs = keras.Input((4, 8, 8, 2))
    model = keras.Model(inputs, PerFrame(keras.layers.Dense(3))(inputs))
    model.save(tmp_path / "per_frame.keras")
    loaded = keras.saving.load_model(tmp_path / "per_frame.keras", safe_mode=True)
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    with pytest.raises(ValueError, match="known number of frames"):
        PerFrame(keras.layers.Dense(2)).build((None, None, 3))
