"""Checks for assignments: each exercises a learner's answer and explains faults.

Every check draws its own inputs, compares with an independent reference
(a float64 formula, an analytic gradient, a baseline measured in the same
call), and raises an `AssertionError` whose message says what is wrong and
hints at the fix, without printing the expected values. A check that passes
returns a short message saying what it verified.

Each check takes `seed`. Without one it uses the public `SEED`: these are the
visible tests learners run while they work. The hidden tests in the
assignments' source notebooks pass `seed=grading_seed()`, a number chosen when
grading (`python -m vaelib grade` sets `$VAELIB_GRADING_SEED`, random unless
the instructor fixes it), so no answer can be tuned to inputs known in
advance.

    >>> from keras import ops
    >>> from vaelib import checks
    >>> def my_gaussian_kl(z_mean, z_log_var):
    ...     terms = 0.5 * (ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)
    ...     return ops.sum(ops.reshape(terms, (ops.shape(terms)[0], -1)), axis=-1)
    >>> checks.check_gaussian_kl(my_gaussian_kl)
    'gaussian_kl: values on 6 random shapes (up to 4-D) and gradients correct.'

| check | task |
| --- | --- |
| `check_sampling` | the reparameterisation trick: moments, Gaussian noise, gradients |
| `check_gaussian_kl` | the analytic KL to N(0, I), values and gradients |
| `check_vae_loss` | the negative ELBO of a Bernoulli VAE, values and gradients |
| `check_encoder` | an encoder with mean and log-variance heads |
| `check_trained_image_vae` | a trained VAE reaching a held-out ELBO, measured here |
| `check_frame_predictor` | a video predictor beating simple baselines on new clips |
| `check_written_by_hand` | an answer that is not `vaelib`'s own implementation |

Grading submitted notebooks with nbgrader: `vaelib.grading` and
course/INSTRUCTORS.md.

Introduced in: course/assignments/
"""

import dis
import inspect
import logging
import math
import os
import pathlib
import secrets
import types
import warnings

import keras
import numpy as np
from keras import ops

from vaelib.grading import (
    ANSWERS_VARIABLE,
    GRADING_SEED_VARIABLE,
    HAND_IN_VARIABLE,
    PREDICTOR_MARGIN,
    RemoteAnswer,
    read_arrays,
    send_arrays,
)

SEED = 20_261_124

# Held-out negative ELBO (nats per image) a trained conv VAE must reach, per
# digit source: MNIST is harder to compress than scikit-learn's smooth digits.
IMAGE_VAE_TARGETS = {"mnist": 135.0, "sklearn": 150.0}


def grading_seed():
    """The seed of the hidden tests: `$VAELIB_GRADING_SEED`, else a fresh one."""
    value = os.environ.get(GRADING_SEED_VARIABLE, "").strip()
    if value:
        try:
            return int(value)
        except ValueError:
            raise ValueError(
                f"Expected ${GRADING_SEED_VARIABLE} to be an integer. "
                f"Received: {value!r}"
            ) from None
    return secrets.randbelow(2**31)


def _rng(seed, offset):
    return np.random.default_rng([offset, SEED if seed is None else int(seed)])


def _numpy(value):
    return np.asarray(ops.convert_to_numpy(value), dtype="float64")


def _fail(message):
    raise AssertionError(message)


def _call(function, *args, name):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args)
    except NotImplementedError:
        _fail(f"{name} is not written yet: it raised NotImplementedError.")


def _random_latents(rng, shape, scale=1.5):
    z_mean = rng.normal(0.0, scale, shape).astype("float32")
    z_log_var = rng.uniform(-3.0, 2.0, shape).astype("float32")
    return z_mean, z_log_var


def _reference_kl(z_mean, z_log_var):
    axes = tuple(range(1, z_mean.ndim))
    z_mean, z_log_var = z_mean.astype("float64"), z_log_var.astype("float64")
    return 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var, axis=axes)


