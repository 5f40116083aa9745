"""The admin page (csbot/web/admin/), served in-process and called through its API as an admin, a
staff member and a stranger: versions and reports, promote and roll back (a broken version is
refused), a real background training run and a cancelled one, the dashboard, and accounts.

The page is launched with Gradio's own login, checked by `Accounts.login`, so staff can log in
too: their refusals prove the role check inside each handler, not just the login in front of the
page (the server's admin-only login is tested in test_api.py). Tests run in file order and share
one home.
"""

from __future__ import annotations

import re
import shutil
import time
from types import SimpleNamespace

import pytest
from conftest import DATA, HashingEncoder, free_port, logs_in, save_version
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import expect

from csbot.service.auth import Accounts
from csbot.service.engine import Engine
from csbot.service.jobs import Retrainer
from csbot.settings import load_settings
from csbot.store import Store
from csbot.web import admin as page

ADMIN_PW, STAFF_PW = "ada's long password", "sam's long password"
ENDPOINTS = {  # every endpoint of the page, with arguments a caller might send
    "/training_data": (), "/train_status": (), "/start_training": (1, False), "/cancel_training": (),
    "/versions": (None,), "/report": ("VERSION",), "/promote": ("VERSION",), "/rollback": (),
    "/operating_point": ("VERSION", "acceptance", 0.9), "/default_operating_point": ("VERSION",),
    "/open_new_report": (), "/dashboard": (30,), "/users": (),
    "/create_user": ("eve", "admin", "eve's long password", "eve's long password"),
    "/reset_password": ("ada", "a new long password", "a new long password"),
    "/role_user": ("ada", "staff"), "/disable_user": ("ada", "staff"), "/enable_user": ("ada", "staff"),
    "/delete_user": ("ada", "staff"), "/two_factor_user": ("ada", "staff"), "/audit": ("", None, ""),
    "/answer_calibration": (), "/answer_threshold": (0.9,), "/answer_precision": (0.9,), "/answer_tuning_reset": (),
    "/webhooks": (), "/webhook_add": ("https://hooks.example/x", ["message.fallback"]), "/webhook_remove": (1,),
    "/webhook_resend": (1,)}


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_training):
    root = tmp_path_factory.mktemp("admin")
    shutil.copytree(DATA, root / "data")
    home = root / "home"
    home.mkdir()
    # The training child reads its settings from the home, as the real server's does.
    (home / "csbot.toml").write_text("[csbot]\nepochs = 1\nbatch_size = 8\n", encoding="utf-8")
    settings = load_settings(home=home, environ={}, data_dir=str(root / "data"))
    engine = Engine(settings, store=Store.open(settings.database), encoder=HashingEncoder())
    engine.load_defaults(root / "data")
    broken = save_version(engine, tiny_training, "2026-01-01T00:00:00.000+00:00")
    old = save_version(engine, tiny_training, "2026-02-01T00:00:00.000+00:00")
    new = save_version(engine, tiny_training, "2026-03-01T00:00:00.000+00:00")
    (settings.models_dir / broken / "head.safetensors").unlink()
    engine.promote(new)
    assert engine.bot.classifier.version == new  # the bot is built, so promotions swap its model
    accounts = Accounts(engine.store)
    accounts.create("ada", ADMIN_PW, role="admin")
    accounts.create("sam", STAFF_PW, role="staff")
    retrainer = Retrainer(engine, grace_seconds=2)
    demo = page.build_admin(engine, accounts, retrainer)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, auth=lambda name, password: logs_in(accounts, name, password), server_port=free_port(), quiet=True)
    yield SimpleNamespace(url=url, engine=engine, store=engine.store, accounts=accounts, retrainer=retrainer,
                          old=old, new=new, broken=broken)
    demo.close()
    process = retrainer._process
    if process and process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def admin(site) -> Client:
    return Client(site.url, auth=("ada", ADMIN_PW), verbose=False)


def wait_for(client: Client, pattern: str, *, timeout: float = 120) -> str:
    """Poll the page's training status (as its timer does) until it matches `pattern`."""
    deadline = time.monotonic() + timeout
    while True:
        shown = client.predict(api_name="/train_status")
        if re.search(pattern, shown) or time.monotonic() > deadline:
            return shown
        time.sleep(0.3)


@pytest.mark.parametrize("seconds, text", [(None, "–"), (4.2, "4 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")])
def test_durations_read_like_speech(seconds, text):
    assert page.eta(seconds) == text


