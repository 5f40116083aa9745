"""Intents proposed from unlabelled customer messages: groups, names, typical examples, draft replies.

    found = discover(texts, encode, replies=agent_replies)
    found.labels      one group number per text, in input order (-1: an outlier, in no group)
    found.groups      the groups, largest first: name, size, typical examples, tightness, drafts

How groups are found (chosen by measurement, docs/benchmarks.md "Intent discovery"): each message
that says something (`has_words`) is embedded with the shop's sentence encoder; FAISS finds every
message's k nearest neighbours, k = round(0.2·√n) (at least 5), so a larger history gets a coarser
graph and the number of groups does not grow with the number of messages; each neighbour link is
weighted by how many neighbours the two messages share times their cosine (so a link to an unlike
message weighs next to nothing); Louvain community detection (igraph) at resolution 1.5 (1 below
100 messages, where 1.5 splits even a group of identical messages) splits that graph into groups.
The number of groups is never given: it comes out of the graph. Groups smaller than `MIN_SIZE`
are outliers. Nothing here is quadratic in the number of messages: the graph has n·k
links and the shared-neighbour counts are taken in slices of rows.

A group's name is its key phrases, the words (or, for Chinese, the character pairs and triples)
most typical of the group against the whole history (class-based TF-IDF); its typical examples
are the messages nearest its centre; its tightness is their mean cosine to that centre. Its draft
replies are the agents' answers to its messages nearest the centre of those answers, with the
personal-data placeholders the scrubber left turned into slots ({customer_name}, {email}, {phone};
{order_id} is one already). This module reads no files and keeps nothing: the store keeps the
proposals, the service runs it.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import faiss
import igraph
import numpy as np

from csbot.text import fold, unspaced

NEIGHBOURS_PER_ROOT = 0.2  # k = round(0.2 * sqrt(n)): tuned on BANKING77 train and SMP2017 train
MIN_NEIGHBOURS = 5
RESOLUTION = 1.5  # Louvain's modularity resolution: higher makes more, smaller groups
SMALL = 100  # below this many messages the resolution is 1: on a tiny graph 1.5 splits even a clique
MIN_SIZE = 3  # a group smaller than this is outliers
TYPICAL = 5  # typical examples kept per group
DRAFTS = 3  # draft replies per group
SLICE = 4096  # rows of the shared-neighbour count taken at once
SEED = 2026  # Louvain's visiting order: the same messages give the same groups
SLOTS = {"<name>": "{customer_name}", "<email>": "{email}", "<phone>": "{phone}"}
_LEFT_OVER = re.compile(r"<(?:card|iban|id_number|postcode|address|dob|password)>")
_STOP = set("""a an the i me my we our you your it its is are was were be been am do does did have has had
to of in on at for from by with about as and or but if so not no yes can could would will should shall may might
this that these there here what when where which who how why hi hello hey please thanks thank just get got
im i'm ive i've dont don't its it's want need like also still yet any some one would've""".split())
_ZH_STOP = set("的了吗呢吧啊我你您是在有和就都也要这那个么什怎请问好谢")


@dataclass
class Group:
    number: int
    members: list[int]  # indices into the input, in input order
    name: str = ""
    phrases: list[str] = field(default_factory=list)
    nearest: list[int] = field(default_factory=list)  # the members, nearest the centre first
    typical: list[int] = field(default_factory=list)  # the first TYPICAL of `nearest`
    tightness: float = 0.0
    drafts: list[str] = field(default_factory=list)
    centre: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class Discovery:
    labels: list[int]  # per input text: its group's number, or -1 for an outlier
    groups: list[Group]  # largest first
    neighbours: int  # the k the graph was built with

    def as_dict(self, texts: list[str]) -> dict:
        """What `csbot discover --json` writes: the group of every text, then every group."""
        return {"assignments": [None if n < 0 else n for n in self.labels],
                "groups": [{"id": g.number, "name": g.name, "key_phrases": g.phrases, "size": g.size,
                            "tightness": round(g.tightness, 4), "typical": [texts[i] for i in g.typical],
                            "drafts": g.drafts} for g in self.groups],
                "estimated_groups": len(self.groups), "outliers": sum(n < 0 for n in self.labels),
                "neighbours": self.neighbours}


def neighbours_for(n: int) -> int:
    """Example: neighbours_for(3080) -> 11; neighbours_for(100) -> 5"""
    return max(MIN_NEIGHBOURS, round(NEIGHBOURS_PER_ROOT * math.sqrt(n)))


