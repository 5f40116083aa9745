"""The benchmark harness behind `csbot evaluate`: train a throwaway classifier on one labelled
file with exactly the code and defaults of `csbot train`, then score it on another.

Test rows whose label occurs in the training file are in scope; the rest are out of scope, and
the right answer for them is to decline. Nothing here reads or writes a csbot home.
"""

from __future__ import annotations

import numpy as np

from csbot.training import TrainArgs, classification_report, train


def run(train_rows: list[dict], test_rows: list[dict], args: TrainArgs, *, report=None) -> dict:
    """Train on train_rows, score on test_rows (dicts with text and intent). Returns the figures.

    Example keys: accuracy, macro_f1, in_scope_accepted, in_scope_accuracy, oos_recall, train_seconds
    """
    result = train([(r["text"], r["intent"]) for r in train_rows], args, report=report)
    classifier = result.classifier
    known = set(classifier.labels)
    in_scope = [r for r in test_rows if r["intent"] in known]
    out_scope = [r for r in test_rows if r["intent"] not in known]
    figures: dict = {"n_train": len(train_rows), "n_test": len(test_rows), "n_in_scope": len(in_scope),
                     "n_out_of_scope": len(out_scope), "n_intents": len(known),
                     "train_seconds": round(result.train_seconds, 1), "device": classifier.meta["device"],
                     "threshold": round(classifier.threshold, 4),
                     "temperature": round(classifier.temperature, 4),
                     "heldout": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "n")}}
    if in_scope:
        predictions = classifier.predict([r["text"] for r in in_scope])
        true = [r["intent"] for r in in_scope]
        scores = classification_report(true, [p.intent for p in predictions], classifier.labels)
        accepted = np.array([p.accepted for p in predictions])
        right = np.array([p.intent == t for p, t in zip(predictions, true)])
        figures.update(accuracy=scores["accuracy"], macro_f1=scores["macro_f1"],
                       in_scope_accepted=round(float(accepted.mean()), 4),
                       in_scope_accuracy=round(float((accepted & right).mean()), 4),
                       accepted_precision=round(float((accepted & right).sum() / max(1, accepted.sum())), 4),
                       per_intent=scores["per_intent"])
    else:
        figures.update(accuracy=None, macro_f1=None, in_scope_accepted=None, in_scope_accuracy=None)
    if out_scope:
        declined = [not p.accepted for p in classifier.predict([r["text"] for r in out_scope])]
        figures["oos_recall"] = round(float(np.mean(declined)), 4)
    else:
        figures["oos_recall"] = None
    return figures
