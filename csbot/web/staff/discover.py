"""The staff page's Discover tab: run discovery on an imported history and review what it proposes.

Pick an import, start a run (it goes on in the background; a progress bar follows its job row),
then read the proposals, largest first: open one to see its examples with the agent replies behind
them (pick an example to read its whole conversation), rename it, merge another into it, split it
finer, move an example to another proposal, reject it, or accept it as a new intent (its drafts, edited here, become the templates) or into an
existing intent. Proposals live in the store, so a reload or a second server shows the same board.

`discover_tab` builds the tab's components and events inside the current Blocks; `proposal_rows`,
`example_rows` and `run_html` only format. Every event calls one method of the engine's review
(service/review.py) and re-reads the store. Its words are the `staff` section's.
"""

import html

import gradio as gr

from csbot.language import Words
from csbot.web.common import as_text, guarded
from csbot.web.format import lines, one_of, picked_id, when

BAR = 'aria-label="discovery progress" style="width:100%"'


def proposal_rows(proposals: list[dict]) -> list[list[str]]:
    """Example: [{"id": 3, "name": "gift_wrap", "size": 12, "tightness": 0.61, "closest": "gift_card",
                  "phrases": ["gift", "wrap"]}] -> [["3", "gift_wrap", "12", "0.61", "gift_card", "gift, wrap"]]"""
    return [[str(p["id"]), p["name"], str(p["size"]), "" if p.get("tightness") is None else f"{p['tightness']:.2f}",
             p.get("closest") or "", ", ".join(p["phrases"])] for p in proposals]


def example_rows(turns: list[dict]) -> list[list[str]]:
    """A proposal's examples, most typical first: key, customer text, the agent's reply, conversation."""
    return [[t["key"], t["text"], t.get("agent_reply") or "", t["conversation"]] for t in turns]


def conversation_markdown(turns: list[dict], picked: str, words: Words) -> str:
    """The conversation behind an example: each customer turn (the picked one in bold) and the
    agent's reply to it, as escaped Markdown."""
    out = [f"**{words['staff.conversation_behind']}**"]
    for t in turns:
        said = as_text(t["text"])
        out.append(f"- {words['staff.customer_said']}: " + (f"**{said}**" if t["key"] == picked else said))
        if t.get("agent_reply"):
            out.append(f"  - {words['staff.agent_said']}: {as_text(t['agent_reply'])}")
    return "\n".join(out)


def import_choices(imports: list[dict]) -> list[tuple[str, str]]:
    """Example: [{"id": "9f3a", "name": "history.jsonl", "turns": 645, "created_at": "2026-12-06T08:00:00"}]
             -> [("history.jsonl · 645 turns · 2026-12-06 08:00", "9f3a")]"""
    return [(f"{i['name']} · {i['turns']} turns · {when(i['created_at'])}", i["id"]) for i in imports]


def run_html(job: dict | None, words: Words) -> str:
    """The latest discovery run as a progress bar and a line of text."""
    if not job:
        return f"<p>{html.escape(words['staff.no_discovery'])}</p>"
    status = job.get("status") or "?"
    bar = f'<progress value="{job.get("step") or 0}" max="100" {BAR}></progress>' if status == "running" else ""
    said = words.say("staff.discovery_status", status=one_of(words, "staff.run", status),
                     phase=job.get("phase") or "", started=when(job.get("started_at"), seconds=True))
    error = f"<p><code>{html.escape(job['error'])}</code></p>" if job.get("error") else ""
    return f"<div id='discovery-status'>{bar}<p>{html.escape(said)}</p>{error}</div>"


