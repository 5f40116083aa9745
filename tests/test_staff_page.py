"""The staff page, served in-process behind Gradio's login: its endpoints through gradio_client as a
logged-in staff member (and refused to strangers), and the page itself in Debian's Chromium."""

from __future__ import annotations

import html
import inspect
import re
import urllib.error
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from conftest import DATA, HashingEncoder, free_port, logs_in, open_row
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from playwright.sync_api import expect

from csbot.service.auth import Accounts
from csbot.service.engine import Engine
from csbot.settings import load_settings
from csbot.store import Store, client_key
from csbot.web.common import guarded
from csbot.web.staff import build_staff

PASSWORD = "a long staff password"
API_NAMES = {"inbox", "open_item", "label", "attach_answer", "new_answer", "dismiss", "take_over", "live",
             "open_conversation", "take_over_conversation", "staff_reply", "hand_back", "answers", "open_answer",
             "blank_answer", "save_answer", "delete_answer", "template_intents", "templates", "preview_template",
             "save_templates", "import_preview", "import_logs", "import_history", "discover_refresh",
             "discover_status", "discover_start", "open_proposal", "proposal_rename", "proposal_merge",
             "proposal_split", "proposal_reject", "proposal_accept", "pick_example", "proposal_move", "gaps",
             "open_gap", "answer_gap", "dismiss_sender", "wrong_answer"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A real engine on a file database (Gradio's worker threads share it), two accounts, the page served."""
    home = tmp_path_factory.mktemp("staff")
    settings = load_settings(home=home / "home", environ={}, data_dir=str(DATA))
    engine = Engine(settings, store=Store.open(home / "csbot.db"), encoder=HashingEncoder())
    engine.load_defaults(DATA)
    accounts = Accounts(engine.store)
    accounts.create("sam", PASSWORD, role="staff")
    accounts.create("ada", PASSWORD, role="admin")
    page = build_staff(engine, accounts)
    page.queue()
    _, url, _ = page.launch(prevent_thread_lock=True, auth=lambda name, password: logs_in(accounts, name, password), server_name="127.0.0.1",
                            server_port=free_port(), quiet=True)
    yield engine, page, url
    page.close()


@pytest.fixture(scope="module")
def sam(site) -> Client:
    return Client(site[2], auth=("sam", PASSWORD), verbose=False)


def flagged(engine: Engine, text: str) -> int:
    """A customer message that lands in the inbox (no words in common with any answer: a fallback)."""
    reply = engine.bot.respond(text, channel="web")
    assert reply.inbox == "fallback", reply
    return next(i["id"] for i in engine.store.inbox() if i["text"] == text)


def open_ids(table: dict) -> list[int]:
    return [int(row[0]) for row in table["data"]]


def test_every_event_is_guarded_named_and_sees_the_request(site):
    probe = guarded(None, "staff")(lambda request: None)
    fns = list(site[1].fns.values())
    assert {f.api_name for f in fns} == API_NAMES
    for f in fns:
        assert f.fn.__code__ is probe.__code__, f"{f.api_name} is not wrapped in guarded()"
        assert inspect.signature(f.fn).parameters["request"].annotation is gr.Request, f.api_name


def test_strangers_cannot_connect_or_call(site):
    url = site[2]
    with pytest.raises(AuthenticationError):
        Client(url, verbose=False)
    with pytest.raises(Exception, match="(?i)login|auth|credentials|401"):
        Client(url, auth=("sam", "not the password!"), verbose=False)
    request = urllib.request.Request(f"{url}gradio_api/call/dismiss", data=b'{"data": [1]}',
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code in (401, 403)


def test_inbox_lists_open_items_with_their_trace(site, sam):
    engine = site[0]
    message_id = flagged(engine, "my cat ate the invoice")
    table, *_ = sam.predict(api_name="/inbox")
    row = next(r for r in table["data"] if int(r[0]) == message_id)
    assert row[2:4] == ["fallback", "my cat ate the invoice"] and row[7] == "1"


def test_label_stores_a_training_example_by_its_author(site, sam):
    engine = site[0]
    message_id = flagged(engine, "zebra parcel question please")
    table, _, selected, note, *_ = sam.predict(message_id, "order_status", api_name="/label")
    assert ("zebra parcel question please", "order_status") in engine.store.examples()
    assert engine.store.db.rows("SELECT source FROM examples WHERE text = ?",
                              ["zebra parcel question please"]) == [{"source": "staff:sam"}]
    assert message_id not in open_ids(table) and selected is None and "Labelled" in note
    with pytest.raises(AppError, match="not in the list of choices"):
        sam.predict(flagged(engine, "quokka question"), "nonsense", api_name="/label")


def test_a_new_answer_is_used_at_once(site, sam):
    engine = site[0]
    message_id = flagged(engine, "are there vouchers for birthdays")
    table, *_ = sam.predict(message_id, "vouchers", "Yes: vouchers from £10 at the till.", api_name="/new_answer")
    assert message_id not in open_ids(table)
    assert engine.store.message(message_id)["inbox_status"] == "answered"
    reply = engine.bot.respond("any vouchers for birthdays?")
    assert (reply.route, reply.text) == ("answer", "Yes: vouchers from £10 at the till.")
    with pytest.raises(AppError, match="already an answer 'vouchers'"):  # no silent overwrite
        sam.predict(flagged(engine, "llama question"), "vouchers", "Other text", api_name="/new_answer")


def test_attach_adds_the_wording_to_an_answer(site, sam):
    engine = site[0]
    message_id = flagged(engine, "pretty paper around the teapot")
    wrapping = next(a for a in engine.store.answers() if a["key"] == "gift_wrapping")
    table, *_ = sam.predict(message_id, wrapping["id"], api_name="/attach_answer")
    assert message_id not in open_ids(table)
    assert "pretty paper around the teapot" in [q["question"] for q in engine.store.questions(wrapping["id"])]
    assert engine.bot.respond("pretty paper around the teapot").answer_id == wrapping["id"]


def test_dismiss_closes_the_item(site, sam):
    engine = site[0]
    message_id = flagged(engine, "blorp")
    table, *_ = sam.predict(message_id, api_name="/dismiss")
    assert message_id not in open_ids(table)
    assert engine.store.message(message_id)["inbox_status"] == "dismissed"


def test_a_curated_answer_marked_wrong_is_not_given_for_that_wording_again(site, sam):
    engine = site[0]
    wording = "can you wrap my sandwich"  # 0.77 to "Can you wrap my present": a near copy, the wrong answer
    reply = engine.bot.respond(wording, channel="web")
    wrapping = next(a for a in engine.store.answers() if a["key"] == "gift_wrapping")
    assert reply.answer_id == wrapping["id"]
    bot_reply = next(m for m in engine.store.messages(reply.conversation_id) if m["role"] == "bot")
    engine.store.rate(reply.conversation_id, bot_reply["id"], -1)  # the customer's thumbs-down
    message_id = next(i["id"] for i in engine.store.inbox() if i["text"] == wording)
    table, _, _, note, *_ = sam.predict(message_id, api_name="/wrong_answer")
    assert "no longer give gift&#95;wrapping" in note and message_id in open_ids(table)  # open, to attach elsewhere
    assert engine.bot.respond(wording).answer_id != wrapping["id"]
    assert engine.bot.respond("Can you wrap my present").answer_id == wrapping["id"]
    with pytest.raises(AppError, match="gave no curated answer"):
        sam.predict(flagged(engine, "quagga question"), api_name="/wrong_answer")


def test_live_conversation_take_over_reply_and_hand_back(site):
    engine = site[0]
    ada = Client(site[2], auth=("ada", PASSWORD), verbose=False)  # an admin may do what staff may
    cid = engine.bot.respond("hello, a question about my sofa", channel="web").conversation_id
    table, log = ada.predict(cid, "Hi, Ada here <b>now</b>", 1, api_name="/staff_reply")[1:]
    assert engine.store.conversation(cid)["owner"] == "human"
    assert cid in [row[0] for row in table["data"]]
    assert log[-1]["content"][0]["text"] == "ada (staff): Hi, Ada here &lt;b&gt;now&lt;/b&gt;"
    assert engine.bot.respond("thanks, it is the blue one", cid).route == "human"
    table, log = ada.predict(cid, 1, api_name="/live")  # what the page's timer polls
    assert [r for r in table["data"] if r[0] == cid][0][2:5:2] == ["human (ada)", "customer: thanks, it is the blue one"]
    assert log[-1] == {"role": "user", "metadata": None, "options": None,
                       "content": [{"type": "text", "text": "thanks, it is the blue one"}]}
    ada.predict(cid, 1, api_name="/hand_back")
    assert engine.store.conversation(cid)["owner"] == "bot"
    assert engine.bot.respond("and delivery?", cid).route != "human"


def test_templates_preview_and_refuse_a_broken_one(site, sam):
    engine = site[0]
    before = engine.store.templates()["greeting"]
    preview = sam.predict("greeting", "Hello from {shop_name}\nHi {nope}", api_name="/preview_template")
    assert preview.splitlines()[0] == "1. Hello from Test Shop"
    assert preview.splitlines()[1].startswith("2. ✗ unknown slot {nope}; known slots:")
    with pytest.raises(AppError, match=r"variant 2: unknown slot \{nope\}"):
        sam.predict("greeting", "Hello from {shop_name}\nHi {nope}", api_name="/save_templates")
    assert engine.store.templates()["greeting"] == before
    assert "2 variant(s)" in sam.predict("greeting", "Hi!\nHello from {shop_name}", api_name="/save_templates")
    assert engine.store.templates()["greeting"] == ["Hi!", "Hello from {shop_name}"]
    about, variants, _ = sam.predict("greeting", api_name="/templates")
    assert variants == "Hi!\nHello from {shop_name}"


def test_import_previews_problems_and_imports_a_clean_log(site, sam, tmp_path: Path):
    engine = site[0]
    broken = tmp_path / "broken.csv"
    broken.write_text("text,intent\nwhere is my rug,order_status\n,order_status\nhi there,\n", encoding="utf-8")
    status, counts, rows, _ = sam.predict(handle_file(str(broken)), api_name="/import_preview")
    status = html.unescape(status)  # the page shows it escaped, as Markdown
    assert status.startswith("**broken.csv: 2 problem(s)")  # the upload's name, not the server's temp path
    assert "- line 3: text is empty" in status and "- line 4: intent '' is not an intent name" in status
    assert rows["data"] == [] and counts["data"] == []
    with pytest.raises(AppError, match="line 3: text is empty"):  # the import checks again
        sam.predict(handle_file(str(broken)), api_name="/import_logs")

    clean = tmp_path / "clean.csv"
    clean.write_text("text,intent\nwhere is my rug,order_status\nhow do I send the lamp back,return_item\n"
                     "is the rug shipped,order_status\n", encoding="utf-8")
    status, counts, rows, _ = sam.predict(handle_file(str(clean)), api_name="/import_preview")
    assert "3 rows, no problems" in status and len(rows["data"]) == 3
    assert counts["data"] == [["order_status", "2", "yes"], ["return_item", "1", "yes"]]
    assert "3 new examples" in sam.predict(handle_file(str(clean)), api_name="/import_logs")
    assert ("how do I send the lamp back", "return_item") in engine.store.examples()


def test_answers_tab_saves_searches_and_deletes(site, sam):
    engine = site[0]
    table, choices, answer_id, key, questions, text, note = sam.predict(
        None, "opening_hours", "When are you open?\nWhat are your hours", "9 to 5, Monday to Friday.", "",
        api_name="/save_answer")
    assert key["value"] == "opening_hours" and questions == "When are you open?\nWhat are your hours"
    assert ["opening_hours", answer_id] in choices["choices"]  # the inbox can attach to it now
    assert engine.bot.respond("what are your hours").text == "9 to 5, Monday to Friday."
    assert [r[1] for r in sam.predict("HOURS", api_name="/answers")["data"]] == ["opening_hours"]
    with pytest.raises(AppError, match="already an answer 'opening_hours'"):
        sam.predict(None, "opening_hours", "x", "y", "", api_name="/save_answer")
    table = sam.predict(answer_id, "", api_name="/delete_answer")[0]
    assert "opening_hours" not in [r[1] for r in table["data"]]
    assert engine.bot.respond("what are your hours").answer_id != answer_id


def log_in(browser, url: str):
    page = browser.new_page()
    page.goto(url)
    page.get_by_label("username").fill("sam")
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    return page


def test_staff_see_hostile_text_literally_and_answer_it(site, browser):
    engine, _, url = site
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b> [link](javascript:alert(1)) wombat'
    message_id = flagged(engine, hostile)
    page = log_in(browser, url)
    cell = page.get_by_role("gridcell", name="wombat")
    expect(cell).to_have_text(hostile, timeout=20_000)

    cell.click()
    expect(page.get_by_text(f"Message {message_id} ·")).to_be_visible()
    expect(page.locator("blockquote")).to_have_text(hostile)
    assert page.locator("img[src='x'], a[href^='javascript']").count() == 0
    assert page.locator("b", has_text="bold").count() == 0
    expect(page.get_by_label("New answer key")).to_have_value("img_src_x_onerror_document_title")
    page.get_by_label("New answer key").fill("wombat_answer")
    page.get_by_label("New answer text").fill("We do not sell wombats.")
    page.get_by_role("button", name="Save as a new answer").click()
    expect(page.get_by_text("Saved answer wombat_answer")).to_be_visible()
    expect(page.get_by_role("gridcell", name="wombat")).to_have_count(0)
    assert engine.store.message(message_id)["inbox_status"] == "answered"
    assert page.title() != "pwned"
    page.close()


def test_take_over_shows_new_customer_messages_and_import_needs_a_clean_file(site, browser, tmp_path: Path):
    engine, _, url = site
    message_id = flagged(engine, "numbat enquiry")
    cid = engine.store.message(message_id)["conversation_id"]
    page = log_in(browser, url)
    page.get_by_role("gridcell", name="numbat enquiry").click()
    expect(page.get_by_text(f"Message {message_id} ·")).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Take over the conversation").click()
    transcript = page.get_by_label("chatbot conversation")
    expect(transcript).to_contain_text("sam joined the chat")
    engine.bot.respond("<i>still</i> there?", cid)
    expect(page.get_by_test_id("user").last).to_have_text("<i>still</i> there?", timeout=10_000)  # the timer
    page.get_by_label("Your reply to the customer").fill("Yes, Sam here.")
    page.get_by_role("button", name="Send").click()
    expect(transcript).to_contain_text("sam (staff): Yes, Sam here.")

    page.get_by_role("tab", name="Import").click()
    broken, clean = tmp_path / "broken.csv", tmp_path / "clean.csv"
    broken.write_text("text,intent\nwhere is my rug,order_status\n,order_status\n", encoding="utf-8")
    clean.write_text("text,intent\nwhere is my rug,order_status\n", encoding="utf-8")
    upload, button = page.locator("#log-upload"), page.get_by_role("button", name="Import", exact=True)
    upload.locator("input[type=file]").set_input_files(str(broken))
    expect(page.get_by_text("line 3: text is empty")).to_be_visible()
    expect(button).to_be_disabled()
    upload.get_by_label("Clear").click()
    upload.locator("input[type=file]").set_input_files(str(clean))
    expect(page.get_by_text("1 rows, no problems")).to_be_visible()
    expect(button).to_be_enabled()
    page.close()


def test_from_raw_history_to_a_reviewed_intent_in_the_browser(site, browser):
    """Import the demo history, run discovery, merge two proposals, rename one, accept it: the next
    training run's examples hold the new intent with every example of both proposals."""
    engine, _, url = site
    history = Path(__file__).parent.parent / "data" / "history" / "conversations.jsonl"
    page = log_in(browser, url)
    page.get_by_role("tab", name="Import").click()
    page.locator("#history-upload input[type=file]").set_input_files(str(history))
    page.get_by_role("button", name="Import history").click()
    expect(page.get_by_text("Imported 645 customer turns")).to_be_visible(timeout=60_000)
    assert "<email>" in " ".join(t["text"] for t in engine.store.history_turns())  # scrubbed on the way in

    page.get_by_role("tab", name="Discover").click()
    page.get_by_label("Imported history").click()
    page.get_by_role("option", name="conversations.jsonl").click()
    page.get_by_role("button", name="Run discovery").click()
    expect(page.locator("#discovery-status")).to_contain_text("Discovery done", timeout=120_000)
    first, second = engine.store.proposals()[-2:]  # the two smallest, whether or not they overlap an intent
    expect(page.get_by_role("gridcell", name=first["name"], exact=True)).to_be_visible(timeout=30_000)
    open_row(page, first["name"], shown_in=page.get_by_label("Name (the new intent's)"))
    page.get_by_label("Merge proposal id into this one").fill(str(second["id"]))
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_text(f"Proposal {second['id']} merged into this one.")).to_be_visible()
    page.get_by_label("Name (the new intent's)").fill("gift wrapping")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Renamed to gift wrapping.")).to_be_visible()
    example = engine.store.proposal(first["id"])["turns"][0]
    page.get_by_role("gridcell", name=example["text"], exact=True).first.click()
    expect(page.get_by_text("The conversation behind it")).to_be_visible()
    expect(page.get_by_label("Picked example")).to_have_value(example["key"])
    page.get_by_label("Draft replies, one per line").fill("Yes, gift wrap is £3.50: tick it at checkout.")
    page.get_by_label("Add to existing intent, or make a new one").click()
    page.get_by_role("option", name="(a new intent)").click()
    page.get_by_role("button", name="Accept").click()
    size = first["size"] + second["size"]
    expect(page.get_by_text(f"Accepted as intent gift_wrapping with {size} examples")).to_be_visible()
    page.close()

    trained_on = [text for text, intent in engine.store.examples() if intent == "gift_wrapping"]
    merged = {t["text"] for t in engine.store.proposal(first["id"])["turns"]}
    assert len(merged) <= len(trained_on) and set(trained_on) == merged  # what the next run trains on
    assert engine.store.templates()["gift_wrapping"] == ["Yes, gift wrap is £3.50: tick it at checkout."]
    done = [a["action"] for a in engine.store.audit_log(actor="sam")]
    assert {"import_history", "discover", "proposal_merge", "proposal_rename", "proposal_accept"} <= set(done)


def test_a_gap_topic_is_answered_once_in_the_browser(site, browser):
    engine, _, url = site
    asked = ["quokka delivery to mars", "quokka delivery to mars please", "any quokka delivery to mars?"]
    ids = [flagged(engine, text) for text in asked]
    page = log_in(browser, url)
    page.get_by_role("tab", name="Gaps").click()
    page.get_by_role("gridcell", name=re.compile("quokka delivery to mars")).click()  # its most typical message
    expect(page.get_by_text(re.compile(r"\d+ message\(s\)"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("any quokka delivery to mars?")).to_be_visible()  # the other tests' fallbacks may join
    page.get_by_label("New answer key").last.fill("quokka_mars")
    page.get_by_label("Answer (for the whole topic)").fill("We do not deliver quokkas to Mars.")
    page.get_by_role("button", name="Answer the whole topic").click()
    expect(page.get_by_text(re.compile(r"Saved answer quokka_mars with \d+ phrasing\(s\)"))).to_be_visible()
    page.close()
    for text in asked:
        assert engine.bot.respond(text, channel="web").route == "answer"
    assert {engine.store.message(i)["inbox_status"] for i in ids} == {"answered"}


@pytest.mark.parametrize("confidence, similarity, reason", [
    (1.0, 0.41, "the message is unlike the messages it was trained on"),  # sure: the similarity fell short
    (0.3, 0.92, "the model was unsure between intents"),
    (0.7, 0.55, "neither sure enough (probability 0.70) nor close enough"),
])
def test_the_inbox_says_why_the_model_declined_in_words(confidence, similarity, reason):
    from csbot.web.staff.inbox import inbox_rows, trace_markdown, why

    trace = {"intent": "order_status", "confidence": confidence, "score": 2.31, "threshold": 3.45,
             "accepted": False, "similarity": similarity, "hits": [{"answer_id": 2, "score": 0.31}],
             "answer_threshold": 0.6, "model_version": "v1"}
    words = why(trace)
    assert reason in words
    assert "best guess order_status scored 2.31, below the threshold 3.45" in words
    assert "The best curated answer matched 0.31; it needed 0.60, so the bot fell back." in words
    item = {"id": 7, "created_at": "2026-12-01T10:00:00", "inbox": "fallback", "text": "hi",
            "reply_route": "fallback", "reply_trace": trace, "reply_text": "Sorry"}
    assert inbox_rows([item], {2: "careers"})[0] == ["7", "2026-12-01 10:00", "fallback", "hi", "order_status",
                                                     "careers", "0.31", "1"]
    assert "**Why:** The intent model declined" in trace_markdown(item, {2: "careers"})
    assert why({"hits": []}) == "No intent model was serving, so only the curated answers were searched."


def test_why_speaks_the_staff_language():
    from csbot.language import Words
    from csbot.web.staff.inbox import why

    zh = Words.load("zh")
    trace = {"intent": "order_status", "confidence": 1.0, "score": 2.31, "threshold": 3.45, "accepted": False,
             "similarity": 0.41, "hits": [{"answer_id": 2, "score": 0.31}], "answer_threshold": 0.6}
    words = why(trace, words=zh)
    assert "这条消息与训练消息不相似" in words
    assert "order_status 得分 2.31，低于此版本工作点的阈值 3.45" in words and "相似度 0.41" in words
    assert words.endswith("最匹配的标准答案得分 0.31，需要 0.60，因此机器人给出了兜底回复。")
    assert "2.31" in why({**trace, "accepted": True}, words=zh) and why({}, words=zh) != why({})


def test_the_staff_page_is_labelled_in_the_staff_language(tmp_path):
    from csbot.language import Words

    settings = load_settings(home=tmp_path, environ={"CSBOT_STAFF_LANGUAGE": "zh"}, data_dir=str(DATA))
    assert (settings.language, settings.staff_language) == ("en", "zh")
    engine = Engine(settings, encoder=HashingEncoder())
    engine.load_defaults(DATA)
    page = build_staff(engine, Accounts(engine.store))
    shown = {str(c.get("props", {}).get(k)) for c in page.config["components"] for k in ("label", "value", "placeholder")}
    assert {"收件箱", "实时对话", "答案", "回复模板", "导入", "退出登录", "接管对话", "保存为新答案", "新答案标识",
            "交还机器人", "回复顾客（发送即接管对话）"} <= shown
    assert not {"Inbox", "Live conversations", "Log out", "Take over the conversation", "Save as a new answer",
                "New answer key", "Hand back to bot", "Refresh", "Save"} & shown
    headers = [c["props"]["value"]["headers"] for c in page.config["components"] if c["type"] == "dataframe"]
    assert ["编号", "时间（UTC）", "原因", "消息", "意图", "最佳答案", "得分", "同一发送者条数"] in headers
    assert page.config["title"] == "csbot · 客服工作台"
    en, zh = Words.load("en"), Words.load("zh")  # each list of headers names the same columns
    assert all(len(zh[k]) == len(en[k]) for k in en.texts if k.endswith("_headers"))


def test_a_flood_of_hand_offs_leaves_a_real_customer_on_the_first_screen(site, browser):
    engine, _, url = site
    flooder = client_key("203.0.113.9")
    for _ in range(1000):
        engine.bot.hand_off(None, client=flooder)
    real = client_key("198.51.100.4")
    reply = engine.bot.respond("my quilted sofa arrived broken", channel="web", client=real)
    engine.bot.hand_off(reply.conversation_id, client=real)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_label("username").fill("sam")
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    mine = page.get_by_role("gridcell", name="my quilted sofa arrived broken")
    expect(mine).to_be_in_viewport(timeout=30_000)
    flood = page.get_by_role("gridcell", name="the customer asked for a person before writing anything")
    twelfth = page.locator('[role="gridcell"][data-row="11"][data-col="3"]:visible')
    expect(twelfth).to_be_in_viewport()  # a dozen items on one screen: one line each
    flood.first.click()
    expect(page.get_by_text("the customer asked for a person before writing anything").last).to_be_visible()
    page.get_by_role("button", name="Dismiss all from this sender").click()
    expect(page.get_by_text("Dismissed 1000 item(s) from the sender")).to_be_visible(timeout=30_000)
    page.close()
    assert len([i for i in engine.store.inbox(limit=2000) if i["text"].startswith("the customer asked")]) == 0


def test_customer_text_reads_as_plain_text_in_markdown():
    from csbot.web.common import as_text

    shown = as_text("$$x^2$$ __bold__ ~~gone~~ # heading | cell http://evil.example www.evil.example [a](b) <i>")
    for mark in ("$", "_", "~", "#", "|", "[", "<", "://", "www."):
        assert mark not in shown.replace("&#", ""), mark
    assert html.unescape(shown.replace("&#58;", ":").replace("&#46;", ".")) == (
        "$$x^2$$ __bold__ ~~gone~~ # heading | cell http://evil.example www.evil.example [a](b) <i>")
