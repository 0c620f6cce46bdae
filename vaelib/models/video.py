"""Video VAEs: frame by frame, with ConvLSTM over time, and for prediction.

All three take clips `(batch, num_frames, height, width, 1)` in [0, 1], use a
Bernoulli likelihood on pixels, and give each frame its own latent map
`(height / 2**len(filters), width / 2**len(filters), latent_dim)` with a mean
and a log-variance, so the latent of a clip is `(num_frames, h, w,
latent_dim)` and its KL to N(0, I) is summed over time, space and channels.
They are `VAE`s: `fit`, `encode`, `decode`, `sample`, `.keras` saving and
every backend work as for the image models.
"""

import keras
import numpy as np

from vaelib.layers import FusedConvLSTM2D, GaussianHead, PerFrame
from vaelib.models.base import VAE


def _check_clip_shape(input_shape, filters):
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 4:
        raise ValueError(
            "Expected input_shape=(num_frames, height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    _, height, width, _ = input_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            f"Expected height and width divisible by {factor} (2 ** len(filters)). "
            f"Received: input_shape={input_shape}, filters={tuple(filters)}"
        )
    return input_shape


def _per_frame(layer, fast, name=None):
    wrapper = PerFrame if fast else keras.layers.TimeDistributed
    return wrapper(layer, name=name)


def _frame_encoder(features, filters, fast):
    # (batch, frames, h, w, c) -> (batch, frames, h / 2**len(filters), ..., filters[-1])
    for f in filters:
        features = _per_frame(
            keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu"),
            fast,
        )(features)
    return features


def _frame_decoder(features, filters, channels, fast, convs=1):
    # Each resolution: a transposed convolution that doubles it, then
    # `convs - 1` convolutions that refine the features at the new size.
    for f in reversed(filters):
        features = _per_frame(
            keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="relu"
            ),
            fast,
        )(features)
        for _ in range(convs - 1):
            features = _per_frame(
                keras.layers.Conv2D(f, 3, padding="same", activation="relu"), fast
            )(features)
    return _per_frame(
        keras.layers.Conv2D(channels, 3, padding="same"), fast, name="pixel_logits"
    )(features)


def _temporal(features, lstm_filters, name, fast=True, skip=False):
    if lstm_filters is None:
        return features
    if fast:
        memory = FusedConvLSTM2D(lstm_filters, 3, name=name)(features)
    else:
        memory = keras.layers.ConvLSTM2D(
            lstm_filters, 3, padding="same", return_sequences=True, name=name
        )(features)
    if not skip:
        return memory
    # (batch, frames, h, w, input channels + lstm_filters): each frame's own
    # features next to what the ConvLSTM remembers of the frames before it.
    return keras.layers.Concatenate(name=f"{name}_skip")([features, memory])


