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
