"""Points computed outside the student's kernel (issue 28).

Assignment 4's clips:
Under `python -m vaelib grade` the helper behind `check_frame_predictor` is
the grader's `ClipServer`, a process the kernel reaches through a Unix socket
and cannot change; each exchange is recorded where the kernel cannot write,
and `predictor_verdict` gives the test cell's points from those records. The
tuned-blur baseline keeps the pass mark above a blur of the last frame.
(Assignment 2's model scored in a trusted process: tests/test_grading.py.)
Assignments 1 and 3: the grader's `AnswerServer` calls the learner's functions
through a socket and computes the values, gradients and verdict itself.
"""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from vaelib import grading


def _clips(seed=0, n=6, steps=4, size=16):
    rng = np.random.default_rng(seed)
    last = np.zeros((n, size, size, 1), "float32")
    for clip in last:
        x, y = rng.integers(3, size - 6, 2)
        clip[y : y + 3, x : x + 3] = 1.0
    future = np.stack([np.roll(last, k + 1, axis=2) for k in range(steps)], axis=1)
    return last, future


def _mse(target, prediction):
    return np.square(target - prediction).sum(axis=(2, 3, 4)).mean()


def test_the_tuned_blur_is_never_worse_than_blank_or_copy_last_at_any_step():
    last, future = _clips()
    blur = grading.tuned_blur(last, future)
    for step in range(future.shape[1]):
        target = future[:, step : step + 1]
        ours = _mse(target, blur[:, step : step + 1])
        assert ours <= _mse(target, np.zeros_like(target)) + 1e-9
        assert ours <= _mse(target, last[:, None]) + 1e-9


def test_the_tuned_blur_finds_a_dimmed_blur_from_its_grid_exactly():
    last, _ = _clips(seed=1)
    # scipy's filter on one frame at a time: a second way of computing it
    widths, gains = (1.0, 2.5, 4.0), (0.9, 0.6, 0.3)
    future = np.stack(
        [
            gain
            * np.stack(
                [gaussian_filter(frame, sigma=(width, width, 0)) for frame in last]
            )
            for width, gain in zip(widths, gains, strict=True)
        ],
        axis=1,
    )
    np.testing.assert_allclose(grading.tuned_blur(last, future), future, atol=1e-5)


def test_predictor_scores_pass_only_under_the_margin_of_the_best_baseline():
    last, future = _clips(seed=2)
    context = np.repeat(last[:, None], 2, axis=1)
    perfect = grading.predictor_scores(context, future, future)
    assert perfect["passed"] and perfect["prediction"] == 0
    best = min(perfect[name] for name in grading.BASELINES)
    # the tuned blur is reported, never worse than copy-last or blank frames
    assert perfect["tuned_blur"] <= min(perfect["copy_last"], perfect["blank"])
    for factor, passes in ((0.84, True), (0.86, False)):
        # the future mixed with grey: in [0, 1], MSE `factor` x the best baseline's
        grey = np.full_like(future, 0.5)
        mix = np.sqrt(factor * best / _mse(future, grey))
        guess = (1 - mix) * future + mix * grey
        scores = grading.predictor_scores(context, future, guess)
        assert scores["prediction"] == pytest.approx(factor * best, rel=1e-4)
        assert scores["passed"] is passes
    assert not grading.predictor_scores(context, future, future * 2)["passed"]
    assert not grading.predictor_scores(context, future, future * np.nan)["passed"]


def _exchange(seed, predict, settings=(32, 10, 5, 96)):
    with grading.FutureFrames(*settings, seed=seed) as clips:
        context = clips.context()
        return context, clips.score(predict(context))


