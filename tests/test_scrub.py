"""The scrubber: each kind of personal data, in English and Chinese, becomes its placeholder; what is
not personal (prices, quantities, delivery dates, tracking numbers) stays; checksums keep look-alike
numbers; `python -m csbot scrub` does the same to stdin. Sentences written here, not the benchmark's."""

import pytest
from conftest import csbot

from csbot.dialogue.scrub import cn_id_ok, find, greeted, iban_ok, luhn, scrub, scrub_turns


@pytest.mark.parametrize("text, expected", [
    ("Hi, reach me at jo.bloggs+shop@mail.example.co.uk please", "Hi, reach me at <email> please"),
    ("邮箱 wang.fang@163.com，谢谢", "邮箱 <email>,谢谢"),
    ("my mobile is 07700 900123", "my mobile is <phone>"),
    ("ring +44 (0)20 7946 0958 tomorrow", "ring <phone> tomorrow"),
    ("手机：+86 139-1234-5678", "手机:<phone>"),
    ("打１３８ ００１３ ８０００找我", "打<phone>找我"),
    ("my US cell is +1 (415) 555-2671", "my US cell is <phone>"),
    ("charged on 4111-1111-1111-1111 twice", "charged on <card> twice"),
    ("amex 3782 822463 10005 expired", "amex <card> expired"),
    ("卡号6222021234567890128", "卡号<card>"),
    ("IBAN: DE89 3704 0044 0532 0130 00", "IBAN: <iban>"),
    ("it's going to M1 1AE on Friday", "it's going to <postcode> on Friday"),
    ("邮编：518057", "邮编:<postcode>"),
    ("I moved to 221b Baker Street last month", "I moved to <address> last month"),
    ("送到广东省深圳市南山区科技园南路16号3栋1201室", "送到<address>"),
    ("身份证号 11010519491231002X", "身份证号 <id_number>"),
    ("my date of birth is 3rd of May 1990", "my date of birth is <dob>"),
    ("我的生日是1992年11月8日", "我的生日是<dob>"),
    ("my password was Tr0ub4dor&3 sorry", "my password was <password> sorry"),
    ("登录密码是qwe!2024", "登录密码是<password>"),
    ("Hello, my name is Aoife O'Brien", "Hello, my name is <name>"),
    ("我叫陈思远，上周买的沙发", "我叫<name>,上周买的沙发"),
    ("My name is Dorothy Kemp and the lamp is broken", "My name is <name> and the lamp is broken"),
    ("I paid with 5555 5555 5555 4444. Can you check?", "I paid with <card>. Can you check?"),
    ("where is BB-482913?", "where is {order_id}?"),
    ("订单号：202411230017 还没到", "订单号:{order_id} 还没到"),
])
def test_each_kind_of_personal_data_becomes_its_placeholder(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "the lamp was £49.99 and the shade £12.50",
    "I ordered 3 chairs and 12 cushions",
    "it should arrive on 14/03/2026 between 9 and 12",
    "delivery on March 14, 2026 please",
    "价格¥1299，买了2件，预计3月14日送达",
    "快递单号SF1234567890123，运单号YT1676484819",
    "tracking 1Z999AA10123456784",
    "the table is 180 cm long, model 2025",
])
def test_what_is_not_personal_stays(text):
    assert find(scrub(text)) == [] and "<" not in scrub(text) and "{order_id}" not in scrub(text)


def test_checksums_keep_numbers_that_only_look_personal():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")
    assert cn_id_ok("11010519491231002X") and not cn_id_ok("110105194912310021")
    assert scrub("ref 4111 1111 1111 1112") == "ref 4111 1111 1111 1112"  # fails Luhn: not a card
    assert scrub("编号110105194912310021") == "编号110105194912310021"  # wrong check character: not an ID


def test_the_scrub_command_rewrites_stdin_line_by_line(tmp_path):
    result = csbot("scrub", home=tmp_path, stdin="mail me: sam@example.com\n价格¥199\n我叫王小明\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["mail me: <email>", "价格¥199", "我叫<name>"]
    assert not (tmp_path / "csbot.db").exists()  # it reads no store


def test_the_name_an_agent_greets_a_customer_by_leaves_the_reply_too():
    assert greeted("Dear Mrs Menon, thank you for the photos.") == ["Menon"]
    assert greeted("Hi there, thanks for waiting") == [] and greeted("Thank you for your e-mail.") == []
    turns, counts = scrub_turns([{"conversation": "c1", "text": "is my order coming?",
                                  "agent_reply": "Good morning Colin Price, it is. Colin, anything else?"}])
    assert turns[0]["agent_reply"] == "Good morning <name>, it is. <name>, anything else?"
    assert counts == {"name": 2}
