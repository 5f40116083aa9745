"""Calibration: the temperature, the acceptance threshold and the trade-off curve it is read from.

A message is answered from its intent's templates when its acceptance score (intents.py) is at
least the version's threshold. Where that threshold sits trades in-scope acceptance (deflection)
against the precision of what is accepted and the out-of-scope questions let through. At
training, `calibrate` fits the temperature on the held-out messages, computes that trade-off as
an `operating_curve` (saved with the version's metrics), and picks the default point by the
rule in `default_threshold`. Later, `point_for` moves a version's operating point along its saved
curve to a target precision or acceptance, with no model and no data: the admin page and the CLI
call it, and the store makes the new threshold live in every process (store/models.py).

numpy only: a server that serves on ONNX Runtime reads curves without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from csbot.errors import DataError
from csbot.nlu.intents import KNN_WEIGHT, IntentClassifier, softmax

# Used when there is no held-out data to choose from: a 50% probability at 0.5 mean similarity.
DEFAULT_THRESHOLD = math.log(0.5) + KNN_WEIGHT * 0.5
CURVE_ACCEPTANCE = tuple(round(0.5 + 0.01 * i, 2) for i in range(51))  # 50% .. 100% of held-out messages
TARGETS = ("precision", "acceptance")  # what an admin can move the operating point by


@dataclass(frozen=True)
class Calibration:
    temperature: float
    threshold: float
    curve: dict  # operating_curve's dict
    point: dict  # the default operating point: threshold, rule, and the curve's figures there


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises held-out negative log-likelihood (grid search, robust on tiny data).

    Example: over-confident logits -> a temperature above 1
    """
    if len(targets) == 0:
        return 1.0
    best, best_nll = 1.0, math.inf
    for temperature in np.exp(np.linspace(np.log(0.05), np.log(20.0), 241)):
        probs = softmax(logits / temperature)
        nll = -np.log(probs[np.arange(len(targets)), targets] + 1e-12).mean()
        if nll < best_nll:
            best, best_nll = float(temperature), nll
    return best


def choose_threshold(score: np.ndarray, correct: np.ndarray, *, target_precision: float) -> float:
    """The lowest acceptance score at which accepted predictions are still right `target_precision` of the time.

    `correct` is False for out-of-scope examples (any acceptance of those is an error).
    Example: score [0.9, 0.8, 0.4], correct [1, 1, 0], target 0.95 -> 0.8
    """
    if len(score) == 0:
        return DEFAULT_THRESHOLD
    order = np.argsort(-score, kind="stable")
    hits = np.cumsum(correct[order].astype(float))
    precision = hits / np.arange(1, len(order) + 1)
    ok = np.nonzero(precision >= target_precision)[0]
    if len(ok) == 0:
        return float(score.max() + 1e-6)  # nothing is trustworthy: accept nothing
    return float(score[order[ok[-1]]])


def operating_curve(score: np.ndarray, correct: np.ndarray, oos_score: np.ndarray | None = None) -> dict:
    """The threshold's trade-off over held-out messages: for each share of them accepted (50% to
    100% in steps of 1%), the threshold that accepts it, the precision of the accepted (right
    intent), and the share of known out-of-scope questions it would accept, when there are any.

    Example: operating_curve(np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, 0, 1]))["points"][-1]
             -> {"accepted": 1.0, "threshold": 0.0, "precision": 0.75, "oos_accepted": None}
    """
    points = []
    if len(score):
        order = np.sort(score)[::-1]
        right = np.cumsum(correct[np.argsort(-score, kind="stable")].astype(float))
        for share in CURVE_ACCEPTANCE:
            k = max(1, int(math.ceil(share * len(order) - 1e-9)))  # accept the k best-scored messages
            threshold = float(order[k - 1])
            taken = int(np.sum(score >= threshold))  # ties at the threshold are accepted too
            point = {"accepted": round(taken / len(score), 4), "threshold": threshold,  # exact: it is served
                     "precision": round(float(right[taken - 1] / taken), 4),
                     "oos_accepted": (round(float(np.mean(oos_score >= threshold)), 4)
                                      if oos_score is not None and len(oos_score) else None)}
            if not points or point != points[-1]:
                points.append(point)
    return {"score": "acceptance score (log confidence + knn_weight x similarity); a message is accepted "
                     "when its score is at least the threshold",
            "measured_on": "held-out messages of the training log; out of scope: known out-of-scope questions "
                           "(curated answers' phrasings, dismissed fallbacks)",
            "n": int(len(score)), "n_out_of_scope": 0 if oos_score is None else int(len(oos_score)),
            "points": points}


