"""How well the scrubber (csbot/dialogue/scrub.py) finds planted personal data, and what it wrongly takes.

A corpus written here, in English and Chinese: for every kind, hand-written sentences with a slot
for the value, filled with values drawn (seeded) in every form a customer writes them (grouped,
ungrouped, dashed, +44 / 0 / +86, full-width digits); and sentences of things that must stay
(prices, quantities, delivery dates, tracking numbers, times). Per kind and language: recall (the
value is gone and its placeholder is there) and, over the sentences that must stay, the share that
lost a number or gained a placeholder.

    python benchmarks/scrub.py [--per-kind 200] [--json benchmarks/results/scrub.json]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csbot.dialogue.scrub import PLACEHOLDERS, scrub  # noqa: E402

FIRST = ["Sam", "Priya", "Tom", "Aoife", "Mohammed", "Grace", "Oliver", "Chloe", "Jack", "Zara", "Liam", "Ines"]
LAST = ["Lee", "Patel", "O'Brien", "Nowak", "Smith", "Okafor", "Hughes", "Fraser", "Taylor-Brown", "Kaur", "Wood"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰小红建国"
STREETS = ["Acacia", "High", "Church", "Station", "Victoria", "Mill", "Oak Tree", "Kings", "Queen's Park", "Elm"]
SUFFIXES = ["Street", "Road", "Avenue", "Lane", "Drive", "Close", "Way", "Crescent", "Court", "Gardens", "Grove"]
CITIES = [("广东省", "深圳市", "南山区"), ("", "北京市", "朝阳区"), ("浙江省", "杭州市", "西湖区"), ("", "上海市", "浦东新区"),
          ("四川省", "成都市", "武侯区"), ("江苏省", "南京市", "鼓楼区")]
ROADS = ["建国", "科技园南", "文三", "世纪", "人民", "中山", "解放", "天府二", "长江"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

TEMPLATES = {
    "en": {
        "email": ["my email is {v}", "please send it to {v} thanks", "contact: {v}", "I registered with {v} last year",
                  "can you update my email to {v}?"],
        "phone": ["call me on {v}", "my number is {v}", "you can reach me at {v} after 5", "phone: {v}",
                  "text {v} when it ships"],
        "card": ["I paid with card {v}", "card number {v} was charged twice", "the card ending... actually it's {v}",
                 "please refund to {v}", "It was {v}. Can you check?"],
        "iban": ["my IBAN is {v}", "send the refund to {v}", "bank details: {v}"],
        "postcode": ["my postcode is {v}", "deliver to {v} please", "is {v} in your delivery area?", "post code {v}"],
        "address": ["I live at {v}", "ship it to {v}, London", "my address is {v}", "it went to {v} by mistake"],
        "dob": ["date of birth {v}", "my DOB is {v}", "I was born on {v}", "birthday is {v}"],
        "password": ["my password is {v}", "password: {v}", "I set the password to... password is {v}",
                     "the pin is {v}"],
        "name": ["my name is {v}", "My name is {v}, order attached", "hi, my name is {v} and I have a question",
                 "you can call me {v}", "this is {v} again"],
        "order_id": ["where is order {v}?", "my order number is {v}", "order {v} arrived broken", "any news on {v}"],
    },
    "zh": {
        "email": ["我的邮箱是{v}", "发到{v}就行", "邮箱：{v}", "请把发票发到 {v}"],
        "phone": ["我的手机号是{v}", "电话{v}", "打这个电话：{v}", "有问题联系{v}"],
        "card": ["我用这张卡付的：{v}", "卡号{v}被扣了两次", "退款到{v}这张卡"],
        "iban": ["我的IBAN是{v}", "退款打到{v}"],
        "postcode": ["邮编{v}", "邮政编码是{v}"],
        "address": ["地址：{v}", "寄到{v}", "收货地址是{v}", "我住在{v}"],
        "dob": ["我的生日是{v}", "出生日期：{v}", "出生于{v}"],
        "password": ["密码是{v}", "我的密码：{v}", "登录密码为{v}"],
        "name": ["我叫{v}", "我叫{v}，想问一下退货", "我的名字是{v}", "本人姓名{v}"],
        "id_number": ["我的身份证号是{v}", "身份证：{v}", "实名认证用的是{v}"],
        "order_id": ["订单号：{v}", "订单{v}怎么还没发货", "单号{v}到哪了", "我的订单号是{v}"],
    },
}
KEEP = {
    "en": ["it costs £{a}.{b:02d}", "I bought {n} chairs", "it should arrive on {d} {m}", "delivery on {d}/{mo}/2025",
           "tracking number 1Z999AA1{t}", "the sofa is {n}0 cm wide", "order placed at 14:{b:02d}",
           "I'll be home between {n} and {n}:30", "it was £{a} cheaper last week", "I paid ${a}.{b:02d} for {n} mugs",
           "SKU {t} is out of stock", "can you deliver on {m} {d}?", "the 2025 catalogue, page {a}"],
    "zh": ["价格是¥{a}.{b:02d}", "买了{n}件", "预计{mo}月{d}日送达", "{mo}月{d}号能到吗", "快递单号SF{t}",
           "一共{a}元", "尺寸是{n}0厘米", "下午{n}点以后在家", "优惠了{a}块", "第{n}件半价", "运单号YT{t}"],
}


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                  ("6011", 16), ("62", 16), ("62", 19), ("4", 13)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + luhn_digit(body)
    style = rng.choice(["space4", "dash4", "none", "amex" if length == 15 else "space4"])
    if style == "amex":
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    if style == "none":
        return digits
    sep = " " if style == "space4" else "-"
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("GB", 22), ("DE", 22), ("FR", 27), ("NL", 18), ("ES", 24), ("IE", 22)])
    if country in ("GB", "NL", "IE"):
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban += "".join(rng.choice(string.digits) for _ in range(length - 8))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if rng.random() < 0.6 else compact


def cn_id(rng: random.Random) -> str:
    body = (rng.choice(["110105", "310115", "440305", "330106", "510107", "320106"])
            + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def phone(rng: random.Random, language: str) -> str:
    mobile = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
    if language == "zh" or rng.random() < 0.15:
        return rng.choice([mobile, f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}", f"+86 {mobile}",
                           f"+86-{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}", f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"])
    uk = f"7{rng.randint(100, 999)}{rng.randint(0, 999999):06d}"
    return rng.choice([f"0{uk}", f"0{uk[:4]} {uk[4:]}", f"+44 {uk[:4]} {uk[4:]}", f"+44{uk}",
                       f"020 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}", f"0161 {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
                       f"+1 415 555 {rng.randint(1000, 9999)}", f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                       f"+49 30 {rng.randint(1000000, 9999999)}", f"+61 2 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"])


def postcode(rng: random.Random, language: str) -> str:
    if language == "zh":
        return f"{rng.randint(100000, 859999)}"
    a, d = "ABCDEFGHIJKLMNOPRSTUWYZ", string.digits
    inward = f"{rng.choice(d)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    outward = rng.choice([f"{rng.choice(a)}{rng.choice(d)}", f"{rng.choice(a)}{rng.randint(10, 99)}",
                          f"{rng.choice('BCEGLMNSW')}{rng.choice('ABCDEFGHKLMNOPRSTUWY')}{rng.choice(d)}",
                          f"{rng.choice('BCEGLMNSW')}{rng.choice('ABCDEFGHKLMNOPRSTUWY')}{rng.randint(10, 99)}",
                          "SW1A", "EC1V", "W1D"])
    code = f"{outward} {inward}" if rng.random() < 0.8 else f"{outward}{inward}"
    return code if rng.random() < 0.85 else code.lower()


def value(kind: str, language: str, rng: random.Random) -> str:
    if kind == "email":
        user = rng.choice(FIRST).lower() + rng.choice([".", "_", "", "+shop."]) + rng.choice(LAST).lower().replace("'", "")
        return f"{user}{rng.randint(1, 99)}@" + rng.choice(["example.com", "mail.co.uk", "qq.com", "163.com",
                                                          "outlook.com", "dept.uni.ac.uk"])
    if kind == "phone":
        return phone(rng, language)
    if kind == "card":
        return card(rng)
    if kind == "iban":
        return iban(rng)
    if kind == "postcode":
        return postcode(rng, language)
    if kind == "address":
        if language == "zh":
            province, city, district = rng.choice(CITIES)
            road = rng.choice(ROADS) + rng.choice(["路", "街", "大道"]) + f"{rng.randint(1, 999)}号"
            room = rng.choice(["", f"{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室", f"{rng.randint(1, 9)}号楼{rng.randint(1, 6)}单元{rng.randint(101, 2505)}室"])
            return province + city + district + road + room
        flat = rng.choice(["", f"Flat {rng.randint(1, 20)}, "])
        return f"{flat}{rng.randint(1, 250)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    if kind == "dob":
        y, m, d = rng.randint(1940, 2006), rng.randint(1, 12), rng.randint(1, 28)
        if language == "zh":
            return rng.choice([f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{y}.{m}.{d}"])
        return rng.choice([f"{d:02d}/{m:02d}/{y}", f"{d} {MONTHS[m - 1]} {y}", f"{MONTHS[m - 1]} {d}, {y}",
                           f"{y}-{m:02d}-{d:02d}", f"{d}.{m}.{y}", f"{d}th of {MONTHS[m - 1]} {y}"])
    if kind == "password":
        return "".join(rng.choice(string.ascii_letters + string.digits + "!#$%&*") for _ in range(rng.randint(6, 16)))
    if kind == "name":
        if language == "zh":
            return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        return rng.choice(FIRST) + (" " + rng.choice(LAST) if rng.random() < 0.7 else "")
    if kind == "id_number":
        return cn_id(rng)
    if kind == "order_id":
        if language == "zh":
            return f"20{rng.randint(24, 26)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 9999):04d}"
        return rng.choice([f"BB-{rng.randint(100000, 999999)}", f"BB{rng.randint(100000, 999999)}",
                           f"#{rng.randint(100000, 999999)}"])
    raise ValueError(kind)


def full_width(text: str) -> str:
    """Digits and Latin letters as a Chinese keyboard's full-width forms: ２０２４, ＢＢ."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def corpus(per_kind: int, seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    planted, kept = [], []
    for language, kinds in TEMPLATES.items():
        for kind, templates in kinds.items():
            for i in range(per_kind):
                v = value(kind, language, rng)
                if language == "zh" and kind in ("phone", "order_id", "id_number", "card") and i % 5 == 0:
                    v = full_width(v)
                planted.append({"language": language, "kind": kind, "value": v,
                                "text": templates[i % len(templates)].format(v=v)})
        for i in range(per_kind * 2):
            template = KEEP[language][i % len(KEEP[language])]
            kept.append({"language": language, "text": template.format(
                a=rng.randint(2, 899), b=rng.randint(0, 99), n=rng.randint(2, 9), d=rng.randint(1, 28),
                mo=rng.randint(1, 12), m=rng.choice(MONTHS), t=rng.randint(10**9, 10**10 - 1))})
    return planted, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=200, help="planted sentences per kind and language")
    parser.add_argument("--seed", type=int, default=2026,
                        help="which values fill the sentences (the rules were tuned on seed 7: report another)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "scrub.json"))
    args = parser.parse_args()
    planted, kept = corpus(args.per_kind, seed=args.seed)
    started = time.perf_counter()
    figures: dict = {"per_kind": args.per_kind, "seed": args.seed, "recall": {}, "missed_examples": {}}
    for row in planted:
        out = scrub(row["text"])
        value = unicodedata.normalize("NFKC", row["value"])
        hit = value not in out and PLACEHOLDERS[row["kind"]] in out
        key = f"{row['language']}/{row['kind']}"
        figures["recall"].setdefault(key, []).append(hit)
        if not hit and len(figures["missed_examples"].setdefault(key, [])) < 5:
            figures["missed_examples"][key].append({"text": row["text"], "scrubbed": out})
    figures["recall"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(figures["recall"].items())}
    wrong = [{"text": r["text"], "scrubbed": scrub(r["text"])} for r in kept
             if scrub(r["text"]) != unicodedata.normalize("NFKC", r["text"])]
    for language in KEEP:
        rows = [r for r in kept if r["language"] == language]
        bad = [w for w in wrong if w["text"] in {r["text"] for r in rows}]
        figures[f"false_positive_rate/{language}"] = round(len(bad) / len(rows), 4)
    figures["false_positive_examples"] = wrong[:10]
    figures["sentences"] = len(planted) + len(kept)
    figures["ms_per_sentence"] = round(1000 * (time.perf_counter() - started) / (2 * len(planted) + 2 * len(kept)), 3)
    Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{'kind':<16}{'recall':>8}")
    for key, recall in figures["recall"].items():
        print(f"{key:<16}{recall:>8.1%}")
    for language in KEEP:
        print(f"kept sentences changed ({language}): {figures[f'false_positive_rate/{language}']:.1%}")
    print(f"{figures['ms_per_sentence']} ms a sentence; figures in {args.json}")


if __name__ == "__main__":
    main()
