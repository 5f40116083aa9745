"""Accounts and password hashing over a real in-memory store, with a fake clock for lockouts.

Each scrypt hash costs ~50 ms, so tests create few users and try few passwords.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from conftest import logs_in

from csbot.errors import AccessDenied, DataError
from csbot.service import auth
from csbot.service.auth import Accounts, hash_password, verify_password

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(store, clock) -> Accounts:
    return Accounts(store, clock=clock, max_failures=3, lockout_seconds=60.0, max_lockout_seconds=600.0,
                    failure_window_seconds=600.0)


@pytest.fixture
def scrypt_calls(monkeypatch) -> list:
    """Counts scrypt runs, to see that a refusal still spends a hash."""
    calls, real = [], hashlib.scrypt
    monkeypatch.setattr(auth.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


# --- hashing --------------------------------------------------------------------------
def test_hash_describes_its_parameters_and_round_trips():
    stored = hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert base64.b64decode(digest) == hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt),
                                                      n=2**14, r=8, p=1, dklen=32)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)
    assert PASSWORD not in stored


def test_salt_differs_per_hash():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.split("$")[4] != second.split("$")[4]
    assert first != second


def test_cheaper_parameters_in_the_stored_value_are_honoured():
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**4, r=8, p=1, dklen=32)
    stored = f"scrypt$16$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password(PASSWORD, stored)
    assert not verify_password("wrong password", stored)


def test_a_short_hash_is_refused_even_when_it_matches():
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**4, r=8, p=1, dklen=8)
    stored = f"scrypt$16$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password(PASSWORD, stored) is False  # 8 bytes are too few to trust


_SALT = base64.b64encode(b"s" * 16).decode()
_HASH = base64.b64encode(b"h" * 32).decode()


@pytest.mark.parametrize("stored", [
    "", "garbage", None, 42, "scrypt$16384$8$1$only-five",
    f"bcrypt$16384$8$1${_SALT}${_HASH}",          # another scheme
    f"scrypt$lots$8$1${_SALT}${_HASH}",           # n not a number
    f"scrypt$1000$8$1${_SALT}${_HASH}",           # n not a power of two: scrypt refuses
    f"scrypt$1073741824$8$1${_SALT}${_HASH}",     # would need 128 GiB: refused, not attempted
    f"scrypt$16$8$1$!!not base64!!${_HASH}",
    f"scrypt$16$8$1${_SALT}$",                    # empty hash must not match everything
    f"scrypt$16$8$1$${_HASH}",
])
def test_malformed_stored_hash_is_false_not_an_error(stored):
    assert verify_password(PASSWORD, stored) is False


def test_unencodable_password_is_false_not_an_error():
    assert verify_password("\ud800 lone surrogate", hash_password(PASSWORD)) is False


# --- creating accounts and logging in ---------------------------------------------------
def test_create_and_check(accounts, store):
    accounts.create("sam.lee", PASSWORD, role="staff")
    assert store.user("sam.lee")["password_hash"].startswith("scrypt$16384$8$1$")
    assert logs_in(accounts, "sam.lee", PASSWORD) is True
    assert logs_in(accounts, "sam.lee", "not the password") is False
    assert accounts.role("sam.lee") == "staff"
    assert accounts.list() == [{"name": "sam.lee", "role": "staff", "disabled": 0, "two_factor": False,
                                "created_at": accounts.list()[0]["created_at"],
                                "updated_at": accounts.list()[0]["updated_at"]}]


@pytest.mark.parametrize("name, password, role, message", [
    ("", PASSWORD, "staff", "1-32 letters"),
    ("x" * 33, PASSWORD, "staff", "1-32 letters"),
    ("sam lee", PASSWORD, "staff", "found 'sam lee'"),
    ("sàm", PASSWORD, "staff", "1-32 letters"),
    ("a/b", PASSWORD, "staff", "1-32 letters"),
    ("sam", PASSWORD, "owner", "found 'owner'"),
    ("sam", "short", "staff", "found 5; choose a longer one"),
    ("sam", "x" * 257, "staff", "found 257; choose a shorter one"),
    ("sam", None, "staff", "found NoneType"),
    ("sam", "\ud800" * 12, "staff", "lone surrogates"),
])
def test_create_validates_with_a_message_that_says_how_to_fix_it(accounts, store, name, password,
                                                                   role, message):
    with pytest.raises(DataError, match=message):
        accounts.create(name, password, role=role)
    assert store.users() == []


def test_duplicate_name_is_refused(accounts):
    accounts.create("sam", PASSWORD, role="staff")
    with pytest.raises(DataError, match="already a user named 'sam'"):
        accounts.create("sam", "another long password", role="admin")
    assert accounts.role("sam") == "staff"


def test_unknown_user_still_spends_a_hash(accounts, scrypt_calls):
    auth._dummy_hash()  # made once per process; not part of what a login costs
    scrypt_calls.clear()
    assert logs_in(accounts, "nobody", PASSWORD) is False
    assert len(scrypt_calls) == 1


@pytest.mark.parametrize("name, password, hashes", [
    (None, PASSWORD, 0), ("sam", None, 0), (123, PASSWORD, 0), ("sam", b"bytes password", 0),
    ("sam" * 100_000, PASSWORD, 0), ("sam", "x" * 1_000_000, 0),   # huge input costs nothing
    ("", "", 1), ("no spaces allowed", PASSWORD, 1),
    ("sam", "\ud800" * 12, 0),  # cannot be encoded, so never hashed, whoever the name is
])
def test_check_never_raises_on_bad_input(accounts, scrypt_calls, name, password, hashes):
    accounts.store.add_user("sam", role="staff", password_hash="not a hash")
    auth._dummy_hash()
    scrypt_calls.clear()
    assert logs_in(accounts, name, password) is False
    assert len(scrypt_calls) == hashes


def test_damaged_stored_hash_refuses_the_login(accounts, store):
    store.add_user("sam", role="staff", password_hash="scrypt$oops")
    assert logs_in(accounts, "sam", "anything at all") is False


# --- lockout ------------------------------------------------------------------------------
def test_lockout_after_failures_and_its_expiry(accounts, clock):
    accounts.create("sam", PASSWORD, role="staff")
    for _ in range(3):
        assert logs_in(accounts, "sam", "wrong password") is False
    clock.now += 59
    assert logs_in(accounts, "sam", PASSWORD) is False  # the right password, but locked
    clock.now += 1
    assert logs_in(accounts, "sam", PASSWORD) is True


def test_failures_outside_the_window_do_not_add_up(accounts, clock):
    accounts.create("sam", PASSWORD, role="staff")
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", "wrong password") is False
    clock.now += 601
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", PASSWORD) is True


def test_success_resets_the_failure_count(accounts):
    accounts.create("sam", PASSWORD, role="staff")
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", PASSWORD) is True
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", "wrong password") is False
    assert logs_in(accounts, "sam", PASSWORD) is True  # would be locked had the count not reset


def test_lockout_is_per_name_and_address_and_locked_names_still_hash(accounts, scrypt_calls):
    accounts.create("sam", PASSWORD, role="staff")
    accounts.create("kim", PASSWORD, role="staff")
    for _ in range(3):
        logs_in(accounts, "sam", "wrong password")
    auth._dummy_hash()
    scrypt_calls.clear()
    assert logs_in(accounts, "sam", PASSWORD) is False
    assert len(scrypt_calls) == 1  # a locked name takes as long as any other refusal
    assert logs_in(accounts, "kim", PASSWORD) is True
    assert logs_in(accounts, "sam", PASSWORD, address="elsewhere") is True


def test_reset_password(accounts):
    accounts.create("sam", PASSWORD, role="staff")
    for _ in range(3):
        logs_in(accounts, "sam", "wrong password")
    accounts.reset_password("sam", "a brand new password")
    assert logs_in(accounts, "sam", "a brand new password") is True  # the reset lifted the lockout
    assert logs_in(accounts, "sam", PASSWORD) is False
    with pytest.raises(DataError, match="no user named 'kim'"):
        accounts.reset_password("kim", "a brand new password")
    with pytest.raises(DataError, match="choose a longer one"):
        accounts.reset_password("sam", "short")


# --- roles ----------------------------------------------------------------------------------
@pytest.fixture
def staffed(store) -> Accounts:
    # Rows written directly: require() reads roles only, so no hashing is needed here.
    store.add_user("sam", role="staff", password_hash="x")
    store.add_user("ada", role="admin", password_hash="x")
    return Accounts(store)


def test_require_returns_the_name_when_the_role_suffices(staffed):
    assert staffed.require("sam", "staff") == "sam"
    assert staffed.require("ada", "staff") == "ada"  # admin may do what staff may
    assert staffed.require("ada", "admin") == "ada"


@pytest.mark.parametrize("name, role, message", [
    (None, "staff", "not logged in; log in as staff"),
    (None, "admin", "not logged in; log in as admin"),
    ("sam", "admin", "needs an admin account and 'sam' is staff; ask an admin"),
    ("ghost", "staff", "no enabled account named 'ghost'"),
])
def test_require_denies(staffed, name, role, message):
    with pytest.raises(AccessDenied, match=message):
        staffed.require(name, role)


def test_role_of_anonymous_or_unknown_is_none(staffed):
    assert staffed.role(None) is None
    assert staffed.role("ghost") is None
    assert staffed.role("ada") == "admin"


# --- the first admin ---------------------------------------------------------------------
def test_first_admin_from_the_environment(accounts):
    assert accounts.ensure_first_admin({"CSBOT_ADMIN_PASSWORD": PASSWORD}) == PASSWORD
    assert accounts.role("admin") == "admin"
    assert logs_in(accounts, "admin", PASSWORD) is True


def test_first_admin_with_a_random_password(accounts):
    password = accounts.ensure_first_admin({})
    assert isinstance(password, str) and len(password) >= 16
    assert logs_in(accounts, "admin", password) is True
    assert accounts.ensure_first_admin({}) is None  # an admin exists now
    assert [u["name"] for u in accounts.list()] == ["admin"]


def test_first_admin_is_not_made_when_an_admin_exists(staffed):
    assert staffed.ensure_first_admin({"CSBOT_ADMIN_PASSWORD": PASSWORD}) is None
    assert staffed.role("admin") is None


def test_first_admin_avoids_a_staff_user_named_admin(store):
    store.add_user("admin", role="staff", password_hash="x")
    store.add_user("admin1", role="staff", password_hash="x")
    accounts = Accounts(store)
    assert accounts.ensure_first_admin({"CSBOT_ADMIN_PASSWORD": PASSWORD}) == PASSWORD
    assert accounts.role("admin") == "staff"
    assert accounts.role("admin2") == "admin"


def test_first_admin_password_from_the_environment_is_validated(accounts, store):
    with pytest.raises(DataError, match="CSBOT_ADMIN_PASSWORD must be 10-256 characters; found 4"):
        accounts.ensure_first_admin({"CSBOT_ADMIN_PASSWORD": "abcd"})
    assert store.users() == []


# --- guessable passwords ------------------------------------------------------------
@pytest.mark.parametrize("name, password, message", [
    ("sam", "password123", "one of the most common passwords"),
    ("sam", "QwertyUIOP12", "one of the most common passwords"),  # whatever the case
    ("sam", "Password1234!", "similar to a commonly used password"),
    ("sam", "aaaaaaaaaaaa", "repeats"),
    ("sam.lee", "sam.lee12345", "too easy to guess"),  # the user's own name
])
def test_guessable_passwords_are_refused_with_the_reason(name, password, message):
    from csbot.store import Store
    from csbot.store.sqlite import SqliteDatabase

    store = Store(SqliteDatabase(":memory:"))  # a rule of auth.py's own: one engine is enough
    accounts = Accounts(store)
    with pytest.raises(DataError, match=message):
        accounts.create(name, password, role="staff")
    accounts.create(name, PASSWORD, role="staff")
    with pytest.raises(DataError, match="too easy to guess"):
        accounts.reset_password(name, password)
    assert logs_in(accounts, name, PASSWORD)  # the refused reset changed nothing


# --- the account-wide slow-down for unknown browsers ---------------------------------------
def test_many_addresses_slow_the_account_down_but_not_a_browser_it_used(store, clock):
    accounts = Accounts(store, clock=clock, max_failures=3, account_free_failures=4, account_max_delay=60.0)
    accounts.create("ada", PASSWORD, role="admin")
    accounts.login("ada", PASSWORD, address="home")
    device = accounts.remember_device("ada", None)
    for n in range(4):  # four addresses, one wrong password each: under every per-address lockout
        with pytest.raises(AccessDenied):
            accounts.login("ada", "a wrong password", address=f"10.0.0.{n}")
    with pytest.raises(AccessDenied):  # the fourth failure set a 1 s delay; this one waits it out...
        clock.now += 1
        accounts.login("ada", "a wrong password", address="10.0.1.1")
    with pytest.raises(auth.AccountSlowed) as slowed:  # ...this one does not
        accounts.login("ada", PASSWORD, address="10.0.1.2")  # even the right password, from a new browser
    assert slowed.value.retry_after == 2.0 and "browser you used before" in str(slowed.value)
    assert accounts.login("ada", PASSWORD, address="10.0.1.3", device=device)  # the browser it used passes
    assert accounts.account_delay(3) == 0 and accounts.account_delay(4) == 1 and accounts.account_delay(40) == 60
    clock.now += 3  # the delay passed: a new browser gets its turn with the right password
    assert accounts.login("ada", PASSWORD, address="10.0.1.2")
    assert accounts.remember_device("ada", device) == device  # the same browser keeps its token


def test_a_timer_reading_the_session_does_not_keep_it_alive(accounts, clock):
    accounts.create("sam", PASSWORD, role="staff")
    token = accounts.login("sam", PASSWORD, address="a")
    for n in range(1, 4):
        clock.now += 1000
        assert accounts.session_user(token, renew=False) == "sam"  # a poll: still logged in...
        assert accounts.session_left(token) == 3600 - 1000 * n  # ...and the idle time runs on
    clock.now += 601
    assert accounts.session_user(token, renew=False) is None and accounts.session_left(token) == 0


# --- two-factor sign-in -----------------------------------------------------------------
def app_code(uri: str, at: float) -> str:
    """What the phone's authenticator app shows at `at` for the address in the QR code."""
    import pyotp
    return pyotp.parse_uri(uri).at(at)


