"""The shipped stance transformer (annotators/models/stance-minilm) loaded with onnxruntime, on
sentences written for this test (not from any training or test set), and the document path:
the default pipeline uses it, reported speech is attributed to its speaker."""

from __future__ import annotations

import json

import pytest

from annotators.stance_model import (
    CONFIG_FILE,
    DEFAULT_MODEL_DIR,
    MODEL_FILE,
    TOKENIZER_FILE,
    OnnxStance,
    find_spans,
    model_dir_version,
)
from schemas.records import CleanDocument, StanceRequest

# unambiguous on purpose: a clear act of blame or praise aimed at the target, or a plain fact
CLEAR = [
    ("Critics condemned Senator Walsh for the corruption scandal.", "Senator Walsh", "AGAINST"),
    ("The report accused Minister Lange of lying and wasting public money.", "Minister Lange",
     "AGAINST"),
    ("Protesters denounced Mayor Okoro as a corrupt and cruel tyrant.", "Mayor Okoro", "AGAINST"),
    ("Fans cheered and praised Coach Rivera for a brilliant season.", "Coach Rivera", "FAVOR"),
    ("Colleagues described Dr. Chen as a brilliant, generous and kind leader.", "Dr. Chen",
     "FAVOR"),
    ("Governor Patel will attend the meeting on Tuesday.", "Governor Patel", "NEUTRAL"),
    ("Judge Moreau arrived in Lyon on Monday.", "Judge Moreau", "NEUTRAL"),
]  # fmt: skip


@pytest.fixture(scope="module")
def model() -> OnnxStance:
    return OnnxStance(DEFAULT_MODEL_DIR)


def test_stance_model_is_shipped_with_its_card_and_version():
    for name in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, "README.md"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    config = json.loads((DEFAULT_MODEL_DIR / CONFIG_FILE).read_text())
    assert config["labels"] == ["AGAINST", "NEUTRAL", "FAVOR"]
    assert config["version"] == model_dir_version(DEFAULT_MODEL_DIR)  # a hash of the weights
    assert config["version"] in (DEFAULT_MODEL_DIR / "README.md").read_text()
    assert (DEFAULT_MODEL_DIR / MODEL_FILE).stat().st_size < 40_000_000  # int8, not fp32


@pytest.mark.parametrize(("text", "target", "expected"), CLEAR)
def test_stance_model_labels_unambiguous_sentences(model, text, target, expected):
    (probs,) = model.predict_proba([(text, find_spans(text, target), target)])
    assert max(probs, key=probs.__getitem__) == expected, probs
    assert sum(probs.values()) == pytest.approx(1.0)


def test_stance_model_is_target_dependent(model):
    """The same sentence toward two targets: the blamed one is AGAINST, the one doing the
    blaming is not (the marker, not the sentence's tone, decides)."""
    text = "Senator Walsh condemned Minister Lange for the corruption scandal."
    (lange, walsh) = model.predict_proba(
        [(text, find_spans(text, "Minister Lange"), "Minister Lange"),
         (text, find_spans(text, "Senator Walsh"), "Senator Walsh")]
    )  # fmt: skip
    assert max(lange, key=lange.__getitem__) == "AGAINST"
    assert walsh["AGAINST"] < lange["AGAINST"]


@pytest.mark.model
def test_stance_default_pipeline_uses_the_transformer_and_attributes_quotes():
    from annotators.pipeline import MODEL_VERSION, annotate, load_nlp
    from annotators.stance import predict_stance

    nlp = load_nlp()
    version = model_dir_version(DEFAULT_MODEL_DIR)
    assert version in MODEL_VERSION and nlp.meta["corpusflow_model_version"] == MODEL_VERSION
    (result,) = predict_stance([StanceRequest(text=CLEAR[0][0], target="Walsh")], nlp=nlp)
    assert result.label == "AGAINST" and 0.5 < result.score <= 1.0
    text = (
        "Senator Walsh spoke in Denver on Monday. "
        '"Senator Walsh is a liar and a crook," his rival Tom Baker said.'
    )
    (doc,) = nlp.pipe([text], component_cfg={"corpusflow_stance": {"extra_targets": ["Walsh"]}})
    (walsh,) = [s for s in doc._.stances if s["target"] in {"Walsh", "Senator Walsh"}][:1]
    # the insult is Baker's, not the author's: kept out of the document's stance, attributed
    assert walsh["label"] == "NEUTRAL"
    assert [a["speaker"] for a in walsh["attributed"]] == ["his rival Tom Baker"]
    assert walsh["attributed"][0]["label"] == "AGAINST"
    (ann,) = annotate([CleanDocument(source="x", doc_id="x", text=text)], nlp=nlp)
    assert ann.model_version == MODEL_VERSION


@pytest.mark.model
@pytest.mark.parametrize(
    ("text", "target", "speaker"),
    [
        ('"Trump is a liar," Pelosi said.', "Trump", "Pelosi"),
        ("Critics said Trump lied about the deal.", "Trump", "Critics"),
        ("According to Reuters, Putin lied.", "Putin", "Reuters"),
        ("Trump said he would win the state.", "Trump", None),  # the target's own words
        ("Putin lied about the war.", "Putin", None),  # the author's sentence
        ('Critics called Putin a "war criminal".', "Putin", None),  # scare quotes, not speech
    ],
)
def test_stance_reported_speaker(text, target, speaker):
    from annotators.pipeline import load_nlp
    from annotators.stance import reported_speaker
    from annotators.targets import find_mentions

    doc = load_nlp()(text)
    mentions = find_mentions(doc, target)
    assert reported_speaker(mentions[0].sent, mentions) == speaker
