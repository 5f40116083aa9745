"""The benchmark harness behind `csbot evaluate`: train a throwaway classifier on one labelled
file with exactly the code and defaults of `csbot train`, then score it on another.

Test rows whose label occurs in the training file are in scope; the rest are out of scope, and
the right answer for them is to decline. Nothing here reads or writes a csbot home.

With `compare_runtimes`, the same training run's PyTorch network is calibrated on its own
outputs and scored on the same rows beside the served (ONNX Runtime) one, with the latency of
classifying one message at a time in each: the side-by-side that says what the export costs.
"""

from __future__ import annotations

import time

import numpy as np

from csbot.nlu.calibration import calibrate
from csbot.nlu.intents import IntentClassifier
from csbot.nlu.training import TrainArgs, classification_report, train

LATENCY_MESSAGES = 300  # one at a time, after 10 to warm up


def run(train_rows: list[dict], test_rows: list[dict], args: TrainArgs, *, report=None,
        compare_runtimes: bool = False) -> dict:
    """Train on train_rows, score on test_rows (dicts with text and intent). Returns the figures.

    Example keys: accuracy, macro_f1, in_scope_accepted, in_scope_accuracy, oos_recall, train_seconds,
    runtime, operating_point (the default, with what held-out data promised), promise_gap (test
    acceptance minus the promise), curve_on_test; with compare_runtimes also "pytorch" (the same
    keys) and "latency_ms"
    """
    result = train([(r["text"], r["intent"]) for r in train_rows], args, report=report)
    classifier = result.classifier
    known = set(classifier.labels)
    in_scope = [r for r in test_rows if r["intent"] in known]
    out_scope = [r for r in test_rows if r["intent"] not in known]
    figures: dict = {"n_train": len(train_rows), "n_test": len(test_rows), "n_in_scope": len(in_scope),
                     "n_out_of_scope": len(out_scope), "n_intents": len(known),
                     "train_seconds": round(result.train_seconds, 1), "device": classifier.meta["device"],
                     "runtime": result.metrics.get("runtime"),
                     "export_choice": classifier.exported[0].get("choice") if classifier.exported else None,
                     "heldout": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "n")},
                     "operating_point": result.metrics.get("operating_point"),
                     "operating_curve": result.metrics.get("operating_curve"),
                     **score(classifier, in_scope, out_scope)}
    figures["curve_on_test"] = curve_on_test(classifier, result.metrics.get("operating_curve") or {},
                                             in_scope, out_scope)
    promised = (figures["operating_point"] or {}).get("accepted")
    if promised is not None and figures.get("in_scope_accepted") is not None:
        figures["promise_gap"] = round(figures["in_scope_accepted"] - promised, 4)  # test minus held-out
    if compare_runtimes and result.net is not None and classifier.runtime is not None:
        pytorch = IntentClassifier(result.net, classifier.tokenizer, classifier.labels, max_length=args.max_length,
                                   prefix=args.input_prefix)
        pytorch.bank = pytorch.features([t for t, _ in result.train])[1]
        calibrate(pytorch, result.heldout, target_precision=args.target_precision, target_coverage=args.target_coverage)
        figures["pytorch"] = {"runtime": pytorch.runtime_name, **score(pytorch, in_scope, out_scope)}
        texts = [r["text"] for r in (in_scope or out_scope)]
        figures["latency_ms"] = {"served": latency(classifier, texts), "pytorch": latency(pytorch, texts)}
    return figures


def score(classifier: IntentClassifier, in_scope: list[dict], out_scope: list[dict]) -> dict:
    """Accuracy and acceptance on in-scope rows, declines of out-of-scope ones."""
    figures: dict = {"threshold": round(classifier.threshold, 4), "temperature": round(classifier.temperature, 4)}
    if in_scope:
        started = time.perf_counter()
        predictions = classifier.predict([r["text"] for r in in_scope])
        figures["batched_per_second"] = round(len(in_scope) / (time.perf_counter() - started), 1)
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


CURVE_SHARES = (0.85, 0.90, 0.94, 0.96, 0.98)  # held-out acceptance of the operating points tried on test


def curve_on_test(classifier: IntentClassifier, curve: dict, in_scope: list[dict], out_scope: list[dict]) -> list[dict]:
    """The operating points an admin could pick (by acceptance, off the held-out curve) and what
    each gives on the test rows: in-scope accepted, precision of the accepted, OOS recall. Beside
    each, what the held-out curve promised. The classifier's own threshold is left as it was."""
    from csbot.nlu.calibration import point_for

    if not curve.get("points") or not in_scope:
        return []
    logits, embeddings = classifier.features([r["text"] for r in in_scope])
    _, score_in = classifier.scores(logits, embeddings)
    right = np.array([classifier.labels[b] == r["intent"] for b, r in zip(logits.argmax(1), in_scope)])
    score_out = classifier.scores(*classifier.features([r["text"] for r in out_scope]))[1] if out_scope else None
    rows = []
    for share in CURVE_SHARES:
        point = point_for(curve, acceptance=share)
        accepted = score_in >= point["threshold"]
        rows.append({"threshold": round(point["threshold"], 4), "heldout_accepted": point["accepted"],
                     "heldout_precision": point["precision"], "in_scope_accepted": round(float(accepted.mean()), 4),
                     "accepted_precision": round(float(right[accepted].mean()), 4) if accepted.any() else None,
                     "oos_recall": (round(float(np.mean(score_out < point["threshold"])), 4)
                                    if score_out is not None else None)})
    return rows


def latency(classifier: IntentClassifier, texts: list[str]) -> dict:
    """p50 / p95 milliseconds of classifying one message at a time (tokenise, pass, score), over
    LATENCY_MESSAGES of `texts` (repeated when there are fewer), after 10 to warm up."""
    texts = [texts[i % len(texts)] for i in range(LATENCY_MESSAGES + 10)]
    for text in texts[:10]:
        classifier.predict([text])
    seconds = []
    for text in texts[10:]:
        started = time.perf_counter()
        classifier.predict([text])
        seconds.append(time.perf_counter() - started)
    return {"p50": round(float(np.percentile(seconds, 50)) * 1000, 2),
            "p95": round(float(np.percentile(seconds, 95)) * 1000, 2), "n": len(seconds)}
