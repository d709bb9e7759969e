"""Target-directed stance (FAVOR / AGAINST / NEUTRAL): per sentence that mentions a target, with
the evidence sentence kept, then aggregated to one stance per target and document.

The baseline is a transparent lexicon scorer over the dependency tree (no model download):
- stance cues (`data/stance_cues.tsv`): an "eval" word (condemn, praise, sanction, support) counts
  toward the target when the target sits on its object side, never its subject or possessor
  (the holder of the stance): `Ankara has condemned Russia's invasion` -> AGAINST Russia, nothing
  toward Ankara. A "harm" word (invade, attack) counts against its agent, never its patient.
- valence (VADER's lexicon with `data/stance_lexicon.tsv` on top) of words near the target in the
  tree, weighted by tree distance; predicative material (`X, a brutal dictator`, `X is a friend`,
  `referred to X as an "old friend"`) counts as adjacent.
- negation: a negated cue counts weakly the other way (`did not condemn` is not FAVOR), a negated
  valence word is scaled by VADER's -0.74.
Every sentence gets a signed value; `sentence_features` exposes the parts so a classifier can be
trained on them later (`corpusflow train stance`).

The default method, when the shipped model is present (annotators/models/stance-minilm), is the
target-dependent transformer (`annotators.stance_model`, ONNX, no torch): each sentence that
mentions the target gets calibrated probabilities; the document's stance is `aggregate()` of
them. Reported speech (`reported_speaker`) is the quoted speaker's stance, not the author's: it
is kept out of the document's stance and listed under "attributed". The lexicon scorer is the
fallback when the model file is missing (method "auto") and the benchmark's baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import cast

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from annotators.stance_model import (
    BATCH_SIZE,
    DEFAULT_MODEL_DIR,
    MODEL_FILE,
    OnnxStance,
    load_onnx,
)
from annotators.targets import find_mentions, salient_targets
from schemas.records import StanceRequest, StanceResult, StanceValue

DATA_DIR = Path(__file__).parent / "data"
STANCE_NAME = "corpusflow_stance"
STANCE_VERSION = "lexicon-0.1"
CLASSIFIER_PATH = DATA_DIR / "stance_classifier.json"

# Sentence/document decision threshold on the signed evidence value. 0.1 is the best of
# (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6) by macro-F1 on NewsMTSC rw dev (bench/stance.py).
# 0.05 scores about 0.02 higher there, but turns a single faint valence word three arcs away
# into a stance; for pre-annotations a reviewer must undo, we keep the more conservative 0.1.
DEFAULT_THRESHOLD = 0.1
NEGATED_CUE = 0.0  # `did not condemn X`: the absence of a stance act is not a stance
NEGATED_VALENCE = -0.74  # VADER's N_SCALAR
MAX_DISTANCE = 3
DISTANCE_WEIGHT = {0: 1.0, 1: 1.0, 2: 0.6, 3: 0.35}
CUE_DEPTH_WEIGHT = {1: 1.0, 2: 0.8, 3: 0.6, 4: 0.45}
VALENCE_SCALE = 4.0  # VADER lexicon range

_HOLDER_DEPS = frozenset({"nsubj", "csubj", "poss", "agent", "amod", "compound", "nmod"})
# Where the target must hang from a stance word for the stance to be about it.
_OBJECT_DEPS = frozenset({"dobj", "nsubjpass", "attr", "oprd", "dative", "ccomp", "xcomp", "pobj"})
_OBJECT_PREPS = frozenset({"on", "against", "of", "for", "to", "toward", "towards", "with"})
_LOCATIVE_PREPS = frozenset({"in", "across", "inside", "throughout", "at", "near"})
LOCATIVE_BLOCKING = True
_NEGATORS = frozenset({"refuse", "decline", "fail", "avoid", "stop", "cease", "refrain"})
_LIGHT_VERB_OBJ = frozenset({"dobj", "attr"})
_PREDICATIVE_VERBS = frozenset({"be", "become", "remain", "seem"})

if not Doc.has_extension("stances"):
    # [{"target", "label", "score", "evidence": [[start, end]], "sentences": [...]}]
    Doc.set_extension("stances", default=None)


@dataclass(frozen=True)
class Cue:
    polarity: float
    kind: str  # "eval" | "harm"


@dataclass
class SentenceStance:
    start: int  # character offsets of the sentence in the doc text
    end: int
    value: float  # signed evidence: > 0 toward FAVOR, < 0 toward AGAINST
    label: StanceValue
    score: float
    features: dict[str, float] = field(default_factory=dict)
    probs: dict[str, float] | None = None  # the transformer's calibrated probabilities
    speaker: str | None = None  # reported speech: whose stance this is (not the author's)


@dataclass
class TargetStance:
    target: str
    label: StanceValue
    score: float
    evidence: list[tuple[int, int]]
    sentences: list[SentenceStance]


@lru_cache(maxsize=1)
def load_cues() -> dict[str, Cue]:
    cues: dict[str, Cue] = {}
    for line in (DATA_DIR / "stance_cues.tsv").read_text(encoding="utf8").splitlines():
        if line.strip() and not line.startswith("#"):
            lemma, polarity, kind = line.split("\t")
            cues[lemma] = Cue(float(polarity), kind)
    return cues


@lru_cache(maxsize=1)
def load_lexicon() -> dict[str, float]:
    """VADER's lexicon (shipped with vaderSentiment) with our news overrides on top."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = dict(SentimentIntensityAnalyzer().lexicon)
    for line in (DATA_DIR / "stance_lexicon.tsv").read_text(encoding="utf8").splitlines():
        if line.strip() and not line.startswith("#"):
            word, valence = line.split("\t")
            lexicon[word] = float(valence)
    return lexicon


