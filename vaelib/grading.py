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
4. what the hidden tests handed in (`vaelib.checks.hand_in`), what
   assignment 4's `predict` answered the grader's `ClipServer`, and what the
   functions of assignments 1 and 3 answered the grader's `AnswerServer`
   (arrays in, arrays out) are scored outside the kernel (`SCORED_OUTSIDE`,
   `score_outside`, `predictor_verdict`, `answers_verdict`): a cell keeps its
   points only if those verdicts pass;
5. `nbgrader generate_feedback` writes one HTML file per submission, and the
   scores come from nbgrader's CSV export, one row per submission.

With bubblewrap (`sandbox="bwrap"`, or `"auto"` where it runs) each kernel
runs in `vaelib.sandbox`'s sandbox: only its own files, no network, its own
processes, a cleared environment. Without it, student code runs with the
grader's rights. course/INSTRUCTORS.md says what each does and does not
protect against.

`FutureFrames` is the client of the clip helper behind
`vaelib.checks.check_frame_predictor`.

Introduced in: course/INSTRUCTORS.md
"""

import csv
import io
import json
import math
import os
import pathlib
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings

import numpy as np

GRADING_SEED_VARIABLE = "VAELIB_GRADING_SEED"
# `vaelib.checks.hand_in` saves models in this folder of the kernel's working
# folder when the variable is set (by the grader only)
HAND_IN_VARIABLE = "VAELIB_HAND_IN"
HAND_IN_FOLDER = "handed_in"
HAND_IN_MAX_BYTES = 256 * 2**20

# Test cells whose points are computed outside the student's kernel: the
# hidden test hands in an artefact (`vaelib.checks.hand_in`), and a trusted
# process scores it (`score_outside`): {assignment: {test cell: (artefact, kind)}}.
# Each artefact's verdict must pass for the cell to keep its points.
SCORED_OUTSIDE = {
    "01_reparameterisation_and_kl": {
        "test_sampling": [("sampling", "answers")],
        "test_gaussian_kl": [("gaussian_kl", "answers")],
        "test_vae_loss": [("vae_loss", "answers")],
    },
    "03_fix_a_broken_vae": {
        "test_encoder": [("encoder", "answers")],
        "test_sampling": [("sampling", "answers")],
        "test_vae_loss": [("vae_loss", "answers")],
    },
    "02_train_a_conv_vae": {"test_trained_vae": [("trained_vae", "image-vae")]},
    "04_video_predictor": {
        "test_predictor": [
            ("future_frames", "clip-server"),  # predict(), on the server's clips
            ("predictor", "video-predictor"),  # the model itself, run outside
        ]
    },
}

# Assignment 4's graded clips, enforced by the grader's clip server
PREDICTOR_SETTINGS = {
    "frame_size": 32,
    "num_frames": 10,
    "context_frames": 5,
    "num_clips": 96,
}
# A frame predictor's MSE per frame must be at most this fraction of the best
# of three baselines (blank frames, the context's mean, the last frame
# repeated). Assignment 4's reference scores about 0.73 of it; a blur of the
# last frame tuned on the true future scores about 0.72, as well as the
# reference (benchmarks/README.md), so the pass mark cannot be put above a
# blur: the points need the handed-in model instead ("video-predictor").
PREDICTOR_MARGIN = 0.85
BASELINES = ("blank", "context_mean", "copy_last")
# `vaelib.grading.FutureFrames` talks to the grader's clip server on this
# Unix socket when the variable is set (by the grader only)
FUTURE_FRAMES_VARIABLE = "VAELIB_FUTURE_FRAMES"
# `vaelib.checks.answer_outside` lets the grader's answer server call a
# learner's function through this Unix socket when the variable is set
ANSWERS_VARIABLE = "VAELIB_ANSWERS"
# The functions the answer server checks, each with the settings the hidden
# test uses; "smooth": the inputs (by position) along which its gradients are
# also checked by finite differences of its own values (none for a random
# draw like sampling's; not vae_loss's data x, which must stay in [0, 1])
ANSWER_TASKS = {
    "sampling": {"smooth": ()},
    "gaussian_kl": {"smooth": (0, 1)},
    "vae_loss": {"smooth": (1, 2, 3)},
    "encoder": {"smooth": (), "input_shape": (28, 28, 1), "latent_dim": 7},
}
ANSWER_MAX_BYTES = 64 * 2**20
# Each server's records, in the submission's hand-in folder of the grader
SERVER_RECORDS = {"clip-server": "future_frames", "answers": "answers"}
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
                elif item.is_dir() and item.name != HAND_IN_FOLDER:
                    shutil.copytree(item, workdir / item.name, symlinks=True)
            handed_in = pathlib.Path(original) / HAND_IN_FOLDER
            shutil.rmtree(handed_in, ignore_errors=True)
            metadata["path"] = str(workdir)
            self._workdir = workdir
            # the kernel has no network: it talks to nbgrader over Unix sockets
            # in a folder both sides see, and to the clip server through a
            # servers through sockets in a folder it can only read (it cannot
            # replace them)
            self._sockets = pathlib.Path(tempfile.mkdtemp(prefix="vaelib-kernel-"))
            self._servers = pathlib.Path(tempfile.mkdtemp(prefix="vaelib-servers-"))
            if self.sandbox == "bwrap":
                self.kernel_manager_class = _sandboxed_kernel_manager_class()
            assignment = resources.get("nbgrader", {}).get("assignment")
            kinds = {
                kind
                for artefacts in SCORED_OUTSIDE.get(assignment, {}).values()
                for _, kind in artefacts
            }
            self.skip_cells_with_tag = "vaelib-grading-never-skips"
            self._deadline = time.monotonic() + self.notebook_timeout
            self._stopped = None
            self._process_group = None
            servers = []
            # an absolute folder: a notebook that changes its working folder
            # still hands in where the grader looks
            os.environ[HAND_IN_VARIABLE] = str(workdir / HAND_IN_FOLDER)
            try:
                for kind, variable, server_class in (
                    ("clip-server", FUTURE_FRAMES_VARIABLE, ClipServer),
                    ("answers", ANSWERS_VARIABLE, AnswerServer),
                ):
                    if kind in kinds:
                        server = server_class(
                            self._servers / server_class.word,
                            handed_in / f"{SERVER_RECORDS[kind]}.jsonl",
                            sandbox=self.sandbox,
                        )
                        servers.append(server)
                        os.environ[variable] = str(server.socket_path)
                nb, resources = super().preprocess(nb, resources, km)
            except Exception as error:  # noqa: BLE001 - a dead kernel ends the run
                self._stopped = f"the kernel stopped: {type(error).__name__}: {error}"
                self.log.warning("%s", self._stopped)
            finally:
                metadata["path"] = original
                self._kill_process_group()
                for variable in (FUTURE_FRAMES_VARIABLE, ANSWERS_VARIABLE):
                    os.environ.pop(variable, None)
                os.environ.pop(HAND_IN_VARIABLE, None)
                for server in servers:
                    server.close()
                _collect_handed_in(
                    workdir / HAND_IN_FOLDER, pathlib.Path(original) / HAND_IN_FOLDER
                )
                for folder in (workdir, self._sockets, self._servers):
                    shutil.rmtree(folder, ignore_errors=True)
            self._mark_cells_that_did_not_run(nb)
            return nb, resources

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            if self.sandbox == "bwrap":
                from vaelib import sandbox

                km.transport = "ipc"
                km.ip = str(self._sockets / "kernel")
                km.connection_file = str(self._sockets / "kernel.json")
                km.sandbox_prefix = sandbox.bwrap_command(
                    [self._workdir, self._sockets],
                    readable=[*sandbox.readable_paths(), self._servers],
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


def _collect_handed_in(source, destination):
    """Copies the `.keras` files a kernel handed in: regular files, not too big.

    Each file is opened without following links and checked on the open file
    (a process left behind cannot swap in a link after the check); at most
    `HAND_IN_MAX_BYTES` are copied, and anything unreadable is left out.
    """
    if source.is_symlink() or not source.is_dir():
        return
    for path in sorted(source.iterdir()):
        if path.suffix != ".keras":
            continue
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(descriptor, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                continue
            data = file.read(HAND_IN_MAX_BYTES + 1)
        if len(data) <= HAND_IN_MAX_BYTES:
            destination.mkdir(parents=True, exist_ok=True)
            (destination / path.name).write_bytes(data)


def trusted_environment(sandbox, home):
    """The environment of the grader's own processes that score a submission.

    They must see the digits the kernel saw: with the bwrap sandbox, only the
    variables the sandbox passes (`vaelib.sandbox.PASSED_VARIABLES`) and an
    empty home folder (no Keras or TFDS cache the kernel could not read);
    without it, the grader's environment. Never the grading variables.
    """
    from vaelib.sandbox import PASSED_VARIABLES

    private = (
        GRADING_SEED_VARIABLE,
        HAND_IN_VARIABLE,
        FUTURE_FRAMES_VARIABLE,
        ANSWERS_VARIABLE,
    )
    if sandbox != "bwrap":
        return {k: v for k, v in os.environ.items() if k not in private}
    environment = {
        name: os.environ[name]
        for name in PASSED_VARIABLES
        if name in os.environ and name not in private
    }
    environment["PATH"] = os.environ.get("PATH", os.defpath)
    environment["HOME"] = str(home)
    return environment


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


def copy_submission(source, destination, declared=()):
    """Copies what is graded of a submission: its notebooks and declared data files.

    A submission's folder is the student's to fill: a `vaelib/` package
    beside the notebook would shadow the installed checks (the kernel's
    working folder is on `sys.path`), and a symbolic link could point
    anywhere on the grader's machine (the solutions, another student's work,
    a device). Only the notebooks at the top of `source` and the files whose
    paths (relative to `source`) are in `declared` are copied, as regular
    files; links are never followed or kept.

    Returns:
        What was left out, sorted, each as `"<path relative to source> (<why>)"`.
    """
    source, destination = pathlib.Path(source), pathlib.Path(destination)
    if source.is_symlink():
        return [". (a symbolic link)"]
    declared = {pathlib.PurePosixPath(path).as_posix() for path in declared}
    left_out = []
    for folder, folders, files in os.walk(source):
        for name in sorted(folders + files):
            path = pathlib.Path(folder, name)
            relative = path.relative_to(source).as_posix()
            if path.is_symlink() or path.is_dir():
                if path.is_symlink():
                    left_out.append(f"{relative} (a symbolic link)")
                elif not any(item.startswith(relative + "/") for item in declared):
                    left_out.append(f"{relative}/ (not a declared data file)")
                else:
                    continue  # a folder on the way to a declared file
                if name in folders:
                    folders.remove(name)  # not walked into
            elif not path.is_file():
                left_out.append(f"{relative} (not a regular file)")
            elif (
                path.suffix == ".ipynb" and "/" not in relative
            ) or relative in declared:
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            else:
                left_out.append(f"{relative} (not a notebook or a declared data file)")
    destination.mkdir(parents=True, exist_ok=True)
    return sorted(left_out)


def grade_submissions(
    submitted,
    out,
    course=COURSE_DIRECTORY,
    seed=None,
    timeout=600,
    notebook_timeout=1800,
    workdir=None,
    sandbox="auto",
    declared_files=None,
    outside_seed=None,
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
        declared_files: `{assignment_id: [path, ...]}`, the data files (paths
            relative to the submission's folder) a submission may hand in
            beside its notebook; anything else is left out and flagged.
        outside_seed: The seed of the digits and clips on which handed-in
            models are scored outside the kernel (`score_outside`); random
            when `None`, never given to the kernel, recorded in report.json.

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
    declared_files = declared_files or {}
    left_out = {}
    shutil.copy(course / "nbgrader_config.py", workdir / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(course / "source" / assignment, workdir / "source" / assignment)
    for student, assignment in pairs:
        left_out[(student, assignment)] = copy_submission(
            pathlib.Path(submitted) / student / assignment,
            workdir / "submitted" / student / assignment,
            declared=declared_files.get(assignment, ()),
        )
    flags = {}
    for student, assignment in pairs:
        copied = workdir / "submitted" / student / assignment / f"{assignment}.ipynb"
        found = tamper_flags(copied) if copied.is_file() else []
        found += [f"files: left out {item}" for item in left_out[(student, assignment)]]
        flags[f"{student}/{assignment}"] = found
        for flag in found:
            log(f"FLAGGED {student}/{assignment}: {flag}")

    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    previous_seed = os.environ.get(GRADING_SEED_VARIABLE)
    os.environ[GRADING_SEED_VARIABLE] = str(seed)
    previous_path = os.environ.get("PATH")
    # the seed of what the grader's own processes draw to score handed-in
    # models: never in the kernel's environment, so the kernel cannot know
    # which digits or clips they will be
    outside_seed = secrets.randbelow(2**31) if outside_seed is None else outside_seed
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
            outside = _score_outside_all(
                api, pairs, failures, seed, outside_seed, kind, log
            )
            _feedback(api, pairs, failures)
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
        "scored_outside": outside,
        "outside_seed": outside_seed,
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
    return failures


def _feedback(api, pairs, failures):
    for student, assignment in pairs:
        if (student, assignment) not in failures:
            api.generate_feedback(assignment, student, force=True)


def _score_outside_all(api, pairs, failures, seed, outside_seed, sandbox, log):
    """Scores what each submission handed in, outside its kernel; sets the points.

    For each cell in `SCORED_OUTSIDE`: a model file is scored by a trusted
    process (`score_outside`), assignment 4's predictions by the records of
    the grader's clip server (`predictor_verdict`). A cell keeps the points
    its test earned in the kernel only if that verdict passes; otherwise it
    gets none (nbgrader's manual score, which takes precedence over the
    kernel's). Returns `{"student/assignment": {cell: result}}` for
    report.json.
    """
    from nbgrader.api import Gradebook

    results = {}
    root = pathlib.Path(api.coursedir.root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        for student, assignment in pairs:
            cells = SCORED_OUTSIDE.get(assignment, {})
            if not cells or (student, assignment) in failures:
                continue
            folder = root / "autograded" / student / assignment / HAND_IN_FOLDER
            for cell, artefacts in cells.items():
                began = time.perf_counter()
                verdicts = []
                for artefact, kind in artefacts:
                    try:
                        if kind == "clip-server":
                            path = folder / f"{SERVER_RECORDS[kind]}.jsonl"
                            verdicts.append(predictor_verdict(path, seed))
                        elif kind == "answers":
                            path = folder / f"{SERVER_RECORDS[kind]}.jsonl"
                            verdicts.append(answers_verdict(path, artefact))
                        else:
                            path = folder / f"{artefact}.keras"
                            verdicts.append(
                                score_outside(kind, path, outside_seed, sandbox)
                            )
                    except Exception as error:  # noqa: BLE001 - scores nothing
                        verdicts.append(
                            {
                                "passed": False,
                                "messages": [
                                    f"{artefact}: {type(error).__name__}: {error}"
                                ],
                            }
                        )
                result = {
                    "passed": all(v["passed"] for v in verdicts),
                    "messages": [m for v in verdicts for m in v["messages"]],
                }
                grade = gradebook.find_grade(cell, assignment, assignment, student)
                kept = grade.auto_score or 0.0
                grade.manual_score = kept if result["passed"] else 0.0
                grade.needs_manual_grade = False
                gradebook.db.commit()
                result["points"] = grade.manual_score
                results.setdefault(f"{student}/{assignment}", {})[cell] = result
                verdict = "passed" if result["passed"] else "FAILED"
                log(
                    f"  {student}/{assignment} {cell}: scored outside the notebook, "
                    f"{verdict} in {time.perf_counter() - began:.0f} s: "
                    + " ".join(result["messages"])
                )
    return results


def score_outside(kind, path, seed, sandbox="none", timeout=900):
    """Scores a handed-in artefact in a trusted Python process.

    The process is `python -I -m vaelib.grading score KIND PATH`: isolated
    mode (neither the working folder nor `PYTHON*` variables reach
    `sys.path`), started in an empty temporary folder, with
    `trusted_environment(sandbox)` (the digits the kernel saw). A model file
    is loaded with Keras' `safe_mode` (no code from the notebook runs: only
    Keras' and vaelib's registered classes), and scored on digits drawn from
    `seed`, which the kernel never had.

    Returns:
        `{"passed": bool, "messages": [str, ...]}`.
    """
    path = pathlib.Path(path)
    if path.is_symlink() or not path.is_file():
        return {
            "passed": False,
            "messages": [
                f"nothing was handed in ({path.name}): the hidden test's "
                "checks.hand_in did not run"
            ],
        }
    command = [sys.executable, "-I", "-m", "vaelib.grading", "score", kind, str(path)]
    with tempfile.TemporaryDirectory(prefix="vaelib-trusted-") as folder:
        environment = trusted_environment(sandbox, home=folder)
        try:
            finished = subprocess.run(
                [*command, "--seed", str(seed)],
                cwd=folder,
                env=environment,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"passed": False, "messages": [f"scoring took over {timeout} s"]}
    lines = finished.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {
            "passed": False,
            "messages": ["the scoring process failed: " + finished.stderr[-1500:]],
        }


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

    Used by `vaelib.checks.check_frame_predictor`. A helper process draws the
    clips from `seed` mixed with fresh entropy of its own, sends only the
    context frames, then receives one prediction and sends back the mean
    squared error per frame of the prediction and of four baselines (blank
    frames, the context's mean frame, the last context frame repeated, and
    `tuned_blur`), and whether the prediction passes (`PREDICTOR_MARGIN`).
    The true future frames never enter the caller's process, so neither a
    known seed nor the caller's stack frames reveal them; the helper answers
    one prediction only.

    Under `python -m vaelib grade`, the helper is the grader's `ClipServer`
    (reached through the Unix socket named by `$VAELIB_FUTURE_FRAMES`),
    which keeps each verdict: assignment 4's points come from there, not from
    the notebook. Elsewhere it is a child process, `python -I -m
    vaelib.grading`.

    Use as a context manager:

    >>> with FutureFrames(frame_size=32, num_frames=10, context_frames=5,
    ...                   num_clips=8, seed=0) as clips:
    ...     context = clips.context()
    ...     scores = clips.score(np.zeros((8, 5, 32, 32, 1), "float32"))
    >>> sorted(scores)  # doctest: +NORMALIZE_WHITESPACE
    ['blank', 'context_mean', 'copy_last', 'message', 'passed', 'prediction',
     'tuned_blur']
    """

    def __init__(self, frame_size, num_frames, context_frames, num_clips, seed):
        self.settings = {
            "frame_size": int(frame_size),
            "num_frames": int(num_frames),
            "context_frames": int(context_frames),
            "num_clips": int(num_clips),
            "seed": int(seed),
        }
        self._process = self._socket = None

    def __enter__(self):
        server = os.environ.get(FUTURE_FRAMES_VARIABLE, "").strip()
        if server:
            import socket

            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.connect(server)
            self._reader = self._socket.makefile("rb")
            self._writer = self._socket.makefile("wb")
        else:
            self._process = subprocess.Popen(
                # -m: `import vaelib` then skips Keras (see vaelib/__init__.py).
                # -I: not the caller's folder on sys.path (a submission's
                # ./vaelib/grading.py would shadow this module), no PYTHON*
                # variables
                [sys.executable, "-I", "-m", "vaelib.grading"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            self._reader, self._writer = self._process.stdout, self._process.stdin
        self._send_line(json.dumps(self.settings))
        return self

    def __exit__(self, *exc_info):
        if self._socket is not None:
            for stream in (self._reader, self._writer, self._socket):
                stream.close()
            self._socket = None
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                stream.close()
            self._process.stderr.close()
            self._process = None

    def _send_line(self, text):
        self._send(text.encode() + b"\n")

    def _send(self, data):
        try:
            self._writer.write(data)
            self._writer.flush()
        except (BrokenPipeError, ConnectionError):
            pass  # the helper refused and closed: `_read_line` says so

    def _read_line(self):
        try:
            line = self._reader.readline()
        except ConnectionError:  # the server refused what was sent
            line = b""
        if not line:
            if self._process is None:
                raise RuntimeError("the grader's clip server closed the connection")
            error = self._process.stderr.read().decode(errors="replace")[-1500:]
            raise RuntimeError(f"the clip helper process stopped:\n{error}")
        return json.loads(line)

    def context(self):
        """The context frames, float32 `(num_clips, context_frames, h, w, 1)`."""
        header = self._read_line()
        data = self._reader.read(math.prod(header["shape"]))
        return np.divide(
            np.frombuffer(data, "uint8").reshape(header["shape"]),
            np.float32(255),
            dtype="float32",
        )

    def score(self, prediction):
        """Sends `prediction`; returns MSE per frame of it and of the baselines."""
        prediction = np.ascontiguousarray(prediction, dtype="float32")
        self._send_line(json.dumps({"shape": list(prediction.shape)}))
        self._send(prediction.tobytes())
        return self._read_line()


class _GraderServer:
    """A helper process of the grader, outside the student's kernel.

    Starts `python -I -m vaelib.grading WORD SOCKET RECORDS` (the trusted
    environment, an empty working folder) listening on a Unix socket; each
    connection is one exchange, whose outcome is appended to `records` (JSON
    lines), a file the kernel cannot reach, and read after the notebook ran.
    """

    word = None

    def __init__(self, socket_path, records, sandbox="none"):
        self.socket_path = pathlib.Path(socket_path)
        self.records = pathlib.Path(records)
        self.records.parent.mkdir(parents=True, exist_ok=True)
        self._folder = tempfile.mkdtemp(prefix=f"vaelib-{self.word}-")
        command = [sys.executable, "-I", "-m", "vaelib.grading", self.word]
        self._process = subprocess.Popen(
            [*command, str(self.socket_path), str(self.records)],
            cwd=self._folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=trusted_environment(sandbox, home=self._folder),
        )
        ready = self._process.stdout.readline()
        if ready.strip() != b"ready":
            self.close()
            raise GradingError(f"the grader's {self.word} server did not start")

    def close(self):
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process.stdout.close()
            self._process = None
        shutil.rmtree(self._folder, ignore_errors=True)


class ClipServer(_GraderServer):
    """The grader's clip helper for assignment 4 (`FutureFrames`' exchanges).

    Each connection is one `FutureFrames` exchange; its settings, seed,
    scores and verdict are recorded for `predictor_verdict`.
    """

    word = "serve"


class AnswerServer(_GraderServer):
    """The grader's checker of learners' functions, arrays in and arrays out.

    Each connection is one `vaelib.checks.answer_outside` exchange: the
    kernel names a task of `ANSWER_TASKS`, and this process runs that task's
    check (`vaelib.checks`) on inputs drawn from a seed of its own, calling
    the learner's function in the kernel through the socket (`RemoteAnswer`):
    the values, the gradients and the verdict are all computed here. The
    task, seed and verdict are recorded for `answers_verdict`.
    """

    word = "answers"


def predictor_verdict(records, seed, settings=None):
    """Assignment 4's verdict from the clip server's records.

    The hidden test asks with the grading `seed` and the assignment's
    `settings` (`PREDICTOR_SETTINGS`); every such exchange must have passed,
    and there must be at least one (asking again does not pick the best).

    Returns:
        `{"passed": bool, "messages": [str, ...]}`.
    """
    settings = PREDICTOR_SETTINGS if settings is None else settings
    records = pathlib.Path(records)
    lines = records.read_text().splitlines() if records.is_file() else []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
            return {"passed": False, "messages": [f"a broken record: {line[:80]!r}"]}
        records.append(record)
    graded = [
        record
        for record in records
        if record.get("seed") == int(seed)
        and all(record["settings"].get(k) == v for k, v in settings.items())
    ]
    if not graded:
        return {
            "passed": False,
            "messages": [
                "the grader's clip server scored no prediction of the hidden test "
                f"({len(lines)} exchange(s) in all)"
            ],
        }
    messages = [record.get("message", record.get("error", "")) for record in graded]
    passed = all(record.get("passed") is True for record in graded)
    return {"passed": passed, "messages": messages}


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


BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)


def tuned_blur(last, future):
    """The last context frame, blurred and dimmed as best suits each future step.

    For each future step, over Gaussian blurs of width `BLUR_SIGMAS` (pixels)
    and a gain in [0, 1] (the least-squares one, clipped), the pair with the
    smallest squared error on these very clips: a baseline tuned with the
    answer, so at least as good as any fixed blur schedule (copy-last is
    sigma 0, gain 1; blank frames are gain 0).

    Args:
        last: The last context frames, `(n, h, w, 1)`.
        future: The true future, `(n, steps, h, w, 1)`.

    Returns:
        The baseline's prediction, shaped like `future`.
    """
    from scipy.ndimage import gaussian_filter

    blurred = [
        gaussian_filter(last, sigma=(0, sigma, sigma, 0)) if sigma else last
        for sigma in BLUR_SIGMAS
    ]
    prediction = np.empty_like(future)
    for step in range(future.shape[1]):
        target, best = future[:, step], None
        for candidate in blurred:
            power = float(np.square(candidate).sum())
            gain = 0.0 if power == 0 else float((candidate * target).sum()) / power
            guess = np.clip(gain, 0.0, 1.0) * candidate
            error = float(np.square(target - guess).sum())
            if best is None or error < best[0]:
                best = (error, guess)
        prediction[:, step] = best[1]
    return prediction


def _answer(reader, writer, record, only=None):
    """One `FutureFrames` exchange on a pair of binary streams, noted in `record`.

    With `only` (settings without the seed), any other request is refused.
    """
    from vaelib.data.moving import MovingDigits

    settings = json.loads(reader.readline(1 << 16))
    record.update(seed=settings.get("seed"), settings=settings)
    if only is not None and (
        {k: v for k, v in settings.items() if k != "seed"} != only
        or not isinstance(settings.get("seed"), int)
    ):
        raise ValueError(f"the grader's clip server makes clips of {only} only")
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
    writer.write(json.dumps({"shape": list(context.shape)}).encode() + b"\n")
    writer.write(context.tobytes())
    writer.flush()
    header = json.loads(reader.readline(1 << 16))
    if list(header["shape"]) != list(future.shape):
        raise ValueError(f"expected a prediction of shape {future.shape}")
    data = reader.read(4 * math.prod(header["shape"]))
    prediction = np.frombuffer(data, "float32").reshape(future.shape)
    scores = predictor_scores(context.astype("float32") / 255, future, prediction)
    record.update(scores=scores, passed=scores["passed"], message=scores["message"])
    writer.write(json.dumps(scores).encode() + b"\n")
    writer.flush()


def predictor_scores(context, future, prediction):
    """MSE per frame of `prediction` and of the baselines, and the verdict."""
    repeat = future.shape[1]
    scores = {
        "prediction": _mse_per_frame(future, prediction),
        "blank": _mse_per_frame(future, np.zeros_like(future)),
        "context_mean": _mse_per_frame(
            future, np.repeat(context.mean(axis=1, keepdims=True), repeat, axis=1)
        ),
        "copy_last": _mse_per_frame(future, np.repeat(context[:, -1:], repeat, axis=1)),
        "tuned_blur": _mse_per_frame(future, tuned_blur(context[:, -1], future)),
    }
    best_name = min(BASELINES, key=scores.get)
    best, ours = scores[best_name], scores["prediction"]
    passed = bool(
        np.all(np.isfinite(prediction))
        and prediction.min() >= 0
        and prediction.max() <= 1
        and best > 0
        and ours <= PREDICTOR_MARGIN * best
    )
    scores["passed"] = passed
    scores["message"] = (
        f"MSE per frame {ours:.1f}; the limit is {PREDICTOR_MARGIN:.2f} x {best:.1f} "
        f"= {PREDICTOR_MARGIN * best:.1f} ({best_name}; a blur of the last frame "
        f"tuned on the future: {scores['tuned_blur']:.1f}): "
        + ("passed" if passed else "failed")
    )
    return scores


def _serve():
    """The helper process of `FutureFrames` (stdin and stdout are its channel)."""
    try:
        _answer(sys.stdin.buffer, sys.stdout.buffer, {})
    except ValueError as error:
        raise SystemExit(str(error)) from None


def _serve_socket(socket_path, records, respond):
    """A grader's server: `respond(reader, writer, record, keep)` per connection.

    `record` starts as a failure; `keep()` appends it to `records` (once), and
    runs at the latest before the connection closes, so a kernel sees its
    exchange end only once it is on record.
    """
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(8)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        connection.settimeout(600)
        record, kept = {"passed": False}, []

        def keep(record=record, kept=kept):
            if not kept:
                kept.append(True)
                with open(records, "a") as file:
                    file.write(json.dumps(record) + "\n")

        with connection, connection.makefile("rb") as reader:
            with connection.makefile("wb") as writer:
                try:
                    respond(reader, writer, record, keep)
                except (Exception, SystemExit) as error:  # noqa: BLE001 - recorded
                    record.update(
                        passed=False, error=f"{type(error).__name__}: {error}"
                    )
                finally:
                    keep()


def _answer_clips(reader, writer, record, keep):
    _answer(reader, writer, record, only=PREDICTOR_SETTINGS)


def send_arrays(writer, header, arrays):
    """One message: a JSON line (`header` and each array's size), then `.npy` data.

    The channel of `AnswerServer` and `vaelib.checks.answer_outside`: NumPy's
    own format, read back without pickles.
    """
    blobs = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
    header = {**header, "sizes": [len(blob) for blob in blobs]}
    writer.write(json.dumps(header).encode() + b"\n")
    for blob in blobs:
        writer.write(blob)
    writer.flush()


def read_arrays(reader, max_bytes=ANSWER_MAX_BYTES):
    """The header and arrays of one `send_arrays` message."""
    line = reader.readline(1 << 16)
    if not line:
        raise ConnectionError("the other side closed the connection")
    header = json.loads(line)
    sizes = header.get("sizes", [])
    if not isinstance(sizes, list) or sum(int(size) for size in sizes) > max_bytes:
        raise ValueError(f"a message of arrays over {max_bytes} bytes")
    arrays = []
    for size in sizes:
        data = reader.read(int(size))
        arrays.append(np.load(io.BytesIO(data), allow_pickle=False))
    return header, arrays


class RemoteAnswer:
    """A learner's function in the kernel, called from the grader's process.

    `vaelib.checks`' checks accept it where they take a function: calling it
    sends the input arrays to the kernel and returns the output arrays (one,
    or a list for a function that returns several); `vjp` returns the output
    and the gradients of `sum(weights * output)` the kernel's autodiff
    computed. Along the inputs named in `smooth` (positions), those gradients
    are checked against finite differences of the kernel's own values
    (`_check_finite_differences`): a kernel cannot report gradients of a
    function other than the one it evaluates.
    """

    def __init__(self, reader, writer, name, smooth, seed):
        self._reader, self._writer = reader, writer
        self.name, self.smooth = name, tuple(smooth)
        self._rng = np.random.default_rng([seed, 3])

    def _request(self, header, arrays):
        send_arrays(self._writer, header, arrays)
        reply, outputs = read_arrays(self._reader)
        if reply.get("error"):
            raise AssertionError(
                f"{self.name} failed in the notebook: {str(reply['error'])[:500]}"
            )
        if not all(np.issubdtype(a.dtype, np.number) for a in outputs):
            raise AssertionError(f"{self.name} returned arrays that are not numbers")
        return reply, outputs

    def __call__(self, *arrays):
        reply, outputs = self._request({"op": "call"}, arrays)
        if reply.get("single"):
            return outputs[0]
        return list(outputs)

    def vjp(self, inputs, weights):
        reply, arrays = self._request({"op": "vjp"}, [*inputs, weights])
        if len(arrays) != len(inputs) + 1:
            raise AssertionError(f"{self.name}: the notebook sent a broken reply")
        missing = set(reply.get("missing", []))
        output = np.asarray(arrays[0], "float64")
        gradients = [
            None if index in missing else np.asarray(g, "float64")
            for index, g in enumerate(arrays[1:])
        ]
        if self.smooth:
            self._check_finite_differences(inputs, weights, output, gradients)
        return output, gradients

    def _check_finite_differences(self, inputs, weights, output, gradients):
        """The reported gradients against central differences of the values.

        Along one random direction `v` (the `smooth` inputs with a gradient
        move):
        `(f(x + h v) - f(x - h v)) / 2h`, weighted like the gradients, must
        match the sum of `gradient . v` to 2% of the gradient's size (plus
        the rounding of float32 values).
        """
        moved = [
            g is not None and index in self.smooth for index, g in enumerate(gradients)
        ]
        if not any(moved):
            return
        step = 1e-2
        directions = [
            self._rng.standard_normal(np.shape(x)) if m else np.zeros(np.shape(x))
            for x, m in zip(inputs, moved, strict=True)
        ]

        def shifted(sign):
            return [
                (np.asarray(x, "float64") + sign * step * v).astype(np.asarray(x).dtype)
                for x, v in zip(inputs, directions, strict=True)
            ]

        weights = np.asarray(weights, "float64")
        upper = np.asarray(self(*shifted(1.0)), "float64")
        lower = np.asarray(self(*shifted(-1.0)), "float64")
        numeric = float(np.sum(weights * (upper - lower)) / (2 * step))
        analytic = float(
            sum(
                np.sum(g * v)
                for g, v, m in zip(gradients, directions, moved, strict=True)
                if m
            )
        )
        size = math.sqrt(
            sum(float(np.sum(g**2)) for g, m in zip(gradients, moved, strict=True) if m)
        )
        # float32 values: rounding of about 1e-6 of their size, over 2h
        rounding = 1e-6 * float(np.sum(np.abs(weights * output))) / step
        if abs(numeric - analytic) > 0.02 * max(size, abs(analytic)) + rounding:
            raise AssertionError(
                f"The gradients of {self.name} are not those of its values: along "
                "a random direction its finite differences disagree with its "
                "autodiff gradients. Compute the output and its gradient with "
                "the same keras.ops code."
            )


def _answer_function(reader, writer, record, keep):
    """One `vaelib.checks.answer_outside` exchange, recorded (`AnswerServer`)."""
    from vaelib import checks

    header, _ = read_arrays(reader)
    task = header.get("task")
    record.update(task=task)
    if task not in ANSWER_TASKS:
        raise ValueError(f"the grader checks the functions {sorted(ANSWER_TASKS)}")
    settings = ANSWER_TASKS[task]
    seed = secrets.randbelow(2**31)
    record.update(seed=seed)
    remote = RemoteAnswer(reader, writer, task, settings["smooth"], seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if task == "encoder":
                message = checks.check_encoder(
                    remote, settings["input_shape"], settings["latent_dim"], seed=seed
                )
            else:
                message = getattr(checks, f"check_{task}")(remote, seed=seed)
        record.update(passed=True, message=f"outside the notebook: {message}")
    except AssertionError as error:
        record.update(passed=False, message=f"outside the notebook: {error}")
    except (ConnectionError, OSError, ValueError) as error:
        record.update(
            passed=False,
            message=f"outside the notebook: the exchange broke ({error})",
        )
    keep()
    try:
        send_arrays(
            writer,
            {"op": "done", "passed": record["passed"], "message": record["message"]},
            [],
        )
    except (ConnectionError, OSError):
        pass


def answers_verdict(records, task):
    """The verdict on one function from the answer server's records.

    Every exchange about `task` must have passed, and there must be one at
    least (asking again does not pick the best).

    Returns:
        `{"passed": bool, "messages": [str, ...]}`.
    """
    records = pathlib.Path(records)
    lines = records.read_text().splitlines() if records.is_file() else []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return {"passed": False, "messages": [f"a broken record: {line[:80]!r}"]}
        if not isinstance(record, dict):
            return {"passed": False, "messages": [f"a broken record: {line[:80]!r}"]}
        if record.get("task") == task:
            found.append(record)
    if not found:
        return {
            "passed": False,
            "messages": [
                f"{task}: the grader's process never checked it: the hidden test "
                f"did not reach checks.answer_outside ({len(lines)} exchange(s) "
                "in all)"
            ],
        }
    messages = [r.get("message", r.get("error", "")) for r in found]
    return {"passed": all(r.get("passed") is True for r in found), "messages": messages}


def _score_image_vae(model, seed):
    """Assignment 2: the negative ELBO target on test and on training digits."""
    from vaelib import checks

    # held-out digits, and training digits: a model fit to the test digits
    # alone (a lookup table of them) fails on the training ones
    return [
        checks.check_trained_image_vae(model, seed=seed, split=split)
        for split in ("test", "train")
    ]


def _score_predictor(model, seed):
    """Assignment 4: the handed-in model's own predictions on new clips.

    The model (a `vaelib.models.VAE` itself, not one of the library's
    ready-made subclasses, whose decoder has a ConvLSTM layer, as the
    assignment asks) predicts as the assignment's `predict` does: the
    context frames, zeros after them, `reconstruct`, the frames after the
    context. Its predictions must not change when the true future
    is given instead of zeros (the encoder never sees it), and must pass
    `predictor_scores`.
    """
    import keras
    from keras import ops

    from vaelib.data.moving import MovingDigits
    from vaelib.layers import FusedConvLSTM2D
    from vaelib.models import VAE

    if not isinstance(model, VAE):
        raise AssertionError(
            f"Expected the handed-in predictor to be a vaelib.models.VAE; "
            f"received {type(model).__name__}."
        )
    if type(model) is not VAE:
        # a ready-made architecture of the library (`convlstm_predictor`,
        # `convlstm_vae`) is a subclass: the assignment builds the networks
        raise AssertionError(
            "Expected the VAE(encoder, decoder) that build_predictor makes; "
            f"received a {type(model).__name__}, one of the library's ready-made "
            "models, which the assignment asks you to build layer by layer."
        )
    recurrent = (keras.layers.ConvLSTM2D, FusedConvLSTM2D)
    if not any(
        isinstance(layer, recurrent) for layer in model.decoder._flatten_layers()
    ):
        raise AssertionError(
            "The handed-in predictor's decoder has no ConvLSTM layer: the "
            "assignment's decoder carries the motion forward with one (a model "
            "of per-frame layers only, such as a blur set by hand, scores nothing)."
        )
    settings = PREDICTOR_SETTINGS
    clips = MovingDigits.scaled(
        settings["frame_size"], num_frames=settings["num_frames"], split="test",
        seed=seed,
    ).clips(settings["num_clips"])  # fmt: skip
    context_frames = settings["context_frames"]
    padded = np.zeros_like(clips)
    padded[:, :context_frames] = clips[:, :context_frames]

    def predict(x):
        return np.concatenate(
            [
                ops.convert_to_numpy(model.reconstruct(x[i : i + 16]))
                for i in range(0, len(x), 16)
            ]
        ).astype("float32")[:, context_frames:]

    prediction = predict(padded)
    if not np.allclose(predict(clips), prediction, atol=1e-4):
        raise AssertionError(
            "The model's predictions change when it is given the true future "
            "frames instead of zeros: its encoder must never see them."
        )
    scores = predictor_scores(
        clips[:, :context_frames], clips[:, context_frames:], prediction
    )
    if not scores["passed"]:
        raise AssertionError(f"the handed-in model: {scores['message']}")
    return [f"the handed-in model: {scores['message']}"]


def _score_main(arguments):
    """`python -I -m vaelib.grading score KIND PATH --seed S` (see `score_outside`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -I -m vaelib.grading score")
    parser.add_argument("kind", choices=["image-vae", "video-predictor"])
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, required=True)
    arguments = parser.parse_args(arguments)
    import keras

    messages, passed = [], True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(
                arguments.path, compile=False, safe_mode=True
            )
    except Exception as error:  # noqa: BLE001 - any failure to load scores nothing
        messages.append(
            "the handed-in model cannot be loaded without running the notebook's "
            f"code (Keras' and vaelib's layers only): {type(error).__name__}: {error}"
        )
        passed = False
    else:
        seed = int(np.random.SeedSequence([arguments.seed, 2]).generate_state(1)[0])
        score = _score_image_vae if arguments.kind == "image-vae" else _score_predictor
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                messages += score(model, seed)
        except AssertionError as error:
            messages.append(str(error))
            passed = False
        except Exception as error:  # noqa: BLE001 - a model that fails to run
            messages.append(f"the model failed to run: {type(error).__name__}: {error}")
            passed = False
    print(json.dumps({"passed": passed, "messages": messages}))


if __name__ == "__main__":
    # this file runs as __main__; vaelib.checks imports it as vaelib.grading.
    # One copy of its classes (checks' isinstance(..., RemoteAnswer)):
    from vaelib import grading

    if sys.argv[1:2] == ["score"]:
        grading._score_main(sys.argv[2:])
    elif sys.argv[1:2] == ["serve"]:
        grading._serve_socket(*sys.argv[2:4], respond=grading._answer_clips)
    elif sys.argv[1:2] == ["answers"]:
        grading._serve_socket(*sys.argv[2:4], respond=grading._answer_function)
    else:
        grading._serve()