def _gradients(function, inputs, weights, name):
    """`function(*inputs)` and the gradients of `sum(weights * output)`.

    Computed by the backend's autodiff; an input that the output does not
    depend on differentiably (NumPy code, a constant) gets `None`.
    """
    if isinstance(function, RemoteAnswer):  # the grader's process: ask the kernel
        return function.vjp(inputs, np.asarray(weights, "float32"))
    backend = keras.backend.backend()
    weights = np.asarray(weights, "float32")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if backend == "tensorflow":
                import tensorflow as tf

                tensors = [tf.constant(x) for x in inputs]
                with tf.GradientTape() as tape:
                    for tensor in tensors:
                        tape.watch(tensor)
                    output = tf.cast(
                        tf.convert_to_tensor(function(*tensors)), "float32"
                    )
                    total = tf.reduce_sum(output * weights)
                gradients = tape.gradient(total, tensors)
            elif backend == "jax":
                import jax

                def as_float(*arguments):
                    return jax.numpy.asarray(function(*arguments), "float32")

                with keras.StatelessScope():
                    output, backward = jax.vjp(
                        as_float, *(jax.numpy.asarray(x) for x in inputs)
                    )
                    gradients = backward(jax.numpy.broadcast_to(weights, output.shape))
            elif backend == "torch":
                import torch

                tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
                output = torch.as_tensor(function(*tensors)).float()
                if output.requires_grad:
                    (output * torch.as_tensor(weights)).sum().backward()
                gradients = [tensor.grad for tensor in tensors]
                output = output.detach()
            else:
                raise NotImplementedError(f"no autodiff for backend {backend}")
    except NotImplementedError:
        _fail(f"{name} is not written yet: it raised NotImplementedError.")
    except Exception as error:  # noqa: BLE001 - NumPy code under a tracer fails
        _fail(
            f"No gradient reaches the inputs of {name}: it cannot be differentiated "
            f"({type(error).__name__}). Write it with keras.ops (not NumPy) so "
            "training can follow its gradient."
        )
    return _numpy(output), [None if g is None else _numpy(g) for g in gradients]


def _check_gradient(gradient, expected, name, what, hint):
    if gradient is None or not np.any(gradient):
        _fail(
            f"No gradient reaches {what} through {name}: write it with keras.ops "
            "(not NumPy, not a constant) so training can follow its gradient."
        )
    if not np.allclose(gradient, expected, rtol=1e-3, atol=1e-4):
        _fail(f"The gradient of {name} with respect to {what} is wrong: {hint}.")


def _attributes_loaded_from(code, symbol):
    """The attribute names `code` loads from the global `symbol` (`symbol.x`)."""
    instructions = list(dis.get_instructions(code))
    for before, after in zip(instructions, instructions[1:], strict=False):
        if (
            before.opname in ("LOAD_GLOBAL", "LOAD_NAME")
            and before.argval == symbol
            and after.opname in ("LOAD_ATTR", "LOAD_METHOD")
        ):
            yield after.argval


def check_written_by_hand(*answers, allowed=()):
    """Checks that no answer is, or calls by name, `vaelib`'s own version.

    For assignments whose point is to write a piece by hand: an answer that is
    `vaelib.layers.Sampling`, `vaelib.losses.gaussian_kl` or a model builder
    from `vaelib.models` fails, and so does one that reaches one of them: by
    name in its code, through a module (`import vaelib.losses as vl;
    vl.gaussian_kl`, judged by the attribute used, so an alias to an allowed
    building block passes), as a base class, a default argument or a
    variable its closure keeps. Names reached some other way (through
    `importlib` or `getattr` with a computed string, say) are not detected:
    the instructor reads the code.

    Args:
        answers: Functions, classes or Keras layers written in the notebook.
        allowed: Names from `vaelib` the assignment allows (building blocks).
    """
    library = ("vaelib.layers", "vaelib.losses", "vaelib.models", "vaelib.metrics")

    def from_library(value):
        module = getattr(value, "__module__", None) or ""
        return module.startswith(library)

    def codes(answer):
        if isinstance(answer, keras.layers.Layer):
            answer = type(answer)
        if inspect.isclass(answer):
            for value in vars(answer).values():
                yield from codes(value)
            return
        code = getattr(answer, "__code__", None)
        if code is None:
            return
        pending = [(code, getattr(answer, "__globals__", {}))]
        while pending:
            code, namespace = pending.pop()
            yield code, namespace
            pending += [(c, namespace) for c in code.co_consts if inspect.iscode(c)]

    def reached(answer):
        """(name, value) pairs an answer holds besides the names in its code:
        base classes, default arguments and the variables a closure keeps."""
        if isinstance(answer, keras.layers.Layer):
            answer = type(answer)
        if inspect.isclass(answer):
            for base in inspect.getmro(answer)[1:]:
                yield base.__name__, base
            for value in vars(answer).values():
                yield from reached(value)
            return
        for value in getattr(answer, "__defaults__", None) or ():
            yield getattr(value, "__name__", type(value).__name__), value
        for key, value in (getattr(answer, "__kwdefaults__", None) or {}).items():
            yield key, value
        code = getattr(answer, "__code__", None)
        for symbol, cell in zip(
            getattr(code, "co_freevars", ()),
            getattr(answer, "__closure__", None) or (),
            strict=False,
        ):
            try:
                yield symbol, cell.cell_contents
            except ValueError:  # an empty cell
                continue

    def refuse(name, symbol, value):
        _fail(
            f"{name} uses vaelib's {getattr(value, '__name__', symbol)} "
            f"({value.__module__}): this assignment asks you to write it yourself."
        )

    for answer in answers:
        target = type(answer) if isinstance(answer, keras.layers.Layer) else answer
        name = getattr(target, "__name__", type(target).__name__)
        if from_library(target):
            _fail(
                f"{name} is vaelib's own version ({target.__module__}): this "
                "assignment asks you to write it yourself."
            )
        for symbol, value in reached(answer):
            allowed_name = getattr(value, "__name__", symbol) in allowed
            if not allowed_name and not inspect.ismodule(value) and from_library(value):
                refuse(name, symbol, value)
        for code, namespace in codes(answer):
            for symbol in code.co_names:
                value = namespace.get(symbol)
                if isinstance(value, types.ModuleType):
                    if value.__name__.startswith(library) or value.__name__ == "vaelib":
                        # judge what is reached through the module (an alias
                        # such as `import vaelib.layers as vl` included): the
                        # attributes the code loads from it
                        for attribute in _attributes_loaded_from(code, symbol):
                            reached_value = getattr(value, attribute, None)
                            if (
                                attribute not in allowed
                                and reached_value is not None
                                and not inspect.ismodule(reached_value)
                                and from_library(reached_value)
                            ):
                                refuse(name, attribute, reached_value)
                elif symbol in allowed:
                    continue
                elif value is not None and from_library(value):
                    _fail(
                        f"{name} calls vaelib's {symbol} ({value.__module__}): "
                        "this assignment asks you to write it yourself."
                    )
    return "written by hand: no vaelib implementation used."