def _cue(token: Token) -> Cue | None:
    cues = load_cues()
    return cues.get(token.lemma_.lower()) or cues.get(token.lower_)


def _has_negation(token: Token) -> bool:
    return any(c.dep_ == "neg" or (c.dep_ == "det" and c.lower_ == "no") for c in token.children)


def _is_negated(token: Token) -> bool:
    """Negation scope: `not`/`never`/`no` on the word or on any word above it up to its clause's
    verb (`is not a reliable partner`), or a governing `refuse to` / `refrain from` / `fail to`."""
    node = token
    for _ in range(4):
        if _has_negation(node):
            return True
        if node.dep_ in {"xcomp", "pcomp"}:
            governor = node.head.head if node.dep_ == "pcomp" else node.head
            if governor.lemma_ in _NEGATORS:
                return True
        if node.pos_ in {"VERB", "AUX"} or node.head.i == node.i:
            return False
        node = node.head
    return False


def _ancestors(token: Token, sent: Span) -> list[tuple[Token, Token]]:
    """(ancestor, child on the path) pairs from the token up to the sentence root."""
    chain = []
    child = token
    while child.head.i != child.i and sent.start <= child.head.i < sent.end:
        chain.append((child.head, child))
        child = child.head
    return chain


def _cue_score(mention: Span, sent: Span) -> tuple[float, float, int]:
    """(positive, negative, blocked_depth): stance cues on the mention's path to the root.
    blocked_depth is the depth of the first harm word whose patient the target is, or of the
    first stance word whose holder it is: words attached at or above it describe the harm or
    the stance's object (`Biden praised Zelensky for his courage`: courage is not Biden's),
    not the target. A large number when there is none."""
    pos = neg = 0.0
    patient_depth = 10_000
    root = mention.root
    if LOCATIVE_BLOCKING and root.dep_ == "pobj" and root.head.lower_ in _LOCATIVE_PREPS:
        # `the crisis in Ukraine`: where something happens says nothing about the place
        patient_depth = 2
    for depth, (head, child) in enumerate(_ancestors(mention.root, sent), start=1):
        if depth > max(CUE_DEPTH_WEIGHT):
            break
        weight = CUE_DEPTH_WEIGHT[depth]
        cues = []
        if (cue := _cue(head)) is not None:
            cues.append((head, cue, child.dep_))
        if child.dep_ in {"prep", "dative"}:
            # `impose sanctions on X`, `express support for X`: the cue is the verb's object
            for obj in head.children:
                if obj.dep_ in _LIGHT_VERB_OBJ and (cue := _cue(obj)) is not None:
                    cues.append((obj, cue, "prep"))
        for word, cue, dep in cues:
            holder_side = dep in _HOLDER_DEPS
            object_side = dep in _OBJECT_DEPS or (dep == "prep" and child.lower_ in _OBJECT_PREPS)
            if cue.kind == "speech" or (cue.kind == "eval" and not object_side):
                # the speaker or holder (`Ankara condemned ...`: blocks what is said about
                # others), or an adjunct (`sanctions against Russia over Ukraine`): no stance
                if holder_side:
                    patient_depth = min(patient_depth, depth)
                continue
            if cue.kind == "harm" and not holder_side:
                patient_depth = min(patient_depth, depth)
                continue
            value = cue.polarity * weight
            # a noun cue is negated only by its own determiner (`no support for X`): a negated
            # verb above it (`refrained from condemning Russia's invasion`) leaves the noun as is
            negated = _is_negated(word) if word.pos_ in {"VERB", "AUX"} else _has_negation(word)
            if negated:
                value *= NEGATED_CUE
            if value > 0:
                pos += value
            else:
                neg -= value
        if patient_depth < 10_000:
            break
    return pos, neg, patient_depth


