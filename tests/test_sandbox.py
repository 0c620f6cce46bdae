"""`vaelib.sandbox`: what a sandboxed submission can and cannot reach (issue 28).

Each test runs a small Python program inside `bwrap_command`'s sandbox, as
the grader runs a submission's kernel, and checks from outside what it did.
They need bubblewrap (`apt-get install bubblewrap`; `.ci/run` installs it);
without it they are skipped, and `grade --sandbox bwrap` refuses to run.
"""

import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from vaelib import grading, sandbox

KIND, WHY_NOT = sandbox.choose("auto")
needs_bwrap = pytest.mark.skipif(KIND != "bwrap", reason=f"no sandbox here: {WHY_NOT}")


def _run_inside(folder, code, environment=None, timeout=120):
    command = sandbox.bwrap_command([folder], environment=environment)
    return subprocess.run(
        [*command, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


@needs_bwrap
def test_a_submission_sees_its_own_folder_and_not_the_course_or_other_folders(
    tmp_path,
):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    (other / "answers.txt").write_text("another student's work")
    solutions = grading.COURSE_DIRECTORY / "source"
    assert solutions.is_dir()  # there, outside the sandbox
    result = _run_inside(
        mine,
        f"""
        import os, pathlib
        print("cwd", os.getcwd())
        print("other", pathlib.Path({str(other)!r}).exists())
        print("solutions", pathlib.Path({str(solutions)!r}).exists())
        print("home", sorted(os.listdir(os.environ["HOME"])))
        pathlib.Path("written.txt").write_text("mine")
        import vaelib
        try:
            pathlib.Path(vaelib.__file__).with_name("checks.py").write_text("")
        except OSError as error:
            print("vaelib read-only", type(error).__name__)
        """,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"cwd {mine}" in result.stdout
    assert "other False" in result.stdout
    assert "solutions False" in result.stdout
    assert "home []" in result.stdout
    assert "vaelib read-only" in result.stdout
    assert (mine / "written.txt").read_text() == "mine"


@needs_bwrap
def test_no_network_and_a_cleared_environment(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    environment = dict(os.environ, GRADER_SECRET="s3cret", VAELIB_GRADING_SEED="12345")
    try:
        result = _run_inside(
            tmp_path,
            f"""
            import os, socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5)
                print("connected")
            except OSError as error:
                print("no network:", error)
            print("secret", os.environ.get("GRADER_SECRET"))
            print("seed", os.environ.get("VAELIB_GRADING_SEED"))
            """,
            environment=environment,
        )
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no network" in result.stdout and "connected" not in result.stdout
    assert "secret None" in result.stdout
    # passed on purpose: the hidden tests run in the kernel and read it
    assert "seed 12345" in result.stdout


@needs_bwrap
def test_a_detached_daemon_dies_with_the_sandbox_and_sees_no_other_process(tmp_path):
    result = _run_inside(
        tmp_path,
        """
        import os, subprocess
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        print("processes", len(pids))
        subprocess.Popen(
            ["sh", "-c", "sleep 2; echo still here > late.txt"],
            start_new_session=True,
        )
        print("started")
        """,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "started" in result.stdout
    seen = int(result.stdout.split("processes")[1].split()[0])
    assert seen <= 3, f"the sandbox should see only its own processes, saw {seen}"
    time.sleep(4)
    assert not (tmp_path / "late.txt").exists(), "the daemon outlived the sandbox"


def test_choose_names_what_it_cannot_run():
    assert sandbox.choose("none")[0] == "none"
    kind, reason = sandbox.choose("auto", executable="no-such-bwrap")
    assert kind == "none" and "not installed" in reason
    with pytest.raises(sandbox.SandboxUnavailable, match="no-such-bwrap"):
        sandbox.choose("bwrap", executable="no-such-bwrap")
    with pytest.raises(ValueError, match="sandbox="):
        sandbox.choose("docker")


def test_grade_refuses_a_sandbox_it_cannot_run(tmp_path, monkeypatch):
    def unavailable(kind):
        raise sandbox.SandboxUnavailable("`bwrap` is not installed")

    monkeypatch.setattr(sandbox, "choose", unavailable)
    with pytest.raises(grading.GradingError, match="--sandbox bwrap cannot run"):
        grading.grade_submissions(tmp_path, tmp_path / "grades.csv", sandbox="bwrap")


def test_the_report_says_what_each_choice_isolates():
    for kind in ("bwrap", "none"):
        described = sandbox.describe(kind)
        assert described["sandbox"] == kind
        assert described["isolated"] and described["not_isolated"]
    assert any("seed" in line for line in sandbox.describe("bwrap")["not_isolated"])


def test_the_helper_process_does_not_import_from_the_callers_folder(
    tmp_path, monkeypatch
):
    # attack 2 of issue 28: a ./vaelib/grading.py written by a submission
    fake = tmp_path / "vaelib"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "grading.py").write_text("print('{\"shape\": [0]}', flush=True)\n")
    monkeypatch.chdir(tmp_path)
    with grading.FutureFrames(16, 4, 2, 2, seed=0) as clips:
        context = clips.context()
    assert context.shape == (2, 2, 16, 16, 1)
    assert pathlib.Path.cwd() == tmp_path


def test_the_clip_helper_refuses_an_mnist_file_that_is_not_mnist(tmp_path, monkeypatch):
    # issue 28: os.environ["VAELIB_MNIST"] = a blank file made the clips blank,
    # and zeros passed "0 <= 0.85 * 0"
    blank = tmp_path / "mnist.npz"
    zeros = np.zeros((10000, 28, 28), "uint8")
    labels = np.zeros(10000, "uint8")
    np.savez(blank, x_train=zeros, y_train=labels, x_test=zeros, y_test=labels)
    monkeypatch.setenv("VAELIB_MNIST", str(blank))
    with pytest.raises(RuntimeError, match="does not hold MNIST's test images"):
        with grading.FutureFrames(32, 4, 2, 2, seed=0) as clips:
            clips.context()


def test_the_mnist_test_images_hash_is_the_published_files():
    # the published t10k-images-idx3-ubyte: a 16-byte header, then the images
    header = np.array([0x803, 10000, 28, 28], ">u4").tobytes()
    mnist = os.environ.get("VAELIB_MNIST")
    if not mnist or not pathlib.Path(mnist).is_file():
        pytest.skip("no MNIST file here (VAELIB_MNIST)")
    images = np.load(mnist)["x_test"]
    assert hashlib.sha256(images.tobytes()).hexdigest() == (
        grading.MNIST_TEST_IMAGES_SHA256
    )
    published = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    assert hashlib.sha256(header + images.tobytes()).hexdigest() == published
