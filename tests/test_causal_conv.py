"""vaelib.layers.CausalConv3D (issue 29): against a convolution written out in
NumPy, causal by construction, and streamed chunk by chunk exactly."""

import keras
import numpy as np
import pytest

from vaelib.layers import CausalConv3D

pytestmark = pytest.mark.every_backend  # see tests/run.sh


def numpy_causal_conv(x, kernel, bias, strides, padding_mode):
    """The definition, loop by loop: pad k_t - 1 frames before, 'same' in space."""
    kt, kh, kw, _, filters = kernel.shape
    st, sh, sw = strides
    before = x[:, :1] if padding_mode == "replicate" else np.zeros_like(x[:, :1])
    x = np.concatenate([np.repeat(before, kt - 1, axis=1), x], axis=1)
    n, t, h, w, _ = x.shape
    out_h, out_w = -(-h // sh), -(-w // sw)
    pad_h = max((out_h - 1) * sh + kh - h, 0)
    pad_w = max((out_w - 1) * sw + kw - w, 0)
    x = np.pad(
        x,
        [
            (0, 0),
            (0, 0),
            (pad_h // 2, pad_h - pad_h // 2),
            (pad_w // 2, pad_w - pad_w // 2),
            (0, 0),
        ],
    )
    out_t = (t - kt) // st + 1
    y = np.zeros((n, out_t, out_h, out_w, filters))
    for j in range(out_t):
        for r in range(out_h):
            for c in range(out_w):
                window = x[
                    :, j * st : j * st + kt, r * sh : r * sh + kh, c * sw : c * sw + kw
                ]
                y[:, j, r, c] = np.tensordot(
                    window, kernel, axes=([1, 2, 3, 4], [0, 1, 2, 3])
                )
    return y + bias


def _layer(**kwargs):
    layer = CausalConv3D(**kwargs)
    layer.build((None, None, 6, 6, 2))
    rng = np.random.default_rng(0)
    layer.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    )
    return layer


CASES = [
    dict(filters=3, kernel_size=3),
    dict(filters=3, kernel_size=(3, 3, 3), strides=(2, 2, 2)),
    dict(filters=2, kernel_size=(2, 3, 3), strides=(1, 2, 2), padding_mode="zeros"),
    dict(filters=2, kernel_size=(1, 3, 3)),
]


@pytest.mark.parametrize("kwargs", CASES)
def test_the_layer_is_the_causal_convolution_written_out(kwargs):
    layer = _layer(**kwargs)
    x = np.random.default_rng(1).random((2, 7, 6, 6, 2)).astype("float32")
    kernel, bias = layer.get_weights()
    expected = numpy_causal_conv(x, kernel, bias, layer.strides, layer.padding_mode)
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs", CASES[:3])
def test_no_output_frame_sees_a_later_input_frame(kwargs):
    layer = _layer(**kwargs)
    rng = np.random.default_rng(2)
    x = rng.random((1, 8, 6, 6, 2)).astype("float32")
    base = keras.ops.convert_to_numpy(layer(x))
    stride = layer.strides[0]
    for t in range(8):
        changed = x.copy()
        changed[:, t + 1 :] = rng.random(changed[:, t + 1 :].shape)
        out = keras.ops.convert_to_numpy(layer(changed))
        # output frame j reads input frames up to j * stride
        upto = t // stride + 1
        np.testing.assert_array_equal(out[:, :upto], base[:, :upto])
        if t + 1 <= (base.shape[1] - 1) * stride:  # some output reads frame t + 1
            assert not np.allclose(out, base), "a later frame changes later outputs"


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize(
    "chunks", [(8,), (1, 3, 4), (2, 2, 2, 2), (4, 4), (1, 4, 3), (1,) * 8]
)
def test_streaming_chunk_by_chunk_is_exact(kwargs, chunks):
    """Any chunk lengths, also odd ones under a temporal stride of 2 (the
    first-frame-alone layout) and single frames, some of which complete no
    output frame."""
    layer = _layer(**kwargs)
    x = np.random.default_rng(3).random((2, 8, 6, 6, 2)).astype("float32")
    whole = keras.ops.convert_to_numpy(layer(x))
    outputs, cache, start = [], None, 0
    for size in chunks:
        out, cache = layer.stream(x[:, start : start + size], cache)
        outputs.append(keras.ops.convert_to_numpy(out))
        start += size
    np.testing.assert_allclose(
        np.concatenate(outputs, axis=1), whole, rtol=1e-5, atol=1e-5
    )


def test_a_one_frame_clip_is_a_still_video_with_replicate_padding():
    layer = _layer(filters=2, kernel_size=3)
    frame = np.random.default_rng(4).random((1, 1, 6, 6, 2)).astype("float32")
    still = np.repeat(frame, 3, axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(frame))[:, 0],
        keras.ops.convert_to_numpy(layer(still))[:, 2],
        rtol=1e-5,
    )


def test_saved_and_loaded_it_computes_the_same(tmp_path):
    inputs = keras.Input((5, 8, 8, 1))
    outputs = CausalConv3D(3, (3, 3, 3), strides=(1, 2, 2), activation="relu")(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(5).random((2, 5, 8, 8, 1)).astype("float32")
    model.save(tmp_path / "causal.keras")
    again = keras.saving.load_model(tmp_path / "causal.keras", safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
    )
    layer = again.layers[-1]
    assert layer.get_config()["padding_mode"] == "replicate"
    assert layer.kernel_size == (3, 3, 3) and layer.strides == (1, 2, 2)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(filters=0), "filters"),
        (dict(filters=2, kernel_size=(3, 3)), "kernel_size"),
        (dict(filters=2, kernel_size=0), "kernel_size"),
        (dict(filters=2, strides=(1, 2)), "strides"),
        (dict(filters=2, padding_mode="reflect"), "padding_mode"),
        (dict(filters=2, use_bias="yes"), "use_bias"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CausalConv3D(**kwargs)
