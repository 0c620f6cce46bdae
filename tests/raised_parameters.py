"""Every notebook run with the raised parameters its parameters cell names.

    python tests/raised_parameters.py                 # all notebooks
    python tests/raised_parameters.py 02 07           # some of them
    bash tests/run.sh --raised                        # the same, as a flag

The lessons invite experiments ("raise them on a faster machine"): a larger
latent, more data, more epochs. Each parameters cell names the raised
setting it must survive on a line

    # raised: latent_dim=16, epochs=30

and this script executes the notebook with those values (papermill injects
them after the cell tagged `parameters`), into a temporary folder, so the
stored notebooks are never touched. An assert that pins today's number
instead of what must hold fails here. It takes far longer than the defaults
(most settings double the training), so it is not part of the default test
command; the closing note of a change to a notebook reports its result.
"""

import ast
import json
import pathlib
import re
import sys
import tempfile
import time

COURSE = pathlib.Path(__file__).parents[1] / "course"
RAISED = re.compile(r"^# raised: (.+)$", re.MULTILINE)


def parameters_cell(path):
    """The source of the notebook's cell tagged `parameters`."""
    cells = json.loads(pathlib.Path(path).read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters'")
    return "".join(tagged[0]["source"])


def raised_parameters(path):
    """`{name: value}` from the `# raised:` line of the parameters cell."""
    source = parameters_cell(path)
    match = RAISED.search(source)
    if not match:
        raise ValueError(f"{path}: its parameters cell has no '# raised:' line")
    raised = {}
    for item in match.group(1).split(", "):
        name, value = item.split("=", 1)
        raised[name.strip()] = ast.literal_eval(value.strip())
    defined = set(re.findall(r"^(\w+) =", source, flags=re.MULTILINE))
    unknown = set(raised) - defined
    if unknown:
        raise ValueError(f"{path}: raised parameters not in the cell: {unknown}")
    return raised


def main(selected):
    import papermill

    notebooks = sorted(COURSE.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        notebooks = [p for p in notebooks if p.name[:2] in selected]
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        for path in notebooks:
            raised = raised_parameters(path)
            start = time.monotonic()
            try:
                papermill.execute_notebook(
                    str(path),
                    str(pathlib.Path(folder) / path.name),
                    parameters=raised,
                    cwd=str(COURSE),
                    progress_bar=False,
                )
                result = "passed"
            except papermill.PapermillExecutionError as error:
                failures += 1
                result = f"FAILED in cell {error.exec_count}: {error.evalue[:120]}"
            seconds = time.monotonic() - start
            print(f"{path.name:<36} {raised} {seconds:6.0f} s  {result}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
