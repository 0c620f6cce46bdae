"""nbgrader settings of the course's assignments (run nbgrader from this folder).

source/<id>/<id>.ipynb is the instructor's version (solutions, read-only and
hidden tests); `nbgrader generate_assignment <id>` writes release/<id>/<id>.ipynb,
which learners open. `python -m vaelib grade` uses this file too. See
course/INSTRUCTORS.md.
"""

c = get_config()  # noqa: F821 - nbgrader provides it

c.CourseDirectory.course_id = "vae-video"
c.CourseDirectory.assignment_id = ""
# What replaces a solution region in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Seconds per cell when autograding (the training cells of assignments 2 and 4
# take about a minute on a laptop CPU).
c.Execute.timeout = 600
# The course's notebooks run on TensorFlow by default; checks read the hidden
# seed from $VAELIB_GRADING_SEED, which `python -m vaelib grade` sets.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
