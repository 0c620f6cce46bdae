"""Video VAEs: frame by frame, with ConvLSTM over time, and for prediction.

All three take clips `(batch, num_frames, height, width, 1)` in [0, 1], use a
Bernoulli likelihood on pixels, and give each frame its own latent map
`(height / 2**len(filters), width / 2**len(filters), latent_dim)` with a mean
and a log-variance, so the latent of a clip is `(num_frames, h, w,
latent_dim)` and its KL to N(0, I) is summed over time, space and channels.
They are `VAE`s: `fit`, `encode`, `decode`, `sample`, `.keras` saving and
every backend work as for the image models.
"""

import warnings

import keras
import numpy as np

from vaelib import _arguments
from vaelib.layers import FusedConvLSTM2D, GaussianHead, PerFrame
from vaelib.models.base import VAE, builds_in_its_policy


def _check_clip_shape(input_shape, filters):
    input_shape = _arguments.positive_ints("input_shape", input_shape)
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


def _latent_shape(input_shape, filters, latent_dim):
    factor = 2 ** len(filters)
    return (
        input_shape[0],
        input_shape[1] // factor,
        input_shape[2] // factor,
        latent_dim,
    )


def _video_sizes(input_shape, latent_dim, filters, decoder_convs):
    filters = _arguments.positive_ints("filters", filters)
    input_shape = _check_clip_shape(input_shape, filters)
    latent_dim = _arguments.positive_int("latent_dim", latent_dim)
    decoder_convs = _arguments.positive_int("decoder_convs", decoder_convs)
    return input_shape, latent_dim, filters, decoder_convs


def _video_networks(
    input_shape, latent_dim, filters, lstm_filters, decoder_convs, skip, fast
):
    """Encoder and decoder of `FramewiseVAE` (no `lstm_filters`) or `ConvLSTMVAE`."""
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
    return encoder, decoder


