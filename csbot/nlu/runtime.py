"""The serving runtime: an encoder pass (token ids in, arrays out) exported from PyTorch to ONNX
and run by ONNX Runtime, with int8 dynamic quantisation where it keeps accuracy.

Measured on this 2-core CPU, one short message through MiniLM-L6 on 2 threads: PyTorch 22 ms,
ONNX Runtime fp32 3 ms, int8 about 1 ms (docs/benchmarks.md has the end-to-end
figures). PyTorch stays the training path, and serves versions that have no export.

Dynamic quantisation scales activations per batch, so an int8 pass over a batch of messages
gives each one slightly different numbers than a pass over it alone (cosine about 0.99).

An exported file is described by a small dict that the model version's meta.json carries
(`describe`) and that is checked before a session is made from it (`check`):

    {"runtime": "onnxruntime", "file": "model.int8.onnx", "sha256": "...", "quantization": "int8-dynamic",
     "opset": 17, "inputs": ["input_ids", "attention_mask"], "outputs": ["logits", "embedding"],
     "exported_with": {"torch": "2.13.0", "onnxruntime": "1.32.0"}}

Threads: a session computes with `threads` intra-op threads that sleep, not spin, when idle, so
the web server's request threads (the store, the HTTP work) get the cores between passes.

This module knows no model, label or threshold; intents.py and embedder.py export their networks
through it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from csbot.errors import ModelError

OPSET = 17
INPUTS = ("input_ids", "attention_mask")
QUANTIZATIONS = ("none", "int8-dynamic", "int8-feed-forward")
GROUP_ROWS = 64  # the most rows of one length a pass runs when a batch mixes lengths


def available() -> bool:
    """Whether ONNX Runtime can be imported here (it is in requirements.txt; a trimmed install may lack it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def serves(runtime: str, device) -> bool:
    """Whether a model is served here by ONNX Runtime: the runtime setting says onnx, it computes
    on a CPU (a GPU serves PyTorch), and onnxruntime is installed.

    Example: serves("onnx", "cpu") -> True; serves("onnx", "cuda") -> False"""
    return runtime == "onnx" and getattr(device, "type", device or "cpu") == "cpu" and available()


def default_threads() -> int:
    """Intra-op threads for a session when the setting says 0: half the cores, at most 4, since
    the two encoders' passes run at the same time (bot.py); beyond 4 a short message gains
    nothing. Example: a 2-core machine -> 1 (one core for each encoder)"""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def one_blas_thread() -> None:
    """Run numpy's matrix products on one thread from now on, in this process: a serving process
    multiplies small matrices (a message against the answers and the training messages), where a
    second BLAS thread gains nothing, and OpenBLAS's idle workers spin after every call, taking a
    core from the encoders. Measured with benchmarks/load.py on this 2-core machine, 16 clients,
    encoder passes already unpadded: 118 requests/s with numpy's default of 2 threads, 179 with 1."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def export(module, example: dict, path: Path, *, outputs: tuple[str, ...]) -> Path:
    """Export a PyTorch module taking (input_ids, attention_mask) to an ONNX file, batch and
    sequence length dynamic. Written to `<path>.partial` first, then renamed.

    Example: export(net, tokenizer(["hi"], return_tensors="pt"), Path("m.onnx"), outputs=("logits",))"""
    import torch

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    axes.update({name: {0: "batch"} for name in outputs})
    module = module.eval()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes the dynamic axes take care of
        # The TorchScript exporter: it handles BERT-style encoders in seconds and needs no onnxscript.
        torch.onnx.export(module, (example["input_ids"].cpu(), example["attention_mask"].cpu()), str(partial),
                          input_names=list(INPUTS), output_names=list(outputs), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    os.replace(partial, path)
    return path


def quantize_int8(source: Path, target: Path, *, feed_forward_only: bool = False) -> Path:
    """Dynamic int8 quantisation of the MatMul weights (activations stay float, scaled per batch):
    all of them, or only the transformer's feed-forward layers (two thirds of the weights and of
    the work; attention and the head stay fp32). On the demo data's held-out split, all: 97.9%,
    feed-forward only: 98.4%, fp32: 98.4%, at 1.4 / 2.5 / 4.8 ms a message on one thread."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = []
    if feed_forward_only:
        graph = onnx.load(str(source)).graph
        products = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")]
        if not any(_feed_forward(name) for name in products):
            raise ModelError(f"{source}: no feed-forward layers (…/intermediate/…, …/output/dense/…) to quantise")
        exclude = [name for name in products if not _feed_forward(name)]
        exclude += [f"{n.name}_MatMul" for n in graph.node if n.op_type == "Gemm"]  # a Gemm the quantiser splits
    partial = Path(target).with_name(Path(target).name + ".partial")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it warns on the root logger that a pre-processing step exists
    try:
        # per channel: one scale per output column kept 97.9% of the demo's held-out accuracy, per
        # tensor only 94.3% (fp32: 98.4%)
        quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=exclude)
    finally:
        root.setLevel(level)
    os.replace(partial, target)
    return Path(target)


