"""Free bits (Kingma et al., 2016) in `VAE.compute_loss`, against notebook 03's
formula written out in NumPy, and the per-channel KL it charges."""

import keras
import numpy as np
import pytest

from vaelib.losses import gaussian_kl
from vaelib.models import convlstm_vae, learned_prior_vae, mlp_vae

pytestmark = pytest.mark.every_backend  # see tests/run.sh


def _outputs(model, x):
    logits, z_mean, *rest = model(x, training=False)
    return (logits, z_mean, *rest)


def test_free_bits_loss_is_notebook_03s_formula():
    x = (np.random.default_rng(0).random((16, 6, 6, 1)) > 0.5).astype("float32")
    model = mlp_vae(
        input_shape=(6, 6, 1),
        latent_dim=5,
        hidden=(8,),
        seed=0,
        beta=2.0,
        free_bits=0.5,
    )
    y_pred = _outputs(model, x)
    logits, z_mean, z_log_var = (keras.ops.convert_to_numpy(t) for t in y_pred)
    # by hand: sum_j max(lambda, mean over the batch of KL_j), weighted by beta
    kl_per_dim = 0.5 * (np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var)
    charged = np.maximum(kl_per_dim.mean(axis=0), 0.5).sum()
    reconstruction = keras.ops.convert_to_numpy(model.reconstruction_loss(x, y_pred[0]))
    expected = reconstruction.mean() + 2.0 * charged
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(x=x, y_pred=y_pred)))
    assert loss == pytest.approx(expected, rel=1e-5)
    # free_bits=0 is the plain beta-weighted -ELBO
    plain = mlp_vae(input_shape=(6, 6, 1), latent_dim=5, hidden=(8,), seed=0, beta=2.0)
    plain.set_weights(model.get_weights())
    loss = float(keras.ops.convert_to_numpy(plain.compute_loss(x=x, y_pred=y_pred)))
    expected = (reconstruction + 2.0 * kl_per_dim.sum(axis=1)).mean()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_sample_weights_weight_the_batch_means():
    x = (np.random.default_rng(1).random((6, 6, 6, 1)) > 0.5).astype("float32")
    model = mlp_vae(
        input_shape=(6, 6, 1), latent_dim=3, hidden=(8,), seed=0, free_bits=0.2
    )
    y_pred = _outputs(model, x)
    # weights 1 on the first three examples, 0 on the others: their batch alone
    weights = np.array([1, 1, 1, 0, 0, 0], "float32")
    weighted = model.compute_loss(x=x, y_pred=y_pred, sample_weight=weights)
    first = model.compute_loss(x=x[:3], y_pred=tuple(t[:3] for t in y_pred))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(weighted),
        keras.ops.convert_to_numpy(first),
        rtol=1e-5,
    )


@pytest.mark.parametrize("build", ["convlstm", "learned_prior"])
def test_kl_per_channel_adds_up_to_the_models_kl(build):
    clips = np.random.default_rng(2).random((3, 4, 16, 16, 1)).astype("float32")
    builder = convlstm_vae if build == "convlstm" else learned_prior_vae
    model = builder(
        input_shape=(4, 16, 16, 1),
        latent_dim=3,
        filters=(4,),
        lstm_filters=4,
        seed=0,
        free_bits=1.0,
    )
    _, *gaussians = _outputs(model, clips)
    per_channel = keras.ops.convert_to_numpy(model.kl_per_channel(*gaussians))
    assert per_channel.shape == (3, 3)
    total = keras.ops.convert_to_numpy(model.kl_loss(*gaussians))
    np.testing.assert_allclose(per_channel.sum(axis=1), total, rtol=1e-5)
    if build == "convlstm":
        # a second route: the closed form per element, summed over positions
        z_mean, z_log_var = (keras.ops.convert_to_numpy(t) for t in gaussians)
        elementwise = 0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var)
        np.testing.assert_allclose(
            per_channel, elementwise.sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            total, keras.ops.convert_to_numpy(gaussian_kl(*gaussians)), rtol=1e-5
        )


def test_free_bits_is_saved_with_the_model_and_refused_when_negative(tmp_path):
    model = mlp_vae(input_shape=(6, 6, 1), latent_dim=2, hidden=(4,), free_bits=0.25)
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").free_bits == 0.25
    with pytest.raises(ValueError, match="free_bits"):
        mlp_vae(input_shape=(6, 6, 1), latent_dim=2, hidden=(4,), free_bits=-1)


def test_training_with_free_bits_runs_and_reports_the_true_kl():
    x = (np.random.default_rng(3).random((32, 6, 6, 1)) > 0.5).astype("float32")
    model = mlp_vae(
        input_shape=(6, 6, 1), latent_dim=3, hidden=(8,), seed=0, free_bits=100.0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, epochs=1, batch_size=32, verbose=0).history
    # the floor is far above the KL: the loss charges 3 x 100 nats, the log
    # still reports the KL the posterior has
    assert history["loss"][0] > 300 > history["reconstruction"][0] + history["kl"][0]