def check_sampling(sample, seed=None):
    """Checks `sample(z_mean, z_log_var) -> z`, the reparameterisation trick.

    `z` must have `z_mean`'s shape, mean `z_mean` and variance
    `exp(z_log_var)`, Gaussian noise (a normality test that uniform or other
    noise of the right variance fails), fresh noise on every call and row,
    exactly `z_mean` when the variance is zero, and gradients `dz/dz_mean = 1`
    and `dz/dz_log_var = (z - z_mean) / 2`.

    Args:
        sample: A function or a Keras layer called on `(z_mean, z_log_var)`;
            a layer (like `vaelib.layers.Sampling`) receives them as one tuple.
        seed: The inputs' seed; `None` for the public one.
    """
    from scipy import stats

    rng = _rng(seed, 1)
    is_layer = isinstance(sample, keras.layers.Layer)

    def call_layer(z_mean, z_log_var):
        return sample((z_mean, z_log_var))

    call = call_layer if is_layer else sample

    def draw(z_mean, z_log_var):
        return _numpy(_call(call, z_mean, z_log_var, name="sample"))

    rows, columns = 20_000, int(rng.integers(2, 5))
    z_mean = np.tile(rng.normal(0, 2, columns), (rows, 1)).astype("float32")
    z_log_var = np.tile(rng.uniform(-2, 1.5, columns), (rows, 1)).astype("float32")
    z = draw(z_mean, z_log_var)
    if z.shape != z_mean.shape:
        _fail(
            f"sample returned shape {z.shape} for z_mean of shape {z_mean.shape}: "
            "z has one value per latent dimension and example."
        )
    if np.allclose(z[0], z[1:3]):
        _fail(
            "Rows with the same z_mean and z_log_var got the same z: draw the "
            "noise with the full shape of z_mean, one value per example."
        )
    standard_deviation = np.exp(0.5 * z_log_var[0].astype("float64"))
    mean, variance = z.mean(axis=0), z.var(axis=0)
    if np.any(np.abs(mean - z_mean[0]) > 6 * standard_deviation / np.sqrt(rows) + 1e-3):
        _fail("The mean of z is not z_mean: is z_mean added to the scaled noise?")
    ratio = variance / standard_deviation**2
    if np.any(np.abs(ratio - 1) > 0.1):
        hint = "the standard deviation is the square root of the variance"
        if np.allclose(variance, np.exp(2 * z_log_var[0]), rtol=0.1):
            hint = "exp(z_log_var) is the variance, not the standard deviation"
        elif np.allclose(variance, z_log_var[0] ** 2, rtol=0.1):
            hint = "z_log_var is a log-variance; the noise needs a standard deviation"
        _fail(f"The variance of z is not exp(z_log_var): {hint}.")
    noise = ((z - z_mean[0]) / standard_deviation).ravel()
    statistic, p_value = stats.kstest(noise, "norm")
    if p_value < 1e-6:
        kurtosis = float(stats.kurtosis(noise))
        shape = "lighter" if kurtosis < 0 else "heavier"
        _fail(
            "The noise is not Gaussian (a Kolmogorov-Smirnov test rejects it, "
            f"its tails are {shape} than a normal's): the reparameterisation "
            "needs standard normal noise, not just any noise of unit variance."
        )
    first, second = draw(z_mean[:4], z_log_var[:4]), draw(z_mean[:4], z_log_var[:4])
    if np.allclose(first, second):
        _fail(
            "Two calls gave the same z: keep a keras.random.SeedGenerator and "
            "pass it as the seed, so each call draws new noise."
        )
    shape = (3, 4, 4, 2)
    z_mean = rng.normal(0, 1, shape).astype("float32")
    z = draw(z_mean, np.full(shape, -40.0, "float32"))
    if z.shape != shape or not np.allclose(z, z_mean, atol=1e-4):
        _fail(
            "With z_log_var = -40 (no variance) z must equal z_mean, also for 4-D "
            f"latent maps {shape}: check the shape of the noise and the formula."
        )
    z_mean, z_log_var = _random_latents(rng, (64, 3))
    weights = np.ones((64, 3), "float32")
    z, (mean_gradient, log_var_gradient) = _gradients(
        call, [z_mean, z_log_var], weights, "sample"
    )
    _check_gradient(
        mean_gradient, weights, "sample", "z_mean", "z moves one for one with z_mean"
    )
    _check_gradient(
        log_var_gradient,
        0.5 * (z - z_mean),
        "sample",
        "z_log_var",
        "the noise is scaled by the standard deviation computed from z_log_var",
    )
    return "sample: mean, variance, Gaussian fresh noise, 4-D maps and gradients."


