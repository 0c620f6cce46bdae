"""Grading submitted assignments with nbgrader: isolated, time-limited, reproducible.

`grade_submissions` grades a folder in nbgrader's submitted layout,
`SUBMITTED/<student_id>/<assignment_id>/<assignment_id>.ipynb`, against the
course directory `course/assignments/` (`nbgrader_config.py` and
`source/<assignment_id>/<assignment_id>.ipynb`). It is what
`python -m vaelib grade SUBMITTED --out grades.csv` runs:

1. a working course directory (kept next to the CSV, for audit) gets the
   source assignments, `nbgrader generate_assignment` fills its gradebook
   with the test cells and their points, and the submissions are copied in;
2. `nbgrader autograde` grades one submission at a time: it restores every
   test cell and read-only cell from the source (edits, deletions and tags do
   not help), clears the outputs and re-executes the notebook. Here the
   kernel runs in a fresh temporary folder holding only that submission
   (`IsolatedExecute`), with a time limit per cell and per notebook; a test
   cell that never ran (the kernel died, the time ran out, a tag skipped it)
   gets an error, so it scores nothing; the kernel's process group is killed
   afterwards;
3. the hidden tests read their seed from `$VAELIB_GRADING_SEED`, random
   unless given, and written in the report;
4. `nbgrader generate_feedback` writes one HTML file per submission, and the
   scores come from nbgrader's CSV export, one row per submission.

With bubblewrap (`sandbox="bwrap"`, or `"auto"` where it runs) each kernel
runs in `vaelib.sandbox`'s sandbox: only its own files, no network, its own
processes, a cleared environment. Without it, student code runs with the
grader's rights. course/INSTRUCTORS.md says what each does and does not
protect against.

`FutureFrames` is the helper process behind `vaelib.checks.check_frame_predictor`.

Introduced in: course/INSTRUCTORS.md
"""

import csv
import json
import math
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings

import numpy as np

GRADING_SEED_VARIABLE = "VAELIB_GRADING_SEED"
COURSE_DIRECTORY = (
    pathlib.Path(__file__).resolve().parents[1] / "course" / "assignments"
)
MARKER = ".vaelib-grading"


class GradingError(Exception):
    """Grading could not run (no submissions, no course directory, no nbgrader)."""


def _sandboxed_kernel_manager_class():
    from jupyter_client import AsyncKernelManager
    from traitlets import List, Unicode

    class SandboxedKernelManager(AsyncKernelManager):
        """A kernel manager that starts the kernel behind `sandbox_prefix` (bwrap)."""

        sandbox_prefix = List(Unicode())

        def format_kernel_cmd(self, extra_arguments=None):
            return [*self.sandbox_prefix, *super().format_kernel_cmd(extra_arguments)]

    return SandboxedKernelManager


