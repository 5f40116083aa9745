"""Curated answers and their question phrasings, and the rule for what a valid answer is.

Every change raises the `answers` generation in the same transaction, so each serving process's
FAISS index (dialogue/answers.py) notices and catches up: the wordings staff confirmed an answer
is wrong for (`negatives`) and an admin's operating point (`answer_tuning`) included. The phrasing rows' ids are not the index's
vector ids; the index keeps its own. This module does not embed or search.
"""

from __future__ import annotations

import re

from csbot.errors import DataError, StaleEdit
from csbot.store.backend import now, serialized, snapshot, write
from csbot.store.generations import bump

KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_ANSWER_CHARS = 4000
TUNING = ("threshold", "precision")  # an admin's operating point: one of the two, or neither (the settings')


def clean_answer(*, key: str, questions: list[str], answer: str, max_question_chars: int) -> dict:
    """The answer as it will be stored (trimmed, empty phrasings dropped), or DataError listing every problem.

    Example: clean_answer(key=" gift_cards ", questions=["Gift cards?", " "], answer="Yes.", max_question_chars=2000)
             -> {"key": "gift_cards", "questions": ["Gift cards?"], "answer": "Yes."}
    """
    key, answer = (key or "").strip(), (answer or "").strip()
    questions = [q.strip() for q in questions if q and q.strip()]
    problems = []
    if not KEY.fullmatch(key):
        problems.append(f"the key must be 1-64 letters, digits, '_' or '-'; found {key!r}")
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        problems.append(f"the answer must be 1-{MAX_ANSWER_CHARS:,} characters; found {len(answer):,}")
    if not questions or any(len(q) > max_question_chars for q in questions):
        problems.append(_phrasing_rule(max_question_chars))
    if problems:
        raise DataError("the answer was not saved", problems=problems)
    return {"key": key, "questions": questions, "answer": answer}


def clean_question(question: str, *, max_question_chars: int) -> str:
    """One more phrasing for an existing answer, trimmed, or DataError (the same rule as clean_answer's).

    Example: clean_question("  gift cards? ", max_question_chars=2000) -> "gift cards?"
    """
    question = (question or "").strip()
    if not question or len(question) > max_question_chars:
        raise DataError("the phrasing was not added", problems=[_phrasing_rule(max_question_chars)])
    return question


def _phrasing_rule(max_question_chars: int) -> str:
    # any customer message can become a phrasing, so the limit is the message limit
    return f"give at least one question phrasing, each up to {max_question_chars:,} characters"