def _predicative_tokens(mention: Span) -> set[int]:
    """Token indices that predicate something of the mention: its apposition, the complement of
    a copula it is the subject of, the `as` phrase of `refer to / describe X as Y`."""
    root = mention.root
    out: set[int] = set()
    for child in root.children:
        if child.dep_ == "appos":
            out |= {t.i for t in child.subtree}
    heads = [root.head]
    if root.dep_ == "pobj":
        heads.append(root.head.head)
    for head in heads:
        is_copula = head.lemma_ in _PREDICATIVE_VERBS and root.dep_ == "nsubj"
        for child in head.children:
            if (is_copula and child.dep_ in {"attr", "acomp"}) or child.dep_ == "oprd":
                out |= {t.i for t in child.subtree}
            elif child.dep_ == "prep" and child.lower_ == "as" and root.dep_ in {"dobj", "pobj"}:
                out |= {t.i for t in child.subtree}
    return out


def _valence_score(
    mention: Span, sent: Span, skip: set[int], patient_depth: int
) -> tuple[float, float]:
    """(positive, negative) valence of words near the mention in the dependency tree."""
    lexicon = load_lexicon()
    up = {mention.root.i: 0}
    for depth, (head, _) in enumerate(_ancestors(mention.root, sent), start=1):
        up[head.i] = depth
    predicative = _predicative_tokens(mention)
    pos = neg = 0.0
    for token in sent:
        if token.i in skip or _cue(token) is not None:
            continue
        valence = lexicon.get(token.lower_)
        if valence is None:
            valence = lexicon.get(token.lemma_.lower())
        if not valence:
            continue
        # tree distance through the lowest common ancestor
        down, node = 0, token
        while node.i not in up and node.head.i != node.i:
            node, down = node.head, down + 1
        if node.i not in up:
            continue
        if up[node.i] >= patient_depth:
            continue
        distance = 1 if token.i in predicative else up[node.i] + down
        if distance > MAX_DISTANCE:
            continue
        value = valence / VALENCE_SCALE * DISTANCE_WEIGHT[distance]
        if _is_negated(token):
            value *= NEGATED_VALENCE
        if value > 0:
            pos += value
        else:
            neg -= value
    return pos, neg


def sentence_features(sent: Span, mentions: Sequence[Span]) -> dict[str, float]:
    """The evidence in one sentence toward the target whose `mentions` (inside `sent`) are given.
    Entity tokens carry no valence (`Cooperation` in an organisation's name is not praise)."""
    skip = {t.i for ent in sent.ents for t in ent} | {t.i for m in mentions for t in m}
    cue_pos = cue_neg = val_pos = val_neg = 0.0
    for mention in mentions:
        cp, cn, patient_depth = _cue_score(mention, sent)
        vp, vn = _valence_score(mention, sent, skip, patient_depth)
        cue_pos, cue_neg = max(cue_pos, cp), max(cue_neg, cn)
        val_pos, val_neg = max(val_pos, vp), max(val_neg, vn)
    return {"cue_pos": cue_pos, "cue_neg": cue_neg, "val_pos": val_pos, "val_neg": val_neg}


def sentence_value(features: dict[str, float]) -> float:
    """Signed evidence of a sentence: cues count fully, valence is capped at 1 each way."""
    return (
        features["cue_pos"]
        - features["cue_neg"]
        + min(features["val_pos"], 1.0)
        - min(features["val_neg"], 1.0)
    )


def label_value(value: float, threshold: float) -> tuple[StanceValue, float]:
    """Label and score of a signed value. The score is a monotone confidence, not a calibrated
    probability: tanh of the margin past the threshold for FAVOR/AGAINST; for NEUTRAL, how far
    the value is from either threshold (1.0 when there is no evidence at all)."""
    if value >= threshold:
        return "FAVOR", round(0.5 + 0.5 * math.tanh(2 * (value - threshold) + 0.1), 4)
    if value <= -threshold:
        return "AGAINST", round(0.5 + 0.5 * math.tanh(2 * (-value - threshold) + 0.1), 4)
    return "NEUTRAL", round(1.0 - 0.5 * abs(value) / threshold, 4)