def test_two_factor_enrolment_login_replay_and_recovery_codes(accounts, store, clock):
    from csbot.service.twofactor import secret_of
    accounts.create("ada", PASSWORD, role="admin")
    two_factor = accounts.two_factor
    uri = two_factor.begin("ada")
    assert two_factor.begin("ada") == uri and len(secret_of(uri).replace(" ", "")) == 32  # a reload: same QR
    with pytest.raises(DataError, match="not the one the app shows now"):
        two_factor.confirm("ada", "000000" if app_code(uri, clock.now) != "000000" else "111111")
    codes = two_factor.confirm("ada", app_code(uri, clock.now))
    assert len(codes) == 10 and len(set(codes)) == 10 and store.users()[0]["two_factor"] is True
    assert "totp_secret" not in store.users()[0] and codes[0] not in str(store.db.rows("SELECT * FROM recovery_codes"))
    with pytest.raises(AccessDenied, match="two-factor code"):  # the password alone opens nothing now
        accounts.login("ada", PASSWORD, address="a")
    with pytest.raises(AccessDenied):  # the code used to confirm does not work twice
        accounts.login("ada", PASSWORD, address="a", code=app_code(uri, clock.now))
    clock.now += 30
    assert accounts.login("ada", PASSWORD, address="a", code=app_code(uri, clock.now))
    clock.now += 30  # a phone 30 s slow still works
    assert accounts.login("ada", PASSWORD, address="a", code=app_code(uri, clock.now - 30 + 60))
    with pytest.raises(AccessDenied):  # a right code with a wrong password is no login
        clock.now += 60
        accounts.login("ada", "a wrong password", address="a", code=app_code(uri, clock.now))
    assert accounts.login("ada", PASSWORD, address="a", code=codes[0].upper())  # a recovery code, once
    with pytest.raises(AccessDenied):
        accounts.login("ada", PASSWORD, address="a", code=codes[0])
    assert two_factor.codes_left("ada") == 9
    clock.now += 30
    fresh = two_factor.new_recovery_codes("ada", app_code(uri, clock.now))
    assert two_factor.codes_left("ada") == 10 and not set(fresh) & set(codes)
    with pytest.raises(AccessDenied):  # the old codes stopped working
        accounts.login("ada", PASSWORD, address="a", code=codes[1])
    with pytest.raises(DataError, match="already on"):
        two_factor.begin("ada")
    with pytest.raises(DataError, match="wrong or was used already"):
        two_factor.turn_off("ada", "123", role="admin")
    two_factor.turn_off("ada", fresh[0], role="admin")
    assert accounts.login("ada", PASSWORD, address="a") and two_factor.codes_left("ada") == 0
    assert [e["action"] for e in store.audit_log(actor="ada")][:1] == ["login"]
    assert {"two_factor_on", "recovery_code_used", "recovery_codes_new", "two_factor_off"} <= \
        {e["action"] for e in store.audit_log(actor="ada")}


def test_required_two_factor_is_missing_for_admins_only_and_cannot_be_turned_off(store, clock):
    from csbot.service.twofactor import TwoFactor
    two_factor = TwoFactor(store, required_for_admins=True, clock=clock)
    accounts = Accounts(store, clock=clock, two_factor=two_factor)
    accounts.create("ada", PASSWORD, role="admin")
    accounts.create("sam", "sam's long password", role="staff")
    assert two_factor.missing("ada") and not two_factor.missing("sam")
    uri = two_factor.begin("ada")
    two_factor.confirm("ada", app_code(uri, clock.now))
    assert not two_factor.missing("ada")
    with pytest.raises(DataError, match="requires two-factor sign-in for admins"):
        two_factor.turn_off("ada", app_code(uri, clock.now + 30), role="admin")
    two_factor.reset("ada", actor="root")  # an admin helps after a lost phone
    assert two_factor.missing("ada")
