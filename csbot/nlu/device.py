"""Where models compute: the `device` setting resolved to "cpu" or "cuda".

torch is imported only on a machine with an NVIDIA driver. A CPU-only server, which serves on
ONNX Runtime, so never loads it (measured here: about 220 MB of memory and 2 s at start).
"""

from __future__ import annotations

from pathlib import Path

from csbot.errors import SettingsError


def has_nvidia_driver() -> bool:
    """Whether the kernel has an NVIDIA driver loaded: without one, CUDA cannot be there."""
    return Path("/proc/driver/nvidia").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def device_kind(setting: str) -> str:
    """auto -> "cuda" when torch sees a GPU, else "cpu". Asking for cuda without one is an error.

    Example: device_kind("auto") on a machine without a GPU -> "cpu" (torch not imported)"""
    if setting == "cpu" or (setting == "auto" and not has_nvidia_driver()):
        return "cpu"
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device 'cuda' was asked for, but torch sees no GPU; use --device auto or cpu")
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_device(setting: str):
    """The torch.device for `setting` (training and the PyTorch runtime)."""
    import torch

    return torch.device(device_kind(setting))
