import keras
import numpy as np
import pytest
from conftest import to_numpy

from vaelib.losses import bernoulli_nll, gaussian_kl
from vaelib.models import VAE, conv_vae, mlp_vae


@pytest.fixture
def images():
    return np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")


def test_call_returns_decoder_output_and_posterior(images):
    model = mlp_vae(latent_dim=3, hidden=(32,))
    decoder_output, z_mean, z_log_var = model(images)
    assert tuple(decoder_output.shape) == (16, 28, 28, 1)
    assert tuple(z_mean.shape) == tuple(z_log_var.shape) == (16, 3)
    assert model.data_shape == (28, 28, 1) and model.latent_shape == (3,)


def test_a_new_model_counts_its_parameters_before_its_first_call():
    model = mlp_vae(latent_dim=2, hidden=(16,), seed=0)
    # the encoder's and decoder's weights, and beta (the one non-trainable weight)
    expected = model.encoder.count_params() + model.decoder.count_params() + 1
    assert model.count_params() == expected
    assert len(model.get_weights()) == (
        len(model.encoder.weights) + len(model.decoder.weights) + 1
    )


@pytest.mark.every_backend
def test_compute_loss_is_the_batch_mean_of_summed_terms(images):
    model = mlp_vae(latent_dim=3, hidden=(32,), beta=0.25)
    y_pred = model(images)
    loss = to_numpy(model.compute_loss(images, None, y_pred))
    expected = to_numpy(bernoulli_nll(images, y_pred[0])) + 0.25 * to_numpy(
        gaussian_kl(y_pred[1], y_pred[2])
    )
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    assert (
        loss.shape == () and loss > 28 * 28 * 0.5
    )  # summed, not averaged, over pixels


@pytest.mark.every_backend
def test_fit_reports_loss_reconstruction_and_kl(images):
    model = mlp_vae(latent_dim=2, hidden=(32,))
    model.compile(optimizer="adam")
    history = model.fit(images, epochs=1, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "reconstruction", "kl"}
    np.testing.assert_allclose(
        history["loss"][0], history["reconstruction"][0] + history["kl"][0], rtol=1e-4
    )


def test_beta_is_a_variable_a_callback_can_change_during_fit(images):
    class SwitchOffKL(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.beta.assign(0.0 if epoch == 0 else 2.0)

    model = mlp_vae(latent_dim=2, hidden=(32,))
    model.compile(optimizer="adam")
    history = model.fit(
        images, epochs=2, batch_size=8, verbose=0, callbacks=[SwitchOffKL()]
    ).history
    assert history["kl"][0] > 0
    np.testing.assert_allclose(
        history["loss"][0], history["reconstruction"][0], rtol=1e-5
    )
    np.testing.assert_allclose(
        history["loss"][1],
        history["reconstruction"][1] + 2.0 * history["kl"][1],
        rtol=1e-4,
    )
    assert all(v is not model.beta for v in model.trainable_variables)


@pytest.mark.slow
@pytest.mark.parametrize(
    "build, kwargs",
    [
        (mlp_vae, {"hidden": (256,)}),
        (conv_vae, {"filters": (16, 32), "dense_units": 64}),
    ],
)
def test_training_lowers_the_held_out_negative_elbo(digits, build, kwargs):
    train, test = digits
    model = build(latent_dim=8, seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = -float(np.mean(model.elbo(test)))
    model.fit(train, epochs=4, batch_size=64, verbose=0)
    after = -float(np.mean(model.elbo(test)))
    # An untrained decoder scores about 784 * log 2 = 543 nats; four epochs
    # on the 1,437 training digits reach about 170-200.
    assert before > 500
    assert after < 0.5 * before, (before, after)


@pytest.mark.every_backend
def test_saved_model_loads_back_with_safe_mode_and_gives_identical_outputs(
    tmp_path, images
):
    model = conv_vae(latent_dim=4, filters=(8, 16), dense_units=32, beta=0.5, seed=3)
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, VAE)
    np.testing.assert_array_equal(
        to_numpy(loaded.encode(images)[0]), to_numpy(model.encode(images)[0])
    )
    z = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded.decode(z)), to_numpy(model.decode(z)))
    assert float(to_numpy(loaded.beta)) == 0.5
    assert loaded.likelihood == "bernoulli" and loaded.seed == 3