def stance_toward(
    doc: Doc,
    target: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    neutral_weight: float = 0.25,
    max_evidence: int = 3,
    classifier: StanceClassifier | None = None,
) -> TargetStance:
    """The stance of `doc` toward `target`: per sentence, then aggregated.

    Document value = (sum of FAVOR values - sum of AGAINST values) /
    (their total + neutral_weight * number of neutral sentences): a single condemnation among
    many neutral mentions still counts, but is damped. Evidence: the strongest sentences that
    agree with the document label (for NEUTRAL, the first neutral ones).
    With a `classifier`, the label and score are the classifier's over `target_features`; the
    evidence is still chosen from the lexicon's sentence values.
    """
    mentions = find_mentions(doc, target)
    by_sent: dict[int, tuple[Span, list[Span]]] = {}
    for mention in mentions:
        sent = mention.sent
        by_sent.setdefault(sent.start, (sent, []))[1].append(mention)
    sentences: list[SentenceStance] = []
    for sent, sent_mentions in by_sent.values():
        features = sentence_features(sent, sent_mentions)
        value = sentence_value(features)
        label, score = label_value(value, threshold)
        sentences.append(
            SentenceStance(sent.start_char, sent.end_char, value, label, score, features)
        )
    if not sentences:
        return TargetStance(target, "NEUTRAL", 0.5, [], [])
    favor = sum(s.value for s in sentences if s.label == "FAVOR")
    against = -sum(s.value for s in sentences if s.label == "AGAINST")
    neutral = sum(1 for s in sentences if s.label == "NEUTRAL")
    total = favor + against + neutral_weight * neutral
    net = (favor - against) / total if total else 0.0
    if len(sentences) == 1:
        label, score = sentences[0].label, sentences[0].score
    elif net >= threshold:
        label, score = "FAVOR", round(min(1.0, 0.5 + net / 2), 4)
    elif net <= -threshold:
        label, score = "AGAINST", round(min(1.0, 0.5 - net / 2), 4)
    else:
        label, score = "NEUTRAL", round(1.0 - 0.5 * abs(net) / threshold, 4)
    if classifier is not None:
        label, score = classifier.predict(target_features(doc, target, lexicon=label))
    sign = {"FAVOR": 1, "AGAINST": -1, "NEUTRAL": 0}[label]
    support = [s for s in sentences if s.label == label] or [
        s for s in sentences if s.value * sign > 0
    ]
    if label != "NEUTRAL":
        support.sort(key=lambda s: -abs(s.value))
    evidence = [(s.start, s.end) for s in support[:max_evidence]]
    return TargetStance(target, label, score, evidence, sentences)


def stance_to_dict(stance: TargetStance) -> dict:
    """A plain, serialisable form for doc._.stances. Sentences whose stance belongs to a quoted
    speaker are also listed under "attributed" (speaker, label, score, evidence)."""
    sentences = []
    for s in stance.sentences:
        row: dict = {
            "start": s.start,
            "end": s.end,
            "label": s.label,
            "score": s.score,
            "value": s.value,
        }
        if s.probs is not None:
            row["probs"] = s.probs
        if s.speaker is not None:
            row["speaker"] = s.speaker
        sentences.append(row)
    return {
        "target": stance.target,
        "label": stance.label,
        "score": stance.score,
        "evidence": [list(e) for e in stance.evidence],
        "sentences": sentences,
        "attributed": [
            {
                "speaker": s.speaker,
                "label": s.label,
                "score": s.score,
                "evidence": [[s.start, s.end]],
            }
            for s in stance.sentences
            if s.speaker is not None
        ],
    }


# ---------------------------------------------------------------- reported speech
# Speech and attribution verbs: a target inside what they introduce is someone else's words.
SPEECH_LEMMAS = frozenset(
    {
        "say", "tell", "add", "write", "state", "claim", "argue", "insist", "warn", "declare",
        "tweet", "post", "announce", "explain", "note", "allege", "contend", "assert",
        "suggest", "believe", "think", "call", "describe", "complain", "predict", "vow",
    }
)  # fmt: skip
_QUOTE_PAIRS = (("\u201c", "\u201d"), ('"', '"'), ("\u00ab", "\u00bb"))


