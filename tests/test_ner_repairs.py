"""The NER repair rules (annotators/ner_repairs.py): one table per rule, with the inputs it must
change and the look-alikes it must leave alone. Docs are built by hand (blank English tokenizer,
entities given); the last tests run the real model."""

from __future__ import annotations

import pytest
from spacy.tokens import Doc

from annotators.ner import entity_source, fix_entities
from annotators.ner_repairs import (
    REPAIRS,
    apply_repairs,
    find_attributions,
    mark_historical_places,
    propagate_surnames,
    split_lists,
    split_party_names,
)
from tests.test_annotators_units import _spaced_doc


def _ents(doc: Doc) -> list[tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


def _run(rule, text, ents):
    doc = _spaced_doc(text, ents)
    return [(s.text, s.label_) for s in rule(doc, list(doc.ents))]


# ------------------------------------------------------------------ a leading "The"


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        # the article is part of the name: kept
        ("Talks were held in The Hague.", [("The Hague", "GPE")], [("The Hague", "GPE")]),
        ("The Hague hosts the court.", [("The Hague", "GPE")], [("The Hague", "GPE")]),
        (
            "He wrote for The Globe and Mail.",
            [("The Globe and Mail", "ORG")],
            [("The Globe and Mail", "ORG")],
        ),
        ("She reads The Economist daily.", [("The Economist", "ORG")], [("The Economist", "ORG")]),
        # the model left it out of a known name: put back
        ("Talks were held in The Hague.", [("Hague", "GPE")], [("The Hague", "GPE")]),
        # look-alikes: an ordinary article, sentence-initial or lowercase, is dropped
        ("The United States agreed.", [("The United States", "GPE")], [("United States", "GPE")]),
        ('She said: "The Pentagon agreed."', [("The Pentagon", "ORG")], [("Pentagon", "ORG")]),
        ("Talks in the Kremlin ended.", [("the Kremlin", "ORG")], [("Kremlin", "ORG")]),
        ("He met the Hague officials.", [("Hague", "GPE")], [("Hague", "GPE")]),
    ],
)
def test_ner_repairs_keep_the_of_names(text, ents, expected):
    assert _ents(fix_entities(_spaced_doc(text, ents))) == expected


# ------------------------------------------------------------------ lists


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        (
            "Ports in Busan, Chennai and Rotterdam.",
            [("Busan, Chennai", "GPE"), ("Rotterdam", "GPE")],
            [("Busan", "GPE"), ("Chennai", "GPE"), ("Rotterdam", "GPE")],
        ),
        (
            "She studied at the University of Padua, Sussex and Yale.",
            [("University of Padua, Sussex", "ORG"), ("Yale", "ORG")],
            [("University of Padua", "ORG"), ("Sussex", "ORG"), ("Yale", "ORG")],
        ),
        (
            "Troops from France, Germany, Italy arrived.",
            [("France, Germany, Italy", "GPE")],
            [("France", "GPE"), ("Germany", "GPE"), ("Italy", "GPE")],
        ),
        # unchanged: one name with a comma, a date, no comma
        ("He flew to Washington, D.C. today.", [("Washington, D.C.", "GPE")],
         [("Washington, D.C.", "GPE")]),
        ("Shares of Apple, Inc fell.", [("Apple, Inc", "ORG")], [("Apple, Inc", "ORG")]),
        ("It opened on June 5, 2020.", [("June 5, 2020", "DATE")], [("June 5, 2020", "DATE")]),
        ("Busan and Chennai grew.", [("Busan", "GPE"), ("Chennai", "GPE")],
         [("Busan", "GPE"), ("Chennai", "GPE")]),
        ("They met in Busan, a port.", [("Busan", "GPE")], [("Busan", "GPE")]),
    ],
)  # fmt: skip
def test_ner_repairs_split_lists(text, ents, expected):
    assert _run(split_lists, text, ents) == expected


def test_ner_repairs_split_lists_keeps_a_shared_plural_head():
    # "the Foreign, Home and Defence Secretaries": one title shared by the list, not three names
    doc = _spaced_doc(
        "The Foreign, Home and Defence Secretaries met.",
        [("Foreign, Home and Defence Secretaries", "ORG")],
    )
    doc[6].tag_ = "NNS"
    assert [s.text for s in split_lists(doc, list(doc.ents))] == [
        "Foreign, Home and Defence Secretaries"
    ]


