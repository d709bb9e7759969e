"""The target-dependent stance transformer at run time: input marking (shared with training),
the ONNX model run with onnxruntime + tokenizers (no torch), temperature-calibrated
probabilities, and calibration measures (reliability table, ECE).

Input: the sentence with every mention of the target wrapped in marker tokens, paired with the
target's name as the second segment:
`[CLS] the senators [unused0] trump [unused1] defended ... [SEP] trump [SEP]`.
The classifier reads the hidden states of [CLS] and of the first opening marker.

This module imports neither spaCy nor torch, so the training environment (.train-venv) and the
project environment share it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL_DIR = MODELS_DIR / "stance-minilm"
MODEL_FILE = "model.onnx"  # int8 (dynamic quantization): what ships and runs by default
FP32_FILE = "model-fp32.onnx"  # written by training, not shipped (the benchmark's fp32 row)
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
# BERT vocabularies reserve [unusedN] rows: two of them become the target markers, so the
# vocabulary (and the embedding matrix) keep their size and the tokenizer stays the base one
MARK_OPEN = "[unused0]"
MARK_CLOSE = "[unused1]"
LABELS: tuple[str, ...] = ("AGAINST", "NEUTRAL", "FAVOR")
# A sentence longer than this (in characters) is cut to a window around the mentions, so the
# markers survive the tokenizer's truncation.
MAX_CHARS = 600
# Pairs per onnxruntime call: one. The int8 model quantizes its activations per call (dynamic
# quantization: one scale over the whole input), so in a call of several pairs a pair's stance
# depends on the pairs beside it: a document annotated alone (a re-run after one source changed,
# another Dask worker) got other stances than in a full run (tests/test_faults.py found it).
# Alone, a pair's stance is a function of the pair. Measured here on NewsMTSC, one thread, calls
# of 1 vs length-sorted calls of 8: rw test macro-F1 0.777 vs 0.777, mt test 0.751 vs 0.745, rw
# dev 0.787 vs 0.801; 184-200 vs 200-212 pairs per CPU second (about 6% slower).
BATCH_SIZE = 1
# Environment variable naming the session's intra-op threads (default: see `session_threads`).
THREADS_ENV = "CORPUSFLOW_STANCE_THREADS"


def mark_target(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The text with each (start, end) character span wrapped in the marker tokens; overlapping
    or empty spans are dropped, spans outside the text are clipped.

    `mark_target("Critics hit Trump.", [(12, 17)])` -> "Critics hit [unused0] Trump [unused1]."
    """
    clean: list[tuple[int, int]] = []
    for start, end in sorted((max(0, a), min(len(text), b)) for a, b in spans):
        if start >= end or (clean and start < clean[-1][1]):
            continue
        clean.append((start, end))
    out, last = [], 0
    for start, end in clean:
        out += [text[last:start], f"{MARK_OPEN} ", text[start:end], f" {MARK_CLOSE}"]
        last = end
    out.append(text[last:])
    return "".join(out)