def quote_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges inside double quotation marks (curly, straight or guillemets); an
    unclosed quote runs to the end of the text. Single quotes are left alone: they are also
    apostrophes.

    `quote_regions('He said "no deal" today')` -> [(9, 16)]
    """
    regions: list[tuple[int, int]] = []
    for left, right in _QUOTE_PAIRS:
        start = text.find(left)
        while start != -1:
            end = text.find(right, start + 1)
            if end == -1:
                regions.append((start + 1, len(text)))
                break
            regions.append((start + 1, end))
            start = text.find(left, end + 1)
    return sorted(regions)


def _speaker_of(verb: Token) -> Span | None:
    for child in verb.children:
        if child.dep_ == "nsubj":
            return child.doc[child.left_edge.i : child.right_edge.i + 1]
    return None


def reported_speaker(sent: Span, mentions: Sequence[Span]) -> str | None:
    """Who said what `sent` says about the mentioned target, when it is someone else's words:
    - a direct quote: a mention inside quotation marks, speaker = the subject of the sentence's
      speech verb (`"Trump lied," Pelosi said` -> "Pelosi"), or "a quoted source" when none;
    - reported speech: a mention inside the clause a speech verb introduces, speaker = that
      verb's subject (`Critics said Trump lied` -> "Critics"); `according to X` -> X.
    None when the sentence is the author's, or when the speaker is the target itself (what the
    target says is part of how the author shows it: `Trump said he would win`)."""
    if not mentions:
        return None
    mention_tokens = {t.i for m in mentions for t in m}
    offset = sent.start_char
    regions = quote_regions(sent.text)
    quoted = any(
        a <= m.start_char - offset and m.end_char - offset <= b
        for m in mentions
        for a, b in regions
    )
    speaker: Span | None = None
    for token in sent:
        if token.lemma_.lower() not in SPEECH_LEMMAS or token.pos_ not in {"VERB", "AUX"}:
            continue
        subject = _speaker_of(token)
        if subject is None:
            continue
        # what the verb introduces: its clausal complement (or, for a quote, the whole sentence)
        clause = {t.i for c in token.children if c.dep_ in {"ccomp", "xcomp"} for t in c.subtree}
        if quoted or mention_tokens & clause:
            speaker = subject
            break
    if speaker is None:
        for token in sent:
            if token.lower_ == "according" and token.i + 1 < sent.end:
                to = token.doc[token.i + 1]
                objs = [c for c in to.children if c.dep_ == "pobj"]
                if to.lower_ == "to" and objs:
                    speaker = token.doc[objs[0].left_edge.i : objs[0].right_edge.i + 1]
                    break
    if speaker is None:
        return "a quoted source" if quoted else None
    if mention_tokens & {t.i for t in speaker}:
        return None
    if speaker.root.pos_ == "PRON" and not quoted:
        # `he said Trump lied`: the pronoun may be the target; a model of coreference would tell
        return None
    return speaker.text


# ---------------------------------------------------------------- aggregation


def aggregate(
    probs: Sequence[dict[str, float]], *, neutral_weight: float = 0.25, max_evidence: int = 3
) -> tuple[StanceValue, float, list[int]]:
    """The document's stance from its sentences' probabilities: (label, probability, indices of
    the evidence sentences). Each sentence weighs `neutral_weight` + its polar mass (1 -
    P(NEUTRAL)), so one clear condemnation among many neutral mentions still decides, damped;
    the document's distribution is the weighted mean, its label the argmax and its score that
    label's probability. Evidence: the sentences whose own argmax is the label, most probable
    first (for NEUTRAL, in text order); none when no sentence agrees."""
    if not probs:
        return "NEUTRAL", 0.5, []
    weights = [neutral_weight + 1.0 - p["NEUTRAL"] for p in probs]
    total = sum(weights)
    doc = {k: sum(w * p[k] for w, p in zip(weights, probs, strict=True)) / total for k in CLASSES}
    label = max(CLASSES, key=lambda k: (doc[k], k == "NEUTRAL"))
    agree = [i for i, p in enumerate(probs) if max(CLASSES, key=p.__getitem__) == label]
    if label != "NEUTRAL":
        agree.sort(key=lambda i: -probs[i][label])
    return label, round(doc[label], 4), agree[:max_evidence]


# The transformer reads at most this many sentences per target and document, the first ones:
# news puts its point first, and the cost of a long article's twentieth mention of its main
# subject (a model call each) buys little. bench/annotate.py, CPU time against bare nlp.pipe:
# 26% uncapped, 40% at 8, 46% at 5.
MAX_SENTENCES = 5


def transformer_stances(
    model: OnnxStance,
    requests: Sequence[tuple[Doc, str]],
    *,
    neutral_weight: float = 0.25,
    max_evidence: int = 3,
    batch_size: int = BATCH_SIZE,
    max_sentences: int = MAX_SENTENCES,
) -> list[TargetStance]:
    """The stance of each (doc, target): one model call for every sentence of every request,
    then `aggregate()` per request over the author's sentences (reported speech kept apart).
    Only the first `max_sentences` sentences that mention a target are read (0: all)."""
    plans: list[list[tuple[Span, list[Span], str | None]]] = []
    items: list[tuple[str, list[tuple[int, int]], str]] = []
    for doc, target in requests:
        by_sent: dict[int, tuple[Span, list[Span]]] = {}
        for mention in find_mentions(doc, target):
            by_sent.setdefault(mention.sent.start, (mention.sent, []))[1].append(mention)
        plan = []
        sents = list(by_sent.values())
        for sent, mentions in sents[:max_sentences] if max_sentences else sents:
            spans = [
                (m.start_char - sent.start_char, m.end_char - sent.start_char) for m in mentions
            ]
            items.append((sent.text, spans, mentions[0].text))
            plan.append((sent, mentions, reported_speaker(sent, mentions)))
        plans.append(plan)
    probs = iter(model.predict_proba(items, batch_size=batch_size))
    out = []
    for (_, target), plan in zip(requests, plans, strict=True):
        sentences = []
        for sent, _, speaker in plan:
            p = next(probs)
            label = cast(StanceValue, max(CLASSES, key=p.__getitem__))
            sentences.append(
                SentenceStance(
                    sent.start_char,
                    sent.end_char,
                    round(p["FAVOR"] - p["AGAINST"], 4),
                    label,
                    round(p[label], 4),
                    probs={k: round(v, 4) for k, v in p.items()},
                    speaker=speaker,
                )
            )
        own = [s for s in sentences if s.speaker is None]
        label, score, idx = aggregate(
            [cast(dict, s.probs) for s in own],
            neutral_weight=neutral_weight,
            max_evidence=max_evidence,
        )
        evidence = [(own[i].start, own[i].end) for i in idx]
        out.append(TargetStance(target, label, score, evidence, sentences))
    return out


class StanceComponent:
    """Stance toward the document's salient targets (and any extra targets) on doc._.stances.
    Extra targets for one call:
    `nlp.pipe(docs, component_cfg={STANCE_NAME: {"extra_targets": [...]}})`.
    With a `model` (the transformer), every sentence of a batch of documents goes through one
    model call; else the lexicon scorer (or the feature `classifier`)."""

    def __init__(
        self,
        name: str,
        top_n: int,
        min_mentions: int,
        threshold: float,
        classifier: StanceClassifier | None = None,
        model: OnnxStance | None = None,
    ) -> None:
        self.name = name
        self.top_n = top_n
        self.min_mentions = min_mentions
        self.threshold = threshold
        self.classifier = classifier
        self.model = model
        if model is not None:
            self.version = model.version
        else:
            self.version = STANCE_VERSION if classifier is None else classifier.version

    def toward(self, doc: Doc, target: str) -> TargetStance:
        return self.toward_many([(doc, target)])[0]

    def toward_many(self, requests: Sequence[tuple[Doc, str]]) -> list[TargetStance]:
        if self.model is not None:
            return transformer_stances(self.model, requests)
        return [
            stance_toward(doc, target, threshold=self.threshold, classifier=self.classifier)
            for doc, target in requests
        ]

    def _targets(self, doc: Doc, extra_targets: Sequence[str]) -> list[str]:
        targets = salient_targets(doc, self.top_n, self.min_mentions)
        return targets + [t for t in extra_targets if t not in targets]

    def __call__(self, doc: Doc, extra_targets: Sequence[str] = ()) -> Doc:
        return next(self.pipe([doc], extra_targets=extra_targets))

    def pipe(
        self, docs: Iterable[Doc], *, batch_size: int = 64, extra_targets: Sequence[str] = ()
    ) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._annotate_batch(batch, extra_targets)
                batch = []
        if batch:
            yield from self._annotate_batch(batch, extra_targets)

    def _annotate_batch(self, docs: list[Doc], extra_targets: Sequence[str]) -> list[Doc]:
        requests = [(doc, t) for doc in docs for t in self._targets(doc, extra_targets)]
        stances = iter(self.toward_many(requests))
        for doc in docs:
            doc._.stances = [
                stance_to_dict(next(stances)) for _ in self._targets(doc, extra_targets)
            ]
        return docs


METHODS = frozenset({"auto", "transformer", "lexicon", "classifier"})


@Language.factory(
    STANCE_NAME,
    default_config={
        "top_n": 5,
        "min_mentions": 2,
        "threshold": DEFAULT_THRESHOLD,
        "method": "auto",
        "classifier_path": None,
        "model_dir": None,
    },
    requires=["doc.sents", "doc.ents"],
    assigns=["doc._.stances"],
)
def make_stance(
    nlp: Language,
    name: str,
    top_n: int,
    min_mentions: int,
    threshold: float,
    method: str,
    classifier_path: str | None,
    model_dir: str | None,
) -> StanceComponent:
    """method "auto" (default): the transformer from `model_dir` (default the shipped
    annotators/models/stance-minilm) when its model.onnx is there, else the lexicon scorer;
    "transformer": the same, but a missing model is an error; "lexicon": the transparent scorer;
    "classifier": the softmax classifier read once from `classifier_path`."""
    if method not in METHODS:
        raise ValueError(f"{name}: unknown stance method {method!r}")
    folder = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    if method == "transformer" or (method == "auto" and (folder / MODEL_FILE).is_file()):
        return StanceComponent(
            name, top_n, min_mentions, threshold, model=load_onnx(folder.resolve())
        )
    classifier = None
    if method == "classifier":
        classifier = StanceClassifier.load(Path(classifier_path or CLASSIFIER_PATH))
    return StanceComponent(name, top_n, min_mentions, threshold, classifier)


# ---------------------------------------------------------------- trainable classifier
# The lexicon scorer's parts plus the sentence's plain VADER scores, fed to a multinomial
# logistic regression (numpy only; scikit-learn is not in the environment). `annotators.train`
# fits it on labelled (text, target) pairs; `bench/stance.py --train` compares what it gives.

FEATURE_NAMES: tuple[str, ...] = (
    "cue_pos",
    "cue_neg",
    "val_pos",
    "val_neg",
    "sent_pos",
    "sent_neg",
    "sent_compound",
    "mentioned",
    "lexicon_favor",
    "lexicon_against",
)
CLASSES: tuple[StanceValue, ...] = ("AGAINST", "NEUTRAL", "FAVOR")


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def target_features(
    doc: Doc,
    target: str,
    *,
    lexicon: StanceValue | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[float]:
    """Features of `doc` toward `target`: the strongest cue and valence evidence over the
    sentences that mention it, plain VADER on those sentences (mean), and the lexicon scorer's
    label (`lexicon`, computed when not given) one-hot: with it, a classifier fitted on a few
    hundred examples starts from the lexicon's decisions instead of relearning them."""
    mentions = find_mentions(doc, target)
    by_sent: dict[int, tuple[Span, list[Span]]] = {}
    for mention in mentions:
        by_sent.setdefault(mention.sent.start, (mention.sent, []))[1].append(mention)
    if not by_sent:
        return [0.0] * len(FEATURE_NAMES)
    parts = {"cue_pos": 0.0, "cue_neg": 0.0, "val_pos": 0.0, "val_neg": 0.0}
    vader = {"pos": 0.0, "neg": 0.0, "compound": 0.0}
    for sent, sent_mentions in by_sent.values():
        for key, value in sentence_features(sent, sent_mentions).items():
            parts[key] = max(parts[key], value)
        scores = _vader().polarity_scores(sent.text)
        for key in vader:
            vader[key] += scores[key] / len(by_sent)
    if lexicon is None:
        lexicon = stance_toward(doc, target, threshold=threshold).label
    return [
        *parts.values(),
        vader["pos"],
        vader["neg"],
        vader["compound"],
        1.0,
        float(lexicon == "FAVOR"),
        float(lexicon == "AGAINST"),
    ]


