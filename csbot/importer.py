"""Reading support logs, curated answers and raw support history, all-or-nothing.

A file is checked whole before anything is stored: every problem is reported with its line
number, and a file with any problem is refused. This module returns clean rows; scrubbing
personal data out of history (dialogue/scrub.py) and storing rows are its callers' jobs.

Raw history comes in three forms, told apart by the file's name and header:
  - a CSV of turns: conversation_id, role, text (created_at optional); role one of customer,
    agent, bot, system;
  - JSON Lines (.jsonl), one conversation a line: {"id": ..., "turns": [{"role": ..., "text": ...,
    "at": ...}]};
  - a CSV with a text column and no role: one customer message a row.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from csbot.errors import DataError
from csbot.store.answers import KEY as ANSWER_KEY
from csbot.store.catalog import intent_name_problem

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 5000


def _text(path: Path, *, what: str) -> str:
    """A file's text: refused when unreadable, too large, binary or not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"{path} is {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}. Split the file.")
    if b"\x00" in raw:
        raise DataError(f"{path} contains NUL bytes: it looks binary, not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: not UTF-8 text; save the file as UTF-8") from None


def _rows(path: Path, *, required: list[list[str]], what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """Decode and parse a CSV file; `required` lists column groups of which one name must appear."""
    path = Path(path)
    text = _text(path, what=what)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    for group in required:
        if not any(name in header for name in group):
            raise DataError(f"{path}: expected a column named {' or '.join(group)}; found columns "
                            f"{header or 'none'}. The first line must be a header such as "
                            f"{','.join(g[0] for g in required)}")
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: broken CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: no rows under the header")
    return header, rows


def _check_text(value: str | None, *, line: int, column: str, problems: list[str]) -> str:
    text = " ".join((value or "").split())
    if not text:
        problems.append(f"line {line}: {column} is empty")
    elif len(text) > MAX_TEXT_CHARS:
        problems.append(f"line {line}: {column} has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    return text


def read_logs(path: Path) -> list[dict]:
    """Labelled support messages: columns text and intent (or category); agent_reply, created_at,
    channel optional. Example row -> {"text": "where is BB-482913", "intent": "order_status", ...}"""
    header, rows = _rows(path, required=[["text"], ["intent", "category"]], what="support log")
    label_column = "intent" if "intent" in header else "category"
    problems: list[str] = []
    out = []
    for line, row in rows:
        if None in row:
            problems.append(f"line {line}: {len(header) + len(row[None])} fields; the header has {len(header)}")
            continue
        text = _check_text(row.get("text"), line=line, column="text", problems=problems)
        intent = (row.get(label_column) or "").strip()
        if intent_name_problem(intent):
            problems.append(f"line {line}: {label_column} {intent!r:.80} is not an intent name "
                            f"({intent_name_problem(intent)})")
        out.append({"text": text, "intent": intent,
                    "agent_reply": " ".join((row.get("agent_reply") or "").split()) or None,
                    "created_at": (row.get("created_at") or "").strip() or None,
                    "channel": (row.get("channel") or "").strip() or None})
    if problems:
        raise DataError(f"{path}: {len(problems)} problem(s); nothing was imported. Fix these lines:",
                        problems=problems)
    return out


def read_answers(path: Path) -> list[dict]:
    """Curated answers: columns key, questions (phrasings separated by |) and answer.
    Example row -> {"key": "gift_wrapping", "questions": ["Do you gift wrap?", ...], "answer": "..."}"""
    header, rows = _rows(path, required=[["key"], ["questions"], ["answer"]], what="answers")
    problems: list[str] = []
    out = []
    keys: dict[str, int] = {}
    for line, row in rows:
        if None in row:
            problems.append(f"line {line}: {len(header) + len(row[None])} fields; the header has {len(header)}")
            continue
        key = (row.get("key") or "").strip()
        if not ANSWER_KEY.fullmatch(key):
            problems.append(f"line {line}: key {key!r} must be 1-64 letters, digits, _ or -")
        elif key in keys:
            problems.append(f"line {line}: key {key!r} already used on line {keys[key]}")
        keys.setdefault(key, line)
        questions = [" ".join(q.split()) for q in (row.get("questions") or "").split("|")]
        questions = [q for q in questions if q]
        if not questions:
            problems.append(f"line {line}: questions is empty; give one or more phrasings separated by |")
        for q in questions:
            _check_text(q, line=line, column="a question", problems=problems)
        answer = _check_text(row.get("answer"), line=line, column="answer", problems=problems)
        out.append({"key": key, "questions": questions, "answer": answer})
    if problems:
        raise DataError(f"{path}: {len(problems)} problem(s); nothing was imported. Fix these lines:",
                        problems=problems)
    return out


ROLES = ("customer", "agent", "bot", "system")
HISTORY_SUFFIXES = (".jsonl", ".ndjson")


def read_history(path: Path) -> list[dict]:
    """Raw support history (see the module docstring for the three forms) as the customer turns,
    each with the agent reply that answered it (the agent turns after it, before the customer's
    next). Bot and system turns, and bracketed notes such as "[customer joined]", are dropped.

    Example: conversation c1: customer "hi", customer "where is my order?", agent "It ships today."
    -> [{"conversation": "c1", "position": 0, "text": "hi", "agent_reply": None, ...},
        {"conversation": "c1", "position": 1, "text": "where is my order?", "agent_reply": "It ships today.", ...}]
    """
    path = Path(path)
    problems: list[str] = []
    if path.suffix.lower() in HISTORY_SUFFIXES:
        conversations = _jsonl_conversations(path, problems)
    else:
        header, rows = _rows(path, required=[["text"]], what="history")
        conversations = _csv_conversations(header, rows, problems)
    if problems:
        raise DataError(f"{path}: {len(problems)} problem(s); nothing was imported. Fix these lines:",
                        problems=problems)
    turns = [turn for conversation, said in conversations.items() for turn in _customer_turns(conversation, said)]
    if not turns:
        raise DataError(f"{path}: no customer turns; the history needs customer messages (role customer)")
    return turns


def _role(value, *, line: int, where: str, problems: list[str]) -> str:
    role = str(value or "").strip().lower()
    if role not in ROLES:
        problems.append(f"line {line}: {where}role {value!r:.40} is not one of {', '.join(ROLES)}")
    return role


def _csv_conversations(header: list[str], rows: list[tuple[int, dict]], problems: list[str]) -> dict[str, list]:
    turns = "role" in header or "conversation_id" in header
    if turns and not ("role" in header and "conversation_id" in header):
        raise DataError(f"a CSV of turns needs the columns conversation_id, role and text; found {header}. "
                        "A CSV of customer messages alone needs only a text column.")
    conversations: dict[str, list] = {}
    for line, row in rows:
        if None in row:
            problems.append(f"line {line}: {len(header) + len(row[None])} fields; the header has {len(header)}")
            continue
        text = _check_text(row.get("text"), line=line, column="text", problems=problems)
        at = (row.get("created_at") or "").strip() or None
        if not turns:
            conversations[f"line-{line}"] = [("customer", text, at)]
            continue
        conversation = (row.get("conversation_id") or "").strip()
        if not conversation:
            problems.append(f"line {line}: conversation_id is empty")
        role = _role(row.get("role"), line=line, where="", problems=problems)
        conversations.setdefault(conversation, []).append((role, text, at))
    return conversations


def _jsonl_conversations(path: Path, problems: list[str]) -> dict[str, list]:
    conversations: dict[str, list] = {}
    for line, raw in enumerate(_text(path, what="history").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"line {line}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not (isinstance(record, dict) and isinstance(record.get("turns"), list)
                and isinstance(record.get("id"), (str, int)) and str(record.get("id")).strip()):
            problems.append(f'line {line}: expected {{"id": ..., "turns": [{{"role": ..., "text": ...}}, ...]}}')
            continue
        said = conversations.setdefault(str(record["id"]), [])
        for number, turn in enumerate(record["turns"], start=1):
            if not isinstance(turn, dict):
                problems.append(f"line {line}: turn {number} must be an object with role and text")
                continue
            role = _role(turn.get("role"), line=line, where=f"turn {number}: ", problems=problems)
            text = _check_text(turn.get("text") if isinstance(turn.get("text"), str) else None, line=line,
                               column=f"turn {number}'s text", problems=problems)
            said.append((role, text, str(turn["at"]) if turn.get("at") is not None else None))
    if not conversations and not problems:
        raise DataError(f"{path}: no conversations; expected one JSON object a line")
    return conversations


def _customer_turns(conversation: str, said: list[tuple[str, str, str | None]]) -> list[dict]:
    out: list[dict] = []
    replies: list[str] = []

    def close() -> None:
        if out and replies:
            out[-1]["agent_reply"] = " ".join(replies)
        replies.clear()
    for role, text, at in said:
        if role == "customer" and not (text.startswith("[") and text.endswith("]")):
            close()
            out.append({"conversation": conversation, "position": len(out), "text": text, "agent_reply": None,
                        "created_at": at})
        elif role == "agent" and out:
            replies.append(text)
    close()
    return out
