"""The staff page's Import tab: upload a support-log CSV, see its problems or a preview (rows per
intent, the first rows), then import it as training examples for the next training run; or upload
raw history (conversations without labels), scrubbed of personal data as it is stored, for the
Discover tab.

`imports_tab` builds the tab's components and events inside the current Blocks. This module does
not parse or validate CSV itself: `importer.read_logs` does for the preview, and
`engine.import_logs` checks the file again when importing, since an API caller can skip the preview.
Its words are the `staff` section's; the CSV's column names and the file's problems show as they are.
"""

from collections import Counter
from pathlib import Path

import gradio as gr

from csbot.errors import DataError
from csbot.importer import read_logs
from csbot.language import Words
from csbot.web.common import as_text, guarded

IMPORT_COLUMNS = ["text", "intent", "agent_reply", "created_at", "channel"]  # the preview's, in order
PREVIEW_ROWS = 200


def import_summary(rows: list[dict], intents: dict[str, str], *,
                   words: Words) -> tuple[list[list[str]], list[list[str]]]:
    """The preview of a clean log: its first rows and how many rows each intent has.

    Example: import_summary([{"text": "hi", "intent": "greeting", "agent_reply": None, "created_at": None,
             "channel": "chat"}], {"greeting": "Hello."}, words=Words.load("en"))
             -> ([["hi", "greeting", "", "", "chat"]], [["greeting", "1", "yes"]])
    """
    shown = [[r.get(k) or "" for k in IMPORT_COLUMNS] for r in rows[:PREVIEW_ROWS]]
    counts = Counter(r["intent"] for r in rows)
    return shown, [[intent, str(n), words["staff.has_templates" if intent in intents else "staff.no_templates"]]
                   for intent, n in counts.most_common()]


def problems_markdown(exc: DataError, path: str) -> str:
    """A refused file's problems as an escaped Markdown list, naming the upload rather than its temp path.

    Example: problems_markdown(DataError("/tmp/x/log.csv: 1 problem(s)...", problems=["line 3: text is empty"]),
             "/tmp/x/log.csv") -> "**log.csv: 1 problem(s)...**\\n\\n- line 3: text is empty"
    """
    headline = str(exc).split("\n")[0].replace(str(path), Path(path).name)
    return "\n".join([f"**{as_text(headline)}**", "", *(f"- {as_text(p)}" for p in exc.problems)])


def imports_tab(page: gr.Blocks, *, engine, accounts, words: Words) -> None:
    """Build the Import tab and its events inside the current gr.Tabs."""
    store = engine.store
    staff = guarded(accounts, "staff")

    with gr.Tab(words["staff.import_tab"], id="import"):
        gr.Markdown(words["staff.import_help"])
        upload = gr.File(label=words["staff.upload"], file_types=[".csv"], type="filepath",
                         elem_id="log-upload")
        import_status = gr.Markdown()
        import_counts = gr.Dataframe(headers=words["staff.count_headers"], datatype="str", type="array",
                                     interactive=False, label=words["staff.counts"])
        import_rows = gr.Dataframe(headers=words["staff.import_headers"], datatype="str", type="array",
                                   interactive=False, wrap=True,
                                   label=words.say("staff.first_rows", count=PREVIEW_ROWS))
        import_btn = gr.Button(words["staff.import"], variant="primary", interactive=False)
        import_result = gr.Markdown()
        gr.Markdown(words["staff.history_help"])
        history_upload = gr.File(label=words["staff.history_upload"], file_types=[".csv", ".jsonl", ".ndjson"],
                                 type="filepath", elem_id="history-upload")
        history_btn = gr.Button(words["staff.import_history"], variant="primary")
        history_result = gr.Markdown()

    @staff
    def import_preview(path, request: gr.Request, *, user):
        nothing = gr.Button(interactive=False)
        if not path:
            return "", [], [], nothing, ""
        try:
            rows = read_logs(Path(path))
        except DataError as exc:
            return problems_markdown(exc, path), [], [], nothing, ""
        shown_rows, counts = import_summary(rows, store.intents(), words=words)
        return (words.say("staff.clean_file", name=as_text(Path(path).name), count=len(rows)),
                counts, shown_rows, gr.Button(interactive=True), "")

    @staff
    def import_logs(path, request: gr.Request, *, user):
        if not path:
            raise gr.Error(words["staff.upload_first"])
        result = engine.import_logs(Path(path), actor=user)  # validates again: the API can skip the preview
        return words.say("staff.imported", rows=result["rows"], new=result["new"])

    @staff
    def import_history(path, request: gr.Request, progress=gr.Progress(), *, user):
        if not path:
            raise gr.Error(words["staff.upload_first"])
        try:
            done = engine.import_history(Path(path), actor=user, progress=progress)  # gr.Progress(share, desc)
        except DataError as exc:  # refused whole: its problems with line numbers, nothing stored
            return problems_markdown(exc, path)
        scrubbed = ", ".join(f"{n} {kind}" for kind, n in done["scrubbed"].items()) or words["staff.nothing_scrubbed"]
        return words.say("staff.history_imported", turns=done["turns"], new=done["new"],
                         conversations=done["conversations"], scrubbed=scrubbed)

    upload.change(import_preview, [upload], [import_status, import_counts, import_rows, import_btn, import_result],
                  api_name="import_preview")
    import_btn.click(import_logs, [upload], [import_result], api_name="import_logs")
    history_btn.click(import_history, [history_upload], [history_result], api_name="import_history")