@keras.saving.register_keras_serializable(package="vaelib")
class FramewiseVAE(VAE):
    """A convolutional VAE applied to every frame of a clip on its own.

    Each frame goes through the same strided convolutions (`PerFrame`),
    gets its own latent map with mean and log-variance, and is decoded by the
    same transposed convolutions. Nothing connects one frame to the next: this
    is the baseline that shows what a video model gains from modelling time.
    The sizes are the model's config, so a saved model rebuilds itself.

    Args:
        input_shape: `(num_frames, height, width, channels)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Channels of each frame's latent map.
        filters: Filters of the downsampling convolutions, encoder order.
        decoder_convs: Convolutions per resolution in the decoder, as in
            `ConvLSTMVAE`.
        seed: Seed of the sampling noise.
        fast: Apply per-frame layers with `vaelib.layers.PerFrame`; `False`
            uses `keras.layers.TimeDistributed` (same model, slower).
        beta: Weight of the KL term, see `VAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = FramewiseVAE(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.latent_shape
    (10, 4, 4, 4)

    Introduced in: course/07_framewise_video_vae.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(20, 64, 64, 1),
        latent_dim=8,
        filters=(16, 32, 64),
        decoder_convs=1,
        seed=None,
        fast=True,
        beta=1.0,
        **kwargs,
    ):
        input_shape, latent_dim, filters, decoder_convs = _video_sizes(
            input_shape, latent_dim, filters, decoder_convs
        )
        fast = _arguments.boolean("fast", fast)
        encoder, decoder = _video_networks(
            input_shape, latent_dim, filters, None, decoder_convs, False, fast
        )
        kwargs.setdefault("name", "framewise_vae")
        super().__init__(encoder, decoder, beta=beta, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        self.filters = filters
        self.decoder_convs = decoder_convs
        self.fast = bool(fast)

    def get_config(self):
        config = self._vae_config()
        # Bernoulli pixels only: not arguments of the video models.
        del config["likelihood"], config["decoder_log_var"]
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "decoder_convs": self.decoder_convs,
                "fast": self.fast,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="vaelib")
class ConvLSTMVAE(VAE):
    """A video VAE with ConvLSTM layers over time in encoder and decoder.

    Encoder: per-frame strided convolutions, then a `ConvLSTM2D` that reads
    the frames in order (each frame's features now depend on the frames before
    it), then a `GaussianHead` giving each frame a latent map with its own mean
    and log-variance (linear, no ReLU). Decoder: a `ConvLSTM2D` over the latent
    maps, then per-frame transposed convolutions to pixel logits. The loss is
    the ELBO with the KL summed over frames, positions and channels. The sizes
    are the model's config, so a saved model rebuilds itself.

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
        beta: Weight of the KL term, see `VAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = ConvLSTMVAE(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.decoder.output_shape
    (None, 10, 32, 32, 1)

    Introduced in: course/08_convlstm_video_vae.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(20, 64, 64, 1),
        latent_dim=8,
        filters=(16, 32, 64),
        lstm_filters=64,
        decoder_convs=1,
        skip=False,
        seed=None,
        fast=True,
        beta=1.0,
        **kwargs,
    ):
        input_shape, latent_dim, filters, decoder_convs = _video_sizes(
            input_shape, latent_dim, filters, decoder_convs
        )
        lstm_filters = _arguments.positive_int("lstm_filters", lstm_filters)
        skip = _arguments.boolean("skip", skip)
        fast = _arguments.boolean("fast", fast)
        encoder, decoder = _video_networks(
            input_shape, latent_dim, filters, lstm_filters, decoder_convs, skip, fast
        )
        kwargs.setdefault("name", "convlstm_vae")
        super().__init__(encoder, decoder, beta=beta, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        self.filters = filters
        self.lstm_filters = lstm_filters
        self.decoder_convs = decoder_convs
        self.skip = bool(skip)
        self.fast = bool(fast)

    def get_config(self):
        config = self._vae_config()
        # Bernoulli pixels only: not arguments of the video models.
        del config["likelihood"], config["decoder_log_var"]
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "lstm_filters": self.lstm_filters,
                "decoder_convs": self.decoder_convs,
                "skip": self.skip,
                "fast": self.fast,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="vaelib")
class ConvLSTMPredictor(VAE):
    """A ConvLSTM VAE that reconstructs the first frames and predicts the rest.

    The model takes whole clips, but its encoder crops them to the first
    `context_frames` frames (`Cropping3D`) before anything else: the frames it
    is asked to predict never reach it, in training or at test time. The
    posterior covers the context frames; the latents of the future frames are
    drawn from the prior N(0, I) (their mean and log-variance are padded with
    zeros, so their KL is 0). The decoder's ConvLSTM carries what it learned
    from the context into the future frames. The loss is the same ELBO: the
    reconstruction term over all frames (context reconstructed, future
    predicted) plus the KL of the context latents. `context_frames` and the
    sizes are the model's config, so a saved predictor knows its context.

    Args:
        input_shape: `(num_frames, height, width, channels)`.
        context_frames: Frames the model sees, `0 < context_frames < num_frames`.
        latent_dim, filters, lstm_filters, decoder_convs, skip, seed, fast,
            beta: as in `ConvLSTMVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = ConvLSTMPredictor(input_shape=(10, 32, 32, 1), context_frames=5)
    >>> model.latent_shape, model.context_frames
    ((10, 4, 4, 8), 5)

    Introduced in: course/10_video_applications.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(20, 64, 64, 1),
        context_frames=10,
        latent_dim=8,
        filters=(16, 32, 64),
        lstm_filters=64,
        decoder_convs=1,
        skip=False,
        seed=None,
        fast=True,
        beta=1.0,
        **kwargs,
    ):
        input_shape, latent_dim, filters, decoder_convs = _video_sizes(
            input_shape, latent_dim, filters, decoder_convs
        )
        lstm_filters = _arguments.positive_int("lstm_filters", lstm_filters)
        context_frames = _arguments.positive_int("context_frames", context_frames)
        num_frames = input_shape[0]
        if not context_frames < num_frames:
            raise ValueError(
                f"Expected 0 < context_frames < num_frames={num_frames}. "
                f"Received: context_frames={context_frames}"
            )
        skip = _arguments.boolean("skip", skip)
        fast = _arguments.boolean("fast", fast)
        future_frames = num_frames - context_frames

        inputs = keras.Input(shape=input_shape, name="clip")
        # (batch, context_frames, height, width, channels): the future is cut off.
        context = keras.layers.Cropping3D(
            ((0, future_frames), (0, 0), (0, 0)), name="context"
        )(inputs)
        features = _frame_encoder(context, filters, fast)
        features = _temporal(features, lstm_filters, "encoder_convlstm", fast, skip)
        z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(features)
        # (batch, num_frames, h, w, latent_dim): the prior's 0 and 0 for the future.
        prior_padding = ((0, future_frames), (0, 0), (0, 0))
        z_mean = keras.layers.ZeroPadding3D(prior_padding, name="future_mean")(z_mean)
        z_log_var = keras.layers.ZeroPadding3D(prior_padding, name="future_log_var")(
            z_log_var
        )
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

        latent = keras.Input(
            shape=_latent_shape(input_shape, filters, latent_dim), name="z"
        )
        features = _temporal(latent, lstm_filters, "decoder_convlstm", fast, skip)
        outputs = _frame_decoder(
            features, filters, input_shape[-1], fast, decoder_convs
        )
        decoder = keras.Model(latent, outputs, name="decoder")

        kwargs.setdefault("name", "convlstm_predictor")
        super().__init__(encoder, decoder, beta=beta, seed=seed, **kwargs)
        self.context_frames = context_frames
        self.latent_dim = latent_dim
        self.filters = filters
        self.lstm_filters = lstm_filters
        self.decoder_convs = decoder_convs
        self.skip = skip
        self.fast = fast

    @property
    def future_frames(self):
        """Frames predicted after the context, `num_frames - context_frames`."""
        return self.data_shape[0] - self.context_frames

    def predict_frames(self, context):
        """Predicts the `future_frames` frames after `context`.

        Args:
            context: Clips `(batch, context_frames, height, width, channels)`
                in [0, 1], exactly `context_frames` frames long.

        Returns:
            Numpy probabilities `(batch, future_frames, height, width,
            channels)`: the decoder's mean for the future frames, with the
            future latents at the prior's mean.
        """
        context = np.asarray(context)
        expected = (self.context_frames,) + self.data_shape[1:]
        if context.ndim != 5 or context.shape[1:] != expected:
            frames = context.shape[1] if context.ndim > 1 else None
            raise ValueError(
                f"Expected context clips of shape (batch_size, "
                f"{', '.join(map(str, expected))}): this predictor's "
                f"context_frames={self.context_frames}. Received: {frames} "
                f"context frames, shape={context.shape}"
            )
        context = _arguments.unit_interval("context", context)
        padded = np.zeros((len(context),) + self.data_shape, "float32")
        padded[:, : self.context_frames] = context
        reconstruction = self.reconstruct(padded)
        return keras.ops.convert_to_numpy(reconstruction)[:, self.context_frames :]

    def get_config(self):
        config = self._vae_config()
        # Bernoulli pixels only: not arguments of the video models.
        del config["likelihood"], config["decoder_log_var"]
        config.update(
            {
                "input_shape": list(self.data_shape),
                "context_frames": self.context_frames,
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "lstm_filters": self.lstm_filters,
                "decoder_convs": self.decoder_convs,
                "skip": self.skip,
                "fast": self.fast,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def framewise_vae(
    input_shape=(20, 64, 64, 1),
    latent_dim=8,
    filters=(16, 32, 64),
    decoder_convs=1,
    seed=None,
    fast=True,
    beta=1.0,
    **kwargs,
):
    """Builds a `FramewiseVAE`: a convolutional VAE applied to every frame alone.

    Args:
        input_shape: `(num_frames, height, width, channels)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Channels of each frame's latent map.
        filters: Filters of the downsampling convolutions, encoder order.
        decoder_convs: Convolutions per resolution in the decoder.
        seed: Seed of the sampling noise.
        fast: `PerFrame` (True) or `keras.layers.TimeDistributed` (False).
        beta: see `FramewiseVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        A `FramewiseVAE` whose latent shape is `(num_frames, height /
        2**len(filters), width / 2**len(filters), latent_dim)`.

    Example:

    >>> model = framewise_vae(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.latent_shape
    (10, 4, 4, 4)

    Introduced in: course/07_framewise_video_vae.ipynb
    """
    return FramewiseVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        filters=filters,
        decoder_convs=decoder_convs,
        seed=seed,
        fast=fast,
        beta=beta,
        **kwargs,
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
    beta=1.0,
    **kwargs,
):
    """Builds a `ConvLSTMVAE`: ConvLSTM layers over time in encoder and decoder.

    Args:
        input_shape: `(num_frames, height, width, channels)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim, filters, lstm_filters, decoder_convs, skip, seed, fast:
            see `ConvLSTMVAE`.
        beta: see `ConvLSTMVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        A `ConvLSTMVAE`, not yet compiled.

    Example:

    >>> model = convlstm_vae(input_shape=(10, 32, 32, 1), latent_dim=4)
    >>> model.decoder.output_shape
    (None, 10, 32, 32, 1)

    Introduced in: course/08_convlstm_video_vae.ipynb
    """
    return ConvLSTMVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        filters=filters,
        lstm_filters=lstm_filters,
        decoder_convs=decoder_convs,
        skip=skip,
        seed=seed,
        fast=fast,
        beta=beta,
        **kwargs,
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
    beta=1.0,
    **kwargs,
):
    """Builds a `ConvLSTMPredictor`: reconstructs the context, predicts the rest.

    Args:
        input_shape: `(num_frames, height, width, channels)`.
        context_frames: Frames the model sees, `0 < context_frames < num_frames`.
        latent_dim, filters, lstm_filters, decoder_convs, skip, seed, fast:
            as in `ConvLSTMVAE`.
        beta: see `ConvLSTMPredictor`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        A `ConvLSTMPredictor`. Use `predict_frames(model, context)` for
        predictions.

    Example:

    >>> model = convlstm_predictor(input_shape=(10, 32, 32, 1), context_frames=5)
    >>> model.latent_shape
    (10, 4, 4, 8)

    Introduced in: course/10_video_applications.ipynb
    """
    return ConvLSTMPredictor(
        input_shape=input_shape,
        context_frames=context_frames,
        latent_dim=latent_dim,
        filters=filters,
        lstm_filters=lstm_filters,
        decoder_convs=decoder_convs,
        skip=skip,
        seed=seed,
        fast=fast,
        beta=beta,
        **kwargs,
    )


