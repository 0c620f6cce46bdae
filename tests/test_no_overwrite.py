"""Nothing a user made is overwritten unless the command says so (issue 25, 1).

A finished run, a data file and a model file survive a second command that
would replace them: it exits 2 with one line, and only `--overwrite`
replaces them. `fit_vae` keeps the same contract for Python users.
"""

import json
import pathlib

import keras
import numpy as np
import pytest

from vaelib.cli import main
from vaelib.models import mlp_vae
from vaelib.training import fit_vae

LEGACY = pathlib.Path(__file__).parent / "models" / "legacy" / "predictor.keras"


def _train(out, *extra):
    return main(
        [
            "train",
            "--model",
            "mlp",
            "--source",
            "sklearn",
            "--epochs",
            "1",
            "--iwae-k",
            "2",
            "--out",
            str(out),
            *extra,
        ]
    )


def _contents(folder):
    files = sorted(path for path in folder.iterdir() if path.is_file())
    return {path.name: path.read_bytes() for path in files}


def _one_line_error(capsys):
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def test_train_never_replaces_a_finished_run_without_overwrite(tmp_path, capsys):
    out = tmp_path / "a"
    assert _train(out, "--latent-dim", "2") == 0
    finished = _contents(out)
    assert {"model.keras", "metrics.json", "history.csv"} <= set(finished)
    capsys.readouterr()

    assert _train(out, "--latent-dim", "3") == 2
    error = _one_line_error(capsys)
    assert "holds a finished run" in error and "--overwrite" in error
    assert _contents(out) == finished

    assert _train(out, "--latent-dim", "3", "--resume") == 2
    assert "it is finished, nothing to resume" in _one_line_error(capsys)
    assert _contents(out) == finished

    assert _train(out, "--latent-dim", "3", "--overwrite") == 0
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.latent_shape == (3,)
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 2, "one header and one epoch: the old rows are gone"
    assert json.loads((out / "metrics.json").read_text())["config"]["latent_dim"] == 3


def test_data_refuses_to_replace_an_existing_file(tmp_path, capsys):
    out = tmp_path / "clips.npz"
    argv = ["data", "moving-digits", "--clips", "2", "--frame-size", "32"]
    assert main(argv + ["--num-frames", "3", "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(argv + ["--num-frames", "4", "--out", str(out)]) == 2
    assert "exists" in _one_line_error(capsys)
    assert out.read_bytes() == before
    assert main(argv + ["--num-frames", "4", "--out", str(out), "--overwrite"]) == 0
    assert np.load(out)["clips"].shape[1] == 4


def test_upgrade_model_refuses_to_replace_its_input_or_another_file(tmp_path, capsys):
    path = tmp_path / "old.keras"
    path.write_bytes(LEGACY.read_bytes())
    assert main(["upgrade-model", str(path)]) == 2
    assert "--overwrite" in _one_line_error(capsys)
    assert path.read_bytes() == LEGACY.read_bytes()

    taken = tmp_path / "taken.keras"
    taken.write_bytes(b"a model of the user's")
    assert main(["upgrade-model", str(path), "--out", str(taken)]) == 2
    assert "exists" in _one_line_error(capsys)
    assert taken.read_bytes() == b"a model of the user's"

    assert main(["upgrade-model", str(path), "--overwrite"]) == 0
    assert path.read_bytes() != LEGACY.read_bytes()


def test_fit_vae_refuses_a_folder_with_a_finished_run(tmp_path):
    x = (np.random.default_rng(0).random((32, 8, 8, 1)) > 0.5).astype("float32")

    def build():
        return mlp_vae(input_shape=(8, 8, 1), latent_dim=2, hidden=(8,))

    fit_vae(build, x, epochs=1, out_dir=tmp_path, tensorboard=False, verbose=0)
    finished = _contents(tmp_path)
    with pytest.raises(ValueError, match="out_dir=.* holds an earlier run"):
        fit_vae(build, x, epochs=1, out_dir=tmp_path, tensorboard=False, verbose=0)
    assert _contents(tmp_path) == finished
    again = {"tensorboard": False, "verbose": 0, "overwrite": True}
    fit_vae(build, x, epochs=2, out_dir=tmp_path, **again)
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 3


def test_fit_vae_names_out_dir_when_it_is_a_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    x = np.zeros((4, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="Expected out_dir to be a folder"):
        fit_vae(mlp_vae(input_shape=(8, 8, 1), latent_dim=2), x, out_dir=blocker)


def test_site_refuses_a_folder_it_did_not_build_and_a_file(tmp_path, capsys):
    """`python -m vaelib site --out DIR` writes only into a new or empty folder,
    or one an earlier site build wrote; a user's folder and files are left as
    they were."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "mine.md").write_text("my notes")
    assert main(["site", "--out", str(folder)]) == 2
    error = _one_line_error(capsys)
    assert "out" in error and "no site build wrote" in error
    assert [p.name for p in folder.iterdir()] == ["mine.md"]
    assert (folder / "mine.md").read_text() == "my notes"
    file = tmp_path / "site.html"
    file.write_text("<p>mine</p>")
    assert main(["site", "--out", str(file)]) == 2
    assert "is a file" in _one_line_error(capsys)
    assert file.read_text() == "<p>mine</p>"
