"""Checks for assignments: each exercises a learner's answer and explains faults.

Every check draws its own inputs (random shapes and values from a seed the
learner does not choose), compares with an independent reference where there
is one, and raises an `AssertionError` whose message says what is wrong and
gives a hint. A check that passes returns a short message saying what it
verified (the grader prints it).

    >>> from vaelib import checks
    >>> checks.check_gaussian_kl(my_gaussian_kl)
    'gaussian_kl: correct on 6 random shapes (up to 4-D), values and signs.'

| check | task |
| --- | --- |
| `check_sampling` | the reparameterisation trick |
| `check_gaussian_kl` | the analytic KL to N(0, I) |
| `check_vae_loss` | the negative ELBO of a Bernoulli VAE, per example |
| `check_encoder` | an encoder with mean and log-variance heads |
| `check_trained_image_vae` | a trained VAE reaching a held-out ELBO |
| `check_frame_predictor` | a video predictor that beats copy-last-frame |

Grading a folder of submitted notebooks: `python -m vaelib grade FOLDER`
(`grade_folder` and `format_grades` here). Writing a new check: see
course/INSTRUCTORS.md.

Introduced in: course/assignments/
"""

import math
import pathlib
import re
import time
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from vaelib.losses import gaussian_kl as reference_gaussian_kl

SEED = 20_261_124


def _numpy(value):
    return np.asarray(ops.convert_to_numpy(value), dtype="float64")


def _fail(message):
    raise AssertionError(message)


def _call(function, *args, name):
    try:
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


def check_sampling(sample):
    """Checks `sample(z_mean, z_log_var) -> z`, the reparameterisation trick.

    `z` must have `z_mean`'s shape, mean `z_mean` and variance
    `exp(z_log_var)`, be fresh noise on every call and every row, and be
    exactly `z_mean` when the variance is (numerically) zero.

    Args:
        sample: A function or a Keras layer called on `(z_mean, z_log_var)`;
            a layer (like `vaelib.layers.Sampling`) receives them as one tuple.
    """
    rng = np.random.default_rng(SEED)
    is_layer = isinstance(sample, keras.layers.Layer)

    def draw(z_mean, z_log_var):
        args = ((z_mean, z_log_var),) if is_layer else (z_mean, z_log_var)
        return _numpy(_call(sample, *args, name="sample"))

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
            "Rows with the same z_mean and z_log_var got the same z: draw "
            "noise of the full shape, e.g. keras.random.normal(ops.shape(z_mean))."
        )
    mean, variance = z.mean(axis=0), z.var(axis=0)
    target_mean, target_variance = z_mean[0], np.exp(z_log_var[0])
    standard_error = np.sqrt(target_variance / rows)
    if np.any(np.abs(mean - target_mean) > 6 * standard_error + 1e-3):
        _fail(
            f"The mean of z is {mean.round(3)}, expected z_mean = "
            f"{target_mean.round(3)}: did you add z_mean to the scaled noise?"
        )
    ratio = variance / target_variance
    if np.any(np.abs(ratio - 1) > 0.1):
        hint = "the standard deviation is exp(0.5 * z_log_var)"
        if np.allclose(variance, np.exp(2 * z_log_var[0]), rtol=0.1):
            hint = "you used exp(z_log_var) as the standard deviation; " + hint
        elif np.allclose(variance, z_log_var[0] ** 2, rtol=0.1):
            hint = "you multiplied the noise by z_log_var itself; " + hint
        _fail(
            f"The variance of z is {variance.round(3)}, expected exp(z_log_var) = "
            f"{target_variance.round(3)}: {hint}."
        )
    if np.allclose(draw(z_mean[:4], z_log_var[:4]), draw(z_mean[:4], z_log_var[:4])):
        _fail(
            "Two calls gave the same z: use a keras.random.SeedGenerator so each "
            "call draws new noise (a fixed integer seed repeats it)."
        )
    shape = (3, 4, 4, 2)
    z_mean = rng.normal(0, 1, shape).astype("float32")
    z = draw(z_mean, np.full(shape, -40.0, "float32"))
    if z.shape != shape or not np.allclose(z, z_mean, atol=1e-4):
        _fail(
            "With z_log_var = -40 (no variance) z must equal z_mean, also for 4-D "
            f"latent maps {shape}: check the shape of the noise and the formula."
        )
    return "sample: correct mean, variance, fresh noise, and 4-D latent maps."


