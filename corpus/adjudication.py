"""Adjudication between annotators and the agreement figures behind it.

Rules (DESIGN.md): one annotator and no adjudicator -> `reviewed`, taken as is. Two or more ->
an item (an entity as exact start, end and label; a stance as target and label) is accepted when a
strict majority of annotators gave it; a span or target with support but no majority is a dispute.
An adjudicator's annotation is final for the whole document. Any dispute left -> `disputed`: the
document is held from the gold layer, never dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import combinations

from schemas import (
    AdjudicationInput,
    AdjudicationResult,
    Agreement,
    Dispute,
    Evidence,
    HumanAnnotation,
    SpanLabel,
    StanceLabel,
)

Span = tuple[int, int]


def latest_per_annotator(annotations: Iterable[HumanAnnotation]) -> list[HumanAnnotation]:
    """One annotation per (annotator, role): the last one given wins (a resubmission)."""
    last: dict[tuple[str, str], HumanAnnotation] = {}
    for ann in annotations:
        last[(ann.annotator, ann.role)] = ann
    return list(last.values())


def pair_f1(a: set[SpanLabel], b: set[SpanLabel]) -> float:
    """Exact-span F1 between two annotators' entity sets; two empty sets agree fully."""
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def mean_pairwise_f1(entity_sets: Sequence[set[SpanLabel]]) -> float | None:
    pairs = list(combinations(entity_sets, 2))
    if not pairs:
        return None
    return sum(pair_f1(a, b) for a, b in pairs) / len(pairs)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa for two raters over the same items; None without items."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if p_e == 1.0:
        return 1.0 if p_o == 1.0 else 0.0
    return (p_o - p_e) / (1 - p_e)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa; `ratings[i]` holds every rater's label for item i (same count per item)."""
    if not ratings:
        return None
    n = len(ratings[0])
    if n < 2 or any(len(r) != n for r in ratings):
        return None
    big_n = len(ratings)
    totals: Counter[str] = Counter()
    p_items = []
    for item in ratings:
        counts = Counter(item)
        totals.update(counts)
        p_items.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
    p_bar = sum(p_items) / big_n
    p_e = sum((c / (big_n * n)) ** 2 for c in totals.values())
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else 0.0
    return (p_bar - p_e) / (1 - p_e)


def stance_kappa(annotations: Sequence[HumanAnnotation]) -> float | None:
    """Cohen's kappa for two annotators, Fleiss' for more, over the targets every one labelled."""
    if len(annotations) < 2:
        return None
    per_annotator = [_stance_map(a) for a in annotations]
    common = set.intersection(*(set(m) for m in per_annotator))
    targets = sorted(common)
    if not targets:
        return None
    if len(per_annotator) == 2:
        return cohen_kappa(
            [per_annotator[0][t] for t in targets], [per_annotator[1][t] for t in targets]
        )
    return fleiss_kappa([[m[t] for m in per_annotator] for t in targets])


def _stance_map(ann: HumanAnnotation) -> dict[str, str]:
    return {s.target: s.label for s in ann.stances}


def _majority(n_annotators: int, votes: int) -> bool:
    return votes * 2 > n_annotators


def _vote_entities(
    annotations: Sequence[HumanAnnotation],
) -> tuple[list[SpanLabel], list[Dispute]]:
    n = len(annotations)
    votes: dict[Span, Counter[str]] = defaultdict(Counter)
    for ann in annotations:
        for ent in set(ann.entities):
            votes[(ent.start, ent.end)][ent.label] += 1
    accepted: list[SpanLabel] = []
    disputes: list[Dispute] = []
    for (start, end), labels in sorted(votes.items()):
        label, count = labels.most_common(1)[0]
        if _majority(n, count):
            accepted.append(SpanLabel(start=start, end=end, label=label))
        else:
            disputes.append(
                Dispute(kind="entity", start=start, end=end, votes=dict(labels), annotators=n)
            )
    return accepted, disputes


def _vote_stances(
    annotations: Sequence[HumanAnnotation],
) -> tuple[list[StanceLabel], list[Dispute]]:
    n = len(annotations)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    evidence: dict[tuple[str, str], list[Evidence]] = defaultdict(list)
    for ann in annotations:
        for target, stance in {s.target: s for s in ann.stances}.items():
            votes[target][stance.label] += 1
            for ev in stance.evidence:
                if ev not in evidence[(target, stance.label)]:
                    evidence[(target, stance.label)].append(ev)
    accepted: list[StanceLabel] = []
    disputes: list[Dispute] = []
    for target, labels in sorted(votes.items()):
        label, count = labels.most_common(1)[0]
        if _majority(n, count):
            kept = sorted(evidence[(target, label)], key=lambda e: (e.start, e.end))
            accepted.append(StanceLabel(target=target, label=label, evidence=tuple(kept)))  # type: ignore[arg-type]
        else:
            disputes.append(Dispute(kind="stance", target=target, votes=dict(labels), annotators=n))
    return accepted, disputes


