"""The two terms of the ELBO, as pure functions.

Every function returns one value per example, in nats, **summed** over every
non-batch axis (pixels, frames, latent dimensions). Never averaged: the ELBO
is a sum of log-densities, and averaging the reconstruction term over 784
pixels while summing the KL over 2 latents (or the other way round) silently
multiplies the KL by a constant, an implicit `beta` that changes which model
you fit. Use `vaelib.metrics.bits_per_dim` for a per-pixel view of the same
numbers.
"""

import math

import keras
import numpy as np
from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _sum_over_non_batch_axes(values):
    rank = len(values.shape)
    if rank < 2:
        return values
    return ops.sum(values, axis=tuple(range(1, rank)))


def _check_floating(name, value):
    dtype = keras.backend.standardize_dtype(value.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"Expected `{name}` to be a floating-point tensor. Received: "
            f"{name}.dtype={dtype}"
        )


def _known_values(value):
    """The values of an eager tensor or array; None while tracing (jit, graph)."""
    try:
        return np.asarray(ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 - a symbolic tensor has no values yet
        return None


def _check_same_shape(name_a, a, name_b, b):
    shape_a, shape_b = tuple(a.shape), tuple(b.shape)
    if len(shape_a) != len(shape_b) or any(
        i is not None and j is not None and i != j
        for i, j in zip(shape_a, shape_b, strict=True)
    ):
        raise ValueError(
            f"Expected `{name_a}` and `{name_b}` to have the same shape. "
            f"Received: {name_a}.shape={shape_a}, {name_b}.shape={shape_b}"
        )


def gaussian_kl(z_mean, z_log_var, prior_mean=None, prior_log_var=None):
    """KL divergence from N(z_mean, exp(z_log_var)) to a diagonal Gaussian prior.

    For a diagonal Gaussian posterior with mean `mu` and log-variance
    `log_var`, the Kullback-Leibler divergence to the standard normal prior
    N(0, I) (the default) has the closed form

        KL = 0.5 * sum(exp(log_var) + mu**2 - 1 - log_var)

    computed here as `0.5 * sum(expm1(log_var) - log_var + mu**2)`, which keeps
    full precision when `log_var` is near zero. It is zero exactly when
    `mu = 0` and `log_var = 0`, and never negative.

    With a learned prior N(prior_mean, exp(prior_log_var)) (for instance
    p(z_t | z_<t) of a sequential model), the closed form between the two
    diagonal Gaussians is, with `d = log_var - prior_log_var`,

        KL = 0.5 * sum(expm1(d) - d + (mu - prior_mean)**2 * exp(-prior_log_var))

    which is the formula above when `prior_mean = 0` and `prior_log_var = 0`.
    A missing `prior_mean` or `prior_log_var` counts as 0.

    Args:
        z_mean: Tensor `(batch, ...)` of posterior means.
        z_log_var: Tensor of the same shape, posterior log-variances.
        prior_mean: Optional tensor of the same shape, the prior's means.
        prior_log_var: Optional tensor of the same shape, the prior's
            log-variances.

    Returns:
        Tensor `(batch,)`: the KL of each example in nats, summed over every
        non-batch axis (latent units, and frames for video).

    Example:

    >>> float(gaussian_kl(ops.zeros((1, 3)), ops.zeros((1, 3)))[0])
    0.0
    >>> kl = gaussian_kl(ops.ones((1, 3)), ops.zeros((1, 3)), ops.ones((1, 3)))
    >>> float(kl[0])
    0.0

    Introduced in: course/02_mlp_vae.ipynb
    """
    z_mean = ops.convert_to_tensor(z_mean)
    z_log_var = ops.convert_to_tensor(z_log_var)
    _check_floating("z_mean", z_mean)
    _check_floating("z_log_var", z_log_var)
    _check_same_shape("z_mean", z_mean, "z_log_var", z_log_var)
    # float32 and float64 (say) meet in the wider of the two
    dtype = keras.backend.result_type(z_mean.dtype, z_log_var.dtype)
    z_mean, z_log_var = ops.cast(z_mean, dtype), ops.cast(z_log_var, dtype)
    if prior_mean is None and prior_log_var is None:
        per_unit = 0.5 * (ops.expm1(z_log_var) - z_log_var + ops.square(z_mean))
        return _sum_over_non_batch_axes(per_unit)
    squared_distance = ops.square(z_mean)
    if prior_mean is not None:
        prior_mean = ops.cast(ops.convert_to_tensor(prior_mean), z_mean.dtype)
        _check_same_shape("z_mean", z_mean, "prior_mean", prior_mean)
        squared_distance = ops.square(z_mean - prior_mean)
    log_var_difference = z_log_var
    if prior_log_var is not None:
        prior_log_var = ops.cast(ops.convert_to_tensor(prior_log_var), z_mean.dtype)
        _check_same_shape("z_log_var", z_log_var, "prior_log_var", prior_log_var)
        log_var_difference = z_log_var - prior_log_var
        squared_distance = squared_distance * ops.exp(-prior_log_var)
    per_unit = 0.5 * (
        ops.expm1(log_var_difference) - log_var_difference + squared_distance
    )
    return _sum_over_non_batch_axes(per_unit)


def bernoulli_nll(x, logits):
    """Negative log-likelihood of `x` under Bernoulli(sigmoid(logits)), per example.

    `-log p(x | logits) = sum(softplus(logits) - x * logits)`, the binary
    cross-entropy computed from logits (through `keras.ops.binary_crossentropy`
    with `from_logits=True`, which is stable for large `|logits|`). For `x` in
    `{0, 1}` this is an exact log-likelihood; for grey values in `[0, 1]` it is
    the usual continuous relaxation.

    Args:
        x: Targets `(batch, ...)`, values in `[0, 1]`.
        logits: Decoder outputs before the sigmoid, same shape as `x`.

    Returns:
        Tensor `(batch,)` in nats, summed over every non-batch axis.

    Example:

    >>> x = ops.ones((1, 4))
    >>> round(float(bernoulli_nll(x, ops.zeros((1, 4)))[0]), 4)  # 4 * log 2
    2.7726

    Introduced in: course/02_mlp_vae.ipynb
    """
    logits = ops.convert_to_tensor(logits)
    _check_floating("logits", logits)
    values = _known_values(x)
    if values is not None and values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            "Expected `x` in [0, 1] for a Bernoulli likelihood (divide 8-bit "
            f"images by 255). Received: min={values.min():.4g}, "
            f"max={values.max():.4g}"
        )
    x = ops.cast(ops.convert_to_tensor(x), logits.dtype)
    _check_same_shape("x", x, "logits", logits)
    per_pixel = ops.binary_crossentropy(x, logits, from_logits=True)
    return _sum_over_non_batch_axes(per_pixel)