def check_gaussian_kl(gaussian_kl):
    """Checks `gaussian_kl(z_mean, z_log_var) -> (batch,)` in nats.

    Compared with `0.5 * sum(exp(log_var) + mean**2 - 1 - log_var)` over every
    non-batch axis, in float64, on random shapes from 2-D to 4-D.
    """
    rng = np.random.default_rng(SEED + 1)
    z_mean = np.zeros((2, 1), "float32")
    z_log_var = np.array([[1.0], [-1.0]], "float32")
    value = _numpy(_call(gaussian_kl, z_mean, z_log_var, name="gaussian_kl"))
    if np.any(value < 0):
        _fail(
            f"gaussian_kl is negative ({value.ravel().round(4)}) for z_mean=0, "
            "z_log_var=[1, -1]: the KL is never negative. Did you sum exp(z_log_var) "
            "with the right sign (+exp(log_var) - log_var)?"
        )
    shapes = [(1, 1), (5, 2), (7, 16), (3, 4, 6), (2, 3, 3, 8), (4, 8, 8, 1)]
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
                f"{shape}; expected {expected.shape}: {hint}."
            )
        if np.allclose(value, expected, rtol=1e-4, atol=1e-4):
            continue
        where = (
            f"for z_mean={z_mean.ravel()[:3]}..., z_log_var={z_log_var.ravel()[:3]}..."
        )
        dims = math.prod(shape[1:])
        if np.any(value < -1e-5):
            hint = (
                "the KL is never negative: did you sum exp(z_log_var) with the "
                "right sign (+exp(log_var) - log_var)?"
            )
            _fail(f"gaussian_kl is negative ({value.min():.4g}) {where}: {hint}")
        if dims > 1 and np.allclose(value * dims, expected, rtol=1e-4):
            hint = "you averaged over latent dimensions; sum them (a mean is a beta)"
        elif np.allclose(value, 2 * expected, rtol=1e-4):
            hint = "the formula has a factor 0.5 in front"
        elif np.allclose(value, expected + 0.5 * dims, rtol=1e-4):
            hint = "the '- 1' inside the sum is missing"
        else:
            hint = "compare term by term with 0.5 * (exp(lv) + mu^2 - 1 - lv)"
        _fail(
            f"gaussian_kl gave {value.round(4)[:4]} {where}; expected "
            f"{expected.round(4)[:4]}: {hint}."
        )
    z_mean, z_log_var = np.zeros((3, 5), "float32"), np.zeros((3, 5), "float32")
    at_prior = _numpy(gaussian_kl(z_mean, z_log_var))
    if not np.allclose(at_prior, 0, atol=1e-6):
        _fail(f"gaussian_kl of N(0, I) to itself must be 0; got {at_prior}.")
    return f"gaussian_kl: correct on {len(shapes)} random shapes (up to 4-D)."