def _latent_shape(input_shape, filters, latent_dim, num_frames=None):
    num_frames = input_shape[0] if num_frames is None else num_frames
    factor = 2 ** len(filters)
    return (num_frames, input_shape[1] // factor, input_shape[2] // factor, latent_dim)


def _check_decoder_convs(decoder_convs):
    if int(decoder_convs) < 1:
        raise ValueError(
            f"Expected decoder_convs >= 1. Received: decoder_convs={decoder_convs}"
        )
    return int(decoder_convs)


def _video_vae(
    input_shape,
    latent_dim,
    filters,
    lstm_filters,
    decoder_convs,
    skip,
    seed,
    name,
    fast,
):
    input_shape = _check_clip_shape(input_shape, filters)
    decoder_convs = _check_decoder_convs(decoder_convs)
    inputs = keras.Input(shape=input_shape, name="clip")
    features = _frame_encoder(inputs, filters, fast)
    features = _temporal(features, lstm_filters, "encoder_convlstm", fast, skip)
    z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(features)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

    latent = keras.Input(
        shape=_latent_shape(input_shape, filters, latent_dim), name="z"
    )
    features = _temporal(latent, lstm_filters, "decoder_convlstm", fast, skip)
    if lstm_filters is None:
        features = _per_frame(
            keras.layers.Conv2D(filters[-1], 3, padding="same", activation="relu"),
            fast,
        )(features)
    outputs = _frame_decoder(features, filters, input_shape[-1], fast, decoder_convs)
    decoder = keras.Model(latent, outputs, name="decoder")
    return VAE(encoder, decoder, likelihood="bernoulli", seed=seed, name=name)


def framewise_vae(
    input_shape=(20, 64, 64, 1),
    latent_dim=8,
    filters=(16, 32, 64),
    decoder_convs=1,
    seed=None,
    fast=True,
):
    """Builds a convolutional VAE applied to every frame on its own.

    Each frame goes through the same strided convolutions (`PerFrame`),
    gets its own latent map with mean and log-variance, and is decoded by the
    same transposed convolutions. Nothing connects one frame to the next: this
    is the baseline that shows what a video model gains from modelling time.

    Args:
        input_shape: `(num_frames, height, width, channels)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Channels of each frame's latent map.
        filters: Filters of the downsampling convolutions, encoder order.
        decoder_convs: Convolutions per resolution in the decoder, as in
            `convlstm_vae`.
        seed: Seed of the sampling noise.
        fast: Apply per-frame layers with `vaelib.layers.PerFrame`; `False`
            uses `keras.layers.TimeDistributed` (same model, slower).

    Returns:
        A `VAE` whose latent shape is `(num_frames, height / 2**len(filters),
        width / 2**len(filters), latent_dim)`.

    Example:

    >>> model = framewise_vae(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.latent_shape
    (10, 4, 4, 4)

    Introduced in: course/07_framewise_video_vae.ipynb
    """
    return _video_vae(
        input_shape,
        latent_dim,
        tuple(filters),
        None,
        decoder_convs,
        False,
        seed,
        "framewise_vae",
        fast,
    )


def convlstm_vae(
    input_shape=(20, 64, 64, 1),
    latent_dim=8,
    filters=(16, 32, 64),
    lstm_filters=64,
    decoder_convs=1,
    skip=False,
    seed=None,
    fast=True,
):
    """Builds a video VAE with ConvLSTM layers over time in encoder and decoder.

    Encoder: per-frame strided convolutions, then a `ConvLSTM2D` that reads
    the frames in order (each frame's features now depend on the frames before
    it), then a `GaussianHead` giving each frame a latent map with its own mean
    and log-variance (linear, no ReLU). Decoder: a `ConvLSTM2D` over the latent
    maps, then per-frame transposed convolutions to pixel logits. The loss is
    the ELBO with the KL summed over frames, positions and channels.

    Args:
        input_shape: `(num_frames, height, width, channels)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Channels of each frame's latent map.
        filters: Filters of the downsampling convolutions, encoder order.
        lstm_filters: Filters (hidden channels) of both ConvLSTM layers.
        decoder_convs: Convolutions per resolution in the decoder: the
            transposed convolution that doubles the size, then
            `decoder_convs - 1` 3x3 convolutions at that size. 2 gives sharper
            digits for about 10% more time (`benchmarks/README.md`).
        skip: Concatenate each ConvLSTM's input to its output, so the
            posterior heads see each frame's own features and the upsampling
            sees each frame's own latent, next to what the ConvLSTM carries
            over from earlier frames. Per-frame detail then need not pass
            through the LSTM's gates: sharper frames and a better ELBO, for
            up to 30% more time per epoch (`benchmarks/README.md`).
        seed: Seed of the sampling noise.
        fast: Build with `vaelib.layers.FusedConvLSTM2D` (the input
            convolution hoisted out of the time loop, one fused convolution
            per frame) and `vaelib.layers.PerFrame` (frames folded into the
            batch). `False` builds the same model, with interchangeable
            weights, from `keras.layers.ConvLSTM2D` and `TimeDistributed`:
            slower (see `benchmarks/video_throughput.py`).

    Returns:
        A `VAE`.

    Example:

    >>> model = convlstm_vae(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.decoder.output_shape
    (None, 10, 32, 32, 1)

    Introduced in: course/08_convlstm_video_vae.ipynb
    """
    return _video_vae(
        input_shape,
        latent_dim,
        tuple(filters),
        int(lstm_filters),
        decoder_convs,
        skip,
        seed,
        "convlstm_vae",
        fast,
    )


def convlstm_predictor(
    input_shape=(20, 64, 64, 1),
    context_frames=10,
    latent_dim=8,
    filters=(16, 32, 64),
    lstm_filters=64,
    decoder_convs=1,
    skip=False,
    seed=None,
    fast=True,
):
    """Builds a ConvLSTM VAE that reconstructs the first frames and predicts the rest.

    The model takes whole clips, but its encoder crops them to the first
    `context_frames` frames (`Cropping3D`) before anything else: the frames it
    is asked to predict never reach it, in training or at test time. The
    posterior covers the context frames; the latents of the future frames are
    drawn from the prior N(0, I) (their mean and log-variance are padded with
    zeros, so their KL is 0). The decoder's ConvLSTM carries what it learned
    from the context into the future frames. The loss is the same ELBO: the
    reconstruction term over all frames (context reconstructed, future
    predicted) plus the KL of the context latents.

    Args:
        input_shape: `(num_frames, height, width, channels)`.
        context_frames: Frames the model sees, `0 < context_frames < num_frames`.
        latent_dim, filters, lstm_filters, decoder_convs, skip, seed, fast:
            as in `convlstm_vae`.

    Returns:
        A `VAE`. Use `predict_frames(model, context)` for predictions.

    Example:

    >>> model = convlstm_predictor(input_shape=(10, 32, 32, 1), context_frames=5)
    >>> model.latent_shape
    (10, 4, 4, 8)

    Introduced in: course/09_video_applications.ipynb
    """
    filters = tuple(filters)
    input_shape = _check_clip_shape(input_shape, filters)
    decoder_convs = _check_decoder_convs(decoder_convs)
    num_frames = input_shape[0]
    if not 0 < int(context_frames) < num_frames:
        raise ValueError(
            f"Expected 0 < context_frames < num_frames={num_frames}. "
            f"Received: context_frames={context_frames}"
        )
    future_frames = num_frames - int(context_frames)

    inputs = keras.Input(shape=input_shape, name="clip")
    # (batch, context_frames, height, width, channels): the future is cut off here.
    context = keras.layers.Cropping3D(
        ((0, future_frames), (0, 0), (0, 0)), name="context"
    )(inputs)
    features = _frame_encoder(context, filters, fast)
    features = _temporal(features, int(lstm_filters), "encoder_convlstm", fast, skip)
    z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(features)
    # (batch, num_frames, h, w, latent_dim): the prior's 0 and 0 for future frames.
    prior_padding = ((0, future_frames), (0, 0), (0, 0))
    z_mean = keras.layers.ZeroPadding3D(prior_padding, name="future_mean")(z_mean)
    z_log_var = keras.layers.ZeroPadding3D(prior_padding, name="future_log_var")(
        z_log_var
    )
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

    latent = keras.Input(
        shape=_latent_shape(input_shape, filters, latent_dim), name="z"
    )
    features = _temporal(latent, int(lstm_filters), "decoder_convlstm", fast, skip)
    outputs = _frame_decoder(features, filters, input_shape[-1], fast, decoder_convs)
    decoder = keras.Model(latent, outputs, name="decoder")
    return VAE(
        encoder, decoder, likelihood="bernoulli", seed=seed, name="convlstm_predictor"
    )


def predict_frames(model, context):
    """Predicts the frames after `context` with a `convlstm_predictor`.

    Args:
        model: A model from `convlstm_predictor`.
        context: Clips `(batch, context_frames, height, width, 1)` in [0, 1].

    Returns:
        Probabilities `(batch, num_frames - context_frames, height, width, 1)`:
        the decoder's mean for the future frames, with the future latents at
        the prior's mean.
    """
    context = np.asarray(context, dtype="float32")
    num_frames = model.data_shape[0]
    if context.ndim != 5 or not 0 < context.shape[1] < num_frames:
        raise ValueError(
            "Expected context clips (batch, context_frames, height, width, 1) with "
            f"fewer than {num_frames} frames. Received: shape={context.shape}"
        )
    padded = np.zeros((len(context),) + model.data_shape, "float32")
    padded[:, : context.shape[1]] = context
    return keras.ops.convert_to_numpy(model.reconstruct(padded))[:, context.shape[1] :]


def copy_last_frame(context, future_frames):
    """The baseline predictor: repeat the last context frame `future_frames` times."""
    context = np.asarray(context)
    return np.repeat(context[:, -1:], int(future_frames), axis=1)
