#!/usr/bin/env bash
# The project's test command (README, "Run the tests"). Unit tests on the
# TensorFlow backend, again on JAX, then every notebook under course/ with nbval.
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

for backend in tensorflow jax; do
  echo "== unit tests, KERAS_BACKEND=$backend"
  # JAX runs most of these tests' small ops one by one from Python, on one
  # core: two pytest-xdist workers use both (7 minutes instead of 10 on two
  # cores). TensorFlow already spreads each op over the cores; workers there
  # only compete (6 minutes instead of 5).
  # The command line's trainings and the shipped models' re-measurements
  # (marked one_backend) run on TensorFlow only: the library code under them
  # is tested on both backends, and on JAX they took half of its 16 minutes.
  workers=() only=()
  if [ "$backend" = jax ]; then
    workers=(-n "${JAX_TEST_WORKERS:-2}") only=(-m "not one_backend")
  fi
  KERAS_BACKEND=$backend "$python" -m pytest -q -p no:cacheprovider "${workers[@]}" "${only[@]}" tests "$@"
  KERAS_BACKEND=$backend "$python" -m pytest -q -p no:cacheprovider --doctest-modules vaelib
done

# The course and the assignments' source notebooks (reference solutions and
# hidden tests), as an instructor checks them: course/conftest.py skips the
# release notebooks, which tests/test_grading.py grades instead.
echo "== notebooks (nbval, lax), KERAS_BACKEND=tensorflow"
KERAS_BACKEND=tensorflow "$python" -m pytest -q -p no:cacheprovider --nbval-lax course/