def check_vae_loss(vae_loss):
    """Checks `vae_loss(x, logits, z_mean, z_log_var) -> (batch,)`, the -ELBO.

    The per-example negative ELBO of a Bernoulli VAE: the binary cross-entropy
    of `x` given the decoder's `logits`, summed over pixels, plus the Gaussian
    KL summed over latent dimensions, in nats.
    """
    rng = np.random.default_rng(SEED + 2)
    batch, image, latent = int(rng.integers(3, 9)), (6, 5, 1), (3,)
    x = (rng.random((batch, *image)) < 0.4).astype("float32")
    logits = rng.normal(0, 3, (batch, *image)).astype("float32")
    z_mean, z_log_var = _random_latents(rng, (batch, *latent))
    value = _numpy(_call(vae_loss, x, logits, z_mean, z_log_var, name="vae_loss"))

    def cross_entropy(p):
        return -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=(1, 2, 3))

    p = 1 / (1 + np.exp(-logits.astype("float64")))
    bce = cross_entropy(p)
    kl = _reference_kl(z_mean, z_log_var)
    expected = bce + kl
    if value.shape != (batch,):
        _fail(
            f"vae_loss returned shape {value.shape}; expected ({batch},), one "
            "negative ELBO per example (Keras' fit averages over the batch)."
        )
    if np.allclose(value, expected, rtol=1e-4):
        return "vae_loss: reconstruction (summed BCE) + KL, per example, correct."
    pixels = math.prod(image)
    mse = np.square(x - p).sum(axis=(1, 2, 3))
    candidates = [
        (bce, "the KL term is missing: the ELBO is reconstruction + KL"),
        (bce - kl, "the KL is subtracted: the negative ELBO adds it"),
        (bce / pixels + kl, "the reconstruction is averaged over pixels; sum it"),
        (mse + kl, "the reconstruction is a squared error, not the Bernoulli NLL"),
        (mse, "the loss is a plain MSE with no KL: that is an autoencoder"),
        (
            mse / pixels,
            "the loss is an MSE averaged over pixels, with no KL: that is an "
            "autoencoder's loss; use the Bernoulli NLL summed over pixels, plus the KL",
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
        f"vae_loss gave {value.round(2)}, expected {expected.round(2)} "
        "(summed binary cross-entropy from logits + summed Gaussian KL)."
    )


def check_encoder(encoder, input_shape, latent_dim):
    """Checks an encoder model: `(z_mean, z_log_var)`, unconstrained, per example.

    Args:
        encoder: A Keras model or function mapping images to two tensors.
        input_shape: Shape of one input, e.g. `(28, 28, 1)`.
        latent_dim: Expected size of each latent vector.
    """
    rng = np.random.default_rng(SEED + 3)
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
            _fail(f"{name} has shape {value.shape}; expected (16, {latent_dim}).")
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


def check_trained_image_vae(model, images, max_negative_elbo, num_samples=5):
    """Checks that a trained image VAE reaches a held-out negative ELBO.

    The checker computes the ELBO itself (averaged over `num_samples`
    posterior samples per image, on images the instructor passes), so the
    number cannot be tuned by the learner's own evaluation code.

    Args:
        model: A trained `vaelib.models.VAE`.
        images: Held-out images `(n, h, w, 1)` in [0, 1] (the test split).
        max_negative_elbo: The target, in nats per image.
    """
    from vaelib.models import VAE

    if not isinstance(model, VAE):
        _fail(
            f"Expected a vaelib.models.VAE; received {type(model).__name__}. Build "
            "it as VAE(encoder, decoder) or with vaelib.models.conv_vae."
        )
    elbo = np.mean([_numpy(model.elbo(images)) for _ in range(num_samples)], axis=0)
    negative_elbo = -float(elbo.mean())
    kl = float(np.mean(_numpy(reference_gaussian_kl(*model.encode(images)))))
    if not negative_elbo <= max_negative_elbo:
        _fail(
            f"The held-out negative ELBO is {negative_elbo:.1f} nats per image; the "
            f"target is {max_negative_elbo:.1f}. Train for more epochs, or give the "
            "model more filters or a larger latent space."
        )
    if kl < 1.0:
        _fail(
            f"The KL is only {kl:.2f} nats per image: the posterior has collapsed "
            "to the prior and the latents carry no information. Lower beta at "
            "the start (KL annealing) or train longer."
        )
    return (
        f"trained VAE: held-out negative ELBO {negative_elbo:.1f} <= "
        f"{max_negative_elbo:.1f} nats (KL {kl:.1f})."
    )


def check_frame_predictor(
    predict, num_frames=10, context_frames=5, frame_size=32, num_clips=64
):
    """Checks `predict(context) -> future` against copy-last-frame on new clips.

    The checker makes held-out moving-digit clips (test digits, its own seed),
    gives `predict` only the first `context_frames` frames, and compares the
    prediction with the true remaining frames: it must have the right shape,
    lie in [0, 1], and beat repeating the last context frame on mean squared
    error per frame.

    Args:
        predict: A function from context clips
            `(n, context_frames, frame_size, frame_size, 1)` to predicted
            frames `(n, num_frames - context_frames, frame_size, frame_size, 1)`.
    """
    from vaelib.data import MovingDigits
    from vaelib.metrics import evaluate_prediction
    from vaelib.models import copy_last_frame

    clips = MovingDigits.scaled(
        frame_size, num_frames=num_frames, split="test", seed=SEED
    ).clips(num_clips)
    context, future = clips[:, :context_frames], clips[:, context_frames:]
    prediction = _numpy(_call(predict, context, name="predict"))
    if prediction.shape != future.shape:
        _fail(
            f"predict returned shape {prediction.shape}; expected {future.shape}, "
            f"the {num_frames - context_frames} frames after the context."
        )
    if prediction.min() < 0 or prediction.max() > 1:
        _fail(
            f"Predictions span [{prediction.min():.3g}, {prediction.max():.3g}]; "
            "expected probabilities in [0, 1]: apply the sigmoid to the logits."
        )
    ours = evaluate_prediction(future, prediction)
    baseline = evaluate_prediction(future, copy_last_frame(context, len(future[0])))
    if not ours["mse_per_frame"] < baseline["mse_per_frame"]:
        _fail(
            f"MSE per frame {ours['mse_per_frame']:.1f} does not beat copy-last-"
            f"frame's {baseline['mse_per_frame']:.1f}: train longer, and check that "
            "the future latents come from the prior, not from the true frames."
        )
    return (
        f"predictor: MSE per frame {ours['mse_per_frame']:.1f} vs copy-last-frame "
        f"{baseline['mse_per_frame']:.1f}; PSNR {ours['psnr']:.2f} vs "
        f"{baseline['psnr']:.2f} dB."
    )


class Grade(NamedTuple):
    """One notebook's result; `checks` maps each check's name to (passed, message)."""

    notebook: str
    checks: dict
    seconds: float

    @property
    def score(self):
        return sum(passed for passed, _ in self.checks.values())


def _check_name(source):
    match = re.search(r"checks\.(check_\w+)", source)
    return match.group(1) if match else "check"


def grade_notebook(path, timeout=900):
    """Runs one notebook top to bottom and collects its `check` cells.

    Every cell runs even after an error (a learner's unfinished task does not
    hide the others). A cell tagged `check` passes when it runs without an
    error; otherwise its message is the error's (for a failed check, the hint).
    """
    import nbclient
    import nbformat

    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
        failure = None
    except Exception as error:  # noqa: BLE001 - a dead kernel fails every check
        failure = f"the notebook did not run: {type(error).__name__}: {error}"
    results = {}
    for cell in notebook.cells:
        if "check" not in cell.get("metadata", {}).get("tags", []):
            continue
        name = _check_name(cell.source)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if failure is not None and not cell.get("outputs"):
            results[name] = (False, failure)
        elif errors:
            message = str(errors[0].get("evalue", "")).strip().splitlines()
            results[name] = (
                False,
                f"{errors[0]['ename']}: {message[0] if message else ''}",
            )
        else:
            results[name] = (True, "passed")
    return Grade(path.name, results, time.perf_counter() - start)


def grade_folder(folder, timeout=900):
    """Grades every notebook in `folder` (not its subfolders); returns `Grade`s."""
    paths = sorted(pathlib.Path(folder).glob("*.ipynb"))
    if not paths:
        raise ValueError(f"Expected .ipynb submissions in {folder}. Found none.")
    return [grade_notebook(path, timeout) for path in paths]


def format_grades(grades):
    """A score table (one row per notebook, one column per check) and the hints."""
    names = list(dict.fromkeys(name for g in grades for name in g.checks))
    rows = [["notebook", *names, "score"]]
    for grade in grades:
        marks = [
            ("pass" if grade.checks[n][0] else "FAIL") if n in grade.checks else "-"
            for n in names
        ]
        rows.append([grade.notebook, *marks, f"{grade.score}/{len(grade.checks)}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    hints = [
        f"{grade.notebook}, {name}: {message}"
        for grade in grades
        for name, (passed, message) in grade.checks.items()
        if not passed
    ]
    if hints:
        lines += ["", "What failed, and the hints:"] + [f"- {hint}" for hint in hints]
    return "\n".join(lines)
