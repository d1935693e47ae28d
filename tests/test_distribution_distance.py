"""KID and FID against values known in closed form."""
import numpy as np
import pytest

from components.evaluation.distribution_distance import frechet_distance, kernel_inception_distance, mmd2_unbiased


def gaussian_raw_moments(mu: float, sigma: float) -> tuple[float, float, float]:
    return mu, mu ** 2 + sigma ** 2, mu ** 3 + 3 * mu * sigma ** 2


def test_kid_of_shifted_gaussians_matches_the_closed_form():
    # d = 1: k(x, y) = (xy + 1)^3 = x^3 y^3 + 3 x^2 y^2 + 3 xy + 1, so
    # MMD^2 = (m3p - m3q)^2 + 3 (m2p - m2q)^2 + 3 (m1p - m1q)^2 with raw moments m_k.
    p, q = gaussian_raw_moments(0.0, 1.0), gaussian_raw_moments(0.5, 1.0)
    exact = (p[2] - q[2]) ** 2 + 3 * (p[1] - q[1]) ** 2 + 3 * (p[0] - q[0]) ** 2  # 3.578125
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.0, 1.0, (20000, 1)), rng.normal(0.5, 1.0, (20000, 1))
    # the cubic kernel's 6th moments make one estimate noisy: average many subsets
    kid = kernel_inception_distance(x, y, subset_size=1000, subsets=200)
    assert kid.mean == pytest.approx(exact, rel=0.1)


def test_kid_of_two_samples_of_one_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(1)
    values = [mmd2_unbiased(rng.normal(size=(200, 8)), rng.normal(size=(200, 8))) for _ in range(30)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))  # zero within its error
    assert min(values) < 0 < max(values)  # an unbiased estimate of 0 takes both signs
    x = rng.normal(size=(100, 8))
    assert kernel_inception_distance(x, x).mean < 0.01 * kernel_inception_distance(x, x + 1.0).mean


def test_kid_of_a_set_against_itself_is_exactly_zero_and_pairing_adds_no_bias():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 8))
    assert mmd2_unbiased(x, x) == pytest.approx(0.0, abs=1e-9)
    # paired samples (same seeds before/after): y_i = x_i + small noise is still ~0, not a negative bias
    near = [mmd2_unbiased(x, x + 0.01 * rng.normal(size=x.shape)) for _ in range(5)]
    assert max(abs(v) for v in near) < 0.01 * mmd2_unbiased(x, x + 1.0)


def test_kid_subsets_and_shape_errors():
    rng = np.random.default_rng(2)
    kid = kernel_inception_distance(rng.normal(size=(300, 4)), rng.normal(size=(250, 4)) + 1, subset_size=100, subsets=20)
    assert kid.subsets == 20 and kid.subset_size == 100 and kid.std > 0 and kid.mean > 0
    with pytest.raises(ValueError, match="same d"):
        kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_fid_of_gaussians_matches_the_closed_form():
    # N(0, I) vs N(m, 4 I) in d dims: |m|^2 + d (1 + 4 - 2 * 2) = |m|^2 + d
    d, rng = 4, np.random.default_rng(3)
    m = np.array([1.0, -0.5, 0.0, 2.0])
    x, y = rng.normal(size=(20000, d)), m + 2.0 * rng.normal(size=(20000, d))
    assert frechet_distance(x, y) == pytest.approx((m ** 2).sum() + d, rel=0.03)
    assert abs(frechet_distance(x, x)) < 1e-8


def test_fid_with_correlated_covariances_matches_a_direct_computation():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    x, y = rng.normal(size=(400, 6)) @ a, rng.normal(size=(400, 6)) @ b + 0.3
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    direct = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert frechet_distance(x, y) == pytest.approx(direct, rel=1e-6)
