"""How good is a VAE? Likelihood bounds and their per-pixel view."""

import math
import os
import pathlib

import keras
import numpy as np
from keras import ops

from vaelib import _arguments, losses
from vaelib.models.base import run_in_batches


def iwae_log_likelihood(model, x, k=100, seed=None, chunk_size=None):
    """Importance-weighted lower bound on `log p(x)` (Burda et al., 2016), per example.

    With `z_1, ..., z_k` drawn from the encoder's q(z | x),

        log p(x) >= L_k = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)

    with the model's own prior p(z) (`model.prior_log_prob`: N(0, I), or a
    `LearnedPriorVAE`'s p(z_t | z_<t)).

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
    k = _arguments.positive_int("k", k)
    x = model._check_input(x)
    batch_size = x.shape[0]
    if chunk_size is None:
        chunk_size = max(1, 4096 // max(batch_size, 1))
    chunk_size = min(_arguments.positive_int("chunk_size", chunk_size), k)
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
        noise = keras.random.normal(ops.shape(mean), seed=seed_generator)
        z = mean + ops.exp(0.5 * log_var) * noise
        targets = np.tile(x, (samples,) + (1,) * (x.ndim - 1))
        decoder_output = model.decoder(z, training=False)
        log_likelihood = -model.reconstruction_loss(targets, decoder_output)
        # log q(z | x) from the noise, log N(noise; 0, I) - sum(log_var) / 2:
        # recomputing (z - mean) / std in float32 loses the noise when the
        # posterior is narrow (std 3e-7 at log-variance -30).
        log_q = losses.standard_normal_log_prob(noise) - 0.5 * ops.sum(
            ops.reshape(log_var, (ops.shape(log_var)[0], -1)), axis=1
        )
        log_prior = model.prior_log_prob(z, decoder_output)
        log_weight = log_likelihood + log_prior - log_q
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
    if isinstance(nll, str | bytes) or not np.issubdtype(
        np.asarray(nll).dtype, np.number
    ):
        raise ValueError(
            f"Expected nll to be a number or an array of numbers (nats per "
            f"example). Received: nll={nll!r}"
        )
    if isinstance(num_dims, tuple | list):
        num_dims = math.prod(_arguments.positive_ints("num_dims", num_dims))
    num_dims = _arguments.positive_int("num_dims", num_dims)
    return nll / (num_dims * math.log(2.0))


def _check_pair(target, prediction, max_value=1.0, names=("target", "prediction")):
    """Both batches as float64, checked: same shape, finite, target in [0, max_value].

    The reference image defines the peak of a PSNR, so the target must lie in
    [0, max_value] (0-255 pixels with the default max_value of 1 are an
    error); an estimate may overshoot a little (a denoiser's output, say),
    except where it must be a probability (`evaluate_prediction` names it
    `probabilities`).
    """
    max_value = _arguments.finite_float("max_value", max_value)
    if max_value <= 0:
        raise ValueError(
            f"Expected max_value > 0 (the largest pixel value). Received: "
            f"max_value={max_value}"
        )
    target = np.asarray(target, dtype="float64")
    prediction = np.asarray(prediction, dtype="float64")
    if target.shape != prediction.shape or target.ndim < 3:
        raise ValueError(
            "Expected two image batches of the same shape (..., height, width, "
            f"channels). Received: {target.shape} and {prediction.shape}"
        )
    for name, values in zip(names, (target, prediction), strict=True):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Expected finite {name}. Received: NaN or inf values")
        ranged = name in ("target", "probabilities")
        if ranged and values.size and (values.min() < 0 or values.max() > max_value):
            raise ValueError(
                f"Expected {name} in [0, max_value={max_value:g}] (pass max_value=255 "
                f"for 0-255 pixels). Received: min={values.min():.4g}, "
                f"max={values.max():.4g}"
            )
    return target, prediction


def psnr(target, prediction, max_value=1.0):
    """Peak signal-to-noise ratio of each image, in dB.

    `PSNR = 10 log10(max_value**2 / MSE)`, the mean squared error taken over
    the height, width and channels of each image (each frame of a clip).

    Args:
        target: Images `(..., height, width, channels)`.
        prediction: Same shape.
        max_value: Largest possible pixel value (1 for images in [0, 1]).

    Returns:
        Numpy array of shape `target.shape[:-3]`: one PSNR per image
        (`inf` where the two are identical).

    Introduced in: course/06_video_data.ipynb
    """
    target, prediction = _check_pair(target, prediction, max_value)
    mse = np.mean(np.square(target - prediction), axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value**2 / mse)


def ssim(target, prediction, max_value=1.0, sigma=1.5):
    """Structural similarity of each image (Wang et al., 2004), in [-1, 1].

    The standard form: local means, variances and covariance under an
    11x11 Gaussian window of standard deviation 1.5, constants
    `(0.01 * max_value)**2` and `(0.03 * max_value)**2`, averaged over each
    image and channel. It equals scikit-image's
    `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=max_value)`, which a test checks.

    Args:
        target: Images `(..., height, width, channels)`.
        prediction: Same shape.
        max_value: Largest possible pixel value.
        sigma: Standard deviation of the Gaussian window.

    Returns:
        Numpy array of shape `target.shape[:-3]`.

    Introduced in: course/06_video_data.ipynb
    """
    from scipy.ndimage import gaussian_filter

    target, prediction = _check_pair(target, prediction, max_value)
    sigma = _arguments.finite_float("sigma", sigma)
    if sigma <= 0:
        raise ValueError(f"Expected sigma > 0. Received: sigma={sigma}")
    # scikit-image ignores a border of (window - 1) / 2 pixels; so do we.
    border = int(3.5 * sigma + 0.5)
    height, width = target.shape[-3:-1]
    if min(height, width) <= 2 * border:
        raise ValueError(
            f"Expected images larger than the {2 * border + 1}x{2 * border + 1} "
            f"SSIM window of sigma={sigma}. Received: {height}x{width} images"
        )
    # Filter over height and width only; radius 3.5 * sigma gives the 11x11 window.
    sigmas = [0.0] * (target.ndim - 3) + [sigma, sigma, 0.0]

    def local_mean(values):
        return gaussian_filter(values, sigmas, truncate=3.5, mode="reflect")

    mean_t, mean_p = local_mean(target), local_mean(prediction)
    var_t = local_mean(target * target) - mean_t**2
    var_p = local_mean(prediction * prediction) - mean_p**2
    covariance = local_mean(target * prediction) - mean_t * mean_p
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    index = ((2 * mean_t * mean_p + c1) * (2 * covariance + c2)) / (
        (mean_t**2 + mean_p**2 + c1) * (var_t + var_p + c2)
    )
    index = index[..., border : height - border, border : width - border, :]
    return index.mean(axis=(-3, -2, -1))


def active_units(model, data, threshold=0.01, batch_size=64):
    """Which latent channels carry information about the input.

    A latent unit `u` is active when its posterior mean moves with the input:
    `A_u = Var_x(E_q(z|x)[z_u]) > threshold` (Burda et al., 2016, who take
    0.01). A unit that ignores `x` sits at the prior, its posterior equal to
    it for every input, and costs no KL: posterior collapse. For a
    convolutional latent a "channel" is the same unit at every position (and
    frame); its activity is the average of `A_u` over those positions, and
    its KL the sum over them (nats per example, to the model's own prior).

    Args:
        model: A `VAE`.
        data: Images or clips in [0, 1], at least two examples.
        threshold: Activity above which a channel counts as active.
        batch_size: Examples per forward pass.

    Returns:
        A dict: `activity` and `kl` (numpy arrays, one value per latent
        channel), `active` (booleans) and `num_active` (an int).

    Introduced in: course/08_convlstm_video_vae.ipynb
    """
    threshold = _arguments.finite_float("threshold", threshold, minimum=0)
    batch_size = _arguments.positive_int("batch_size", batch_size)
    data = model._check_input(data)
    if len(data) < 2:
        raise ValueError(
            "Expected at least two examples: activity is a variance over inputs. "
            f"Received: {len(data)}"
        )
    _, z_mean, *gaussians = run_in_batches(model, data, batch_size)
    kls = ops.convert_to_numpy(model.kl_per_channel(z_mean, *gaussians))
    return _units(z_mean.astype("float32"), kls, threshold)


def _units(means, kls, threshold):
    activity = means.var(axis=0)
    activity = activity.reshape(-1, activity.shape[-1]).mean(axis=0)
    return {
        "activity": activity,
        "kl": kls.mean(axis=0),
        "active": activity > threshold,
        "num_active": int((activity > threshold).sum()),
    }


def classifier_for_frames(frames_shape, classifier):
    """The classifier to read `frames_shape` frames with, or None to skip it.

    `"auto"` takes the shipped digit classifier when it is there and reads
    frames of that shape (32x32 grey); None skips identity.
    """
    if classifier is None or not isinstance(classifier, str):
        return classifier
    if classifier != "auto":
        raise ValueError(
            'Expected classifier="auto", None or a Keras model. '
            f"Received: classifier={classifier!r}"
        )
    if not pathlib.Path(DIGIT_CLASSIFIER_PATH).is_file():
        return None
    shipped = load_digit_classifier()
    return shipped if tuple(shipped.input_shape[1:]) == frames_shape else None


def evaluate_video(model, clips, batch_size=16, classifier="auto"):
    """Per-frame quality of a video VAE's reconstructions, as a table-ready dict.

    Each clip is encoded, its posterior mean decoded, and compared frame by
    frame with the input.

    Args:
        model: A video `VAE` (e.g. from `convlstm_vae`).
        clips: `(num_clips, num_frames, height, width, 1)` in [0, 1].
        batch_size: Clips per forward pass.
        classifier: The digit classifier that scores `identity`: `"auto"`
            (the shipped one, for 32x32 frames), a model, or None to skip it.

    Returns:
        A dict of numpy arrays of shape `(num_frames,)`, averaged over clips:
        `bce` (Bernoulli NLL of the frame given one posterior sample, nats),
        `psnr` (dB) and `ssim` of the posterior-mean reconstruction, `kl`
        (nats per frame; for a model that compresses time, the clip's KL
        divided evenly over its frames) and, with a classifier, `identity`
        (`reconstruction_identity`: the share of clips whose digits the
        reconstruction keeps); `"mean"`, a dict of their averages over
        frames; and `active_units` and `latent_channels`, ints
        (`active_units`; for at least two clips).

    Introduced in: course/07_framewise_video_vae.ipynb
    """
    batch_size = _arguments.positive_int("batch_size", batch_size)
    clips = model._check_input(clips)
    if clips.ndim != 5:
        raise ValueError(
            f"Expected clips (n, frames, h, w, c). Received: {clips.shape}"
        )
    classifier = classifier_for_frames(tuple(clips.shape[2:]), classifier)
    # (z_mean, z_log_var), and the prior's mean and log-variance for a model
    # with a learned prior (`LearnedPriorVAE`); compiled on JAX
    logits, z_mean, *gaussians = run_in_batches(model, clips, batch_size)
    reconstructions = np.clip(
        ops.convert_to_numpy(
            model.mean_of(run_in_batches(model.decoder, z_mean, batch_size))
        ),
        0,
        1,
    )
    num_clips, frames = clips.shape[:2]
    # (clips * frames, ...): one "example" per frame, so the losses are per frame
    by_frame = [
        np.reshape(t, (num_clips * frames,) + t.shape[2:]).astype("float32")
        for t in (clips, logits)
    ]
    bce = ops.convert_to_numpy(losses.bernoulli_nll(*by_frame)).reshape(-1, frames)
    latent_frames = z_mean.shape[1]
    latents = [
        np.reshape(t, (num_clips * latent_frames, -1)) for t in (z_mean, *gaussians)
    ]
    kl = ops.convert_to_numpy(model.kl_loss(*latents)).reshape(-1, latent_frames)
    if latent_frames != frames:
        # time compressed (`CausalVideoVAE`): a latent frame covers several
        # frames, so each frame is charged the clip's KL per frame
        kl = np.repeat(kl.sum(axis=1, keepdims=True) / frames, frames, axis=1)
    report = {
        "bce": bce.mean(axis=0),
        "psnr": psnr(clips, reconstructions).mean(axis=0),
        "ssim": ssim(clips, reconstructions).mean(axis=0),
        "kl": kl.mean(axis=0),
    }
    if classifier is not None:
        report["identity"] = reconstruction_identity(clips, reconstructions, classifier)
    report["mean"] = {name: float(values.mean()) for name, values in report.items()}
    if len(clips) >= 2:
        channel_kls = ops.convert_to_numpy(model.kl_per_channel(z_mean, *gaussians))
        units = _units(z_mean.astype("float32"), channel_kls, 0.01)
        report["active_units"] = units["num_active"]
        report["latent_channels"] = len(units["active"])
    return report


def evaluate_prediction(target, probabilities, classifier="auto"):
    """How close predicted frames are to the true ones, as a dict of floats.

    Args:
        target: True future frames `(n, frames, height, width, 1)` in [0, 1].
        probabilities: Predicted frames of the same shape, in [0, 1] (the
            decoder's mean, or a baseline such as `copy_last_frame`).
        classifier: The digit classifier that scores `identity`: `"auto"`
            (the shipped one, for 32x32 frames), a model, or None to skip it.

    Returns:
        `bce` (Bernoulli NLL per frame, nats; probabilities clipped to
        [1e-6, 1 - 1e-6] so a hard 0/1 baseline stays finite), `psnr` (dB),
        `ssim`, `mse_per_frame` (squared error summed over a frame's pixels
        and averaged over frames, as the video-prediction literature reports
        it) and, with a classifier, `identity`: the share of predicted frames
        whose digits it reads as in the true future (`reconstruction_identity`).

    Introduced in: course/06_video_data.ipynb
    """
    target, probabilities = _check_pair(
        target, probabilities, names=("target", "probabilities")
    )
    if target.ndim != 5:
        raise ValueError(
            "Expected `target` and `probabilities` of shape (n, frames, height, "
            f"width, channels). Received: shape={target.shape}"
        )
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    bce = -(target * np.log(p) + (1 - target) * np.log1p(-p))
    pixel_axes = tuple(range(2, target.ndim))
    report = {
        "bce": float(bce.sum(axis=pixel_axes).mean()),
        "psnr": float(psnr(target, probabilities).mean()),
        "ssim": float(ssim(target, probabilities).mean()),
        "mse_per_frame": float(
            np.square(target - probabilities).sum(axis=pixel_axes).mean()
        ),
    }
    classifier = classifier_for_frames(tuple(target.shape[2:]), classifier)
    if classifier is not None:
        report["identity"] = float(
            reconstruction_identity(
                target.astype("float32"), probabilities.astype("float32"), classifier
            ).mean()
        )
    return report


def evaluate_images(model, images, iwae_k=100, seed=0, batch_size=256):
    """Held-out quality of an image VAE, in nats per image, as a dict of floats.

    Args:
        model: An image `VAE`.
        images: `(n, height, width, channels)` with the model's input shape.
        iwae_k: Importance samples of the log-likelihood bound.
        seed: Seed of the posterior samples.
        batch_size: Images per forward pass.

    Returns:
        `negative_elbo` (one posterior sample per image), `reconstruction`,
        `kl`, `iwae_nll_k{iwae_k}` (the IWAE bound's negative), `bits_per_dim`
        (of the IWAE NLL) and `num_images`.

    Introduced in: course/03_elbo_in_depth.ipynb
    """
    batch_size = _arguments.positive_int("batch_size", batch_size)
    images = model._check_input(images)
    reconstruction, kl, iwae = [], [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        decoder_output, z_mean, z_log_var = model(batch, training=False)
        reconstruction.append(
            ops.convert_to_numpy(model.reconstruction_loss(batch, decoder_output))
        )
        kl.append(ops.convert_to_numpy(model.kl_loss(z_mean, z_log_var)))
        iwae.append(iwae_log_likelihood(model, batch, k=iwae_k, seed=seed))
    reconstruction = float(np.concatenate(reconstruction).mean())
    kl = float(np.concatenate(kl).mean())
    iwae_nll = -float(np.concatenate(iwae).mean())
    return {
        "negative_elbo": reconstruction + kl,
        "reconstruction": reconstruction,
        "kl": kl,
        f"iwae_nll_k{iwae_k}": iwae_nll,
        "bits_per_dim": float(bits_per_dim(iwae_nll, model.data_shape)),
        "num_images": len(images),
    }


# Generation: is a sampled clip like a real one? Simple statistics a reader
# can check by eye, then two that need a digit classifier.

DIGIT_CLASSIFIER_PATH = (
    pathlib.Path(__file__).resolve().parents[1]
    / "data"
    / "pretrained"
    / "digit-classifier"
    / "model.keras"
)


def _check_clips(clips, name="clips"):
    clips = _arguments.unit_interval(name, ops.convert_to_numpy(clips))
    if clips.ndim != 5 or clips.shape[-1] != 1:
        raise ValueError(
            f"Expected {name} of shape (n, num_frames, height, width, 1). "
            f"Received: shape={clips.shape}"
        )
    return clips


def generation_statistics(clips, ink_threshold=0.5):
    """Brightness, ink and smoothness of clips: the first check of generated video.

    - `mean_pixel`: the mean of every pixel of every frame;
    - `ink_share`: the share of frames with at least one pixel above
      `ink_threshold` (a frame with a digit has one; a black or grey smudge
      has none);
    - `frame_correlation`: the Pearson correlation of consecutive frames
      (pixels of frame t against pixels of frame t + 1), averaged over pairs
      and clips; pairs where a frame is constant are left out. Real moving
      digits sit well below 1 (the digits move); a frozen clip has 1, noise 0.

    Compare each with the same statistic of real clips of the same size.

    Args:
        clips: `(n, num_frames, height, width, 1)` in [0, 1].
        ink_threshold: A pixel brighter than this counts as ink.

    Returns:
        A dict of floats: `mean_pixel`, `ink_share`, `frame_correlation`.

    Example:

    >>> clips = np.zeros((2, 3, 8, 8, 1), "float32"); clips[:, :, 2:4, 2:4] = 1
    >>> generation_statistics(clips)["ink_share"]
    1.0

    Introduced in: course/09_learned_temporal_prior.ipynb
    """
    clips = _check_clips(clips)
    ink_threshold = _arguments.in_range("ink_threshold", ink_threshold, 0, 1)
    n, frames = clips.shape[:2]
    flat = clips.reshape(n, frames, -1).astype("float64")
    centred = flat - flat.mean(axis=-1, keepdims=True)
    norms = np.sqrt(np.sum(centred**2, axis=-1))
    products = np.sum(centred[:, 1:] * centred[:, :-1], axis=-1)
    denominators = norms[:, 1:] * norms[:, :-1]
    valid = denominators > 1e-12
    correlations = products[valid] / denominators[valid]
    return {
        "mean_pixel": float(clips.mean()),
        "ink_share": float(np.mean(flat.max(axis=-1) > ink_threshold)),
        "frame_correlation": float(correlations.mean())
        if correlations.size
        else float("nan"),
    }


def digit_classifier(frame_size=32, feature_dim=128):
    """A small CNN that says which digits a frame of moving digits shows.

    Frames `(frame_size, frame_size, 1)` in [0, 1] go through five 3x3
    convolutions (two of stride 2), a global max-pooling (a digit is found
    wherever it is in the frame), a dense layer of `feature_dim` units (the
    `features` layer, whose activations `frame_fid` compares) and ten sigmoid
    outputs, one per digit class: the probability that the frame shows that
    digit. It is multi-label because a frame of moving digits shows two
    digits; train it with binary cross-entropy on multi-hot labels
    (`benchmarks/train_digit_classifier.py`).

    Returns:
        A functional `keras.Model` named `digit_classifier`.

    Introduced in: course/06_video_data.ipynb
    """
    frames = keras.Input((frame_size, frame_size, 1), name="frame")
    x = frames
    for filters, strides in ((32, 1), (32, 2), (64, 1), (64, 2), (128, 1)):
        x = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same", activation="relu"
        )(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(10, activation="sigmoid", name="digits")(features)
    return keras.Model(frames, outputs, name="digit_classifier")


def load_digit_classifier(path=None):
    """The shipped digit classifier, `data/pretrained/digit-classifier/model.keras`.

    Its test accuracy and the command that trains it are in the
    `metrics.json` beside it.
    """
    path = pathlib.Path(path or DIGIT_CLASSIFIER_PATH)
    if not path.is_file():
        raise FileNotFoundError(
            f"No digit classifier at {path}. Train one with "
            "`python benchmarks/train_digit_classifier.py` or pass `path=`."
        )
    return keras.saving.load_model(path, safe_mode=True)


def _frames_of(clips, classifier):
    clips = _check_clips(clips)
    frames = clips.reshape((-1,) + clips.shape[2:])
    expected = tuple(classifier.input_shape[1:])
    if frames.shape[1:] != expected:
        raise ValueError(
            f"Expected frames of shape {expected} for this classifier. "
            f"Received: clips of shape {clips.shape}"
        )
    return clips, frames


def _apply_in_batches(model, frames, batch_size):
    # Plain calls, not `model.predict`: `predict` compiles a function per
    # model, and `digit_features` makes a new feature model every call (a
    # loop over tables then floods the log with retracing warnings).
    outputs = [
        ops.convert_to_numpy(model(frames[i : i + batch_size], training=False))
        for i in range(0, len(frames), batch_size)
    ]
    return np.concatenate(outputs)


def digit_features(clips, classifier=None, batch_size=512):
    """The classifier's `features` for every frame: `(n * num_frames, feature_dim)`."""
    classifier = classifier or load_digit_classifier()
    _, frames = _frames_of(clips, classifier)
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output)
    return _apply_in_batches(extractor, frames, batch_size)


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    With means `m_a`, `m_b` and covariances `S_a`, `S_b` of the two sets
    (rows are samples),

        d = |m_a - m_b|**2 + trace(S_a + S_b - 2 (S_a S_b)**(1/2))

    the squared 2-Wasserstein distance between N(m_a, S_a) and N(m_b, S_b),
    which is what FID (Heusel et al., 2017) computes on Inception features.

    Args:
        features_a: `(n_a, d)` feature vectors.
        features_b: `(n_b, d)` feature vectors.

    Returns:
        A float >= 0 (0 for two identical sets).

    Example:

    >>> a = np.random.default_rng(0).normal(size=(500, 3))
    >>> round(frechet_distance(a, a), 6)
    0.0

    Introduced in: course/09_learned_temporal_prior.ipynb
    """
    a = np.asarray(features_a, dtype="float64")
    b = np.asarray(features_b, dtype="float64")
    if (
        a.ndim != 2
        or b.ndim != 2
        or a.shape[1] != b.shape[1]
        or min(len(a), len(b)) < 2
    ):
        raise ValueError(
            "Expected two feature matrices (n, d) with the same d and n >= 2. "
            f"Received: shapes {a.shape} and {b.shape}"
        )
    for name, features in (("features_a", a), ("features_b", b)):
        if not np.all(np.isfinite(features)):
            raise ValueError(f"Expected finite {name}. Received: NaN or inf values")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    # trace((S_a S_b)**(1/2)) = sum of sqrt(eigenvalues of S_a**(1/2) S_b S_a**(1/2)),
    # a symmetric matrix: exact and stable also when a covariance is singular
    # (black frames give constant features).
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    product = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(product), 0, None)))
    distance = (
        np.sum((mean_a - mean_b) ** 2)
        + np.trace(cov_a)
        + np.trace(cov_b)
        - 2.0 * trace_root
    )
    return float(max(distance, 0.0))


def frame_fid(real_clips, generated_clips, classifier=None):
    """Frame FID: `frechet_distance` of digit-classifier features, real vs generated.

    Every frame of every clip is one sample; the two sets may differ in
    size. Lower is better; real clips against other real clips give the
    floor that the number of frames allows.

    Introduced in: course/09_learned_temporal_prior.ipynb
    """
    classifier = classifier or load_digit_classifier()
    return frechet_distance(
        digit_features(real_clips, classifier),
        digit_features(generated_clips, classifier),
    )


def _digit_sets(clips, classifier, threshold, batch_size):
    """Each frame's digits as the classifier reads them.

    The set is the classes whose probability exceeds `threshold`, or the most
    probable class when none does. Returns the probabilities and the sets as
    booleans `(n, num_frames, 10)`, and each set as a 10-bit code `(n,
    num_frames)`.
    """
    threshold = _arguments.in_range("threshold", threshold, 0, 1)
    batch_size = _arguments.positive_int("batch_size", batch_size)
    clips, frames = _frames_of(clips, classifier)
    n, num_frames = clips.shape[:2]
    probabilities = np.asarray(
        _apply_in_batches(classifier, frames, batch_size)
    ).reshape(n, num_frames, -1)
    shown = probabilities > threshold
    top = probabilities.argmax(axis=-1)
    shown[np.arange(n)[:, None], np.arange(num_frames)[None, :], top] = True
    codes = shown.astype("int64") @ (2 ** np.arange(shown.shape[-1]))
    return probabilities, shown, codes


def reconstruction_identity(
    target, prediction, classifier=None, threshold=0.5, batch_size=512
):
    """The share of frames whose digits a model kept: read the same in both.

    The digit classifier reads each frame's set of digits (as in
    `identity_consistency`) in the true frame and in the model's frame (a
    reconstruction, or a predicted future); a frame counts when the two sets
    are equal. An 8 decoded as a bar, or two digits merged into one blob,
    does not count, however high the frame's PSNR.

    Args:
        target: True clips `(n, num_frames, height, width, 1)` in [0, 1].
        prediction: The model's clips, same shape, in [0, 1].
        classifier: A model from `digit_classifier` (default: the shipped one).
        threshold: Probability above which a digit counts as shown.

    Returns:
        A numpy array `(num_frames,)`: for each frame, the share of clips whose
        digits match there. Its mean is the identity score.

    Example: a clip against itself keeps every digit.

    >>> clips = np.zeros((1, 2, 32, 32, 1), "float32")
    >>> reconstruction_identity(clips, clips).tolist()
    [1.0, 1.0]

    Introduced in: course/06_video_data.ipynb
    """
    target = _check_clips(target, "target")
    prediction = _check_clips(prediction, "prediction")
    if target.shape != prediction.shape:
        raise ValueError(
            "Expected `target` and `prediction` of the same shape. "
            f"Received: {target.shape} and {prediction.shape}"
        )
    classifier = classifier or load_digit_classifier()
    _, _, true_codes = _digit_sets(target, classifier, threshold, batch_size)
    _, _, codes = _digit_sets(prediction, classifier, threshold, batch_size)
    return (codes == true_codes).mean(axis=0)


def identity_consistency(clips, classifier=None, threshold=0.5, batch_size=512):
    """Do the digits a clip shows stay the same from frame to frame?

    The digit classifier gives each frame a set of digits: the classes whose
    probability exceeds `threshold` (the single most probable class when none
    does, so a frame always names at least one digit). A clip's identity is
    its most common set over its frames; its consistency is the share of its
    frames whose set equals that identity. A real clip of two moving digits
    scores high but not 1 (about 0.7 with the shipped classifier on 32x32
    clips: frames where the digits overlap read differently);
    a clip whose digits morph into others scores lower.

    Because a blurry blob can be read the same way in every frame, report
    beside it `confidence`, the mean over frames of the probability of the
    least probable digit of the frame's set: high for legible digits, near
    `threshold` or below for blobs.

    Args:
        clips: `(n, num_frames, height, width, 1)` in [0, 1], frames of the
            classifier's input size.
        classifier: A model from `digit_classifier` (default: the shipped one).
        threshold: Probability above which a digit counts as shown.

    Returns:
        A dict of floats: `consistency` (mean over clips, in [0, 1]) and
        `confidence`.

    Introduced in: course/09_learned_temporal_prior.ipynb
    """
    classifier = classifier or load_digit_classifier()
    probabilities, shown, codes = _digit_sets(clips, classifier, threshold, batch_size)
    consistency = []
    for clip_codes in codes:
        _, counts = np.unique(clip_codes, return_counts=True)
        consistency.append(counts.max() / codes.shape[1])
    least = np.where(shown, probabilities, np.inf).min(axis=-1)
    return {
        "consistency": float(np.mean(consistency)),
        "confidence": float(least.mean()),
    }


# Compression baselines: classical codecs on the same clips, their bits counted
# the way a learned codec's are (the coded frames only, no per-file headers).

_VIDEO_ENCODER_OPTIONS = {
    # tune=psnr: x264's default psycho-visual tuning trades PSNR for looks.
    "libx264": {"preset": "veryslow", "tune": "psnr", "threads": "1"},
    "libsvtav1": {"preset": "4"},
    "libaom-av1": {"cpu-used": "4", "threads": "1"},
}
_VIDEO_DECODERS = {
    "libx264": ("h264",),
    "libsvtav1": ("libdav1d", "libaom-av1"),
    "libaom-av1": ("libdav1d", "libaom-av1"),
}
# Parameter sets and headers that a stream pays once (H.264: SEI, SPS, PPS,
# access unit delimiter; AV1: sequence header, temporal delimiter, metadata).
_H264_HEADER_NAL_TYPES = {6, 7, 8, 9}
_AV1_HEADER_OBU_TYPES = {1, 2, 5}


def _to_uint8_frames(clips):
    clips = _check_clips(clips)
    return np.round(clips[..., 0] * 255).astype("uint8")


def _h264_units(data):
    """(nal_unit_type, size) of each NAL unit of an Annex B packet (no start codes)."""
    starts = []
    position = data.find(b"\x00\x00\x01")
    while position >= 0:
        starts.append(position + 3)
        position = data.find(b"\x00\x00\x01", position + 3)
    ends = [start - 3 for start in starts[1:]] + [len(data)]
    # rstrip: the zero byte of a four-byte start code belongs to no unit
    units = [
        data[start:end].rstrip(b"\x00") for start, end in zip(starts, ends, strict=True)
    ]
    return [(unit[0] & 0x1F, len(unit)) for unit in units if unit]


def _av1_units(data):
    """(obu_type, size) of each OBU of a low-overhead AV1 packet, headers included."""
    units, position = [], 0
    while position < len(data):
        header = data[position]
        obu_type, has_extension, has_size = (
            header >> 3 & 15,
            header >> 2 & 1,
            header >> 1 & 1,
        )
        cursor = position + 1 + has_extension
        size, shift = 0, 0
        if has_size:
            while True:  # leb128
                byte = data[cursor]
                size |= (byte & 0x7F) << shift
                cursor, shift = cursor + 1, shift + 7
                if not byte & 0x80:
                    break
        else:
            size = len(data) - cursor
        units.append((obu_type, cursor + size - position))
        position = cursor + size
    return units


def video_codec_round_trip(clips, codec="libx264", crf=30, options=None):
    """Encode each clip as a video with a real codec, decode it, count its bits.

    Each clip is one stream (one key frame, then frames predicted from the
    ones before), encoded by FFmpeg through PyAV (`pip install av`) with no
    container. A grey frame is the luma plane of a `yuv420p` frame, its pixel
    values 0..255 unchanged, the two chroma planes a constant 128 (they cost
    almost nothing). Counted: the bytes of the coded frames (H.264 VCL NAL
    units, without Annex B start codes; AV1 frame, frame-header and tile
    OBUs). Not counted, returned apart: what a stream pays once or a container
    replaces (H.264 SPS, PPS, SEI, which holds x264's ~600-byte settings
    string, and access unit delimiters; AV1 sequence header, temporal
    delimiters and metadata).

    Args:
        clips: `(n, num_frames, height, width, 1)` in [0, 1]; height and width
            even (`yuv420p` halves them for the chroma planes), at least 32
            for `"libsvtav1"`.
        codec: An FFmpeg encoder in `av.codecs_available`: `"libx264"`
            (H.264), `"libsvtav1"` or `"libaom-av1"` (AV1).
        crf: Constant rate factor, the codec's quality knob: lower is better
            and costs more bits (x264: 0..51, AV1 encoders: 0..63).
        options: FFmpeg encoder options that replace the defaults (x264:
            `preset=veryslow`, `tune=psnr`, one thread; SVT-AV1: `preset=4`;
            libaom: `cpu-used=4`, one thread).

    Returns:
        A dict: `decoded`, the decoded clips (float32 in [0, 1], the shape of
        `clips`); `bits_per_frame`, `(n,)` the coded bits of each clip divided
        by its frames; `header_bits_per_frame`, `(n,)` the bits left out, on
        the same scale.

    Example:

    >>> clips = np.zeros((1, 4, 16, 16, 1), "float32")
    >>> clips[:, :, 4:12, 4:12] = 1.0
    >>> result = video_codec_round_trip(clips, codec="libx264", crf=20)
    >>> result["decoded"].shape
    (1, 4, 16, 16, 1)
    >>> bool(result["header_bits_per_frame"][0] > result["bits_per_frame"][0])
    True

    Introduced in: course/10_video_applications.ipynb
    """
    import fractions

    try:
        import av
    except ImportError as error:
        raise ImportError(
            "video_codec_round_trip needs PyAV: pip install av (or vaelib[dev])"
        ) from error
    frames = _to_uint8_frames(clips)
    n, num_frames, height, width = frames.shape
    if height % 2 or width % 2:
        raise ValueError(
            "Expected clips of even height and width (yuv420p). "
            f"Received: {height}x{width}"
        )
    if codec == "libsvtav1" and min(height, width) < 32:
        raise ValueError(
            "Expected frames of at least 32x32 for libsvtav1 (the SVT-AV1 in PyAV "
            f"15 and 16 crashes or hangs on smaller ones). Received: {height}x{width}"
        )
    if codec not in _VIDEO_ENCODER_OPTIONS:
        raise ValueError(
            f"Expected codec in {sorted(_VIDEO_ENCODER_OPTIONS)}. Received: {codec!r}"
        )
    if codec not in av.codecs_available:
        available = sorted(_VIDEO_ENCODER_OPTIONS.keys() & av.codecs_available)
        raise ValueError(
            "Expected an encoder this FFmpeg build has, one of "
            f"{available}. Received: {codec!r}"
        )
    crf = _arguments.integer("crf", crf, minimum=0)
    largest = 51 if codec == "libx264" else 63
    if crf > largest:
        raise ValueError(
            f"Expected crf in 0..{largest} for {codec}. Received: crf={crf}"
        )
    decoder = next(d for d in _VIDEO_DECODERS[codec] if d in av.codecs_available)
    # SVT-AV1 prints its settings to stderr at every start unless told otherwise.
    os.environ.setdefault("SVT_LOG", "1")
    chroma = np.full((height // 2, width), 128, "uint8")  # U and V, each (h/2, w/2)
    decoded = np.zeros(frames.shape, "uint8")
    bits, header_bits = np.zeros(n), np.zeros(n)
    for index, clip in enumerate(frames):
        encoder = av.CodecContext.create(codec, "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base, encoder.framerate = fractions.Fraction(1, 10), 10
        encoder.options = {
            **_VIDEO_ENCODER_OPTIONS[codec],
            **(options or {}),
            "crf": str(crf),
        }
        packets = []
        for t, frame in enumerate(clip):
            # (height * 3 / 2, width): the Y plane, then U and V
            picture = av.VideoFrame.from_ndarray(
                np.concatenate([frame, chroma]), format="yuv420p"
            )
            picture.pts = t
            packets += encoder.encode(picture)
        packets += encoder.encode(None)
        units_of = _h264_units if codec == "libx264" else _av1_units
        header_types = (
            _H264_HEADER_NAL_TYPES if codec == "libx264" else _AV1_HEADER_OBU_TYPES
        )
        for packet in packets:
            for unit_type, size in units_of(bytes(packet)):
                if unit_type in header_types:
                    header_bits[index] += 8 * size
                else:
                    bits[index] += 8 * size
        decoding = av.CodecContext.create(decoder, "r")
        pictures = [p for packet in packets for p in decoding.decode(packet)]
        pictures += decoding.decode(None)
        if len(pictures) != num_frames:
            raise RuntimeError(
                f"{codec} returned {len(pictures)} frames for {num_frames}"
            )
        for t, picture in enumerate(pictures):
            decoded[index, t] = picture.to_ndarray(format="yuv420p")[:height]
    return {
        "decoded": (decoded[..., None] / 255.0).astype("float32"),
        "bits_per_frame": bits / num_frames,
        "header_bits_per_frame": header_bits / num_frames,
    }


def _jpeg_scan_start(data):
    """Offset of the entropy-coded data: just after the SOS segment's header."""
    position = 2  # after SOI
    while True:
        marker, length = (
            data[position + 1],
            int.from_bytes(data[position + 2 : position + 4], "big"),
        )
        position += 2 + length
        if marker == 0xDA:  # SOS
            return position


def jpeg_round_trip(clips, quality=50):
    """Encode every frame as a grey baseline JPEG (Pillow), decode it, count its bits.

    Counted: the entropy-coded scan data of each frame, from the end of the
    start-of-scan header to the end-of-image marker (excluded). Not counted,
    returned apart: everything before the scan (JFIF header, quantisation and
    Huffman tables, frame and scan headers) and the two-byte end marker. At one
    quality and frame size these bytes are the same for every frame (Pillow's
    standard Huffman tables, no `optimize`), so a decoder told them once could
    read bare scans; the function checks that they are identical.

    Args:
        clips: `(n, num_frames, height, width, 1)` in [0, 1].
        quality: JPEG quality, 1 (smallest) to 95.

    Returns:
        A dict as `video_codec_round_trip`'s: `decoded`, `bits_per_frame`
        `(n,)`, `header_bits_per_frame` `(n,)`.

    Example:

    >>> clips = np.zeros((1, 2, 16, 16, 1), "float32")
    >>> result = jpeg_round_trip(clips, quality=50)
    >>> float(result["header_bits_per_frame"][0] / 8)  # bytes, tables included
    330.0

    Introduced in: course/10_video_applications.ipynb
    """
    import io

    from PIL import Image

    frames = _to_uint8_frames(clips)
    quality = _arguments.integer("quality", quality, minimum=1)
    if quality > 95:
        raise ValueError(f"Expected quality <= 95. Received: quality={quality}")
    decoded = np.zeros(frames.shape, "uint8")
    bits, header_bits = np.zeros(frames.shape[:2]), np.zeros(frames.shape[:2])
    headers = set()
    for index in np.ndindex(frames.shape[:2]):
        buffer = io.BytesIO()
        Image.fromarray(frames[index]).save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        scan_start = _jpeg_scan_start(data)
        headers.add(data[:scan_start] + data[-2:])
        bits[index] = 8 * (len(data) - scan_start - 2)
        header_bits[index] = 8 * (scan_start + 2)
        decoded[index] = np.asarray(Image.open(buffer))
    if len(headers) > 1:
        raise RuntimeError("JPEG headers differ between frames; they cannot be shared")
    return {
        "decoded": (decoded[..., None] / 255.0).astype("float32"),
        "bits_per_frame": bits.mean(axis=1),
        "header_bits_per_frame": header_bits.mean(axis=1),
    }
