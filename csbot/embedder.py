"""The sentence encoder behind the answer index: text in, unit-length vectors out.

Two implementations of one callable, `encode(list[str]) -> np.ndarray`, so that retrieval.py sees
neither (and tests can pass a small fake instead):

- `OnnxSentenceEncoder`, what serves by default: the sentence-transformers model exported once to
  ONNX (mean pooling and normalisation inside the graph) into the home's cache, keyed by the
  hash of the model's weights, and run by ONNX Runtime. Its vectors equal PyTorch's to about
  1e-6, so an index built by either serves with either.
- `SentenceEncoder`: sentence-transformers on PyTorch, for `runtime = "torch"`, a GPU, or a model
  whose pooling the export does not reproduce.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np

from csbot import runtime as onnx_runtime
from csbot.errors import ModelError, SettingsError

EXPORT_VERSION = 1  # bump when the exported graph changes: the cache key includes it
OUTPUTS = ("embedding",)


class SentenceEncoder:
    """Loads a sentence-transformers model once; calling it embeds a batch of texts."""

    def __init__(self, name: str, *, path: str, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise SettingsError(f"cannot load retrieval model {name!r} from {path!r}: {exc}") from None
        self.name = name
        self.runtime_name = f"pytorch {device}"
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


class OnnxSentenceEncoder:
    """The same model as `SentenceEncoder`, exported once into `cache_dir` and run by ONNX Runtime.

    Raises ModelError when the model is not a mean-pooled, normalised sentence-transformers
    folder (the caller then serves it with `SentenceEncoder`)."""

    def __init__(self, name: str, *, path: str, cache_dir: Path, threads: int = 0):
        from transformers import AutoTokenizer

        self.name = name
        self.max_length = _max_length(Path(path))
        folder, description = cached_export(Path(path), Path(cache_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.session = onnx_runtime.OnnxPass(folder, description, threads=threads)
        self.dim = int(description["dim"])
        self.runtime_name = f"onnxruntime {description['quantization']}, {self.session.threads} threads"

    def __call__(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            out[chunk] = self.session(batch["input_ids"], batch["attention_mask"])[0]
        return out


def cached_export(path: Path, cache_dir: Path) -> tuple[Path, dict]:
    """The model's ONNX export in `cache_dir/<model>-<weights hash>/`, made on first use.

    Made in a folder of its own and renamed into place, so a crash leaves no half export and two
    processes exporting at once both end up using one complete folder."""
    _check_pooling(path)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{path} has no model.safetensors to export")
    key = f"{onnx_runtime.sha256(weights)[:16]}-e{EXPORT_VERSION}"
    folder = cache_dir / f"{path.name}-{key}"
    meta = folder / "meta.json"
    if meta.is_file():
        return folder, json.loads(meta.read_text(encoding="utf-8"))
    import torch
    from transformers import AutoModel, AutoTokenizer

    from csbot.intents import mean_pool

    class Pooled(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool(hidden, attention_mask)

    encoder = AutoModel.from_pretrained(path, dtype=torch.float32)
    example = AutoTokenizer.from_pretrained(path)(["a short example message", "hi"], padding=True, return_tensors="pt")
    work = cache_dir / f".{folder.name}.{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        onnx_runtime.export(Pooled(encoder), example, work / "model.onnx", outputs=OUTPUTS)
        description = {**onnx_runtime.describe(work / "model.onnx", quantization="none", outputs=OUTPUTS),
                       "format": "csbot-encoder-export", "source": str(path), "weights_sha256_16": key,
                       "dim": int(encoder.config.hidden_size)}
        (work / "meta.json").write_text(json.dumps(description, indent=2), encoding="utf-8")
        try:
            work.rename(folder)
        except OSError:  # another process finished first: use its export
            if not meta.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder, json.loads(meta.read_text(encoding="utf-8"))


def _check_pooling(path: Path) -> None:
    """Only mean pooling then normalisation is reproduced by the export; say so for anything else."""
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a sentence-transformers folder the export understands ({exc})") from None
    if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ModelError(f"{path}: the export reproduces Transformer -> mean Pooling -> Normalize; found "
                         f"{modules} with {pooling}")


def _max_length(path: Path) -> int:
    """sentence-transformers' max_seq_length for the folder (256 for all-MiniLM-L6-v2)."""
    try:
        return int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256