def cluster(vectors: np.ndarray, *, resolution: float = RESOLUTION, min_size: int = MIN_SIZE) -> tuple[np.ndarray, int]:
    """Group numbers for unit-length `vectors` (-1 for an outlier), numbered largest group first, and
    the k used. Example: cluster(vectors of 12 messages about refunds and 10 about gift wrap)
             -> (array([0, 0, ..., 1, 1]), 5)"""
    n = len(vectors)
    k = min(neighbours_for(n), n - 1)
    if n < min_size or k < 1:
        return np.full(n, -1), k
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    cosines, found = index.search(x, k + 1)
    near, alike = _without_self(found, cosines)
    rows = np.repeat(np.arange(n), k)
    weights = _shared(near, rows) * np.maximum(alike.ravel(), 0)  # shared neighbours, by how alike the two are
    graph = igraph.Graph(n=n, edges=np.column_stack([rows, near.ravel()]), directed=False)
    graph.es["weight"] = weights
    graph = graph.simplify(combine_edges="sum")
    state = random.getstate()
    random.seed(SEED)
    igraph.set_random_number_generator(random)
    try:
        membership = np.asarray(graph.community_multilevel(weights="weight", resolution=resolution if n >= SMALL
                                                           else min(resolution, 1.0)).membership)
    finally:
        random.setstate(state)
    sizes = np.bincount(membership)
    order = [g for g in np.argsort(-sizes, kind="stable") if sizes[g] >= min_size]
    renumber = np.full(len(sizes), -1)
    renumber[order] = np.arange(len(order))
    return renumber[membership], k


def _without_self(found: np.ndarray, cosines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's neighbours, and their cosines, without the row itself (FAISS may list a duplicate
    text first, or not list the row at all among equals)."""
    n, width = found.shape
    keep = found != np.arange(n)[:, None]
    keep[keep.sum(1) == width, -1] = False  # the row was not among them: drop the farthest instead
    return found[keep].reshape(n, width - 1).astype(np.int64), cosines[keep].reshape(n, width - 1)


def _shared(near: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each link i→j, 1 + how many neighbours i and j share (a sparse product, in slices of rows)."""
    import scipy.sparse as sparse

    n, k = near.shape
    links = sparse.csr_matrix((np.ones(n * k, np.float32), (rows, near.ravel())), shape=(n, n))
    links = links + sparse.eye(n, dtype=np.float32, format="csr")
    out = np.empty(n * k, np.float32)
    for start in range(0, n, SLICE):
        stop = min(n, start + SLICE)
        common = (links[start:stop] @ links.T).tocsr()
        part = slice(start * k, stop * k)
        out[part] = np.asarray(common[rows[part] - start, near.ravel()[part]]).ravel()
    return out


def terms(text: str) -> list[str]:
    """The words a name is made of: words and word pairs; Chinese character pairs and triples.

    Example: terms("Where is my parcel?") -> ["parcel"]; terms("退款到账") -> ["退款", "款到", "到账", "退款到", "款到账"]
    """
    text = fold(re.sub(r"<\w+>|\{\w+\}", " ", text)).lower()
    if unspaced(text):
        runs = re.findall(r"[\u4e00-\u9fff]+", text)
        return [run[i:i + n] for run in runs for n in (2, 3) for i in range(len(run) - n + 1)
                if not all(c in _ZH_STOP for c in run[i:i + n])]
    words = [w for w in re.findall(r"[a-z][a-z']+", text) if w not in _STOP and len(w) > 2 and "'" not in w]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def has_words(text: str) -> bool:
    """Whether a message says something of its own, beyond the personal data it answers a question
    with ("{order_id}", "<email>, <phone>"): only such messages are grouped.

    Example: has_words("{order_id}") -> False; has_words("ok") -> True; has_words("在吗") -> True
    """
    return bool(re.search(r"[^\W\d_]", re.sub(r"<\w+>|\{\w+\}", " ", text)))


def key_phrases(member_texts: list[str], everyone: Counter, total: int, *, n: int = 3) -> list[str]:
    """The terms most typical of a group against the whole history (class-based TF-IDF), without a
    term that a longer chosen one contains. `everyone` counts each term once per text.

    Example: key_phrases(["card not arrived", "my card has not arrived"], Counter(...), 100) -> ["card", "arrived", ...]
    """
    mine = Counter(t for text in member_texts for t in set(terms(text)))
    longer = 1.2  # a word pair, or three characters of Chinese, says more than one word
    score = {t: c / len(member_texts) * math.log(1 + total / max(everyone.get(t, 0), c))
             * (longer if " " in t or (len(t) == 3 and unspaced(t)) else 1)
             for t, c in mine.items() if c >= 2 or len(member_texts) < 4}
    chosen: list[str] = []
    for term in sorted(score, key=lambda t: (-score[t], t)):
        if any(term in c or c in term for c in chosen):
            continue
        chosen.append(term)
        if len(chosen) == n:
            break
    return chosen


