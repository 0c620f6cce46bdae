"""Prints one of the README's commands, as a newcomer would copy it.

    python3 .ci/readme_commands.py setup        # the set-up command
    python3 .ci/readme_commands.py tests        # the test command
    python3 .ci/readme_commands.py site         # build the website
    python3 .ci/readme_commands.py site-tests   # its browser test

The first two are the first two ```bash blocks of the README's "## Set up
and run" section, the last two those of "## The course as a website".
`.ci/run` runs what this prints, so CI runs exactly what the README says;
`tests/test_packaging.py` checks that the blocks are there.
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _two_blocks(text, heading):
    section = text.split(f"## {heading}\n", 1)
    if len(section) != 2:
        raise SystemExit(f"README.md has no '## {heading}' section")
    section = re.split(r"^## ", section[1], flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    if len(blocks) < 2:
        raise SystemExit(f"README.md's '{heading}' section needs two ```bash blocks")
    return blocks[0].strip(), blocks[1].strip()


def readme_commands(text):
    """The README's set-up, test, site and site-test commands, by name."""
    setup, tests = _two_blocks(text, "Set up and run")
    site, site_tests = _two_blocks(text, "The course as a website")
    return {"setup": setup, "tests": tests, "site": site, "site-tests": site_tests}


if __name__ == "__main__":
    print(readme_commands(README.read_text())[sys.argv[1]])
