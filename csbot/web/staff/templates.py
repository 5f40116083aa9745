"""The staff page's Templates tab: pick an intent, edit its reply variants one per line, see each
variant rendered on sample values as you type, and save. Saved variants are used at once.

`templates_tab` builds the tab's components and events inside the current Blocks. This module does
not validate or render templates itself: the engine's reply book previews a variant and
`engine.set_templates` checks and stores them; their errors are shown as they come. Its words are
the `staff` section's.
"""

import gradio as gr

from csbot.errors import TemplateError
from csbot.language import Words
from csbot.web.common import as_text, guarded
from csbot.web.format import lines


def preview_markdown(book, intent: str, variants: list[str], *, words: Words) -> str:
    """Each variant rendered on sample values, or why it cannot be (a numbered Markdown list, escaped).

    Example: preview_markdown(book, "greeting", ["Hi from {shop_name}", "Hi {nope}"], words=Words.load("en"))
             -> "1. Hi from Test Shop\\n2. ✗ unknown slot {nope}; known slots: ..."
    """
    if not variants:
        return words["staff.no_variants"]
    out = []
    for number_, variant in enumerate(variants, start=1):
        try:
            out.append(f"{number_}. {as_text(book.preview(variant, intent))}")
        except TemplateError as exc:  # preview checks one variant at a time, so it always says "variant 1"
            reason = str(exc).partition(", variant 1: ")[2] or str(exc)
            out.append(f"{number_}. ✗ {as_text(reason)}")
    return "\n".join(out)


def templates_tab(page: gr.Blocks, *, engine, accounts, intents: list[str], words: Words) -> None:
    """Build the Templates tab and its events inside the current gr.Tabs; `intents` are the first choices."""
    store = engine.store
    staff = guarded(accounts, "staff")

    with gr.Tab(words["staff.templates_tab"], id="templates") as tab:
        template_intent = gr.Dropdown(choices=intents, value=None, label=words["staff.intent"])
        template_about = gr.Markdown()
        variants = gr.Textbox(label=words["staff.variants"], lines=6)  # raw: its {slots} are examples
        gr.Markdown(words["staff.preview"])
        template_preview = gr.Markdown()
        template_save = gr.Button(words["staff.save"], variant="primary")
        template_status = gr.Markdown()

    @staff
    def template_intents(request: gr.Request, *, user):
        return gr.Dropdown(choices=list(store.intents()))

    @staff
    def templates(intent, request: gr.Request, *, user):
        if not intent:
            return "", "", ""
        return (as_text(store.intents().get(intent, "")), "\n".join(store.templates().get(intent, [])), "")

    @staff
    def preview_template(intent, text, request: gr.Request, *, user):
        return preview_markdown(engine.reply_book(), intent or "preview", lines(text), words=words) if intent else ""

    @staff
    def save_templates(intent, text, request: gr.Request, *, user):
        if not intent:
            raise gr.Error(words["staff.pick_intent_first"])
        engine.set_templates(intent, lines(text), actor=user)
        return words.say("staff.saved_templates", count=len(lines(text)), intent=as_text(intent))

    gr.on([page.load, tab.select], template_intents, outputs=[template_intent],
          api_name="template_intents", show_progress="hidden")
    template_intent.change(templates, [template_intent], [template_about, variants, template_status],
                           api_name="templates")
    variants.change(preview_template, [template_intent, variants], [template_preview],
                    api_name="preview_template", trigger_mode="always_last", show_progress="hidden")
    template_save.click(save_templates, [template_intent, variants], [template_status],
                        api_name="save_templates")
