"""A VAE whose encoder and decoder are convolutional networks."""

import keras

from vaelib import _arguments
from vaelib.layers import GaussianHead
from vaelib.models.base import VAE, builds_in_its_policy


@keras.saving.register_keras_serializable(package="vaelib")
class ConvVAE(VAE):
    """A VAE with a strided-convolution encoder and a transposed-conv decoder.

    Encoder: one `Conv2D(f, 3, strides=2, relu)` per entry of `filters` (each
    halves height and width), flatten, `Dense(dense_units, relu)`, then a
    `GaussianHead`. Decoder: `Dense` back to the smallest feature map, one
    `Conv2DTranspose(f, 3, strides=2, relu)` per entry in reverse, and a final
    `Conv2D` with one filter per image channel and no activation (logits or
    means). The sizes are the model's config, so a saved model rebuilds
    itself.

    Args:
        input_shape: `(height, width, channels)`; height and width must be
            divisible by `2 ** len(filters)`.
        latent_dim: Number of latent units.
        filters: Filters of the downsampling convolutions, encoder order.
        dense_units: Width of the dense layer between convolutions and latent.
        likelihood: `"bernoulli"` or `"gaussian"`, see `VAE`.
        decoder_log_var: Log-variance of the Gaussian likelihood, see `VAE`.
        beta: Weight of the KL term, see `VAE`.
        seed: Seed of the sampling noise.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = ConvVAE(input_shape=(28, 28, 1), latent_dim=2)
    >>> model.decoder.output_shape
    (None, 28, 28, 1)

    Introduced in: course/04_conv_vae.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(28, 28, 1),
        latent_dim=2,
        filters=(32, 64),
        dense_units=128,
        likelihood="bernoulli",
        decoder_log_var=0.0,
        beta=1.0,
        seed=None,
        **kwargs,
    ):
        input_shape = _arguments.positive_ints("input_shape", input_shape)
        latent_dim = _arguments.positive_int("latent_dim", latent_dim)
        filters = _arguments.positive_ints("filters", filters)
        dense_units = _arguments.positive_int("dense_units", dense_units)
        if len(input_shape) != 3:
            raise ValueError(
                "Expected input_shape=(height, width, channels). "
                f"Received: input_shape={input_shape}"
            )
        height, width, channels = input_shape
        factor = 2 ** len(filters)
        if height % factor or width % factor:
            raise ValueError(
                f"Expected height and width divisible by {factor} "
                f"(2 ** len(filters)). Received: input_shape={input_shape}, "
                f"filters={filters}"
            )
        small_shape = (height // factor, width // factor, filters[-1])

        inputs = keras.Input(shape=input_shape, name="x")
        features = inputs
        for f in filters:
            features = keras.layers.Conv2D(
                f, 3, strides=2, padding="same", activation="relu"
            )(features)
        features = keras.layers.Flatten()(features)
        features = keras.layers.Dense(dense_units, activation="relu")(features)
        z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(features)
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

        latent = keras.Input(shape=(latent_dim,), name="z")
        features = keras.layers.Dense(dense_units, activation="relu")(latent)
        features = keras.layers.Dense(
            small_shape[0] * small_shape[1] * small_shape[2], activation="relu"
        )(features)
        # (batch_size, height / 2**len(filters), width / 2**len(filters), filters[-1])
        features = keras.layers.Reshape(small_shape)(features)
        for f in reversed(filters):
            features = keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="relu"
            )(features)
        outputs = keras.layers.Conv2D(
            channels, 3, padding="same", name="pixel_parameters"
        )(features)
        decoder = keras.Model(latent, outputs, name="decoder")

        kwargs.setdefault("name", "conv_vae")
        super().__init__(
            encoder,
            decoder,
            likelihood=likelihood,
            decoder_log_var=decoder_log_var,
            beta=beta,
            seed=seed,
            **kwargs,
        )
        self.latent_dim = latent_dim
        self.filters = filters
        self.dense_units = dense_units

    def get_config(self):
        config = self._vae_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "dense_units": self.dense_units,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def conv_vae(
    input_shape=(28, 28, 1),
    latent_dim=2,
    filters=(32, 64),
    dense_units=128,
    likelihood="bernoulli",
    decoder_log_var=0.0,
    beta=1.0,
    seed=None,
    **kwargs,
):
    """Builds a `ConvVAE`: strided convolutions down, transposed convolutions up.

    Args:
        input_shape: `(height, width, channels)`; height and width must be
            divisible by `2 ** len(filters)`.
        latent_dim: Number of latent units.
        filters: Filters of the downsampling convolutions, encoder order.
        dense_units: Width of the dense layer between convolutions and latent.
        likelihood: `"bernoulli"` or `"gaussian"`, see `VAE`.
        beta: Weight of the KL term, see `VAE`.
        seed: Seed of the sampling noise.
        decoder_log_var: see `ConvVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        A `ConvVAE` (a `VAE`), not yet compiled.

    Example:

    >>> model = conv_vae(input_shape=(28, 28, 1), latent_dim=2)
    >>> model.decoder.output_shape
    (None, 28, 28, 1)

    Introduced in: course/04_conv_vae.ipynb
    """
    return ConvVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        filters=filters,
        dense_units=dense_units,
        likelihood=likelihood,
        decoder_log_var=decoder_log_var,
        beta=beta,
        seed=seed,
        **kwargs,
    )
