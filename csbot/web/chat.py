"""The customer chat page at `/`: the conversation, a message box, example questions, like /
dislike on each bot reply, and a "Talk to a person" button.

The conversation id lives in the browser (`gr.BrowserState`, i.e. localStorage, with a key kept in
the store instead of one drawn per process; the page itself holds that key, so it is no secret
from the browser), so a reload, a server restart or another server process shows the same
conversation, and two browsers never share one: the id is a random uuid only that browser has. The transcript is always read back
from the store, so staff replies (picked up by a 2-second `gr.Timer`) and bot replies show the
same way. Customer and bot text render as plain text: no markdown, no HTML tags, and escaped
before it reaches the page (the chatbot component still renders tags it is given even with
markdown off, and customer text must stay text).

Every event here is public: it only ever touches the conversation whose id the browser holds.
Messages are rate-limited per conversation and per client address with a polite reply.
This module holds no routing logic: `Bot.respond` decides, exactly as for the CLI and the API.
"""

import html

import gradio as gr

from csbot.errors import CsbotError, DataError, RateLimited, ReplyFailed
from csbot.language import Words
from csbot.store import client_key, valid_conversation_id
from csbot.web.common import client_address

POLL_SECONDS = 2.0


def as_text(role: str, text: str) -> dict:
    """A chat message whose text shows literally. Example: "<b>hi</b>" shows as <b>hi</b>, not bold."""
    return {"role": role, "content": html.escape(text, quote=False)}


def transcript(messages: list[dict], words: Words | None = None) -> tuple[list[dict], list[int | None]]:
    """Stored messages -> the chatbot's history and, per history entry, the id a like refers to.

    Example: [{"id": 1, "role": "customer", "text": "hi"}, {"id": 2, "role": "bot", "text": "Hello!"}]
             -> ([user "hi", assistant "Hello!"], [None, 2])
    """
    words = words or Words.load("en")
    history, ids = [], []
    for m in messages:
        if m["role"] == "customer":
            history.append(as_text("user", m["text"]))
            ids.append(None)
        elif m["role"] == "bot":
            history.append(as_text("assistant", m["text"]))
            ids.append(m["id"])
        elif m["role"] == "staff":
            history.append(as_text("assistant", words.say("chat.staff_says", author=m.get("author") or words["chat.our_team"],
                                                          text=m["text"])))
            ids.append(None)
        elif m["role"] == "system":
            history.append(as_text("assistant", f"· {m['text']} ·"))
            ids.append(None)
    return history, ids


SHOWN = 200  # the newest messages a customer's page shows: each send and restore reads at most these


