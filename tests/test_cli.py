import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from vaelib.cli import main


@pytest.mark.parametrize(
    "argv, reason",
    [
        (
            ["train", "--epochs", "0", "--out", "x"],
            "--epochs: expected a positive integer",
        ),
        (["train", "--model", "resnet", "--out", "x"], "invalid choice: 'resnet'"),
        (["train", "--beta", "-1", "--out", "x"], "--beta: expected a number >= 0"),
        (["train", "--epochs", "3"], "--out"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_reason(argv, reason):
    result = subprocess.run(
        [sys.executable, "-m", "vaelib", *argv],
        capture_output=True,
        text=True,
        timeout=60,
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
