"""Model versions: save a trained classifier as a version, gate it, promote it, roll back.

A version is a folder under `models/` (see intents.py for its contents) plus a row in the
store with its metrics. Exactly one version is current; promoting loads the folder first, so a
version that does not load is refused and the current one stays.

This module does not train (training.py) nor serve (bot.py swaps the loaded classifier in).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from csbot.errors import ModelError
from csbot.nlu.device import device_kind
from csbot.nlu.intents import IntentClassifier
from csbot.store import Store

if TYPE_CHECKING:  # training imports torch, which a server on ONNX Runtime never loads
    from csbot.nlu.training import TrainResult


class ModelRegistry:
    """The versions on disk and in the store, and which one serves."""

    def __init__(self, store: Store, models_dir: Path, *, device: str = "cpu", runtime: str = "onnx",
                 threads: int = 0):
        self.store = store
        self.models_dir = Path(models_dir)
        self.device = device
        self.runtime = runtime  # how loaded versions are served (intents.IntentClassifier.load)
        self.threads = threads

    def save(self, result: TrainResult) -> str:
        """Write the trained classifier as a new version folder and record it. Returns the version id."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        version = f"v{stamp}-{result.data_hash[:6]}"
        n = 1
        while (self.models_dir / version).exists():
            n += 1
            version = f"v{stamp}-{result.data_hash[:6]}-{n}"
        classifier = result.classifier
        classifier.meta = {**classifier.meta, "version": version}
        self.models_dir.mkdir(parents=True, exist_ok=True)
        folder = classifier.save(self.models_dir / version)
        self.store.add_model_version({
            "id": version, "path": folder.name, "created_at": classifier.meta["created_at"],
            "base_model": classifier.meta["base_model"], "data_hash": result.data_hash,
            "metrics": result.metrics, "threshold": classifier.threshold,
            "device": classifier.meta["device"], "train_seconds": round(result.train_seconds, 1)})
        return version

    def gate(self, result: TrainResult, current: IntentClassifier | None) -> dict:
        """Compare the new classifier with the current one on held-out messages neither trained on:
        the new run's held-out split, less the wordings the current version trained on (its meta
        lists them), so the gate does not favour the model that already knows the test.

        The new version passes when its macro-F1 is at least the current one's on those messages
        (the current one scores an intent it does not know as wrong).
        """
        from csbot.nlu.training import classification_report, wording_hash

        new_f1 = result.metrics.get("macro_f1")
        if current is None or not result.heldout:
            return {"passed": True, "new_macro_f1": new_f1, "current_macro_f1": None,
                    "reason": "no current model" if current is None else "no held-out data to compare on"}
        known = set((current.meta or {}).get("trained_on") or ())
        heldout = [(t, i) for t, i in result.heldout if wording_hash(t) not in known]
        note = "" if known else " (the current version does not list what it trained on: all held-out messages)"
        if not heldout:
            return {"passed": True, "new_macro_f1": new_f1, "current_macro_f1": None, "compared_on": 0,
                    "reason": "every held-out message was in the current model's training data: nothing fair "
                              "to compare on"}
        texts = [t for t, _ in heldout]
        true = [i for _, i in heldout]
        labels = sorted(set(result.classifier.labels) | set(current.labels))
        new_f1 = classification_report(true, [p.intent for p in result.classifier.predict(texts)], labels)["macro_f1"]
        current_f1 = classification_report(true, [p.intent for p in current.predict(texts)], labels)["macro_f1"]
        passed = new_f1 >= current_f1
        return {"passed": passed, "new_macro_f1": new_f1, "current_macro_f1": current_f1,
                "compared_on": len(heldout), "left_out": len(result.heldout) - len(heldout),
                "reason": ("at least as good as the current model" if passed
                           else "worse than the current model") + " on held-out messages neither trained on" + note}

    def load(self, version: str) -> IntentClassifier:
        rows = [r for r in self.store.model_versions() if r["id"] == version]
        if not rows:
            raise ModelError(f"no model version {version!r}; `python -m csbot models` lists them")
        # Paths are kept relative to models_dir, so a home can be moved or copied whole.
        classifier = IntentClassifier.load(self.models_dir / rows[0]["path"], device=device_kind(self.device),
                                           runtime=self.runtime, threads=self.threads)
        if rows[0].get("threshold") is not None:  # the operating point an admin chose wins over meta.json's
            classifier.threshold = float(rows[0]["threshold"])
        return classifier

    def promote(self, version: str) -> IntentClassifier:
        """Load the version (refusing a broken one), then mark it current. Returns the loaded classifier."""
        classifier = self.load(version)
        self.store.set_current_model(version)
        return classifier

    def rollback(self) -> tuple[str, IntentClassifier]:
        """Promote the newest version older than the current one."""
        versions = self.store.model_versions()  # newest first
        current = self.store.current_model()
        if current is None:
            raise ModelError("no model is current, so there is nothing to roll back from")
        older = [v for v in versions if v["created_at"] < current["created_at"]]
        if not older:
            raise ModelError(f"{current['id']} is the oldest version; there is nothing to roll back to")
        return older[0]["id"], self.promote(older[0]["id"])

    def load_current(self) -> IntentClassifier | None:
        current = self.store.current_model()
        return self.load(current["id"]) if current else None

    def load_serving(self, *, skip: set[str] | None = None) -> tuple[IntentClassifier | None, str | None]:
        """What to serve: the current version, or, when its folder does not load (damaged disk, a
        half-copied home), the newest older version that does, with a message saying so. Refusing
        to start would leave every customer unanswered over one broken folder.

        Example: current v3 damaged -> (v2's classifier, "the current model v3 does not load (...);
        serving v2 instead ...")"""
        current = self.store.current_model()
        if current is None:
            return None, None
        skip = skip if skip is not None else set()
        try:
            return self.load(current["id"]), None
        except Exception as exc:  # ModelError, or whatever else a damaged folder raises
            skip.add(current["id"])
            reason = str(exc)
        for version in self.store.model_versions():  # newest first
            if version["id"] in skip or version["created_at"] > current["created_at"]:
                continue
            try:
                classifier = self.load(version["id"])
            except Exception:
                skip.add(version["id"])
                continue
            return classifier, (f"the current model {current['id']} does not load ({reason}); serving "
                                f"{version['id']} instead. Promote a good version or retrain to fix it")
        return None, (f"the current model {current['id']} does not load ({reason}) and no older version does; "
                      "answering from curated answers only. Retrain to fix it")
