"""The intent classifier: a fine-tuned sentence encoder with a linear head, and its saved form.

`IntentNet` is the network (transformer, mean pooling, L2 normalisation, linear head).
`IntentClassifier` wraps it with the tokenizer, the labels and the calibration, predicts, and
saves/loads a self-describing model version folder:

    <version>/encoder/        the fine-tuned transformer and its tokenizer (transformers format)
    <version>/head.safetensors
    <version>/bank.safetensors  the training messages' embeddings (float16), for the acceptance score
    <version>/labels.json     ["intent_a", "intent_b", ...]
    <version>/onnx/model[.int8].onnx  the network as it is served (ONNX Runtime, runtime.py), when exported
    <version>/meta.json       format, base model, data hash, metrics, temperature, threshold, created-at,
                              and `runtime`: what the onnx file holds (checked on load; absent: PyTorch)

Two numbers come out per message. `confidence` is the calibrated probability of the top intent,
softmax(logits / temperature). `score` decides acceptance: log(confidence) plus `knn_weight` times
the mean cosine similarity of the message to its `knn_k` nearest training messages. The second
term is what declines questions outside every intent: such a question can still get a peaked
softmax, but it sits far from everything the model was trained on. Both come from the one
encoder pass that classifies the message.

A classifier computes with one of two runtimes: PyTorch (`net`, network.py: the training path,
and what versions without an export serve with) or an exported ONNX file (`runtime`, what the
version was calibrated on, so its threshold fits the outputs served). Loading a version for ONNX
serving imports neither torch nor transformers and loads no PyTorch weights.

This module does not train (training.py) nor decide routes (bot.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file as load_arrays

from csbot.errors import ModelError, SettingsError
from csbot.files import write_folder
from csbot.nlu import runtime as onnx_runtime
from csbot.nlu.tokens import Tokenizer
from csbot.settings import RUNTIMES
from csbot.text import fold

if TYPE_CHECKING:
    from csbot.nlu.network import IntentNet

FORMAT = "csbot-intent-model"
FORMAT_VERSION = 1
REQUIRED_FILES = ("meta.json", "labels.json", "head.safetensors", "bank.safetensors", "encoder/config.json")
OUTPUTS = ("logits", "embedding")  # what the exported network returns, in this order
KNN_K = 5
KNN_WEIGHT = 5.0


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    score: float
    accepted: bool
    similarity: float | None = None  # mean cosine to the nearest training messages (None: no bank)


class IntentClassifier:
    """A fine-tuned network (PyTorch `net`, or an exported `runtime` pass) with its labels and
    calibration, ready to predict."""

    def __init__(self, net: IntentNet | None, tokenizer, labels: list[str], *, temperature: float = 1.0,
                 threshold: float = 0.0, max_length: int = 64, bank: np.ndarray | None = None,
                 knn_k: int = KNN_K, knn_weight: float = KNN_WEIGHT, meta: dict | None = None,
                 device=None, runtime: onnx_runtime.OnnxPass | None = None, dim: int | None = None,
                 prefix: str = ""):
        if net is None and runtime is None:
            raise ModelError("a classifier needs a network: a PyTorch net or an exported runtime pass")
        if net is not None and net.head.out_features != len(labels):
            raise ModelError(f"the head has {net.head.out_features} outputs but there are {len(labels)} labels")
        self.device = device or "cpu"  # a torch.device, or its name
        self.net = None if net is None else net.to(self.device).eval()
        self.runtime = runtime
        self.dim = int(dim or net.head.in_features)
        self.exported: tuple[dict, Path] | None = None  # (description, folder): an exported file save() keeps
        self.tokenizer = tokenizer  # transformers' (training, PyTorch) or tokens.Tokenizer (ONNX serving)
        if runtime is not None and not isinstance(tokenizer, Tokenizer):
            self.tokens = Tokenizer.from_transformers(tokenizer, max_length=max_length)
        else:
            self.tokens = tokenizer
        self.labels = list(labels)
        self.temperature = float(temperature)
        self.threshold = float(threshold)
        self.max_length = max_length
        self.bank = bank
        self.knn_k = knn_k
        self.knn_weight = knn_weight
        self.meta = dict(meta or {})
        self.prefix = prefix  # what the base model wants in front of every text ("query: " for e5)

    @property
    def bank(self) -> np.ndarray | None:
        """The training messages' embeddings that the acceptance score compares with."""
        return self._bank

    @bank.setter
    def bank(self, value: np.ndarray | None) -> None:
        self._bank = None if value is None else np.ascontiguousarray(value, dtype=np.float32)

    @property
    def version(self) -> str | None:
        return self.meta.get("version")

    @property
    def runtime_name(self) -> str:
        """Example: "onnxruntime int8-dynamic, 2 threads", or "pytorch cpu" """
        if self.runtime is not None:
            return f"onnxruntime {self.runtime.quantization}, {self.runtime.threads} threads"
        return f"pytorch {getattr(self.device, 'type', self.device)}"

    def features(self, texts: list[str], *, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits and unit-length embeddings, batched by length so padding stays small. Texts
        are width-folded first (text.fold), as training's collect folds the examples."""
        texts = [self.prefix + fold(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        embeddings = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            logits[chunk], embeddings[chunk] = self._pass([texts[i] for i in chunk])
        return logits, embeddings

    def _pass(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.runtime is not None:
            logits, embedded = self.runtime(*self.tokens(texts))
            return logits, embedded
        import torch

        self.net.eval()
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt").to(self.device)
            embedded = self.net.embed(batch["input_ids"], batch["attention_mask"])
            return self.net.head(embedded).float().cpu().numpy(), embedded.float().cpu().numpy()

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.features(texts)[0]

    def scores(self, logits: np.ndarray, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, acceptance score) per row; see the module docstring."""
        confidence, score, _ = self.score_parts(logits, embeddings)
        return confidence, score

    def score_parts(self, logits: np.ndarray, embeddings: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(confidence, acceptance score, similarity to the nearest training messages or None) per row."""
        confidence = softmax(logits / self.temperature).max(1)
        score, similarity = np.log(confidence + 1e-12), None
        if self.bank is not None and len(self.bank) and len(embeddings):
            similarity = self._nearest(np.ascontiguousarray(embeddings, dtype=np.float32))
            score = score + self.knn_weight * similarity
        return confidence, score, similarity

    def _nearest(self, embeddings: np.ndarray) -> np.ndarray:
        """Mean cosine similarity of each row to its knn_k nearest training messages."""
        k = min(self.knn_k, len(self.bank))
        if self.net is not None:
            # torch is loaded: compute in torch, not numpy, because numpy's BLAS threads and
            # torch's OpenMP threads fight over the cores (it made one message 3x slower on 2 cores).
            import torch

            similarity = torch.from_numpy(embeddings) @ torch.from_numpy(self._bank).T
            return similarity.topk(k, dim=1).values.mean(1).numpy()
        similarity = embeddings @ self._bank.T  # ONNX serving: no torch threads in this process
        return np.partition(similarity, -k, axis=1)[:, -k:].mean(1)

    def predict(self, texts: list[str]) -> list[Prediction]:
        logits, embeddings = self.features(texts)
        confidence, score, similarity = self.score_parts(logits, embeddings)
        best, threshold = logits.argmax(1), self.threshold  # one threshold for the batch, moved or not
        similarity = [None] * len(best) if similarity is None else [float(x) for x in similarity]
        return [Prediction(self.labels[b], float(c), float(s), bool(s >= threshold), m)
                for b, c, s, m in zip(best, confidence, score, similarity)]

    # --- saving and loading ---------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write the version folder atomically (files.write_folder); an existing folder is never overwritten."""
        if self.net is None:
            raise ModelError("this classifier was loaded for serving, without its PyTorch weights; "
                             "copy its version folder instead of saving it again")
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        if folder.exists():
            raise ModelError(f"{folder} already exists; model versions are never overwritten")

        def fill(partial: Path) -> None:
            (partial / "encoder").mkdir()
            self.net.encoder.save_pretrained(partial / "encoder")
            self.tokenizer.save_pretrained(partial / "encoder")
            save_file({k: v.detach().cpu().contiguous() for k, v in self.net.head.state_dict().items()},
                      str(partial / "head.safetensors"))
            bank = np.zeros((0, self.dim), np.float32) if self.bank is None else self.bank
            save_file({"bank": torch.from_numpy(bank.astype(np.float16))}, str(partial / "bank.safetensors"))
            (partial / "labels.json").write_text(json.dumps(self.labels, indent=1), encoding="utf-8")
            meta = {**self.meta, "format": FORMAT, "format_version": FORMAT_VERSION,
                    "temperature": self.temperature, "threshold": self.threshold,
                    "max_length": self.max_length, "n_labels": len(self.labels), "input_prefix": self.prefix,
                    "acceptance": {"score": "log(confidence) + knn_weight * mean cosine to the knn_k nearest "
                                            "training messages", "knn_k": self.knn_k, "knn_weight": self.knn_weight}}
            meta.pop("runtime", None)
            if self.exported is not None:
                description, source = self.exported
                (partial / "onnx").mkdir()
                onnx_runtime.copy_into(description, source, partial / "onnx")
                meta["runtime"] = description
            (partial / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            write_folder(folder, fill, exists="refuse")
        except FileExistsError:
            raise ModelError(f"{folder} already exists; model versions are never overwritten") from None
        return folder

    @classmethod
    def load(cls, folder: Path, *, device=None, runtime: str = "onnx", threads: int = 0) -> IntentClassifier:
        """Load a version folder, checking that it is complete and of a format this code reads.

        runtime "onnx" serves the version's exported file when it has one (on a CPU; a GPU serves
        PyTorch), checked against meta.json; "torch" always serves the PyTorch weights."""
        folder = Path(folder)
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelError(f"model folder {folder} is incomplete: missing {', '.join(missing)}. "
                             "Train a new version (python -m csbot train) or promote another one.")
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"model folder {folder}: cannot read meta.json/labels.json: {exc}") from None
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"model folder {folder}: expected format {FORMAT} v{FORMAT_VERSION}, found "
                             f"{meta.get('format')} v{meta.get('format_version')}; retrain with this csbot")
        if not isinstance(labels, list) or len(labels) != meta.get("n_labels"):
            raise ModelError(f"model folder {folder}: labels.json has {len(labels)} labels, "
                             f"meta.json says {meta.get('n_labels')}")
        if runtime not in RUNTIMES:
            raise SettingsError(f"runtime must be one of {', '.join(RUNTIMES)}; found {runtime!r}")
        acceptance = meta.get("acceptance", {})
        max_length = meta.get("max_length", 64)
        try:
            bank = load_arrays(str(folder / "bank.safetensors"))["bank"].astype(np.float32)
        except Exception as exc:  # a damaged file can raise almost anything from deep inside
            raise ModelError(f"model folder {folder}: bank.safetensors does not load "
                             f"({type(exc).__name__}: {exc})") from None
        net = onnx = None
        if meta.get("runtime") and onnx_runtime.serves(runtime, device):
            onnx = onnx_runtime.OnnxPass(folder / "onnx", meta["runtime"], threads=threads)  # ModelError if damaged
            tokenizer = Tokenizer.from_folder(folder / "encoder", max_length=max_length)
        else:
            from safetensors.torch import load_file

            from csbot.nlu.network import load_encoder

            try:
                net, tokenizer = load_encoder(folder / "encoder", len(labels))
                head = load_file(str(folder / "head.safetensors"))
            except Exception as exc:
                raise ModelError(f"model folder {folder}: weights do not load "
                                 f"({type(exc).__name__}: {exc})") from None
            if head.get("weight") is None or tuple(head["weight"].shape) != tuple(net.head.weight.shape):
                raise ModelError(f"model folder {folder}: head.safetensors does not fit {len(labels)} labels")
            net.head.load_state_dict(head)
        return cls(net, tokenizer, labels, temperature=meta["temperature"], threshold=meta["threshold"],
                   max_length=max_length, bank=bank, knn_k=acceptance.get("knn_k", KNN_K),
                   knn_weight=acceptance.get("knn_weight", KNN_WEIGHT), meta=meta, device=device, runtime=onnx,
                   dim=bank.shape[1], prefix=meta.get("input_prefix", ""))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax. Example: softmax([[0, 0]]) -> [[0.5, 0.5]]"""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
