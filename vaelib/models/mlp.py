"""A VAE whose encoder and decoder are multilayer perceptrons."""

import math

import keras

from vaelib.layers import GaussianHead
from vaelib.models.base import VAE


def mlp_vae(
    input_shape=(28, 28, 1),
    latent_dim=2,
    hidden=(512,),
    likelihood="bernoulli",
    beta=1.0,
    seed=None,
):
    """Builds a VAE with fully connected encoder and decoder.

    Encoder: flatten, `Dense(units, relu)` for each entry of `hidden`, then a
    `GaussianHead`. Decoder: the mirror image, ending in a linear `Dense` with
    one unit per pixel, reshaped to `input_shape` (logits for the Bernoulli
    likelihood, means for the Gaussian one).

    Args:
        input_shape: Shape of one image, e.g. `(28, 28, 1)`.
        latent_dim: Number of latent units.
        hidden: Widths of the hidden layers, encoder order.
        likelihood: `"bernoulli"` or `"gaussian"`, see `VAE`.
        beta: Weight of the KL term, see `VAE`.
        seed: Seed of the sampling noise.

    Returns:
        A `VAE`, not yet compiled.

    Example:

    >>> model = mlp_vae(input_shape=(28, 28, 1), latent_dim=2, hidden=(256,))
    >>> model.latent_shape
    (2,)

    Introduced in: course/02_mlp_vae.ipynb
    """
    input_shape = tuple(int(d) for d in input_shape)
    hidden = tuple(int(h) for h in hidden)
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

    return VAE(
        encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, name="mlp_vae"
    )
