"""The layers the VAEs of the course are built from.

`Sampling` and `GaussianHead` make any network a VAE; `FusedConvLSTM2D` and
`PerFrame` make the video models fast (the same computation as Keras'
`ConvLSTM2D` and `TimeDistributed`, in fewer, larger operations).
"""

import keras
import numpy as np
from keras import ops

from vaelib import _arguments

MIN_LOG_VAR = -30.0
MAX_LOG_VAR = 20.0


@keras.saving.register_keras_serializable(package="vaelib")
class Sampling(keras.layers.Layer):
    """Draws `z ~ N(z_mean, exp(z_log_var))` with the reparameterisation trick.

    `z = z_mean + exp(z_log_var / 2) * epsilon`, with `epsilon ~ N(0, I)`
    drawn fresh for every element of the batch. Because the noise enters
    through a sum and a product, gradients flow to `z_mean` and `z_log_var`.
    The noise comes from a `keras.random.SeedGenerator`, so a seeded layer
    gives the same draws in every run, also inside a jitted JAX train step.

    Args:
        seed: Optional integer seed for the layer's `SeedGenerator`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: A pair `(z_mean, z_log_var)` of tensors of the same shape.

    Returns:
        A tensor `z` with the shape and dtype of `z_mean`.

    Example:

    >>> z_mean = keras.ops.zeros((4, 2))
    >>> z_log_var = keras.ops.zeros((4, 2))
    >>> tuple(Sampling(seed=0)((z_mean, z_log_var)).shape)
    (4, 2)

    Introduced in: course/02_mlp_vae.ipynb
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        if not isinstance(inputs, tuple | list) or len(inputs) != 2:
            raise ValueError(
                "Expected inputs to be a pair (z_mean, z_log_var). Received: "
                f"inputs of type {type(inputs).__name__}"
                + (
                    f" with {len(inputs)} items"
                    if isinstance(inputs, tuple | list)
                    else ""
                )
                + f", shape={getattr(inputs, 'shape', None)}"
            )
        z_mean, z_log_var = inputs
        if tuple(z_mean.shape) != tuple(z_log_var.shape):
            raise ValueError(
                "Expected z_mean and z_log_var of the same shape. Received: "
                f"z_mean.shape={tuple(z_mean.shape)}, "
                f"z_log_var.shape={tuple(z_log_var.shape)}"
            )
        epsilon = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="vaelib")
class GaussianHead(keras.layers.Layer):
    """Maps features to the mean and log-variance of a diagonal Gaussian.

    Two parallel linear maps of the same input: one gives `z_mean`, the other
    `z_log_var`. Neither has an activation: a mean can be any real number (a
    ReLU would forbid negative means) and a log-variance is the logarithm of a
    positive number, so it too ranges over all reals. The log-variance is
    clipped to `[min_log_var, max_log_var]` (by default `[-30, 20]`, the
    range diffusers' `DiagonalGaussianDistribution` uses): outside it,
    `exp(z_log_var)` under- or overflows in float32 and one bad batch can fill
    the weights with NaN. Its kernel starts at zero, so every posterior starts
    as N(mean, 1) and the first KL values are small.

    With `kernel_size=None` the maps are `Dense` layers on the last axis, which
    on a feature map is a 1x1 convolution. With an integer `kernel_size` they
    are `Conv2D` ("same" padding) on 4-D input `(batch, height, width,
    channels)`, or `Conv3D` with kernel `(1, k, k)` on 5-D video input
    `(batch, frames, height, width, channels)`, so frames never mix.

    Args:
        latent_dim: Number of latent units (or latent channels of a map).
        kernel_size: `None` for dense heads, or the spatial kernel size of
            convolutional heads.
        min_log_var: Lower clip of the log-variance.
        max_log_var: Upper clip of the log-variance.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: Feature tensor `(batch, ..., features)`.

    Returns:
        A pair `(z_mean, z_log_var)` with `latent_dim` in the last axis.

    Example:

    >>> z_mean, z_log_var = GaussianHead(2)(keras.ops.ones((4, 16)))
    >>> tuple(z_mean.shape), tuple(z_log_var.shape)
    ((4, 2), (4, 2))

    Introduced in: course/02_mlp_vae.ipynb
    """

    def __init__(
        self,
        latent_dim,
        kernel_size=None,
        min_log_var=MIN_LOG_VAR,
        max_log_var=MAX_LOG_VAR,
        **kwargs,
    ):
        super().__init__(**kwargs)
        latent_dim = _arguments.positive_int("latent_dim", latent_dim)
        if kernel_size is not None:
            kernel_size = _arguments.positive_int("kernel_size", kernel_size)
        min_log_var = _arguments.finite_float("min_log_var", min_log_var)
        max_log_var = _arguments.finite_float("max_log_var", max_log_var)
        if not min_log_var < max_log_var:
            raise ValueError(
                "Expected min_log_var < max_log_var. "
                f"Received: min_log_var={min_log_var}, max_log_var={max_log_var}"
            )
        self.latent_dim = int(latent_dim)
        self.kernel_size = kernel_size
        self.min_log_var = float(min_log_var)
        self.max_log_var = float(max_log_var)
        self.mean_layer = None
        self.log_var_layer = None

    def _make_layer(self, rank, name, kernel_initializer):
        common = dict(
            kernel_initializer=kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        if self.kernel_size is None:
            return keras.layers.Dense(self.latent_dim, **common)
        if rank == 4:
            return keras.layers.Conv2D(
                self.latent_dim, self.kernel_size, padding="same", **common
            )
        if rank == 5:
            return keras.layers.Conv3D(
                self.latent_dim,
                (1, self.kernel_size, self.kernel_size),
                padding="same",
                **common,
            )
        raise ValueError(
            "A convolutional GaussianHead expects 4-D (batch, height, width, "
            "channels) or 5-D (batch, frames, height, width, channels) input. "
            f"Received input of rank {rank}."
        )

    def build(self, input_shape):
        rank = len(input_shape)
        self.mean_layer = self._make_layer(rank, "z_mean", "glorot_uniform")
        self.log_var_layer = self._make_layer(rank, "z_log_var", "zeros")
        self.mean_layer.build(input_shape)
        self.log_var_layer.build(input_shape)

    def call(self, inputs):
        z_mean = self.mean_layer(inputs)
        z_log_var = ops.clip(
            self.log_var_layer(inputs), self.min_log_var, self.max_log_var
        )
        return z_mean, z_log_var

    def compute_output_shape(self, input_shape):
        output_shape = tuple(input_shape[:-1]) + (self.latent_dim,)
        return output_shape, output_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "kernel_size": self.kernel_size,
                "min_log_var": self.min_log_var,
                "max_log_var": self.max_log_var,
            }
        )
        return config


def _lstm_update(gates, c):
    """The LSTM's gate equations: `(h, c)` at t from the summed gate inputs.

    `gates` holds the four gates' pre-activations, in Keras' order i, f, g, o,
    along the last axis; `c` is the cell state at t - 1.
    """
    i, f, g, o = ops.split(gates, 4, axis=-1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


@keras.saving.register_keras_serializable(package="vaelib")
class FusedConvLSTM2D(keras.layers.Layer):
    """A ConvLSTM over time that does in one convolution what Keras does in eight.

    The same computation and weights as `keras.layers.ConvLSTM2D(filters,
    kernel_size, padding="same", return_sequences=True)`: at each frame t,

        i, f, g, o = split(conv(x_t, W) + conv(h_{t-1}, U) + b)
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)

    Keras' cell splits `W` and `U` into the four gates and runs eight
    convolutions per frame inside the time loop. Here `conv(x_t, W)` does not
    depend on the state, so it runs once for all frames before the loop, as
    one batched convolution, and the loop runs one fused convolution
    `conv(h_{t-1}, U)` with all four gates' filters (`keras.ops.scan`, which is
    `lax.scan` on JAX). Weights have Keras' layout (`kernel`,
    `recurrent_kernel`, `bias`, gates in the order i, f, g, o), so
    `set_weights(convlstm.get_weights())` moves them across.

    Args:
        filters: Hidden channels.
        kernel_size: Size of the square convolution kernels: an integer, or
            a pair of equal integers as Keras' `ConvLSTM2D` takes.
        unroll: Unrolling of the time loop, passed to `keras.ops.scan`:
            `True` (full), an integer, or `None` for the backend's best choice
            (full unrolling on JAX, where it is much faster on CPU; 1
            elsewhere).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, frames, height, width, channels)`.

    Output shape:
        `(batch, frames, height, width, filters)`: the hidden state at every frame.

    Example:

    >>> layer = FusedConvLSTM2D(8, 3)
    >>> tuple(layer(keras.ops.zeros((2, 5, 6, 6, 3))).shape)
    (2, 5, 6, 6, 8)

    Introduced in: course/08_convlstm_video_vae.ipynb
    """

    def __init__(self, filters, kernel_size=3, unroll=None, **kwargs):
        super().__init__(**kwargs)
        sizes = _arguments.positive_ints("kernel_size", kernel_size)
        if len(set(sizes)) != 1 or len(sizes) > 2:
            raise ValueError(
                "Expected a square kernel: kernel_size=k or (k, k). "
                f"Received: kernel_size={kernel_size!r}"
            )
        self.filters = _arguments.positive_int("filters", filters)
        self.kernel_size = sizes[0]
        self.unroll = unroll
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or None in tuple(input_shape[2:4]):
            raise ValueError(
                "FusedConvLSTM2D needs known height, width and channels. "
                f"Received: input_shape={input_shape}"
            )
        size = (self.kernel_size, self.kernel_size)
        self.kernel = self.add_weight(
            shape=size + (channels, 4 * self.filters),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=size + (self.filters, 4 * self.filters),
            initializer="orthogonal",
            name="recurrent_kernel",
        )
        # Keras' unit_forget_bias: the forget gate starts open (bias 1).
        bias = np.zeros(4 * self.filters, "float32")
        bias[self.filters : 2 * self.filters] = 1.0
        self.bias = self.add_weight(
            shape=(4 * self.filters,),
            initializer=keras.initializers.Constant(bias),
            name="bias",
        )

    def call(self, inputs):
        batch, frames = ops.shape(inputs)[0], ops.shape(inputs)[1]
        height, width, channels = inputs.shape[2], inputs.shape[3], inputs.shape[4]
        # (batch * frames, height, width, channels): every frame's input gates at once
        flat = ops.reshape(inputs, (-1, height, width, channels))
        gates_from_input = ops.conv(flat, self.kernel, padding="same") + self.bias
        # (frames, batch, height, width, 4 * filters): time first, for scan
        gates_from_input = ops.transpose(
            ops.reshape(
                gates_from_input, (batch, frames, height, width, 4 * self.filters)
            ),
            (1, 0, 2, 3, 4),
        )
        recurrent_kernel = self.recurrent_kernel

        def step(state, gates_t):
            h, c = _lstm_update(
                gates_t + ops.conv(state[0], recurrent_kernel, padding="same"),
                state[1],
            )
            # Keras' TensorFlow scan needs outputs shaped like the carry.
            return (h, c), (h, c)

        zeros = ops.zeros(
            (batch, height, width, self.filters), dtype=gates_from_input.dtype
        )
        unroll = self.unroll
        if unroll is None:
            unroll = keras.backend.backend() == "jax"
        _, (hidden, _) = ops.scan(step, (zeros, zeros), gates_from_input, unroll=unroll)
        return ops.transpose(hidden, (1, 0, 2, 3, 4))

    def step(self, frame, state):
        """One time step, for loops that feed each output back (generation).

        The same weights and gate equations as `call`, in the layer's compute
        dtype, outside `call`'s time loop.

        Args:
            frame: One frame's input, `(batch, 1, height, width, channels)`.
            state: The pair `(h, c)` of `(batch, height, width, filters)`
                (zeros before the first frame).

        Returns:
            `(h_t, (h, c))`: the output as `(batch, 1, height, width,
            filters)` and the new state.
        """
        dtype = self.compute_dtype
        kernel, recurrent_kernel, bias = (
            ops.cast(weight, dtype)
            for weight in (self.kernel, self.recurrent_kernel, self.bias)
        )
        h, c = (ops.cast(tensor, dtype) for tensor in state)
        gates = (
            ops.conv(ops.cast(frame[:, 0], dtype), kernel, padding="same")
            + bias
            + ops.conv(h, recurrent_kernel, padding="same")
        )
        h, c = _lstm_update(gates, c)
        return h[:, None], (h, c)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:4]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "unroll": self.unroll,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="vaelib")
class PerFrame(keras.layers.Wrapper):
    """Applies a layer to every frame of a clip by folding time into the batch.

    `(batch, frames, ...)` is reshaped to `(batch * frames, ...)`, the layer
    runs once on all frames together, and the result is reshaped back. For
    layers that treat each example on its own (convolutions, dense layers,
    activations: every layer of vaelib's models) it computes what
    `keras.layers.TimeDistributed` computes, but Keras 3's `TimeDistributed`
    calls the layer once per frame in a Python loop and transposes the whole
    tensor on the way in and out; one call on a batch `frames` times larger
    is much faster on a CPU. It differs for a layer whose output depends on
    the batch (`BatchNormalization` in training takes its statistics over
    all frames at once, not frame by frame) and it ignores masks, which
    `TimeDistributed` passes on. Needs a known number of frames.

    Args:
        layer: The layer to apply to each frame (it sees `(batch, ...)`).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, frames, ...)` with `frames` known.

    Output shape:
        `(batch, frames, ...)` with the layer's per-frame output shape.

    Example:

    >>> layer = PerFrame(keras.layers.Conv2D(4, 3, padding="same"))
    >>> tuple(layer(keras.ops.zeros((2, 5, 8, 8, 1))).shape)
    (2, 5, 8, 8, 4)

    Introduced in: course/07_framewise_video_vae.ipynb
    """

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError(
                "PerFrame needs a known number of frames (axis 1). "
                f"Received: input_shape={input_shape}"
            )
        super().build((None,) + tuple(input_shape[2:]))

    def call(self, inputs, training=None):
        frames = inputs.shape[1]
        # (batch * frames, ...): every frame of every clip in one batch
        flat = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        outputs = self.layer(flat, training=training)
        return ops.reshape(outputs, (-1, frames) + tuple(outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])


def _same_padding(size, kernel, stride):
    """(before, after) zeros that give a 'same' convolution, as Keras pads."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="vaelib")
