"""Conversations and their messages: customer messages, bot replies with their routing trace, staff
replies, hand-offs, the staff inbox and customers' ratings.

Who owns a conversation (the bot or a person) is checked in the transaction that writes a bot
reply, so a person taking over while a reply is being worked out keeps the bot quiet. This module
does not decide replies (bot.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from csbot.errors import DataError, IdentityRefused
from csbot.store.backend import json_text, now, serialized, write

INBOX_STATUSES = ("open", "labelled", "answered", "dismissed")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a conversation id handed back by a client may be


def valid_conversation_id(conversation_id: object) -> str | None:
    """A client's conversation id if it looks like one of ours (ours are uuid hex), else None.

    Example: valid_conversation_id("3f2a9c...") -> "3f2a9c..."; valid_conversation_id("<script>") -> None
    """
    return conversation_id if isinstance(conversation_id, str) and _ID.fullmatch(conversation_id) else None


def client_key(address: str | None) -> str | None:
    """What the store keeps of a client's address: enough to tell one sender from another, not the
    address. Example: client_key("203.0.113.7") -> "c5b1e0..." (16 hex digits); client_key(None) -> None"""
    return hashlib.sha256(f"csbot-sender\x00{address}".encode()).hexdigest()[:16] if address else None


class ConversationRows:
    @serialized
    def conversation(self, conversation_id: str | None, *, channel: str = "cli", client: str | None = None) -> dict:
        """The conversation with this id, created if new (a new id is made when None), remembering
        the `client_key` of whoever started it."""
        conversation_id = conversation_id or uuid.uuid4().hex
        stamp = now()
        # ON CONFLICT DO NOTHING: two processes creating the same new conversation both get the one row
        self.db.execute("INSERT INTO conversations (id, channel, created_at, updated_at, customer_name, owner, slots, "
                        "pending_intent, pending_slot, client) VALUES (?, ?, ?, ?, NULL, 'bot', '{}', NULL, NULL, ?) "
                        "ON CONFLICT DO NOTHING", [conversation_id, channel, stamp, stamp, client])
        row = self.db.one("SELECT * FROM conversations WHERE id = ?", [conversation_id])
        return {**row, "slots": json.loads(row["slots"] or "{}")}

    @serialized
    def bind_identity(self, conversation_id: str, *, user_id: str, name: str | None, email: str | None) -> None:
        """Record the verified customer of a conversation (and their name and e-mail as its slots, for
        the templates), in one transaction. IdentityRefused when it is bound to another customer."""
        with write(self.db):
            row = self.db.one("SELECT customer_id, slots FROM conversations WHERE id = ?", [conversation_id])
            if row is None:
                raise DataError(f"no conversation {conversation_id!r}")
            if row["customer_id"] not in (None, user_id):
                raise IdentityRefused("this conversation belongs to another customer; start a new one")
            slots = {**json.loads(row["slots"] or "{}"), **({"customer_name": name} if name else {}),
                     **({"email": email} if email else {})}
            self.db.execute("UPDATE conversations SET customer_id = ?, customer_name = ?, customer_email = ?, "
                            "identity_verified_at = ?, slots = ? WHERE id = ?",
                            [user_id, name, email, now(), json_text(slots), conversation_id])

    @serialized
    def claim_for_person(self, conversation_id: str) -> bool:
        """Give a bot-owned conversation to a person, in one step; False when a person had it already
        (so a double click or two staff at once hand it over only once)."""
        # one statement: its row lock makes a second claim wait, then find owner = 'human'
        cursor = self.db.execute("UPDATE conversations SET owner = 'human', handoff_at = ?, updated_at = ?, "
                                 "pending_intent = NULL, pending_slot = NULL WHERE id = ? AND owner != 'human'",
                                 [now(), now(), conversation_id])
        return cursor.rowcount == 1

    @serialized
    def update_conversation(self, conversation_id: str, **changes) -> None:
        if "slots" in changes:
            changes["slots"] = json_text(changes["slots"])
        self.db.update("conversations", conversation_id, {**changes, "updated_at": now()})

    @serialized
    def add_message(self, conversation_id: str, *, role: str, text: str, **fields) -> int:
        if "trace" in fields and not isinstance(fields["trace"], str):
            fields["trace"] = json_text(fields["trace"])
        return self.db.insert("messages", {"conversation_id": conversation_id, "created_at": now(),
                                           "role": role, "text": text, **fields})

    @serialized
    def record_reply(self, conversation_id: str, *, message_id: int, changes: dict, inbox: str | None,
                     reply: dict | None) -> int | None:
        """Store the bot's handling of customer message `message_id` in one transaction: the
        conversation's changes, the inbox flag and the reply (a dict of message fields with `text`).

        The owner is read inside the transaction, locking the conversation's row (other
        conversations' replies are written meanwhile): when a person took the conversation while the
        reply was being worked out, nothing of the bot's is written, the message goes to the inbox
        as 'human', and None is returned. Otherwise returns the reply's id (None when `reply` is None).
        """
        with write(self.db, serial=False):
            owner = self.db.value(f"SELECT owner FROM conversations WHERE id = ?{self.db.dialect.for_update}",
                                  [conversation_id])
            if owner == "human":
                self.flag_for_inbox(message_id, reason="human")
                return None
            self.update_conversation(conversation_id, **changes)
            if inbox:
                self.flag_for_inbox(message_id, reason=inbox)
            if reply is None:
                return None
            fields = {k: v for k, v in reply.items() if k != "text"}
            return self.add_message(conversation_id, role="bot", text=reply["text"], **fields)

    @serialized
    def messages(self, conversation_id: str, *, last: int | None = None) -> list[dict]:
        """The conversation's messages in order; with `last`, only the newest that many (what a page
        shows: its cost stays bounded however long a stranger keeps a conversation going)."""
        if last is None:
            return self.db.rows("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id])
        return self.db.rows("SELECT * FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC "
                            "LIMIT ?) newest ORDER BY id", [conversation_id, last])

    @serialized
    def has_messages(self, conversation_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE conversation_id = ? LIMIT 1",
                               [conversation_id]).fetchone() is not None

    @serialized
    def last_bot_message(self, conversation_id: str) -> dict | None:
        return self.db.one("SELECT * FROM messages WHERE conversation_id = ? AND role = 'bot' ORDER BY id DESC LIMIT 1",
                           [conversation_id])

    @serialized
    def count_intent_replies(self, conversation_id: str, intent: str) -> int:
        return self.db.value(
            "SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'bot' AND intent = ?"
            " AND route = 'template'", [conversation_id, intent])

    @serialized
    def message(self, message_id: int) -> dict | None:
        return self.db.one("SELECT * FROM messages WHERE id = ?", [message_id])

    @serialized
    def verified_customer(self, conversation_id: str) -> dict | None:
        """The customer the shop's server vouched for in this conversation (bind_identity), or None.
        Example: {"id": "u-1042", "name": "Ada Lovelace", "email": "ada@example.com"}"""
        return self.db.one("SELECT customer_id AS id, customer_name AS name, customer_email AS email FROM "
                           "conversations WHERE id = ? AND identity_verified_at IS NOT NULL", [conversation_id])

    @serialized
    def messages_after(self, conversation_id: str, after_id: int = 0, *, limit: int = 1000) -> list[dict]:
        """The conversation's messages with an id above after_id, oldest first, at most `limit`
        (what a polling page or API client has not seen)."""
        return self.db.rows("SELECT * FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
                            [conversation_id, after_id, limit])

    # --- the staff inbox ----------------------------------------------------------------
    @serialized
    def flag_for_inbox(self, message_id: int, *, reason: str) -> None:
        self.db.update("messages", message_id, {"inbox": reason, "inbox_status": "open"})

    @serialized
    def dismiss_sender(self, message_id: int) -> int:
        """Dismiss every open item of the sender of `message_id` (a flood's, at once); how many."""
        with write(self.db):
            message = self.message(message_id)
            if message is None:
                raise DataError(f"no message {message_id}")
            sender = self.db.one("SELECT coalesce(client, id) AS sender FROM conversations WHERE id = ?",
                                 [message["conversation_id"]])["sender"]
            return self.db.execute(
                "UPDATE messages SET inbox_status = 'dismissed' WHERE inbox_status = 'open' AND conversation_id IN "
                "(SELECT id FROM conversations WHERE coalesce(client, id) = ?)", [sender]).rowcount

    @serialized
    def set_inbox_status(self, message_id: int, status: str) -> None:
        """Close an inbox item: 'labelled', 'answered' or 'dismissed' (or 'open' to reopen it)."""
        if status not in INBOX_STATUSES:
            raise DataError(f"inbox status must be open, labelled, answered or dismissed; found {status!r}")
        with write(self.db):
            if self.message(message_id) is None:
                raise DataError(f"no message {message_id}")
            self.db.update("messages", message_id, {"inbox_status": status})

    @serialized
    def inbox_message(self, message_id: int) -> dict:
        """A customer's message that can be in the inbox (a customer's, or a system note of one), or DataError."""
        message = self.message(message_id)
        if message is None or message["role"] not in ("customer", "system"):
            raise DataError(f"message {message_id} is not a customer message in the inbox; pick one from the list")
        return message

    @serialized
    def label_message(self, message_id: int, intent: str, *, source: str, scrubbed=lambda text: text) -> dict:
        """Staff label a customer message with an existing intent: a training example for the next
        retrain (its text as `scrubbed` gives it: the caller's personal-data scrubber), and the inbox
        item closed as labelled, in one transaction. Returns the message."""
        with write(self.db):
            message = self.message(message_id)
            if message is None or message["role"] != "customer":
                raise DataError(f"message {message_id} is not a customer message")
            if intent not in self.intents():
                raise DataError(f"no intent {intent!r}; pick one of the list")
            self.add_examples([{"text": scrubbed(message["text"]), "intent": intent,
                                "created_at": message["created_at"]}], source=source)
            self.set_inbox_status(message_id, "labelled")
        return message

    @serialized
    def known_out_of_scope(self, *, limit: int = 2000) -> list[str]:
        """Questions known to be outside every intent, which the trade-off curve counts as wrongly
        accepted when the threshold lets them through: the curated answers' phrasings, and the
        fallbacks staff dismissed (answered ones are phrasings already)."""
        dismissed = [m["text"] for m in self.inbox(status="dismissed", limit=limit) if m.get("inbox") == "fallback"]
        return list(dict.fromkeys([q["question"] for q in self.questions()] + dismissed))

    @serialized
    def inbox(self, *, status: str = "open", limit: int = 200, offset: int = 0, reason: str | None = None,
              item: int | None = None) -> list[dict]:
        """Customer messages waiting for staff, each with the bot's reply to it (`reply_text`,
        `reply_route`, `reply_trace` as a dict, `reply_id`, `rating`) when there was one, and
        `sender_items`: how many items with this status the same sender has. Senders with the
        fewest items come first, then the newest: a thousand requests from one address sink below
        a real customer's one. `reason` keeps one kind (fallback, human, ...); `offset` pages;
        `item` reads one message as the inbox shows it (or nothing, if it is no longer there).

        Example: inbox(limit=50, offset=50, reason="asked_for_person") -> the second page of hand-offs
        """
        def of_reason(alias: str) -> str:
            return f"AND {alias}.inbox = ?" if reason else ""

        found = self.db.rows(f"""WITH load AS (
                   SELECT coalesce(c.client, c.id) AS sender, count(*) AS items FROM messages x
                   JOIN conversations c ON c.id = x.conversation_id
                   WHERE x.inbox_status = ? {of_reason("x")} GROUP BY coalesce(c.client, c.id))
               SELECT m.*, l.items AS sender_items, r.id AS reply_id, r.text AS reply_text,
                      r.route AS reply_route, r.trace AS reply_trace, r.rating AS rating,
                      r.model_version AS model_version_reply
               FROM messages m JOIN conversations c ON c.id = m.conversation_id
               JOIN load l ON l.sender = coalesce(c.client, c.id)
               LEFT JOIN messages r ON r.id = (
                   SELECT min(id) FROM messages WHERE conversation_id = m.conversation_id AND id > m.id
                   AND role = 'bot' AND id < coalesce((SELECT min(id) FROM messages WHERE
                   conversation_id = m.conversation_id AND id > m.id AND role = 'customer'), 9e18))
               WHERE m.inbox_status = ? {of_reason("m")} {"AND m.id = ?" if item is not None else ""}
               ORDER BY l.items, m.id DESC LIMIT ? OFFSET ?""",
                             [status, *([reason] if reason else []), status, *([reason] if reason else []),
                              *([int(item)] if item is not None else []), int(limit), int(offset)])
        for row in found:
            row["reply_trace"] = json.loads(row["reply_trace"]) if row["reply_trace"] else {}
        return found

    @serialized
    def rate(self, conversation_id: str, message_id: int, rating: int) -> None:
        """Store a customer's like (1) or dislike (-1) of a bot reply in their own conversation.
        A dislike sends the customer message it answered to the inbox, unless staff have handled
        that message already (a dismissed item stays dismissed: no customer can reopen it)."""
        if rating not in (-1, 0, 1):
            raise DataError(f"a rating is 1 (like), -1 (dislike) or 0 (none); found {rating!r}")
        with write(self.db):
            message = self.message(message_id)
            if message is None or message["conversation_id"] != conversation_id or message["role"] != "bot":
                raise DataError(f"message {message_id} is not a bot reply in this conversation")
            self.db.update("messages", message_id, {"rating": rating})
            if rating == -1:
                asked = self.db.one("SELECT * FROM messages WHERE conversation_id = ? AND id < ? AND role = 'customer' "
                                    "ORDER BY id DESC LIMIT 1", [conversation_id, message_id])
                if asked and asked["inbox_status"] is None:
                    self.flag_for_inbox(asked["id"], reason="disliked")

    @serialized
    def live_conversations(self, *, limit: int = 25, offset: int = 0) -> list[dict]:
        """A page of the conversations a person owns or was asked for, most recently active first,
        each with its last message (`last_role`, `last_text`, `last_at`), the verified customer
        (`customer_name`, `customer_email`, `identity_verified_at`: service/identity.py), and the last staff member who
        wrote in it (`staff`): one query of index look-ups, whatever the transcripts' length (the
        staff page polls it every few seconds)."""
        last = "(SELECT {} FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1)"
        return self.db.rows(
            f"SELECT c.id, c.owner, c.handoff_at, c.updated_at, c.customer_id, c.customer_name, c.customer_email, "
            f"c.identity_verified_at, {last.format('role')} AS last_role, "
            f"{last.format('text')} AS last_text, {last.format('created_at')} AS last_at, "
            "(SELECT author FROM messages m WHERE m.conversation_id = c.id AND m.author IS NOT NULL "
            "ORDER BY m.id DESC LIMIT 1) AS staff "
            "FROM conversations c WHERE c.owner = 'human' OR c.handoff_at IS NOT NULL "
            "ORDER BY c.updated_at DESC, c.id LIMIT ? OFFSET ?", [limit, offset])

    @serialized
    def recent_customer_messages(self, limit: int = 500) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT text FROM messages WHERE role = 'customer' ORDER BY id DESC "
                                              "LIMIT ?", [limit]).fetchall()]
