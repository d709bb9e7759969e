"""Per-entity confidence: the NER model's own action probabilities, turned into a calibrated
probability that the entity is right by a small logistic table fitted on held-out gold.

Two parts:
- `corpusflow_scored_ner`, a component that stands in for the model's `ner`: the same greedy
  transition parse with the same weights (so the same entities), but stepped from Python so
  that the softmax probability of every action taken is kept (`doc._.ner_confidence`, per
  token). spaCy's `beam_parse` was tried first: with the greedy-trained sm weights its beam
  marginals do not rank right from wrong entities (AUC 0.51-0.55 on re3d train); the greedy
  action probabilities do (0.59).
- `Calibration`: logistic regression over the model's confidence, the label, the entity's source
  (model, ruler, span fix, repair rule) and a few context features; fitted by `bench/ner.py
  --fit-calibration` on re3d train and shipped as `data/ner_calibration.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc, Span
from spacy.util import minibatch

DATA_DIR = Path(__file__).parent / "data"
CALIBRATION_PATH = DATA_DIR / "ner_calibration.json"
SCORED_NER_NAME = "corpusflow_scored_ner"

if not Doc.has_extension("ner_confidence"):
    # per token: probability of the action the model took, for tokens it put inside an entity;
    # None for tokens it left outside (and the whole value is None without a model pass)
    Doc.set_extension("ner_confidence", default=None)

# ------------------------------------------------------------------ the model's confidence


def parse_with_confidence(ner: EntityRecognizer, docs: Sequence[Doc]) -> list[list[float | None]]:
    """Run `ner`'s greedy parse over `docs`, set their entities exactly as `ner` would, and return
    per doc and token the softmax probability (among valid actions) of the action taken, None for
    tokens left outside an entity."""
    moves = ner.moves
    names = [moves.get_class_name(i) for i in range(moves.n_moves)]
    # actions with an empty label ("U-") are never valid at prediction time
    usable = np.array([n == "O" or len(n) > 2 for n in names])
    opens = np.array([n == "O" or n[:2] in ("B-", "U-") for n in names]) & usable
    continues: dict[str, np.ndarray] = {}
    for i, n in enumerate(names):
        if n[:2] in ("I-", "L-") and usable[i]:
            continues.setdefault(n[2:], np.zeros(len(names), dtype=bool))[i] = True
    states = moves.init_batch(list(docs))
    probs: list[list[float | None]] = [[None] * len(doc) for doc in docs]
    if not any(len(doc) for doc in docs):
        return probs
    index = {id(state): k for k, state in enumerate(states)}
    open_label: dict[int, str | None] = {id(state): None for state in states}
    step = ner.model.predict(list(docs))
    active = [state for state in states if not state.is_final()]
    while active:
        scores = step.predict(active)
        for state, row in zip(active, scores, strict=True):
            label = open_label[id(state)]
            allowed = (opens if label is None else continues[label]).copy()
            # the model's own validity rules (sentence starts, preset entities) pick the action;
            # the denominator is the structurally possible actions
            action = next(int(a) for a in np.argsort(-row) if moves.is_valid(state, names[a]))
            allowed[action] = True
            exp = np.exp(np.where(allowed, row, -np.inf) - row[allowed].max())
            name = names[action]
            token = state.B(0)
            if name != "O":
                probs[index[id(state)]][token] = float(exp[action] / exp.sum())
            moves.apply_transition(state, name)
            open_label[id(state)] = name[2:] if name[:2] in ("B-", "I-") else None
        active = [state for state in active if not state.is_final()]
    step.clear_memory()
    ner.set_annotations(list(docs), states)
    return probs


class ScoredNER:
    """The model's `ner`, run greedily with its action probabilities kept on the Doc."""

    def __init__(self, ner: EntityRecognizer, batch_size: int = 64):
        self.ner = ner
        self.batch_size = batch_size

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size or self.batch_size):
            for doc, probs in zip(batch, parse_with_confidence(self.ner, batch), strict=True):
                doc._.ner_confidence = probs
                yield doc


@Language.factory(SCORED_NER_NAME, default_config={"ner_name": "ner", "batch_size": 64})
def make_scored_ner(nlp: Language, name: str, ner_name: str, batch_size: int) -> ScoredNER:
    ner = nlp.get_pipe(ner_name)
    if not isinstance(ner, EntityRecognizer):
        raise ValueError(f"{ner_name!r} is not a transition-based EntityRecognizer: {type(ner)}")
    return ScoredNER(ner, batch_size=batch_size)


def span_confidence(doc: Doc, span: Span) -> float | None:
    """The model's confidence in a span: the product of its action probabilities over the span's
    tokens the model put in an entity; None where the model put none of them in one."""
    probs = doc._.ner_confidence
    if probs is None:
        return None
    inside = [p for p in probs[span.start : span.end] if p is not None]
    return float(np.prod(inside)) if inside else None


# ------------------------------------------------------------------ features and calibration

LABEL_GROUPS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "DATE", "TIME", "MONEY")
# A repair rule's entity is calibrated with the span fixes' ("fixed"): re3d train holds only four
# entities a repair rule made (and test none), too few for a term of their own.
SOURCE_GROUPS = ("model", "ruler", "fixed")
ARTICLES = frozenset({"the", "a", "an"})


def source_group(source: str) -> str:
    """`rule:split_lists` -> `fixed`; `model`, `ruler`, `fixed` stay; anything else -> `model`."""
    if source.startswith("rule:"):
        return "fixed"
    return source if source in SOURCE_GROUPS else "model"


