"""The causal 3-D video VAE (issue 29): its layers against their definitions,
causality of encoder and decoder, chunked encoding, saving, the CLI."""

import keras
import numpy as np
import pytest

from vaelib.layers import CausalResBlock3D, DepthToTime
from vaelib.models import CausalVideoVAE, causal_video_vae


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def model():
    # small, with trained-looking (random, not zero) weights everywhere
    model = causal_video_vae(input_shape=(9, 16, 16, 1), latent_dim=3, seed=0)
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def _clips(n, frames, seed=1, size=16):
    return (
        np.random.default_rng(seed).random((n, frames, size, size, 1)).astype("float32")
    )


def test_depth_to_time_is_the_definition():
    x = np.random.default_rng(0).random((2, 3, 2, 2, 6)).astype("float32")
    got = _numpy(DepthToTime(3)(x))
    # frame f of group g is channels [f*2, f*2 + 2) of input frame g; the first
    # group keeps its last frame only
    expected = np.stack(
        [x[:, g, ..., f * 2 : f * 2 + 2] for g in range(3) for f in range(3)], axis=1
    )[:, 2:]
    assert got.shape == (2, 7, 2, 2, 2)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("chunks", [(9,), (1, 4, 4), (1, 2, 3, 3)])
def test_a_residual_block_streams_exactly(chunks):
    block = CausalResBlock3D()
    x = _clips(2, 9, size=4).repeat(3, axis=-1)
    block.build(x.shape)
    rng = np.random.default_rng(2)
    block.set_weights([rng.normal(size=w.shape) for w in block.get_weights()])
    whole = _numpy(block(x))
    out, cache, start = [], None, 0
    for size in chunks:
        y, cache = block.stream(x[:, start : start + size], cache)
        out.append(_numpy(y))
        start += size
    np.testing.assert_allclose(np.concatenate(out, axis=1), whole, atol=1e-5)


def test_a_new_residual_block_is_the_identity():
    x = _clips(1, 5, size=4).repeat(2, axis=-1)
    np.testing.assert_array_equal(_numpy(CausalResBlock3D()(x)), x)


def test_time_is_compressed_four_times_the_first_frame_alone(model):
    assert model.temporal_factor == 4
    assert model.latent_shape == (3, 4, 4, 3)  # 9 frames -> 1 + 8 / 4
    assert model.decoder.output_shape[1:] == (9, 16, 16, 1)
    default = causal_video_vae()
    assert default.latent_shape == (5, 8, 8, 16)  # 17 frames of 32x32
    assert default.latent_numbers_per_frame() == pytest.approx(5 * 8 * 8 * 16 / 17)


@pytest.mark.every_backend
def test_the_encoder_never_looks_ahead(model):
    x = _clips(2, 9)
    base = [_numpy(t) for t in model.encoder(x)]
    rng = np.random.default_rng(3)
    for t in range(9):
        changed = x.copy()
        changed[:, t + 1 :] = rng.random(changed[:, t + 1 :].shape)
        got = [_numpy(v) for v in model.encoder(changed)]
        covered = t // 4 + 1  # latent frame j reads frames up to 4 j
        for b, g in zip(base, got, strict=True):
            np.testing.assert_allclose(g[:, :covered], b[:, :covered], atol=1e-6)
        if covered < 3:  # some later latent frame reads the changed frames
            assert not np.allclose(got[0][:, covered:], base[0][:, covered:])


@pytest.mark.every_backend
def test_the_first_latent_frame_is_the_first_frame_alone(model):
    """An image is a one-frame video: a 1-frame clip encodes to the same first
    latent frame as any clip that starts with it."""
    x = _clips(2, 9)
    first = _numpy(model.encoder.layers[1](x[:, :1]))  # runs, per frame
    assert first.shape[1] == 1
    mean, _ = model.encode_chunked(x[:, :1], chunk_frames=4)
    whole, _ = model.encode(x)
    np.testing.assert_allclose(mean[:, 0], _numpy(whole)[:, 0], rtol=1e-4, atol=1e-4)


@pytest.mark.every_backend
def test_the_decoder_never_looks_ahead(model):
    z = np.random.default_rng(4).normal(size=(2, 3, 4, 4, 3)).astype("float32")
    base = _numpy(model.decoder(z))
    for j in range(2):
        changed = z.copy()
        changed[:, j + 1 :] += 1.0
        got = _numpy(model.decoder(changed))
        kept = 4 * j + 1  # frames 0 .. 4 j come from latent frames 0 .. j
        np.testing.assert_allclose(got[:, :kept], base[:, :kept], atol=1e-6)
        assert not np.allclose(got[:, kept:], base[:, kept:])


@pytest.mark.parametrize("frames, chunk", [(9, 4), (9, 8), (17, 4), (33, 8)])
@pytest.mark.every_backend
def test_chunked_encoding_is_whole_clip_encoding(model, frames, chunk):
    """Also for clips longer than the model's 9 frames (a causal encoder
    takes any 1 + 4 k)."""
    x = _clips(2, frames, seed=frames)
    layers = model.encoder.layers[1:]
    h = keras.ops.convert_to_tensor(x)
    for layer in layers[:-1]:
        h = layer(h)
    whole = [_numpy(t) for t in layers[-1](h)]
    chunked = model.encode_chunked(x, chunk)
    assert chunked[0].shape == (2, 1 + (frames - 1) // 4, 4, 4, 3)
    for c, w in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(c, w, rtol=1e-4, atol=1e-5)


def test_bad_sizes_name_the_argument(model):
    with pytest.raises(ValueError, match="1 \\+ a multiple of 4.*input_shape"):
        causal_video_vae(input_shape=(20, 32, 32, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        causal_video_vae(input_shape=(17, 30, 30, 1))
    with pytest.raises(ValueError, match="chunk_frames"):
        model.encode_chunked(_clips(1, 9), chunk_frames=6)
    with pytest.raises(ValueError, match="clips of shape"):
        model.encode_chunked(_clips(1, 8), chunk_frames=4)
    with pytest.raises(ValueError, match="res_blocks"):
        causal_video_vae(res_blocks=-1)


@pytest.mark.every_backend
def test_saved_and_loaded_it_computes_the_same(model, tmp_path):
    path = tmp_path / "causal.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, CausalVideoVAE)
    assert again.get_config()["temporal_downsamples"] == 2
    x = _clips(2, 9)
    for a, b in zip(again.encode(x), model.encode(x), strict=True):
        np.testing.assert_allclose(_numpy(a), _numpy(b), rtol=1e-6)
    np.testing.assert_allclose(
        _numpy(again.decode(_numpy(model.encode(x)[0]))),
        _numpy(model.decode(_numpy(model.encode(x)[0]))),
        rtol=1e-6,
    )


@pytest.mark.slow
def test_a_few_steps_lower_the_loss():
    x = np.zeros((32, 9, 16, 16, 1), "float32")
    x[:, :, 4:12, 4:12] = 1.0  # a still square
    model = causal_video_vae(input_shape=(9, 16, 16, 1), latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, batch_size=8, epochs=4, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