def name_of(phrases: list[str], number: int) -> str:
    """An intent name from key phrases. Example: name_of(["card", "arrived"], 3) -> "card_arrived";
    name_of([], 3) -> "topic_3"; name_of(["退款", "到账"], 0) -> "退款_到账" """
    words = [w for p in phrases[:2] for w in p.split()]
    name = "_".join(dict.fromkeys(words))[:40].strip("_")
    return name or f"topic_{number}"


def slotted(reply: str) -> str | None:
    """An agent's scrubbed reply as a draft template, or None when it still holds personal data that no
    slot stands for. Example: slotted("Hi <name>, {order_id} left today") -> "Hi {customer_name}, {order_id} left today"
    """
    for mark, slot in SLOTS.items():
        reply = reply.replace(mark, slot)
    return None if _LEFT_OVER.search(reply) else reply.strip()


def discover(texts: list[str], encode: Callable[[list[str]], np.ndarray], *, replies: list[str | None] | None = None,
             progress: Callable[[float, str], None] | None = None) -> Discovery:
    """Group `texts` (scrubbed customer messages) and describe each group; `replies[i]` is the agent's
    answer to texts[i] or None."""
    say = progress or (lambda share, what: None)
    say(0.0, "embedding")
    kept = np.flatnonzero([has_words(t) for t in texts])
    labels = np.full(len(texts), -1)
    k, x = 0, None
    if len(kept):
        found = unit(encode([texts[i] for i in kept]))
        x = np.zeros((len(texts), found.shape[1]), np.float32)
        x[kept] = found
    say(0.6, "grouping")
    if len(kept):
        labels[kept], k = cluster(found)
    everyone = Counter(t for text in texts for t in set(terms(text)))
    groups = []
    say(0.8, "naming")
    for number in range(labels.max(initial=-1) + 1):
        group = describe(number, np.flatnonzero(labels == number), x, texts, everyone)
        if replies is not None:
            group.drafts = draft_replies([replies[i] for i in group.nearest], encode)
        groups.append(group)
    _unique_names(groups)
    say(1.0, "done")
    return Discovery(labels=labels.tolist(), groups=groups, neighbours=k)


def describe(number: int, members: np.ndarray, x: np.ndarray, texts: list[str], everyone: Counter) -> Group:
    """Group `number` of `texts` (its `members`, unit vectors `x`): centre, members nearest it first,
    tightness, key phrases against `everyone` (each term counted once per text) and a name."""
    centre = unit(x[members].mean(0, keepdims=True))[0]
    closeness = x[members] @ centre
    nearest = members[np.argsort(-closeness, kind="stable")].tolist()
    phrases = key_phrases([texts[i] for i in members], everyone, len(texts))
    return Group(number=number, members=members.tolist(), phrases=phrases, name=name_of(phrases, number),
                 nearest=nearest, typical=nearest[:TYPICAL], tightness=float(closeness.mean()), centre=centre)


def draft_replies(replies: list[str | None], encode: Callable[[list[str]], np.ndarray], *,
                  n: int = DRAFTS) -> list[str]:
    """The agents' replies nearest the centre of a group's replies, as templates, distinct by wording."""
    usable = list(dict.fromkeys(s for s in (slotted(r) for r in replies if r) if s))
    if len(usable) <= n:
        return usable
    counts = Counter(slotted(r) for r in replies if r)  # a macro used often is a reply the shop stands by
    x = unit(encode(usable))
    centre = unit(x.mean(0, keepdims=True))[0]
    score = x @ centre + 0.02 * np.log1p([counts[s] for s in usable])
    return [usable[i] for i in np.argsort(-score, kind="stable")[:n]]


def _unique_names(groups: list[Group]) -> None:
    seen: Counter = Counter()
    for group in groups:
        seen[group.name] += 1
        if seen[group.name] > 1:
            group.name = f"{group.name}_{seen[group.name]}"


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as float32 (a zero row stays zero). Example: unit([[3, 4]]) -> [[0.6, 0.8]]"""
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
