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
    assert accounts.list() == [{"name": "sam.lee", "role": "staff", "disabled": 0,
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