def point_for(curve: dict, *, precision: float | None = None, acceptance: float | None = None) -> dict:
    """The operating point of a saved curve that meets a target: the most accepting point whose
    precision is at least `precision`, or the least accepting point that accepts at least
    `acceptance`. Returns the point with the target it was chosen by.

    Example: point_for(curve, acceptance=0.95) -> {"threshold": 3.1, "accepted": 0.95, "precision": 0.96,
             "oos_accepted": None, "by": "acceptance", "target": 0.95}
    """
    if (precision is None) == (acceptance is None):
        raise DataError("give exactly one target: a precision or an acceptance, each between 0.5 and 1")
    by, target = ("precision", precision) if precision is not None else ("acceptance", acceptance)
    if not 0.5 <= target <= 1:
        raise DataError(f"the target {by} must be between 0.5 and 1 (e.g. 0.95); found {target}")
    points = sorted(curve.get("points") or [], key=lambda p: p["accepted"])
    if not points:
        raise DataError("this version has no trade-off curve (it was trained without held-out messages, or "
                        "before curves were saved); retrain it to move its operating point")
    if by == "precision":
        meets = [p for p in points if p["precision"] >= target]
        if not meets:
            best = max(points, key=lambda p: p["precision"])
            raise DataError(f"no point of the curve reaches precision {target:.1%}: the best is "
                            f"{best['precision']:.1%} (accepting {best['accepted']:.1%}); choose a lower target")
        chosen = meets[-1]
    else:
        chosen = next((p for p in points if p["accepted"] >= target), points[-1])
    return {**chosen, "by": by, "target": target}


def chosen_point(metrics: dict, *, precision: float | None = None, acceptance: float | None = None,
                 default: bool = False, version: str = "this version") -> dict:
    """The operating point `version`'s saved metrics give for a target (point_for), or with `default`
    the threshold chosen at training, marked by="default".

    Example: chosen_point(metrics, default=True) -> {"threshold": 2.4, ..., "by": "default"}
    """
    if default:
        trained = metrics.get("operating_point") or {}
        if trained.get("threshold") is None:
            raise DataError(f"{version} records no trained default threshold; move it by a target instead")
        return {**trained, "by": "default"}
    return point_for(metrics.get("operating_curve") or {}, precision=precision, acceptance=acceptance)


def default_threshold(score: np.ndarray, correct: np.ndarray, *, target_precision: float,
                      target_coverage: float) -> tuple[float, str]:
    """The default operating point and the rule that chose it, in words.

    The threshold is the stricter of two, both read off held-out data: the precision threshold
    (accepted predictions right `target_precision` of the time) and the coverage threshold (it
    accepts `target_coverage` of the held-out messages). An accurate model meets the precision
    target at almost any threshold, so alone it would accept unknown questions too; the coverage
    rule keeps the least typical messages out. (Counting known out-of-scope questions as errors
    in the precision rule was tried and dropped: the result depends on how many of them there
    are, and on the demo data it rejected 60% of in-scope messages.)
    """
    by_precision = choose_threshold(score, correct, target_precision=target_precision)
    by_coverage = float(np.quantile(score, 1 - target_coverage)) if len(score) and target_coverage < 1 else -math.inf
    if by_precision >= by_coverage:
        return by_precision, f"precision of the accepted at least {target_precision:.0%} on held-out messages"
    return by_coverage, f"accept {target_coverage:.0%} of held-out messages (precision {target_precision:.0%} already met)"


def calibrate(classifier: IntentClassifier, heldout: list[tuple[str, str]], *, target_precision: float,
              target_coverage: float = 1.0, oos_texts: list[str] = ()) -> Calibration:
    """Fit the temperature on held-out messages, compute the trade-off curve, set the default threshold."""
    texts = [t for t, _ in heldout]
    targets = np.array([classifier.labels.index(i) for _, i in heldout], dtype=int)
    logits, embeddings = classifier.features(texts)
    classifier.temperature = fit_temperature(logits, targets)
    _, score = classifier.scores(logits, embeddings)
    correct = logits.argmax(1) == targets
    oos_score = classifier.scores(*classifier.features(list(oos_texts)))[1] if oos_texts else None
    curve = operating_curve(score, correct, oos_score)
    if len(score):
        classifier.threshold, rule = default_threshold(score, correct, target_precision=target_precision,
                                                       target_coverage=target_coverage)
    else:
        classifier.threshold, rule = DEFAULT_THRESHOLD, "no held-out messages: a fixed default"
    accepted = score >= classifier.threshold
    point = {"threshold": classifier.threshold, "by": "default", "rule": rule,
             "accepted": round(float(accepted.mean()), 4) if len(score) else None,
             "precision": round(float(correct[accepted].mean()), 4) if accepted.any() else None,
             "oos_accepted": (round(float(np.mean(oos_score >= classifier.threshold)), 4)
                              if oos_score is not None and len(oos_score) else None)}
    return Calibration(classifier.temperature, classifier.threshold, curve, point)