class CausalConv3D(keras.layers.Layer):
    """A 3-D convolution over (time, height, width) that never looks ahead in time.

    Output frame `j` is computed from input frames up to `j * strides_t` only:
    the input is padded with `kernel_t - 1` frames *before* the first one and
    none after, so a frame's output cannot depend on what comes later. Space
    is padded as a `"same"` convolution. This is the convolution of the
    causal 3-D VAEs that latent video diffusion models encode their clips
    with (CogVideoX, HunyuanVideo, Wan, Open-Sora).

    `padding_mode="replicate"` (the default) pads with copies of the first
    frame, as CogVideoX's causal convolution does: a one-frame clip then looks
    like a still video, so an image is encoded as a video of one frame.
    `"zeros"` pads with black frames (what the digits' background is anyway).

    Causal padding makes streaming exact. `stream(chunk, cache)` convolves one
    chunk given the input frames before it that later outputs still need (at
    most `kernel_t - 1` of them) and returns that cache for the next chunk:
    the outputs of consecutive chunks, concatenated, are the output of the
    whole clip, for chunks of any lengths, while only a few frames per layer
    are kept in memory. A chunk too short to complete an output frame gives
    none (an output with 0 frames) and is kept in the cache.

    Args:
        filters: Output channels.
        kernel_size: `k` or `(k_t, k_h, k_w)`.
        strides: `s` or `(s_t, s_h, s_w)`.
        padding_mode: `"replicate"` or `"zeros"`: what the `k_t - 1` frames
            before the first frame are.
        activation: A Keras activation (name or function), or None.
        use_bias: Add a bias per filter.
        kernel_initializer: Initializer of the kernel `(k_t, k_h, k_w,
            channels, filters)`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, frames, height, width, channels)`.

    Output shape:
        `(batch, ceil(frames / s_t), ceil(height / s_h), ceil(width / s_w),
        filters)`.

    Example:

    >>> layer = CausalConv3D(4, 3)
    >>> tuple(layer(keras.ops.zeros((2, 5, 8, 8, 1))).shape)
    (2, 5, 8, 8, 4)

    Introduced in: course/12_causal_video_vae.ipynb
    """

    PADDING_MODES = ("replicate", "zeros")

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        padding_mode="replicate",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _arguments.positive_int("filters", filters)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_size = _triple("kernel_size", kernel_size)
        self.strides = _triple("strides", strides)
        self.padding_mode = _padding_mode(padding_mode)
        self.activation = keras.activations.get(activation)
        self.use_bias = _arguments.boolean("use_bias", use_bias)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "CausalConv3D needs known channels. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels, self.filters),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
            if self.use_bias
            else None
        )

    def _history(self, x):
        """The `k_t - 1` frames that come before the clip's first frame."""
        before = self.kernel_size[0] - 1
        first = x[:, :1]
        if self.padding_mode == "zeros":
            first = ops.zeros_like(first)
        return ops.repeat(first, before, axis=1)

    def _convolve(self, padded_in_time):
        """A 'valid' convolution in time over frames that already hold the past.

        Computed as one 2-D convolution: the `k_t` frames each output frame
        reads are stacked along the channels, and the kernel's time axis is
        folded into its input channels; the same sums as a 3-D convolution
        (tests/test_causal_conv.py checks them against a NumPy loop).
        """
        x = padded_in_time
        kernel_t, kernel_h, kernel_w = self.kernel_size
        stride_t = self.strides[0]
        spatial = [
            _same_padding(size, kernel, stride)
            for size, kernel, stride in zip(
                x.shape[2:4], self.kernel_size[1:], self.strides[1:], strict=True
            )
        ]
        x = ops.pad(x, [(0, 0), (0, 0), *spatial, (0, 0)])
        frames = (x.shape[1] - kernel_t) // stride_t + 1
        # (batch, frames, h, w, k_t * channels): frame j's window, oldest first
        x = ops.concatenate(
            [
                x[:, i : i + stride_t * (frames - 1) + 1 : stride_t]
                for i in range(kernel_t)
            ],
            axis=-1,
        )
        batch = ops.shape(x)[0]
        height, width, channels = x.shape[2:]
        x = ops.reshape(x, (-1, height, width, channels))
        kernel = ops.cast(self.kernel, x.dtype)  # (k_t, k_h, k_w, c, filters)
        kernel = ops.reshape(
            ops.transpose(kernel, (1, 2, 0, 3, 4)),
            (kernel_h, kernel_w, channels, self.filters),
        )
        y = ops.conv(x, kernel, strides=self.strides[1:], padding="valid")
        y = ops.reshape(y, (batch, frames, *y.shape[1:]))
        if self.bias is not None:
            y = y + ops.cast(self.bias, y.dtype)
        return self.activation(y)

    def call(self, inputs):
        if self.kernel_size[0] == 1:
            return self._convolve(inputs)
        return self._convolve(ops.concatenate([self._history(inputs), inputs], axis=1))

    def stream(self, chunk, cache=None):
        """Convolves one chunk of a clip; returns `(output, cache)`.

        Args:
            chunk: `(batch, frames, height, width, channels)`, the next frames.
            cache: What the previous call returned, or None for the first
                chunk of a clip.

        Returns:
            The output frames this chunk completes, and the cache to pass
            with the next one: the input frames (padding included) from where
            the next output frame's window starts.
        """
        if not self.built:
            self.build(chunk.shape)
        history = self._history(chunk) if cache is None else cache
        padded = ops.concatenate([ops.cast(history, chunk.dtype), chunk], axis=1)
        kernel_t, stride_t = self.kernel_size[0], self.strides[0]
        length = padded.shape[1]
        # output frames whose whole window of kernel_t frames is here
        outputs = (length - kernel_t) // stride_t + 1 if length >= kernel_t else 0
        cache = padded[:, stride_t * outputs :]
        if outputs == 0:
            shape = self.compute_output_shape(padded.shape)
            return ops.zeros((padded.shape[0], 0, *shape[2:]), chunk.dtype), cache
        used = padded[:, : stride_t * (outputs - 1) + kernel_t]
        return self._convolve(used), cache

    def compute_output_shape(self, input_shape):
        sizes = [
            None if size is None else -(-size // stride)
            for size, stride in zip(input_shape[1:4], self.strides, strict=True)
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding_mode": self.padding_mode,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


def _padding_mode(value):
    """`padding_mode` of the causal layers, checked: one of CausalConv3D's."""
    if value not in CausalConv3D.PADDING_MODES:
        raise ValueError(
            f"Expected padding_mode in {CausalConv3D.PADDING_MODES}. "
            f"Received: padding_mode={value!r}"
        )
    return value


def _triple(name, value):
    """`k` or `(k_t, k_h, k_w)` as a tuple of three positive integers."""
    values = _arguments.positive_ints(name, value)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ValueError(
            f"Expected {name} as one integer or three (time, height, width). "
            f"Received: {name}={value!r}"
        )
    return tuple(values)


@keras.saving.register_keras_serializable(package="vaelib")
class CausalResBlock3D(keras.layers.Layer):
    """A residual block of two causal 3-D convolutions: `x + conv(silu(conv(silu(x))))`.

    Both convolutions are `CausalConv3D` with stride 1 and the same number of
    filters as the input has channels, so the block keeps the shape of its
    input and, like its convolutions, never looks ahead in time. The second
    convolution starts at zero, so the block starts as the identity (a deep
    stack of them trains without normalisation layers, which over the time
    axis would break causality). `stream(chunk, cache)` runs it chunk by
    chunk, exactly, as `CausalConv3D.stream` does.

    Args:
        kernel_size: `k` or `(k_t, k_h, k_w)` of both convolutions.
        padding_mode: `"replicate"` or `"zeros"`, see `CausalConv3D`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Example:

    >>> block = CausalResBlock3D()
    >>> tuple(block(keras.ops.ones((1, 5, 4, 4, 8))).shape)
    (1, 5, 4, 4, 8)

    Introduced in: course/12_causal_video_vae.ipynb
    """

    def __init__(self, kernel_size=3, padding_mode="replicate", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = _triple("kernel_size", kernel_size)
        self.padding_mode = _padding_mode(padding_mode)
        self.input_spec = keras.layers.InputSpec(ndim=5)
        self.first = None
        self.second = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "CausalResBlock3D needs known channels. "
                f"Received: input_shape={input_shape}"
            )
        self.first = CausalConv3D(
            channels, self.kernel_size, padding_mode=self.padding_mode, name="first"
        )
        self.second = CausalConv3D(
            channels,
            self.kernel_size,
            padding_mode=self.padding_mode,
            kernel_initializer="zeros",
            name="second",
        )
        self.first.build(input_shape)
        self.second.build(input_shape)

    def call(self, inputs):
        h = self.first(ops.silu(inputs))
        return inputs + self.second(ops.silu(h))

    def stream(self, chunk, cache=None):
        """One chunk of a clip; returns `(output, cache)`, see `CausalConv3D.stream`."""
        if not self.built:
            self.build(chunk.shape)
        first_cache, second_cache = (None, None) if cache is None else cache
        h, first_cache = self.first.stream(ops.silu(chunk), first_cache)
        h, second_cache = self.second.stream(ops.silu(h), second_cache)
        # stride 1: a chunk's output frames are the chunk's own frames
        return chunk + h, (first_cache, second_cache)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"kernel_size": self.kernel_size, "padding_mode": self.padding_mode}
        )
        return config


