"""Every model trains, samples, saves and reloads under each mixed policy.

A model computes in the dtype policy it was built with: its own layers and
every layer of its networks, in this process and in one that loads the file
under another global policy (issue 25, defects 2 and 3).
"""

import keras
import numpy as np
import pytest

import vaelib  # noqa: F401 - registers the classes
from vaelib import models

POLICIES = ("mixed_float16", "mixed_bfloat16")

BUILDERS = {
    "mlp": lambda: models.MLPVAE(input_shape=(8, 8, 1), latent_dim=2, hidden=(8,)),
    "conv": lambda: models.ConvVAE(input_shape=(8, 8, 1), latent_dim=2, filters=(4,)),
    "framewise": lambda: models.FramewiseVAE(
        input_shape=(3, 8, 8, 1), latent_dim=2, filters=(4,)
    ),
    "convlstm": lambda: models.ConvLSTMVAE(
        input_shape=(3, 8, 8, 1), latent_dim=2, filters=(4,), lstm_filters=4
    ),
    "predictor": lambda: models.ConvLSTMPredictor(
        input_shape=(3, 8, 8, 1),
        context_frames=2,
        latent_dim=2,
        filters=(4,),
        lstm_filters=4,
    ),
    "learned-prior": lambda: models.LearnedPriorVAE(
        input_shape=(3, 8, 8, 1),
        latent_dim=2,
        filters=(4,),
        lstm_filters=4,
        decoder_convs=1,
    ),
}


@pytest.fixture
def global_policy():
    """Sets a global dtype policy for the test and restores float32 after it."""

    def set_policy(name):
        keras.config.set_dtype_policy(name)

    yield set_policy
    keras.config.set_dtype_policy("float32")


def _data(model):
    rng = np.random.default_rng(0)
    return (rng.random((4,) + model.data_shape) > 0.5).astype("float32")


def _compute_dtypes(model):
    """The compute dtype of every layer with weights, the networks' included."""
    dtypes = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.weights:
            dtypes.add(layer.compute_dtype)
    return dtypes


def _half(policy):
    return policy.removeprefix("mixed_")


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", BUILDERS)
def test_every_model_trains_samples_saves_and_reloads_in_its_policy(
    name, policy, global_policy, tmp_path
):
    global_policy(policy)
    model = BUILDERS[name]()
    assert model.dtype_policy.name == policy
    assert _compute_dtypes(model) == {_half(policy)}
    x = _data(model)
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    samples = keras.ops.convert_to_numpy(model.sample(2, seed=1))
    assert samples.shape == (2,) + model.data_shape
    assert samples.dtype == np.float32
    assert np.all((samples >= 0) & (samples <= 1))
    if hasattr(model, "predict_future"):
        future = model.predict_future(x[:, :2], 1, seed=0)
        assert future.shape == (4, 1) + model.data_shape[1:]
    path = tmp_path / "model.keras"
    model.save(path)
    # Loaded under the default policy, it still computes in its own.
    global_policy("float32")
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.dtype_policy.name == policy
    assert _compute_dtypes(again) == {_half(policy)}
    z = np.zeros((1,) + model.latent_shape, "float32")
    before = keras.ops.convert_to_numpy(model.decode(z))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again.decode(z)), before)


@pytest.mark.parametrize("name", ["mlp", "convlstm"])
@pytest.mark.every_backend
def test_a_float32_file_loaded_under_a_mixed_policy_computes_in_float32(
    name, global_policy, tmp_path
):
    model = BUILDERS[name]()
    path = tmp_path / "model.keras"
    model.save(path)
    global_policy("mixed_float16")
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.dtype_policy.name == "float32"
    assert _compute_dtypes(again) == {"float32"}


@pytest.mark.parametrize("name", BUILDERS)
def test_the_dtype_argument_reaches_every_inner_layer(name):
    config = BUILDERS[name]().get_config()
    config["dtype"] = "mixed_bfloat16"
    model = type(BUILDERS[name]()).from_config(config)
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert _compute_dtypes(model) == {"bfloat16"}
    assert keras.config.dtype_policy().name == "float32"
