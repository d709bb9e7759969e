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


def test_stance_model_keeps_the_ffn_down_projections_fp32_and_the_other_weights_int8():
    """How `annotators.finetune.quantize` left the shipped graph (read with the training
    environment's `onnx`: the run time has none): the six `layer.N/output/dense` MatMuls
    multiply fp32 weights, every other weight MatMul is an 8-bit MatMulInteger whose weights
    are stored uint8 with zero point 128 (`widen_int8_weights`: int8 weights would make the
    labels depend on the CPU)."""
    import subprocess

    from annotators.train import TRAIN_PYTHON
    from tests.test_train_stance import _needs_train_env

    _needs_train_env()
    script = (
        "import json, sys, onnx\n"
        "g = onnx.load(sys.argv[1]).graph\n"
        "inits = {i.name: i.data_type for i in g.initializer}\n"
        "weighted = [n for n in g.node if n.op_type == 'MatMul' and n.input[1] in inits]\n"
        "fp32 = [n.name for n in weighted]\n"
        "kinds = {inits[n.input[1]] for n in weighted}\n"
        "int8 = [n.name for n in g.node if n.op_type == 'MatMulInteger']\n"
        "arrays = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}\n"
        "mmi = [n for n in g.node if n.op_type == 'MatMulInteger']\n"
        "stored = sorted({str(arrays[n.input[1]].dtype) for n in mmi})\n"
        "zeros = sorted({int(z) for n in mmi for z in set(arrays[n.input[3]].ravel())})\n"
        "print(json.dumps([fp32, sorted(kinds), int8, stored, zeros]))\n"
    )
    out = subprocess.run(
        [str(TRAIN_PYTHON), "-c", script, str(DEFAULT_MODEL_DIR / MODEL_FILE)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fp32, kinds, int8, stored, zeros = json.loads(out.stdout)
    assert fp32 == [f"/encoder/encoder/layer.{i}/output/dense/MatMul" for i in range(6)]
    assert kinds == [1]  # onnx.TensorProto.FLOAT
    # q, k, v, attention output, intermediate in each of the 6 layers, and the head
    assert len(int8) == 6 * 5 + 1
    assert not any("/output/dense/MatMul" in n and "attention" not in n for n in int8)
    assert stored == ["uint8"]
    assert zeros == [128]


# The logits of CLEAR's pairs, computed with exact integer arithmetic (the shipped weights are
# uint8: onnxruntime multiplies uint8 by uint8 exactly on every CPU). With the same weights
# stored int8 (stance-minilm-21e2a77d), an AMD EPYC (Zen 2, AVX2, no VNNI) gave logits 0.03-0.06
# away from these on each of the seven pairs, and other labels on 1.1% of NewsMTSC rw test:
# without VNNI, uint8 x int8 sums pairs of products in saturating 16 bits. stance-minilm-cdf49b53
# is e7191040 with class offsets (AGAINST +0.1, FAVOR +0.4) folded into head.bias: each row
# here is e7191040's plus those offsets, to the fourth decimal.
CLEAR_LOGITS = [
    (3.7428, -1.1796, -1.6529),
    (3.8385, -0.8485, -2.0388),
    (3.6920, -2.0443, -0.7647),
    (-2.0803, -1.9942, 4.1829),
    (-1.9255, -1.9595, 4.0941),
    (-2.8927, 3.7554, -1.0781),
    (-2.1732, 3.7509, -1.5720),
]


@pytest.mark.parametrize("threads", [1, 2])
def test_stance_model_logits_do_not_depend_on_the_cpu_or_threads(threads):
    """The shipped model's logits are the same wherever it runs: the release's stances (and
    so its content hash) must not change with the machine or cluster that annotated it."""
    from annotators.stance_model import mark_target, window

    model = OnnxStance(DEFAULT_MODEL_DIR, threads=threads)
    pairs = [
        (mark_target(*window(text, find_spans(text, target))), target) for text, target, _ in CLEAR
    ]
    for row, expected in zip(model.logits(pairs), CLEAR_LOGITS, strict=True):
        assert row == pytest.approx(expected, abs=0.002), (row, expected)


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