def test_config_round_trip_keeps_every_argument():
    model = mlp_vae(latent_dim=2, hidden=(16,), likelihood="gaussian", beta=3.0, seed=5)
    clone = type(model).from_config(model.get_config())
    assert (clone.likelihood, clone.decoder_log_var, clone.seed) == ("gaussian", 0.0, 5)
    assert float(to_numpy(clone.beta)) == 3.0
    assert clone.latent_shape == (2,) and clone.hidden == (16,)
    plain = VAE(model.encoder, model.decoder, beta=2.0)
    assert float(to_numpy(VAE.from_config(plain.get_config()).beta)) == 2.0


def test_sample_reconstruct_and_decode_are_probabilities(images):
    model = mlp_vae(latent_dim=2, hidden=(16,))
    samples = to_numpy(model.sample(6, seed=0))
    assert samples.shape == (6, 28, 28, 1)
    assert samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, to_numpy(model.sample(6, seed=0)))
    reconstruction = to_numpy(model.reconstruct(images))
    np.testing.assert_array_equal(reconstruction, to_numpy(model.reconstruct(images)))
    assert reconstruction.shape == images.shape


@pytest.mark.every_backend
def test_elbo_is_per_example_and_below_zero_for_bernoulli(images):
    elbo = to_numpy(mlp_vae(latent_dim=2, hidden=(16,)).elbo(images))
    assert elbo.shape == (16,) and np.all(elbo < 0)


@pytest.mark.parametrize("method", ["encode", "elbo", "reconstruct", "fit"])
def test_bad_input_raises_a_clear_value_error(method, images):
    model = mlp_vae(latent_dim=2, hidden=(16,))
    model.compile(optimizer="adam")
    call = getattr(model, method)
    with pytest.raises(
        ValueError, match=r"Expected input of shape \(batch_size, 28, 28, 1\)"
    ):
        call(images.reshape(16, 784))
    with pytest.raises(
        ValueError, match=r"values in \[0, 1\]\. Received: min=0\.0275\d*, max=255"
    ):
        call(images * 255)
    with pytest.raises(ValueError, match="dtype=uint8"):
        call((images * 255).astype("uint8"))
    with pytest.raises(ValueError, match="NaN"):
        call(np.where(images > 0.5, np.nan, images))


def test_gaussian_likelihood_accepts_values_outside_the_unit_interval(images):
    model = mlp_vae(latent_dim=2, hidden=(16,), likelihood="gaussian")
    assert np.all(np.isfinite(to_numpy(model.elbo(images * 10 - 5))))


def test_bad_constructor_arguments():
    model = mlp_vae(latent_dim=2, hidden=(16,))
    with pytest.raises(ValueError, match="likelihood"):
        VAE(model.encoder, model.decoder, likelihood="poisson")
    with pytest.raises(ValueError, match="beta"):
        VAE(model.encoder, model.decoder, beta=-1.0)
    with pytest.raises(ValueError, match="n to be an integer >= 1"):
        model.sample(0)


@pytest.mark.every_backend
def test_mixed_precision_keeps_the_loss_in_float32(images):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = mlp_vae(latent_dim=2, hidden=(16,))
    decoder_output, _, _ = model(images)
    assert keras.backend.standardize_dtype(decoder_output.dtype) == "bfloat16"
    loss = model.compute_loss(images, None, model(images))
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    model.compile(optimizer="adam")
    logs = model.fit(images, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(logs["loss"][0])


def test_fit_refuses_unscaled_pixels_from_a_tf_data_pipeline():
    """0-255 pixels through tf.data were trained on silently (issue 25, 6)."""
    tf = pytest.importorskip("tensorflow")
    model = mlp_vae(input_shape=(4, 4, 1), latent_dim=2, hidden=(4,))
    model.compile(optimizer="adam")
    pixels = np.full((8, 4, 4, 1), 200.0, "float32")
    dataset = tf.data.Dataset.from_tensor_slices(pixels).batch(4)
    with pytest.raises(ValueError, match="first batch.*values in \\[0, 1\\]"):
        model.fit(dataset, epochs=1, verbose=0)
    pairs = tf.data.Dataset.from_tensor_slices((pixels, pixels)).batch(4)
    with pytest.raises(ValueError, match="max=200"):
        model.fit(pairs, epochs=1, verbose=0)
    scaled = tf.data.Dataset.from_tensor_slices(pixels / 255.0).batch(4)
    assert np.isfinite(model.fit(scaled, epochs=1, verbose=0).history["loss"][0])


def test_fit_refuses_unscaled_pixels_from_a_py_dataset():
    class Pixels(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.full((4, 4, 4, 1), 255.0, "float32")

    model = mlp_vae(input_shape=(4, 4, 1), latent_dim=2, hidden=(4,))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="first batch"):
        model.fit(Pixels(), epochs=1, verbose=0)
