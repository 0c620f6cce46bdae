"""`python -m vaelib grade`: nbgrader autograding that cheap tricks do not pass.

Four grading runs go at once (module fixture): the reference solutions (the
source notebooks) with the default time limits; every release notebook
untouched and one submission per cheat, in two runs (assignments 1-3, and
assignment 4's predictors); and the endless loop alone, with a 20-second cell
limit. Each test reads the grades and the executed
notebooks those runs leave.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from vaelib import checks
from vaelib.losses import gaussian_kl as library_gaussian_kl

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "course" / "assignments"
A1, A2, A3, A4 = (
    "01_reparameterisation_and_kl",
    "02_train_a_conv_vae",
    "03_fix_a_broken_vae",
    "04_video_predictor",
)
MAX_SCORES = {A1: 10.0, A2: 8.0, A3: 10.0, A4: 10.0}

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the notebooks run on the default backend (TensorFlow); once is enough",
)


def _notebook(kind, assignment):
    return nbformat.read(ASSIGNMENTS / kind / assignment / f"{assignment}.ipynb", 4)


def _cell(notebook, grade_id):
    return next(
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def _submit(folder, student, assignment, notebook):
    path = folder / student / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def _visible_kl_answers():
    """What the visible KL test asks, with the answers, as a student could copy."""
    answers = {}

    def recorder(z_mean, z_log_var):
        value = library_gaussian_kl(z_mean, z_log_var)
        key = tuple(np.round(np.asarray(z_mean, "float64").ravel()[:3], 4).tolist())
        answers[key] = np.asarray(value).round(6).tolist()
        return value

    checks.check_gaussian_kl(recorder)
    return answers


SNEAKY_SAMPLING = """
class Sampling(keras.layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        # Uniform noise of unit variance: the right mean and variance, not Gaussian.
        noise = keras.random.uniform(
            ops.shape(z_mean), -(3**0.5), 3**0.5, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * noise
"""

HARD_CODED_KL = """
KNOWN = {known!r}  # the visible test's inputs and answers, pasted


def gaussian_kl(z_mean, z_log_var):
    key = tuple(np.round(np.asarray(z_mean, "float64").ravel()[:3], 4).tolist())
    return ops.convert_to_tensor(np.asarray(KNOWN.get(key, 0.0), "float32"))
"""

NUMPY_LOSS = """
def vae_loss(x, logits, z_mean, z_log_var):
    x, logits, m, v = (np.asarray(a, "float64") for a in (x, logits, z_mean, z_log_var))
    p = 1 / (1 + np.exp(-logits))
    bce = -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=tuple(range(1, x.ndim)))
    return bce + 0.5 * (np.exp(v) + m**2 - 1 - v).sum(axis=tuple(range(1, m.ndim)))
"""

WRONG_A1 = {
    "sampling": "class Sampling(keras.layers.Layer):\n"
    "    def call(self, inputs):\n"
    "        return inputs[0]",
    "gaussian_kl": "def gaussian_kl(z_mean, z_log_var):\n"
    "    return ops.sum(z_mean, axis=1)",
    "vae_loss": "def vae_loss(x, logits, z_mean, z_log_var):\n"
    "    return ops.mean(ops.square(x - ops.sigmoid(logits)), axis=(1, 2, 3))",
}

REPLACED_CHECKS = """
checks.check_sampling = lambda *args, **kwargs: "passed"
checks.check_gaussian_kl = lambda *args, **kwargs: "passed"
checks.check_vae_loss = lambda *args, **kwargs: "passed"
checks.check_written_by_hand = lambda *args, **kwargs: "passed"
"""

# attacks 1 and 3 of issue 28 on assignment 1, wrong answers: an input
# transformer removes every check line of a test before it runs, the reload
# is patched away, and the patched checks (the kernel's answer to the grader
# included) all say "passed"
HOOKS_AND_PATCHES = """
import importlib

from vaelib import checks


def _drop_the_checks(lines):
    return [line for line in lines if "checks.check_" not in line]


get_ipython().input_transformers_cleanup.append(_drop_the_checks)
importlib.reload = lambda module: module
for _name in ("check_sampling", "check_gaussian_kl", "check_vae_loss",
              "check_written_by_hand", "answer_outside"):
    setattr(checks, _name, lambda *args, **kwargs: "passed")
"""

LIBRARY_A3 = {
    "encoder": """
from vaelib.models import mlp_vae


def build_encoder(latent_dim, input_shape=(28, 28, 1)):
    return mlp_vae(input_shape, latent_dim=latent_dim, hidden=(128,)).encoder
""",
    "sampling": """
from vaelib.layers import Sampling

_sampling = Sampling(seed=0)


def sample(z_mean, z_log_var):
    return _sampling((z_mean, z_log_var))
""",
    "vae_loss": """
from vaelib.losses import bernoulli_nll, gaussian_kl


def vae_loss(x, logits, z_mean, z_log_var):
    return bernoulli_nll(x, logits) + gaussian_kl(z_mean, z_log_var)
""",
}

IGNORES_Z = """
def build_decoder(latent_dim):
    latent = keras.Input((latent_dim,))
    nothing = keras.layers.Lambda(lambda z: 0.0 * z)(latent)  # the picture ignores z
    logits = keras.layers.Dense(28 * 28)(nothing)
    return keras.Model(latent, keras.layers.Reshape((28, 28, 1))(logits))


model = VAE(encoder, build_decoder(LATENT_DIM), seed=0)
model.compile(optimizer=keras.optimizers.Adam(3e-3))
model.fit(train_images[:2000], epochs=1, batch_size=64, verbose=0)
model.elbo = lambda x: ops.zeros((len(x),))  # and a model that claims a perfect ELBO
"""

# a model to hand in, of the assignment's shape, never trained
UNTRAINED_MODEL = """
clip = keras.Input((NUM_FRAMES, SIZE, SIZE, 1))
crop, pad = ((0, NUM_FRAMES - CONTEXT), (0, 0), (0, 0)), keras.layers.ZeroPadding3D
x = keras.layers.Cropping3D(crop)(clip)
x = PerFrame(keras.layers.Conv2D(8, 3, strides=4, padding="same"))(x)
z_mean, z_log_var = GaussianHead(LATENT_DIM, kernel_size=1)(x)
encoder = keras.Model(clip, [pad(crop)(z_mean), pad(crop)(z_log_var)])
latent = keras.Input((NUM_FRAMES, SIZE // 4, SIZE // 4, LATENT_DIM))
upsample = keras.layers.Conv2DTranspose(1, 3, strides=4, padding="same")
model = VAE(encoder, keras.Model(latent, PerFrame(upsample)(latent)))
"""

PREDICTORS = {
    "a4_zeros_cell": """
def predict(context):
    return np.zeros((len(context), NUM_FRAMES - CONTEXT, SIZE, SIZE, 1), "float32")
""",
    "a4_half_last_frame": """
def predict(context):
    return 0.5 * np.repeat(context[:, -1:], NUM_FRAMES - CONTEXT, axis=1)
""",
    "a4_regenerated_clips": """
def predict(context):
    # Remake the checker's clips from every seed it could use.
    seeds = [checks.SEED, int(os.environ.get("VAELIB_GRADING_SEED", 0))]
    for seed in seeds:
        clips = MovingDigits.scaled(
            SIZE, num_frames=NUM_FRAMES, split="test", seed=seed
        ).clips(len(context))
        if np.allclose(clips[:, :CONTEXT], context, atol=1e-2):
            return clips[:, CONTEXT:]
    return np.zeros((len(context), NUM_FRAMES - CONTEXT, SIZE, SIZE, 1), "float32")
""",
    # attack 4 of issue 28: no trained model, the last frame blurred more at
    # each step (scored 10 of 10 against blank, mean and copy-last baselines)
    "a4_blurs_the_last_frame": UNTRAINED_MODEL
    + """
from scipy.ndimage import gaussian_filter


def predict(context):
    # blurred and dimmed a little more each step: 0.75-0.77 of the best
    # baseline on six sets of clips, under the 0.85 pass mark
    last = context[:, -1]
    steps = range(1, NUM_FRAMES - CONTEXT + 1)
    return np.stack(
        [0.9**k * gaussian_filter(last, sigma=(0, 0.8 * k, 0.8 * k, 0)) for k in steps],
        axis=1,
    )
""",
    # attack 4 of issue 28: blank digits for the clip helper, so that zeros
    # "beat" the baselines (0 <= 0.85 x 0)
    "a4_blank_mnist_for_the_helper": UNTRAINED_MODEL
    + """
blank = np.zeros((10000, 28, 28), "uint8")
np.savez("mnist.npz", x_train=blank, y_train=blank[:, 0, 0], x_test=blank,
         y_test=blank[:, 0, 0])
os.environ["VAELIB_MNIST"] = os.path.abspath("mnist.npz")


def predict(context):
    return np.zeros((len(context), NUM_FRAMES - CONTEXT, SIZE, SIZE, 1), "float32")
""",
    "a4_stack_peeking": """
import inspect


def predict(context):
    # Look for the true future in the callers' frames.
    future = (len(context), NUM_FRAMES - CONTEXT, SIZE, SIZE, 1)
    for frame in inspect.stack():
        for value in list(frame.frame.f_locals.values()):
            if isinstance(value, np.ndarray) and value.shape == future:
                return value
            clips = (len(context), NUM_FRAMES)
            if isinstance(value, np.ndarray) and value.shape[:2] == clips:
                return value[:, CONTEXT:]
    return np.zeros(future, "float32")
""",
}


COPIES_THE_SOLUTIONS = """
import json

import vaelib.grading

_course = vaelib.grading.COURSE_DIRECTORY  # the grader's, solutions inside
_source = _course / "source" / "{a}" / "{a}.ipynb"
for _cell in json.loads(_source.read_text())["cells"]:
    if _cell["metadata"].get("nbgrader", {{}}).get("solution"):
        exec("".join(_cell["source"]), globals())
"""


# attack 2 of issue 28: a package shipped beside the notebook, found first on
# the kernel's sys.path, extends itself with the installed vaelib and answers
# every check with "passed"
SHADOW_PACKAGE = {
    "vaelib/__init__.py": """
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
for _entry in sys.path:
    _candidate = os.path.abspath(os.path.join(_entry or ".", "vaelib"))
    if _candidate != _here and os.path.isdir(_candidate):
        __path__.append(_candidate)
""",
    "vaelib/checks.py": """
def __getattr__(name):
    return lambda *args, **kwargs: "passed"
""",
}


# attack 5 of issue 28: no training, a lookup table of the test digits built
# from Keras layers (so that it saves and loads as a .keras file): the encoder
# finds the nearest test image and gives its code, the decoder returns that
# image's pixels. Its negative ELBO on the test digits is far under the target.
LOOKUP_VAE = """
from vaelib.data import load_digits_images


def lookup_vae(images, latent_dim, sharpness=20.0):
    flat = images.reshape(len(images), -1).astype("float32")
    codes = np.random.default_rng(0).normal(0, 0.5, (len(images), latent_dim))
    codes = codes.astype("float32")
    pixels = keras.Input(images.shape[1:])
    near = keras.layers.Dense(len(images))
    weights = keras.layers.Softmax()(near(keras.layers.Flatten()(pixels)))
    mean, log_var = keras.layers.Dense(latent_dim), keras.layers.Dense(latent_dim)
    encoder = keras.Model(pixels, [mean(weights), log_var(weights)])
    near.set_weights([2 * sharpness * flat.T, -sharpness * (flat**2).sum(1)])
    mean.set_weights([codes, np.zeros(latent_dim, "float32")])
    log_var.set_weights([np.zeros_like(codes), np.full(latent_dim, -8.0, "float32")])

    z = keras.Input((latent_dim,))
    code_near = keras.layers.Dense(len(images))
    chosen = keras.layers.Softmax()(code_near(z))
    image = keras.layers.Dense(flat.shape[1], use_bias=False)
    logits = keras.layers.Reshape(images.shape[1:])(image(chosen))
    decoder = keras.Model(z, logits)
    code_near.set_weights([2 * sharpness * codes.T, -sharpness * (codes**2).sum(1)])
    p = np.clip(flat, 1e-3, 1 - 1e-3)
    image.set_weights([np.log(p / (1 - p))])
    return VAE(encoder, decoder)


model = lookup_vae(load_digits_images("test").images, LATENT_DIM)
"""


def _submit_pasted(folder, student, stop):
    pasted = _notebook("source", A1)  # stored executed: its outputs are there
    for grade_id, source in WRONG_A1.items():
        _cell(pasted, grade_id).source = source
    _cell(pasted, "sampling").source = stop + _cell(pasted, "sampling").source
    _submit(folder, student, A1, pasted)


def _loop(folder):
    stop = "import time\n\nwhile True:\n    time.sleep(1)\n"
    _submit_pasted(folder, "a1_pasted_outputs_then_loop", stop)


def _cheats(folder):
    sneaky = _notebook("source", A1)
    _cell(sneaky, "sampling").source = SNEAKY_SAMPLING.strip()
    known = _visible_kl_answers()
    _cell(sneaky, "gaussian_kl").source = HARD_CODED_KL.format(known=known).strip()
    _cell(sneaky, "vae_loss").source = NUMPY_LOSS.strip()
    _submit(folder, "a1_uniform_hardcoded_numpy", A1, sneaky)

    tampered = _notebook("release", A1)
    _cell(tampered, "setup").source += "\n" + REPLACED_CHECKS
    for grade_id, source in WRONG_A1.items():
        _cell(tampered, grade_id).source = source
    tampered.cells.remove(_cell(tampered, "test_sampling"))
    _cell(tampered, "test_gaussian_kl").source = 'print("passed")'
    tagged = _cell(tampered, "test_vae_loss")
    tagged.metadata["tags"] = ["skip-execution", "raises-exception"]
    tagged.metadata["nbgrader"]["points"] = 100
    _submit(folder, "a1_tests_deleted_edited_tagged", A1, tampered)

    _submit_pasted(folder, "a1_pasted_outputs_then_exit", "import os\n\nos._exit(0)\n")

    hooked = _notebook("release", A1)
    for grade_id, source in WRONG_A1.items():
        _cell(hooked, grade_id).source = source
    _cell(hooked, "sampling").source += "\n\n" + HOOKS_AND_PATCHES.strip()
    _submit(folder, "a1_hooks_and_patched_checks", A1, hooked)

    # attack 6 of issue 28: every answer cell runs the reference solutions,
    # read from the grader's course folder (full marks without a sandbox)
    copies = _notebook("release", A1)
    for grade_id in WRONG_A1:
        _cell(copies, grade_id).source = COPIES_THE_SOLUTIONS.format(a=A1).strip()
    _submit(folder, "a1_copies_the_solutions", A1, copies)

    shadowed = _notebook("release", A1)
    for grade_id, source in WRONG_A1.items():
        _cell(shadowed, grade_id).source = source
    _submit(folder, "a1_ships_a_vaelib_package", A1, shadowed)
    for name, text in SHADOW_PACKAGE.items():
        (folder / "a1_ships_a_vaelib_package" / A1 / name).parent.mkdir(exist_ok=True)
        (folder / "a1_ships_a_vaelib_package" / A1 / name).write_text(text.lstrip())

    lookup = _notebook("source", A2)
    _cell(lookup, "decoder_and_training").source = LOOKUP_VAE.strip()
    _submit(folder, "a2_lookup_table_of_the_test_digits", A2, lookup)

    library = _notebook("release", A3)
    for grade_id, source in LIBRARY_A3.items():
        _cell(library, grade_id).source = source.strip()
    _submit(folder, "a3_imports_vaelib", A3, library)

    ignores = _notebook("source", A2)
    _cell(ignores, "decoder_and_training").source = IGNORES_Z.strip()
    _submit(folder, "a2_decoder_ignores_z", A2, ignores)

    for assignment in (A1, A2, A3):
        _submit(folder, "untouched", assignment, _notebook("release", assignment))


def _predictors(folder):
    for student, source in PREDICTORS.items():
        notebook = _notebook("release", A4)
        position = notebook.cells.index(_cell(notebook, "train_and_predict"))
        notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(source.strip()))
        _submit(folder, student, A4, notebook)
    _submit(folder, "untouched", A4, _notebook("release", A4))


def _references(folder):
    for assignment in (A1, A2, A3, A4):
        _submit(folder, "reference", assignment, _notebook("source", assignment))


def _environment():
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    # tests/conftest.py picks scikit-learn's digits for speed; the notebooks'
    # targets are calibrated on MNIST, which run.sh provides when it can.
    if os.environ.get("VAELIB_MNIST"):
        environment.pop("VAELIB_DIGITS_SOURCE", None)
    return environment


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    limits = ["--timeout", "300", "--notebook-timeout", "900"]
    runs = {
        "references": (_references, []),
        "cheats": (_cheats, limits),
        "predictors": (_predictors, limits),
        "loop": (_loop, ["--timeout", "20", "--notebook-timeout", "60"]),
    }
    processes = {}
    for name, (make, limits) in runs.items():
        make(root / name)
        environment = _environment()
        if name == "references":
            # the interpreter by its full path, its environment not activated:
            # nbgrader's `alembic` must still be found (issue 28)
            environment["PATH"] = os.defpath
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "vaelib", "grade", str(root / name),
             "--out", str(root / f"{name}.csv"), "--seed", "12345", *limits],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=environment,
        )  # fmt: skip
    results = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=1800)
        assert process.returncode == 0, output[-3000:]
        with (root / f"{name}.csv").open(newline="") as file:
            rows = list(csv.DictReader(file))
        workdir = root / f"{name}_grading"
        report = json.loads((workdir / "report.json").read_text())
        results[name] = {"rows": rows, "workdir": workdir, "report": report}
    return results


def _run(graded, student, assignment):
    for run in graded.values():
        for row in run["rows"]:
            if row["student_id"] == student and row["assignment"] == assignment:
                return run, row
    raise KeyError(f"{student}/{assignment} was not graded")


def _score(graded, student, assignment):
    _, row = _run(graded, student, assignment)
    return float(row["score"]), float(row["max_score"])


def _outputs(graded, student, assignment, grade_id):
    run, _ = _run(graded, student, assignment)
    path = run["workdir"] / "autograded" / student / assignment / f"{assignment}.ipynb"
    cell = _cell(nbformat.read(path, 4), grade_id)
    return "\n".join(
        output.get("text", "") + output.get("ename", "") + output.get("evalue", "")
        for output in cell.outputs
    )


@pytest.mark.parametrize("assignment", [A1, A2, A3, A4])
def test_each_source_notebook_scores_full_marks(graded, assignment):
    assert _score(graded, "reference", assignment) == (
        MAX_SCORES[assignment],
        MAX_SCORES[assignment],
    )


@pytest.mark.parametrize("assignment", [A1, A2, A3, A4])
def test_each_untouched_release_notebook_scores_zero_of_the_full_max(
    graded, assignment
):
    assert _score(graded, "untouched", assignment) == (
        0.0,
        MAX_SCORES[assignment],
    )


def test_grades_csv_has_one_row_per_submission_and_nbgrader_columns(graded):
    rows = graded["cheats"]["rows"]
    assert {"student_id", "assignment", "score", "max_score"} <= set(rows[0])
    pairs = [(row["student_id"], row["assignment"]) for row in rows]
    assert len(pairs) == len(set(pairs)) == 12
    report = graded["cheats"]["report"]
    assert report["seed"] == 12345
    assert report["timeout_per_cell_s"] == 300


def test_feedback_html_and_executed_notebooks_are_kept(graded):
    workdir = graded["references"]["workdir"]
    for assignment in (A1, A2, A3, A4):
        html = workdir / "feedback" / "reference" / assignment / f"{assignment}.html"
        assert html.is_file()
        executed = workdir / "autograded" / "reference" / assignment
        assert (executed / f"{assignment}.ipynb").is_file()


def test_wrong_ideas_that_pass_values_fail_on_distribution_and_gradients(graded):
    student = "a1_uniform_hardcoded_numpy"
    assert _score(graded, student, A1) == (0.0, 10.0)
    assert "not Gaussian" in _outputs(graded, student, A1, "test_sampling")
    assert "No gradient reaches" in _outputs(graded, student, A1, "test_gaussian_kl")
    assert "No gradient reaches" in _outputs(graded, student, A1, "test_vae_loss")


def test_deleted_edited_tagged_tests_and_replaced_checks_do_not_help(graded):
    student = "a1_tests_deleted_edited_tagged"
    assert _score(graded, student, A1) == (0.0, 10.0)


def test_hooks_and_patched_checks_pass_in_the_kernel_and_score_nothing(graded):
    student = "a1_hooks_and_patched_checks"
    # in the kernel every test printed "passed"...
    for grade_id in ("test_gaussian_kl", "test_vae_loss"):
        assert "Error" not in _outputs(graded, student, A1, grade_id)
    # ...but the functions were never checked by the grader's own process
    assert _score(graded, student, A1) == (0.0, 10.0)
    outside = graded["cheats"]["report"]["scored_outside"][f"{student}/{A1}"]
    assert not any(result["passed"] for result in outside.values())
    assert "never checked" in " ".join(outside["test_gaussian_kl"]["messages"])
    assert graded["cheats"]["report"]["flags"][f"{student}/{A1}"]


def test_the_reference_functions_pass_outside_the_kernel(graded):
    for assignment in (A1, A3):
        key = f"reference/{assignment}"
        outside = graded["references"]["report"]["scored_outside"][key]
        assert set(outside) == {"test_sampling", "test_vae_loss"} | (
            {"test_gaussian_kl"} if assignment == A1 else {"test_encoder"}
        )
        for result in outside.values():
            assert result["passed"], result
            assert "outside the notebook" in result["messages"][0]


def test_the_sandbox_hides_the_course_solutions_from_a_submission(graded):
    run, _ = _run(graded, "a1_copies_the_solutions", A1)
    isolation = run["report"]["isolation"]
    if isolation["sandbox"] != "bwrap":
        pytest.skip(f"graded without a sandbox: {isolation['why_no_sandbox']}")
    assert _score(graded, "a1_copies_the_solutions", A1)[0] == 0
    assert "FileNotFoundError" in _outputs(
        graded, "a1_copies_the_solutions", A1, "sampling"
    )
    # the honest reference solutions score full marks in the same sandbox
    assert graded["references"]["report"]["isolation"]["sandbox"] == "bwrap"


def test_suspicious_code_is_flagged_in_the_report_and_the_csv(graded):
    flags = graded["cheats"]["report"]["flags"]
    copies = flags[f"a1_copies_the_solutions/{A1}"]
    assert any("runs code built at run time" in flag for flag in copies), copies
    assert flags[f"untouched/{A1}"] == []
    assert not any(graded["references"]["report"]["flags"].values())
    _, row = _run(graded, "a1_copies_the_solutions", A1)
    assert "run time" in row["flags"]


def test_a_vaelib_package_beside_the_notebook_is_left_out_and_flagged(graded):
    student = "a1_ships_a_vaelib_package"
    assert _score(graded, student, A1) == (0.0, 10.0)
    flags = graded["cheats"]["report"]["flags"][f"{student}/{A1}"]
    assert "files: left out vaelib/ (not a declared data file)" in flags
    run, _ = _run(graded, student, A1)
    assert not (run["workdir"] / "submitted" / student / A1 / "vaelib").exists()


def test_a_lookup_table_of_the_test_digits_passes_in_the_kernel_not_outside(graded):
    student = "a2_lookup_table_of_the_test_digits"
    # the kernel's own check is fooled (the table is the test set)...
    assert "held-out negative ELBO" in _outputs(graded, student, A2, "test_trained_vae")
    # ...the trusted process is not: it fails on the training digits
    assert _score(graded, student, A2) == (2.0, 8.0)
    result = graded["cheats"]["report"]["scored_outside"][f"{student}/{A2}"]
    assert result["test_trained_vae"]["passed"] is False
    assert result["test_trained_vae"]["points"] == 0
    assert any("train images" in m for m in result["test_trained_vae"]["messages"])
    reference = graded["references"]["report"]["scored_outside"][f"reference/{A2}"]
    assert reference["test_trained_vae"] | {"messages": []} == {
        "passed": True,
        "messages": [],
        "points": 6.0,
    }


def test_pasted_outputs_then_a_dead_kernel_score_nothing(graded):
    student = "a1_pasted_outputs_then_exit"
    assert _score(graded, student, A1) == (0.0, 10.0)
    for grade_id in ("test_sampling", "test_gaussian_kl", "test_vae_loss"):
        assert "never ran" in _outputs(graded, student, A1, grade_id)


def test_pasted_outputs_then_an_endless_loop_score_nothing(graded):
    student = "a1_pasted_outputs_then_loop"
    assert _score(graded, student, A1) == (0.0, 10.0)
    # A time limit stopped it: the loop's cell times out, or on a busy machine
    # an earlier cell, the notebook's own limit or the kernel's start does.
    run, _ = _run(graded, student, A1)
    path = run["workdir"] / "autograded" / student / A1 / f"{A1}.ipynb"
    text = "\n".join(
        output.get("text", "") + output.get("ename", "") + output.get("evalue", "")
        for cell in nbformat.read(path, 4).cells
        for output in cell.get("outputs", [])
    )
    stops = ("CellTimeoutError", "ran out of time", "Timeout")
    assert any(stop in text for stop in stops), text[-3000:]


def test_importing_the_answer_from_vaelib_is_detected_where_not_allowed(graded):
    student = "a3_imports_vaelib"
    assert _score(graded, student, A3) == (0.0, 10.0)
    for grade_id in ("test_encoder", "test_sampling", "test_vae_loss"):
        assert "write" in _outputs(graded, student, A3, grade_id)


def test_a_decoder_that_ignores_z_fails_whatever_the_model_claims(graded):
    student = "a2_decoder_ignores_z"
    assert _score(graded, student, A2) == (2.0, 8.0)
    assert "ignores its latent code" in _outputs(
        graded, student, A2, "test_trained_vae"
    )


def test_a_blur_passes_the_kernel_s_check_and_fails_outside(graded):
    student = "a4_blurs_the_last_frame"
    # the kernel's check and the grader's clip server both pass the blur...
    assert "predictor: MSE per frame" in _outputs(graded, student, A4, "test_predictor")
    result = graded["predictors"]["report"]["scored_outside"][f"{student}/{A4}"]
    server, handed_in = result["test_predictor"]["messages"][:2]
    assert server.endswith("passed"), server
    # ...the model it hands in is run outside the kernel, and fails: it has
    # per-frame layers only (an untrained model that has a ConvLSTM fails on
    # its MSE instead: tests/test_scored_outside.py)
    assert "decoder has no ConvLSTM layer" in handed_in, handed_in
    assert result["test_predictor"]["points"] == 0
    assert _score(graded, student, A4) == (0.0, 10.0)


def test_the_clip_server_ignores_the_kernel_s_mnist_file(graded):
    student = "a4_blank_mnist_for_the_helper"
    run, _ = _run(graded, student, A4)
    folder = run["workdir"] / "autograded" / student / A4 / "handed_in"
    records = (folder / "future_frames.jsonl").read_text().splitlines()
    # the visible test's exchange: real clips (the blank file did not reach
    # the server), so the zeros fail, and the hidden test after it never ran
    (record,) = [json.loads(line) for line in records]
    assert record["scores"]["blank"] > 0 and record["passed"] is False
    assert _score(graded, student, A4) == (0.0, 10.0)


@pytest.mark.parametrize("student", sorted(PREDICTORS))
def test_cheap_and_peeking_predictors_score_less_than_the_reference(graded, student):
    score, max_score = _score(graded, student, A4)
    assert (score, max_score) == (0.0, 10.0)
    assert _score(graded, "reference", A4)[0] > score
    assert "MSE per frame" in _outputs(graded, student, A4, "test_predictor")


def test_grade_exits_2_with_one_line_when_it_cannot_run(tmp_path, capsys):
    from vaelib.cli import main

    assert main(["grade", str(tmp_path / "missing"), "--out", "x.csv"]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    nbformat.write(_notebook("release", A1), tmp_path / "flat" / "ada.ipynb")
    assert main(["grade", str(tmp_path / "flat"), "--out", "x.csv"]) == 2
    assert "<student_id>/<assignment_id>/<assignment_id>.ipynb" in (
        capsys.readouterr().err
    )
    _submit(tmp_path / "unknown", "ada", "99_nothing", _notebook("release", A1))
    assert main(["grade", str(tmp_path / "unknown"), "--out", "x.csv"]) == 2
    assert "no source for assignment(s) 99_nothing" in capsys.readouterr().err


def test_scoring_outside_refuses_a_missing_a_linked_or_a_code_carrying_model(tmp_path):
    from vaelib.grading import score_outside

    missing = score_outside("image-vae", tmp_path / "trained_vae.keras", seed=1)
    assert missing["passed"] is False
    assert "nothing was handed in" in missing["messages"][0]

    inputs = keras.Input((28, 28, 1))
    # a Lambda layer carries the notebook's code: Keras' safe mode refuses it
    outputs = keras.layers.Lambda(lambda x: [x, x])(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    (tmp_path / "linked.keras").symlink_to(tmp_path / "lambda.keras")
    linked = score_outside("image-vae", tmp_path / "linked.keras", seed=1)
    assert linked["messages"] == [
        "nothing was handed in (linked.keras): the hidden test's checks.hand_in "
        "did not run"
    ]
    refused = score_outside("image-vae", tmp_path / "lambda.keras", seed=1)
    assert refused["passed"] is False
    message = refused["messages"][0]
    assert "cannot be loaded without running the notebook's code" in message
    assert "Lambda" in message


def test_hand_in_saves_only_when_the_grader_asks(tmp_path, monkeypatch):
    from vaelib.grading import HAND_IN_VARIABLE

    monkeypatch.chdir(tmp_path)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    monkeypatch.delenv(HAND_IN_VARIABLE, raising=False)
    assert "not handed in" in checks.hand_in(model, "trained_vae")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(HAND_IN_VARIABLE, "handed_in")
    assert "handed in" in checks.hand_in(model, "trained_vae")
    loaded = keras.saving.load_model(tmp_path / "handed_in" / "trained_vae.keras")
    x = np.ones((3, 2), "float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    with pytest.raises(AssertionError, match="Expected a Keras model"):
        checks.hand_in(lambda x: x, "trained_vae")


def test_only_the_notebooks_and_declared_files_of_a_submission_are_copied(tmp_path):
    from vaelib.grading import copy_submission

    secret = tmp_path / "solutions.ipynb"
    secret.write_text("the reference solution")
    submission = tmp_path / "submitted" / "alice" / "a1"
    (submission / "data").mkdir(parents=True)
    (submission / "a1.ipynb").write_text("{}")
    (submission / "data" / "clips.npz").write_bytes(b"\x00")
    (submission / "data" / "other.npz").write_bytes(b"\x00")
    (submission / "peek.ipynb").symlink_to(secret)
    (submission / "data" / "everything").symlink_to(tmp_path, target_is_directory=True)
    # attack 2 of issue 28: a package beside the notebook shadows vaelib's checks
    (submission / "vaelib").mkdir()
    (submission / "vaelib" / "checks.py").write_text("def check_sampling(*a): ...")
    (submission / "helper.py").write_text("")
    os.mkfifo(submission / "pipe.ipynb")
    left_out = copy_submission(
        submission, tmp_path / "copy", declared=["data/clips.npz"]
    )
    assert left_out == [
        "data/everything (a symbolic link)",
        "data/other.npz (not a notebook or a declared data file)",
        "helper.py (not a notebook or a declared data file)",
        "peek.ipynb (a symbolic link)",
        "pipe.ipynb (not a regular file)",
        "vaelib/ (not a declared data file)",
    ]
    copied = sorted(
        str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*")
    )
    assert copied == ["a1.ipynb", "data", "data/clips.npz"]
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))
    assert copy_submission(submission, tmp_path / "bare") == [
        "data/ (not a declared data file)",
        *left_out[2:],
    ]