class AnswerRows:
    @serialized
    def upsert_answer(self, *, key: str, questions: list[str], answer: str, create_only: bool = False,
                      revision: int | None = None) -> int:
        """Create the answer `key`, or replace its text and phrasings (refused with `create_only`,
        checked in the same transaction). With `revision` (what the editor opened), refused with
        StaleEdit when the answer changed since: another person's phrasings are never overwritten
        unseen. Returns its id."""
        with write(self.db):
            existing = self.db.one("SELECT id, revision FROM answers WHERE key = ?", [key])
            if existing and create_only:
                raise DataError(f"there is already an answer {key!r}: attach the message to it, or choose another key")
            if existing and revision is not None and existing["revision"] != revision:
                now_has = [q["question"] for q in self.questions(existing["id"])]
                raise StaleEdit(f"someone changed the answer {key!r} after you opened it (it now has "
                                f"{len(now_has)} phrasings); nothing was saved. Your text is still in the form: "
                                "copy what you added, open the answer again, and add it there")
            if existing:
                answer_id = existing["id"]
                self.db.update("answers", answer_id, {"answer": answer, "updated_at": now(),
                                                      "revision": existing["revision"] + 1})
                self.db.execute("DELETE FROM answer_questions WHERE answer_id = ?", [answer_id])
            else:
                answer_id = self.db.insert("answers", {"key": key, "answer": answer, "created_at": now(),
                                                       "updated_at": now()})
            self.db.insert_many("answer_questions",
                                [{"answer_id": answer_id, "question": q} for q in dict.fromkeys(questions)])
            bump(self.db, "answers")
        return answer_id

    @serialized
    def upsert_answers(self, answers: list[dict]) -> None:
        """Store several answers (dicts with key, questions, answer) in one transaction: all or nothing."""
        with write(self.db):
            for answer in answers:
                self.upsert_answer(key=answer["key"], questions=answer["questions"], answer=answer["answer"])

    @serialized
    def add_question(self, answer_id: int, question: str) -> dict:
        """Add a phrasing to an existing answer, read and written in one transaction (two staff attaching
        at once both count). Returns the answer with its phrasings."""
        with write(self.db):
            existing = self.answer(answer_id)
            phrasings = [q["question"] for q in self.questions(answer_id)]
            if question not in phrasings:
                self.db.insert("answer_questions", {"answer_id": answer_id, "question": question})
                self.db.update("answers", answer_id, {"updated_at": now(), "revision": existing["revision"] + 1})
                bump(self.db, "answers")
        return {**existing, "questions": [*phrasings, question] if question not in phrasings else phrasings}

    @serialized
    def delete_answer(self, answer_id: int) -> None:
        with write(self.db):
            self.answer(answer_id)  # DataError when it is already gone (a double click, two staff)
            self.db.execute("DELETE FROM answer_questions WHERE answer_id = ?", [answer_id])
            self.db.execute("DELETE FROM answer_negatives WHERE answer_id = ?", [answer_id])
            self.db.execute("DELETE FROM answers WHERE id = ?", [answer_id])
            bump(self.db, "answers")

    @serialized
    def answer(self, answer_id: int) -> dict:
        row = self.db.one("SELECT * FROM answers WHERE id = ?", [answer_id])
        if row is None:
            raise DataError(f"no curated answer {answer_id}; it may have just been deleted. Refresh the list")
        return row

    @serialized
    def answers(self) -> list[dict]:
        """Every answer with its phrasings, in key order."""
        return self.answers_snapshot()[0]

    @serialized
    def answers_snapshot(self) -> tuple[list[dict], int]:
        """Every answer with its phrasings and the `answers` generation they are at, read in one
        transaction, so an index built from them can say exactly which change it includes."""
        with snapshot(self.db):
            generation = self.db.value("SELECT coalesce(max(value), 0) FROM generations WHERE name = 'answers'")
            rows = self.db.rows("SELECT * FROM answers ORDER BY key")
            questions: dict[int, list[str]] = {}
            for answer_id, question in self.db.execute("SELECT answer_id, question FROM answer_questions ORDER BY id"
                                                       ).fetchall():
                questions.setdefault(answer_id, []).append(question)
            negatives: dict[int, list[str]] = {}
            for answer_id, question in self.db.execute("SELECT answer_id, question FROM answer_negatives ORDER BY id"
                                                       ).fetchall():
                negatives.setdefault(answer_id, []).append(question)
        return [{**r, "questions": questions.get(r["id"], []), "negatives": negatives.get(r["id"], [])}
                for r in rows], generation

    @serialized
    def add_negative(self, answer_id: int, question: str, *, actor: str) -> bool:
        """Record that answer `answer_id` is wrong for this wording (staff confirmed a thumbs-down).
        False when it was recorded already."""
        with write(self.db):
            self.answer(answer_id)
            if self.db.one("SELECT id FROM answer_negatives WHERE answer_id = ? AND question = ?",
                           [answer_id, question]):
                return False
            self.db.insert("answer_negatives", {"answer_id": answer_id, "question": question, "actor": actor,
                                                "created_at": now()})
            bump(self.db, "answers")
        return True

    @serialized
    def answer_tuning(self) -> dict:
        """The admin's operating point for curated answers: {"threshold": float | None, "precision": float | None}."""
        found = {r["name"]: r["value"] for r in self.db.rows("SELECT name, value FROM answer_tuning")}
        return {name: found.get(name) for name in TUNING}

    @serialized
    def set_answer_tuning(self, *, threshold: float | None = None, precision: float | None = None,
                          actor: str) -> dict:
        """Set the operating point by a threshold or a target precision (at most one), or neither to go
        back to the settings'. Every server follows at its next poll. DataError outside 0.01-0.99 / 0.5-1."""
        if threshold is not None and precision is not None:
            raise DataError("give a threshold or a target precision, not both")
        if threshold is not None and not 0.01 <= threshold <= 0.99:
            raise DataError(f"the threshold is a confidence between 0.01 and 0.99; found {threshold}")
        if precision is not None and not 0.5 <= precision <= 1.0:
            raise DataError(f"the target precision is between 0.5 and 1.0; found {precision}")
        with write(self.db):
            self.db.execute("DELETE FROM answer_tuning")
            for name, value in (("threshold", threshold), ("precision", precision)):
                if value is not None:
                    self.db.insert("answer_tuning", {"name": name, "value": float(value), "actor": actor,
                                                     "updated_at": now()}, returning=None)
            bump(self.db, "answers")
        return self.answer_tuning()

    @serialized
    def questions(self, answer_id: int | None = None) -> list[dict]:
        """Question phrasings with their row ids."""
        if answer_id is None:
            return self.db.rows("SELECT * FROM answer_questions ORDER BY id")
        return self.db.rows("SELECT * FROM answer_questions WHERE answer_id = ? ORDER BY id", [answer_id])
