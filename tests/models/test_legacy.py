"""Old-format files (a plain VAE with functional networks) become architecture classes.

`tests/models/legacy/*.keras` were saved by the builders before they returned
architecture classes, with random (non-default) weights.
"""

import pathlib

import keras
import numpy as np
import pytest
from conftest import to_numpy

from vaelib.models import (
    MLPVAE,
    VAE,
    ConvLSTMPredictor,
    ConvLSTMVAE,
    ConvVAE,
    FramewiseVAE,
    conv_vae,
    convlstm_predictor,
    convlstm_vae,
    framewise_vae,
    mlp_vae,
    predict_frames,
    upgrade_model,
)

LEGACY = pathlib.Path(__file__).parent / "legacy"

# What each file was built with, by the builders of the time.
FILES = {
    "mlp": (
        MLPVAE,
        lambda: mlp_vae(input_shape=(8, 8, 1), latent_dim=2, hidden=(16, 8), seed=1),
    ),
    "conv": (
        ConvVAE,
        lambda: conv_vae(
            input_shape=(8, 8, 1), latent_dim=2, filters=(4, 8), dense_units=8, seed=2
        ),
    ),
    "framewise": (
        FramewiseVAE,
        lambda: framewise_vae(
            input_shape=(3, 8, 8, 1),
            latent_dim=2,
            filters=(4, 8),
            decoder_convs=2,
            seed=3,
        ),
    ),
    "convlstm": (
        ConvLSTMVAE,
        lambda: convlstm_vae(
            input_shape=(3, 8, 8, 1),
            latent_dim=2,
            filters=(4, 8),
            lstm_filters=4,
            decoder_convs=2,
            skip=True,
            seed=4,
        ),
    ),
    "convlstm-plain": (
        ConvLSTMVAE,
        lambda: convlstm_vae(
            input_shape=(3, 8, 8, 1),
            latent_dim=2,
            filters=(4,),
            lstm_filters=4,
            fast=False,
        ),
    ),
    "predictor": (
        ConvLSTMPredictor,
        lambda: convlstm_predictor(
            input_shape=(4, 8, 8, 1),
            context_frames=3,
            latent_dim=2,
            filters=(4, 8),
            lstm_filters=4,
            skip=True,
            seed=5,
        ),
    ),
}


def _load(name):
    return keras.saving.load_model(LEGACY / f"{name}.keras", safe_mode=True)


def _outputs(model, x):
    z_mean, z_log_var = (to_numpy(t) for t in model.encoder(x, training=False))
    return z_mean, z_log_var, to_numpy(model.decoder(z_mean, training=False))


@pytest.mark.parametrize("name", FILES)
def test_old_weights_give_identical_outputs_in_the_new_class(name):
    old = _load(name)
    assert type(old) is VAE
    cls, build = FILES[name]
    new = build()
    assert type(new) is cls
    x = np.random.default_rng(0).random((2,) + old.data_shape, "float32")
    new(x)
    new.set_weights(old.get_weights())
    for old_value, new_value in zip(_outputs(old, x), _outputs(new, x), strict=True):
        np.testing.assert_array_equal(new_value, old_value)


@pytest.mark.parametrize("name", FILES)
def test_upgrade_model_reads_the_sizes_from_the_graph(tmp_path, name):
    old = _load(name)
    cls, build = FILES[name]
    new = upgrade_model(old)
    expected = build().get_config()
    expected["beta"] = float(to_numpy(old.beta))
    assert type(new) is cls and new.get_config() == expected
    new.save(tmp_path / "new.keras")
    loaded = keras.saving.load_model(tmp_path / "new.keras", safe_mode=True)
    x = np.random.default_rng(1).random((3,) + old.data_shape, "float32")
    for old_value, new_value in zip(_outputs(old, x), _outputs(loaded, x), strict=True):
        np.testing.assert_array_equal(new_value, old_value)


def test_upgrade_model_refuses_models_it_cannot_convert():
    with pytest.raises(ValueError, match="already knows its sizes"):
        upgrade_model(mlp_vae(input_shape=(8, 8, 1), hidden=(4,)))
    built = mlp_vae(input_shape=(8, 8, 1), hidden=(4,))
    with pytest.raises(ValueError, match="name='mine'"):
        upgrade_model(VAE(built.encoder, built.decoder, name="mine"))


def test_predict_frames_converts_an_old_predictor_with_a_warning():
    old = _load("predictor")
    context = np.random.default_rng(0).random((2, 3, 8, 8, 1), "float32")
    with pytest.warns(UserWarning, match="upgrade-model"):
        prediction = predict_frames(old, context)
    np.testing.assert_array_equal(
        prediction, upgrade_model(old).predict_frames(context)
    )
