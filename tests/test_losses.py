import math

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from vaelib.losses import bernoulli_nll, gaussian_kl, gaussian_nll

pytestmark = pytest.mark.every_backend  # see tests/run.sh


def test_gaussian_kl_is_zero_at_the_prior():
    kl = to_numpy(gaussian_kl(np.zeros((3, 5), "float32"), np.zeros((3, 5), "float32")))
    np.testing.assert_array_equal(kl, np.zeros(3))


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = np.array([[0.5, -1.5, 2.0]], "float32")
    log_var = np.array([[-1.0, 0.7, 0.0]], "float32")
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((400_000, 3))
    log_q = stats.norm.logpdf(z, mean, std).sum(axis=1)
    log_p = stats.norm.logpdf(z).sum(axis=1)
    samples = log_q - log_p
    estimate, standard_error = samples.mean(), samples.std() / math.sqrt(len(samples))
    analytic = to_numpy(gaussian_kl(mean, log_var))[0]
    assert abs(estimate - analytic) < 4 * standard_error
    assert standard_error < 0.01


def test_gaussian_kl_sums_over_every_non_batch_axis():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(2, 4, 3, 3, 8)).astype("float32")
    log_var = rng.normal(size=(2, 4, 3, 3, 8)).astype("float32")
    per_example = to_numpy(gaussian_kl(mean, log_var))
    per_unit = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var)
    assert per_example.shape == (2,)
    np.testing.assert_allclose(per_example, per_unit.sum(axis=(1, 2, 3, 4)), rtol=1e-5)
    doubled = to_numpy(
        gaussian_kl(
            np.concatenate([mean, mean], 1), np.concatenate([log_var, log_var], 1)
        )
    )
    np.testing.assert_allclose(doubled, 2 * per_example, rtol=1e-5)


@settings(max_examples=200, deadline=None)
@given(
    mean=hnp.arrays(
        np.float32,
        (3, 4),
        elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False),
    ),
    log_var=hnp.arrays(
        np.float32, (3, 4), elements=st.floats(-80, 80, width=32, allow_subnormal=False)
    ),
)
def test_gaussian_kl_is_finite_and_never_negative(mean, log_var):
    kl = to_numpy(gaussian_kl(mean, log_var))
    assert np.all(np.isfinite(kl)), (mean, log_var, kl)
    assert np.all(kl >= 0), (mean, log_var, kl)


def test_gaussian_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32"))


def test_bernoulli_nll_matches_the_textbook_formula():
    rng = np.random.default_rng(2)
    x = rng.random((4, 6, 6, 1)).astype("float32")
    logits = rng.normal(scale=3, size=(4, 6, 6, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    expected = -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(to_numpy(bernoulli_nll(x, logits)), expected, rtol=1e-5)


def test_bernoulli_nll_is_stable_for_huge_logits():
    x = np.array([[0.0, 1.0, 0.0, 1.0]], "float32")
    logits = np.array([[-1e4, 1e4, 1e4, -1e4]], "float32")
    nll = to_numpy(bernoulli_nll(x, logits))
    np.testing.assert_allclose(nll, [2e4], rtol=1e-6)


def test_bernoulli_nll_of_a_coin_flip_is_log_two_per_pixel():
    nll = to_numpy(
        bernoulli_nll(np.ones((2, 28, 28, 1), "float32"), np.zeros((2, 28, 28, 1)))
    )
    # a float32 sum of 784 terms: its rounding depends on the order the
    # backend sums in (XLA on JAX was 1.4e-6 off in CI), so 1e-5, not 1e-6
    np.testing.assert_allclose(nll, [784 * math.log(2)] * 2, rtol=1e-5)


def test_bernoulli_nll_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 784\)"):
        bernoulli_nll(
            np.zeros((2, 784), "float32"), np.zeros((2, 28, 28, 1), "float32")
        )


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    mean = rng.normal(size=(3, 5, 2)).astype("float32")
    log_var = rng.normal(size=(3, 5, 2)).astype("float32")
    expected = -stats.norm.logpdf(x, mean, np.exp(0.5 * log_var)).sum(axis=(1, 2))
    np.testing.assert_allclose(
        to_numpy(gaussian_nll(x, mean, log_var)), expected, rtol=1e-5
    )


def test_gaussian_nll_broadcasts_a_scalar_log_variance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 7)).astype("float32")
    mean = rng.normal(size=(3, 7)).astype("float32")
    expected = -stats.norm.logpdf(x, mean, math.exp(0.5 * -1.2)).sum(axis=1)
    np.testing.assert_allclose(
        to_numpy(gaussian_nll(x, mean, -1.2)), expected, rtol=1e-5
    )


def test_two_gaussian_kl_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(1)
    mean = np.array([[0.5, -1.5, 2.0]], "float32")
    log_var = np.array([[-1.0, 0.7, 0.0]], "float32")
    prior_mean = np.array([[1.0, 0.5, -0.5]], "float32")
    prior_log_var = np.array([[0.3, -0.8, 1.2]], "float32")
    std, prior_std = np.exp(0.5 * log_var), np.exp(0.5 * prior_log_var)
    z = mean + std * rng.standard_normal((400_000, 3))
    samples = (
        stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z, prior_mean, prior_std)
    ).sum(axis=1)
    estimate, standard_error = samples.mean(), samples.std() / math.sqrt(len(samples))
    analytic = to_numpy(gaussian_kl(mean, log_var, prior_mean, prior_log_var))[0]
    assert abs(estimate - analytic) < 4 * standard_error


def test_two_gaussian_kl_with_a_standard_normal_prior_is_the_kl_to_n01():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(4, 3, 5)).astype("float32")
    log_var = rng.normal(size=(4, 3, 5)).astype("float32")
    zeros = np.zeros_like(mean)
    expected = to_numpy(gaussian_kl(mean, log_var))
    for prior in ((zeros, zeros), (zeros, None), (None, zeros)):
        np.testing.assert_allclose(
            to_numpy(gaussian_kl(mean, log_var, *prior)), expected, rtol=1e-6
        )
    assert expected.shape == (4,)


def test_two_gaussian_kl_is_zero_between_equal_gaussians_and_checks_shapes():
    mean = np.array([[0.3, -2.0]], "float32")
    log_var = np.array([[1.5, -3.0]], "float32")
    np.testing.assert_allclose(
        to_numpy(gaussian_kl(mean, log_var, mean, log_var)), [0.0], atol=1e-7
    )
    with pytest.raises(ValueError, match="prior_mean"):
        gaussian_kl(mean, log_var, np.zeros((1, 3), "float32"), log_var)