def _feed_forward(node: str) -> bool:
    """Example: "/encoder/encoder/layer.0/intermediate/dense/MatMul" -> True; ".../attention/output/dense/MatMul" -> False"""
    return "/intermediate/" in node or ("/output/dense/" in node and "/attention/" not in node)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path: Path, *, quantization: str, outputs: tuple[str, ...]) -> dict:
    """What a model folder's meta.json records about an exported file (see the module docstring)."""
    import onnxruntime
    import torch

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; found {quantization!r}")
    return {"runtime": "onnxruntime", "file": Path(path).name, "sha256": sha256(path),
            "quantization": quantization, "opset": OPSET, "inputs": list(INPUTS), "outputs": list(outputs),
            "exported_with": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}}


def copy_into(description: dict, source: Path, folder: Path) -> None:
    """Copy the described file from folder `source` into `folder` (a model version being written)."""
    shutil.copyfile(Path(source) / description["file"], Path(folder) / description["file"])


class OnnxPass:
    """One exported network, ready to run: call it with int64 token arrays, get its outputs in order.

    Example: OnnxPass(folder, description, threads=2)(ids, mask) -> [logits, embedding]"""

    def __init__(self, folder: Path, description: dict, *, threads: int = 0):
        import onnxruntime as ort

        path = check(folder, description)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for damaged graphs
            raise ModelError(f"{path} does not load in ONNX Runtime ({type(exc).__name__}: {exc}); "
                             "retrain, or promote another version") from None
        found = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        if found != (list(INPUTS), list(description["outputs"])):
            raise ModelError(f"{path}: expected inputs {list(INPUTS)} and outputs {description['outputs']}, "
                             f"found {found[0]} and {found[1]}; retrain to export it again")
        self.threads = options.intra_op_num_threads
        self.quantization = description["quantization"]

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
        """The outputs for every row, computed in groups of rows of one true length with the padding
        cut off: a batch padded to its longest message costs up to twice as much per message as
        these groups (measured: 5.1 against 2.3 ms a message for 16 support-log messages, int8 on
        one thread), and int8 activations are then scaled over real tokens only."""
        ids, mask = np.asarray(input_ids, dtype=np.int64), np.asarray(attention_mask, dtype=np.int64)
        lengths = mask.sum(axis=1)  # tokenizers pad on the right: a row's real tokens come first
        if len(ids) == 0 or (lengths == lengths[0]).all():
            width = max(int(lengths.max(initial=1)), 1)
            return self._run(ids[:, :width], mask[:, :width])
        outputs: list[np.ndarray] = []
        for length in np.unique(lengths):
            rows, width = np.flatnonzero(lengths == length), max(int(length), 1)
            for start in range(0, len(rows), GROUP_ROWS):
                group = rows[start:start + GROUP_ROWS]
                found = self._run(ids[group, :width], mask[group, :width])
                if not outputs:
                    outputs = [np.zeros((len(ids), *o.shape[1:]), dtype=o.dtype) for o in found]
                for out, part in zip(outputs, found):
                    out[group] = part
        return outputs

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})


def check(folder: Path, description: dict) -> Path:
    """The described file in `folder`, after checking it is there, whole and of a kind this code runs."""
    for key in ("runtime", "file", "sha256", "quantization", "outputs"):
        if key not in description:
            raise ModelError(f"{folder}: the runtime description lacks {key!r}; retrain to export again")
    if description["runtime"] != "onnxruntime" or description["quantization"] not in QUANTIZATIONS:
        raise ModelError(f"{folder}: expected an onnxruntime export ({', '.join(QUANTIZATIONS)}), found "
                         f"{description['runtime']!r} / {description['quantization']!r}")
    path = Path(folder) / description["file"]
    if not path.is_file():
        raise ModelError(f"{path} is missing; the version folder is incomplete. Retrain or promote another version")
    found = sha256(path)
    if found != description["sha256"]:
        raise ModelError(f"{path} is damaged: sha256 {found[:12]}…, meta.json says {description['sha256'][:12]}…. "
                         "Retrain, or promote another version")
    return path