@dataclass
class StanceClassifier:
    """Softmax regression over FEATURE_NAMES (plus bias) to CLASSES."""

    weights: list[list[float]]  # len(CLASSES) x (len(FEATURE_NAMES) + 1)

    @property
    def version(self) -> str:
        """`stance-clf-<sha8>` of the features, classes and weights: two files that predict the
        same get the same version, and any retraining that changes a weight gets a new one."""
        canonical = json.dumps(
            {"features": FEATURE_NAMES, "classes": CLASSES, "weights": self.weights},
            sort_keys=True,
            separators=(",", ":"),
        )
        return f"stance-clf-{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"

    @classmethod
    def fit(
        cls,
        features: Sequence[Sequence[float]],
        labels: Sequence[str],
        *,
        l2: float = 1e-3,
        epochs: int = 2000,
        learning_rate: float = 0.5,
        balanced: bool = True,
        init: Sequence[Sequence[float]] | None = None,
    ) -> StanceClassifier:
        """Full-batch gradient descent on the (class-balanced) cross-entropy. With `init` (a base
        model's weights) training starts there and the L2 penalty pulls toward it instead of
        toward zero, so a few new labels adjust a model rather than replace it."""
        import numpy as np

        x = np.hstack([np.asarray(features, dtype=float), np.ones((len(features), 1))])
        y = np.array([CLASSES.index(label) for label in labels])
        onehot = np.eye(len(CLASSES))[y]
        counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
        # a class absent from the data gets no weight (and no division by zero)
        per_class = np.divide(
            len(y), len(CLASSES) * counts, out=np.zeros_like(counts), where=counts > 0
        )
        sample_weight = per_class[y] if balanced else np.ones(len(y))
        prior = np.zeros((len(CLASSES), x.shape[1])) if init is None else np.asarray(init)
        w = prior.copy()
        for _ in range(epochs):
            logits = x @ w.T
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            grad = ((probs - onehot) * sample_weight[:, None]).T @ x / len(y) + l2 * (w - prior)
            w -= learning_rate * grad
        return cls(weights=w.round(6).tolist())

    def predict_proba(self, features: Sequence[float]) -> list[float]:
        row = [*features, 1.0]
        logits = [sum(a * b for a, b in zip(ws, row, strict=True)) for ws in self.weights]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        return [e / sum(exps) for e in exps]

    def predict(self, features: Sequence[float]) -> tuple[StanceValue, float]:
        probs = self.predict_proba(features)
        best = max(range(len(CLASSES)), key=probs.__getitem__)
        return CLASSES[best], round(probs[best], 4)

    def to_payload(self) -> dict:
        return {
            "version": self.version,
            "features": list(FEATURE_NAMES),
            "classes": list(CLASSES),
            "weights": self.weights,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_payload(), indent=1), encoding="utf8")

    @classmethod
    def from_payload(cls, payload: dict, *, source: str = "stance model") -> StanceClassifier:
        if tuple(payload["features"]) != FEATURE_NAMES or tuple(payload["classes"]) != CLASSES:
            raise ValueError(f"{source}: classifier was trained on other features or classes")
        classifier = cls(weights=payload["weights"])
        if payload.get("version", classifier.version) != classifier.version:
            raise ValueError(
                f"{source}: weights do not match the recorded version {payload['version']!r}"
            )
        return classifier

    @classmethod
    def load(cls, path: Path) -> StanceClassifier:
        return cls.from_payload(json.loads(path.read_text(encoding="utf8")), source=str(path))


