"""How good is a VAE? Likelihood bounds and their per-pixel view."""

import math

import keras
import numpy as np
from keras import ops

from vaelib import losses


def iwae_log_likelihood(model, x, k=100, seed=None, chunk_size=None):
    """Importance-weighted lower bound on `log p(x)` (Burda et al., 2016), per example.

    With `z_1, ..., z_k` drawn from the encoder's q(z | x),

        log p(x) >= L_k = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)

    `L_1` is the ELBO (in expectation), `L_k` rises with `k`, and `L_k` tends
    to `log p(x)` as `k` grows. When q(z | x) is the exact posterior every
    weight equals p(x) and `L_k = log p(x)` for any `k`. The log-weights are
    combined with a log-sum-exp, so nothing under- or overflows, and the `k`
    samples are drawn in chunks, so `k = 1000` needs no more memory than
    `chunk_size` decoder passes.

    Args:
        model: A `vaelib.models.VAE`.
        x: Batch `(batch, ...)` with the model's input shape.
        k: Number of importance samples.
        seed: Integer seed of the samples.
        chunk_size: Samples decoded together; by default as many as keep
            `batch * chunk_size` at or under 4,096 decoder inputs.

    Returns:
        Numpy array `(batch,)`: the bound in nats (higher is better; its
        negative is the "IWAE NLL" of the literature).

    Example:

    >>> from vaelib.models import mlp_vae
    >>> model = mlp_vae(latent_dim=2)
    >>> x = np.full((3, 28, 28, 1), 0.5, "float32")
    >>> iwae_log_likelihood(model, x, k=10, seed=0).shape
    (3,)

    Introduced in: course/03_elbo_in_depth.ipynb
    """
    if int(k) < 1:
        raise ValueError(f"Expected k >= 1. Received: k={k}")
    k = int(k)
    x = model._check_input(x)
    batch_size = x.shape[0]
    if chunk_size is None:
        chunk_size = max(1, 4096 // max(batch_size, 1))
    chunk_size = min(int(chunk_size), k)
    seed_generator = keras.random.SeedGenerator(seed)

    z_mean, z_log_var = model.encoder(x, training=False)
    z_mean = ops.cast(z_mean, "float32")
    z_log_var = ops.cast(z_log_var, "float32")
    log_weights = []
    for start in range(0, k, chunk_size):
        samples = min(chunk_size, k - start)
        # (samples * batch_size, *latent_shape): sample-major copies of the batch
        mean = ops.tile(z_mean, (samples,) + (1,) * (len(z_mean.shape) - 1))
        log_var = ops.tile(z_log_var, (samples,) + (1,) * (len(z_log_var.shape) - 1))
        z = mean + ops.exp(0.5 * log_var) * keras.random.normal(
            ops.shape(mean), seed=seed_generator
        )
        targets = np.tile(x, (samples,) + (1,) * (x.ndim - 1))
        log_likelihood = -model.reconstruction_loss(
            targets, model.decoder(z, training=False)
        )
        log_weight = (
            log_likelihood
            + losses.standard_normal_log_prob(z)
            - losses.diagonal_normal_log_prob(z, mean, log_var)
        )
        log_weights.append(ops.reshape(log_weight, (samples, batch_size)))
    log_weights = ops.concatenate(log_weights, axis=0)
    bound = ops.logsumexp(log_weights, axis=0) - math.log(k)
    return ops.convert_to_numpy(bound)


def bits_per_dim(nll, num_dims):
    """Converts a negative log-likelihood in nats per example to bits per dimension.

    `bits/dim = nll / (num_dims * ln 2)`: the same number as the summed NLL,
    spread over the pixels (or sub-pixels) of an example and counted in bits.

    Args:
        nll: NLL in nats per example (a number or an array).
        num_dims: Dimensions per example (784 for a 28x28x1 image), or the
            shape of one example.

    Returns:
        `nll` in bits per dimension, same type and shape as `nll`.

    Example:

    >>> round(bits_per_dim(784 * math.log(2), (28, 28, 1)), 6)
    1.0

    Introduced in: course/03_elbo_in_depth.ipynb
    """
    if not isinstance(num_dims, int | np.integer):
        num_dims = math.prod(num_dims)
    if num_dims < 1:
        raise ValueError(f"Expected num_dims >= 1. Received: num_dims={num_dims}")
    return nll / (num_dims * math.log(2.0))
