"""Identity and latent activity of a model (issue 26): reconstruction identity
against a classifier whose readings are known by hand, active units against a
model whose collapsed channels are made by hand."""

import keras
import numpy as np
import pytest

from vaelib.losses import gaussian_kl
from vaelib.metrics import active_units, evaluate_video, reconstruction_identity
from vaelib.models import framewise_vae, mlp_vae


def ink_reader(size=8):
    """A "digit classifier" that reads {0} in a frame with ink and {1} in a blank one.

    Class 0: sigmoid(100 (max pixel - 0.5)); class 1: sigmoid(-5), so a blank
    frame reads only its most probable class, 1, and an inked frame 0.
    """
    frames = keras.Input((size, size, 1))
    brightest = keras.layers.GlobalMaxPooling2D()(frames)
    outputs = keras.layers.Dense(10, activation="sigmoid")(brightest)
    model = keras.Model(frames, outputs)
    kernel = np.zeros((1, 10), "float32")
    kernel[0, 0] = 100.0
    bias = np.full(10, -60.0, "float32")
    bias[0], bias[1] = -50.0, -5.0
    model.layers[-1].set_weights([kernel, bias])
    return model


def test_reconstruction_identity_counts_frames_read_alike():
    rng = np.random.default_rng(0)
    inked = rng.random((40, 3)) < 0.5
    target = np.zeros((40, 3, 8, 8, 1), "float32")
    target[inked, 2:5, 2:5] = 0.9
    assert reconstruction_identity(target, target, ink_reader()).tolist() == [1.0] * 3
    # A model that loses the ink everywhere keeps only the blank frames.
    blank = np.zeros_like(target)
    np.testing.assert_allclose(
        reconstruction_identity(target, blank, ink_reader()), (~inked).mean(0)
    )
    # Faint ink (0.3 < 0.5) reads as blank: PSNR would call it close, identity not.
    faint = target / 3
    np.testing.assert_allclose(
        reconstruction_identity(target, faint, ink_reader()), (~inked).mean(0)
    )
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_identity(target, target[:, :2], ink_reader())
    with pytest.raises(ValueError, match=r"prediction in \[0, 1\]"):
        reconstruction_identity(target, target * 2, ink_reader())
    with pytest.raises(ValueError, match="threshold"):
        reconstruction_identity(target, target, ink_reader(), threshold=2)


def test_shipped_classifier_keeps_real_clips_and_not_blank_ones():
    from vaelib.data import MovingDigits

    clips = MovingDigits.scaled(32, num_frames=4, split="test").clips(20)
    assert reconstruction_identity(clips, clips).min() == 1.0
    assert reconstruction_identity(clips, np.zeros_like(clips)).max() < 0.2


def test_active_units_finds_the_channels_made_to_collapse():
    images = np.random.default_rng(1).random((64, 6, 6, 1)).astype("float32")
    model = mlp_vae(input_shape=(6, 6, 1), latent_dim=4, hidden=(8,), seed=0)
    head = model.encoder.get_layer("posterior")
    mean_kernel, mean_bias = head.mean_layer.get_weights()
    var_kernel, var_bias = head.log_var_layer.get_weights()
    # Units 1 and 3 ignore x and sit at the prior N(0, 1): no activity, no KL.
    for unit in (1, 3):
        mean_kernel[:, unit] = mean_bias[unit] = 0.0
        var_kernel[:, unit] = var_bias[unit] = 0.0
    mean_kernel[:, [0, 2]] *= 20.0  # and the others move with x
    head.mean_layer.set_weights([mean_kernel, mean_bias])
    head.log_var_layer.set_weights([var_kernel, var_bias])
    units = active_units(model, images, batch_size=10)
    assert units["active"].tolist() == [True, False, True, False]
    assert units["num_active"] == 2
    np.testing.assert_allclose(units["kl"][[1, 3]], 0.0, atol=1e-6)
    # A second computation: activity is Var_x of the posterior mean, and the
    # channels' KLs add up to the model's KL.
    z_mean, z_log_var = (keras.ops.convert_to_numpy(t) for t in model.encode(images))
    np.testing.assert_allclose(units["activity"], z_mean.var(axis=0), rtol=1e-5)
    total = keras.ops.convert_to_numpy(gaussian_kl(z_mean, z_log_var)).mean()
    assert units["kl"].sum() == pytest.approx(float(total), rel=1e-5)
    with pytest.raises(ValueError, match="at least two examples"):
        active_units(model, images[:1])
    with pytest.raises(ValueError, match="threshold"):
        active_units(model, images, threshold=-1)


def test_evaluate_video_reports_active_channels_and_identity():
    from vaelib.data import MovingDigits

    clips = MovingDigits.scaled(32, num_frames=3, split="test").clips(6)
    model = framewise_vae(input_shape=(3, 32, 32, 1), latent_dim=3, filters=(4,))
    report = evaluate_video(model, clips, batch_size=4)
    assert report["latent_channels"] == 3
    assert 0 <= report["active_units"] <= 3
    units = active_units(model, clips)
    assert report["active_units"] == units["num_active"]
    # identity is scored with the shipped classifier for 32x32 frames
    assert report["identity"].shape == (3,)
    assert 0 <= report["mean"]["identity"] <= 1
    # per-channel KL summed over channels is the per-clip KL, frames summed
    z_mean, z_log_var = model.encode(clips)
    per_clip = keras.ops.convert_to_numpy(gaussian_kl(z_mean, z_log_var)).mean()
    assert units["kl"].sum() == pytest.approx(float(per_clip), rel=1e-5)
    assert "identity" not in evaluate_video(model, clips, classifier=None)
    with pytest.raises(ValueError, match="classifier"):
        evaluate_video(model, clips, classifier="shipped")