def test_the_clip_server_answers_through_its_socket_and_records_each_exchange(
    tmp_path, monkeypatch
):
    records = tmp_path / "grader" / "future_frames.jsonl"
    server = grading.ClipServer(tmp_path / "clips", records)
    try:
        monkeypatch.setenv(grading.FUTURE_FRAMES_VARIABLE, str(server.socket_path))
        context, scores = _exchange(7, lambda c: np.zeros((len(c), 5, 32, 32, 1)))
        assert context.shape == (96, 5, 32, 32, 1) and context.max() > 0
        assert scores["passed"] is False and scores["blank"] > 0
        _exchange(8, lambda c: np.repeat(c[:, -1:], 5, axis=1))
        with pytest.raises(RuntimeError, match="closed the connection"):
            _exchange(9, lambda c: np.zeros((len(c), 3, 32, 32, 1)))
        # only the assignment's clips: no other sizes (nor huge ones)
        with pytest.raises(RuntimeError, match="closed the connection"):
            _exchange(10, lambda c: c, settings=(32, 10, 5, 10**6))
    finally:
        server.close()
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [line["seed"] for line in lines] == [7, 8, 9, 10]
    blank = lines[0]["scores"]
    assert blank["prediction"] == pytest.approx(blank["blank"])
    assert lines[0]["passed"] is False and "failed" in lines[0]["message"]
    assert "expected a prediction of shape" in lines[2]["error"]
    assert "makes clips of" in lines[3]["error"]
    assert not any(line["passed"] for line in lines)


