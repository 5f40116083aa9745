"""The shop's language: every shipped language file has the same keys and placeholders as the
English one, a broken file is refused naming what is wrong, and the bot, the reply book, the
rate limit and the chat page speak the language the setting names."""

import shutil

import pytest
from conftest import DATA, HashingEncoder

from csbot.dialogue.replies import ReplyBook, load_shop_file, load_templates_file
from csbot.errors import SettingsError
from csbot.language import FOLDER, REFERENCE, Words, _read, differences, languages
from csbot.settings import load_settings


def test_every_language_has_every_key_with_the_same_placeholders():
    assert {"en", "zh"} <= set(languages())
    reference = _read(FOLDER / REFERENCE)
    assert {"bot", "ask", "chat", "staff", "admin"} <= {key.split(".")[0] for key in reference}
    for language in languages():
        texts = _read(FOLDER / language)
        assert differences(texts, reference) == [], language
        words = Words.load(language)
        assert all(isinstance(words[key], type(reference[key])) and words[key] for key in reference)


def test_a_language_file_that_does_not_match_is_refused_naming_the_key(tmp_path):
    shutil.copytree(FOLDER / "en", tmp_path / "en")
    shutil.copytree(FOLDER / "zh", tmp_path / "xx")
    broken = tmp_path / "xx" / "customer.yaml"
    text = broken.read_text(encoding="utf-8")
    broken.write_text(text.replace("{opening_hours}", "{hours}", 1).replace("  send:", "  sned:"), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"xx/ does not match en/: missing chat.send; unknown key "
                                            r"chat.sned; bot.fallback: placeholders \['hours'\]"):
        Words.load("xx", tmp_path)
    with pytest.raises(SettingsError, match="language must be one of en, xx; found 'fr'"):
        Words.load("fr", tmp_path)
    (tmp_path / "xx" / "customer.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "xx" / "more.yaml").write_text("chat:\n  send: 发\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="section 'chat' is already in customer.yaml"):
        Words.load("xx", tmp_path)


def test_the_setting_names_a_shipped_language():
    assert load_settings(environ={"CSBOT_LANGUAGE": "zh"}).language == "zh"
    with pytest.raises(SettingsError, match="language must be one of en, zh"):
        load_settings(environ={"CSBOT_LANGUAGE": "klingon"})


def test_a_chinese_shop_bot_speaks_chinese(store):
    from csbot.dialogue.answers import AnswerIndex
    from csbot.dialogue.bot import Bot
    from csbot.web.server import ChatLimits

    _, templates = load_templates_file(DATA / "templates.yaml")
    words = Words.load("zh")
    book = ReplyBook(templates, load_shop_file(DATA / "shop.yaml"), words)
    encoder = HashingEncoder()
    bot = Bot(store=store, replies=book, classifier=None, index=AnswerIndex(encoder, encoder=encoder.name, dim=encoder.dim))
    reply = bot.respond("asdf qwerty")
    assert reply.route == "fallback" and reply.text.startswith("抱歉，我没能理解您的问题")
    assert "{opening_hours}" not in reply.text and load_shop_file(DATA / "shop.yaml")["opening_hours"] in reply.text
    assert book.render("order_status", {}).text == words["ask.order_id"] and "订单号" in words["ask.order_id"]
    assert bot.hand_off(reply.conversation_id).text.startswith("已为您联系人工客服")
    limits = ChatLimits(per_conversation=1, per_client=100, words=words)
    limits.check("c1", "1.2.3.4")
    with pytest.raises(Exception, match="您发消息太快了"):
        limits.check("c1", "1.2.3.4")


def test_the_chat_page_is_labelled_in_the_shops_language(tmp_path):
    from csbot.service.engine import Engine
    from csbot.web.chat import build_chat
    from csbot.web.server import ChatLimits

    settings = load_settings(home=tmp_path, environ={"CSBOT_LANGUAGE": "zh"}, data_dir=str(DATA))
    engine = Engine(settings, encoder=HashingEncoder())
    engine.load_defaults(DATA)
    page = build_chat(engine, ChatLimits(per_conversation=10, per_client=10))
    shown = {str(c.get("props", {}).get(k)) for c in page.config["components"] for k in ("label", "value", "placeholder")}
    assert {"对话", "您的消息", "输入您的问题，按回车发送", "发送", "转人工客服"} <= shown
    assert not {"Conversation", "Your message", "Send", "Talk to a person"} & shown


def test_the_chinese_demo_shop_loads_with_the_variety_a_real_log_has(tmp_path):
    from conftest import ROOT

    from csbot.dialogue.entities import find_order_id, find_phone
    from csbot.importer import read_logs
    from csbot.service.engine import Engine
    from csbot.text import word_count

    folder = ROOT / "data" / "zh"
    engine = Engine(load_settings(home=tmp_path, environ={"CSBOT_LANGUAGE": "zh"}, data_dir=str(folder)),
                    encoder=HashingEncoder())
    summary = engine.load_defaults()
    assert summary["intents"] >= 25 and summary["examples"] >= 1500 and summary["answers"] >= 40
    texts = [r["text"] for r in read_logs(folder / "support_log.csv")]
    assert len(set(texts)) == len(texts)
    chinese = sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts)
    assert chinese >= 0.95 * len(texts)
    assert sum(word_count(t) <= 2 for t in texts) >= 40 and sum(len(t) >= 60 for t in texts) >= 60  # short and long
    assert sum(find_order_id(t) is not None for t in texts) >= 100 and sum(find_phone(t) is not None for t in texts) >= 10
    assert sum(any("a" <= ch.lower() <= "z" for ch in t) for t in texts) >= 100  # English and pinyin inside Chinese
    book = engine.reply_book()
    rendered = book.render("order_status", {"order_id": "202411230017"})
    assert book.words.language == "zh" and "202411230017" in rendered.text and "订单" in rendered.text
