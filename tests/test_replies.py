import re

import pytest

from csbot.dialogue.replies import (
    CUSTOMER_SLOTS,
    ReplyBook,
    fill,
    load_shop_file,
    load_templates_file,
)
from csbot.errors import TemplateError
from csbot.language import Words

SHOP = {"shop_name": "Test Shop", "opening_hours": "9 to 5"}


def book(**templates) -> ReplyBook:
    return ReplyBook(templates, SHOP)


def test_fill_replaces_known_slots_only():
    assert fill("Order {order_id} at {shop_name}", {"order_id": "BB-1", "shop_name": "X"}) == "Order BB-1 at X"
    assert fill("{unknown} stays", {}) == "{unknown} stays"


@pytest.mark.parametrize("hostile", [
    "{{ ''.__class__ }}", "{0.__init__}", "{order_id}", "{{7*7}}", "%(x)s", "${jndi:ldap://x}",
    "<script>alert(1)</script>", "{customer_name.__class__.__mro__}",
])
def test_customer_text_in_a_slot_comes_out_as_written(hostile):
    rendered = book(greet=["Hi {customer_name}, {order_id} ships today."]).render(
        "greet", {"customer_name": hostile, "order_id": "BB-123456"})
    assert rendered.text == f"Hi {hostile}, BB-123456 ships today."


def test_template_attribute_syntax_is_plain_text():
    # Python's str.format would reach attributes here; our renderer never evaluates anything.
    text = "Thanks {customer_name}! {0.__init__} {{ ''.__class__ }}"
    rendered = book(t=[text]).render("t", {"customer_name": "Ann"})
    assert rendered.text == "Thanks Ann! {0.__init__} {{ ''.__class__ }}"


def test_missing_slot_asks_for_it_instead_of_rendering_empty():
    rendered = book(order_status=["Order {order_id} is on its way."]).render("order_status", {})
    assert rendered.missing_slot == "order_id"
    assert rendered.text == Words.load("en")["ask.order_id"]
    assert "None" not in rendered.text and "{" not in rendered.text


def test_variant_without_the_missing_slot_is_used_when_there_is_one():
    b = book(greeting=["Hi {customer_name}!", "Hello!"])
    assert b.render("greeting", {}).text == "Hello!"
    assert b.render("greeting", {"customer_name": "Jo"}, turn=0).text == "Hi Jo!"


def test_never_asks_for_a_name():
    with pytest.raises(TemplateError, match="customer_name"):
        book(greeting=["Hi {customer_name}!"]).render("greeting", {})


def test_rotation_never_repeats_the_previous_reply():
    b = book(r=["one", "two", "three"])
    previous = None
    seen = []
    for turn in range(6):
        text = b.render("r", {}, turn=turn, previous=previous).text
        assert text != previous
        seen.append(text)
        previous = text
    assert set(seen) == {"one", "two", "three"}


def test_single_variant_repeats_rather_than_failing():
    b = book(r=["only"])
    assert b.render("r", {}, previous="only").text == "only"


@pytest.mark.parametrize("bad, message", [
    (["Order {ordr_id}"], r"unknown slot \{ordr_id\}"),
    (["Order {order_id"], r"never closed"),
    ([""], r"non-empty"),
    ([], r"no templates"),
])
def test_broken_templates_are_refused_with_the_reason(bad, message):
    with pytest.raises(TemplateError, match=message):
        book(x=bad)


def test_preview_renders_sample_values_and_refuses_broken_text():
    b = book(x=["ok"])
    assert b.preview("Hi {customer_name}, {order_id} at {shop_name}") == "Hi Sam, BB-482913 at Test Shop"
    with pytest.raises(TemplateError):
        b.preview("Hi {nobody}")


def test_unknown_intent_is_an_error():
    with pytest.raises(TemplateError, match="no templates"):
        book(x=["ok"]).render("y", {})


def test_templates_file_errors_name_the_intent(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("order_status:\n  description: x\n  templates: 'not a list'\n")
    with pytest.raises(TemplateError, match="order_status"):
        load_templates_file(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates_file(path)


# --- consistency of the shipped data -------------------------------------------------------
def test_shipped_templates_are_consistent(tmp_path):
    from conftest import PROJECT_DATA

    from csbot.importer import read_logs

    descriptions, templates = load_templates_file(PROJECT_DATA / "templates.yaml")
    shop = load_shop_file(PROJECT_DATA / "shop.yaml")
    b = ReplyBook(templates, shop)  # every placeholder is a known slot
    log_intents = {r["intent"] for r in read_logs(PROJECT_DATA / "support_log.csv")}
    assert log_intents == set(templates), "every intent has templates and every template's intent exists"
    assert all(descriptions[i] for i in templates)
    used = {name for variants in templates.values() for v in variants for name in re.findall(r"\{(\w+)\}", v)}
    assert used <= set(shop) | set(CUSTOMER_SLOTS)
    assert set(shop) <= used | {"shop_name"}, "every shop fact is used somewhere"
    for intent in templates:  # with an order number every intent renders without asking
        assert b.render(intent, {"order_id": "BB-482913"}).missing_slot is None


def test_shipped_data_is_big_and_varied_enough():
    from conftest import PROJECT_DATA

    from csbot.importer import read_answers, read_logs

    logs = read_logs(PROJECT_DATA / "support_log.csv")
    answers = read_answers(PROJECT_DATA / "answers.csv")
    assert len(logs) >= 1500 and len({r["intent"] for r in logs}) >= 25
    assert len(answers) >= 40 and all(len(a["questions"]) >= 2 for a in answers)
    lengths = sorted(len(r["text"].split()) for r in logs)
    assert lengths[0] <= 2 and lengths[-1] >= 40, "one-word and long messages"
    assert sum(r["agent_reply"] is not None for r in logs) > len(logs) / 3
