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
from csbot.ui.common import as_text, guarded

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.auth import Accounts


def users_table(users: list[dict]) -> pd.DataFrame:
    """Example: [{"name": "sam", "role": "staff", "disabled": 0, "created_at": "2026-11-28T18:31:19+00:00"}]
    -> name "sam", role "staff", status "enabled", created "2026-11-28 18:31" """
    return pd.DataFrame([[u["name"], u["role"], "disabled" if u.get("disabled") else "enabled",
                          (u.get("created_at") or "")[:16].replace("T", " ")]
                         for u in users], columns=["name", "role", "status", "created"], dtype="str")


def _same_passwords(first: str, second: str) -> str:
    if first != second:
        raise DataError("the two passwords differ; type the same password in both boxes")
    return first


def users_tab(page: gr.Blocks, *, accounts: "Accounts") -> None:
    """Build the Users tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")

    with gr.Tab("Users", id="users"):
        users = gr.Dataframe(label="Accounts", interactive=False)
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Create an account")
                new_name = gr.Textbox(label="Name", max_lines=1)
                new_role = gr.Radio(["staff", "admin"], value="staff", label="Role")
                new_password = gr.Textbox(label="Password (10 or more characters)", type="password")
                new_again = gr.Textbox(label="Password again", type="password")
                create_button = gr.Button("Create account", variant="primary")
            with gr.Column():
                gr.Markdown("### Reset a password")
                reset_name = gr.Dropdown([], label="Account", allow_custom_value=True)
                reset_password = gr.Textbox(label="New password", type="password")
                reset_again = gr.Textbox(label="New password again", type="password")
                reset_button = gr.Button("Set the new password")
            with gr.Column():
                gr.Markdown("### Change an account")
                change_name = gr.Dropdown([], label="Account to change", allow_custom_value=True)
                change_role = gr.Radio(["staff", "admin"], value="staff", label="New role")
                role_button = gr.Button("Set the role")
                with gr.Row():
                    disable_button = gr.Button("Disable")
                    enable_button = gr.Button("Enable")
                    delete_button = gr.Button("Delete", variant="stop")
        users_note = gr.Markdown()

    def users_view():
        rows = accounts.list()
        names = [u["name"] for u in rows]
        return users_table(rows), gr.update(choices=names), gr.update(choices=names)

    @admin
    def list_users(request: gr.Request, *, user):
        return users_view()

    def change(what: str):
        @admin
        def run(name, role, request: gr.Request, *, user):
            if not name:
                raise DataError("pick the account to change")
            if what == "role":
                accounts.set_role(name, role, actor=user)
                note = f"**{as_text(name)}** is {as_text(role)} now; their open sessions ended."
            elif what == "delete":
                accounts.delete(name, actor=user)
                note = f"Deleted the account **{as_text(name)}**."
            else:
                accounts.set_disabled(name, what == "disable", actor=user)
                note = f"The account **{as_text(name)}** is {what}d" + ("; its sessions ended." if what == "disable" else ".")
            return *users_view(), note
        run.__name__ = f"{what}_user"
        return run

    @admin
    def create_user(name, role, password, again, request: gr.Request, *, user):
        accounts.create((name or "").strip(), _same_passwords(password, again), role=role, actor=user)
        return *users_view(), "", "", f"Created the {as_text(role)} account **{as_text(name.strip())}**."

    @admin
    def set_password(name, password, again, request: gr.Request, *, user):
        if not name:
            raise DataError("pick the account whose password to reset")
        accounts.reset_password(name, _same_passwords(password, again), actor=user)
        return "", "", f"The password of **{as_text(name)}** is changed."

    page.load(list_users, None, [users, reset_name, change_name], api_name="users")
    create_button.click(create_user, [new_name, new_role, new_password, new_again],
                        [users, reset_name, change_name, new_password, new_again, users_note], api_name="create_user")
    for button, what in ((role_button, "role"), (disable_button, "disable"), (enable_button, "enable"),
                         (delete_button, "delete")):
        button.click(change(what), [change_name, change_role], [users, reset_name, change_name, users_note],
                     api_name=f"{what}_user")
    reset_button.click(set_password, [reset_name, reset_password, reset_again],
                       [reset_password, reset_again, users_note], api_name="reset_password")