def adjudicate(item: AdjudicationInput) -> AdjudicationResult:
    annotations = latest_per_annotator(item.annotations)
    annotators = [a for a in annotations if a.role == "annotator"]
    adjudicators = [a for a in annotations if a.role == "adjudicator"]
    agreement = Agreement(
        entity_f1=mean_pairwise_f1([set(a.entities) for a in annotators]),
        stance_kappa=stance_kappa(annotators),
    )

    def result(status: str, **kw: object) -> AdjudicationResult:
        return AdjudicationResult.model_validate(
            {"doc_id": item.doc_id, "status": status, "agreement": agreement, **kw}
        )

    if adjudicators:
        final = adjudicators[-1]
        return result(
            "adjudicated",
            entities=sorted(set(final.entities), key=_span_key),
            stances=_unique_stances(final.stances),
            disputes=[],
        )
    if not annotators:
        return result("machine", entities=[], stances=[], disputes=[])
    if len(annotators) == 1:
        only = annotators[0]
        return result(
            "reviewed",
            entities=sorted(set(only.entities), key=_span_key),
            stances=_unique_stances(only.stances),
            disputes=[],
        )
    entities, entity_disputes = _vote_entities(annotators)
    stances, stance_disputes = _vote_stances(annotators)
    disputes = entity_disputes + stance_disputes
    return result(
        "disputed" if disputes else "adjudicated",
        entities=entities,
        stances=stances,
        disputes=disputes,
    )


def _span_key(s: SpanLabel) -> tuple[int, int, str]:
    return (s.start, s.end, s.label)


def _unique_stances(stances: Iterable[StanceLabel]) -> list[StanceLabel]:
    by_target = {s.target: s for s in stances}
    return [by_target[t] for t in sorted(by_target)]


# ---------------------------------------------------------------- the agreement report


def _overlap(a: SpanLabel, b: SpanLabel) -> bool:
    return a.label == b.label and a.start < b.end and b.start < a.end


def _overlap_f1(a: Sequence[SpanLabel], b: Sequence[SpanLabel]) -> float:
    if not a and not b:
        return 1.0
    hit_a = sum(any(_overlap(x, y) for y in b) for x in a)
    hit_b = sum(any(_overlap(y, x) for x in a) for y in b)
    return (hit_a + hit_b) / (len(a) + len(b))


def agreement_report(items: Iterable[AdjudicationInput]) -> dict[str, object]:
    """Corpus-level agreement: pairwise span F1 (exact and overlapping) overall and per label,
    stance kappa pooled over documents, and per-annotator counts and F1 against the others."""
    exact: list[float] = []
    overlap: list[float] = []
    per_label: dict[str, list[float]] = defaultdict(list)
    stance_pairs: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    per_annotator: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    documents = 0
    for item in items:
        annotators = [a for a in latest_per_annotator(item.annotations) if a.role == "annotator"]
        for ann in annotators:
            stats = per_annotator[ann.annotator]
            stats["documents"] += 1
            stats["entities"] += len(set(ann.entities))
            stats["stances"] += len(ann.stances)
        if len(annotators) < 2:
            continue
        documents += 1
        for a, b in combinations(annotators, 2):
            sa, sb = set(a.entities), set(b.entities)
            f1 = pair_f1(sa, sb)
            exact.append(f1)
            overlap.append(_overlap_f1(sorted(sa, key=_span_key), sorted(sb, key=_span_key)))
            for label in {e.label for e in sa | sb}:
                per_label[label].append(
                    pair_f1(
                        {e for e in sa if e.label == label}, {e for e in sb if e.label == label}
                    )
                )
            for x in (a, b):
                per_annotator[x.annotator]["f1_sum"] += f1
                per_annotator[x.annotator]["pairs"] += 1
            key = tuple(sorted((a.annotator, b.annotator)))
            ma, mb = _stance_map(a), _stance_map(b)
            if a.annotator != key[0]:
                ma, mb = mb, ma
            la, lb = stance_pairs.setdefault(key, ([], []))  # type: ignore[arg-type]
            for target in sorted(set(ma) & set(mb)):
                la.append(ma[target])
                lb.append(mb[target])

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    kappas = {f"{a}~{b}": cohen_kappa(la, lb) for (a, b), (la, lb) in sorted(stance_pairs.items())}
    return {
        "documents_with_overlap": documents,
        "entity_f1_exact": mean(exact),
        "entity_f1_overlap": mean(overlap),
        "entity_f1_exact_per_label": {k: mean(v) for k, v in sorted(per_label.items())},
        "stance_kappa_pairwise": {
            k: (round(v, 4) if v is not None else None) for k, v in kappas.items()
        },
        "annotators": {
            name: {
                "documents": int(s["documents"]),
                "entities": int(s["entities"]),
                "stances": int(s["stances"]),
                "mean_f1_vs_others": round(s["f1_sum"] / s["pairs"], 4) if s["pairs"] else None,
            }
            for name, s in sorted(per_annotator.items())
        },
    }
