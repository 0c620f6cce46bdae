"""The course as a website, built by Jupyter Book from the stored notebooks.

``python -m vaelib site`` runs Jupyter Book 1 (Sphinx and MyST-NB) on the
repository with ``site/_config.yml`` and ``site/_toc.yml``: the README as the
landing page, the lessons in order, the assignments as learners receive them
(``release/``, never ``source/``), the instructors' guide, the data card and
the benchmarks. Notebooks are not re-executed: their stored outputs are the
ones ``tests/run.sh`` checks. Formulas are typeset by a MathJax shipped in a
Python package (``sphinx-mathjax-offline``), so the site builds and reads
without a network. Install the builder with ``pip install -e ".[site]"``.

``tests/test_site.py`` opens every page in headless Chromium.
"""

import pathlib
import subprocess
import sys

__all__ = ["REPOSITORY", "SiteError", "build", "pages"]

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
# Written into --out by a build, so a later build knows the folder is its own.
_MARKER = ".vaelib-site"


class SiteError(RuntimeError):
    """The site cannot be built (a missing builder, a folder that is not ours)."""


def _config(root):
    config, toc = root / "site" / "_config.yml", root / "site" / "_toc.yml"
    if not (config.is_file() and toc.is_file()):
        raise SiteError(
            f"root {root} has no site/_config.yml and site/_toc.yml: the site is "
            "built from a checkout of the course's repository"
        )
    return config, toc


def pages(root=REPOSITORY):
    """The site's pages in reading order: paths relative to ``root``, no suffix.

    Read from ``site/_toc.yml``, the one list Jupyter Book builds from.
    """
    import yaml  # a dependency of jupyter-book and of nbgrader

    _, toc = _config(pathlib.Path(root))
    book = yaml.safe_load(toc.read_text())
    found = [book["root"]]
    for part in book.get("parts", []):
        found += [chapter["file"] for chapter in part["chapters"]]
    return found


def build(out, *, root=REPOSITORY, quiet=True):
    """Build the site into ``out``; return the folder of its HTML pages.

    ``out`` must be new, empty or a site this function built before (it is
    rebuilt in place); any other folder is refused rather than written into.
    Sphinx's warnings are errors (a link to a page that is not built, a
    missing figure), so a site that builds has no broken internal reference.
    """
    root, out = pathlib.Path(root).resolve(), pathlib.Path(out).resolve()
    config, toc = _config(root)
    if out.exists() and not out.is_dir():
        raise SiteError(f"out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / _MARKER).exists():
        raise SiteError(
            f"out {out} holds files that no site build wrote; name a new or "
            "empty folder (nothing there is overwritten)"
        )
    try:
        import jupyter_book  # noqa: F401
    except ImportError:
        raise SiteError(
            'jupyter-book is not installed: pip install -e ".[site]"'
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("built by python -m vaelib site\n")
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(root),
        "--config",
        str(config),
        "--toc",
        str(toc),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "--warningiserror",
        "--keep-going",
    ]
    done = subprocess.run(command, cwd=root, capture_output=quiet, text=True)
    if done.returncode:
        log = (done.stdout or "") + (done.stderr or "") if quiet else ""
        raise SiteError(f"jupyter-book build failed (exit {done.returncode})\n{log}")
    return out / "_build" / "html"