@keras.saving.register_keras_serializable(package="vaelib")
class DepthToTime(keras.layers.Layer):
    """Causal upsampling in time: channels become frames, the first frame kept alone.

    Input `(batch, frames, height, width, factor * channels)`; each input
    frame becomes `factor` output frames, the `c`-th taking the `c`-th group
    of channels (the temporal twin of `depth_to_space`, the pixel shuffle).
    The first input frame then keeps only its last output frame, so `T`
    latent frames decode to `1 + factor * (T - 1)` frames: the layout of a
    causal video VAE whose encoder saw the first frame alone and then groups
    of `factor` frames. Output frame `i` depends on input frames up to
    `ceil(i / factor)` only.

    Args:
        factor: Output frames per input frame (after the first).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Example:

    >>> x = keras.ops.ones((1, 3, 4, 4, 8))
    >>> tuple(DepthToTime(2)(x).shape)
    (1, 5, 4, 4, 4)

    Introduced in: course/12_causal_video_vae.ipynb
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = _arguments.positive_int("factor", factor)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def _check(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.factor:
            raise ValueError(
                f"Expected channels divisible by factor={self.factor}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return channels // self.factor

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        channels = self._check(inputs.shape)
        batch, frames, height, width = ops.shape(inputs)[:4]
        x = ops.reshape(inputs, (batch, frames, height, width, self.factor, channels))
        x = ops.transpose(x, (0, 1, 4, 2, 3, 5))
        x = ops.reshape(x, (batch, frames * self.factor, height, width, channels))
        return x[:, self.factor - 1 :]

    def compute_output_shape(self, input_shape):
        channels = self._check(input_shape)
        frames = input_shape[1]
        frames = None if frames is None else 1 + self.factor * (frames - 1)
        return (input_shape[0], frames, input_shape[2], input_shape[3], channels)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config