def predict_stance(
    requests: Iterable[StanceRequest], *, nlp: Language | None = None
) -> list[StanceResult]:
    """Stance of each request's text toward its target (the `corpusflow stance --jsonl` contract).
    A target the text never mentions is NEUTRAL with score 0.5."""
    if nlp is None:
        from annotators.pipeline import load_nlp

        nlp = load_nlp()
    requests = list(requests)
    if STANCE_NAME in nlp.pipe_names:
        component = cast(StanceComponent, nlp.get_pipe(STANCE_NAME))
    else:
        component = StanceComponent(STANCE_NAME, 5, 2, DEFAULT_THRESHOLD)
    disabled = [STANCE_NAME] if STANCE_NAME in nlp.pipe_names else []
    results = []
    with nlp.select_pipes(disable=disabled):
        docs = list(nlp.pipe(r.text for r in requests))
    for start in range(0, len(docs), 256):  # one model call per chunk of requests
        chunk = [(d, r.target) for d, r in zip(docs, requests, strict=True)][start : start + 256]
        for stance in component.toward_many(chunk):
            results.append(StanceResult(label=stance.label, score=stance.score))
    return results


__all__ = [
    "CLASSES",
    "aggregate",
    "quote_regions",
    "reported_speaker",
    "transformer_stances",
    "FEATURE_NAMES",
    "StanceClassifier",
    "target_features",
    "STANCE_NAME",
    "STANCE_VERSION",
    "SentenceStance",
    "StanceComponent",
    "TargetStance",
    "label_value",
    "predict_stance",
    "sentence_features",
    "sentence_value",
    "stance_toward",
]
