"""Each check passes on a correct answer and fails, with a hint, on planted faults."""

import os
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
from keras import ops

from vaelib import checks
from vaelib.layers import Sampling
from vaelib.losses import bernoulli_nll, gaussian_kl
from vaelib.models import copy_last_frame, mlp_vae

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "course" / "assignments"


def _fails_with(check, answer, message, *args, **kwargs):
    with pytest.raises(AssertionError, match=message):
        check(answer, *args, **kwargs)


def _sampler(scale, noise=keras.random.normal):
    seed = keras.random.SeedGenerator(0)

    def sample(z_mean, z_log_var):
        return z_mean + scale(z_log_var) * noise(ops.shape(z_mean), seed=seed)

    return sample


@pytest.mark.every_backend
def test_check_sampling():
    assert "gradients" in checks.check_sampling(Sampling(seed=3))
    assert "gradients" in checks.check_sampling(Sampling(seed=3), seed=7)
    assert "gradients" in checks.check_sampling(_sampler(lambda v: ops.exp(0.5 * v)))
    _fails_with(
        checks.check_sampling,
        _sampler(ops.exp),
        r"exp\(z_log_var\) is the variance, not the standard deviation",
    )
    _fails_with(
        checks.check_sampling, _sampler(lambda v: v), "z_log_var is a log-variance"
    )
    _fails_with(
        checks.check_sampling,
        lambda m, v: ops.exp(0.5 * v) * keras.random.normal(ops.shape(m)),
        "is z_mean added",
    )
    _fails_with(
        checks.check_sampling,
        lambda m, v: m + ops.exp(0.5 * v) * keras.random.normal(ops.shape(m), seed=1),
        "Two calls gave the same z",
    )
    _fails_with(
        checks.check_sampling,
        lambda m, v: m + ops.exp(0.5 * v) * keras.random.normal((1, ops.shape(m)[1])),
        "Rows with the same z_mean",
    )

    def uniform(shape, seed):
        return keras.random.uniform(shape, -(3**0.5), 3**0.5, seed=seed)

    _fails_with(
        checks.check_sampling,
        _sampler(lambda v: ops.exp(0.5 * v), uniform),
        "not Gaussian",
    )

    def numpy_sample(z_mean, z_log_var):
        z_mean, z_log_var = np.asarray(z_mean), np.asarray(z_log_var)
        noise = np.random.default_rng().standard_normal(z_mean.shape)
        return z_mean + np.exp(0.5 * z_log_var) * noise

    _fails_with(checks.check_sampling, numpy_sample, "No gradient reaches")

    def unanswered(z_mean, z_log_var):
        raise NotImplementedError

    _fails_with(checks.check_sampling, unanswered, "not written yet")


def _kl(transform):
    def kl(z_mean, z_log_var):
        terms = ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var
        return transform(terms)

    return kl


def _per_example_sum(terms):
    return ops.sum(terms, axis=tuple(range(1, len(ops.shape(terms)))))


@pytest.mark.every_backend
def test_check_gaussian_kl():
    assert "gradients correct" in checks.check_gaussian_kl(gaussian_kl)
    assert "gradients correct" in checks.check_gaussian_kl(gaussian_kl, seed=11)
    _fails_with(
        checks.check_gaussian_kl,
        _kl(lambda t: 0.5 * ops.mean(t, axis=tuple(range(1, len(ops.shape(t)))))),
        "you averaged over latent dimensions",
    )
    _fails_with(
        checks.check_gaussian_kl, _kl(_per_example_sum), "the constant factor in front"
    )
    _fails_with(
        checks.check_gaussian_kl,
        lambda m, v: 0.5 * _per_example_sum(-ops.exp(v) + ops.square(m) - 1 + v),
        "is negative",
    )
    _fails_with(
        checks.check_gaussian_kl,
        _kl(lambda t: 0.5 * ops.sum(t)),
        "you reduced over the batch too",
    )
    _fails_with(
        checks.check_gaussian_kl,
        _kl(lambda t: 0.5 * ops.sum(t, axis=-1)),
        "sum over every axis except the first",
    )
    _fails_with(
        checks.check_gaussian_kl,
        lambda m, v: 0.5 * _per_example_sum(ops.exp(v) + ops.square(m) - v),
        "a constant term inside the sum is missing",
    )

    def numpy_kl(z_mean, z_log_var):
        z_mean, z_log_var = np.asarray(z_mean), np.asarray(z_log_var)
        terms = np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var
        return 0.5 * terms.sum(axis=tuple(range(1, z_mean.ndim)))

    _fails_with(checks.check_gaussian_kl, numpy_kl, "No gradient reaches")