# ------------------------------------------------------------------ party names


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        ("Democrat Nancy Pelosi spoke.", [("Democrat Nancy Pelosi", "PERSON")],
         [("Democrat", "NORP"), ("Nancy Pelosi", "PERSON")]),
        ("Republican Sen. Ted Cruz objected.", [("Republican Sen. Ted Cruz", "PERSON")],
         [("Republican", "NORP"), ("Ted Cruz", "PERSON")]),
        ("SPD leader Olaf Scholz won.", [("SPD leader Olaf Scholz", "PERSON")],
         [("SPD", "ORG"), ("Olaf Scholz", "PERSON")]),
        ("Labour MP Diane Abbott asked.", [("Labour MP Diane Abbott", "PERSON")],
         [("Labour", "ORG"), ("Diane Abbott", "PERSON")]),
        # unchanged: no party, a party word alone, a party that is no person's span
        ("Nancy Pelosi spoke.", [("Nancy Pelosi", "PERSON")], [("Nancy Pelosi", "PERSON")]),
        ("Liberal won.", [("Liberal", "PERSON")], [("Liberal", "PERSON")]),
        ("The Labour Party won.", [("Labour Party", "ORG")], [("Labour Party", "ORG")]),
        ("Greenberg spoke.", [("Greenberg", "PERSON")], [("Greenberg", "PERSON")]),
    ],
)  # fmt: skip
def test_ner_repairs_split_party_names(text, ents, expected):
    assert _run(split_party_names, text, ents) == expected


# ------------------------------------------------------------------ surnames


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        ("Abraham Lincoln won. Lincoln spoke.", [("Abraham Lincoln", "PERSON"), ("Lincoln", "ORG")],
         [("Abraham Lincoln", "PERSON"), ("Lincoln", "PERSON")]),
        ("Lincoln spoke before Abraham Lincoln won.",
         [("Lincoln", "GPE"), ("Abraham Lincoln", "PERSON")],
         [("Lincoln", "PERSON"), ("Abraham Lincoln", "PERSON")]),
        # the model missed the surname: added
        ("Abraham Lincoln won. Then Lincoln spoke.", [("Abraham Lincoln", "PERSON")],
         [("Abraham Lincoln", "PERSON"), ("Lincoln", "PERSON")]),
        # unchanged: no such person, a longer name, a lowercase word, the full name itself
        ("Lincoln is in Nebraska.", [("Lincoln", "GPE"), ("Nebraska", "GPE")],
         [("Lincoln", "GPE"), ("Nebraska", "GPE")]),
        ("Abraham Lincoln won. The Lincoln Memorial opened.",
         [("Abraham Lincoln", "PERSON"), ("Lincoln Memorial", "FAC")],
         [("Abraham Lincoln", "PERSON"), ("Lincoln Memorial", "FAC")]),
        ("George Bush won. The bush burned.", [("George Bush", "PERSON")],
         [("George Bush", "PERSON")]),
    ],
)  # fmt: skip
def test_ner_repairs_propagate_surnames(text, ents, expected):
    assert _run(propagate_surnames, text, ents) == expected


# ------------------------------------------------------------------ historical places


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        ("The Ottoman Empire fell.", [("Ottoman Empire", "ORG")], [("Ottoman Empire", "GPE")]),
        ("The Byzantine Empire fell.", [("Byzantine Empire", "NORP")],
         [("Byzantine Empire", "GPE")]),
        ("Mesopotamia was fertile.", [("Mesopotamia", "PERSON")], [("Mesopotamia", "LOC")]),
        ("Trade across the Levant grew.", [], [("Levant", "LOC")]),
        ("Persia and Rome fought.", [("Rome", "GPE")], [("Persia", "GPE"), ("Rome", "GPE")]),
        # unchanged: an adjective, a building, a longer name that holds the word
        ("Ottoman rule ended.", [("Ottoman", "NORP")], [("Ottoman", "NORP")]),
        ("The Empire State Building is tall.", [("Empire State Building", "FAC")],
         [("Empire State Building", "FAC")]),
        ("The Islamic State of Iraq and the Levant attacked.", [("Islamic State of Iraq", "ORG")],
         [("Islamic State of Iraq", "ORG")]),
        ("Mesopotamia Street is busy.", [], []),
    ],
)  # fmt: skip
def test_ner_repairs_mark_historical_places(text, ents, expected):
    assert _run(mark_historical_places, text, ents) == expected


# ------------------------------------------------------------------ attributions


