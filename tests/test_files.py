"""files.write_folder: the one way csbot writes a folder, whole or not at all, with two writers at once."""

import os
import time

import pytest

from csbot.files import STALE_SECONDS, write_folder


def writes(text: str):
    def fill(work):
        (work / "sub").mkdir()
        (work / "sub" / "a.txt").write_text(text)
    return fill


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".partial"))


def test_a_folder_appears_whole_and_a_failed_fill_leaves_nothing(tmp_path):
    target = tmp_path / "models" / "v1"
    assert write_folder(target, writes("one"), exists="refuse") is True
    assert (target / "sub" / "a.txt").read_text() == "one"

    def broken(work):
        (work / "half.txt").write_text("half")
        raise OSError("No space left on device")
    with pytest.raises(OSError, match="No space"):
        write_folder(tmp_path / "models" / "v2", broken)
    assert not (tmp_path / "models" / "v2").exists() and leftovers(tmp_path / "models") == []


def test_what_an_existing_folder_means_is_the_callers(tmp_path):
    target = tmp_path / "v1"
    write_folder(target, writes("first"))
    with pytest.raises(FileExistsError):
        write_folder(target, writes("second"), exists="refuse")
    assert write_folder(target, writes("second"), exists="keep") is False
    assert (target / "sub" / "a.txt").read_text() == "first"
    assert write_folder(target, writes("third"), exists="replace") is True
    assert (target / "sub" / "a.txt").read_text() == "third" and leftovers(tmp_path) == []


def test_a_second_writer_finishing_first_wins_and_neither_merges(tmp_path):
    """While one writer fills its work folder, another writes the same target whole: the first
    keeps the other's folder (exists="keep") or is refused, and never mixes its files in."""
    target = tmp_path / "export"

    def slow(work):
        (work / "mine.txt").write_text("slow")
        write_folder(target, lambda other: (other / "theirs.txt").write_text("fast"))
    assert write_folder(target, slow, exists="keep") is False
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    with pytest.raises(FileExistsError):
        write_folder(tmp_path / "v9", lambda w: write_folder(tmp_path / "v9", writes("x")), exists="refuse")
    assert leftovers(tmp_path) == []


def test_a_work_folder_left_by_a_killed_writer_goes_once_stale(tmp_path):
    old = tmp_path / ".v1.dead0001.partial"
    fresh = tmp_path / ".v1.live0002.partial"
    old.mkdir()
    fresh.mkdir()
    past = time.time() - STALE_SECONDS - 60
    os.utime(old, (past, past))
    write_folder(tmp_path / "v1", writes("x"))
    assert leftovers(tmp_path) == [fresh.name]  # a writer still at work keeps its folder


def test_work_left_by_a_writer_that_died_is_removed_once_it_is_old(tmp_path):
    import os
    import time

    from csbot.files import STALE_SECONDS, remove_stale_work

    old, fresh, kept = tmp_path / ".v1.1a2b3c4d.partial", tmp_path / ".v2.5e6f7a8b.partial", tmp_path / "v3"
    for folder in (old, fresh, kept):
        folder.mkdir()
        (folder / "head.safetensors").write_bytes(b"half")
    long_ago = time.time() - STALE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(kept, (long_ago, long_ago))
    assert remove_stale_work(tmp_path) == [old]  # a writer may still be filling the fresh one
    assert not old.exists() and fresh.exists() and kept.exists()
    assert remove_stale_work(tmp_path / "missing") == []
