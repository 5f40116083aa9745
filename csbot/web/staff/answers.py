"""The staff page's Answers tab: search the curated answers, open one to edit its phrasings and text,
make a new one, or delete one. A saved answer is live for the next customer at once.

`answers_tab` builds the tab's components and events inside the current Blocks; saving or deleting
also refreshes the Inbox's "Existing answer" dropdown, which the caller passes in. `answer_keys` and
`answer_choices` are the store reads the Inbox shares. This module does not index or embed
anything: the engine's save_answer / delete_answer do. Its words are the `staff` section's.
"""

import gradio as gr

from csbot.language import Words
from csbot.web.common import as_text, guarded
from csbot.web.format import lines, picked_id


def answer_rows(answers: list[dict], query: str = "") -> list[list[str]]:
    """Answers whose key, text or a phrasing contains `query` (any case).

    Example: answer_rows([{"id": 1, "key": "gift_wrapping", "questions": ["Do you gift wrap?"],
                           "answer": "Yes."}], "WRAP")
             -> [["1", "gift_wrapping", "Do you gift wrap?", "Yes."]]
    """
    needle = (query or "").strip().lower()
    return [[str(a["id"]), a["key"], " | ".join(a["questions"]), a["answer"]] for a in answers
            if needle in "\n".join([a["key"], a["answer"], *a["questions"]]).lower()]


def answer_keys(store) -> dict[int, str]:
    """Every stored answer's key by its id. Example: {1: "gift_wrapping", 2: "careers"}"""
    return {a["id"]: a["key"] for a in store.answers()}


def answer_choices(store) -> list[tuple[str, int]]:
    """Dropdown choices naming each answer by its key. Example: [("gift_wrapping", 1), ("careers", 2)]"""
    return [(key, answer) for answer, key in answer_keys(store).items()]


def answers_tab(page: gr.Blocks, *, engine, accounts, attach_to: gr.Dropdown, words: Words) -> None:
    """Build the Answers tab and its events inside the current gr.Tabs; `attach_to` is the Inbox's
    answer dropdown, refreshed when an answer is saved or deleted."""
    store = engine.store
    staff = guarded(accounts, "staff")

    with gr.Tab(words["staff.answers_tab"], id="answers") as tab:
        with gr.Row():
            with gr.Column(scale=3):
                search = gr.Textbox(label=words["staff.search"], max_lines=1)
                answers_table = gr.Dataframe(headers=words["staff.answer_headers"], datatype="str", type="array",
                                             interactive=False, wrap=True, label=words["staff.answers_table"],
                                             column_widths=["7%", "20%", "43%", "30%"])
            with gr.Column(scale=2):
                answer_id = gr.Number(label=words["staff.answer_id"], precision=0, interactive=False)
                revision = gr.State(None)  # the answer's revision as opened: a save from an old copy is refused
                answer_key = gr.Textbox(label=words["staff.key"], max_lines=1)
                answer_questions = gr.Textbox(label=words["staff.questions"], lines=4)
                answer_text = gr.Textbox(label=words["staff.answer"], lines=4)
                with gr.Row():
                    save_btn = gr.Button(words["staff.save"], variant="primary")
                    blank_btn = gr.Button(words["staff.new"])
                    delete_btn = gr.Button(words["staff.delete"], variant="stop")
                answer_status = gr.Markdown()

    def editor(answer: dict | None, note: str = ""):
        if answer is None:  # a blank form: the key is editable only for a new answer
            return None, gr.Textbox(value="", interactive=True), "", "", note, None
        return (answer["id"], gr.Textbox(value=answer["key"], interactive=False),
                "\n".join(q["question"] for q in store.questions(answer["id"])), answer["answer"], note,
                answer["revision"])

    editor_outputs = [answer_id, answer_key, answer_questions, answer_text, answer_status, revision]

    @staff
    def answers(query, request: gr.Request, *, user):
        return answer_rows(store.answers(), query)

    @staff
    def open_answer(evt: gr.SelectData, request: gr.Request, *, user):
        return editor(store.answer(picked_id(evt, words)))

    @staff
    def blank_answer(request: gr.Request, *, user):
        return editor(None)

    @staff
    def save_answer(current, key, questions, text, query, opened, request: gr.Request, *, user):
        key = (key or "").strip()
        if current is not None and store.answer(int(current))["key"] != key:
            raise gr.Error(words["staff.key_fixed"])
        # a new answer never replaces one with the same key, and an edit never one changed since it
        # was opened (both checked where it is written)
        saved = engine.save_answer(key=key, questions=lines(questions), answer=text, actor=user,
                                   create_only=current is None,
                                   revision=None if current is None or opened is None else int(opened))
        return (answer_rows(store.answers(), query), gr.Dropdown(choices=answer_choices(store)),
                *editor(store.answer(saved), words.say("staff.saved_answer", answer=as_text(key))))

    @staff
    def delete_answer(current, query, request: gr.Request, *, user):
        if current is None:
            raise gr.Error(words["staff.pick_delete"])
        engine.delete_answer(int(current), actor=user)
        return (answer_rows(store.answers(), query), gr.Dropdown(choices=answer_choices(store), value=None),
                *editor(None, words.say("staff.deleted_answer", id=int(current))))

    gr.on([page.load, search.change, tab.select], answers, [search], [answers_table], api_name="answers",
          trigger_mode="always_last", show_progress="hidden")
    answers_table.select(open_answer, outputs=editor_outputs, api_name="open_answer")
    blank_btn.click(blank_answer, outputs=editor_outputs, api_name="blank_answer")
    save_btn.click(save_answer, [answer_id, answer_key, answer_questions, answer_text, search, revision],
                   [answers_table, attach_to, *editor_outputs], api_name="save_answer")
    delete_btn.click(delete_answer, [answer_id, search], [answers_table, attach_to, *editor_outputs],
                     api_name="delete_answer")
