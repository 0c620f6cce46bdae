import keras
import numpy as np
import pytest
from conftest import to_numpy

from vaelib.data import MovingDigits
from vaelib.layers import FusedConvLSTM2D
from vaelib.losses import gaussian_kl
from vaelib.metrics import iwae_log_likelihood
from vaelib.models import (
    convlstm_predictor,
    convlstm_vae,
    copy_last_frame,
    framewise_vae,
    predict_frames,
)

SHAPE = (6, 32, 32, 1)
CONVLSTM_LAYERS = (keras.layers.ConvLSTM2D, FusedConvLSTM2D)
SMALL = dict(latent_dim=2, filters=(8, 16))


@pytest.fixture(scope="module")
def clips():
    generator = MovingDigits(
        frame_size=32, num_frames=6, digit_size=14, speed=2.5, split="train", seed=0
    )
    held_out = MovingDigits(
        frame_size=32, num_frames=6, digit_size=14, speed=2.5, split="test", seed=1
    )
    return generator.clips(192), held_out.clips(32)


BUILDERS = {
    "framewise": lambda shape=SHAPE: framewise_vae(input_shape=shape, seed=0, **SMALL),
    "convlstm": lambda shape=SHAPE: convlstm_vae(
        input_shape=shape, lstm_filters=8, seed=0, **SMALL
    ),
    "predictor": lambda shape=SHAPE: convlstm_predictor(
        input_shape=shape, context_frames=3, lstm_filters=8, seed=0, **SMALL
    ),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_shapes(name, clips):
    model = BUILDERS[name]()
    assert model.latent_shape == (6, 8, 8, 2)
    logits, z_mean, z_log_var = model(clips[0][:3])
    assert tuple(logits.shape) == (3,) + SHAPE
    assert tuple(z_mean.shape) == tuple(z_log_var.shape) == (3, 6, 8, 8, 2)
    samples = to_numpy(model.sample(2, seed=0))
    assert samples.shape == (2,) + SHAPE and samples.min() >= 0 and samples.max() <= 1


def test_the_default_sizes_are_moving_mnist():
    model = convlstm_vae()
    assert model.data_shape == (20, 64, 64, 1) and model.latent_shape == (20, 8, 8, 8)
    assert any(isinstance(layer, CONVLSTM_LAYERS) for layer in model.encoder.layers)
    assert any(isinstance(layer, CONVLSTM_LAYERS) for layer in model.decoder.layers)
    assert not any(
        isinstance(layer, CONVLSTM_LAYERS) for layer in framewise_vae().encoder.layers
    )


@pytest.mark.every_backend
def test_the_kl_is_summed_over_time(clips):
    short = BUILDERS["framewise"]((6, 32, 32, 1))
    long = BUILDERS["framewise"]((12, 32, 32, 1))
    long.set_weights(short.get_weights())
    clip = clips[1][:4]
    twice = np.concatenate([clip, clip], axis=1)  # the same content, twice as long
    kl_short = to_numpy(gaussian_kl(*short.encode(clip)))
    kl_long = to_numpy(gaussian_kl(*long.encode(twice)))
    np.testing.assert_allclose(kl_long, 2 * kl_short, rtol=1e-5)

    model = BUILDERS["convlstm"]()
    model.compile(optimizer="adam")
    logs = model.evaluate(clip, batch_size=4, verbose=0, return_dict=True)
    z_mean, z_log_var = (to_numpy(t) for t in model.encode(clip))
    per_frame = 0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var).sum(
        axis=(2, 3, 4)
    )
    np.testing.assert_allclose(logs["kl"], per_frame.sum(axis=1).mean(), rtol=1e-4)


@pytest.mark.every_backend
def test_the_encoder_reads_frames_in_order(clips):
    framewise, convlstm = BUILDERS["framewise"](), BUILDERS["convlstm"]()
    clip = clips[1][:2]
    changed = clip.copy()
    changed[:, 0] = 1 - changed[:, 0]
    for model, later_frames_move in ((framewise, False), (convlstm, True)):
        before, after = (to_numpy(model.encode(c)[0]) for c in (clip, changed))
        assert not np.allclose(before[:, 0], after[:, 0])
        assert np.allclose(before[:, 1:], after[:, 1:]) != later_frames_move