def check_gaussian_kl(gaussian_kl, seed=None):
    """Checks `gaussian_kl(z_mean, z_log_var) -> (batch,)` in nats.

    Compared with `0.5 * sum(exp(log_var) + mean**2 - 1 - log_var)` over every
    non-batch axis, in float64, on random shapes from 2-D to 4-D, and its
    autodiff gradients with the analytic ones (`z_mean` and
    `(exp(z_log_var) - 1) / 2`).
    """
    rng = _rng(seed, 2)
    value = _numpy(
        _call(
            gaussian_kl,
            np.zeros((2, 1), "float32"),
            np.array([[1.0], [-1.0]], "float32"),
            name="gaussian_kl",
        )
    )
    if np.any(value < 0):
        _fail(
            "gaussian_kl is negative for z_mean=0, z_log_var=[1, -1]: the KL is "
            "never negative. Check the signs of the exp(z_log_var) and z_log_var terms."
        )
    shapes = [
        (int(rng.integers(1, 9)), int(rng.integers(1, 17))),
        (int(rng.integers(2, 9)), int(rng.integers(2, 17))),
        (3, 4, int(rng.integers(2, 7))),
        (2, 3, 3, int(rng.integers(2, 9))),
        (4, 8, 8, 1),
        (5, 2),
    ]
    for shape in shapes:
        z_mean, z_log_var = _random_latents(rng, shape)
        value = _numpy(_call(gaussian_kl, z_mean, z_log_var, name="gaussian_kl"))
        expected = _reference_kl(z_mean, z_log_var)
        if value.shape != expected.shape:
            hint = (
                "you reduced over the batch too; keep one value per example"
                if value.ndim == 0
                else "sum over every axis except the first (the batch)"
            )
            _fail(
                f"gaussian_kl returned shape {value.shape} for latents of shape "
                f"{shape}: {hint}."
            )
        if np.allclose(value, expected, rtol=1e-4, atol=1e-4):
            continue
        dims = math.prod(shape[1:])
        if np.any(value < -1e-5):
            hint = (
                "the KL is never negative: check the signs of the exp(z_log_var) "
                "and z_log_var terms"
            )
        elif dims > 1 and np.allclose(value * dims, expected, rtol=1e-4):
            hint = "you averaged over latent dimensions; sum them (a mean is a beta)"
        elif np.allclose(value, 2 * expected, rtol=1e-4):
            hint = "look at the constant factor in front of the sum"
        elif np.allclose(value, expected + 0.5 * dims, rtol=1e-4):
            hint = "a constant term inside the sum is missing"
        else:
            hint = "compare each term with the formula in the task"
        _fail(f"gaussian_kl is wrong on latents of shape {shape}: {hint}.")
    zeros = np.zeros((3, 5), "float32")
    at_prior = _numpy(_call(gaussian_kl, zeros, zeros, name="gaussian_kl"))
    if not np.allclose(at_prior, 0, atol=1e-6):
        _fail("gaussian_kl of N(0, I) to itself must be 0.")
    shape = (int(rng.integers(2, 9)), 2, int(rng.integers(2, 7)))
    z_mean, z_log_var = _random_latents(rng, shape)
    weights = rng.uniform(0.5, 2.0, shape[0]).astype("float32")
    _, (mean_gradient, log_var_gradient) = _gradients(
        gaussian_kl, [z_mean, z_log_var], weights, "gaussian_kl"
    )
    column = weights.reshape(-1, 1, 1)
    _check_gradient(
        mean_gradient, column * z_mean, "gaussian_kl", "z_mean", "see the mean term"
    )
    _check_gradient(
        log_var_gradient,
        column * 0.5 * (np.exp(z_log_var.astype("float64")) - 1.0),
        "gaussian_kl",
        "z_log_var",
        "see the two z_log_var terms",
    )
    return (
        f"gaussian_kl: values on {len(shapes)} random shapes (up to 4-D) and "
        "gradients correct."
    )


