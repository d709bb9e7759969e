"""`finetune --select`: the pairs a fine-tuning run is selected on (NewsMTSC rw dev, or rw dev
with mt dev), read from a NewsMTSC-shaped folder written here; an unknown split is refused
before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest

import annotators.finetune as finetune
from tests.test_bench_stance import _hf_row  # the hf_splits row as NewsMTSC writes it


def _write(root: Path, name: str, rows: list[tuple[str, str, int]]) -> None:
    (root / "hf_splits" / name).mkdir(parents=True)
    lines = "".join(_hf_row(*row) + "\n" for row in rows)
    (root / "hf_splits" / name / "dev.jsonl").write_text(lines, "utf8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _write(tmp_path, "rw", [("Paris praised Berlin.", "Berlin", 1), ("Oslo met Rome.", "Rome", 0)])
    _write(tmp_path, "mt", [("Critics attacked Lima.", "Lima", -1)])
    return tmp_path


@pytest.mark.parametrize(
    ("splits", "targets"),
    [
        ("rw", ["Berlin", "Rome"]),
        ("rw,mt", ["Berlin", "Rome", "Lima"]),
        ("mt, rw", ["Lima", "Berlin", "Rome"]),
        ("rw,rw", ["Berlin", "Rome"]),  # a split named twice is read once
    ],
)
def test_selection_pairs_are_the_named_dev_splits_in_order(root, splits, targets):
    pairs = finetune.selection_pairs(root, splits)
    assert [p.target for p in pairs] == targets
    lima = [p for p in pairs if p.target == "Lima"]
    assert all(p.label == "AGAINST" for p in lima)
    assert all(p.text[slice(*p.spans[0])] == p.target for p in pairs)


@pytest.mark.parametrize("splits", ["", "rw,test", "dev", " , "])
def test_an_unknown_split_is_refused_with_its_name(root, splits):
    with pytest.raises(ValueError, match="rw and mt"):
        finetune.selection_pairs(root, splits)


def test_the_command_refuses_an_unknown_split_before_training(root, tmp_path, capsys):
    code = finetune.main(["--out", str(tmp_path / "m"), "--newsmtsc", str(root), "--no-newsmtsc",
                          "--select", "rw,xx"])  # fmt: skip
    assert code == 2
    assert "rw and mt, not 'rw,xx'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
