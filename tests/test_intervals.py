"""95% Wilson intervals against hand-computed values, and the pessimistic end of a drop."""
import math

import pytest

from components.evaluation.intervals import Z95, drop_with_bound, rate_with_interval, wilson


def test_zero_of_n_has_upper_end_z2_over_n_plus_z2():
    z2 = Z95 ** 2  # 3.8415
    assert wilson(0, 8) == (0.0, pytest.approx(z2 / (8 + z2)))
    assert wilson(0, 8)[1] == pytest.approx(0.3244, abs=1e-4)  # so 0 of 8 cannot pass a 10% bar
    assert wilson(0, 35)[1] == pytest.approx(0.0989, abs=1e-4)  # 35 clean images are the least that can
    assert wilson(0, 80)[1] == pytest.approx(0.0458, abs=1e-4)


def test_k_of_n_against_the_formula_worked_by_hand():
    # 3 of 20: p = 0.15, z^2 = 3.8415; centre = (0.15 + 0.09604) / 1.19207 = 0.20640;
    # half = 1.96 * sqrt(0.15 * 0.85 / 20 + 3.8415 / 1600) / 1.19207 = 1.96 * 0.09289 / 1.19207 = 0.15274
    low, high = wilson(3, 20)
    assert low == pytest.approx(0.0524, abs=1e-4) and high == pytest.approx(0.3604, abs=1e-4)
    assert wilson(20, 20) == (pytest.approx(1 - 0.1611, abs=1e-4), 1.0)  # the mirror of 0/20
    assert wilson(10, 20)[0] == pytest.approx(1 - wilson(10, 20)[1])


def test_rates_and_drops_from_flags():
    r = rate_with_interval([True, False, False, False])
    assert r["rate"] == 0.25 and r["n"] == 4 and r["low"] < 0.25 < r["high"]
    # the original drew the prompt right 100% of the time, the erased model 8 of 8: no drop, but 8 images
    # cannot show that the drop is below 1 - 0.676 = 32 points
    d = drop_with_bound(1.0, [True] * 8)
    assert d["drop"] == 0.0 and d["high"] == pytest.approx(0.3244, abs=1e-4)
    wiped = drop_with_bound(1.0, [False] * 8)
    assert wiped["drop"] == 1.0 and wiped["high"] == 1.0


@pytest.mark.parametrize("k, n", [(-1, 5), (6, 5), (0, 0)])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        wilson(k, n)


def test_the_interval_always_holds_the_estimate():
    for n in (1, 2, 7, 50):
        for k in range(n + 1):
            low, high = wilson(k, n)
            assert 0 <= low <= k / n <= high <= 1 and not math.isnan(low)
