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


def test_registration_does_not_depend_on_how_python_was_started(tmp_path):
    """A package run as `python -m mytool` that imports vaelib can load models.

    Before, `import vaelib` skipped registering its classes whenever
    sys.argv[0] was "-m", which is so while any `-m` package is imported.
    """
    import subprocess
    import sys

    from vaelib.models import mlp_vae

    path = tmp_path / "mlp.keras"
    mlp_vae(input_shape=(8, 8, 1), hidden=(4,)).save(path)
    tool = tmp_path / "mytool"
    tool.mkdir()
    (tool / "__init__.py").write_text("import vaelib  # noqa: F401\n")
    (tool / "__main__.py").write_text(
        "import sys, keras\n"
        "print(type(keras.saving.load_model(sys.argv[1], safe_mode=True)).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mytool", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["MLPVAE"]


def test_the_command_line_checks_its_arguments_before_loading_keras():
    import subprocess
    import sys

    help_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vaelib", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert help_run.returncode == 0, help_run.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in help_run.stderr.splitlines()}
    assert "vaelib.cli" in imported and "keras" not in imported


def test_the_readme_set_up_installs_what_its_test_command_needs():
    """CI runs the README's commands verbatim; they must install the tests' needs.

    The README's set-up once installed `.[dev,jax]` without nbgrader, so its
    test command failed for a newcomer while CI, which installed more, passed.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "readme_commands", ROOT / ".ci" / "readme_commands.py"
    )
    readme_commands = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readme_commands)
    commands = readme_commands.readme_commands((ROOT / "README.md").read_text())
    extras = re.search(r'install -e "\.\[([a-z,]+)\]"', commands["setup"])
    assert extras, commands["setup"]
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installed = {
        _name(requirement)
        for extra in extras.group(1).split(",")
        for requirement in optional[extra]
    }
    for needed in ("pytest", "pytest-xdist", "nbval", "nbgrader", "jax", "av"):
        assert needed in installed, needed
    assert commands["tests"].endswith("bash tests/run.sh")
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$setup"' in ci
    assert 'bash -euo pipefail -c "$tests"' in ci
    assert "pip install" not in ci, "CI installs only what the README's set-up does"
    # The website: its README block installs the builder and the browser driver,
    # and CI runs it and the browser test as written (issue 31).
    site = re.search(r'install -e "\.\[([a-z,]+)\]"', commands["site"])
    assert site and commands["site"].endswith("python -m vaelib site"), commands["site"]
    site_needs = {_name(r) for e in site.group(1).split(",") for r in optional[e]}
    assert {"jupyter-book", "sphinx-mathjax-offline", "playwright"} <= site_needs
    assert commands["site-tests"].endswith("tests/test_site.py")
    assert 'bash -euo pipefail -c "$site"' in ci
    assert 'bash -euo pipefail -c "$site_tests"' in ci


def test_each_builder_takes_exactly_its_class_arguments():
    """One way to build each model: `mlp_vae(...)` is `MLPVAE(...)`, argument for
    argument (the builders once lacked decoder_log_var, beta or
    first_frame_components)."""
    import inspect

    from vaelib import models

    pairs = {
        models.mlp_vae: models.MLPVAE,
        models.conv_vae: models.ConvVAE,
        models.framewise_vae: models.FramewiseVAE,
        models.convlstm_vae: models.ConvLSTMVAE,
        models.convlstm_predictor: models.ConvLSTMPredictor,
        models.learned_prior_vae: models.LearnedPriorVAE,
        models.causal_video_vae: models.CausalVideoVAE,
    }
    for builder, cls in pairs.items():
        wanted = [
            (p.name, p.default)
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self"
        ]
        got = [
            (p.name, p.default) for p in inspect.signature(builder).parameters.values()
        ]
        assert got == wanted, builder.__name__
    model = models.mlp_vae(
        input_shape=(8, 8, 1), likelihood="gaussian", decoder_log_var=-1.0, name="m"
    )
    assert model.decoder_log_var == -1.0 and model.name == "m"
