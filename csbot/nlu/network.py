"""The networks in PyTorch: the intent network (a transformer encoder, mean pooling, L2
normalisation and a linear head) as training fine-tunes it and the export (runtime.py) writes
it, and the answer encoder's pooled form, as embedder.py exports it.

The serving path does not import this module when a version has an ONNX export (intents.py).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from csbot.errors import SettingsError


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors the attention mask keeps, L2-normalised (as sentence-transformers does)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
    return nn.functional.normalize(pooled, dim=-1)


class IntentNet(nn.Module):
    """Encoder -> mean pool -> normalise -> linear head. Logits, not probabilities."""

    def __init__(self, encoder: nn.Module, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, n_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


class Pooled(nn.Module):
    """A sentence encoder as the answer index's export holds it: encoder -> mean pool -> normalise."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)


class Exportable(nn.Module):
    """The network as it is exported: both outputs of one pass, logits and the embedding."""

    def __init__(self, net: IntentNet):
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.net.embed(input_ids, attention_mask)
        return self.net.head(embedded), embedded


def load_base(name_or_path: str, n_labels: int) -> tuple[IntentNet, object]:
    """A fresh IntentNet on top of a base encoder, and its tokenizer."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        encoder = AutoModel.from_pretrained(name_or_path, dtype=torch.float32)  # fp32 master weights
    except OSError as exc:
        raise SettingsError(f"cannot load base model {name_or_path!r}: {exc}. Set base_model to a local "
                            "folder, or to a hub name with HF_HUB_OFFLINE=0 on a machine with access.") from None
    return IntentNet(encoder, n_labels), tokenizer


def load_encoder(folder, n_labels: int) -> tuple[IntentNet, object]:
    """A saved version's fine-tuned encoder under a fresh head (the caller loads the head's weights)."""
    encoder = AutoModel.from_pretrained(folder, dtype=torch.float32)
    return IntentNet(encoder, n_labels), AutoTokenizer.from_pretrained(folder)
