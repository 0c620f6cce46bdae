import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from vaelib.cli import main
from vaelib.losses import gaussian_kl


@pytest.mark.parametrize(
    "argv, reason",
    [
        (
            ["train", "--epochs", "0", "--out", "x"],
            "--epochs: expected a positive integer",
        ),
        (["train", "--model", "resnet", "--out", "x"], "invalid choice: 'resnet'"),
        (["train", "--beta", "-1", "--out", "x"], "--beta: expected a finite number"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "--model", "convlstm", "--data", "digits"], "needs --data moving-"),
        (["train", "--model", "mlp", "--data", "moving-digits"], "needs --data digits"),
        (["train", "--distribute", "tpu-pod"], "invalid choice: 'tpu-pod'"),
        (["train", "--mixed-precision", "fp8"], "invalid choice: 'fp8'"),
        (["train", "--kl-anneal", "sometimes"], "invalid choice: 'sometimes'"),
        (["generate", "--model-path", "m.keras"], "--out"),
        (["train", "--filters", "32,x"], "comma-separated positive integers"),
        (["train", "--model", "mlp", "--filters", "8"], "--filters applies to conv"),
        (["train", "--model", "conv", "--lstm-filters", "8"], "--lstm-filters applies"),
        (["train", "--decoder-convs", "2"], "--decoder-convs applies to the video"),
        (
            ["train", "--model", "framewise", "--data", "moving-digits", "--skip"],
            "--skip applies to --model convlstm",
        ),
        (["train", "--lr-schedule", "step"], "invalid choice: 'step'"),
        (["train", "--beta", "inf"], "--beta: expected a finite number >= 0"),
        (["train", "--learning-rate", "nan"], "--learning-rate: expected a finite"),
        (["train", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
        (["evaluate", "--model-path", "m.h5"], "--model-path: expected a .keras"),
        (
            ["train", "--model", "convlstm", "--frame-size", "18", "--out", "x"],
            "--frame-size must be divisible by 4",
        ),
        (["train", "--model", "conv", "--hidden", "8"], "--hidden applies to --model"),
        (
            ["train", "--model", "causal3d", "--num-frames", "20", "--out", "x"],
            "--model causal3d needs --num-frames = 1 + a multiple of 4",
        ),
        (
            ["train", "--model", "causal3d", "--lstm-filters", "8"],
            "--lstm-filters applies",
        ),
        (["upgrade-model", "missing.keras"], "no such model file"),
        (
            ["train", "--learning-rate", "0"],
            "--learning-rate: expected a finite number > 0",
        ),
        (
            [
                "evaluate",
                "--model-path",
                "data/pretrained/convlstm-moving-mnist/model.keras",
                "--frame-size",
                "64",
            ],
            "--frame-size 64 does not fit",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_reason(argv, reason, capsys):
    try:
        status = main(argv)
    except SystemExit as exit:
        status = exit.code
    error = capsys.readouterr().err
    assert status == 2
    assert reason in error
    assert len(error.strip().splitlines()) == 1, error


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["train", "--epochs", "0", "--out", "x"], "--epochs: expected a positive"),
        (["train", "--model", "conv", "--filters", "8,x"], "comma-separated"),
    ],
)
def test_a_fresh_process_prints_one_line_and_no_traceback(argv, reason):
    result = subprocess.run(
        [sys.executable, "-m", "vaelib", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unusable_files_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--model-path", str(tmp_path / "missing.keras")]) == 2
    assert "no such model file" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip file")
    assert main(["evaluate", "--model-path", str(broken)]) == 2
    assert "cannot load" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--epochs", "1", "--out", str(blocker / "run")]) == 2
    assert "cannot write to --out" in capsys.readouterr().err


def test_train_writes_a_loadable_model_and_held_out_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "mlp",
        "--data",
        "digits",
        "--source",
        "sklearn",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--iwae-k",
        "5",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "negative_elbo" in printed and "iwae_nll_k5" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_source"] == "sklearn" and metrics["epochs"] == 2
    assert metrics["backend"] == keras.backend.backend()
    np.testing.assert_allclose(
        metrics["negative_elbo"], metrics["reconstruction"] + metrics["kl"], rtol=1e-6
    )
    # Two epochs already beat an untrained decoder's 784 * log 2 = 543 nats.
    assert 50 < metrics["iwae_nll_k5"] < 400
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.latent_shape == (4,)

    assert (
        main(
            [
                "evaluate",
                "--model-path",
                str(out / "model.keras"),
                "--source",
                "sklearn",
                "--iwae-k",
                "5",
            ]
        )
        == 0
    )
    assert "negative_elbo" in capsys.readouterr().out


def test_init_weights_starts_from_a_saved_model_and_rejects_another_shape(
    tmp_path, capsys
):
    base = ["train", "--model", "mlp", "--source", "sklearn", "--iwae-k", "2"]
    first = tmp_path / "first"
    assert main([*base, "--epochs", "1", "--latent-dim", "4", "--out", str(first)]) == 0
    saved = keras.saving.load_model(first / "model.keras")

    # A learning rate of 0 is refused; with 1e-30 every Adam step (at most about
    # the learning rate) is below float32's resolution of the trained weights, so
    # the "fine-tuned" model is the saved one.
    again = tmp_path / "again"
    argv = [*base, "--epochs", "1", "--latent-dim", "4", "--learning-rate", "1e-30"]
    init = ["--init-weights", str(first / "model.keras")]
    assert main([*argv, *init, "--out", str(again)]) == 0
    loaded = keras.saving.load_model(again / "model.keras")
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["init_weights"] == str(first / "model.keras")
    for before, after in zip(saved.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(after),
            keras.ops.convert_to_numpy(before),
            rtol=1e-6,
            atol=1e-20,
        )
    capsys.readouterr()

    wrong = [*base, "--epochs", "1", "--latent-dim", "3", *init]
    assert main([*wrong, "--out", str(tmp_path / "wrong")]) == 2
    assert "--latent-dim 3 differs from the --init-weights model's latent_dim=4" in (
        capsys.readouterr().err
    )
    wrong = [*base, "--model", "conv", *init]
    assert main([*wrong, "--out", str(tmp_path / "wrong")]) == 2
    assert "--model conv differs from the --init-weights model" in (
        capsys.readouterr().err
    )
    missing = ["--init-weights", str(tmp_path / "none.keras")]
    assert main([*base, *missing, "--out", str(tmp_path / "missing")]) == 2
    assert "no such --init-weights file" in capsys.readouterr().err


def test_init_weights_takes_the_sizes_from_the_file_and_honours_beta(tmp_path, capsys):
    first = tmp_path / "first"
    argv = ["train", "--model", "conv", "--source", "sklearn", "--iwae-k", "2"]
    argv += ["--epochs", "1", "--latent-dim", "3", "--filters", "4,8"]
    assert main([*argv, "--out", str(first)]) == 0
    init = ["--init-weights", str(first / "model.keras")]
    again = tmp_path / "again"
    tune = ["train", "--source", "sklearn", "--iwae-k", "2", "--epochs", "1"]
    assert main([*tune, *init, "--beta", "0.25", "--out", str(again)]) == 0
    capsys.readouterr()
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["model"] == "conv" and metrics["beta"] == 0.25
    assert metrics["config"]["latent_dim"] == 3
    assert metrics["config"]["filters"] == [4, 8]
    loaded = keras.saving.load_model(again / "model.keras", safe_mode=True)
    assert float(keras.ops.convert_to_numpy(loaded.beta)) == 0.25


def test_training_that_diverges_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from vaelib.commands import run
    from vaelib.training import TrainingDiverged

    def diverge(*args):
        raise TrainingDiverged("Training stopped: the loss became nan at epoch 1.")

    monkeypatch.setattr(run, "_fit", diverge)
    argv = ["train", "--source", "sklearn", "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "the loss became nan" in error and len(error.strip().splitlines()) == 1


def test_evaluate_refuses_a_keras_file_that_is_not_a_vaelib_vae(tmp_path, capsys):
    path = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    assert main(["evaluate", "--model-path", str(path)]) == 2
    assert "is not a vaelib VAE: it holds a Sequential" in capsys.readouterr().err


def test_upgrade_model_converts_an_old_format_file(tmp_path, capsys):
    from pathlib import Path

    from vaelib.models import ConvLSTMPredictor

    old = Path(__file__).parent / "models" / "legacy" / "predictor.keras"
    new = tmp_path / "predictor.keras"
    assert main(["upgrade-model", str(old), "--out", str(new)]) == 0
    assert "outputs identical" in capsys.readouterr().out
    model = keras.saving.load_model(new, safe_mode=True)
    assert isinstance(model, ConvLSTMPredictor) and model.context_frames == 3
    assert main(["upgrade-model", str(new), "--overwrite"]) == 2
    assert "nothing to convert" in capsys.readouterr().err


def test_mnist_without_mnist_says_to_use_digits(capsys):
    from vaelib.data import load_digits_images

    if load_digits_images("test", source="auto", download=False).source != "sklearn":
        pytest.skip("MNIST is available on this machine")
    assert main(["train", "--data", "mnist", "--epochs", "1", "--out", "x"]) == 2
    assert "use --data digits" in capsys.readouterr().err


def test_video_models_train_evaluate_and_generate(tmp_path, capsys):
    video = [
        "--data", "moving-digits", "--frame-size", "16", "--num-frames", "4",
        "--test-clips", "8",
    ]  # fmt: skip
    out = tmp_path / "predictor"
    argv = ["train", "--model", "predictor", *video, "--clips", "32", "--epochs", "1"]
    argv += ["--filters", "8,16", "--lstm-filters", "12"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "prediction of frames 3-4 from frames 1-2" in printed
    assert "copy last frame" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "predictor" and metrics["train_frames_per_second"] > 0
    assert 0 < metrics["reconstruction_ssim"] <= 1
    assert metrics["config"]["context_frames"] == 2

    model_path = str(out / "model.keras")
    model = keras.saving.load_model(model_path, safe_mode=True)
    # The table's prediction numbers are the model's, on the held-out clips.
    from vaelib.data import MovingDigits
    from vaelib.metrics import evaluate_prediction
    from vaelib.models import copy_last_frame

    clips = MovingDigits.scaled(16, num_frames=4, split="test", seed=1).clips(8)
    ours = evaluate_prediction(clips[:, 2:], model.predict_frames(clips[:, :2]))
    baseline = evaluate_prediction(clips[:, 2:], copy_last_frame(clips[:, :2], 2))
    assert metrics["prediction_psnr"] == pytest.approx(ours["psnr"], rel=1e-4)
    assert metrics["copy_last_frame_psnr"] == pytest.approx(baseline["psnr"])
    assert model.latent_shape == (4, 4, 4, 8)  # 16x16 frames halved twice by 8,16
    lstm = model.encoder.get_layer("encoder_convlstm")
    assert lstm.filters == 12
    assert main(["evaluate", "--model-path", model_path, *video]) == 0
    report = capsys.readouterr().out
    assert "frame" in report and "PSNR dB" in report and "mean" in report
    assert main(["evaluate", "--model-path", model_path, "--data", "digits"]) == 2
    assert "is a video model" in capsys.readouterr().err

    gif, png = tmp_path / "samples.gif", tmp_path / "samples.png"
    assert (
        main(["generate", "--model-path", model_path, "--num", "3", "--out", str(gif)])
        == 0
    )
    assert (
        main(["generate", "--model-path", model_path, "--num", "3", "--out", str(png)])
        == 0
    )
    from PIL import Image

    with Image.open(gif) as animation:
        assert animation.n_frames == 4
    with Image.open(png) as still:
        assert still.width > still.height  # one row of 4 frames per sample
    bad = tmp_path / "samples.jpg"
    assert main(["generate", "--model-path", model_path, "--out", str(bad)]) == 2
    assert "--out must name a .png or .gif" in capsys.readouterr().err


def test_the_learned_prior_model_trains_evaluates_and_generates(tmp_path, capsys):
    video = [
        "--data", "moving-digits", "--frame-size", "16", "--num-frames", "4",
        "--test-clips", "8",
    ]  # fmt: skip
    out = tmp_path / "learned-prior"
    argv = ["train", "--model", "learned-prior", *video, "--clips", "32"]
    argv += ["--epochs", "1", "--filters", "8,16", "--lstm-filters", "8"]
    assert main([*argv, "--latent-dim", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    model_path = out / "model.keras"
    model = keras.saving.load_model(model_path, safe_mode=True)
    from vaelib.data import MovingDigits
    from vaelib.metrics import evaluate_video
    from vaelib.models import LearnedPriorVAE

    assert isinstance(model, LearnedPriorVAE) and model.latent_shape == (4, 4)
    # The KL that evaluate reports is the one to the learned prior.
    clips = MovingDigits.scaled(16, num_frames=4, split="test", seed=1).clips(8)
    kl = evaluate_video(model, clips)["kl"]
    expected = model.kl_per_frame(clips).mean(axis=0)
    # p(z_0) reads nothing; later priors read frames decoded from one
    # posterior draw, another draw in each call
    np.testing.assert_allclose(kl[0], expected[0], rtol=1e-4)
    np.testing.assert_allclose(kl[1:], expected[1:], rtol=0.05)
    z_mean, z_log_var = model.encode(clips)
    flat = [keras.ops.reshape(t, (-1, 4)) for t in (z_mean, z_log_var)]
    to_standard_normal = keras.ops.convert_to_numpy(gaussian_kl(*flat))
    assert not np.allclose(kl, to_standard_normal.reshape(8, 4).mean(axis=0), rtol=0.05)
    assert main(["evaluate", "--model-path", str(model_path), *video]) == 0
    assert "PSNR dB" in capsys.readouterr().out
    png = tmp_path / "samples.png"
    command = ["generate", "--model-path", str(model_path), "--num", "2"]
    assert main([*command, "--out", str(png)]) == 0
    assert png.stat().st_size > 0


def test_learned_prior_trains_and_saves_under_mixed_float16(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "learned-prior", "--data", "moving-digits"]
    argv += ["--frame-size", "16", "--num-frames", "4", "--clips", "16"]
    argv += ["--test-clips", "8", "--epochs", "1", "--latent-dim", "2"]
    argv += ["--filters", "4", "--lstm-filters", "4", "--source", "sklearn"]
    try:
        assert main(argv + ["--mixed-precision", "float16", "--out", str(out)]) == 0
    finally:
        keras.config.set_dtype_policy("float32")
    assert json.loads((out / "metrics.json").read_text())["dtype_policy"] == (
        "mixed_float16"
    )
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.dtype_policy.name == "mixed_float16"
    assert model.sample(2, seed=0).shape == (2, 4, 16, 16, 1)


def _exit_status_and_error(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exit:
        status = exit.code
    error = capsys.readouterr().err.strip()
    return status, error


@pytest.mark.parametrize("damage", ["truncated", "empty", "labels"])
def test_a_broken_mnist_file_exits_2_with_one_line(
    damage, tmp_path, monkeypatch, capsys
):
    """A truncated file raised BadZipFile; empty arrays a TensorFlow error."""
    path = tmp_path / "mnist.npz"
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype="uint8"),
        "y_train": rng.integers(0, 10, 20).astype("uint8"),
        "x_test": rng.integers(0, 256, (10, 28, 28), dtype="uint8"),
        "y_test": rng.integers(0, 10, 10).astype("uint8"),
    }
    if damage == "empty":
        arrays["x_train"], arrays["y_train"] = (
            arrays["x_train"][:0],
            arrays["y_train"][:0],
        )
    if damage == "labels":
        arrays["y_test"][0] = 12
    np.savez_compressed(path, **arrays)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    monkeypatch.setenv("VAELIB_MNIST", str(path))
    argv = ["train", "--epochs", "1", "--out", str(tmp_path / "run")]
    status, error = _exit_status_and_error(argv, capsys)
    assert status == 2, error
    assert len(error.splitlines()) == 1, error
    assert "mnist.npz" in error


def test_tfds_source_without_mnist_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    from vaelib.data import load_digits_images

    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    monkeypatch.delenv("VAELIB_MNIST", raising=False)
    try:
        load_digits_images("test", source="tfds", download=False)
        pytest.skip("TFDS has MNIST on this machine")
    except ValueError:
        pass
    argv = ["train", "--source", "tfds", "--epochs", "1", "--out", str(tmp_path / "r")]
    status, error = _exit_status_and_error(argv, capsys)
    assert status == 2, error
    assert len(error.splitlines()) == 1 and "source='tfds'" in error, error


def test_evaluate_reports_identity_and_active_channels_of_a_video_model(capsys):
    # The shipped ConvLSTM VAE: one of its eight latent channels carries the clip.
    path = pathlib.Path(__file__).parents[1] / "data/pretrained/convlstm-moving-mnist"
    path = str(path / "model.keras")
    assert main(["evaluate", "--model-path", path, "--test-clips", "6"]) == 0
    out = capsys.readouterr().out
    assert "active latent channels: 1 of 8" in out
    header = next(line for line in out.splitlines() if line.startswith("frame"))
    assert header.split()[-1] == "identity"


def test_the_causal_3d_vae_trains_and_evaluates(tmp_path, capsys):
    video = [
        "--data", "moving-digits", "--frame-size", "16", "--num-frames", "9",
        "--test-clips", "4",
    ]  # fmt: skip
    out = tmp_path / "causal3d"
    argv = ["train", "--model", "causal3d", *video, "--clips", "8", "--epochs", "1"]
    argv += ["--filters", "8,16", "--latent-dim", "4", "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "causal3d"
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.latent_shape == (3, 4, 4, 4)  # 9 frames -> 3, 16x16 -> 4x4
    capsys.readouterr()
    assert main(["evaluate", "--model-path", str(out / "model.keras"), *video]) == 0
    report = capsys.readouterr().out
    assert "PSNR dB" in report and "active latent channels" in report


def test_a_latent_flow_trains_on_a_causal_vae_and_generates(tmp_path, capsys):
    video = ["--frame-size", "16", "--num-frames", "9", "--test-clips", "4"]
    vae = tmp_path / "causal3d"
    argv = ["train", "--model", "causal3d", *video, "--clips", "8", "--epochs", "1"]
    assert (
        main([*argv, "--filters", "8,16", "--latent-dim", "4", "--out", str(vae)]) == 0
    )
    vae_path = vae / "model.keras"
    flow = tmp_path / "flow"
    argv = ["train", "--model", "latent-flow", "--vae", str(vae_path), "--stochastic"]
    argv += ["--num-frames", "9", "--test-clips", "4", "--clips", "8", "--epochs", "2"]
    assert main([*argv, "--width", "4", "--out", str(flow)]) == 0
    metrics = json.loads((flow / "metrics.json").read_text())
    assert metrics["model"] == "latent-flow" and metrics["vae"] == str(vae_path)
    assert metrics["samples"]["ink_share"] >= 0 and metrics["latent_scale"] > 0
    assert metrics["command"].startswith("python -m vaelib")
    model = keras.saving.load_model(flow / "model.keras", safe_mode=True)
    assert model.clip_shape == (9, 16, 16, 1) and model.latent_shape == (3, 4, 4, 4)
    capsys.readouterr()
    assert main(["evaluate", "--model-path", str(flow / "model.keras")]) == 0
    assert '"real_clips"' in capsys.readouterr().out
    picture = tmp_path / "samples.png"
    argv = ["generate", "--model-path", str(flow / "model.keras"), "--num", "2"]
    assert main([*argv, "--out", str(picture)]) == 0
    assert picture.stat().st_size > 0
    # a finished run is never replaced without --overwrite
    saved = (flow / "model.keras").read_bytes()
    again = ["train", "--model", "latent-flow", "--vae", str(vae_path), "--out"]
    capsys.readouterr()
    assert main([*again, str(flow)]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert (flow / "model.keras").read_bytes() == saved
    # what it refuses, each before any data is made
    base = ["train", "--model", "latent-flow", "--out", str(tmp_path / "refused")]
    for extra, message in (
        ([], "needs --vae"),
        (["--vae", str(vae_path), "--num-frames", "10"], "1 + a multiple of 4"),
        (["--vae", str(vae_path), "--latent-dim", "3"], "--latent-dim applies"),
        (["--vae", str(flow / "model.keras")], "must be a causal3d model"),
        (["--vae", str(vae_path), "--frame-size", "32"], "does not fit --vae"),
        (["--vae", str(vae_path), "--resume"], "--resume applies to the VAEs"),
        (["--vae", str(vae_path), "--beta", "0.5"], "--beta applies to the VAEs"),
    ):
        capsys.readouterr()
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err, (extra, message)
