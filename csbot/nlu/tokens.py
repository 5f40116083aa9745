"""Text to token arrays for ONNX Runtime, with the `tokenizers` library alone: the same ids as
the transformers tokenizer the model was trained with (its fast tokenizer is this library), but
without importing transformers, which imports torch.

    tokens = Tokenizer.from_folder(version / "encoder", max_length=64)
    ids, mask = tokens(["where is my order", "hi"])   # int64 arrays, padded to the longest
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as Backend

from csbot.errors import ModelError


class Tokenizer:
    """Pads to the longest text of a call and truncates at `max_length` tokens (special ones included)."""

    def __init__(self, backend: Backend, *, max_length: int, pad_id: int, pad_token: str):
        self.backend = Backend.from_str(backend.to_str())  # a copy: padding settings are per object
        self.backend.enable_truncation(max_length)
        self.backend.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self.max_length = max_length

    @classmethod
    def from_folder(cls, folder: Path, *, max_length: int) -> Tokenizer:
        """From a transformers tokenizer folder (tokenizer.json, tokenizer_config.json)."""
        folder = Path(folder)
        try:
            backend = Backend.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except Exception as exc:  # OSError, ValueError, or the tokenizers library's own Exception
            raise ModelError(f"{folder}: no fast tokenizer to load ({exc}); retrain, or serve with runtime torch") from None
        pad = config.get("pad_token", "[PAD]")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = backend.token_to_id(pad)
        if pad_id is None:
            raise ModelError(f"{folder}: the pad token {pad!r} is not in the tokenizer's vocabulary")
        return cls(backend, max_length=max_length, pad_id=pad_id, pad_token=pad)

    @classmethod
    def from_transformers(cls, tokenizer, *, max_length: int) -> Tokenizer:
        """From a loaded transformers fast tokenizer (training has one in hand)."""
        return cls(tokenizer.backend_tokenizer, max_length=max_length, pad_id=tokenizer.pad_token_id,
                   pad_token=tokenizer.pad_token)

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.backend.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64).reshape(len(encoded), -1)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64).reshape(len(encoded), -1)
        return ids, mask