class ChatPage:
    """The page's handlers, bound to the engine and the chat limits (server.ChatLimits)."""

    def __init__(self, engine, limits, words: Words):
        self.engine = engine
        self.limits = limits
        self.words = words

    def _show(self, conversation_id: str | None):
        conversation_id = valid_conversation_id(conversation_id)
        messages = self.engine.store.messages(conversation_id, last=SHOWN) if conversation_id else []
        history, ids = transcript(messages, self.words)
        return history, ids, (messages[-1]["id"] if messages else 0)

    def restore(self, conversation_id: str | None):
        history, ids, last = self._show(conversation_id)
        return history, ids, last, gr.update(visible=self._can_hand_off(conversation_id))

    def _known(self, conversation_id: str | None) -> str | None:
        """The browser's conversation id if the store knows it; else None, so the server makes a
        new one: a client cannot choose the id its conversation is stored under."""
        conversation_id = valid_conversation_id(conversation_id)
        return conversation_id if conversation_id and self.engine.store.has_messages(conversation_id) else None

    def send(self, message: str, conversation_id: str | None, request: gr.Request):
        conversation_id = self._known(conversation_id)
        try:
            self.limits.check(conversation_id or request.session_hash, client_address(request))
            reply = self.engine.bot.respond(message, conversation_id, channel="web",
                                            client=client_key(client_address(request)))
        except RateLimited as exc:
            history, ids, last = self._show(conversation_id)
            return (message, history + [as_text("assistant", str(exc))], ids + [None], last, conversation_id,
                    gr.update())
        except DataError as exc:
            history, ids, last = self._show(conversation_id)
            return (message if len(message or "") <= 10_000 else "",
                    history + [as_text("assistant", self.words.say("chat.unreadable", problem=exc))], ids + [None], last,
                    conversation_id, gr.update())
        except ReplyFailed as exc:  # stored and sent to the inbox; the log has the traceback
            history, ids, last = self._show(exc.conversation_id)
            return ("", history + [as_text("assistant", self.words["chat.failed_passed_on"])], ids + [None], last,
                    exc.conversation_id, gr.update())
        except CsbotError:  # something on our side (a model, a template): say so politely, keep the page
            history, ids, last = self._show(conversation_id)
            return ("", history + [as_text("assistant", self.words["chat.failed"])], ids + [None], last,
                    conversation_id, gr.update())
        if conversation_id is None:
            self.limits.started(reply.conversation_id)
        history, ids, last = self._show(reply.conversation_id)
        return "", history, ids, last, reply.conversation_id, gr.update(visible=not reply.handoff)

    def rate(self, data: gr.LikeData, ids: list, conversation_id: str | None):
        index = data.index[0] if isinstance(data.index, (list, tuple)) and data.index else data.index
        conversation_id = valid_conversation_id(conversation_id)
        if not conversation_id or not isinstance(index, int) or not 0 <= index < len(ids) or ids[index] is None:
            return
        try:
            self.engine.bot.rate(conversation_id, ids[index], 1 if data.liked else -1 if data.liked is False else 0)
        except CsbotError:
            pass  # not a rateable reply of this conversation: nothing to store

    def hand_off(self, conversation_id: str | None, request: gr.Request):
        conversation_id = self._known(conversation_id)
        try:
            self.limits.check(conversation_id or request.session_hash, client_address(request))
            self.limits.check_handoff(client_key(client_address(request)))
        except RateLimited as exc:
            raise gr.Error(str(exc)) from None
        reply = self.engine.bot.hand_off(conversation_id, client=client_key(client_address(request)))
        history, ids, last = self._show(reply.conversation_id)
        return history, ids, last, reply.conversation_id, gr.update(visible=False)

    def poll(self, conversation_id: str | None, last: int):
        """New messages since `last` (a staff reply, a hand-back) -> the whole transcript; else no change."""
        conversation_id = valid_conversation_id(conversation_id)
        if not conversation_id or not self.engine.store.messages_after(conversation_id, last or 0):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        history, ids, newest = self._show(conversation_id)
        return history, ids, newest, gr.update(visible=self._can_hand_off(conversation_id))

    def _can_hand_off(self, conversation_id: str | None) -> bool:
        conversation_id = valid_conversation_id(conversation_id)
        if not conversation_id or not self.engine.store.has_messages(conversation_id):
            return True  # no conversation yet (and don't create one just by looking)
        return self.engine.store.conversation(conversation_id)["owner"] != "human"


def build_chat(engine, limits, *, title: str | None = None) -> gr.Blocks:
    shop = engine.store.shop().get("shop_name", "our shop")
    words = Words.load(engine.settings.language)
    page = ChatPage(engine, limits, words)
    heading = words.say("chat.heading", shop_name=shop)
    with gr.Blocks(title=title or heading) as blocks:
        gr.Markdown(f"## {html.escape(heading)}\n{html.escape(words['chat.intro'])}")
        # The key is the store's, not one drawn per process: after a restart, or on another server
        # process, the id the browser holds still decrypts and the customer keeps their conversation.
        conversation = gr.BrowserState(None, storage_key="csbot-conversation",
                                       secret=engine.store.service_key("browser_state"))
        ids, last = gr.State([]), gr.State(0)
        log = gr.Chatbot(label=words["chat.conversation"], height=480, render_markdown=False, sanitize_html=True,
                         allow_tags=False, buttons=["copy"])  # no share button: it uploads outside
        with gr.Row():
            box = gr.Textbox(label=words["chat.your_message"], placeholder=words["chat.placeholder"],
                             max_lines=6, autofocus=True, scale=5)
            send = gr.Button(words["chat.send"], variant="primary", scale=1)
        person = gr.Button(words["chat.person"], size="sm")
        gr.Examples(words["chat.examples"], inputs=box)

        outputs = [box, log, ids, last, conversation, person]
        box.submit(page.send, [box, conversation], outputs, api_name="send")
        send.click(page.send, [box, conversation], outputs, api_name=False)
        log.like(page.rate, [ids, conversation], None, api_name="rate")
        person.click(page.hand_off, [conversation], [log, ids, last, conversation, person], api_name="hand_off")
        blocks.load(page.restore, [conversation], [log, ids, last, person], api_name="restore")
        gr.Timer(POLL_SECONDS).tick(page.poll, [conversation, last], [log, ids, last, person], api_name="poll",
                                    show_progress="hidden")
    return blocks