def window(text: str, spans: Sequence[tuple[int, int]], max_chars: int = MAX_CHARS):
    """(text, spans) cut to at most `max_chars` around the first span (at word boundaries),
    spans shifted to the cut; short texts come back unchanged."""
    if len(text) <= max_chars or not spans:
        return text, list(spans)
    first = min(a for a, _ in spans)
    start = max(0, first - max_chars // 2)
    end = min(len(text), start + max_chars)
    while start > 0 and not text[start - 1].isspace():
        start += 1
    while end < len(text) and not text[end].isspace():
        end -= 1
    kept = [(a - start, b - start) for a, b in spans if a >= start and b <= end]
    return text[start:end], kept


def find_spans(text: str, mention: str) -> list[tuple[int, int]]:
    """Character spans of `mention` in `text` (case-insensitive, whole words)."""
    import re

    if not mention.strip():
        return []
    pattern = re.compile(rf"(?<!\w){re.escape(mention.strip())}(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def softmax(logits: Sequence[float], temperature: float = 1.0) -> list[float]:
    scaled = [v / temperature for v in logits]
    top = max(scaled)
    exps = [math.exp(v - top) for v in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def fit_temperature(logits: Sequence[Sequence[float]], gold: Sequence[int]) -> float:
    """The temperature (0.5..5, step 0.05) minimising the negative log-likelihood of `gold`:
    temperature scaling, the one-parameter calibration that keeps the argmax (Guo et al. 2017)."""
    best, best_nll = 1.0, math.inf
    for step in range(10, 101):
        t = step * 0.05
        nll = -sum(
            math.log(max(softmax(row, t)[g], 1e-12)) for row, g in zip(logits, gold, strict=True)
        )
        if nll < best_nll:
            best, best_nll = t, nll
    return round(best, 2)


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS) -> float:
    """The unweighted mean of the labels' F1 (a label never predicted nor gold counts 0)."""
    gold, pred = list(gold), list(pred)
    total = 0.0
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        npred, ngold = pred.count(label), gold.count(label)
        prec, rec = (tp / npred if npred else 0.0), (tp / ngold if ngold else 0.0)
        total += 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return total / len(labels)


# Class offsets: fitted on at least this many dev pairs, else none (on a few pairs a grid of
# 441 offsets finds one that fits those pairs and nothing else).
BIAS_MIN_PAIRS = 300
BIAS_STEP = 0.1
BIAS_REACH = 10  # steps each way: offsets -1.0 .. 1.0


def fit_class_bias(
    logits: Sequence[Sequence[float]],
    gold: Sequence[str],
    labels: Sequence[str] = LABELS,
    fixed: str = "NEUTRAL",
) -> tuple[dict[str, float], float, float]:
    """(offsets to add to each label's logit, dev macro-F1 before, after): the offsets of the
    two polar labels (the `fixed` one stays 0; only differences count) on a grid of BIAS_STEP
    within +-BIAS_REACH steps, chosen by the mean macro-F1 over each grid point and its eight
    neighbours (one point can fit a few pairs by luck; a plateau is the model's), ties to the
    smaller offsets. Macro-F1 weighs the rarer polar labels as much as NEUTRAL, and a
    cross-entropy-trained model leans to the frequent one: on NewsMTSC dev the shipped model
    put 42 of 162 FAVOR pairs on NEUTRAL. The offsets keep the top label where it is clear and
    move it where FAVOR, AGAINST and NEUTRAL are close; the temperature is fitted after them."""
    fixed_at = list(labels).index(fixed)
    free = [i for i in range(len(labels)) if i != fixed_at]
    if len(free) != 2:
        raise ValueError(f"fit_class_bias: two labels besides {fixed!r}, not {list(labels)}")
    rows = [list(r) for r in logits]
    gold = list(gold)

    def score(offsets: Sequence[float]) -> float:
        pred = [labels[max(range(len(labels)), key=lambda i: row[i] + offsets[i])] for row in rows]
        return macro_f1(gold, pred, labels)

    steps = range(-BIAS_REACH, BIAS_REACH + 1)
    grid: dict[tuple[int, int], float] = {}
    for a in steps:
        for b in steps:
            point = [0.0] * len(labels)
            point[free[0]], point[free[1]] = a * BIAS_STEP, b * BIAS_STEP
            grid[a, b] = score(point)

    def smoothed(a: int, b: int) -> float:
        near = [grid[k] for i in (-1, 0, 1) for j in (-1, 0, 1) if (k := (a + i, b + j)) in grid]
        return sum(near) / len(near)

    best = max(grid, key=lambda k: (round(smoothed(*k), 12), -(abs(k[0]) + abs(k[1]))))
    offsets = {label: 0.0 for label in labels}
    offsets[labels[free[0]]] = round(best[0] * BIAS_STEP, 2)
    offsets[labels[free[1]]] = round(best[1] * BIAS_STEP, 2)
    return offsets, grid[0, 0], grid[best]


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float  # mean top probability in the bin
    accuracy: float  # share of the bin whose top label is right


def reliability(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> tuple[list[ReliabilityBin], float]:
    """(reliability table over equal-width confidence bins, expected calibration error): ECE =
    sum over bins of |accuracy - confidence| weighted by the bin's share of the predictions."""
    table: list[ReliabilityBin] = []
    ece = 0.0
    n = len(confidences)
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if (low < c <= high) or (b == 0 and c == 0.0)]
        if not idx:
            table.append(ReliabilityBin(low, high, 0, 0.0, 0.0))
            continue
        conf = sum(confidences[i] for i in idx) / len(idx)
        acc = sum(bool(correct[i]) for i in idx) / len(idx)
        table.append(ReliabilityBin(low, high, len(idx), conf, acc))
        ece += len(idx) / n * abs(acc - conf)
    return table, ece


def weights_version(path: Path, name: str = "stance-minilm") -> str:
    """`<name>-<sha8 of the model file>`: the version is a hash of the weights."""
    return f"{name}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"


def model_dir_version(model_dir: Path, model_file: str = MODEL_FILE) -> str:
    """The version of a model folder without loading it (what `OnnxStance.version` says)."""
    config = json.loads((Path(model_dir) / CONFIG_FILE).read_text(encoding="utf8"))
    return weights_version(Path(model_dir) / model_file, config.get("name", "stance-minilm"))


def session_threads() -> int:
    """Intra-op threads for a session: `$CORPUSFLOW_STANCE_THREADS`, else `$OMP_NUM_THREADS`
    (what a Dask worker process is given: 1, one core per worker process), else the CPUs this
    process may run on."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return max(1, len(os.sched_getaffinity(0)))


def make_session(path: Path, threads: int):
    """An onnxruntime CPU session: all graph optimisations (fusions of LayerNorm, GELU and the
    quantized MatMuls), `threads` intra-op threads, one operator at a time, and no spinning: an
    idle thread that spins burns the CPU that spaCy and the other worker processes need; on the
    2-core machine spinning halved the pairs per CPU second (bench: 100 against 200)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runtime_tokenizer(path: Path, max_len: int):
    """The model folder's tokenizer as it runs: pairs cut to `max_len` tokens from the end of
    the sentence (the target segment kept), padded per call to the call's longest pair."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_len, strategy="only_first")
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def batch_logits(
    session, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = BATCH_SIZE
) -> list[list[float]]:
    """Raw logits for (marked text, target name) pairs, in calls of `batch_size` pairs sorted
    by length so the padding stays short. Training scores its exported models with this too:
    an int8 model quantizes its activations per call, so how pairs are grouped moves its score;
    the default (one pair per call, `BATCH_SIZE`) makes each pair's logits its own."""
    import numpy as np

    inputs = {i.name for i in session.get_inputs()}
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
    out: list[list[float]] = [[] for _ in pairs]
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        encs = tokenizer.encode_batch([pairs[i] for i in idx])
        feed = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
        (batch,) = session.run(["logits"], {k: v for k, v in feed.items() if k in inputs})
        for i, row in zip(idx, batch.tolist(), strict=True):
            out[i] = row
    return out


class OnnxStance:
    """The exported classifier run with onnxruntime; load once per process (`load_onnx`): one
    session, its threads from `session_threads()` unless `threads` is given."""

    def __init__(self, model_dir: Path, model_file: str = MODEL_FILE, threads: int = 0) -> None:
        self.dir = Path(model_dir)
        self.path = self.dir / model_file
        if not self.path.is_file():
            raise FileNotFoundError(f"stance model {self.path} is missing")
        self.config = json.loads((self.dir / CONFIG_FILE).read_text(encoding="utf8"))
        self.labels: tuple[str, ...] = tuple(self.config["labels"])
        self.temperature = float(self.config.get("temperature", 1.0))
        self.max_len = int(self.config.get("max_len", 128))
        self.tokenizer = runtime_tokenizer(self.dir / TOKENIZER_FILE, self.max_len)
        self.threads = threads or session_threads()
        self.session = make_session(self.path, self.threads)
        self.version = model_dir_version(self.dir, model_file)

    def logits(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = BATCH_SIZE
    ) -> list[list[float]]:
        """Raw logits for (marked text, target name) pairs (`batch_logits`)."""
        return batch_logits(self.session, self.tokenizer, pairs, batch_size)

    def predict_proba(
        self,
        items: Sequence[tuple[str, Sequence[tuple[int, int]], str]],
        batch_size: int = BATCH_SIZE,
    ) -> list[dict[str, float]]:
        """Calibrated label probabilities for (text, mention spans, target name) items."""
        pairs = []
        for text, spans, target in items:
            cut, kept = window(text, spans)
            pairs.append((mark_target(cut, kept), target))
        return [
            dict(zip(self.labels, softmax(row, self.temperature), strict=True))
            for row in self.logits(pairs, batch_size)
        ]


SHIPPED_FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, "README.md")


def pack_model(model_dir: Path) -> bytes:
    """The model folder's run-time files as one tar (what the store keeps); weights.safetensors
    rides along when present, so a later `--from latest` can fine-tune further from it."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in (*SHIPPED_FILES, "weights.safetensors"):
            path = Path(model_dir) / name
            if path.is_file():
                info = tar.gettarinfo(str(path), arcname=name)
                info.mtime = 0  # the same files make the same bytes
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


def unpack_model(archive: Path) -> Path:
    """The folder beside a packed model file (`<name>.d/`), unpacked once; a model folder is
    returned as it is."""
    import os
    import shutil
    import tarfile

    archive = Path(archive)
    if archive.is_dir():
        return archive
    folder = archive.with_name(archive.name + ".d")
    if (folder / MODEL_FILE).is_file():
        return folder
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    if not (tmp / MODEL_FILE).is_file():
        shutil.rmtree(tmp)
        raise ValueError(f"{archive}: not a stance model archive (no {MODEL_FILE})")
    try:
        os.replace(tmp, folder)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def is_model_archive(path: Path) -> bool:
    import tarfile

    return Path(path).is_file() and tarfile.is_tarfile(path)


@lru_cache(maxsize=4)
def load_onnx(model_dir: Path = DEFAULT_MODEL_DIR, model_file: str = MODEL_FILE) -> OnnxStance:
    return OnnxStance(Path(model_dir), model_file)


__all__ = [
    "DEFAULT_MODEL_DIR",
    "LABELS",
    "MARK_CLOSE",
    "MARK_OPEN",
    "OnnxStance",
    "find_spans",
    "fit_class_bias",
    "fit_temperature",
    "macro_f1",
    "batch_logits",
    "load_onnx",
    "make_session",
    "runtime_tokenizer",
    "session_threads",
    "is_model_archive",
    "mark_target",
    "pack_model",
    "unpack_model",
    "model_dir_version",
    "reliability",
    "softmax",
    "weights_version",
    "window",
]