@pytest.mark.parametrize(
    ("text", "ents", "expected"),
    [
        ("Prices rose, Reuters reported.", [], [("Reuters", "ORG")]),
        ("Prices rose, according to Bloomberg.", [], [("Bloomberg", "ORG")]),
        ("Prices will rise, said John Smith, an analyst at Capital Economics.", [],
         [("John Smith", "PERSON"), ("Capital Economics", "ORG")]),
        ("Demand will fall, according to Eurasia Group.", [], [("Eurasia Group", "ORG")]),
        ("The deal is off, the minister told The Globe and Mail.", [],
         [("The Globe and Mail", "ORG")]),
        ("Mary Jones said the talks failed.", [], [("Mary Jones", "PERSON")]),
        ("The Ministry of Defence said troops left.", [], [("Ministry of Defence", "ORG")]),
        ("Xinhua reported the visit.", [("Xinhua", "PERSON")], [("Xinhua", "ORG")]),
        # unchanged: pronouns, common nouns, one unknown word, a headline, a title, a known name
        ("He said the talks failed.", [], []),
        ("Officials said the talks failed.", [], []),
        ("Smith said the talks failed.", [], []),
        ("Russia Warns West Over Sanctions", [("Russia", "GPE")], [("Russia", "GPE")]),
        ("The Foreign Secretary said it was wrong.", [], []),
        ("Vladimir Putin said no.", [("Vladimir Putin", "PERSON")],
         [("Vladimir Putin", "PERSON")]),
    ],
)  # fmt: skip
def test_ner_repairs_find_attributions(text, ents, expected):
    assert _run(find_attributions, text, ents) == expected


# ------------------------------------------------------------------ order and sources


def test_ner_repairs_apply_repairs_names_the_rule_that_changed_a_span():
    doc = _spaced_doc(
        "Abraham Lincoln met envoys from Busan, Chennai. Lincoln spoke, Reuters reported.",
        [("Abraham Lincoln", "PERSON"), ("Busan, Chennai", "GPE"), ("Lincoln", "ORG")],
    )
    spans, changed = apply_repairs(doc, list(doc.ents))
    assert [(s.text, s.label_) for s in spans] == [
        ("Abraham Lincoln", "PERSON"),
        ("Busan", "GPE"),
        ("Chennai", "GPE"),
        ("Lincoln", "PERSON"),
        ("Reuters", "ORG"),
    ]
    by_text = {doc[a:b].text: rule for (a, b, _), rule in changed.items()}
    assert by_text == {
        "Busan": "split_lists",
        "Chennai": "split_lists",
        "Lincoln": "propagate_surnames",
        "Reuters": "find_attributions",
    }


def test_ner_repairs_sources_reach_fix_entities():
    doc = fix_entities(
        _spaced_doc("Abraham Lincoln won. Lincoln spoke.",
                    [("Abraham Lincoln", "PERSON"), ("Lincoln", "ORG")])
    )  # fmt: skip
    assert [entity_source(doc, e) for e in doc.ents] == ["model", "rule:propagate_surnames"]


def test_ner_repairs_each_rule_is_a_component():
    import spacy

    nlp = spacy.blank("en")
    for name, _ in REPAIRS:
        nlp.add_pipe(f"corpusflow_{name}")
    doc = nlp.make_doc("Abraham Lincoln won. Lincoln spoke.")
    person, org = doc.char_span(0, 15, label="PERSON"), doc.char_span(21, 28, label="ORG")
    assert person is not None and org is not None
    doc.ents = [person, org]
    for _, component in nlp.pipeline:
        doc = component(doc)
    assert _ents(doc) == [("Abraham Lincoln", "PERSON"), ("Lincoln", "PERSON")]


# ------------------------------------------------------------------ with the real model


@pytest.fixture(scope="module")
def nlp():
    from annotators.pipeline import load_nlp

    return load_nlp()


@pytest.mark.model
@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("The judges met in The Hague on Monday.", ("The Hague", "GPE")),
        ("Abraham Lincoln led the Union. Lincoln was re-elected in 1864.", ("Lincoln", "PERSON")),
        ("The Ottoman Empire ruled the region for centuries.", ("Ottoman Empire", "GPE")),
        ("Oil prices climbed on Monday, Reuters reported.", ("Reuters", "ORG")),
    ],
)
def test_ner_repairs_with_the_model(nlp, text, entity):
    assert entity in [(e.text, e.label_) for e in nlp(text).ents]
