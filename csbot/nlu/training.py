"""Training: labelled examples in, a calibrated IntentClassifier and its evaluation out.

The run is a few named phases, one function each, so a progress display can name the phase:
collect -> split -> fine_tune -> export -> calibrate -> evaluate. Saving, gating and promoting a version
is the registry's job (registry.py); this module touches no database and no index, and imports
only torch, transformers, onnxruntime and numpy, so it also runs on a bare GPU machine.

The split keeps each wording on one side (text.wording_key), so the held-out messages the threshold
is read off are new wording to the model. The export phase writes the fine-tuned network as ONNX
(runtime.py), quantised to int8 when that keeps the held-out accuracy within `INT8_TOLERANCE`,
and the calibration (calibration.py: temperature, trade-off curve, default threshold) and
evaluation after it run on that exported network: the threshold is fitted to the outputs
customers will be served.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from csbot.errors import TrainingError
from csbot.nlu import distributed, finetune
from csbot.nlu import runtime as onnx_runtime
from csbot.nlu.basemodels import resolve_model_path
from csbot.nlu.calibration import calibrate
from csbot.nlu.device import pick_device
from csbot.nlu.finetune import Progress, Report, ShouldStop
from csbot.nlu.intents import OUTPUTS, IntentClassifier
from csbot.nlu.network import Exportable, IntentNet
from csbot.settings import QUANTIZE, RUNTIMES, Settings
from csbot.text import fold, wording_key

PHASES = ("collect", "split", "fine_tune", "export", "calibrate", "evaluate")
# int8 serves when its held-out accuracy is at most this much below fp32's (the issue's 0.3 points)
INT8_TOLERANCE = 0.003


@dataclass(frozen=True)
class TrainArgs:
    """How to fine-tune. Built from Settings by `from_settings`; validated here as well.
    Defaults that are also settings come from Settings, so they are written down once."""

    base_model: str
    epochs: float = Settings.epochs
    batch_size: int = Settings.batch_size
    learning_rate: float = Settings.learning_rate
    max_length: int = Settings.max_length
    seed: int = Settings.seed
    holdout_fraction: float = Settings.holdout_fraction
    target_precision: float = Settings.target_precision
    target_coverage: float = Settings.target_coverage
    device: str = Settings.device
    head_lr_factor: float = 20.0
    label_smoothing: float = 0.0
    warmup_fraction: float = 0.06
    processes: int = Settings.train_processes  # 0: one per GPU (distributed.py), 1 on a CPU
    runtime: str = Settings.runtime  # onnx: export for serving; torch: serve the PyTorch weights
    quantize: str = Settings.quantize

    @cached_property  # read from the model folder once, not per message in the training loop
    def input_prefix(self) -> str:
        """What the base model wants in front of every text ("query: " for e5 models; e5small.prefix_of)."""
        from csbot.nlu.e5small import prefix_of

        return prefix_of(self.base_model)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise TrainingError(f"epochs, batch_size and learning_rate must be positive; found "
                                f"{self.epochs}, {self.batch_size}, {self.learning_rate}")
        if not (0 < self.target_precision <= 1 and 0 < self.target_coverage <= 1):
            raise TrainingError(f"target_precision and target_coverage must be in (0, 1]; found "
                                f"{self.target_precision}, {self.target_coverage}")
        if self.processes < 0:
            raise TrainingError(f"processes must be 0 (one per GPU) or more; found {self.processes}")
        if self.runtime not in RUNTIMES or self.quantize not in QUANTIZE:
            raise TrainingError(f"runtime must be one of {', '.join(RUNTIMES)} and quantize one of {', '.join(QUANTIZE)}; "
                                f"found {self.runtime!r}, {self.quantize!r}")
        if not 0 < self.holdout_fraction < 1:
            raise TrainingError(f"holdout_fraction must be between 0 and 1; found {self.holdout_fraction}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> TrainArgs:
        values = dict(base_model=resolve_model_path(settings.base_model, cache_dir=settings.cache_dir),
                      epochs=settings.epochs,
                      batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                      max_length=settings.max_length, seed=settings.seed,
                      holdout_fraction=settings.holdout_fraction,
                      target_precision=settings.target_precision,
                      target_coverage=settings.target_coverage, device=settings.device,
                      processes=settings.train_processes, runtime=settings.runtime,
                      quantize=settings.quantize)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class TrainResult:
    classifier: IntentClassifier
    metrics: dict
    train_seconds: float
    data_hash: str
    n_train: int
    n_heldout: int
    heldout: list[tuple[str, str]] = field(repr=False, default_factory=list)
    train: list[tuple[str, str]] = field(repr=False, default_factory=list)  # what it was fine-tuned on
    net: IntentNet | None = field(repr=False, default=None)  # the PyTorch network, on the CPU
    export_files: tempfile.TemporaryDirectory | None = field(repr=False, default=None)  # until saved




# --- phases ---------------------------------------------------------------------------
def collect(examples: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Clean (width-folded, spaces collapsed) and de-duplicate (text, intent) pairs; refuse data that
    cannot train a classifier.

    Example: collect([("hi", "greeting"), ("hi ", "greeting"), ("bye", "thanks")]) -> 2 pairs
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for text, intent in examples:
        text, intent = " ".join(fold(str(text)).split()), str(intent).strip()
        if text and intent and (text.lower(), intent) not in seen:
            seen.add((text.lower(), intent))
            out.append((text, intent))
    intents = Counter(intent for _, intent in out)
    if len(intents) < 2:
        raise TrainingError(f"training needs examples of at least 2 intents; found {len(intents)} "
                            f"({len(out)} examples). Import a support log first: python -m csbot import-logs FILE.csv")
    return out


def wording_hash(text: str) -> str:
    """A short, stable name for a message's wording (text.wording_key), as a version's meta keeps
    the messages it trained on. Example: wording_hash("Where is my order?") == wording_hash("where is my order")"""
    return hashlib.sha256(wording_key(text).encode("utf-8")).hexdigest()[:12]


def split(examples: list[tuple[str, str]], *, fraction: float, seed: int
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Stratified train / held-out split that keeps each wording on one side (text.wording_key), so
    held-out messages are new wording to the model, as a new customer's are; a log's repeats would
    otherwise score as if the model knew them. An intent with one wording goes to train only.

    Example: 10 differently worded examples of each of 2 intents, fraction 0.2 -> 16 train, 4 held out
    """
    by_intent: dict[str, list[tuple[str, str]]] = {}
    for pair in examples:
        by_intent.setdefault(pair[1], []).append(pair)
    rng = random.Random(seed)
    train, heldout = [], []
    for intent in sorted(by_intent):
        groups: dict[str, list[tuple[str, str]]] = {}
        for pair in sorted(by_intent[intent]):
            groups.setdefault(wording_key(pair[0]), []).append(pair)
        bundles = list(groups.values())
        rng.shuffle(bundles)
        want = 0 if len(bundles) < 2 else max(1, round(len(by_intent[intent]) * fraction))
        held: list[tuple[str, str]] = []
        for i, bundle in enumerate(bundles):
            room = len(held) < want and len(held) + len(bundle) <= max(want + want // 2, 1)
            if room and i < len(bundles) - 1:  # the last wording always trains
                held += bundle
            else:
                train += bundle
        heldout += held
    return train, heldout


def fine_tune(train: list[tuple[str, str]], labels: list[str], args: TrainArgs, *,
              report: Report | None = None, should_stop: ShouldStop | None = None,
              started: float | None = None) -> tuple[IntentNet, object, torch.device]:
    """Fine-tune the whole encoder and a linear head (finetune.py): in this process, or with more
    than one process (args.processes, or one per GPU) as distributed.fine_tune_parallel, whose
    ranks each run the same loop on their share of every batch."""
    started = started or time.monotonic()
    processes = distributed.processes_for(pick_device(args.device), args.processes)
    if processes > 1:
        return distributed.fine_tune_parallel(train, labels, args, processes=processes, report=report,
                                              should_stop=should_stop, started=started)
    return finetune.fine_tune(train, labels, args, report=report, should_stop=should_stop, started=started)


def export(net: IntentNet, tokenizer, labels: list[str], heldout: list[tuple[str, str]], args: TrainArgs
           ) -> tuple[IntentClassifier, tempfile.TemporaryDirectory | None]:
    """Export the fine-tuned network to ONNX; return the classifier that serves the export and
    the temporary folder holding the file until the registry copies it into a version.

    With quantize "auto" two int8 copies are made too, every product quantised and only the
    feed-forward layers' (runtime.quantize_int8), and the fastest whose top-intent accuracy on
    the held-out messages is within INT8_TOLERANCE of fp32's serves, else fp32; the choice and
    every accuracy go in the version's meta.json. With runtime "torch" nothing is exported.
    """
    if args.runtime == "torch" or not onnx_runtime.available():
        device = next(net.parameters()).device
        return IntentClassifier(net, tokenizer, labels, max_length=args.max_length, device=device,
                                prefix=args.input_prefix), None
    net = net.cpu().eval()  # what is exported runs on a CPU
    folder = tempfile.TemporaryDirectory(prefix="csbot-export-")
    work = Path(folder.name)
    example = tokenizer(["a short example message", "hi"], padding=True, return_tensors="pt")
    candidates = {"none": onnx_runtime.export(Exportable(net), example, work / "model.onnx", outputs=OUTPUTS)}
    if args.quantize in ("auto", "int8"):
        candidates["int8-dynamic"] = onnx_runtime.quantize_int8(candidates["none"], work / "model.int8.onnx")
    if args.quantize == "auto":
        candidates["int8-feed-forward"] = onnx_runtime.quantize_int8(candidates["none"], work / "model.int8-ffn.onnx",
                                                                     feed_forward_only=True)
    served = {}
    for quantization, path in candidates.items():
        description = onnx_runtime.describe(path, quantization=quantization, outputs=OUTPUTS)
        session = onnx_runtime.OnnxPass(work, description, threads=os.cpu_count() or 1)  # not serving: every core
        served[quantization] = IntentClassifier(net, tokenizer, labels, max_length=args.max_length,  # net: to save
                                                prefix=args.input_prefix,
                                                runtime=session)
        served[quantization].exported = (description, work)
    texts, true = [t for t, _ in heldout], np.array([labels.index(i) for _, i in heldout])
    accuracy = {q: (float(np.mean(c.logits(texts).argmax(1) == true)) if texts else None) for q, c in served.items()}
    if args.quantize == "none":
        chosen, reason = "none", "quantize is none"
    elif args.quantize == "int8":
        chosen, reason = "int8-dynamic", "quantize is int8"
    elif not texts:
        chosen, reason = "none", "no held-out messages to check int8 on"
    else:
        keeps = [q for q in ("int8-dynamic", "int8-feed-forward")  # fastest first
                 if accuracy[q] >= accuracy["none"] - INT8_TOLERANCE]
        chosen = keeps[0] if keeps else "none"
        reason = (f"the fastest with held-out accuracy within {INT8_TOLERANCE * 100:.1f} points of fp32" if keeps
                  else f"both int8 copies lost over {INT8_TOLERANCE * 100:.1f} points of held-out accuracy")
    classifier = served[chosen]
    description, _ = classifier.exported
    description["choice"] = {"held_out_accuracy": {q: None if a is None else round(a, 4) for q, a in accuracy.items()},
                             "reason": reason}
    return classifier, folder


def classification_report(true: list[str], pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-intent precision/recall/F1/support and the confusion matrix.

    Example: true ["a","b"], pred ["a","a"] -> accuracy 0.5, per_intent["a"]["precision"] 0.5
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, pred):
        matrix[index[t], index[p]] += 1
    per_intent = {}
    f1s = []
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        predicted, actual = matrix[:, i].sum(), matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[label] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                             "f1": round(float(f1), 4), "support": int(actual)}
        if actual:
            f1s.append(f1)
    total = int(matrix.sum())
    return {"accuracy": round(float(np.trace(matrix) / total), 4) if total else 0.0,
            "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
            "n": total, "labels": labels, "per_intent": per_intent,
            "confusion": matrix.tolist()}


