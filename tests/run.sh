#!/usr/bin/env bash
# The project's test command (README, "Run the tests"). Unit tests on the
# TensorFlow backend (and the docstrings' examples, on TensorFlow only: they
# are backend-neutral), the backend-dependent ones again on JAX, then every
# lesson notebook with nbval.
set -euo pipefail
cd "$(dirname "$0")/.."
export VAELIB_OFFLINE="${VAELIB_OFFLINE:-1}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
# Real MNIST for tests and notebooks when the shared copy is there (see
# data/README.md); without it the loader falls back to scikit-learn's digits.
if [ -z "${VAELIB_MNIST:-}" ] && [ -f ../shared/data/mnist.npz ]; then
  export VAELIB_MNIST="$(cd ../shared/data && pwd)/mnist.npz"
fi
python=${PYTHON:-python}

# bash tests/run.sh --raised [NN ...]: every notebook (or notebooks NN) with the
# raised parameters its parameters cell names, instead of the default tests.
if [ "${1:-}" = "--raised" ]; then
  shift
  KERAS_BACKEND=tensorflow exec "$python" tests/raised_parameters.py "$@"
fi

# Two pytest-xdist workers, a test file each at a time (--dist loadfile: a
# module's fixture, such as the grading runs, is built once).
echo "== unit tests, KERAS_BACKEND=tensorflow (at ${SECONDS} s)"
KERAS_BACKEND=tensorflow "$python" -m pytest -q -p no:cacheprovider \
  -n "${TEST_WORKERS:-2}" --dist loadfile tests "$@"
KERAS_BACKEND=tensorflow "$python" -m pytest -q -p no:cacheprovider --doctest-modules vaelib

# Again on JAX, the tests marked every_backend: the layers, losses, models'
# losses, causality, saving and a brief fit, whose numbers go through the
# backend. The rest (data, metrics in NumPy, the command line, grading, the
# shipped models' re-measurements, notebooks) do not depend on it; run on
# JAX they doubled CI's time. JAX runs these small ops one by one from
# Python on one core: two pytest-xdist workers use both.
echo "== unit tests marked every_backend, KERAS_BACKEND=jax (at ${SECONDS} s)"
KERAS_BACKEND=jax "$python" -m pytest -q -p no:cacheprovider \
  -n "${JAX_TEST_WORKERS:-2}" -m every_backend tests "$@"

# The course's notebooks, as an instructor checks them. The assignments'
# notebooks are not run here: tests/test_grading.py (above) grades each source
# notebook, reference solutions and hidden tests, and requires full marks;
# each release notebook, untouched, must score 0. An instructor checks one
# with `pytest --nbval-lax course/assignments/source/NN_.../NN_....ipynb`.
# Two notebooks at a time (--dist loadfile keeps each notebook's cells in
# order on one worker).
echo "== notebooks (nbval, lax), KERAS_BACKEND=tensorflow (at ${SECONDS} s)"
KERAS_BACKEND=tensorflow "$python" -m pytest -q -p no:cacheprovider --nbval-lax \
  -n "${TEST_WORKERS:-2}" --dist loadfile --ignore=course/assignments course/
