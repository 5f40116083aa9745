"""Logins over HTTP, in-process through FastAPI's TestClient on the real app: our login form and
session cookie, role checks per page, logout, sessions ended by a password reset, a role change,
disabling or deleting (made by another Accounts over the same database file, as the CLI or a
second server would), the per-name-and-address lockout a stranger cannot turn against a user,
the per-address limit shared through the store, and the audit log of it all."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import FakeClock, logs_in
from fastapi.testclient import TestClient

from csbot.service.auth import Accounts
from csbot.service.engine import Engine
from csbot.service.jobs import Retrainer
from csbot.settings import load_settings
from csbot.store import Store
from csbot.web.server import COOKIE, ChatLimits, create_app

ADMIN = ("ada", "ada's long admin password")
STAFF = ("sam", "sam's long staff password")


@pytest.fixture(scope="module")
def site(trained_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("login") / "home"
    shutil.copytree(trained_home, home)
    (home / "csbot.toml").write_text("[csbot]\nlogin_per_minute = 1000\n")
    settings = load_settings(home=home, environ={})
    engine = Engine(settings)
    accounts = Accounts.from_settings(engine.store, settings)
    accounts.create(*ADMIN[:1], ADMIN[1], role="admin")
    accounts.create(*STAFF[:1], STAFF[1], role="staff")
    app = create_app(engine, accounts=accounts, retrainer=Retrainer(engine),
                     limits=ChatLimits(per_conversation=1000, per_client=1000))
    return app, engine, accounts


def browser(site, address: str = "10.0.0.1") -> TestClient:
    return TestClient(site[0], client=(address, 50000), follow_redirects=False)


def form_token(client: TestClient) -> str:
    """The token the login form carries (and its cookie in the client's jar), as a browser gets it."""
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def log_in(client: TestClient, name: str, password: str, page: str = "/staff/"):
    return client.post("/login", data={"username": name, "password": password, "next": page,
                                       "csrf": form_token(client)})


def log_out(client: TestClient):
    """What the staff page's "Log out" does: open /logout, which asks, and press its button."""
    page = client.get("/logout")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return client.post("/logout", data={"csrf": token.group(1) if token else ""})


def other_process(site) -> Accounts:
    """Accounts over a second connection to the same database file: the CLI, or another server."""
    engine = site[1]
    return Accounts(Store.open(engine.settings.database))


def test_anonymous_visitors_are_sent_to_the_login_form(site):
    client = browser(site)
    for page in ("/staff/", "/admin/"):
        response = client.get(page)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={page}"
        assert client.get(f"{page}config").status_code == 401
    form = client.get("/login?next=/admin/")
    assert form.status_code == 200 and 'name="password"' in form.text and "admin" in form.text


def test_the_login_form_speaks_the_staff_language(site):
    engine = site[1]
    settings = load_settings(home=engine.settings.home, environ={"CSBOT_STAFF_LANGUAGE": "zh"})
    chinese = Engine(settings, store=engine.store)
    app = create_app(chinese, accounts=site[2], retrainer=Retrainer(chinese),
                     limits=ChatLimits(per_conversation=1000, per_client=1000))
    client = TestClient(app, client=("10.0.0.3", 50000), follow_redirects=False)
    form = client.get("/login?next=/admin/")
    assert form.status_code == 200 and '<html lang="zh">' in form.text
    assert all(word in form.text for word in ("用户名", "密码", "登录", "请使用您的管理员账号登录"))
    assert not any(word in form.text for word in ("Username", "Password", "Log in"))
    refused = log_in(client, STAFF[0], "not the password")
    assert refused.status_code == 401 and "登录失败：wrong user name, password or two-factor code" in refused.text
    assert "您已退出登录" in client.get("/logout").text


def test_a_login_sets_a_safe_cookie_and_opens_the_page(site):
    client = browser(site)
    response = log_in(client, *STAFF)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # secure_cookies is off by default (plain http on localhost)
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/config").status_code == 200
    # the database keeps only the token's hash
    token = client.cookies[COOKIE]
    assert token not in str(site[1].store.db.rows("SELECT * FROM sessions"))


def test_wrong_passwords_and_unknown_names_get_the_form_again(site):
    client = browser(site, "10.0.0.9")
    for name, password in ((STAFF[0], "not the password"), ("nobody", "whatever password")):
        response = log_in(client, name, password)
        assert response.status_code == 401 and "wrong user name, password or two-factor code" in response.text
        assert COOKIE not in response.cookies


def test_a_staff_account_cannot_log_in_to_admin_nor_use_its_api(site):
    client = browser(site)
    refused = log_in(client, *STAFF, page="/admin/")
    assert refused.status_code == 401 and "needs an admin account" in refused.text
    log_in(client, *STAFF)  # a valid staff session...
    assert client.get("/admin/config").status_code == 401  # ...is no admin session
    assert client.get("/admin/").status_code == 303


def test_a_login_never_redirects_elsewhere(site):
    response = log_in(browser(site), *STAFF, page="//evil.example/")
    assert response.headers["location"] == "/staff/"


def test_logout_ends_the_session(site):
    client = browser(site)
    log_in(client, *STAFF)
    token = client.cookies[COOKIE]
    assert client.get("/logout").status_code == 200 and "Log out of csbot?" in client.get("/logout").text
    assert client.get("/staff/config").status_code == 200  # asking is not logging out
    assert log_out(client).status_code == 200
    replay = browser(site)
    replay.cookies.set(COOKIE, token)
    assert replay.get("/staff/config").status_code == 401  # the old cookie is worthless now


@pytest.mark.parametrize("change", ["reset", "role", "disable", "delete"])
def test_account_changes_made_elsewhere_end_open_sessions_at_once(site, change):
    name = f"kim-{change}"
    site[2].create(name, "kim's long password", role="admin" if change == "role" else "staff")
    client = browser(site)
    log_in(client, name, "kim's long password", page="/admin/" if change == "role" else "/staff/")
    page = "/admin/" if change == "role" else "/staff/"
    assert client.get(f"{page}config").status_code == 200
    cli = other_process(site)
    {"reset": lambda: cli.reset_password(name, "kim's new long password"),
     "role": lambda: cli.set_role(name, "staff"),
     "disable": lambda: cli.set_disabled(name, True),
     "delete": lambda: cli.delete(name)}[change]()
    assert client.get(f"{page}config").status_code == 401
    if change == "disable":
        assert log_in(client, name, "kim's long password").status_code == 401
        cli.set_disabled(name, False)
        assert log_in(client, name, "kim's long password").status_code == 303


def test_the_last_admin_cannot_be_removed(site):
    accounts = other_process(site)
    admins = [u["name"] for u in accounts.list() if u["role"] == "admin" and not u["disabled"]]
    for extra in admins[1:]:
        accounts.set_disabled(extra, True)
    try:
        last = admins[0]
        for attempt in (lambda: accounts.set_role(last, "staff"), lambda: accounts.set_disabled(last, True),
                        lambda: accounts.delete(last)):
            with pytest.raises(Exception, match="last enabled admin"):
                attempt()
        assert accounts.role(last) == "admin"
    finally:
        for extra in admins[1:]:
            accounts.set_disabled(extra, False)


def test_a_stranger_cannot_lock_the_admin_out_from_another_address(site):
    stranger = browser(site, "203.0.113.7")
    for _ in range(12):
        assert log_in(stranger, ADMIN[0], "a wrong guess").status_code == 401
    assert log_in(stranger, *ADMIN, page="/admin/").status_code == 401  # that address is locked out
    admin = browser(site, "10.0.0.2")
    assert log_in(admin, *ADMIN, page="/admin/").status_code == 303  # the real admin still gets in
    assert admin.get("/admin/config").status_code == 200
    failed = site[1].store.audit_log(action="login_failed", text="203.0.113.7")
    assert len(failed) >= 12 and failed[0]["actor"] == ADMIN[0]


def test_lockout_backs_off_and_a_right_password_resets_it(store):
    clock = FakeClock(1000.0)
    accounts = Accounts(store, clock=clock, max_failures=3, lockout_seconds=10)
    accounts.create("sam", STAFF[1], role="staff")
    for _ in range(3):
        assert not logs_in(accounts, "sam", "wrong password!", address="a")
    assert not logs_in(accounts, "sam", STAFF[1], address="a")  # locked for 10 s
    assert logs_in(accounts, "sam", STAFF[1], address="b")  # another address is not
    clock.now += 11
    assert not logs_in(accounts, "sam", "wrong password!", address="a")  # the 4th failure: 20 s now
    clock.now += 15
    assert not logs_in(accounts, "sam", STAFF[1], address="a")
    clock.now += 6
    assert logs_in(accounts, "sam", STAFF[1], address="a")
    assert not logs_in(accounts, "sam", "wrong password!", address="a")  # counting starts again
    assert logs_in(accounts, "sam", STAFF[1], address="a")


def test_the_per_address_login_limit_is_shared_by_every_process(store, tmp_path):
    clock = FakeClock(6000.0)
    path = tmp_path / "csbot.db"
    first = Accounts(Store.open(path), clock=clock, login_per_minute=4)
    second = Accounts(Store.open(path), clock=clock, login_per_minute=4)
    first.create("sam", STAFF[1], role="staff")
    for accounts in (first, second, first, second):
        with pytest.raises(Exception, match="wrong user name"):
            accounts.login("sam", "wrong password!", address="198.51.100.1")
    with pytest.raises(Exception, match="too many login attempts"):
        second.login("sam", STAFF[1], address="198.51.100.1")
    assert first.login("sam", STAFF[1], address="198.51.100.2")  # another address is fine
    clock.now += 60
    assert second.login("sam", STAFF[1], address="198.51.100.1")


def test_sessions_expire_when_idle_and_at_their_absolute_limit(store):
    clock = FakeClock(1000.0)
    accounts = Accounts(store, clock=clock, session_idle_seconds=600, session_max_seconds=3600)
    accounts.create("sam", STAFF[1], role="staff")
    token = accounts.login("sam", STAFF[1], address="a")
    clock.now += 599
    assert accounts.session_user(token) == "sam"
    clock.now += 601
    assert accounts.session_user(token) is None  # idle too long
    token = accounts.login("sam", STAFF[1], address="a")
    for _ in range(6):  # active every 9 minutes, so never idle...
        clock.now += 540
        assert accounts.session_user(token) == "sam"
    clock.now += 540
    assert accounts.session_user(token) is None  # ...but past the absolute limit
    assert accounts.session_user("x" * 40) is None and accounts.session_user(None) is None


def test_logins_and_logouts_are_audited_with_their_address(site):
    client = browser(site, "10.0.0.77")
    log_in(client, *STAFF)
    log_out(client)
    entries = site[1].store.audit_log(actor=STAFF[0], text="10.0.0.77")
    assert [e["action"] for e in entries[:2]] == ["logout", "login"]


def test_a_reset_between_the_password_check_and_the_session_leaves_no_session(store):
    accounts = Accounts(store)
    accounts.create("sam", STAFF[1], role="staff")
    checked = store.user("sam")  # what a login read and verified...
    accounts.reset_password("sam", "a brand new password")  # ...before the reset committed
    assert not store.add_session("s" * 64, user="sam", at=1.0, expires_at=2.0, address="a", agent="",
                                 password_hash=checked["password_hash"], role="staff")
    assert store.session("s" * 64) is None
    assert store.add_session("t" * 64, user="sam", at=1.0, expires_at=2.0, address="a", agent="",
                             password_hash=store.user("sam")["password_hash"], role="staff")


def test_a_login_replaces_the_browsers_previous_session(site):
    client = browser(site)
    log_in(client, *STAFF)
    first = client.cookies[COOKIE]
    log_in(client, *STAFF)
    replay = browser(site)
    replay.cookies.set(COOKIE, first)
    assert replay.get("/staff/config").status_code == 401 and client.get("/staff/config").status_code == 200


def test_a_login_posted_without_the_forms_token_is_refused(site):
    attacker, victim = browser(site, "10.0.0.66"), browser(site, "10.0.0.67")
    plain = victim.post("/login", data={"username": "sam", "password": STAFF[1], "next": "/staff/"})
    assert plain.status_code == 403 and "csbot_session" not in plain.cookies and "expired" in plain.text
    stolen = form_token(attacker)  # a token from another browser's form: its cookie is not the victim's
    forged = victim.post("/login", data={"username": "sam", "password": STAFF[1], "next": "/staff/",
                                         "csrf": stolen})
    assert forged.status_code == 403 and "csbot_session" not in forged.cookies
    assert log_in(victim, "sam", STAFF[1]).status_code == 303


def test_logout_needs_its_form_not_a_link_or_another_sites_post(site):
    client = browser(site, "10.0.0.41")
    log_in(client, *STAFF)
    forged = client.post("/logout", data={"csrf": "made up by another site"})
    assert forged.status_code == 403 and "Log out of csbot?" in forged.text
    assert client.get("/staff/config").status_code == 200  # still logged in
    assert log_out(client).status_code == 200 and client.get("/staff/config").status_code == 401


def form_of(page_text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_text).group(1)


def test_turning_on_two_factor_over_the_pages_and_logging_in_with_it(site):
    import pyotp
    accounts = site[2]
    accounts.create("lee", "lee's long staff password", role="staff")
    client = browser(site, "10.0.0.42")
    log_in(client, "lee", "lee's long staff password")
    setup = client.get("/account/two-factor")
    assert setup.status_code == 200 and "<svg" in setup.text and "QR code" in setup.text
    assert "default-src 'none'" in setup.headers["content-security-policy"]
    key = re.search(r"Key: ([A-Z2-7 ]+)<", setup.text).group(1).replace(" ", "")
    app = pyotp.TOTP(key)  # the phone, after scanning
    wrong = client.post("/account/two-factor", data={"csrf": form_of(setup.text), "action": "on", "code": "12"})
    assert wrong.status_code == 400 and "not the one the app shows now" in wrong.text
    on = client.post("/account/two-factor", data={"csrf": form_of(wrong.text), "action": "on", "code": app.now()})
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", on.text)
    assert on.status_code == 200 and len(codes) == 10 and "10 recovery codes left" in on.text
    log_out(client)
    refused = log_in(client, "lee", "lee's long staff password")  # no code
    assert refused.status_code == 401 and "two-factor code" in refused.text
    token = form_token(client)
    opened = client.post("/login", data={"username": "lee", "password": "lee's long staff password",
                                         "next": "/staff/", "csrf": token, "code": codes[3]})
    assert opened.status_code == 303 and client.get("/staff/config").status_code == 200
    page = client.get("/account/two-factor")
    assert "9 recovery codes left" in page.text and "Turn two-factor sign-in off" in page.text
    forged = client.post("/account/two-factor", data={"csrf": "forged", "action": "off", "code": codes[4]})
    assert forged.status_code == 403 and accounts.store.user("lee")["totp_secret"]  # nothing changed
    off = client.post("/account/two-factor", data={"csrf": form_of(forged.text), "action": "off", "code": codes[4]})
    assert "Two-factor sign-in is off" in off.text and not accounts.store.user("lee")["totp_secret"]


def test_a_required_second_factor_keeps_an_admin_on_the_set_up_page_until_it_is_on(site):
    import pyotp
    engine = site[1]
    settings = load_settings(home=engine.settings.home, environ={"CSBOT_REQUIRE_ADMIN_TWO_FACTOR": "true",
                                                                 "CSBOT_LOGIN_PER_MINUTE": "1000"})
    strict = Engine(settings, store=engine.store)
    accounts = Accounts.from_settings(engine.store, settings)
    accounts.create("max", "max's long admin password", role="admin")
    app = create_app(strict, accounts=accounts, retrainer=Retrainer(strict),
                     limits=ChatLimits(per_conversation=1000, per_client=1000))
    client = TestClient(app, client=("10.0.0.43", 50000), follow_redirects=False)
    response = log_in(client, "max", "max's long admin password", page="/admin/")
    assert response.status_code == 303 and response.headers["location"] == "/account/two-factor?next=/admin/"
    assert client.get("/admin/").headers["location"] == "/account/two-factor?next=/admin/"
    assert client.get("/admin/config").status_code == 401  # nor through Gradio's API
    assert client.get("/staff/config").status_code == 200  # the staff page needs no second factor
    setup = client.get("/account/two-factor?next=/admin/")
    assert "requires two-factor sign-in for admin accounts" in setup.text
    key = re.search(r"Key: ([A-Z2-7 ]+)<", setup.text).group(1).replace(" ", "")
    on = client.post("/account/two-factor", data={"csrf": form_of(setup.text), "action": "on", "next": "/admin/",
                                                  "code": pyotp.TOTP(key).now()})
    assert on.status_code == 200 and 'href="/admin/"' in on.text and "Turn two-factor sign-in off" not in on.text
    assert client.get("/admin/").status_code == 200 and client.get("/admin/config").status_code == 200
