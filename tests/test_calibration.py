"""The threshold's trade-off: the curve computed at training, the default operating point's rule,
and moving a point along a saved curve by a target precision or acceptance."""

import numpy as np
import pytest

from csbot.errors import DataError
from csbot.nlu.calibration import default_threshold, operating_curve, point_for

# ten held-out messages, best score first; the two wrong ones score 6th and 10th
SCORE = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
CORRECT = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 0], dtype=bool)
OOS = np.array([4.5, 2.5, 0.5, -1.0])  # known out-of-scope questions' scores


def test_the_curve_gives_acceptance_precision_and_out_of_scope_acceptance_per_threshold():
    curve = operating_curve(SCORE, CORRECT, OOS)
    by_share = {p["accepted"]: p for p in curve["points"]}
    assert set(by_share) == {0.5, 0.6, 0.7, 0.8, 0.9, 1.0}  # ten messages: shares of 10%, the steps merged
    assert by_share[0.5] == {"accepted": 0.5, "threshold": 5.0, "precision": 1.0, "oos_accepted": 0.0}
    assert by_share[0.6] == {"accepted": 0.6, "threshold": 4.0, "precision": pytest.approx(5 / 6, abs=1e-4),
                             "oos_accepted": 0.25}
    assert by_share[1.0]["precision"] == 0.8 and by_share[1.0]["oos_accepted"] == 0.75
    assert curve["n"] == 10 and curve["n_out_of_scope"] == 4 and "held-out" in curve["measured_on"]


def test_ties_at_a_threshold_are_accepted_together_and_no_oos_reads_as_none():
    curve = operating_curve(np.array([2.0, 1.0, 1.0, 1.0]), np.array([1, 1, 0, 1], dtype=bool))
    # half of them is two messages, and the second ties with the rest: every share accepts all four
    assert curve["points"] == [{"accepted": 1.0, "threshold": 1.0, "precision": 0.75, "oos_accepted": None}]
    assert all(p["oos_accepted"] is None for p in curve["points"]) and curve["n_out_of_scope"] == 0


def test_a_point_is_found_by_target_precision_or_acceptance():
    curve = operating_curve(SCORE, CORRECT, OOS)
    strict = point_for(curve, precision=0.95)
    assert (strict["threshold"], strict["accepted"], strict["by"], strict["target"]) == (5.0, 0.5, "precision", 0.95)
    loose = point_for(curve, precision=0.85)  # the most accepting point still at 85%: 9 accepted, 8 right
    assert loose["threshold"] == 1.0 and loose["precision"] == pytest.approx(8 / 9, abs=1e-4)
    wide = point_for(curve, acceptance=0.75)  # the least accepting point with at least 75%
    assert (wide["accepted"], wide["threshold"], wide["by"]) == (0.8, 2.0, "acceptance")


@pytest.mark.parametrize("targets, message", [
    ({}, "exactly one target"),
    ({"precision": 0.9, "acceptance": 0.9}, "exactly one target"),
    ({"precision": 1.5}, "between 0.5 and 1"),
    ({"acceptance": 0.2}, "between 0.5 and 1"),
])
def test_a_bad_target_is_refused_with_what_to_give(targets, message):
    with pytest.raises(DataError, match=message):
        point_for(operating_curve(SCORE, CORRECT), **targets)


def test_a_precision_no_point_reaches_says_the_best_there_is():
    wrong_first = operating_curve(SCORE, ~CORRECT)
    with pytest.raises(DataError, match="no point of the curve reaches precision 99.0%: the best is"):
        point_for(wrong_first, precision=0.99)
    with pytest.raises(DataError, match="no trade-off curve"):
        point_for({"points": []}, acceptance=0.9)


def test_the_default_is_the_stricter_of_the_precision_and_coverage_rules_and_says_which():
    threshold, rule = default_threshold(SCORE, CORRECT, target_precision=0.95, target_coverage=0.9)
    assert threshold == 5.0 and rule.startswith("precision of the accepted at least 95%")
    threshold, rule = default_threshold(SCORE, CORRECT, target_precision=0.8, target_coverage=0.7)
    assert threshold == pytest.approx(np.quantile(SCORE, 0.3)) and rule.startswith("accept 70% of held-out")