def check_vae_loss(vae_loss, seed=None):
    """Checks `vae_loss(x, logits, z_mean, z_log_var) -> (batch,)`, the -ELBO.

    The per-example negative ELBO of a Bernoulli VAE: the binary cross-entropy
    of `x` given the decoder's `logits`, summed over pixels, plus the Gaussian
    KL summed over latent dimensions, in nats; and its autodiff gradients
    (`sigmoid(logits) - x` for the logits, the KL's for the latents).
    """
    rng = _rng(seed, 3)
    batch = int(rng.integers(3, 9))
    image = (int(rng.integers(4, 8)), int(rng.integers(4, 8)), 1)
    latent = (int(rng.integers(2, 6)),)
    x = (rng.random((batch, *image)) < 0.4).astype("float32")
    logits = rng.normal(0, 3, (batch, *image)).astype("float32")
    z_mean, z_log_var = _random_latents(rng, (batch, *latent))
    value = _numpy(_call(vae_loss, x, logits, z_mean, z_log_var, name="vae_loss"))

    def cross_entropy(p):
        return -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=(1, 2, 3))

    p = 1 / (1 + np.exp(-logits.astype("float64")))
    bce = cross_entropy(p)
    kl = _reference_kl(z_mean, z_log_var)
    if value.shape != (batch,):
        _fail(
            f"vae_loss returned shape {value.shape} for a batch of {batch}: return "
            "one negative ELBO per example (Keras' fit averages over the batch)."
        )
    if not np.allclose(value, bce + kl, rtol=1e-4):
        pixels = math.prod(image)
        mse = np.square(x - p).sum(axis=(1, 2, 3))
        candidates = [
            (bce, "the KL term is missing: the ELBO is reconstruction + KL"),
            (bce - kl, "the KL has the wrong sign in the negative ELBO"),
            (bce / pixels + kl, "the reconstruction is averaged over pixels; sum it"),
            (mse + kl, "the reconstruction is a squared error, not the Bernoulli NLL"),
            (mse, "the loss is a plain squared error with no KL: an autoencoder's"),
            (
                mse / pixels,
                "the loss is a squared error averaged over pixels with no KL, an "
                "autoencoder's loss: a VAE needs a likelihood and a KL",
            ),
            (
                cross_entropy(1 / (1 + np.exp(-p))) + kl,
                "the sigmoid is applied twice: the decoder already gives logits",
            ),
        ]
        for candidate, hint in candidates:
            if np.allclose(value, candidate, rtol=1e-3):
                _fail(f"vae_loss is wrong: {hint}.")
        _fail(
            "vae_loss differs from the binary cross-entropy from logits summed "
            "over pixels plus the KL summed over latent dimensions."
        )
    weights = rng.uniform(0.5, 2.0, batch).astype("float32")
    _, gradients = _gradients(
        vae_loss, [x, logits, z_mean, z_log_var], weights, "vae_loss"
    )
    pixel_weights = weights.reshape(-1, 1, 1, 1)
    _check_gradient(
        gradients[1],
        pixel_weights * (p - x),
        "vae_loss",
        "the logits",
        "use the cross-entropy from logits",
    )
    row = weights.reshape(-1, 1)
    _check_gradient(
        gradients[2], row * z_mean, "vae_loss", "z_mean", "check the KL term"
    )
    _check_gradient(
        gradients[3],
        row * 0.5 * (np.exp(z_log_var.astype("float64")) - 1.0),
        "vae_loss",
        "z_log_var",
        "check the KL term",
    )
    return "vae_loss: reconstruction (summed BCE) + KL per example, with gradients."


