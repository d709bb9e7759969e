"""Unit tests of the annotator components on hand-built Docs (no model loaded)."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc, Span

from annotators.ner import (
    SOURCE_SCORES,
    credit_ranges,
    entity_score,
    entity_source,
    fix_entities,
    split_span,
    trim_span,
)
from annotators.stance import label_value, sentence_features, sentence_value
from annotators.targets import (
    SPAN_KEY,
    acronym_of,
    assign_targets,
    canonicalize,
    find_mentions,
    salient_targets,
)

VOCAB = spacy.blank("en").vocab  # English lexical attributes (is_punct, lower_)


def make_doc(words, ents=None, heads=None, deps=None, pos=None, lemmas=None) -> Doc:
    n = len(words)
    sent_starts: list[bool | int | None] | None = (
        [True, *[False] * (n - 1)] if heads is None else None
    )
    return Doc(
        VOCAB,
        words=words,
        ents=ents or ["O"] * n,
        heads=heads,
        deps=deps,
        pos=pos,
        lemmas=lemmas,
        sent_starts=sent_starts,
    )


# ------------------------------------------------------------------ ner fixes


@pytest.mark.parametrize(
    ("words", "ents", "expected"),
    [
        (
            ["at", "the", "Shanghai", "Cooperation", "Organization", "(", "SCO", ")", "summit"],
            ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"],
            [("Shanghai Cooperation Organization", "ORG"), ("SCO", "ORG")],
        ),
        (
            ["the", "Kremlin", ",", "said"],
            ["B-ORG", "I-ORG", "I-ORG", "O"],
            [("Kremlin", "ORG")],
        ),
        (["Putin", "'s", "visit"], ["B-PERSON", "I-PERSON", "O"], [("Putin", "PERSON")]),
        (["(", ")", "x"], ["B-ORG", "I-ORG", "O"], []),
        (
            ["in", "the", "past", "year"],
            ["O", "B-DATE", "I-DATE", "I-DATE"],
            [("the past year", "DATE")],
        ),
        # unchanged
        (
            ["Vladimir", "Putin", "met", "Xi"],
            ["B-PERSON", "I-PERSON", "O", "B-PERSON"],
            [("Vladimir Putin", "PERSON"), ("Xi", "PERSON")],
        ),
    ],
)
def test_ner_fix_entities_splits_and_trims(words, ents, expected):
    doc = fix_entities(make_doc(words, ents))
    assert [(e.text, e.label_) for e in doc.ents] == expected


def test_ner_entity_source_marks_fixed_and_model_spans():
    doc = make_doc(["the", "NATO", "and", "Xi"], ["B-ORG", "I-ORG", "O", "B-PERSON"])
    doc = fix_entities(doc)
    nato, xi = doc.ents
    assert (entity_source(doc, nato), entity_source(doc, xi)) == ("fixed", "model")
    # without a calibration table the score falls back to the source's precision
    assert entity_score(doc, nato, None) == SOURCE_SCORES["fixed"]
    assert entity_score(doc, xi, None) == SOURCE_SCORES["model"]
    assert 0.0 < entity_score(doc, nato) < 1.0


def test_ner_trim_span_returns_none_for_punctuation_only():
    doc = make_doc(["(", "-", ")"], ["B-ORG", "I-ORG", "I-ORG"])
    assert trim_span(doc[0:3]) is None
    assert split_span(doc.ents[0]) == []


# ------------------------------------------------------------------ targets


TARGET_DOC = (
    ["Russian", "President", "Vladimir", "Putin", "met", "Xi", "Jinping", ".",
     "Putin", "praised", "Xi", ".", "The", "Russian", "army", "and", "the", "SCO", "and",
     "Shanghai", "Cooperation", "Organization", ".", "The", "US", "Putin"],
    ["B-NORP", "O", "B-PERSON", "I-PERSON", "O", "B-PERSON", "I-PERSON", "O",
     "B-PERSON", "O", "B-PERSON", "O", "O", "B-NORP", "O", "O", "O", "B-ORG", "O",
     "B-ORG", "I-ORG", "I-ORG", "O", "O", "B-GPE", "B-PERSON"],
)  # fmt: skip


def test_targets_canonicalize_groups_mentions():
    doc = make_doc(*TARGET_DOC)
    got = dict(zip([e.text for e in doc.ents], canonicalize(list(doc.ents)), strict=False))
    assert got["Putin"] == "Vladimir Putin"
    assert got["Xi"] == "Xi Jinping"
    assert got["Russian"] == "Russia"
    assert got["SCO"] == "Shanghai Cooperation Organization"
    assert got["US"] == "United States"


def test_targets_title_is_stripped():
    words = ["Chinese", "President", "Xi", "Jinping", "spoke"]
    doc = make_doc(words, ["B-PERSON", "I-PERSON", "I-PERSON", "I-PERSON", "O"])
    assert canonicalize(list(doc.ents)) == ["Xi Jinping"]


def test_targets_salience_counts_mentions():
    doc = assign_targets(make_doc(*TARGET_DOC))
    # ties (Russia and Xi: two each) go to the first mentioned
    assert salient_targets(doc, 3) == ["Vladimir Putin", "Russia", "Xi Jinping"]
    assert all(s.kb_id_ for s in doc.spans[SPAN_KEY])


@pytest.mark.parametrize(
    ("words", "expected"), [(["Shanghai", "Cooperation", "Organization"], "SCO"),
                            (["Collective", "Security", "Treaty", "Organization"], "CSTO"),
                            (["Bank", "of", "England"], "BE")]
)  # fmt: skip
def test_targets_acronym_of(words, expected):
    assert acronym_of(words) == expected


def test_targets_find_mentions_without_targets_component():
    doc = make_doc(["Biden", "met", "Joe", "Biden", "and", "Russian", "troops"])
    assert [m.text for m in find_mentions(doc, "Joe Biden")] == ["Biden", "Joe Biden"]
    assert [m.text for m in find_mentions(doc, "Russia")] == ["Russian"]
    assert find_mentions(doc, "Xi") == []


# ------------------------------------------------------------------ stance


def parsed(words, heads, deps, pos, lemmas, ents):
    return make_doc(words, ents, heads=heads, deps=deps, pos=pos, lemmas=lemmas)


# "Ankara has condemned Russia 's invasion of Ukraine ."
CONDEMN = dict(
    words=["Ankara", "has", "condemned", "Russia", "'s", "invasion", "of", "Ukraine", "."],
    heads=[2, 2, 2, 5, 3, 2, 5, 6, 2],
    deps=["nsubj", "aux", "ROOT", "poss", "case", "dobj", "prep", "pobj", "punct"],
    pos=["PROPN", "AUX", "VERB", "PROPN", "PART", "NOUN", "ADP", "PROPN", "PUNCT"],
    lemmas=["Ankara", "have", "condemn", "Russia", "'s", "invasion", "of", "Ukraine", "."],
    ents=["B-GPE", "O", "O", "B-GPE", "O", "O", "O", "B-GPE", "O"],
)


@pytest.mark.parametrize(("target", "sign"), [("Russia", -1), ("Ukraine", 0), ("Ankara", 0)])
def test_stance_cue_directs_to_object_not_holder_or_victim(target, sign):
    doc = parsed(**CONDEMN)
    sent = doc[:]
    value = sentence_value(sentence_features(sent, find_mentions(doc, target)))
    assert (value > 0.3) - (value < -0.3) == sign


def test_stance_negated_cue_is_not_stance():
    # "Xi did not criticise Putin ."
    doc = parsed(
        words=["Xi", "did", "not", "criticise", "Putin", "."],
        heads=[3, 3, 3, 3, 3, 3],
        deps=["nsubj", "aux", "neg", "ROOT", "dobj", "punct"],
        pos=["PROPN", "AUX", "PART", "VERB", "PROPN", "PUNCT"],
        lemmas=["Xi", "do", "not", "criticise", "Putin", "."],
        ents=["B-PERSON", "O", "O", "O", "B-PERSON", "O"],
    )
    value = sentence_value(sentence_features(doc[:], find_mentions(doc, "Putin")))
    assert label_value(value, 0.3)[0] == "NEUTRAL"


@pytest.mark.parametrize(
    ("value", "label"), [(0.0, "NEUTRAL"), (0.29, "NEUTRAL"), (0.3, "FAVOR"), (-1.2, "AGAINST")]
)
def test_stance_label_value_thresholds(value, label):
    got, score = label_value(value, 0.3)
    assert got == label and 0.0 <= score <= 1.0


def test_stance_classifier_fits_and_round_trips(tmp_path):
    from annotators.stance import FEATURE_NAMES, StanceClassifier

    def row(cue_pos=0.0, cue_neg=0.0):
        return [cue_pos, cue_neg] + [0.0] * (len(FEATURE_NAMES) - 2)

    x = [row(cue_pos=1), row(cue_neg=1), row()] * 10
    y = ["FAVOR", "AGAINST", "NEUTRAL"] * 10
    clf = StanceClassifier.fit(x, y, epochs=500)
    assert [clf.predict(r)[0] for r in (row(cue_pos=1), row(cue_neg=1), row())] == [
        "FAVOR",
        "AGAINST",
        "NEUTRAL",
    ]
    clf.save(tmp_path / "clf.json")
    assert StanceClassifier.load(tmp_path / "clf.json").weights == clf.weights


# ------------------------------------------------------------------ joined names, credits


def _spaced_doc(text: str, ents: list[tuple[str, str]]) -> Doc:
    """A Doc tokenized by spaCy's English tokenizer, with entities given by (text, label), each
    at its first occurrence after the previous one."""
    doc = spacy.blank("en")(text)
    spans: list[Span] = []
    at = 0
    for ent_text, label in ents:
        start = text.index(ent_text, at)
        span = doc.char_span(start, start + len(ent_text), label=label)
        assert span is not None
        spans.append(span)
        at = start + len(ent_text)
    doc.ents = spans
    return doc


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        (  # a headline's name pair: the two leaders, each as the document names them
            "Xi-Putin Meeting in Samarkand. Putin met Xi Jinping.",
            [("Xi-Putin Meeting", "PERSON"), ("Putin", "PERSON"), ("Xi Jinping", "PERSON")],
            [("Xi", "PERSON"), ("Putin", "PERSON"), ("Putin", "PERSON"), ("Xi Jinping", "PERSON")],
        ),
        (
            "Putin-Xi talks. Putin and Xi spoke.",
            [("Putin-Xi", "PERSON"), ("Putin", "PERSON"), ("Xi", "PERSON")],
            [("Putin", "PERSON"), ("Xi", "PERSON"), ("Putin", "PERSON"), ("Xi", "PERSON")],
        ),
        (  # a title-case headline run on into the name
            "Xi Set to Meet Putin. Xi arrived.",
            [("Xi Set to Meet", "PERSON"), ("Putin", "PERSON"), ("Xi", "PERSON")],
            [("Xi", "PERSON"), ("Putin", "PERSON"), ("Xi", "PERSON")],
        ),
        # unchanged: a hyphenated given name, a particle, a pair the document never names apart
        (
            "Jean-Claude Juncker spoke.",
            [("Jean-Claude Juncker", "PERSON")],
            [("Jean-Claude Juncker", "PERSON")],
        ),
        (
            "Ursula von der Leyen spoke.",
            [("Ursula von der Leyen", "PERSON")],
            [("Ursula von der Leyen", "PERSON")],
        ),
        ("Modi-Sharif talks.", [("Modi-Sharif", "PERSON")], [("Modi-Sharif", "PERSON")]),
    ],
)
def test_ner_fix_entities_splits_joined_names(text, ents, expected):
    doc = fix_entities(_spaced_doc(text, ents))
    assert [(e.text, e.label_) for e in doc.ents] == expected


def test_ner_fix_entities_marks_split_names_fixed():
    doc = fix_entities(
        _spaced_doc("Xi-Putin Meeting. Putin met Xi.", [("Xi-Putin Meeting", "PERSON"),
                    ("Putin", "PERSON"), ("Xi", "PERSON")])
    )  # fmt: skip
    assert [entity_source(doc, e) for e in doc.ents] == ["fixed"] * 2 + ["model"] * 2


@pytest.mark.parametrize(
    ("text", "ents", "kept"),
    [
        (
            "Putin met Xi. Archive image. Photo: Li Tao/New China/AP/TT",
            [("Putin", "PERSON"), ("Xi", "PERSON"), ("Li Tao/New China/AP/TT", "PERSON")],
            ["Putin", "Xi"],
        ),
        (
            "Xi and Putin in Beijing, in February. "
            "**Alexei Druzhinin, Sputnik, Kremlin Pool Photo via AP/TASS**\nXi spoke.",
            [("Xi", "PERSON"), ("Putin", "PERSON"), ("Beijing", "GPE"),
             ("Alexei Druzhinin", "PERSON"), ("Sputnik", "ORG"), ("Kremlin Pool Photo", "ORG"),
             ("Xi", "PERSON")],
            ["Xi", "Putin", "Beijing", "Xi"],
        ),
        (  # a photo mentioned in a sentence is no credit
            "Putin posed for a photo with Xi.",
            [("Putin", "PERSON"), ("Xi", "PERSON")],
            ["Putin", "Xi"],
        ),
    ],
)  # fmt: skip
def test_ner_fix_entities_drops_photo_credits(text, ents, kept):
    doc = fix_entities(_spaced_doc(text, ents))
    assert [e.text for e in doc.ents] == kept


@pytest.mark.parametrize(
    ("text", "credits"),
    [
        # a credit that names its source: from the sentence's start (just after the full stop)
        # to the end of its line
        ("Xi met Putin. Kremlin Pool Photo via AP/TASS\nXi spoke.",
         [" Kremlin Pool Photo via AP/TASS"]),
        ("Leaders met.\nJohn Smith via Reuters", ["John Smith via Reuters"]),
        ("via AP", ["via AP"]),
        # two on one line are one credit; a later line has its own
        ("A. B Pool Photo via AP, C via EPA\nD via Getty.", [" B Pool Photo via AP, C via EPA",
                                                            "D via Getty."]),
        # not a source credit: a word run into the agency, or no agency after "via"
        ("Sent via APx. Travelled via Rome.", []),
        ("xvia AP", []),
        # a labelled credit line, from its label on
        ("Archive image. Photo: Li Tao/AP", ["Photo: Li Tao/AP"]),
        ("Putin posed for a photo with Xi.", []),
    ],
)  # fmt: skip
def test_ner_credit_ranges_cover_the_credit_and_nothing_else(text, credits):
    assert [text[a:b] for a, b in credit_ranges(text)] == credits