def test_failing_checks_do_not_print_the_expected_values():
    def off_by_a_little(z_mean, z_log_var):
        return gaussian_kl(z_mean, z_log_var) * 1.01

    with pytest.raises(AssertionError) as failure:
        checks.check_gaussian_kl(off_by_a_little)
    assert not any(
        character.isdigit() for character in str(failure.value).split(":")[-1]
    )


@pytest.mark.every_backend
def test_check_vae_loss():
    def correct(x, logits, z_mean, z_log_var):
        return bernoulli_nll(x, logits) + gaussian_kl(z_mean, z_log_var)

    assert "gradients" in checks.check_vae_loss(correct)
    assert "gradients" in checks.check_vae_loss(correct, seed=5)
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: bernoulli_nll(x, logits),
        "the KL term is missing",
    )
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: ops.mean(
            ops.square(x - ops.sigmoid(logits)), axis=(1, 2, 3)
        ),
        "averaged over pixels with no KL",
    )
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: bernoulli_nll(x, logits) - gaussian_kl(m, v),
        "the KL has the wrong sign",
    )
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: ops.mean(correct(x, logits, m, v)),
        "one negative ELBO per example",
    )

    def frozen_logits(x, logits, z_mean, z_log_var):
        constant = ops.convert_to_tensor(ops.convert_to_numpy(logits))
        return bernoulli_nll(x, constant) + gaussian_kl(z_mean, z_log_var)

    _fails_with(checks.check_vae_loss, frozen_logits, "No gradient reaches")


def _encoder(mean_activation=None, two_heads=True):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    z_mean = keras.layers.Dense(3, activation=mean_activation)(x)
    if not two_heads:
        return keras.Model(inputs, z_mean)
    return keras.Model(inputs, [z_mean, keras.layers.Dense(3)(x)])


def test_check_encoder():
    assert "two linear heads" in checks.check_encoder(_encoder(), (8, 8, 1), 3)
    _fails_with(
        checks.check_encoder,
        _encoder("relu"),
        "the mean head must be linear",
        (8, 8, 1),
        3,
    )
    _fails_with(
        checks.check_encoder,
        _encoder(two_heads=False),
        "must return two tensors",
        (8, 8, 1),
        3,
    )
    _fails_with(
        checks.check_encoder, _encoder(), r"has shape \(16, 3\) for 16 inputs",
        (8, 8, 1), 5,
    )  # fmt: skip


def test_check_written_by_hand():
    def own(z_mean, z_log_var):
        return ops.sum(ops.exp(z_log_var) + ops.square(z_mean), axis=1)

    def borrowed(z_mean, z_log_var):
        return gaussian_kl(z_mean, z_log_var)

    assert "written by hand" in checks.check_written_by_hand(own, _encoder)
    _fails_with(checks.check_written_by_hand, borrowed, "calls vaelib's gaussian_kl")
    _fails_with(checks.check_written_by_hand, Sampling(), "is vaelib's own version")
    _fails_with(checks.check_written_by_hand, mlp_vae, "is vaelib's own version")
    assert "written by hand" in checks.check_written_by_hand(
        borrowed, allowed=("gaussian_kl",)
    )


def test_check_trained_image_vae():
    train = checks_digits("train")
    keras.utils.set_random_seed(0)
    model = mlp_vae(latent_dim=8, hidden=(128,), seed=0)
    _fails_with(checks.check_trained_image_vae, model, "The held-out negative ELBO is")
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(train, epochs=20, batch_size=64, verbose=0)
    assert "<= 150.0" in checks.check_trained_image_vae(model, num_images=300)
    _fails_with(checks.check_trained_image_vae, model.encoder, "Expected a vaelib")

    blind = mlp_vae(latent_dim=8, hidden=(128,), seed=0)
    blind.decoder = keras.Sequential(
        [keras.Input((8,)), keras.layers.Lambda(lambda z: 0.0 * z[:, :1] + 0.0),
         keras.layers.Dense(28 * 28), keras.layers.Reshape((28, 28, 1))]
    )  # fmt: skip
    _fails_with(
        checks.check_trained_image_vae, blind, "ignores its latent code", num_images=50
    )


def checks_digits(split):
    from vaelib.data import load_digits_images

    return load_digits_images(split, source="sklearn").images


