"""Reading support logs and curated answers from CSV, all-or-nothing.

A file is checked whole before anything is stored: every problem is reported with its line
number, and a file with any problem is refused. This module returns clean rows; storing them
is the store's job.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from csbot.errors import DataError
from csbot.store.answers import KEY as ANSWER_KEY

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 5000


def _rows(path: Path, *, required: list[list[str]], what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """Decode and parse a CSV file; `required` lists column groups of which one name must appear."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"{path} is {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}. Split the file.")
    if b"\x00" in raw:
        raise DataError(f"{path} contains NUL bytes: it looks binary, not a CSV text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: not UTF-8 text; save the file as UTF-8 CSV") from None
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
        if not intent or len(intent) > 64 or not intent.isprintable():
            problems.append(f"line {line}: {label_column} {intent!r:.80} is not an intent name "
                            "(1 to 64 printable characters)")
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
