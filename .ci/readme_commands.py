"""Prints one of the README's two commands, as a newcomer would copy it.

    python3 .ci/readme_commands.py setup   # the set-up command
    python3 .ci/readme_commands.py tests   # the test command

They are the first two ```bash blocks of the README's "## Set up and run"
section. `.ci/run` runs what this prints, so CI runs exactly what the README
says; `tests/test_packaging.py` checks that the blocks are there.
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(text):
    """`{"setup": ..., "tests": ...}` from the README's set-up section."""
    section = text.split("## Set up and run", 1)
    if len(section) != 2:
        raise SystemExit("README.md has no '## Set up and run' section")
    section = re.split(r"^## ", section[1], flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    if len(blocks) < 2:
        raise SystemExit("README.md's set-up section needs two ```bash blocks")
    return {"setup": blocks[0].strip(), "tests": blocks[1].strip()}


if __name__ == "__main__":
    print(readme_commands(README.read_text())[sys.argv[1]])
