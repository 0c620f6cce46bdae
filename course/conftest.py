"""pytest --nbval-lax course/: every notebook of the course, and the assignments'
source notebooks (the reference solutions, hidden tests included).

The release notebooks are what learners open: their solution cells raise
NotImplementedError until answered, so nbval skips them (the grading tests in
tests/test_grading.py check that each one, untouched, scores 0). nbgrader's
working folders, when an instructor grades inside course/assignments/, are
skipped too.
"""

collect_ignore_glob = [
    "assignments/release/*",
    "assignments/submitted/*",
    "assignments/autograded/*",
    "assignments/feedback/*",
    "assignments/downloaded/*",
    "**/.ipynb_checkpoints/*",
]
