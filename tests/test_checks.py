"""Each check passes on a correct answer and fails, with a hint, on planted faults."""

import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from keras import ops

from vaelib import checks
from vaelib.data import MovingDigits, load_digits_images
from vaelib.layers import Sampling
from vaelib.losses import bernoulli_nll, gaussian_kl
from vaelib.models import copy_last_frame, mlp_vae

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "course" / "assignments"


def _fails_with(check, answer, message, *args):
    with pytest.raises(AssertionError, match=message):
        check(answer, *args)


def _sampler(scale):
    seed = keras.random.SeedGenerator(0)

    def sample(z_mean, z_log_var):
        noise = keras.random.normal(ops.shape(z_mean), seed=seed)
        return z_mean + scale(z_log_var) * noise

    return sample


def test_check_sampling():
    assert "correct" in checks.check_sampling(Sampling(seed=3))
    assert "correct" in checks.check_sampling(_sampler(lambda v: ops.exp(0.5 * v)))
    _fails_with(
        checks.check_sampling,
        _sampler(ops.exp),
        r"you used exp\(z_log_var\) as the standard deviation",
    )
    _fails_with(
        checks.check_sampling,
        _sampler(lambda v: v),
        "multiplied the noise by z_log_var",
    )
    _fails_with(
        checks.check_sampling,
        lambda m, v: ops.exp(0.5 * v) * keras.random.normal(ops.shape(m)),
        "did you add z_mean",
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


def test_check_gaussian_kl():
    assert "correct" in checks.check_gaussian_kl(gaussian_kl)
    _fails_with(
        checks.check_gaussian_kl,
        _kl(lambda t: 0.5 * ops.mean(t, axis=tuple(range(1, len(ops.shape(t)))))),
        "you averaged over latent dimensions",
    )
    _fails_with(checks.check_gaussian_kl, _kl(_per_example_sum), "factor 0.5 in front")
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
        "'- 1' inside the sum is missing",
    )


def test_check_vae_loss():
    def correct(x, logits, z_mean, z_log_var):
        return bernoulli_nll(x, logits) + gaussian_kl(z_mean, z_log_var)

    assert "correct" in checks.check_vae_loss(correct)
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
        "MSE averaged over pixels, with no KL",
    )
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: bernoulli_nll(x, logits) - gaussian_kl(m, v),
        "the KL is subtracted",
    )
    _fails_with(
        checks.check_vae_loss,
        lambda x, logits, m, v: ops.mean(correct(x, logits, m, v)),
        r"expected \(\d+,\), one negative ELBO per example",
    )


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
        checks.check_encoder, _encoder(), r"has shape \(16, 3\); expected \(16, 5\)",
        (8, 8, 1), 5,
    )  # fmt: skip


def test_check_trained_image_vae():
    images = load_digits_images("train", source="sklearn").images
    test = load_digits_images("test", source="sklearn").images
    keras.utils.set_random_seed(0)
    model = mlp_vae(latent_dim=8, hidden=(128,), seed=0)
    untrained = checks.check_trained_image_vae
    _fails_with(untrained, model, "The held-out negative ELBO is", test, 250.0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(images, epochs=8, batch_size=64, verbose=0)
    assert "<= 250.0" in checks.check_trained_image_vae(model, test, 250.0)
    _fails_with(untrained, model, "target is 50.0", test, 50.0)
    _fails_with(untrained, model.encoder, "Expected a vaelib.models.VAE", test, 250.0)


def test_check_frame_predictor():
    def oracle(context):
        # The checker's own clips: the best possible predictor (for this test only).
        clips = MovingDigits(
            frame_size=32, num_frames=10, digit_size=14, speed=1.8, split="test",
            seed=checks.SEED,
        ).clips(len(context))  # fmt: skip
        return clips[:, 5:]

    assert "MSE per frame 0.0" in checks.check_frame_predictor(oracle)
    _fails_with(
        checks.check_frame_predictor,
        lambda context: copy_last_frame(context, 5),
        "does not beat copy-last-frame",
    )
    _fails_with(
        checks.check_frame_predictor,
        lambda context: copy_last_frame(context, 4),
        "expected .*the 5 frames after the context",
    )
    _fails_with(
        checks.check_frame_predictor,
        lambda context: 8.0 * oracle(context) - 4.0,
        "apply the sigmoid to the logits",
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the notebooks run on the default backend; once is enough",
)
def test_grade_command_scores_a_correct_and_a_wrong_submission(tmp_path):
    name = "01_reparameterisation_and_kl.ipynb"
    shutil.copy(ASSIGNMENTS / "solutions" / name, tmp_path / "ada.ipynb")
    shutil.copy(ASSIGNMENTS / name, tmp_path / "bert.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "vaelib", "grade", str(tmp_path), "--csv",
         str(tmp_path / "scores.csv")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout
    assert (
        "| ada.ipynb  | pass           | pass              | pass           | 3/3"
        in (table)
    )
    assert (
        "| bert.ipynb | FAIL           | FAIL              | FAIL           | 0/3"
        in (table)
    )
    assert (
        "bert.ipynb, check_gaussian_kl: AssertionError: gaussian_kl is not written"
        in (table)
    )
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[1:] == ["ada.ipynb,1,1,1,3,3", "bert.ipynb,0,0,0,0,3"]


def test_every_starter_has_a_solution_with_the_same_checks():
    import nbformat

    starters = sorted(ASSIGNMENTS.glob("*.ipynb"))
    assert len(starters) >= 4
    for starter in starters:
        solution = ASSIGNMENTS / "solutions" / starter.name
        assert solution.is_file(), f"{starter.name} has no solution"
        sources = [
            [
                c.source
                for c in nbformat.read(path, 4).cells
                if "check" in c.metadata.get("tags", [])
            ]
            for path in (starter, solution)
        ]
        assert sources[0] == sources[1] and sources[0], starter.name