def check_encoder(encoder, input_shape, latent_dim, seed=None):
    """Checks an encoder model: `(z_mean, z_log_var)`, unconstrained, per example.

    Args:
        encoder: A Keras model or function mapping images to two tensors.
        input_shape: Shape of one input, e.g. `(28, 28, 1)`.
        latent_dim: Expected size of each latent vector.
        seed: The inputs' seed; `None` for the public one.
    """
    rng = _rng(seed, 4)
    x = rng.random((16, *input_shape)).astype("float32")
    outputs = _call(encoder, x, name="encoder")
    if not isinstance(outputs, list | tuple) or len(outputs) != 2:
        _fail(
            "The encoder must return two tensors, (z_mean, z_log_var): a VAE "
            "needs a mean head and a log-variance head, not one code."
        )
    z_mean, z_log_var = (_numpy(t) for t in outputs)
    for name, value in (("z_mean", z_mean), ("z_log_var", z_log_var)):
        if value.shape != (16, latent_dim):
            _fail(
                f"{name} has shape {value.shape} for 16 inputs: expected one "
                f"vector of size latent_dim={latent_dim} per input."
            )
    if (z_mean >= 0).all():
        _fail(
            "Every z_mean is >= 0 on random inputs: the mean head must be linear "
            "(no ReLU), because the prior N(0, I) puts half its mass below 0."
        )
    if np.allclose(z_mean, z_log_var):
        _fail("z_mean and z_log_var are equal: use two separate heads (two layers).")
    if np.allclose(z_mean[0], z_mean[1:]):
        _fail("Every input got the same z_mean: the heads ignore the input.")
    return "encoder: two linear heads with per-example outputs."


def _batches(function, values, batch_size=250):
    return np.concatenate(
        [
            _numpy(function(values[i : i + batch_size]))
            for i in range(0, len(values), batch_size)
        ]
    )


