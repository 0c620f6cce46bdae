"""A VAE whose encoder and decoder are multilayer perceptrons."""

import math

import keras

from vaelib import _arguments
from vaelib.layers import GaussianHead
from vaelib.models.base import VAE, builds_in_its_policy


@keras.saving.register_keras_serializable(package="vaelib")
class MLPVAE(VAE):
    """A VAE with fully connected encoder and decoder.

    Encoder: flatten, `Dense(units, relu)` for each entry of `hidden`, then a
    `GaussianHead`. Decoder: the mirror image, ending in a linear `Dense` with
    one unit per pixel, reshaped to `input_shape` (logits for the Bernoulli
    likelihood, means for the Gaussian one). The sizes are the model's config,
    so a saved model rebuilds itself.

    Args:
        input_shape: Shape of one image, e.g. `(28, 28, 1)`.
        latent_dim: Number of latent units.
        hidden: Widths of the hidden layers, encoder order (may be empty).
        likelihood: `"bernoulli"` or `"gaussian"`, see `VAE`.
        decoder_log_var: Log-variance of the Gaussian likelihood, see `VAE`.
        beta: Weight of the KL term, see `VAE`.
        seed: Seed of the sampling noise.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = MLPVAE(input_shape=(28, 28, 1), latent_dim=2, hidden=(256,))
    >>> model.latent_shape
    (2,)

    Introduced in: course/02_mlp_vae.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(28, 28, 1),
        latent_dim=2,
        hidden=(512,),
        likelihood="bernoulli",
        decoder_log_var=0.0,
        beta=1.0,
        seed=None,
        **kwargs,
    ):
        input_shape = _arguments.positive_ints("input_shape", input_shape)
        latent_dim = _arguments.positive_int("latent_dim", latent_dim)
        hidden = _arguments.positive_ints("hidden", hidden, allow_empty=True)
        num_pixels = math.prod(input_shape)

        inputs = keras.Input(shape=input_shape, name="x")
        features = keras.layers.Flatten()(inputs)
        for units in hidden:
            features = keras.layers.Dense(units, activation="relu")(features)
        z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(features)
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

        latent = keras.Input(shape=(latent_dim,), name="z")
        features = latent
        for units in reversed(hidden):
            features = keras.layers.Dense(units, activation="relu")(features)
        features = keras.layers.Dense(num_pixels, name="pixel_parameters")(features)
        outputs = keras.layers.Reshape(input_shape)(features)
        decoder = keras.Model(latent, outputs, name="decoder")

        kwargs.setdefault("name", "mlp_vae")
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
        self.hidden = hidden

    def get_config(self):
        config = self._vae_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "hidden": list(self.hidden),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def mlp_vae(
    input_shape=(28, 28, 1),
    latent_dim=2,
    hidden=(512,),
    likelihood="bernoulli",
    decoder_log_var=0.0,
    beta=1.0,
    seed=None,
    **kwargs,
):
    """Builds an `MLPVAE`: fully connected encoder and decoder.

    Args:
        input_shape: Shape of one image, e.g. `(28, 28, 1)`.
        latent_dim: Number of latent units.
        hidden: Widths of the hidden layers, encoder order.
        likelihood: `"bernoulli"` or `"gaussian"`, see `VAE`.
        beta: Weight of the KL term, see `VAE`.
        seed: Seed of the sampling noise.
        decoder_log_var: see `MLPVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        An `MLPVAE` (a `VAE`), not yet compiled.

    Example:

    >>> model = mlp_vae(input_shape=(28, 28, 1), latent_dim=2, hidden=(256,))
    >>> model.latent_shape
    (2,)

    Introduced in: course/02_mlp_vae.ipynb
    """
    return MLPVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden=hidden,
        likelihood=likelihood,
        decoder_log_var=decoder_log_var,
        beta=beta,
        seed=seed,
        **kwargs,
    )
