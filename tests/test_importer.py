import pytest

from csbot.errors import DataError
from csbot.importer import MAX_TEXT_CHARS, read_answers, read_logs


def write(tmp_path, content, name="f.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_reads_a_good_log_and_accepts_category_as_label(tmp_path):
    rows = read_logs(write(tmp_path, "text,category\n  where is   my order ,order_status\nhi,greeting\n"
                                     "did my payment revert?,reverted_card_payment?\n"))
    assert rows[2]["intent"] == "reverted_card_payment?"  # a real BANKING77 label
    assert rows[0]["text"] == "where is my order" and rows[0]["intent"] == "order_status"
    assert rows[1]["agent_reply"] is None


@pytest.mark.parametrize("content, expected", [
    ("text,intent\nhello,\n,greeting\nok," + "x" * 65 + "\n", ["line 2: intent '' ", "line 3: text is empty",
                                                               "line 4: intent 'xxx"]),
    ("text,intent\nhi,greeting,extra\n", ["line 2: 3 fields; the header has 2"]),
    ("text,intent\n" + "x" * (MAX_TEXT_CHARS + 1) + ",greeting\n", ["line 2: text has 5,001 characters"]),
])
def test_malformed_logs_are_refused_whole_with_line_numbers(tmp_path, content, expected):
    with pytest.raises(DataError) as info:
        read_logs(write(tmp_path, content))
    message = str(info.value)
    assert "nothing was imported" in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("content, fragment", [
    ("message,label\nhi,greeting\n", "expected a column named text"),
    ("text\nhi\n", "expected a column named intent or category"),
    ("text,intent\n", "no rows"),
    (b"text,intent\n\xff\xfe,x\n", "line 2: not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
    ("", "expected a column named text"),
])
def test_unreadable_files_get_a_clear_error(tmp_path, content, fragment):
    with pytest.raises(DataError, match=fragment):
        read_logs(write(tmp_path, content))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read support log file"):
        read_logs(tmp_path / "nope.csv")


def test_answers_split_phrasings_and_refuse_duplicates(tmp_path):
    good = read_answers(write(tmp_path, 'key,questions,answer\ngift_wrap,"Do you wrap? | gift wrap?|",Yes.\n'))
    assert good == [{"key": "gift_wrap", "questions": ["Do you wrap?", "gift wrap?"], "answer": "Yes."}]
    with pytest.raises(DataError) as info:
        read_answers(write(tmp_path, "key,questions,answer\na,q?,x\na,q2?,y\nB C,q,z\nc,,z\n"))
    message = str(info.value)
    assert "line 3: key 'a' already used on line 2" in message
    assert "line 4: key 'B C'" in message
    assert "line 5: questions is empty" in message


def test_importing_twice_adds_nothing(tmp_path, store):
    from conftest import DATA

    rows = read_logs(DATA / "support_log.csv")
    assert store.add_examples(rows, source="import") == len(rows)
    assert store.add_examples(rows, source="import") == 0
    assert len(store.examples()) == len(rows)
