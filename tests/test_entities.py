import pytest

from csbot.entities import extract, find_email, find_order_id, find_phone


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