def test_the_grader_s_own_processes_see_what_a_sandboxed_kernel_sees(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(grading.GRADING_SEED_VARIABLE, "123")
    monkeypatch.setenv("KERAS_HOME", "/somewhere/with/a/cache")
    monkeypatch.setenv("VAELIB_MNIST", "/data/mnist.npz")
    sandboxed = grading.trusted_environment("bwrap", home=tmp_path)
    assert sandboxed["HOME"] == str(tmp_path)
    assert sandboxed["VAELIB_MNIST"] == "/data/mnist.npz"
    assert "KERAS_HOME" not in sandboxed  # the kernel has no such cache
    assert grading.GRADING_SEED_VARIABLE not in sandboxed
    unsandboxed = grading.trusted_environment("none", home=tmp_path)
    assert unsandboxed["KERAS_HOME"] == "/somewhere/with/a/cache"
    assert grading.GRADING_SEED_VARIABLE not in unsandboxed


def _records(path, *entries):
    path.write_text(
        "".join(
            json.dumps({"seed": seed, "settings": settings, "passed": passed,
                        "message": f"exchange {i}"}) + "\n"
            for i, (seed, settings, passed) in enumerate(entries)
        )
    )  # fmt: skip
    return path


def test_the_verdict_needs_every_graded_exchange_to_pass(tmp_path):
    graded, other = (
        grading.PREDICTOR_SETTINGS,
        {**grading.PREDICTOR_SETTINGS, "num_clips": 4},
    )
    path = tmp_path / "records.jsonl"
    assert grading.predictor_verdict(path, 5)["passed"] is False  # nothing recorded
    path.write_text('{"seed": 5, "settings": {"frame_si')  # cut short
    assert "a broken record" in grading.predictor_verdict(path, 5)["messages"][0]
    _records(path, (1, graded, True), (5, other, True))
    verdict = grading.predictor_verdict(path, 5)
    assert verdict["passed"] is False  # the public seed, other settings: not graded
    assert "no prediction of the hidden test" in verdict["messages"][0]
    _records(path, (5, graded, True))
    assert grading.predictor_verdict(path, 5) == {
        "passed": True,
        "messages": ["exchange 0"],
    }
    # asking again and again does not pick the best answer
    _records(path, (5, graded, False), (5, graded, True))
    assert grading.predictor_verdict(path, 5)["passed"] is False


def _predictor(peeks=False, frames=10, size=32, recurrent=True):
    """Assignment 4's model, untrained; with `peeks` its encoder sees every frame.

    Without `recurrent`, its decoder has per-frame layers only (no ConvLSTM).
    """
    import keras

    from vaelib.layers import GaussianHead, PerFrame
    from vaelib.models import VAE

    clip = keras.Input((frames, size, size, 1))
    future = frames // 2
    x = clip if peeks else keras.layers.Cropping3D(((0, future), (0, 0), (0, 0)))(clip)
    x = PerFrame(keras.layers.Conv2D(4, 3, strides=4, padding="same"))(x)
    z_mean, z_log_var = GaussianHead(2, kernel_size=1)(x)
    if not peeks:
        prior = ((0, future), (0, 0), (0, 0))
        z_mean = keras.layers.ZeroPadding3D(prior)(z_mean)
        z_log_var = keras.layers.ZeroPadding3D(prior)(z_log_var)
    latent = keras.Input((frames, size // 4, size // 4, 2))
    x = latent
    if recurrent:
        x = keras.layers.ConvLSTM2D(2, 1, return_sequences=True)(x)
    logits = PerFrame(keras.layers.Conv2DTranspose(1, 3, strides=4, padding="same"))(x)
    return VAE(keras.Model(clip, [z_mean, z_log_var]), keras.Model(latent, logits))


def test_the_handed_in_predictor_is_run_outside_and_must_not_see_the_future(tmp_path):
    import keras

    _predictor().save(tmp_path / "honest.keras")
    _predictor(peeks=True).save(tmp_path / "peeks.keras")
    inputs = keras.Input((10, 32, 32, 1))
    keras.Model(inputs, inputs).save(tmp_path / "not_a_vae.keras")

    untrained = grading.score_outside("video-predictor", tmp_path / "honest.keras", 1)
    assert untrained["passed"] is False
    assert untrained["messages"][0].startswith("the handed-in model: MSE per frame")
    peeks = grading.score_outside("video-predictor", tmp_path / "peeks.keras", 1)
    assert "its encoder must never see them" in peeks["messages"][0]
    _predictor(recurrent=False).save(tmp_path / "per_frame.keras")
    per_frame = grading.score_outside(
        "video-predictor", tmp_path / "per_frame.keras", 1
    )
    assert "decoder has no ConvLSTM layer" in per_frame["messages"][0]
    from vaelib.models import convlstm_predictor

    ready_made = convlstm_predictor(
        input_shape=(10, 32, 32, 1), context_frames=5, filters=(4, 8), lstm_filters=4
    )
    ready_made.save(tmp_path / "ready_made.keras")
    library = grading.score_outside("video-predictor", tmp_path / "ready_made.keras", 1)
    assert "received a ConvLSTMPredictor" in library["messages"][0], library
    other = grading.score_outside("video-predictor", tmp_path / "not_a_vae.keras", 1)
    assert (
        "Expected the handed-in predictor to be a vaelib.models.VAE"
        in (other["messages"][0])
    )


# Assignments 1 and 3: the learner's functions, called by the grader's
# AnswerServer through a socket (arrays in, arrays out); every value,
# gradient and verdict is computed in that process.


def _numpy_kl(z_mean, z_log_var):
    z_mean, z_log_var = np.asarray(z_mean), np.asarray(z_log_var)
    axes = tuple(range(1, z_mean.ndim))
    return 0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var).sum(axis=axes)


def _uniform_sample(z_mean, z_log_var):
    import keras
    from keras import ops

    noise = keras.random.uniform(ops.shape(z_mean), -(3**0.5), 3**0.5)
    return z_mean + ops.exp(0.5 * z_log_var) * noise


@pytest.fixture()
def answer_server(tmp_path, monkeypatch):
    records = tmp_path / "grader" / "answers.jsonl"
    server = grading.AnswerServer(tmp_path / "answers", records)
    monkeypatch.setenv(grading.ANSWERS_VARIABLE, str(server.socket_path))
    yield records
    server.close()


def test_honest_functions_in_any_style_pass_outside(answer_server):
    import keras
    import tensorflow as tf
    from keras import ops

    import vaelib.layers as vl
    from vaelib import checks
    from vaelib.losses import bernoulli_nll, gaussian_kl

    def tf_kl(z_mean, z_log_var):
        terms = tf.exp(z_log_var) + tf.square(z_mean) - 1.0 - z_log_var
        return 0.5 * tf.reduce_sum(tf.reshape(terms, (tf.shape(terms)[0], -1)), -1)

    def vae_loss(x, logits, z_mean, z_log_var):
        return bernoulli_nll(x, logits) + gaussian_kl(z_mean, z_log_var)

    def sample(z_mean, z_log_var):
        noise = keras.random.normal(ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * noise

    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    encoder = keras.Model(
        inputs, [keras.layers.Dense(7)(hidden), keras.layers.Dense(7)(hidden)]
    )
    for name, answer in (
        ("gaussian_kl", gaussian_kl),
        ("gaussian_kl", tf_kl),
        ("vae_loss", vae_loss),
        ("sampling", vl.Sampling(seed=1)),  # a layer, through a module alias
        ("sampling", sample),
        ("encoder", encoder),
    ):
        assert "outside the notebook" in checks.answer_outside(name, answer)
    for task in ("gaussian_kl", "vae_loss", "sampling", "encoder"):
        verdict = grading.answers_verdict(answer_server, task)
        assert verdict["passed"], verdict
    lines = answer_server.read_text().splitlines()
    seeds = [json.loads(line)["seed"] for line in lines]
    assert len(set(seeds)) == len(seeds)  # drawn by the server, each time new


def test_wrong_functions_fail_outside_even_with_the_kernel_s_checks_patched(
    answer_server, monkeypatch
):
    import scipy.stats
    from keras import ops

    from vaelib import checks

    # the kernel's own copy of the test is fooled; the server's is not
    monkeypatch.setattr(scipy.stats, "kstest", lambda *a, **k: (0.0, 1.0))
    checks.check_sampling(_uniform_sample)
    for name, answer, why in (
        ("sampling", _uniform_sample, "not Gaussian"),
        ("gaussian_kl", _numpy_kl, "No gradient reaches"),
        ("gaussian_kl", lambda m, v: ops.mean(ops.exp(v) + m**2 - 1 - v, -1), "wrong"),
        ("vae_loss", lambda *a: 1 / 0, "ZeroDivisionError"),
    ):
        with pytest.raises(AssertionError, match=why):
            checks.answer_outside(name, answer)
    with pytest.raises(RuntimeError, match="closed the connection"):
        checks.answer_outside("check_written_by_hand", _numpy_kl)
    for task in ("sampling", "gaussian_kl", "vae_loss"):
        assert not grading.answers_verdict(answer_server, task)["passed"]


def test_the_answers_verdict_needs_every_exchange_to_pass_and_one_at_least(
    tmp_path,
):
    records = tmp_path / "answers.jsonl"
    assert not grading.answers_verdict(records, "vae_loss")["passed"]
    good = {"task": "vae_loss", "seed": 1, "passed": True, "message": "ok"}
    records.write_text(json.dumps(good) + "\n")
    assert grading.answers_verdict(records, "vae_loss")["passed"]
    missing = grading.answers_verdict(records, "sampling")
    assert "never checked" in missing["messages"][0]
    bad = dict(good, passed=False, message="wrong")
    records.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    assert not grading.answers_verdict(records, "vae_loss")["passed"]
    records.write_text(json.dumps(good) + "\n[not a record\n")
    assert not grading.answers_verdict(records, "vae_loss")["passed"]


def test_finite_differences_catch_gradients_of_another_function():
    rng = np.random.default_rng(0)
    z_mean, z_log_var = rng.normal(size=(2, 5, 3)).astype("float32")
    weights = rng.uniform(0.5, 2, 5).astype("float32")
    values = _numpy_kl(z_mean, z_log_var)
    true = [weights[:, None] * z_mean, weights[:, None] * 0.5 * (np.exp(z_log_var) - 1)]

    class Local(grading.RemoteAnswer):
        def __call__(self, *arrays):
            return _numpy_kl(*arrays)

    local = Local(None, None, "gaussian_kl", smooth=(0, 1), seed=0)
    local._check_finite_differences([z_mean, z_log_var], weights, values, true)
    for wrong in ([2 * true[0], true[1]], [true[0], 0 * true[1]], true[::-1]):
        with pytest.raises(AssertionError, match="not those of its values"):
            local._check_finite_differences([z_mean, z_log_var], weights, values, wrong)


def test_answer_outside_does_nothing_unless_the_grader_asks(monkeypatch):
    from vaelib import checks

    monkeypatch.delenv(grading.ANSWERS_VARIABLE, raising=False)
    assert "not checked" in checks.answer_outside("gaussian_kl", _numpy_kl)
