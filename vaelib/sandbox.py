"""Running a submission's code in a bubblewrap sandbox (`python -m vaelib grade`).

`bwrap` (bubblewrap, Debian's package `bubblewrap`, the sandbox Flatpak
uses) starts a command in new Linux namespaces. `bwrap_command` builds the
command line that `vaelib.grading` puts in front of a submission's Jupyter
kernel:

- the file system is a new, mostly read-only view: the operating system
  (`/usr`, `/etc`, ...), the Python environment, the `vaelib` package and
  and the MNIST file when `$VAELIB_MNIST` names one (not the pretrained
  models: a shipped VAE handed in would score as the student's),
  all read-only; the submission's own folder and the kernel's socket folder
  writable; a private, empty `/tmp` (and home folder inside it). Nothing
  else exists: not the course's `source/` notebooks, not the gradebook, not
  the other submissions, not the grader's home;
- a new PID namespace: the submission sees only its own processes, and every
  process it started (a detached daemon too) is killed when the kernel ends;
- a new network namespace with no interface but its own loopback: no
  network (the kernel talks to the grader over Unix sockets in the socket
  folder);
- a cleared environment: only the variables of `PASSED_VARIABLES`;
- no capabilities (`--cap-drop ALL` when the grader runs as root), a new
  session (no terminal to inject keystrokes into).

What it does not do: limit memory or CPU (the grader's per-cell and
per-notebook time limits apply), or hide what the kernel is given on
purpose: the hidden tests run in the kernel and read the grading seed from
`$VAELIB_GRADING_SEED`, so the submission can read it too.

Introduced in: course/INSTRUCTORS.md
"""

import os
import pathlib
import shutil
import subprocess
import sys

SANDBOXES = ("auto", "bwrap", "none")

# The grader's variables that the kernel gets (the others are cleared).
PASSED_VARIABLES = (
    "KERAS_BACKEND",
    "TF_CPP_MIN_LOG_LEVEL",
    "OMP_NUM_THREADS",
    "VAELIB_OFFLINE",
    "VAELIB_MNIST",
    "VAELIB_DIGITS_SOURCE",
    "VAELIB_GRADING_SEED",
    "VAELIB_HAND_IN",
    "VAELIB_FUTURE_FRAMES",
    "VAELIB_ANSWERS",
    "LANG",
    "LC_ALL",
)

_SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
HOME = "/tmp/home"


class SandboxUnavailable(Exception):
    """The sandbox asked for cannot run on this machine."""


def _package_folders():
    import vaelib

    # not data/pretrained: no assignment needs it, and a shipped VAE handed
    # in would pass as a trained one
    return [pathlib.Path(vaelib.__file__).resolve().parent]


def _python_folders():
    folders = {
        pathlib.Path(p).resolve()
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
    }
    folders.add(pathlib.Path(sys.executable).parent.resolve())
    return sorted(f for f in folders if not _under_system(f))


def _under_system(path):
    return any(
        pathlib.Path(path).is_relative_to(folder)
        for folder in _SYSTEM_FOLDERS
        if not os.path.islink(folder)
    )


def readable_paths(environment=None):
    """The folders and files a sandboxed kernel may read (besides the system's)."""
    environment = os.environ if environment is None else environment
    paths = [*_python_folders(), *_package_folders()]
    mnist = environment.get("VAELIB_MNIST")
    if mnist and pathlib.Path(mnist).is_file():
        paths.append(pathlib.Path(mnist).resolve())
    return paths