def predict_frames(model, context):
    """Predicts the frames after `context` with a `ConvLSTMPredictor`.

    Args:
        model: A `ConvLSTMPredictor` (from `convlstm_predictor`). A predictor
            loaded from an old-format file (a plain `VAE`) is converted first,
            with a warning; `python -m vaelib upgrade-model` converts the file.
        context: Clips `(batch, context_frames, height, width, 1)` in [0, 1],
            exactly `model.context_frames` frames long.

    Returns:
        Probabilities `(batch, num_frames - context_frames, height, width, 1)`:
        the decoder's mean for the future frames, with the future latents at
        the prior's mean.

    Example:

    >>> model = convlstm_predictor(input_shape=(4, 16, 16, 1), context_frames=3,
    ...                            filters=(8,), lstm_filters=8)
    >>> predict_frames(model, np.zeros((2, 3, 16, 16, 1), "float32")).shape
    (2, 1, 16, 16, 1)
    """
    if not isinstance(model, ConvLSTMPredictor):
        from vaelib.models.legacy import is_legacy, upgrade_model

        if not (is_legacy(model) and model.name == "convlstm_predictor"):
            raise ValueError(
                "Expected a ConvLSTMPredictor (from convlstm_predictor). "
                f"Received: {type(model).__name__} named {model.name!r}"
            )
        warnings.warn(
            "predict_frames: an old-format predictor (a plain VAE); converting it "
            "in memory. Convert the file once with `python -m vaelib "
            "upgrade-model OLD.keras --out NEW.keras`.",
            stacklevel=2,
        )
        model = upgrade_model(model)
    return model.predict_frames(context)


def copy_last_frame(context, future_frames):
    """The baseline predictor: repeat the last context frame `future_frames` times.

    Example:

    >>> copy_last_frame(np.arange(6.0).reshape(1, 3, 2, 1, 1), 2)[0, :, :, 0, 0]
    array([[4., 5.],
           [4., 5.]])
    """
    context = np.asarray(context)
    if context.ndim != 5 or context.shape[1] < 1:
        raise ValueError(
            "Expected context clips of shape (batch_size, context_frames >= 1, "
            f"height, width, channels). Received: shape={context.shape}"
        )
    future_frames = _arguments.positive_int("future_frames", future_frames)
    return np.repeat(context[:, -1:], future_frames, axis=1)