@pytest.mark.every_backend
def test_the_predictor_never_sees_the_frames_it_predicts(clips):
    model = BUILDERS["predictor"]()
    model.compile(optimizer="adam")
    model.fit(clips[0][:32], epochs=1, batch_size=16, verbose=0)
    clip = clips[1][:4]
    other_future = clip.copy()
    other_future[:, 3:] = np.random.default_rng(0).random(other_future[:, 3:].shape)
    np.testing.assert_array_equal(
        to_numpy(model.reconstruct(clip)), to_numpy(model.reconstruct(other_future))
    )
    np.testing.assert_array_equal(
        to_numpy(model.encode(clip)[0]), to_numpy(model.encode(other_future)[0])
    )
    prediction = predict_frames(model, clip[:, :3])
    assert prediction.shape == (4, 3, 32, 32, 1)
    np.testing.assert_allclose(
        prediction, to_numpy(model.reconstruct(clip))[:, 3:], atol=1e-6
    )
    z_mean, z_log_var = (to_numpy(t) for t in model.encode(clip))
    assert np.all(z_mean[:, 3:] == 0) and np.all(z_log_var[:, 3:] == 0)
    with pytest.raises(ValueError, match="context_frames"):
        convlstm_predictor(input_shape=SHAPE, context_frames=6)
    for wrong in (clip[:, :1], clip[:, :5]):
        with pytest.raises(ValueError, match="context_frames=3") as error:
            predict_frames(model, wrong)
        assert f"Received: {wrong.shape[1]} context frames" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["framewise", "convlstm", "predictor"])
def test_a_few_epochs_lower_the_held_out_loss(name, clips):
    train, held_out = clips
    model = BUILDERS[name]()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = model.evaluate(held_out, batch_size=16, verbose=0, return_dict=True)[
        "loss"
    ]
    model.fit(train, epochs=3, batch_size=16, verbose=0)
    after = model.evaluate(held_out, batch_size=16, verbose=0, return_dict=True)["loss"]
    # An untrained decoder costs about 6 * 32 * 32 * log 2 = 4,259 nats per clip.
    assert before > 3500 and after < 0.7 * before, (before, after)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.every_backend
def test_save_and_load_give_identical_encoder_means(tmp_path, clips, skip):
    model = convlstm_predictor(
        input_shape=SHAPE, context_frames=3, lstm_filters=8, skip=skip, seed=0, **SMALL
    )
    model.compile(optimizer="adam")
    model.fit(clips[0][:16], epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "video.keras")
    loaded = keras.saving.load_model(tmp_path / "video.keras", safe_mode=True)
    np.testing.assert_array_equal(
        to_numpy(loaded.encode(clips[1])[0]), to_numpy(model.encode(clips[1])[0])
    )


@pytest.mark.parametrize("name", BUILDERS)
def test_a_saved_model_rebuilds_itself_from_its_sizes(tmp_path, name):
    model = BUILDERS[name]()
    model.save(tmp_path / "video.keras")
    loaded = keras.saving.load_model(tmp_path / "video.keras", safe_mode=True)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert "encoder" not in loaded.get_config()
    assert loaded.filters == (8, 16) and loaded.latent_dim == 2
    if name == "predictor":
        assert loaded.context_frames == 3 and loaded.future_frames == 3


def test_iwae_works_on_video_models(clips):
    model = BUILDERS["convlstm"]()
    model.compile(optimizer="adam")
    model.fit(clips[0][:64], epochs=1, batch_size=16, verbose=0)
    x = clips[1][:4]
    elbo = np.mean([to_numpy(model.elbo(x)).mean() for _ in range(8)])
    bounds = [iwae_log_likelihood(model, x, k=k, seed=0).mean() for k in (1, 16)]
    assert bounds[1] > bounds[0] and bounds[1] > elbo


def test_copy_last_frame():
    context = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2, 1).astype("float32")
    future = copy_last_frame(context, 4)
    assert future.shape == (2, 4, 2, 2, 1)
    np.testing.assert_array_equal(future[:, 2], context[:, -1])