def bwrap_command(writable, readable=None, environment=None, executable="bwrap"):
    """The `bwrap` arguments that run a command in the sandbox described above.

    Args:
        writable: Folders the sandbox may write (the first one is its working
            folder), bound at the same paths.
        readable: Extra paths bound read-only at the same paths (default:
            `readable_paths()`: the Python environment, `vaelib` and the
            MNIST file).
        environment: Where the passed variables' values come from (default:
            this process's environment).

    Returns:
        A list to put in front of the command: `[*bwrap_command(...), "python", ...]`.
    """
    environment = os.environ if environment is None else environment
    writable = [pathlib.Path(p).resolve() for p in writable]
    if not writable:
        raise ValueError("Expected at least one writable folder (the working folder).")
    readable = readable_paths(environment) if readable is None else readable
    command = [executable, "--die-with-parent", "--new-session", "--unshare-all"]
    if os.geteuid() == 0:
        command += ["--cap-drop", "ALL"]
    for folder in _SYSTEM_FOLDERS:
        if os.path.islink(folder):
            command += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            command += ["--ro-bind", folder, folder]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", HOME]
    for path in readable:
        command += ["--ro-bind", str(path), str(path)]
    for path in writable:
        command += ["--bind", str(path), str(path)]
    python_bin = pathlib.Path(sys.executable).parent
    command += [
        "--clearenv",
        "--setenv", "HOME", HOME,
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "PATH", f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "--setenv", "MPLBACKEND", "Agg",
    ]  # fmt: skip
    for name in PASSED_VARIABLES:
        if name in environment:
            command += ["--setenv", name, environment[name]]
    command += ["--chdir", str(writable[0])]
    return command


def _probe(executable):
    """None if `bwrap` can build a sandbox here, else why not."""
    found = shutil.which(executable)
    if found is None:
        return f"`{executable}` is not installed (Debian: apt-get install bubblewrap)"
    scratch = pathlib.Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        result = subprocess.run(
            [*bwrap_command([scratch], readable=[], executable=found), "/bin/true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`{found}` could not start: {error}"
    if result.returncode != 0:
        return f"`{found}` cannot create namespaces here: {result.stderr.strip()}"
    return None


def choose(sandbox, executable="bwrap"):
    """`(kind, reason)`: the sandbox to use for `sandbox` in `SANDBOXES`.

    `"bwrap"` raises `SandboxUnavailable` when bubblewrap cannot run here;
    `"auto"` falls back to `"none"` and gives the reason; `"none"` is none.
    """
    if sandbox not in SANDBOXES:
        raise ValueError(
            f"Expected sandbox in {SANDBOXES}. Received: sandbox={sandbox!r}"
        )
    if sandbox == "none":
        return "none", "no sandbox was asked for (--sandbox none)"
    reason = _probe(executable)
    if reason is None:
        return "bwrap", None
    if sandbox == "bwrap":
        raise SandboxUnavailable(reason)
    return "none", reason


def describe(kind):
    """What the chosen sandbox isolates and what it does not (for report.json)."""
    if kind == "bwrap":
        return {
            "sandbox": "bwrap",
            "isolated": [
                "files: only the submission's folder (writable), the Python "
                "environment, vaelib (not its pretrained models) and the MNIST file "
                "(read-only), the system's folders (read-only) and a private /tmp",
                "processes: a PID namespace, every process killed when the kernel ends",
                "network: none (Unix sockets to the grader only)",
                "environment: cleared but for " + ", ".join(PASSED_VARIABLES),
                "capabilities dropped; a new session",
            ],
            "not_isolated": [
                "the grading seed ($VAELIB_GRADING_SEED): the hidden tests run in "
                "the kernel and read it",
                "the checks run in the kernel, except the artefacts scored outside "
                "it (vaelib.grading.SCORED_OUTSIDE): code in the submission can "
                "patch them (see course/INSTRUCTORS.md)",
                "memory and CPU: limited by time only",
            ],
        }
    return {
        "sandbox": "none",
        "isolated": [
            "files: the kernel starts in a temporary folder holding only the "
            "submission, but can read and write anything the grader can",
        ],
        "not_isolated": [
            "files: the course's source notebooks (solutions, hidden tests), the "
            "gradebook, other submissions",
            "processes: a daemon started by a submission can outlive its kernel",
            "network",
            "environment: the grader's variables, the grading seed among them",
        ],
    }
