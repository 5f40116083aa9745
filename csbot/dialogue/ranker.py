"""The ranker: which curated answer a message asks for, and how likely that answer is the right one.

Two small models over the frozen encoder's vectors, fitted on the shop's own curated answers and
refitted whenever they change (milliseconds to a second; the encoder itself is never retrained):

- `Head`, a multinomial logistic regression from a text's vector to the answer it belongs to,
  fitted on every phrasing and answer text (all phrasings of an answer vote through the weights,
  where a nearest-neighbour search listens to the single closest one);
- `Judge`, the probability that the answer the head ranks first is right, from the head's
  probability p and the cosine s of the answer's closest text: a logistic regression fitted on
  held-out rounds of the curated phrasings themselves. In each of `FOLDS` rounds one phrasing of
  every answer is held out and asked (a covered question: right or wrong), and in as many more a
  fifth of the answers is held out whole (their phrasings are questions no answer covers: any
  answer given is wrong). Its threshold is the lowest at which the held-out answers given reach the
  shop's target precision, and the rounds' figures are the curve the admin page shows.

Measured with benchmarks/answer_search.py on FAQs of 5 phrasings per intent (docs/benchmarks.md,
"Curated answers"): on BANKING77 test the head ranks the right answer first for 82.1% against
76.6% for the nearest phrasing, and at the calibrated threshold answers 56.9% right with 2.3%
wrong, where cosine alone answers 36.9% right at 2.1% wrong. A lexical (character n-gram) signal
beside the vectors gained under a point in English and was left out.

This module neither embeds nor searches (dialogue/answers.py does both); it sees matrices.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

C = 100.0  # the head's inverse regularisation: tuned on BANKING77 train (30-1000 within a point)
FOLDS = 5  # held-out rounds of each kind
MIN_ANSWERS = 3  # fewer, and there is nothing to hold out: the index falls back to similarity
MIN_HELD = 20  # fewer held-out questions than this, and the judge is not fitted (too few to calibrate)
GRID = [round(0.05 + 0.01 * i, 2) for i in range(95)]  # judge thresholds the curve is given at, 0.05 ... 0.99


@dataclass(frozen=True)
class Head:
    """Answer ids and a linear layer: softmax(vector @ coef.T + intercept) over the answers."""

    answer_ids: np.ndarray  # (answers,)
    coef: np.ndarray  # (answers, dim)
    intercept: np.ndarray  # (answers,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(texts, answers) probabilities, each row summing to 1."""
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Judge:
    """P(right) = sigmoid(wp * p + ws * s + bias); `curve` is its held-out figures per threshold."""

    wp: float
    ws: float
    bias: float
    curve: list[dict]  # [{"threshold", "right", "wrong", "precision", "answered_uncovered"}], GRID order
    covered: int  # held-out questions some answer covers
    uncovered: int  # held-out questions of answers held out whole

    def confidence(self, p: np.ndarray | float, s: np.ndarray | float):
        return 1.0 / (1.0 + np.exp(-(self.wp * np.asarray(p) + self.ws * np.asarray(s) + self.bias)))

    def threshold_for(self, precision: float) -> float:
        """The lowest threshold whose held-out answers given reach `precision` (the highest if none does).

        Example: a curve reaching 0.97 first at 0.64 -> threshold_for(0.97) == 0.64
        """
        for point in self.curve:
            if point["precision"] is not None and point["precision"] >= precision:
                return point["threshold"]
        return self.curve[-1]["threshold"]

    def point(self, threshold: float) -> dict:
        """The curve's figures at the grid threshold nearest `threshold`."""
        return min(self.curve, key=lambda c: abs(c["threshold"] - threshold))

    def as_dict(self) -> dict:
        return {"wp": self.wp, "ws": self.ws, "bias": self.bias, "curve": self.curve,
                "covered": self.covered, "uncovered": self.uncovered}

    @classmethod
    def from_dict(cls, d: dict) -> Judge:
        return cls(float(d["wp"]), float(d["ws"]), float(d["bias"]), list(d["curve"]),
                   int(d["covered"]), int(d["uncovered"]))