def check_trained_image_vae(
    model, seed=None, num_images=1000, num_samples=4, split="test"
):
    """Checks that a trained image VAE reaches the held-out negative ELBO target.

    The checker picks `num_images` images of `split` itself (from `seed`) and
    computes the ELBO itself, with `vaelib.losses` on the model's `encoder`
    and `decoder` (the model's own `elbo`, loss or metrics are not used),
    averaged over `num_samples` posterior samples per image. The target is
    `IMAGE_VAE_TARGETS` for the digit source in use. The decoder must also use
    its latent code: decoding other images' codes must change the picture.

    Args:
        model: A trained `vaelib.models.VAE` (Bernoulli: the decoder returns
            logits).
        seed: The images' and noise's seed; `None` for the public one.
        split: `"test"`, held-out digits; `"train"` (the grader's trusted
            scoring checks both: a model fit to the test digits alone, a
            lookup table of them, fails on the training digits).
    """
    from vaelib.data import load_digits_images
    from vaelib.losses import bernoulli_nll, gaussian_kl
    from vaelib.models import VAE

    if not isinstance(model, VAE):
        _fail(
            f"Expected a vaelib.models.VAE; received {type(model).__name__}. Build "
            "it from your encoder and decoder with vaelib.models.VAE."
        )
    rng = _rng(seed, 5)
    # nbgrader scores a test cell with any stderr output as failed, so the
    # loader's fallback warning must not reach stderr here.
    digits_logger = logging.getLogger("vaelib.data.digits")
    level = digits_logger.level
    digits_logger.setLevel(logging.ERROR)
    try:
        test = load_digits_images(split)
    finally:
        digits_logger.setLevel(level)
    target = IMAGE_VAE_TARGETS["mnist" if test.is_mnist else "sklearn"]
    where = "held-out" if split == "test" else "training-set"
    num_images = min(num_images, len(test.images))
    x = test.images[rng.choice(len(test.images), num_images, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = [model.encoder(x[i : i + 250]) for i in range(0, len(x), 250)]
        z_mean = np.concatenate([_numpy(m) for m, _ in encoded]).astype("float32")
        z_log_var = np.concatenate([_numpy(v) for _, v in encoded]).astype("float32")
        kl = _batches(lambda i: gaussian_kl(z_mean[i], z_log_var[i]), np.arange(len(x)))
        reconstruction = []
        for _ in range(num_samples):
            noise = rng.standard_normal(z_mean.shape).astype("float32")
            z = z_mean + np.exp(0.5 * z_log_var) * noise
            logits = _batches(model.decoder, z).astype("float32")
            if logits.shape != x.shape:
                _fail(
                    f"The decoder returned shape {logits.shape[1:]} per image; "
                    f"expected {x.shape[1:]}, one logit per pixel."
                )
            reconstruction.append(_numpy(bernoulli_nll(x, logits)))
        shuffled = _batches(model.decoder, z_mean[rng.permutation(len(x))])
        own = _batches(model.decoder, z_mean)
    negative_elbo = float(np.mean(reconstruction) + np.mean(kl))
    if not np.isfinite(negative_elbo):
        _fail("The held-out negative ELBO is not finite: check the decoder's logits.")
    change = np.abs(1 / (1 + np.exp(-own)) - 1 / (1 + np.exp(-shuffled))).mean()
    if change < 1e-5:
        _fail(
            "The decoder ignores its latent code: decoding other images' codes "
            "gives the same picture. The reconstruction must come from z."
        )
    if not negative_elbo <= target:
        hint = "train for more epochs, or give the model more filters or latents"
        if split == "train":
            hint = (
                "a model that learnt from the training digits does about as well "
                "on them as on held-out ones; was it fit to the test digits?"
            )
        if 0 <= logits.min() and logits.max() <= 1:
            hint = "the decoder seems to return probabilities: return logits"
        _fail(
            f"The {where} negative ELBO is {negative_elbo:.1f} nats per image on "
            f"{num_images} {split} images, measured by the checker; the target is "
            f"{target:.1f}: {hint}."
        )
    if float(np.mean(kl)) < 1.0:
        _fail(
            "The KL is under 1 nat per image: the posterior has collapsed to the "
            "prior and the latents carry no information."
        )
    return (
        f"trained VAE: {where} negative ELBO {negative_elbo:.1f} <= {target:.1f} "
        f"nats per image on {num_images} {split} images."
    )


def hand_in(model, name):
    """Saves `model` for the grader to score outside the notebook.

    Under `python -m vaelib grade`, `$VAELIB_HAND_IN` names a folder (relative
    to the notebook's working folder); `model` is saved there as
    `<name>.keras` and the grader scores that file in a separate, trusted
    Python process on digits it draws itself (course/INSTRUCTORS.md, "Points
    computed outside the notebook"). Anywhere else it saves nothing.

    Returns:
        A line saying what was handed in, or that nothing was.
    """
    folder = os.environ.get(HAND_IN_VARIABLE, "").strip()
    if not folder:
        return f"{name}: not handed in (only the grader collects models)."
    if not isinstance(model, keras.Model):
        _fail(f"Expected a Keras model to hand in as {name}; received {type(model)}.")
    path = pathlib.Path(folder) / f"{name}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    return f"{name}: handed in for scoring outside the notebook."


def answer_outside(name, answer):
    """Lets the grader's own process check `answer`, arrays in and arrays out.

    Under `python -m vaelib grade`, `$VAELIB_ANSWERS` names the grader's
    answer server (`vaelib.grading.AnswerServer`): it runs the check of task
    `name` (`check_sampling`, `check_gaussian_kl`, `check_vae_loss`, or
    `check_encoder`) on inputs it draws from a seed of its own, and computes
    the values, gradients and verdict itself; this function only evaluates
    `answer` on the arrays it is sent (and, when asked, the gradients of its
    weighted sum by the backend's autodiff) and sends the results back. The
    points of the test depend on that verdict, not on what the notebook
    prints. Anywhere else it does nothing.

    Args:
        name: The task, a key of `vaelib.grading.ANSWER_TASKS`.
        answer: The learner's function, or a Keras layer or model (a layer
            that is not a model receives its inputs as one tuple).

    Returns:
        The grader's message; raises `AssertionError` with it if the check
        failed.
    """
    import socket

    address = os.environ.get(ANSWERS_VARIABLE, "").strip()
    if not address:
        return f"{name}: not checked outside the notebook (only the grader does)."
    function = answer
    if isinstance(answer, keras.layers.Layer) and not isinstance(answer, keras.Model):

        def function(*inputs):
            return answer(tuple(inputs))

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(address)
        with channel.makefile("rb") as reader, channel.makefile("wb") as writer:
            send_arrays(writer, {"task": name}, [])
            while True:
                try:
                    header, arrays = read_arrays(reader)
                except ConnectionError:
                    raise RuntimeError(
                        "the grader's answer server closed the connection"
                    ) from None
                if header.get("op") == "done":
                    if not header.get("passed"):
                        _fail(str(header.get("message")))
                    return str(header.get("message"))
                try:
                    reply, outputs = _evaluate(function, header.get("op"), arrays)
                except Exception as error:  # noqa: BLE001 - the grader judges it
                    reply, outputs = {"error": f"{type(error).__name__}: {error}"}, []
                send_arrays(writer, reply, outputs)


def _evaluate(function, op, arrays):
    """`answer_outside`'s side of one request: values, or values and gradients."""
    if op == "vjp":
        *inputs, weights = arrays
        output, gradients = _gradients(function, inputs, weights, "the answer")
        missing = [i for i, g in enumerate(gradients) if g is None]
        gradients = [
            np.zeros(np.shape(x)) if g is None else g
            for x, g in zip(inputs, gradients, strict=True)
        ]
        return {"missing": missing}, [output, *gradients]
    if op != "call":
        raise ValueError(f"unknown request {op!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = function(*arrays)
    if isinstance(outputs, list | tuple):
        return {"single": False}, [_numpy(t) for t in outputs]
    return {"single": True}, [_numpy(outputs)]


def check_frame_predictor(
    predict, num_frames=10, context_frames=5, frame_size=32, num_clips=96, seed=None
):
    """Checks `predict(context) -> future` against simple baselines on new clips.

    A helper process (`vaelib.grading.FutureFrames`) makes held-out
    moving-digit clips from test digits, with `seed` mixed with fresh entropy,
    and hands over only the first `context_frames` frames: the true future
    exists only in that process, so it cannot be regenerated from a known seed
    or read from this function's frame while `predict` runs. The prediction
    must have the right shape, lie in [0, 1], and its mean squared error per
    frame must be at most `PREDICTOR_MARGIN` times the best of three
    baselines: blank frames, the mean of the context frames, and the last
    context frame repeated. The last context frame blurred and dimmed as
    best suits each future step (`vaelib.grading.tuned_blur`, tuned on the
    true future) is reported beside it. Under the grader the helper is the
    grader's own clip server, whose verdict gives the points.

    Args:
        predict: A function from context clips
            `(n, context_frames, frame_size, frame_size, 1)` to predicted
            frames `(n, num_frames - context_frames, frame_size, frame_size, 1)`.
        seed: Mixed into the clips' seed; `None` for the public one.
    """
    from vaelib.grading import FutureFrames

    with FutureFrames(
        frame_size=frame_size,
        num_frames=num_frames,
        context_frames=context_frames,
        num_clips=num_clips,
        seed=SEED if seed is None else seed,
    ) as clips:
        context = clips.context()
        expected_shape = (num_clips, num_frames - context_frames, *context.shape[2:])
        prediction = _numpy(_call(predict, context, name="predict"))
        if prediction.shape != expected_shape:
            _fail(
                f"predict returned shape {prediction.shape} for a context of shape "
                f"{context.shape}: return the {expected_shape[1]} frames after the "
                "context, one clip per context clip."
            )
        if not np.all(np.isfinite(prediction)):
            _fail("predict returned values that are not finite.")
        if prediction.min() < 0 or prediction.max() > 1:
            _fail(
                "Predictions must be probabilities in [0, 1]: apply the sigmoid "
                "to the logits (model.reconstruct does)."
            )
        scores = clips.score(prediction)
    ours = scores["prediction"]
    names = {
        "blank": "blank frames",
        "context_mean": "the context's mean frame",
        "copy_last": "copy-last-frame",
    }
    best_name = min(names, key=scores.get)
    best = scores[best_name]
    if not best > 0:
        _fail(
            "The held-out clips came out blank, so no prediction can be judged: "
            "is $VAELIB_MNIST an MNIST file?"
        )
    if not ours <= PREDICTOR_MARGIN * best:
        _fail(
            f"MSE per frame {ours:.1f} on new clips; it must be at most "
            f"{PREDICTOR_MARGIN:.2f} x {best:.1f} = {PREDICTOR_MARGIN * best:.1f}, "
            f"the best simple baseline ({names[best_name]}). Train longer, and "
            "make the decoder carry the motion forward from the context."
        )
    return (
        f"predictor: MSE per frame {ours:.1f} on {num_clips} new clips, "
        f"<= {PREDICTOR_MARGIN:.2f} x {best:.1f} ({names[best_name]}; the last "
        f"frame blurred as best suits each step: {scores['tuned_blur']:.1f})."
    )