def evaluate(classifier: IntentClassifier, heldout: list[tuple[str, str]], *,
             oos_texts: list[str] = ()) -> dict:
    """The held-out report, how much of it the threshold accepts and gets right, and how many known
    out-of-scope questions (e.g. the curated answers' phrasings) it would wrongly accept."""
    oos_accepted = (round(float(np.mean([p.accepted for p in classifier.predict(list(oos_texts))])), 4)
                    if oos_texts else None)
    if not heldout:
        return {"accuracy": None, "macro_f1": None, "n": 0, "known_oos_accepted": oos_accepted,
                "note": "no held-out examples"}
    texts = [t for t, _ in heldout]
    predictions = classifier.predict(texts)
    true = [i for _, i in heldout]
    report = classification_report(true, [p.intent for p in predictions], classifier.labels)
    accepted = [p.accepted for p in predictions]
    report["accepted"] = round(float(np.mean(accepted)), 4)
    right = [p.accepted and p.intent == t for p, t in zip(predictions, true)]
    report["accepted_precision"] = round(sum(right) / max(1, sum(accepted)), 4)
    report["known_oos_accepted"] = oos_accepted
    return report


def data_hash(examples: list[tuple[str, str]]) -> str:
    """A fingerprint of the training data, independent of row order."""
    digest = hashlib.sha256()
    for text, intent in sorted(examples):
        digest.update(f"{intent}\t{text}\n".encode("utf-8"))
    return digest.hexdigest()[:16]


