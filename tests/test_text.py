"""Text handling across scripts: width folding, word counts without spaces, same-wording keys."""

import pytest

from csbot.text import fold, unspaced, word_count, wording_key


def test_full_width_forms_fold_to_half_width():
    assert fold("ＢＢ－４８２９１３，谢谢！") == "BB-482913,谢谢!"
    assert fold("订单号：２０２４") == "订单号:2024"


@pytest.mark.parametrize("text, words", [
    ("where is my order", 4),
    ("我的订单到哪了", 4),          # seven characters, two to a word, rounded up
    ("退货", 1),
    ("订单 BB-482913 到哪了", 5),   # 订单 + 到哪了 -> 1 + 2, and BB, 482913
    ("iPhone充电器能用吗？", 4),    # iPhone + five characters
    ("", 0),
])
def test_word_counts_mean_something_for_chinese(text, words):
    assert word_count(text) == words


def test_the_same_wording_shares_a_key_in_any_script():
    assert wording_key("Where is order BB-123456?") == wording_key("where is order bb-9")
    assert wording_key("订单123到哪了") == wording_key("订单４５６到哪了？")
    assert wording_key("订单到哪了") != wording_key("快递到哪了")
    assert wording_key("where is my order") != wording_key("where is my refund")


@pytest.mark.parametrize("text, expected", [
    ("我的订单到哪了", True), ("宜家的 IKEA 床能退吗", True), ("Muji 的床单", True),
    ("Do you ship to 上海?", False), ("where is my order", False), ("hi", False), ("BB-482913", False)])
def test_unspaced_says_which_script_a_message_is_written_in(text, expected):
    assert unspaced(text) is expected
