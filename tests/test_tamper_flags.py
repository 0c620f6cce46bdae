"""`vaelib.grading.tamper_flags`: the grader reads what a submission's own code does.

The attacks are issue 28's (each one scored full marks in an adversarial
review before the sandbox); the honest styles are ways a learner may write a
right answer. Flags are for a person to read; they never change a score.
"""

from pathlib import Path

import nbformat
import pytest

from vaelib.grading import format_table, tamper_flags

SOURCES = sorted(
    (Path(__file__).resolve().parents[1] / "course" / "assignments" / "source").glob(
        "*/*.ipynb"
    )
)

ATTACKS = {
    "input transformer": "get_ipython().input_transformers_cleanup.append(lambda l: l)",
    "post_run_cell hook": "ip = get_ipython()\nip.events.register('post_run_cell', f)",
    "reload patched": "import importlib\nimportlib.reload = lambda m: m",
    "a library function replaced": "import scipy.stats\nscipy.stats.kstest = fake",
    "a check replaced": "from vaelib import checks\nchecks.check_sampling = ok",
    "the environment": "import os\nos.environ['VAELIB_MNIST'] = 'blank.npz'",
    "a daemon": "import subprocess\nsubprocess.Popen(['sleep', '100'])",
    "another process": "print(open('/proc/1/cwd/grades.csv').read())",
    "the callers' frames": "import inspect\nframe = inspect.stack()[1]",
    "code from a file": "exec(open('/tmp/solution.py').read())",
    "the kernel ended": "import os\nos._exit(0)",
    "setattr": "import vaelib.grading as g\nsetattr(g, 'FutureFrames', Fake)",
}

HONEST = {
    "module alias": "import vaelib.layers as vl\n\nblock = vl.PerFrame(layer)",
    "TensorFlow ops": (
        "import tensorflow as tf\n\n"
        "def gaussian_kl(m, v):\n"
        "    return -0.5 * tf.reduce_sum(1 + v - m**2 - tf.exp(v), axis=-1)"
    ),
    "a subclassed layer": (
        "class Sampling(keras.layers.Layer):\n"
        "    def __init__(self, seed=None, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.seed_generator = keras.random.SeedGenerator(seed)\n"
    ),
    "a trained model": "model.compile(optimizer='adam')\nhistory = model.fit(x)",
}


def _notebook(tmp_path, sources, locked=False):
    notebook = nbformat.v4.new_notebook()
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade_id": f"answer_{i}", "locked": locked}
        notebook.cells.append(cell)
    path = tmp_path / "submission.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_is_flagged_with_its_cell_and_code(tmp_path, attack):
    flags = tamper_flags(_notebook(tmp_path, ["x = 1", ATTACKS[attack]]))
    assert flags, f"{attack} was not flagged"
    assert all(flag.startswith("answer_1: ") for flag in flags), flags


@pytest.mark.parametrize("style", sorted(HONEST))
def test_honest_answers_are_not_flagged(tmp_path, style):
    assert tamper_flags(_notebook(tmp_path, [HONEST[style]])) == []


def test_locked_cells_are_not_read_they_are_restored_from_the_source(tmp_path):
    path = _notebook(tmp_path, list(ATTACKS.values()), locked=True)
    assert tamper_flags(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_reference_solutions_are_not_flagged(path):
    assert tamper_flags(path) == []


def test_the_summary_table_counts_the_flags():
    rows = [
        {"student_id": "a", "assignment": "01", "score": 10, "max_score": 10,
         "flags": "answer: runs code built at run time (exec(); answer: x (y)"},
        {"student_id": "b", "assignment": "01", "score": 10, "max_score": 10,
         "flags": ""},
    ]  # fmt: skip
    lines = format_table(rows).splitlines()
    assert lines[0].split("|")[-2].strip() == "flags"
    assert [line.split("|")[-2].strip() for line in lines[2:]] == ["2", "0"]
