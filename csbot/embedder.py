"""The sentence encoder behind the answer index: text in, unit-length vectors out.

A thin wrapper over sentence-transformers so that retrieval.py only sees a callable
`encode(list[str]) -> np.ndarray` and tests can pass a small fake instead.
"""

from __future__ import annotations

import numpy as np

from csbot.errors import SettingsError


class SentenceEncoder:
    """Loads a sentence-transformers model once; calling it embeds a batch of texts."""

    def __init__(self, name: str, *, path: str, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise SettingsError(f"cannot load retrieval model {name!r} from {path!r}: {exc}") from None
        self.name = name
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