def fit_head(vectors: np.ndarray, owners: np.ndarray) -> Head | None:
    """The head over these texts' vectors and the answers they belong to; None for under two answers."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    ids = np.unique(owners)
    if len(ids) < 2:
        return None
    # One BLAS thread: these matrices are small, and more threads only wait on each other (4x slower
    # on 2 cores for 77 answers) and on the serving threads beside them.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # lbfgs stopping a little short of convergence changes nothing that counts
        model = LogisticRegression(C=C, max_iter=500).fit(vectors, owners)
    coef, intercept = model.coef_, model.intercept_
    if len(ids) == 2:  # binary: one row for class 1 against class 0; as two rows, softmax gives the same
        coef, intercept = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return Head(model.classes_.astype(np.int64), coef.astype(np.float32), intercept.astype(np.float32))


def top_features(head: Head, queries: np.ndarray, vectors: np.ndarray, owners: np.ndarray):
    """For each query: the head's first answer, its probability, and the cosine of that answer's
    closest text (vectors and owners: the texts the head was fitted on)."""
    probabilities = head.probabilities(queries)
    best = probabilities.argmax(axis=1)
    top = head.answer_ids[best]
    cosines = queries @ vectors.T
    s = np.array([cosines[i, owners == a].max() for i, a in enumerate(top)])
    return top, probabilities[np.arange(len(queries)), best], s


def calibrate(vectors: np.ndarray, owners: np.ndarray, is_question: np.ndarray) -> Judge | None:
    """The judge, from held-out rounds of these texts (see the module docstring); None when there
    are under MIN_ANSWERS answers or MIN_HELD held-out questions, or every round came out alike."""
    from sklearn.linear_model import LogisticRegression

    ids = np.unique(owners)
    if len(ids) < MIN_ANSWERS:
        return None
    rank = np.zeros(len(owners), dtype=int)  # a phrasing's place among its answer's phrasings
    seen: dict[int, int] = {}
    for i, (owner, question) in enumerate(zip(owners, is_question)):
        if question:
            rank[i] = seen.get(owner, 0)
            seen[owner] = rank[i] + 1
    group = {a: i % FOLDS for i, a in enumerate(ids)}
    features, labels, covered = [], [], []
    rounds = [(is_question & (rank % FOLDS == j), True) for j in range(FOLDS)]
    rounds += [(np.array([group[o] == j for o in owners]), False) for j in range(FOLDS)]
    for held, is_covered in rounds:
        asked = held & is_question
        if not asked.any() or len(np.unique(owners[~held])) < 2:
            continue
        head = fit_head(vectors[~held], owners[~held])
        top, p, s = top_features(head, vectors[asked], vectors[~held], owners[~held])
        features.append(np.stack([p, s], axis=1))
        labels.append((top == owners[asked]) if is_covered else np.zeros(len(top), dtype=bool))
        covered.append(np.full(len(top), is_covered))
    if not features:
        return None
    x, y, is_cov = np.concatenate(features), np.concatenate(labels), np.concatenate(covered)
    if is_cov.sum() < MIN_HELD or y.all() or not y.any():
        return None
    model = LogisticRegression(C=10.0).fit(x, y)
    judge = Judge(float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0]), [],
                  int(is_cov.sum()), int((~is_cov).sum()))
    return Judge(judge.wp, judge.ws, judge.bias, curve(judge.confidence(x[:, 0], x[:, 1]), y, is_cov),
                 judge.covered, judge.uncovered)


def curve(confidence: np.ndarray, right: np.ndarray, is_covered: np.ndarray) -> list[dict]:
    """Held-out figures at each GRID threshold: shares of covered questions answered right and wrong,
    the precision of the covered answers given, and the share of uncovered questions answered anyway.

    Example: curve(np.array([0.9, 0.2]), np.array([True, False]), np.array([True, True]))[0]
             -> {"threshold": 0.05, "right": 0.5, "wrong": 0.5, "precision": 0.5, "answered_uncovered": None}
    """
    n_cov, n_unc = int(is_covered.sum()), int((~is_covered).sum())
    out = []
    for t in GRID:
        given = confidence >= t
        r, w = int((given & right & is_covered).sum()), int((given & ~right & is_covered).sum())
        out.append({"threshold": t, "right": round(r / n_cov, 4) if n_cov else None,
                    "wrong": round(w / n_cov, 4) if n_cov else None,
                    "precision": round(r / (r + w), 4) if r + w else None,
                    "answered_uncovered": round(int((given & ~is_covered).sum()) / n_unc, 4) if n_unc else None})
    return out