def test_decoder_convs_refine_every_resolution(clips):
    def convs(model):
        return [
            layer.layer.filters
            for layer in model.decoder.layers
            if type(getattr(layer, "layer", None)) is keras.layers.Conv2D
        ]

    one = convlstm_vae(input_shape=SHAPE, lstm_filters=8, seed=0, **SMALL)
    three = convlstm_vae(
        input_shape=SHAPE, lstm_filters=8, decoder_convs=3, seed=0, **SMALL
    )
    # pixel logits only; then two 3x3 convolutions after each upsampling (16, 8)
    assert convs(one) == [1]
    assert convs(three) == [16, 16, 8, 8, 1]
    assert three.encoder.count_params() == one.encoder.count_params()
    logits, _, _ = three(clips[0][:2])
    assert tuple(logits.shape) == (2,) + SHAPE
    predictor = convlstm_predictor(
        input_shape=SHAPE, context_frames=3, lstm_filters=8, decoder_convs=2, **SMALL
    )
    assert convs(predictor) == [16, 8, 1]


def test_skip_passes_each_frames_own_latent_around_the_convlstm():
    model = convlstm_vae(input_shape=SHAPE, lstm_filters=8, skip=True, seed=0, **SMALL)
    plain = convlstm_vae(input_shape=SHAPE, lstm_filters=8, seed=0, **SMALL)
    # With every ConvLSTM weight at 0 its output is 0 (h = sigmoid(0) * tanh(0)),
    # so only the skip path can carry the latent to the pixels.
    for vae in (model, plain):
        lstm = vae.decoder.get_layer("decoder_convlstm")
        lstm.set_weights([np.zeros_like(w) for w in lstm.get_weights()])
    z = np.random.default_rng(0).normal(size=(2,) + model.latent_shape)
    z = z.astype("float32")
    moved = z.copy()
    moved[:, 3] += 1.0  # change frame 3's latent only
    before, after = to_numpy(model.decode(z)), to_numpy(model.decode(moved))
    assert np.abs(after[:, 3] - before[:, 3]).max() > 1e-4
    np.testing.assert_array_equal(np.delete(after, 3, 1), np.delete(before, 3, 1))
    # without the skip, the decoder has nothing left to go on
    np.testing.assert_array_equal(
        to_numpy(plain.decode(z)), to_numpy(plain.decode(moved))
    )
    head = model.encoder.get_layer("posterior")
    assert head.mean_layer.kernel.shape[-2] == SMALL["filters"][-1] + 8


def test_bad_clip_shapes():
    with pytest.raises(ValueError, match="decoder_convs to be an integer >= 1"):
        framewise_vae(input_shape=SHAPE, decoder_convs=0)
    with pytest.raises(ValueError, match="num_frames, height, width"):
        convlstm_vae(input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="divisible by 8"):
        framewise_vae(input_shape=(4, 28, 28, 1))


@pytest.mark.parametrize("skip", [False, True])
def test_fast_and_plain_keras_layers_build_the_same_model(clips, skip):
    sizes = dict(input_shape=SHAPE, lstm_filters=8, skip=skip, seed=0, **SMALL)
    fused = convlstm_vae(**sizes)
    stock = convlstm_vae(fast=False, **sizes)
    stock.set_weights(fused.get_weights())
    np.testing.assert_allclose(
        to_numpy(stock.encode(clips[1][:3])[0]),
        to_numpy(fused.encode(clips[1][:3])[0]),
        atol=1e-5,
    )
    z = (
        np.random.default_rng(0)
        .normal(size=(2,) + fused.latent_shape)
        .astype("float32")
    )
    np.testing.assert_allclose(
        to_numpy(stock.decode(z)), to_numpy(fused.decode(z)), atol=1e-5
    )


def test_fast_and_plain_framewise_models_agree(clips):
    fast = framewise_vae(input_shape=SHAPE, seed=0, **SMALL)
    plain = framewise_vae(input_shape=SHAPE, seed=0, fast=False, **SMALL)
    assert any(
        isinstance(layer, keras.layers.TimeDistributed)
        for layer in plain.encoder.layers
    )
    plain.set_weights(fast.get_weights())
    np.testing.assert_allclose(
        to_numpy(plain.encode(clips[1][:3])[0]),
        to_numpy(fast.encode(clips[1][:3])[0]),
        atol=1e-5,
    )
