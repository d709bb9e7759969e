"""The adjudication rules of DESIGN.md, as a table, and the agreement figures."""

from __future__ import annotations

import math
from typing import cast

import pytest

from corpus.adjudication import adjudicate, agreement_report, cohen_kappa, fleiss_kappa
from schemas import AdjudicationInput


def ent(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


def st(target: str, label: str) -> dict:
    return {"target": target, "label": label}


def ann(name: str, entities=(), stances=(), role: str = "annotator") -> dict:
    return {"annotator": name, "role": role, "entities": list(entities), "stances": list(stances)}


PUTIN = ent(0, 5, "PERSON")
XI = ent(10, 12, "PERSON")
XI_ORG = ent(10, 12, "ORG")

CASES = [
    # id, annotations, status, entities, stances, dispute count
    (
        "one-annotator-reviewed",
        [ann("a", [PUTIN], [st("Putin", "AGAINST")])],
        "reviewed",
        [PUTIN],
        [st("Putin", "AGAINST")],
        0,
    ),
    (
        "two-agree",
        [ann("a", [PUTIN, XI]), ann("b", [XI, PUTIN])],
        "adjudicated",
        [PUTIN, XI],
        [],
        0,
    ),
    ("two-split-label-is-dispute", [ann("a", [XI]), ann("b", [XI_ORG])], "disputed", [], [], 1),
    (
        "two-one-missing-is-dispute",
        [ann("a", [PUTIN, XI]), ann("b", [PUTIN])],
        "disputed",
        [PUTIN],
        [],
        1,
    ),
    (
        "three-majority-label-wins",
        [ann("a", [XI]), ann("b", [XI]), ann("c", [XI_ORG])],
        "adjudicated",
        [XI],
        [],
        0,
    ),
    (
        "three-one-supporter-is-dispute",
        [ann("a", [PUTIN]), ann("b", []), ann("c", [])],
        "disputed",
        [],
        [],
        1,
    ),
    (
        "three-way-split-is-dispute",
        [
            ann("a", [], [st("Xi", "FAVOR")]),
            ann("b", [], [st("Xi", "AGAINST")]),
            ann("c", [], [st("Xi", "NEUTRAL")]),
        ],
        "disputed",
        [],
        [],
        1,
    ),
    (
        "stance-majority",
        [
            ann("a", [], [st("Xi", "FAVOR")]),
            ann("b", [], [st("Xi", "FAVOR")]),
            ann("c", [], [st("Xi", "NEUTRAL")]),
        ],
        "adjudicated",
        [],
        [st("Xi", "FAVOR")],
        0,
    ),
    (
        "adjudicator-is-final",
        [
            ann("a", [XI]),
            ann("b", [XI_ORG]),
            ann("z", [PUTIN], [st("Putin", "FAVOR")], "adjudicator"),
        ],
        "adjudicated",
        [PUTIN],
        [st("Putin", "FAVOR")],
        0,
    ),
    ("adjudicator-alone", [ann("z", [XI], role="adjudicator")], "adjudicated", [XI], [], 0),
    (
        "resubmission-counts-once",
        [ann("a", [XI]), ann("a", [XI_ORG]), ann("b", [XI_ORG])],
        "adjudicated",
        [XI_ORG],
        [],
        0,
    ),
    ("no-annotation-stays-machine", [], "machine", [], [], 0),
]


@pytest.mark.parametrize(
    ("annotations", "status", "entities", "stances", "n_disputes"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_adjudication_rules(annotations, status, entities, stances, n_disputes) -> None:
    out = adjudicate(AdjudicationInput(doc_id="d", text="x" * 40, annotations=annotations))
    assert out.status == status
    assert [e.model_dump() for e in out.entities] == entities
    assert [{"target": s.target, "label": s.label} for s in out.stances] == stances
    assert len(out.disputes) == n_disputes


def test_adjudication_dispute_keeps_the_votes() -> None:
    out = adjudicate(
        AdjudicationInput.model_validate(
            {"doc_id": "d", "annotations": [ann("a", [XI]), ann("b", [XI_ORG])]}
        )
    )
    (dispute,) = out.disputes
    assert (dispute.kind, dispute.start, dispute.end) == ("entity", 10, 12)
    assert dispute.votes == {"PERSON": 1, "ORG": 1}
    assert dispute.annotators == 2


def test_adjudication_agreement_excludes_adjudicator() -> None:
    out = adjudicate(
        AdjudicationInput.model_validate(
            {
                "doc_id": "d",
                "annotations": [
                    ann("a", [PUTIN, XI]),
                    ann("b", [PUTIN]),
                    ann("z", [], role="adjudicator"),
                ],
            }
        )
    )
    # F1 between {PUTIN, XI} and {PUTIN} = 2*1/(2+1)
    assert out.agreement.entity_f1 == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["FAVOR", "AGAINST"], ["FAVOR", "AGAINST"], 1.0),
        (["FAVOR", "FAVOR", "AGAINST", "AGAINST"], ["FAVOR", "AGAINST", "FAVOR", "AGAINST"], 0.0),
        # classic textbook table: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> 0.4
        (["Y"] * 25 + ["N"] * 25, ["Y"] * 20 + ["N"] * 5 + ["Y"] * 10 + ["N"] * 15, 0.4),
        ([], [], None),
    ],
)
def test_adjudication_cohen_kappa(a, b, expected) -> None:
    got = cohen_kappa(a, b)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_adjudication_fleiss_kappa_matches_wikipedia_example() -> None:
    # Fleiss (1971) worked example from Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[str(cat) for cat, n in enumerate(row) for _ in range(n)] for row in table]
    got = fleiss_kappa(ratings)
    assert got is not None and math.isclose(got, 0.210, abs_tol=0.001)


def test_adjudication_stance_kappa_two_annotators_uses_shared_targets() -> None:
    out = adjudicate(
        AdjudicationInput.model_validate(
            {
                "doc_id": "d",
                "annotations": [
                    ann(
                        "a", [], [st("Xi", "FAVOR"), st("Putin", "AGAINST"), st("NATO", "NEUTRAL")]
                    ),
                    ann("b", [], [st("Xi", "FAVOR"), st("Putin", "AGAINST")]),
                ],
            }
        )
    )
    assert out.agreement.stance_kappa == pytest.approx(1.0)


def test_adjudication_agreement_report_per_annotator_and_label() -> None:
    items = [
        AdjudicationInput.model_validate(
            {"doc_id": "1", "annotations": [ann("a", [PUTIN, XI]), ann("b", [PUTIN, XI_ORG])]}
        ),
        AdjudicationInput.model_validate(
            {
                "doc_id": "2",
                "annotations": [ann("a", [ent(0, 6, "GPE")]), ann("b", [ent(0, 7, "GPE")])],
            }
        ),
        AdjudicationInput.model_validate({"doc_id": "3", "annotations": [ann("a", [PUTIN])]}),
    ]
    report = agreement_report(items)
    assert report["documents_with_overlap"] == 2
    # doc 1: 2*1/4 = 0.5; doc 2: exact 0, overlapping 1
    assert report["entity_f1_exact"] == pytest.approx(0.25)
    assert report["entity_f1_overlap"] == pytest.approx(0.75)
    per_label = cast("dict[str, float]", report["entity_f1_exact_per_label"])
    assert per_label["GPE"] == 0.0
    annotators = cast("dict[str, dict[str, float]]", report["annotators"])
    assert annotators["a"]["documents"] == 3
    assert annotators["b"]["mean_f1_vs_others"] == pytest.approx(0.25)
