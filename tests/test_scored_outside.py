"""Points computed outside the student's kernel (issue 28): assignment 4's clips.

Under `python -m vaelib grade` the helper behind `check_frame_predictor` is
the grader's `ClipServer`, a process the kernel reaches through a Unix socket
and cannot change; each exchange is recorded where the kernel cannot write,
and `predictor_verdict` gives the test cell's points from those records. The
tuned-blur baseline keeps the pass mark above a blur of the last frame.
(Assignment 2's model scored in a trusted process: tests/test_grading.py.)
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


def _predictor(peeks=False, frames=10, size=32):
    """Assignment 4's model, untrained; with `peeks` its encoder sees every frame."""
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
    logits = PerFrame(keras.layers.Conv2DTranspose(1, 3, strides=4, padding="same"))(
        latent
    )
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
    other = grading.score_outside("video-predictor", tmp_path / "not_a_vae.keras", 1)
    assert (
        "Expected the handed-in predictor to be a vaelib.models.VAE"
        in (other["messages"][0])
    )
