"""The admin page's Users tab: the accounts (name, role, enabled, created), a form to create a
staff or admin account, one to reset an account's password, and one to change an account's role,
disable or enable it, or delete it. Each change ends that account's open sessions at once.

`users_tab` builds the tab's components and events inside the current Blocks; password boxes are
emptied after each change, and no password is ever shown. This module does not hash, check or
store passwords, nor decide what a valid name or password is: `auth.Accounts` does.
"""

from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from csbot.errors import DataError
from csbot.language import Words
from csbot.service.auth import ROLES
from csbot.web.common import as_text, guarded
from csbot.web.format import one_of, when

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts


def users_table(users: list[dict], words: Words) -> pd.DataFrame:
    """Example: [{"name": "sam", "role": "staff", "disabled": 0, "created_at": "2026-11-28T18:31:19+00:00"}]
    -> name "sam", role "staff", status "enabled", created "2026-11-28 18:31" """
    return pd.DataFrame([[u["name"], one_of(words, "admin.role", u["role"]),
                          words["admin.disabled" if u.get("disabled") else "admin.enabled"]
                          + (words["admin.with_two_factor"] if u.get("two_factor") else ""),
                          when(u.get("created_at"))]
                         for u in users], columns=words["admin.users_headers"], dtype="str")


def _same_passwords(first: str, second: str, words: Words) -> str:
    if first != second:
        raise DataError(words["admin.passwords_differ"])
    return first


def users_tab(page: gr.Blocks, *, accounts: "Accounts", words: Words) -> None:
    """Build the Users tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    w = words.__getitem__
    roles = [(one_of(words, "admin.role", role), role) for role in ROLES]

    with gr.Tab(w("admin.users_tab"), id="users"):
        users = gr.Dataframe(label=w("admin.accounts"), interactive=False)
        with gr.Row():
            with gr.Column():
                gr.Markdown(f"### {w('admin.create_heading')}")
                new_name = gr.Textbox(label=w("admin.name"), max_lines=1)
                new_role = gr.Radio(roles, value="staff", label=w("admin.role"))
                new_password = gr.Textbox(label=w("admin.password"), type="password")
                new_again = gr.Textbox(label=w("admin.password_again"), type="password")
                create_button = gr.Button(w("admin.create"), variant="primary")
            with gr.Column():
                gr.Markdown(f"### {w('admin.reset_heading')}")
                reset_name = gr.Dropdown([], label=w("admin.account"), allow_custom_value=True)
                reset_password = gr.Textbox(label=w("admin.new_password"), type="password")
                reset_again = gr.Textbox(label=w("admin.new_password_again"), type="password")
                reset_button = gr.Button(w("admin.set_password"))
            with gr.Column():
                gr.Markdown(f"### {w('admin.change_heading')}")
                change_name = gr.Dropdown([], label=w("admin.account_to_change"), allow_custom_value=True)
                change_role = gr.Radio(roles, value="staff", label=w("admin.new_role"))
                role_button = gr.Button(w("admin.set_role"))
                with gr.Row():
                    disable_button = gr.Button(w("admin.disable"))
                    enable_button = gr.Button(w("admin.enable"))
                    delete_button = gr.Button(w("admin.delete"), variant="stop")
                two_factor_button = gr.Button(w("admin.reset_two_factor"), size="sm")
        users_note = gr.Markdown()

    def users_view():
        rows = accounts.list()
        names = [u["name"] for u in rows]
        return users_table(rows, words), gr.update(choices=names), gr.update(choices=names)

    @admin
    def list_users(request: gr.Request, *, user):
        return users_view()

    def change(what: str):
        @admin
        def run(name, role, request: gr.Request, *, user):
            if not name:
                raise DataError(w("admin.pick_account"))
            if what == "role":
                accounts.set_role(name, role, actor=user)
                note = words.say("admin.role_set", name=as_text(name), role=as_text(one_of(words, "admin.role", role)))
            elif what == "delete":
                accounts.delete(name, actor=user)
                note = words.say("admin.deleted", name=as_text(name))
            elif what == "two_factor":  # a lost phone and no recovery codes
                accounts.two_factor.reset(name, actor=user)
                note = words.say("admin.two_factor_reset", name=as_text(name))
            else:
                accounts.set_disabled(name, what == "disable", actor=user)
                note = words.say(f"admin.{what}d_now", name=as_text(name))
            return *users_view(), note
        run.__name__ = f"{what}_user"
        return run

    @admin
    def create_user(name, role, password, again, request: gr.Request, *, user):
        accounts.create((name or "").strip(), _same_passwords(password, again, words), role=role, actor=user)
        return *users_view(), "", "", words.say("admin.created", role=as_text(one_of(words, "admin.role", role)),
                                                name=as_text(name.strip()))

    @admin
    def set_password(name, password, again, request: gr.Request, *, user):
        if not name:
            raise DataError(w("admin.pick_account_to_reset"))
        accounts.reset_password(name, _same_passwords(password, again, words), actor=user)
        return "", "", words.say("admin.password_changed", name=as_text(name))

    page.load(list_users, None, [users, reset_name, change_name], api_name="users")
    create_button.click(create_user, [new_name, new_role, new_password, new_again],
                        [users, reset_name, change_name, new_password, new_again, users_note], api_name="create_user")
    for button, what in ((role_button, "role"), (disable_button, "disable"), (enable_button, "enable"),
                         (delete_button, "delete"), (two_factor_button, "two_factor")):
        button.click(change(what), [change_name, change_role], [users, reset_name, change_name, users_note],
                     api_name=f"{what}_user")
    reset_button.click(set_password, [reset_name, reset_password, reset_again],
                       [reset_password, reset_again, users_note], api_name="reset_password")