def test_check_frame_predictor(monkeypatch):
    if os.environ.get("VAELIB_MNIST"):
        # The clip helper loads the MNIST file faster than scikit-learn imports.
        monkeypatch.delenv("VAELIB_DIGITS_SOURCE", raising=False)

    def blank(context):
        return np.zeros((len(context), 5, 32, 32, 1), "float32")

    _fails_with(checks.check_frame_predictor, blank, "the best simple baseline")
    _fails_with(
        checks.check_frame_predictor,
        lambda context: copy_last_frame(context, 5),
        "the best simple baseline",
        seed=3,
    )
    _fails_with(
        checks.check_frame_predictor,
        lambda context: copy_last_frame(context, 4),
        "return the 5 frames after the context",
    )
    _fails_with(
        checks.check_frame_predictor,
        lambda context: 8.0 * copy_last_frame(context, 5) - 4.0,
        "apply the sigmoid to the logits",
    )


def test_the_future_frames_never_enter_this_process():
    from vaelib.grading import FutureFrames

    with FutureFrames(32, 10, 5, 6, seed=checks.SEED) as first:
        context = first.context()
    with FutureFrames(32, 10, 5, 6, seed=checks.SEED) as second:
        again = second.context()
    # The helper mixes fresh entropy into the seed: a known seed remakes nothing.
    assert context.shape == (6, 5, 32, 32, 1)
    assert not np.allclose(context, again)


def test_grading_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(checks.GRADING_SEED_VARIABLE, "42")
    assert checks.grading_seed() == 42
    monkeypatch.delenv(checks.GRADING_SEED_VARIABLE)
    assert len({checks.grading_seed() for _ in range(5)}) > 1
    monkeypatch.setenv(checks.GRADING_SEED_VARIABLE, "forty-two")
    with pytest.raises(ValueError, match="Expected \\$VAELIB_GRADING_SEED"):
        checks.grading_seed()


def test_every_assignment_has_a_source_and_a_generated_release():
    sources = sorted((ASSIGNMENTS / "source").glob("*/*.ipynb"))
    assert [path.stem for path in sources] == [
        "01_reparameterisation_and_kl",
        "02_train_a_conv_vae",
        "03_fix_a_broken_vae",
        "04_video_predictor",
    ]
    for source in sources:
        release = ASSIGNMENTS / "release" / source.parent.name / source.name
        assert release.is_file(), f"run nbgrader generate_assignment {source.stem}"
        tests = [
            [
                cell.source
                for cell in nbformat.read(path, 4).cells
                if cell.metadata.get("nbgrader", {}).get("grade")
            ]
            for path in (source, release)
        ]
        assert len(tests[0]) == len(tests[1]) >= 1
        for hidden, visible in zip(*tests, strict=True):
            assert "BEGIN HIDDEN TESTS" in hidden
            assert "HIDDEN" not in visible and "grading_seed" not in visible


def test_the_image_vae_check_logs_no_fallback_warning(caplog):
    # nbgrader scores a test cell with stderr output as failed: the loader's
    # warning about scikit-learn's digits zeroed a correct submission.
    from vaelib import checks
    from vaelib.models import conv_vae

    caplog.set_level("INFO")
    with pytest.raises(AssertionError):
        checks.check_trained_image_vae(conv_vae(latent_dim=2, seed=0))
    assert not [r for r in caplog.records if r.name == "vaelib.data.digits"]


def test_check_written_by_hand_judges_what_is_reached():
    import vaelib.layers as vl
    import vaelib.losses as library_losses

    # an honest alias to an allowed building block passes (issue 28, point 7)
    namespace = {"vl": vl, "keras": keras}
    exec(
        "def build(frames):\n"
        "    return vl.PerFrame(keras.layers.Conv2D(4, 3))(frames)\n",
        namespace,
    )
    assert "written by hand" in checks.check_written_by_hand(
        namespace["build"], allowed=("PerFrame",)
    )
    # the same alias to what must be written fails
    namespace = {"kl": library_losses}
    exec("def loss(m, v):\n    return kl.gaussian_kl(m, v)\n", namespace)
    _fails_with(checks.check_written_by_hand, namespace["loss"], "gaussian_kl")

    # a subclass of vaelib's layer, a default argument, a closure
    class MySampling(Sampling):
        pass

    _fails_with(checks.check_written_by_hand, MySampling, "Sampling")

    def with_default(z_mean, z_log_var, kl=gaussian_kl):
        return kl(z_mean, z_log_var)

    _fails_with(checks.check_written_by_hand, with_default, "gaussian_kl")

    def wrap(function):
        def loss(z_mean, z_log_var):
            return function(z_mean, z_log_var)

        return loss

    _fails_with(checks.check_written_by_hand, wrap(gaussian_kl), "gaussian_kl")

    # and a closure over the student's own function passes
    def own(z_mean, z_log_var):
        return ops.sum(ops.square(z_mean) + ops.exp(z_log_var), axis=1)

    assert "written by hand" in checks.check_written_by_hand(wrap(own))