def test_status_shows_progress_and_escapes_errors():
    running = {"status": "running", "phase": "fine_tune", "step": 12, "total": 40, "loss": 0.8123,
               "elapsed_seconds": 30, "eta_seconds": 65, "device": "cuda", "options": {"user": "ada"}}
    shown = page.status_html(running)
    assert '<progress value="12" max="40"' in shown and "step 12 / 40" in shown and "1 min 05 s" in shown
    assert "GPU (cuda)" in shown and "fine-tuning" in shown and "0.8123" in shown
    failed = page.status_html({**running, "status": "failed", "error": "<img src=x onerror=alert(1)>"})
    assert "<img" not in failed and "&lt;img src=x" in failed


def test_strangers_cannot_log_in(site):
    with pytest.raises(Exception):  # noqa: B017 - the client only says it could not log in / read the config
        Client(site.url, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(site.url, auth=("ada", "not the password"), verbose=False)


def test_staff_are_refused_by_every_handler(site, admin):
    staff = Client(site.url, auth=("sam", STAFF_PW), verbose=False)
    named = admin.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == set(ENDPOINTS), "a new endpoint needs a staff-refusal check here"
    for name, args in ENDPOINTS.items():
        args = tuple(site.new if a == "VERSION" else a for a in args)
        with pytest.raises(AppError, match="Not allowed: this needs an admin account and 'sam' is staff"):
            staff.predict(*args, api_name=name)
    assert site.store.user("eve") is None and site.retrainer.status() is None
    assert site.store.current_model()["id"] == site.new


def test_versions_table_and_report(site, admin):
    table, choice = admin.predict(None, api_name="/versions")
    assert [row[0] for row in table["data"]] == [site.new, site.old, site.broken]
    assert choice["value"] == site.new and [site.new + " (current)", site.new] in choice["choices"]
    site.store.set_comparison(site.old, {
        "gate": {"passed": False, "new_macro_f1": 0.5, "current_macro_f1": 0.75, "reason": "worse"},
        "messages": 40, "intent_changed": 3, "route_changed": 2, "against": site.new,
        "examples": [{"message": "<b>where</b> is *it*", "current": "order_status / template",
                      "new": "greeting / template"}]})
    summary, comparison, changes, point, curve, curve_points, per_intent, picture = admin.predict(
        site.old, api_name="/report")
    assert "| Accuracy |" in summary and "| Threshold (serving) |" in summary and "| Macro-F1 |" in summary
    assert "**Operating point:** threshold" in point and "the trained default" in point
    with Image.open(curve) as image:
        assert image.width > 300 and image.height > 200
    assert curve_points["headers"] == ["threshold", "accepted", "precision", "oos_accepted"] and curve_points["data"]
    assert "**Gate: failed**" in comparison and "new 50.0%, serving 75.0%" in comparison
    assert "3 of the last 40 customer messages would get another intent, 2 another route" in comparison
    assert changes["data"] == [["<b>where</b> is *it*", "order_status / template", "greeting / template"]]
    labels = site.store.model_versions()[0]["metrics"]["labels"]
    assert sorted(row[0] for row in per_intent["data"]) == sorted(labels)
    with Image.open(picture) as image:
        assert image.width > 300 and image.height > 300
    summary, comparison, *_ = admin.predict(site.new, api_name="/report")
    assert "No comparison" in comparison


def test_promote_and_roll_back(site, admin):
    table, choice, note = admin.predict(site.old, api_name="/promote")
    assert site.store.current_model()["id"] == site.old and site.engine.bot.classifier.version == site.old
    assert site.old in note and [r[0] for r in table["data"] if r[2]] == [site.old]
    with pytest.raises(AppError, match="head.safetensors"):  # rolling back from old would reach the broken one
        admin.predict(api_name="/rollback")
    assert site.store.current_model()["id"] == site.old
    admin.predict(site.new, api_name="/promote")
    table, choice, note = admin.predict(api_name="/rollback")
    assert site.store.current_model()["id"] == site.old and choice["value"] == site.old
    admin.predict(site.new, api_name="/promote")
    assert site.engine.bot.classifier.version == site.new


def test_an_admin_moves_the_operating_point_and_it_serves_at_once(site, admin):
    trained = site.engine.bot.classifier.threshold
    curve = site.store.current_model()["metrics"]["operating_curve"]
    *report, table, choice, note = admin.predict(site.new, "acceptance", 1.0, api_name="/operating_point")
    loosest = min(p["threshold"] for p in curve["points"])
    assert site.engine.bot.classifier.threshold == loosest and site.store.current_model()["threshold"] == loosest
    assert "now accepts at threshold" in note and "chosen by target acceptance 100.0%" in report[3]
    with pytest.raises(AppError, match="greater than maximum value 1.0"):  # the field's bounds; the engine checks too
        admin.predict(site.new, "precision", 1.7, api_name="/operating_point")
    assert site.engine.bot.classifier.threshold == loosest  # a refused target moves nothing
    *report, table, choice, note = admin.predict(site.new, api_name="/default_operating_point")
    assert site.engine.bot.classifier.threshold == trained and "trained default" in note
    log, _ = admin.predict("ada", "operating_point", "", api_name="/audit")
    assert [r[3] for r in log["data"]] == [site.new, site.new]


def test_a_broken_version_is_refused_and_the_current_one_serves(site, admin):
    with pytest.raises(AppError, match=f"{site.broken} is incomplete: missing head.safetensors"):
        admin.predict(site.broken, api_name="/promote")
    assert site.store.current_model()["id"] == site.new
    serving = site.engine.bot.classifier  # asked directly: a chat message now would be in the next run's comparison
    assert serving.version == site.new and serving.predict(["where is my order?"])[0].intent


def test_a_training_run_watched_in_a_browser(site, admin, browser):
    assert "**24** training examples, of which **0** were labelled by staff" in admin.predict(
        api_name="/training_data")
    started = admin.predict(1, True, api_name="/start_training")
    assert "<td>running</td>" in started and "by ada" in started
    with pytest.raises(AppError, match="is already running, started by ada; wait for it or cancel it"):
        admin.predict(1, False, api_name="/start_training")

    tab = browser.new_page()
    tab.goto(site.url)
    tab.get_by_label("username").fill("ada")
    tab.get_by_label("password").fill(ADMIN_PW)
    tab.get_by_role("button", name="Login").click()
    status = tab.locator("#training-status")
    expect(status).to_contain_text("by ada", timeout=20_000)  # the run started elsewhere shows on load
    expect(status).to_contain_text("New version", timeout=120_000)  # the timer's polls reach the end
    job = site.retrainer.status()
    assert job["status"] == "done", job
    expect(status).to_contain_text(f"step {job['total']} / {job['total']}")
    expect(status.locator("progress")).to_have_attribute("value", str(job["total"]))
    tab.get_by_role("button", name=f"Show the report of {job['model_version']}").click()
    expect(tab.get_by_role("heading", name=job["model_version"])).to_be_visible()
    expect(tab.get_by_text("Gate: ")).to_be_visible()
    expect(tab.get_by_role("tabpanel").locator("img").first).to_be_visible()
    tab.get_by_role("tab", name="Dashboard").click()
    expect(tab.get_by_text("(UTC):")).to_be_visible()
    tab.close()

    assert job["options"] == {"user": "ada", "epochs": 1, "promote_if_better": True}
    table, choice = admin.predict(None, api_name="/versions")
    assert table["data"][0][0] == job["model_version"]
    _, comparison, *_ = admin.predict(job["model_version"], api_name="/report")
    gate = site.store.model_versions()[0]["comparison"]["gate"]
    assert f"**Gate: {'passed' if gate['passed'] else 'failed'}**" in comparison
    # promoted automatically exactly when it passed the gate (the run itself does, as its job row says)
    deadline = time.monotonic() + 10
    while gate["passed"] and site.store.current_model()["id"] != job["model_version"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (site.store.current_model()["id"] == job["model_version"]) == gate["passed"]


def test_a_cancelled_run(site, admin):
    admin.predict(1, False, api_name="/start_training")
    assert "(cancelling)" in admin.predict(api_name="/cancel_training")
    shown = wait_for(admin, r"<td>(done|failed|cancelled)</td>", timeout=60)
    assert "<td>cancelled</td>" in shown and "Error:" in shown
    with pytest.raises(AppError, match="nothing to cancel"):
        admin.predict(api_name="/cancel_training")


def test_dashboard(site, admin):
    bot = site.engine.bot
    first = bot.respond("Where is my order BB-482913?", channel="web")
    site.store.rate(first.conversation_id, first.message_id, 1)
    for text in ("my cat ate the invoice", "My cat ate the invoice!"):
        bot.respond(text, channel="web")
    heading, per_day, routes, intents, ratings, unanswered = admin.predict(7, api_name="/dashboard")
    assert "customer messages" in heading and len(per_day["data"]) == 7
    assert per_day["data"][-1][1] == 3
    assert {row[0] for row in routes["data"]} == {"template", "answer", "fallback", "person"}
    assert "likes 1, dislikes 0, like ratio 100.0%" in ratings
    assert unanswered["headers"] == ["topic", "messages", "growth", "example"]
    assert any(row[1] == 2 and "cat ate the invoice" in row[3].lower() for row in unanswered["data"])
    assert intents["columns"] == ["intent", "messages"]


def test_accounts(site, admin):
    table, names, _, pw, again, note = admin.predict("eve", "staff", "eve's long password", "eve's long password",
                                                     api_name="/create_user")
    assert ["eve", "staff"] == [r for r in table["data"] if r[0] == "eve"][0][:2] and pw == again == ""
    assert "long password" not in str(table) + note and logs_in(site.accounts, "eve", "eve's long password")
    for args, problem in [(("eve", "admin", "another long one", "another long one"), "already a user named 'eve'"),
                          (("fay", "staff", "short", "short"), "must be 10-256 characters"),
                          (("fay", "staff", "a long password", "a long passwore"), "the two passwords differ")]:
        with pytest.raises(AppError, match=problem):
            admin.predict(*args, api_name="/create_user")
    assert site.store.user("fay") is None and site.store.user("eve")["role"] == "staff"
    pw, again, note = admin.predict("eve", "eve's new password", "eve's new password", api_name="/reset_password")
    assert pw == again == "" and "eve" in note
    assert logs_in(site.accounts, "eve", "eve's new password") and not logs_in(site.accounts, "eve", "eve's long password")
    table, names, _ = admin.predict(api_name="/users")
    assert {r[0] for r in table["data"]} == {"ada", "eve", "sam"}


def test_account_changes_and_the_audit_log(site, admin):
    table, _, _, note = admin.predict("eve", "admin", api_name="/role_user")
    assert site.accounts.role("eve") == "admin" and "sessions ended" in note
    table, _, _, note = admin.predict("eve", "staff", api_name="/disable_user")
    assert ["eve", "admin", "disabled"] == [r for r in table["data"] if r[0] == "eve"][0][:3]
    assert not logs_in(site.accounts, "eve", "eve's new password")  # a disabled account cannot log in
    admin.predict("eve", "staff", api_name="/enable_user")
    assert logs_in(site.accounts, "eve", "eve's new password")
    import pyotp  # eve turns two-factor on, then loses her phone: an admin turns it off
    site.accounts.two_factor.confirm("eve", pyotp.parse_uri(site.accounts.two_factor.begin("eve")).now())
    table, _, _, _ = admin.predict(api_name="/users")[:1] + (None, None, None)
    assert [r for r in table["data"] if r[0] == "eve"][0][2] == "enabled · two-factor"
    table, _, _, note = admin.predict("eve", "staff", api_name="/two_factor_user")
    assert [r for r in table["data"] if r[0] == "eve"][0][2] == "enabled" and "set it up again" in note
    assert logs_in(site.accounts, "eve", "eve's new password")  # the password alone opens it again
    with pytest.raises(AppError, match="cannot delete the account you are logged in with"):
        admin.predict("ada", "staff", api_name="/delete_user")
    admin.predict("eve", "staff", api_name="/delete_user")
    assert site.store.user("eve") is None
    log, actions = admin.predict("ada", None, "", api_name="/audit")
    done = [(r[2], r[3]) for r in log["data"]]
    assert ("user_delete", "eve") in done and ("user_disable", "eve") in done and ("user_role", "eve") in done
    assert ("two_factor_reset", "eve") in done
    assert ("promote", site.new) in done or any(a == "promote" for a, _ in done)
    only_deletes, _ = admin.predict("", "user_delete", "", api_name="/audit")
    assert {r[2] for r in only_deletes["data"]} == {"user_delete"}


def test_the_admin_page_is_labelled_in_the_staff_language(tmp_path):
    from csbot.language import Words

    settings = load_settings(home=tmp_path, environ={"CSBOT_STAFF_LANGUAGE": "zh"}, data_dir=str(DATA))
    engine = Engine(settings, encoder=HashingEncoder())
    engine.load_defaults(DATA)
    built = page.build_admin(engine, Accounts(engine.store), Retrainer(engine))
    shown = {str(c.get("props", {}).get(k)) for c in built.config["components"] for k in ("label", "value", "placeholder")}
    assert {"重新训练", "开始训练", "版本与报告", "设为当前版本", "回滚到上一个版本", "数据看板", "用户管理",
            "创建账号", "审计日志", "退出登录"} <= shown
    assert not {"Retrain", "Start training", "Versions & reports", "Promote this version", "Dashboard", "Users",
                "Create account", "Audit log", "Log out"} & shown
    zh = Words.load("zh")
    running = {"status": "running", "phase": "fine_tune", "step": 12, "total": 40, "options": {"user": "ada"}}
    assert all(text in page.status_html(running, zh) for text in ("运行中", "微调", "第 12 / 40 步"))
    assert page.eta(65, zh) == "1 分 05 秒" and page.eta(65) == "1 min 05 s"
    assert set(page.PHASES) <= {key.removeprefix("admin.phase_") for key in zh.texts}


def test_an_admin_adds_a_webhook_endpoint_sees_its_deliveries_and_sends_one_again(site, admin):
    with pytest.raises(AppError, match="private network or this machine"):  # not into the server's own network
        admin.predict("http://127.0.0.1:9/never", ["message.fallback"], api_name="/webhook_add")
    endpoints, log, note = admin.predict("http://hooks.invalid:9/never", ["message.fallback"], api_name="/webhook_add")
    secret = re.search(r"`(whsec_[A-Za-z0-9+/=]+)`", note).group(1)  # shown once, here
    hook = site.store.webhooks()[-1]
    assert hook["secret"] == secret and hook["events"] == ["message.fallback"]
    assert [row[1] for row in endpoints["data"]] == [h["url"] for h in site.store.webhooks()]
    assert site.store.record_event("message.fallback", "msg_test_1", {"type": "message.fallback"}) == 1
    endpoints, log, note = admin.predict(api_name="/webhooks")
    delivery = log["data"][0]
    assert delivery[2:5] == ["message.fallback", "http://hooks.invalid:9/never", "pending"]
    endpoints, log, note = admin.predict(int(delivery[0]), api_name="/webhook_resend")
    assert "will be sent again" in note
    with pytest.raises(AppError, match="pick one or more events"):
        admin.predict("https://hooks.example/x", [], api_name="/webhook_add")
    endpoints, log, note = admin.predict(hook["id"], api_name="/webhook_remove")
    assert all(int(row[0]) != hook["id"] for row in endpoints["data"]) and log["data"] == []
    actions = [e["action"] for e in site.store.audit_log()[:3]]
    assert actions == ["webhook_remove", "webhook_resend", "webhook_add"]


def test_an_admin_sees_and_moves_how_curated_answers_are_held_back(site, admin):
    """Last in the file: it adds answers the other tests do not expect."""
    from test_ranker import TOPICS

    text, picture, threshold, precision = admin.predict(api_name="/answer_calibration")
    assert "found by similarity" in text and "0.60" in text and threshold is None  # three answers: nothing to hold out
    site.store.upsert_answers([{"key": k, "questions": qs, "answer": f"About {k}."} for k, qs in TOPICS.items()])
    site.engine.reindex()  # as `import-answers` does: the judge calibrated on the 13 answers
    text, picture, threshold, precision = admin.predict(api_name="/answer_calibration")
    assert "at least 97.0% right" in text and picture and precision == 0.97
    assert threshold == site.engine.index.confidence_threshold
    text, _, threshold, precision = admin.predict(0.9, api_name="/answer_threshold")
    assert "the threshold an admin set" in text and (threshold, precision) == (0.9, None)
    assert site.engine.index.confidence_threshold == 0.9 and site.store.answer_tuning()["threshold"] == 0.9
    with pytest.raises(AppError, match="Type a value in the box first"):
        admin.predict(None, api_name="/answer_precision")
    text, _, threshold, precision = admin.predict(api_name="/answer_tuning_reset")
    assert precision == 0.97 and site.store.answer_tuning() == {"threshold": None, "precision": None}
    log, _ = admin.predict("ada", "answer_tuning", "", api_name="/audit")
    assert len(log["data"]) == 2