def train(examples: Iterable[tuple[str, str]], args: TrainArgs, *, oos_texts: list[str] = (),
          report: Report | None = None, should_stop: ShouldStop | None = None) -> TrainResult:
    """Run every phase and return the calibrated classifier with its held-out metrics."""
    started = time.monotonic()
    say = report or (lambda progress: None)
    say(Progress("collect", elapsed=0.0))
    pairs = collect(examples)
    say(Progress("split", elapsed=time.monotonic() - started))
    train_pairs, heldout = split(pairs, fraction=args.holdout_fraction, seed=args.seed)
    labels = sorted({intent for _, intent in pairs})
    net, tokenizer, device = fine_tune(train_pairs, labels, args, report=report,
                                       should_stop=should_stop, started=started)
    say(Progress("export", elapsed=time.monotonic() - started))
    classifier, export_files = export(net, tokenizer, labels, heldout, args)
    say(Progress("calibrate", elapsed=time.monotonic() - started))
    classifier.bank = classifier.features([t for t, _ in train_pairs])[1]
    calibration = calibrate(classifier, heldout, target_precision=args.target_precision,
                            target_coverage=args.target_coverage, oos_texts=list(oos_texts))
    say(Progress("evaluate", elapsed=time.monotonic() - started))
    metrics = evaluate(classifier, heldout, oos_texts=list(oos_texts))
    metrics["operating_curve"], metrics["operating_point"] = calibration.curve, calibration.point
    metrics["runtime"] = classifier.runtime_name.split(",")[0]  # e.g. "onnxruntime int8-dynamic"
    seconds = time.monotonic() - started
    classifier.meta = {
        "base_model": args.base_model, "data_hash": data_hash(pairs), "metrics": metrics,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device.type, "train_seconds": round(seconds, 1), "n_train": len(train_pairs),
        "n_heldout": len(heldout), "args": {k: v for k, v in vars(args).items()},
        "processes": distributed.processes_for(device, args.processes),
        # what it learned from, as short hashes of each wording: the next run's gate compares the two
        # models only on held-out messages this one never saw (service/registry.py)
        "trained_on": sorted({wording_hash(t) for t, _ in train_pairs}),
    }
    return TrainResult(classifier, metrics, seconds, classifier.meta["data_hash"], len(train_pairs),
                       len(heldout), heldout, train=train_pairs, net=net, export_files=export_files)
