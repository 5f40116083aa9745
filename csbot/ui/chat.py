"""The customer chat page: a message box, the conversation, example questions.

Each browser session keeps its own conversation id in `gr.State`; every message goes through
`Bot.respond`, exactly as the CLI's. Customer and bot text render as plain text (no markdown,
no HTML tags) and are HTML-escaped before they reach the page: the chatbot component still
renders tags it is given even with markdown off, and customer text must stay text.
"""

from __future__ import annotations

import html

import gradio as gr

from csbot.errors import CsbotError

EXAMPLES = ["Where is my order BB-482913?", "How do I return a rug?", "Do you offer gift wrapping?",
            "Can I pay with Klarna?"]


def as_text(role: str, text: str) -> dict:
    """A chat message whose text shows literally. Example: "<b>hi</b>" shows as <b>hi</b>, not bold."""
    return {"role": role, "content": html.escape(text, quote=False)}


def build_chat(engine, *, title: str | None = None) -> gr.Blocks:
    shop = engine.store.shop().get("shop_name", "our shop")
    with gr.Blocks(title=title or f"{shop} · help") as page:
        gr.Markdown(f"## {shop} · customer help\nAsk about orders, delivery, returns, payments or your account.")
        conversation = gr.State(None)
        log = gr.Chatbot(label="Conversation", height=480, render_markdown=False, sanitize_html=True,
                         allow_tags=False, feedback_options=None, buttons=["copy"])  # no share: it reaches out
        box = gr.Textbox(label="Your message", placeholder="Type your question and press Enter",
                         max_lines=6, autofocus=True)
        gr.Examples(EXAMPLES, inputs=box)

        def send(message: str, history: list, conversation_id: str | None):
            history = list(history or [])
            try:
                reply = engine.bot.respond(message, conversation_id, channel="web")
            except CsbotError as exc:
                return "", history + [as_text("assistant", f"Sorry, I couldn't read that: {exc}")], conversation_id
            history.append(as_text("user", message.strip()))
            if reply.text:
                history.append(as_text("assistant", reply.text))
            return "", history, reply.conversation_id

        box.submit(send, [box, log, conversation], [box, log, conversation], api_name="send")
    return page