def discover_tab(page: gr.Blocks, *, engine, accounts, words: Words) -> None:
    """Build the Discover tab and its events inside the current gr.Tabs."""
    store = engine.store
    staff = guarded(accounts, "staff")
    timed = guarded(accounts, "staff", renew=False)  # called by the timer too: not a user action
    w = words.__getitem__

    def intent_choices() -> list[tuple[str, str]]:
        return [(w("staff.new_intent"), ""), *((i, i) for i in store.intents())]  # "": make a new intent

    with gr.Tab(w("staff.discover_tab"), id="discover") as tab:
        gr.Markdown(w("staff.discover_help"))
        with gr.Row():
            history = gr.Dropdown(choices=import_choices(store.history_imports()), label=w("staff.history_import"),
                                  scale=3)
            run_btn = gr.Button(w("staff.run_discovery"), variant="primary", scale=1)
        status = gr.HTML(run_html(None, words))
        timer = gr.Timer(1.0)
        seen = gr.State([])  # the proposal rows the table shows: the poll sends only a change
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=w("staff.proposal_headers"), datatype="str", type="array",
                                     interactive=False, wrap=True, label=w("staff.proposals"))
            with gr.Column(scale=2):
                proposal = gr.Number(label=w("staff.proposal_id"), precision=0, interactive=False)
                overlap = gr.Markdown()
                name = gr.Textbox(label=w("staff.proposal_name"), max_lines=1)
                rename_btn = gr.Button(w("staff.rename"))
                drafts = gr.Textbox(label=w("staff.drafts"), lines=5)
                add_to = gr.Dropdown(choices=intent_choices(), value="", label=w("staff.add_to"))
                with gr.Row():
                    accept_btn = gr.Button(w("staff.accept"), variant="primary")
                    reject_btn = gr.Button(w("staff.reject"), variant="stop")
                    split_btn = gr.Button(w("staff.split"))
                with gr.Row():
                    other = gr.Number(label=w("staff.merge_with"), precision=0)
                    merge_btn = gr.Button(w("staff.merge"))
                note = gr.Markdown()
        examples = gr.Dataframe(headers=w("staff.example_headers"), datatype="str", type="array",
                                interactive=False, wrap=True, label=w("staff.examples"),
                                column_widths=["12%", "40%", "38%", "10%"])
        conversation = gr.Markdown()
        with gr.Row():
            picked = gr.Textbox(label=w("staff.picked_example"), interactive=False, max_lines=1)
            move_to = gr.Number(label=w("staff.move_to"), precision=0)
            move_btn = gr.Button(w("staff.move"))

    detail = [proposal, overlap, name, drafts, add_to, examples, picked]

    def opened(proposal_id) -> tuple:
        if not proposal_id:
            return None, "", "", "", gr.Dropdown(choices=intent_choices(), value=""), [], ""
        p = store.proposal(int(proposal_id))
        said = (words.say("staff.overlaps", intent=as_text(p["closest"]), score=f"{p['closest_score']:.2f}")
                if p.get("closest") else "")
        return (p["id"], said, p["name"], "\n".join(p["drafts"]),
                gr.Dropdown(choices=intent_choices(), value=p.get("closest") or ""),
                example_rows(p["turns"]), "")

    def board(proposal_id=None, message: str = "") -> tuple:
        rows = proposal_rows(store.proposals())
        return (rows, rows, *opened(proposal_id), message)

    outputs = [table, seen, *detail, note]

    @staff
    def refresh(request: gr.Request, *, user):
        return gr.Dropdown(choices=import_choices(store.history_imports())), *board()

    @timed
    def poll(shown, request: gr.Request, *, user):
        # Every second: the run's progress, and the proposals only when they changed (a run ended,
        # or another member of staff reviewed one), so the table neither flickers nor loses its place.
        rows = proposal_rows(store.proposals())
        table = (gr.skip(), gr.skip()) if rows == shown else (rows, rows)
        return run_html(engine.review.status(), words), *table

    @staff
    def start(import_id, request: gr.Request, *, user):
        if not import_id:
            raise gr.Error(w("staff.pick_import"))
        engine.review.start(import_id, user=user)
        return run_html(engine.review.status(), words)

    @staff
    def open_proposal(evt: gr.SelectData, request: gr.Request, *, user):
        return board(picked_id(evt, words))

    @staff
    def rename(proposal_id, new_name, request: gr.Request, *, user):
        engine.review.rename(int(proposal_id or 0), new_name, actor=user)
        return board(proposal_id, words.say("staff.renamed", name=as_text(new_name)))

    @staff
    def merge(proposal_id, other_id, request: gr.Request, *, user):
        engine.review.merge(int(proposal_id or 0), int(other_id or 0), actor=user)
        return board(proposal_id, words.say("staff.merged", other=int(other_id or 0)))

    @staff
    def split(proposal_id, request: gr.Request, *, user):
        parts = engine.review.split(int(proposal_id or 0), actor=user)
        return board(None, words.say("staff.split_into", count=len(parts)))

    @staff
    def reject(proposal_id, request: gr.Request, *, user):
        engine.review.reject(int(proposal_id or 0), actor=user)
        return board(None, w("staff.rejected"))

    @staff
    def accept(proposal_id, draft_text, intent, request: gr.Request, *, user):
        done = engine.review.accept(int(proposal_id or 0), actor=user, intent=intent or None,
                                    templates=lines(draft_text))
        return board(None, words.say("staff.accepted", intent=as_text(done["intent"]), examples=done["examples"]))

    @staff
    def pick_example(evt: gr.SelectData, request: gr.Request, *, user):
        row = evt.row_value if evt is not None else None
        if not row:
            return "", ""
        return row[0], conversation_markdown(store.history_conversation(row[0]), row[0], words)

    @staff
    def move(turn_key, proposal_id, to, request: gr.Request, *, user):
        if not turn_key:
            raise gr.Error(w("staff.pick_example_first"))
        engine.review.move(turn_key, int(to or 0), actor=user)
        return board(proposal_id, words.say("staff.moved", to=int(to or 0)))

    gr.on([page.load, tab.select], refresh, None, [history, *outputs], api_name="discover_refresh")
    gr.on([page.load, timer.tick], poll, [seen], [status, table, seen], api_name="discover_status",
          show_progress="hidden",
          trigger_mode="always_last")
    run_btn.click(start, [history], status, api_name="discover_start")
    table.select(open_proposal, None, outputs, api_name="open_proposal")
    rename_btn.click(rename, [proposal, name], outputs, api_name="proposal_rename")
    merge_btn.click(merge, [proposal, other], outputs, api_name="proposal_merge")
    split_btn.click(split, [proposal], outputs, api_name="proposal_split")
    reject_btn.click(reject, [proposal], outputs, api_name="proposal_reject")
    accept_btn.click(accept, [proposal, drafts, add_to], outputs, api_name="proposal_accept")
    examples.select(pick_example, None, [picked, conversation], api_name="pick_example")
    move_btn.click(move, [picked, proposal, move_to], outputs, api_name="proposal_move")
