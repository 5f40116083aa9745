import pytest

from csbot.dialogue.entities import extract, find_email, find_order_id, find_phone


@pytest.mark.parametrize("text, expected", [
    ("where is BB-482913", "BB-482913"),
    ("where is bb482913??", "BB-482913"),
    ("order BB 482913 please", "BB-482913"),
    ("#482913 hasn't come", "BB-482913"),
    ("my order 482913 is late", "BB-482913"),
    ("Order number: 482913", "BB-482913"),
    ("order no. 482913", "BB-482913"),
    ("it cost 482913 pounds", None),      # six digits alone are not an order number
    ("BB-48291", None),                   # too short
    ("call 0161 496 0732", None),
])
def test_order_numbers(text, expected):
    assert find_order_id(text) == expected


def test_email_and_phone():
    assert find_email("mail jo.bloggs+shop@example.co.uk today") == "jo.bloggs+shop@example.co.uk"
    assert find_email("no address here @ all") is None
    assert find_phone("ring me on 07700 900123 pls") == "07700900123"
    assert find_phone("+44 7700 900123") == "+447700900123"


def test_extract_collects_every_slot():
    assert extract("order #123456, a@b.co") == {"order_id": "BB-123456", "email": "a@b.co"}
    assert extract("hello") == {}


@pytest.mark.parametrize("text, expected", [
    ("订单号：202411230017 还没到", "202411230017"),
    ("订单编号 2024 1123 0017 帮我查下", "202411230017"),
    ("我的订单202501030042怎么还没发", "202501030042"),
    ("单号是 202411230017", "202411230017"),
    ("订单号：２０２４１１２３００１７", "202411230017"),         # full-width digits and colon
    ("快递单号 773012345678 查不到", None),                       # the courier's number, not ours
    ("运单号 SF1234567890", None),
    ("快递单号 773012345678，订单号 202411230017", "202411230017"),
    ("ＢＢ－４８２９１３ 到哪了", "BB-482913"),                    # the English shop's form, full width
    ("第二单202507190045帮我取消了吧", "202507190045"),
    ("dd 2024 1208 0331 买的枕套要换", "202412080331"),            # dd: pinyin for 订单
    ("Order 202510030066 发错了", "202510030066"),
    ("请问一下 202501030042 现在什么状态", "202501030042"),        # bare: the Chinese shop's date-led form
    ("运单号 202411230017", None),
    ("花了 2024 块钱", None),
])
def test_chinese_order_numbers(text, expected):
    assert find_order_id(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("手机 138 0013 8000", "13800138000"),
    ("电话13800138000，谢谢", "13800138000"),
    ("+86 139-1234-5678 联系我", "+8613912345678"),
    ("１３９１２３４５６７８", "13912345678"),
    ("订单号 202411230017", None),          # twelve digits are not a mobile
    ("12345678901", None),                   # mobiles start 13-19
])
def test_mainland_mobiles(text, expected):
    assert find_phone(text) == expected


def test_a_chinese_message_carries_every_slot():
    assert extract("订单 202411230017，手机13912345678，邮箱 li.na@example.cn") == {
        "order_id": "202411230017", "phone": "13912345678", "email": "li.na@example.cn"}