def entity_features(
    doc: Doc, span: Span, source: str, *, text_counts: Mapping[str, int] | None = None
) -> dict[str, float]:
    """The calibration's inputs for one entity (all numeric; one-hot label and source).
    `text_counts`: how often each entity text occurs in `doc.ents`, counted once by a caller
    that scores every entity of the document (else counted here: `doc.ents` builds every span
    again, which made scoring a document quadratic in its entities)."""
    confidence = span_confidence(doc, span)
    p = min(max(confidence if confidence is not None else 0.5, 1e-4), 1 - 1e-4)
    text = span.text
    features = {
        "model_logit": math.log(p / (1 - p)),
        "no_model_span": float(confidence is None),
        "log_tokens": math.log(len(span)),
        "acronym": float(len(span) == 1 and text.isupper() and len(text) > 1),
        "after_article": float(span.start > 0 and doc[span.start - 1].lower_ in ARTICLES),
        "sentence_start": float(span.start == 0 or doc[span.start].is_sent_start is True),
        "repeated": float(
            (
                text_counts[text]
                if text_counts is not None
                else [e.text for e in doc.ents].count(text)
            )
            > 1
        ),
    }
    group = span.label_ if span.label_ in LABEL_GROUPS else "other"
    for label in (*LABEL_GROUPS, "other"):
        features[f"label={label}"] = float(group == label)
    kind = source_group(source)
    for name in SOURCE_GROUPS[1:]:  # "model" is the baseline
        features[f"source={name}"] = float(kind == name)
    return features


FEATURE_NAMES: tuple[str, ...] = (
    "model_logit",
    "no_model_span",
    "log_tokens",
    "acronym",
    "after_article",
    "sentence_start",
    "repeated",
    *(f"label={label}" for label in (*LABEL_GROUPS, "other")),
    *(f"source={name}" for name in SOURCE_GROUPS[1:]),
)


class Calibration(BaseModel):
    """A logistic table: score = sigmoid(bias + sum(weight * feature)); `card` says how it
    was made."""

    bias: float
    weights: dict[str, float]
    card: dict[str, Any] = Field(default_factory=dict)

    def score(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path = CALIBRATION_PATH) -> Calibration:
        return cls.model_validate_json(path.read_text(encoding="utf8"))


def fit_calibration(
    rows: Sequence[dict[str, float]],
    outcomes: Sequence[bool],
    *,
    l2: float = 1.0,
    iterations: int = 50,
    card: dict[str, Any] | None = None,
) -> Calibration:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised). The
    weight on the model's confidence is kept >= 0 so that the score never falls as the model grows
    surer: if the fit wants it negative, it is fixed at 0 and the rest refitted."""
    if len(rows) != len(outcomes) or not rows:
        raise ValueError(f"need as many outcomes as rows, and some: {len(rows)}, {len(outcomes)}")
    names = list(FEATURE_NAMES)
    for _ in range(2):
        x = np.array([[1.0] + [row.get(n, 0.0) for n in names] for row in rows])
        y = np.array(outcomes, dtype=float)
        w = np.zeros(x.shape[1])
        penalty = np.full(x.shape[1], l2)
        penalty[0] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
            gradient = x.T @ (p - y) + penalty * w
            hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
            delta = np.linalg.solve(hessian, gradient)
            w -= delta
            if np.abs(delta).max() < 1e-8:
                break
        weights = dict(zip(names, (float(v) for v in w[1:]), strict=True))
        if weights.get("model_logit", 0.0) >= 0.0:
            break
        names.remove("model_logit")
    weights.setdefault("model_logit", 0.0)
    return Calibration(bias=float(w[0]), weights=weights, card=card or {})


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_score: float
    accuracy: float


def reliability_table(
    scores: Sequence[float], outcomes: Sequence[bool], n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] (a score of 1.0 falls in the last); empty bins are left out.

    [0.1, 0.2, 0.9], [False, True, True], 2 bins -> [(0-0.5: n 2, mean 0.15, acc 0.5),
    (0.5-1: n 1, mean 0.9, acc 1.0)]
    """
    if len(scores) != len(outcomes):
        raise ValueError(f"{len(scores)} scores but {len(outcomes)} outcomes")
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for s, ok in zip(scores, outcomes, strict=True):
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"score outside [0, 1]: {s}")
        bins[min(int(s * n_bins), n_bins - 1)].append((s, ok))
    return [
        ReliabilityBin(
            low=i / n_bins,
            high=(i + 1) / n_bins,
            count=len(b),
            mean_score=sum(s for s, _ in b) / len(b),
            accuracy=sum(ok for _, ok in b) / len(b),
        )
        for i, b in enumerate(bins)
        if b
    ]


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float:
    """Count-weighted mean of |accuracy - mean score| over the bins."""
    total = sum(b.count for b in table)
    if not total:
        raise ValueError("expected calibration error of an empty table")
    return sum(b.count * abs(b.accuracy - b.mean_score) for b in table) / total


__all__ = [
    "CALIBRATION_PATH",
    "FEATURE_NAMES",
    "SCORED_NER_NAME",
    "Calibration",
    "ReliabilityBin",
    "ScoredNER",
    "entity_features",
    "expected_calibration_error",
    "fit_calibration",
    "parse_with_confidence",
    "reliability_table",
    "source_group",
    "span_confidence",
]
