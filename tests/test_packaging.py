"""pyproject.toml and environment.yml must install the same packages."""

import pathlib
import re

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _name(requirement):
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_every_dependency_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("dev", "jax"):
        wanted += project["optional-dependencies"][extra]
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_lines = [line.strip()[2:] for line in lines if line.startswith("      - ")]
    conda = [r for r in pip_lines if not r.startswith("-e")]
    assert sorted(conda) == sorted(wanted)
    assert "-e .[dev,jax]" in pip_lines
    assert any(line.strip() == "- python=3.11" for line in lines)


def test_the_package_exports_its_public_api():
    import vaelib

    for name in vaelib.__all__:
        assert hasattr(vaelib, name), name
    assert {"VAE", "Sampling", "GaussianHead", "gaussian_kl", "mlp_vae"} <= set(
        vaelib.__all__
    )


def test_import_vaelib_registers_every_keras_class_in_a_fresh_python(tmp_path):
    import subprocess
    import sys

    from vaelib.models import convlstm_predictor, mlp_vae

    paths = [tmp_path / "mlp.keras", tmp_path / "predictor.keras"]
    mlp_vae(input_shape=(8, 8, 1), hidden=(4,)).save(paths[0])
    convlstm_predictor(
        input_shape=(4, 8, 8, 1), context_frames=2, filters=(4,), lstm_filters=4
    ).save(paths[1])
    script = (
        "import sys, keras, vaelib\n"
        "for path in sys.argv[1:]:\n"
        "    model = keras.saving.load_model(path, safe_mode=True)\n"
        "    print(type(model).__name__, getattr(model, 'context_frames', '-'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["MLPVAE", "-", "ConvLSTMPredictor", "2"]
