"""Serving tokenises with the `tokenizers` library alone (no transformers, no torch): it must give
exactly the ids and masks of the transformers tokenizer the model was trained with."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from csbot.errors import ModelError
from csbot.nlu.basemodels import resolve_model_path
from csbot.nlu.tokens import Tokenizer
from csbot.settings import DEFAULT_BASE_MODEL

TEXTS = ["where is my parcel BB-123456", "hi", "Ça coûte combien ? Größe XL, bitte!", "我的订单在哪里？",
         "it's   BROKEN!!! 😡😡", "return\tthe lamp\nplease", "a " * 100,
         "I ordered the oak dining table three weeks ago and the tracking page has said in transit ever since"]


@pytest.mark.parametrize("max_length", [64, 8])
def test_the_same_ids_as_the_transformers_tokenizer(max_length):
    path = resolve_model_path(DEFAULT_BASE_MODEL)
    reference = AutoTokenizer.from_pretrained(path)
    expected = reference(TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    for tokens in (Tokenizer.from_folder(path, max_length=max_length),
                   Tokenizer.from_transformers(reference, max_length=max_length)):
        ids, mask = tokens(TEXTS)
        assert ids.dtype == mask.dtype == np.int64
        np.testing.assert_array_equal(ids, expected["input_ids"])
        np.testing.assert_array_equal(mask, expected["attention_mask"])
    one_ids, _ = Tokenizer.from_folder(path, max_length=max_length)(["hi"])
    assert one_ids.shape == (1, 3)  # [CLS] hi [SEP]: padded to the longest of the call only


def test_a_folder_without_a_fast_tokenizer_is_refused(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ModelError, match="no fast tokenizer"):
        Tokenizer.from_folder(tmp_path, max_length=64)