def gaussian_nll(x, mean, log_var):
    """Negative log-likelihood of `x` under N(mean, exp(log_var)), per example.

    `-log p(x) = 0.5 * sum(log(2 pi) + log_var + (x - mean)**2 / exp(log_var))`.

    Args:
        x: Targets `(batch, ...)`.
        mean: Means, same shape as `x`.
        log_var: Log-variances, broadcastable to `x` (a float for a fixed
            observation noise shared by every pixel).

    Returns:
        Tensor `(batch,)` in nats, summed over every non-batch axis.

    Example:

    >>> nll = gaussian_nll(ops.zeros((1, 2)), ops.zeros((1, 2)), 0.0)
    >>> round(float(nll[0]), 4)  # log(2 pi)
    1.8379

    Introduced in: course/03_elbo_in_depth.ipynb
    """
    mean = ops.convert_to_tensor(mean)
    _check_floating("mean", mean)
    x = ops.cast(ops.convert_to_tensor(x), mean.dtype)
    _check_same_shape("x", x, "mean", mean)
    log_var = ops.cast(ops.convert_to_tensor(log_var), mean.dtype)
    log_var = ops.broadcast_to(log_var, ops.shape(x))
    per_pixel = 0.5 * (LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var))
    return _sum_over_non_batch_axes(per_pixel)


def standard_normal_log_prob(z):
    """`log N(z; 0, I)` per example, summed over non-batch axes (nats)."""
    z = ops.convert_to_tensor(z)
    return _sum_over_non_batch_axes(-0.5 * (ops.square(z) + LOG_2PI))


def diagonal_normal_log_prob(z, mean, log_var):
    """`log N(z; mean, exp(log_var))` per example, summed over non-batch axes."""
    return -gaussian_nll(z, mean, log_var)