def _isolated_execute_class():
    from nbgrader.preprocessors import Execute
    from traitlets import Integer, Unicode

    class IsolatedExecute(Execute):
        """nbgrader's `Execute`, in a private folder, with a notebook time limit.

        The kernel's working directory is a new temporary folder holding a
        copy of this submission's files only; `notebook_timeout` bounds the
        whole notebook (each cell's limit is the smaller of `timeout` and the
        time left); a code cell that did not run gets an error output, so a
        test cell scores nothing unless it ran and passed; nothing is skipped
        by a tag; the kernel's process group is killed at the end.
        """

        notebook_timeout = Integer(1800, help="Seconds for a whole notebook.").tag(
            config=True
        )
        sandbox = Unicode(
            "none", help="'bwrap': the kernel runs in vaelib.sandbox's sandbox."
        ).tag(config=True)

        def preprocess(self, nb, resources=None, km=None):
            resources = resources if resources is not None else {}
            metadata = resources.setdefault("metadata", {})
            original = metadata.get("path") or "."
            workdir = pathlib.Path(tempfile.mkdtemp(prefix="vaelib-submission-"))
            for item in pathlib.Path(original).iterdir():
                if item.is_file() and item.suffix != ".ipynb":
                    shutil.copy(item, workdir / item.name)
                elif item.is_dir():
                    shutil.copytree(item, workdir / item.name, symlinks=True)
            metadata["path"] = str(workdir)
            self._workdir, self._sockets = workdir, None
            if self.sandbox == "bwrap":
                # the kernel has no network: it talks to nbgrader over Unix
                # sockets in a folder both sides see
                self._sockets = pathlib.Path(tempfile.mkdtemp(prefix="vaelib-kernel-"))
                self.kernel_manager_class = _sandboxed_kernel_manager_class()
            self.skip_cells_with_tag = "vaelib-grading-never-skips"
            self._deadline = time.monotonic() + self.notebook_timeout
            self._stopped = None
            self._process_group = None
            try:
                nb, resources = super().preprocess(nb, resources, km)
            except Exception as error:  # noqa: BLE001 - a dead kernel ends the run
                self._stopped = f"the kernel stopped: {type(error).__name__}: {error}"
                self.log.warning("%s", self._stopped)
            finally:
                metadata["path"] = original
                self._kill_process_group()
                shutil.rmtree(workdir, ignore_errors=True)
                if self._sockets is not None:
                    shutil.rmtree(self._sockets, ignore_errors=True)
            self._mark_cells_that_did_not_run(nb)
            return nb, resources

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            if self._sockets is not None:
                from vaelib import sandbox

                km.transport = "ipc"
                km.ip = str(self._sockets / "kernel")
                km.connection_file = str(self._sockets / "kernel.json")
                km.sandbox_prefix = sandbox.bwrap_command(
                    [self._workdir, self._sockets]
                )
            return km

        def preprocess_cell(self, cell, resources, index):
            if self._process_group is None:
                provisioner = getattr(self.km, "provisioner", None)
                self._process_group = getattr(provisioner, "pgid", None)
            if time.monotonic() >= self._deadline:
                self._stopped = (
                    f"the notebook ran out of time ({self.notebook_timeout} s)"
                )
                return cell, self.resources
            return super().preprocess_cell(cell, resources, index)

        def _get_timeout(self, cell):
            timeout = super()._get_timeout(cell)
            left = max(1, math.ceil(self._deadline - time.monotonic()))
            return left if timeout is None else min(timeout, left)

        def _kill_process_group(self):
            if self._process_group:
                try:
                    os.killpg(self._process_group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

        def _mark_cells_that_did_not_run(self, nb):
            from nbformat.v4 import new_output

            reason = self._stopped or "it was not executed"
            for cell in nb.cells:
                if cell.cell_type != "code" or cell.get("execution_count"):
                    continue
                if not cell.source.strip():
                    continue
                cell.outputs.append(
                    new_output(
                        "error",
                        ename="CellNotExecuted",
                        evalue=f"This cell never ran: {reason}.",
                        traceback=[f"CellNotExecuted: this cell never ran: {reason}."],
                    )
                )

    return IsolatedExecute


def find_submissions(submitted):
    """`(student_id, assignment_id)` pairs in nbgrader's submitted layout."""
    submitted = pathlib.Path(submitted)
    if not submitted.is_dir():
        raise GradingError(f"no such folder: {submitted}")
    pairs = sorted(
        (path.parent.parent.name, path.parent.name)
        for path in submitted.glob("*/*/*.ipynb")
        if path.stem == path.parent.name
    )
    if not pairs:
        raise GradingError(
            f"no submissions in {submitted}: expected "
            "<student_id>/<assignment_id>/<assignment_id>.ipynb"
        )
    return pairs


def _config(workdir, course, timeout, notebook_timeout):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    overrides = Config()
    overrides.CourseDirectory.root = str(workdir)
    overrides.Execute.timeout = timeout
    overrides.IsolatedExecute.timeout = timeout
    overrides.IsolatedExecute.notebook_timeout = notebook_timeout
    config.merge(overrides)
    return config


def _cell_scores(gradebook, assignment_id, student_id):
    submission = gradebook.find_submission(assignment_id, student_id)
    scores = {}
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            scores[grade.name] = [grade.score, grade.max_score]
    return scores


def copy_submission(source, destination):
    """Copies a submission's folder without following or keeping symbolic links.

    A link in a submission could point anywhere on the grader's machine (the
    solutions, another student's work, a device), and `shutil.copytree`
    would copy what it points to. Links are left out, files and folders
    copied. Returns the links refused, relative to `source`.
    """
    source = pathlib.Path(source)
    refused = []

    def links(folder, names):
        skipped = [name for name in names if os.path.islink(os.path.join(folder, name))]
        refused.extend(
            str(pathlib.Path(folder, name).relative_to(source)) for name in skipped
        )
        return skipped

    if source.is_symlink():
        return ["."]
    shutil.copytree(source, destination, ignore=links)
    return sorted(refused)


def grade_submissions(
    submitted,
    out,
    course=COURSE_DIRECTORY,
    seed=None,
    timeout=600,
    notebook_timeout=1800,
    workdir=None,
    sandbox="auto",
    log=print,
):
    """Grades every submission in `submitted` with nbgrader; writes `out` (CSV).

    Args:
        submitted: A folder `<student_id>/<assignment_id>/<assignment_id>.ipynb`.
        out: Path of the CSV to write (nbgrader's export: `assignment`,
            `student_id`, `score`, `max_score`, ...), one row per submission.
        course: The nbgrader course directory with `nbgrader_config.py` and
            `source/`.
        seed: The hidden tests' seed; random when `None`.
        timeout: Seconds per cell.
        notebook_timeout: Seconds per notebook.
        workdir: Where the working course directory is kept (the gradebook,
            the executed notebooks in `autograded/`, the HTML in `feedback/`,
            `report.json`); by default `<out without suffix>_grading/` next
            to the CSV. A folder from an earlier run is replaced.
        sandbox: Where each submission's kernel runs: `"bwrap"` (the
            sandbox of `vaelib.sandbox`; an error if bubblewrap cannot run
            here), `"none"` (with the grader's rights), or `"auto"`: bwrap
            when it can run, else none, said loudly. `report.json` records
            what was and was not isolated.

    Returns:
        A dict: `seed`, `workdir`, `rows` (the CSV's rows as dicts), and
        `cells` (per submission, each test cell's score and maximum).
    """
    try:
        from nbgrader.api import Gradebook
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.plugins.export import CsvExportPlugin
    except ImportError as error:
        raise GradingError(
            f"nbgrader is not installed ({error}): pip install -e '.[instructor]'"
        ) from None

    from vaelib import sandbox as sandboxes

    try:
        kind, why_not = sandboxes.choose(sandbox)
    except sandboxes.SandboxUnavailable as error:
        raise GradingError(f"--sandbox bwrap cannot run here: {error}") from None
    course, out = pathlib.Path(course).resolve(), pathlib.Path(out).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise GradingError(f"{course} is not an nbgrader course: no nbgrader_config.py")
    pairs = find_submissions(submitted)
    assignments = sorted({assignment for _, assignment in pairs})
    unknown = [a for a in assignments if not (course / "source" / a).is_dir()]
    if unknown:
        raise GradingError(
            f"no source for assignment(s) {', '.join(unknown)} in {course / 'source'}"
        )
    workdir = pathlib.Path(workdir or out.with_name(out.stem + "_grading")).resolve()
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise GradingError(
                f"{workdir} exists and was not made by this command: choose another"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by python -m vaelib grade\n")
    shutil.copy(course / "nbgrader_config.py", workdir / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(course / "source" / assignment, workdir / "source" / assignment)
    for student, assignment in pairs:
        refused = copy_submission(
            pathlib.Path(submitted) / student / assignment,
            workdir / "submitted" / student / assignment,
        )
        for path in refused:
            log(f"{student}/{assignment}: refused the symbolic link {path}")
    flags = {}
    for student, assignment in pairs:
        copied = workdir / "submitted" / student / assignment / f"{assignment}.ipynb"
        found = tamper_flags(copied) if copied.is_file() else []
        flags[f"{student}/{assignment}"] = found
        for flag in found:
            log(f"FLAGGED {student}/{assignment}: {flag}")

    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    previous_seed = os.environ.get(GRADING_SEED_VARIABLE)
    os.environ[GRADING_SEED_VARIABLE] = str(seed)
    previous_path = os.environ.get("PATH")
    # nbgrader runs the `alembic` script by name: find it beside this Python
    # even when its environment is not activated (python given by full path)
    os.environ["PATH"] = os.pathsep.join(
        [sysconfig.get_path("scripts"), *filter(None, [previous_path])]
    )
    config = _config(workdir, course, timeout, notebook_timeout)
    config.IsolatedExecute.sandbox = kind
    config.Autograde.autograde_preprocessors = [
        _isolated_execute_class(),
        *[p for p in _default_autograde_preprocessors() if p.__name__ != "Execute"],
    ]
    if kind == "none":
        log(
            f"WARNING: NO SANDBOX ({why_not}). Each submission runs with your "
            "rights: it can read the source notebooks, the gradebook and the "
            "other submissions, use the network and leave processes running. "
            "Grade untrusted work with --sandbox bwrap (course/INSTRUCTORS.md)."
        )
    else:
        log("each submission runs in a bubblewrap sandbox (vaelib.sandbox)")
    log(f"grading {len(pairs)} submission(s) with seed {seed} in {workdir}")
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="nbgrader")
            warnings.filterwarnings("ignore", module="sqlalchemy")
            api = NbGraderAPI(config=config)
            failures = _autograde(api, assignments, pairs, log)
    finally:
        if previous_seed is None:
            os.environ.pop(GRADING_SEED_VARIABLE, None)
        else:
            os.environ[GRADING_SEED_VARIABLE] = previous_seed
        if previous_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = previous_path

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        for student, assignment in pairs:
            gradebook.update_or_create_student(student)
            if (student, assignment) in failures:
                gradebook.update_or_create_submission(assignment, student)
        export = workdir / "grades_all.csv"
        exporter = CsvExportPlugin(config=config)
        exporter.to = str(export)
        exporter.export(gradebook)
        cells = {
            f"{student}/{assignment}": _cell_scores(gradebook, assignment, student)
            for student, assignment in pairs
        }
    with export.open(newline="") as file:
        rows = [
            row
            for row in csv.DictReader(file)
            if (row["student_id"], row["assignment"]) in set(pairs)
        ]
    for row in rows:
        row["flags"] = "; ".join(flags[f"{row['student_id']}/{row['assignment']}"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = {
        "seed": seed,
        "seed_variable": GRADING_SEED_VARIABLE,
        "timeout_per_cell_s": timeout,
        "timeout_per_notebook_s": notebook_timeout,
        "seconds": round(time.perf_counter() - start, 1),
        "submissions": cells,
        "could_not_grade": {f"{s}/{a}": e for (s, a), e in failures.items()},
        "isolation": {**sandboxes.describe(kind), "why_no_sandbox": why_not},
        "flags": flags,
    }
    (workdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return {
        "seed": seed,
        "workdir": workdir,
        "rows": rows,
        "cells": cells,
        "flags": flags,
    }


def _autograde(api, assignments, pairs, log):
    for assignment in assignments:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise GradingError(
                f"nbgrader generate_assignment {assignment} failed:\n"
                + result.get("error", result.get("log", ""))
            )
    failures = {}
    for student, assignment in pairs:
        began = time.perf_counter()
        result = api.autograde(assignment, student, force=True, create=True)
        if not result["success"]:
            failures[(student, assignment)] = result.get("error", "")[-2000:]
        status = "graded" if result["success"] else "FAILED to grade"
        log(
            f"  {student}/{assignment}: {status} in {time.perf_counter() - began:.0f} s"
        )
    for student, assignment in pairs:
        if (student, assignment) not in failures:
            api.generate_feedback(assignment, student, force=True)
    return failures


def _default_autograde_preprocessors():
    from nbgrader.converters import Autograde

    return Autograde.class_traits()["autograde_preprocessors"].default()


# What a submission's own code should not need, each with what it could be
# used for. The grader cannot see inside the kernel; it reads the code.
_TAMPER_PATTERNS = (
    (r"\bget_ipython\b|\bIPython\b", "reaches into IPython (hooks, traceback display)"),
    (
        r"\bimportlib\b|\b__import__\b|\bsys\.modules\b",
        "imports or reloads modules by hand",
    ),
    (r"\bbuiltins\b|\b__builtins__\b", "changes Python's builtins"),
    (r"\bos\.environ\b|\bputenv\b|\bgetenv\b", "reads or changes the environment"),
    (
        r"\bsubprocess\b|\bos\.(system|fork|spawn\w*|exec\w*|popen)\b|\bPopen\b",
        "starts processes",
    ),
    (r"\bos\._exit\b|\bsys\.exit\b|\bsignal\b", "ends the kernel or handles signals"),
    (r"/proc\b|\bctypes\b|\bgc\.get_objects\b", "reads other processes or memory"),
    (
        r"\bsys\._getframe\b|\binspect\.(stack|currentframe)\b|\bf_back\b|\bf_locals\b",
        "reads the callers' frames",
    ),
    (r"(?<![\w.])(exec|eval|compile)\s*\(", "runs code built at run time"),
    (
        r"(?m)^\s*(?!self\.)[A-Za-z_]\w*(\.\w+)+\s*=(?!=)|\bsetattr\s*\(",
        "replaces an attribute of an object it did not make (a module's function?)",
    ),
    (r"\bsocket\b|\burllib\b|\brequests\b|\bhttp\.client\b", "uses the network"),
)


def tamper_flags(notebook):
    """What in a submission's own cells looks like tampering with the grading.

    Reads the code cells a learner writes (nbgrader's answer cells, and any
    cell that is not locked: cells a learner added); the locked cells, tests
    among them, are restored from the source before grading anyway. Returns
    a sorted list of `"<cell>: <what it may do> (<the code>)"`, empty for a
    submission that uses none of `_TAMPER_PATTERNS`. A flag is a reason for
    a person to read the notebook, not a verdict: grading does not change
    the score.
    """
    import re

    import nbformat

    notebook = nbformat.read(str(notebook), as_version=4)
    flags = set()
    for index, cell in enumerate(notebook.cells):
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grading.get("locked"):
            continue
        name = grading.get("grade_id") or f"cell {index}"
        for pattern, what in _TAMPER_PATTERNS:
            found = re.search(pattern, cell.source)
            if found:
                flags.add(f"{name}: {what} ({found.group(0).strip()})")
    return sorted(flags)


def format_table(rows):
    """A Markdown table: `student_id`, `assignment`, `score`, `max_score`, `flags`.

    `flags` is the number of things `tamper_flags` found (read them in the
    CSV or report.json); rows without a `flags` key count none.
    """
    keys = ("student_id", "assignment", "score", "max_score", "flags")
    table = [list(keys)] + [
        [str(row[key]) for key in keys[:-1]]
        + [str(len([f for f in row.get("flags", "").split("; ") if f]))]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in table
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


class FutureFrames:
    """Held-out moving-digit clips whose future stays in another process.

    Used by `vaelib.checks.check_frame_predictor`. A helper Python process
    draws the clips from `seed` mixed with fresh entropy of its own, sends
    only the context frames, then receives one prediction and sends back the
    mean squared error per frame of the prediction and of three baselines
    (blank frames, the context's mean frame, the last context frame repeated).
    The true future frames never enter the grading kernel, so neither a known
    seed nor the caller's stack frames reveal them; the helper answers one
    prediction only.

    Use as a context manager:

    >>> with FutureFrames(frame_size=32, num_frames=10, context_frames=5,
    ...                   num_clips=8, seed=0) as clips:
    ...     context = clips.context()
    ...     scores = clips.score(np.zeros((8, 5, 32, 32, 1), "float32"))
    >>> sorted(scores)
    ['blank', 'context_mean', 'copy_last', 'prediction']
    """

    def __init__(self, frame_size, num_frames, context_frames, num_clips, seed):
        self.settings = {
            "frame_size": int(frame_size),
            "num_frames": int(num_frames),
            "context_frames": int(context_frames),
            "num_clips": int(num_clips),
            "seed": int(seed),
        }
        self._process = None

    def __enter__(self):
        self._process = subprocess.Popen(
            # -m: `import vaelib` then skips Keras (see vaelib/__init__.py).
            # -I: not the caller's folder on sys.path (a submission's
            # ./vaelib/grading.py would shadow this module), no PYTHON* variables
            [sys.executable, "-I", "-m", "vaelib.grading"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._send_line(json.dumps(self.settings))
        return self

    def __exit__(self, *exc_info):
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                stream.close()
            self._process.stderr.close()
            self._process = None

    def _send_line(self, text):
        self._process.stdin.write(text.encode() + b"\n")
        self._process.stdin.flush()

    def _read_line(self):
        line = self._process.stdout.readline()
        if not line:
            error = self._process.stderr.read().decode(errors="replace")[-1500:]
            raise RuntimeError(f"the clip helper process stopped:\n{error}")
        return json.loads(line)

    def context(self):
        """The context frames, float32 `(num_clips, context_frames, h, w, 1)`."""
        header = self._read_line()
        data = self._process.stdout.read(math.prod(header["shape"]))
        return np.divide(
            np.frombuffer(data, "uint8").reshape(header["shape"]),
            np.float32(255),
            dtype="float32",
        )

    def score(self, prediction):
        """Sends `prediction`; returns MSE per frame of it and of the baselines."""
        prediction = np.ascontiguousarray(prediction, dtype="float32")
        self._send_line(json.dumps({"shape": list(prediction.shape)}))
        self._process.stdin.write(prediction.tobytes())
        self._process.stdin.flush()
        return self._read_line()


# sha256 of MNIST's 10,000 test images as stored (uint8, 10000 x 28 x 28): the
# t10k-images-idx3-ubyte file without its 16-byte header
# (tests/test_sandbox.py checks it against the published hash of the file).
MNIST_TEST_IMAGES_SHA256 = (
    "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"
)


def _check_mnist_file():
    """The helper's clips come from MNIST's real test digits, or from no file.

    The kernel that starts the helper sets its environment, so a submission
    could point `$VAELIB_MNIST` at a file of blank digits (blank clips, which
    any prediction "beats"). A file named there must hold MNIST's test images.
    """
    import hashlib

    path = os.environ.get("VAELIB_MNIST")
    if not path:
        return
    try:
        with np.load(path) as data:
            images = np.ascontiguousarray(data["x_test"])
    except (OSError, KeyError, ValueError) as error:
        raise SystemExit(f"$VAELIB_MNIST={path} is not an mnist.npz: {error}") from None
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    if images.dtype != np.uint8 or digest != MNIST_TEST_IMAGES_SHA256:
        raise SystemExit(
            f"$VAELIB_MNIST={path} does not hold MNIST's test images (sha256 of "
            f"x_test {digest}, expected {MNIST_TEST_IMAGES_SHA256}): the clips "
            "are not drawn from it."
        )


def _mse_per_frame(target, prediction):
    return float(np.square(target - prediction).sum(axis=(2, 3, 4)).mean())


def _serve():
    """The helper process of `FutureFrames` (stdin and stdout are its channel)."""
    from vaelib.data.moving import MovingDigits

    settings = json.loads(sys.stdin.buffer.readline())
    _check_mnist_file()
    entropy = secrets.randbits(64)
    clip_seed = np.random.SeedSequence([settings["seed"], entropy]).generate_state(1)
    clips = MovingDigits.scaled(
        settings["frame_size"],
        num_frames=settings["num_frames"],
        split="test",
        seed=int(clip_seed[0]),
    ).clips_uint8(settings["num_clips"])
    context = np.ascontiguousarray(clips[:, : settings["context_frames"]])
    future = clips[:, settings["context_frames"] :].astype("float32") / 255
    output = sys.stdout.buffer
    output.write(json.dumps({"shape": list(context.shape)}).encode() + b"\n")
    output.write(context.tobytes())
    output.flush()
    header = json.loads(sys.stdin.buffer.readline())
    if list(header["shape"]) != list(future.shape):
        raise SystemExit(f"expected a prediction of shape {future.shape}")
    data = sys.stdin.buffer.read(4 * math.prod(header["shape"]))
    prediction = np.frombuffer(data, "float32").reshape(future.shape)
    context = context.astype("float32") / 255
    repeat = future.shape[1]
    scores = {
        "prediction": _mse_per_frame(future, prediction),
        "blank": _mse_per_frame(future, np.zeros_like(future)),
        "context_mean": _mse_per_frame(
            future, np.repeat(context.mean(axis=1, keepdims=True), repeat, axis=1)
        ),
        "copy_last": _mse_per_frame(future, np.repeat(context[:, -1:], repeat, axis=1)),
    }
    output.write(json.dumps(scores).encode() + b"\n")
    output.flush()


if __name__ == "__main__":
    _serve()
