"""Pure parts of the stance transformer: input marking, windowing, quotes, aggregation of
sentence probabilities into a document stance, temperature scaling and calibration measures."""

from __future__ import annotations

import math

import pytest

from annotators.stance import aggregate, quote_regions
from annotators.stance_model import (
    MARK_CLOSE,
    MARK_OPEN,
    find_spans,
    fit_class_bias,
    fit_temperature,
    macro_f1,
    mark_target,
    reliability,
    session_threads,
    softmax,
    window,
)

OPEN, CLOSE = MARK_OPEN, MARK_CLOSE


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("Critics hit Trump.", [(12, 17)], f"Critics hit {OPEN} Trump {CLOSE}."),
        ("Trump won.", [(0, 5)], f"{OPEN} Trump {CLOSE} won."),
        (
            "Xi met Xi.",
            [(7, 9), (0, 2)],
            f"{OPEN} Xi {CLOSE} met {OPEN} Xi {CLOSE}.",
        ),  # every mention, in order
        ("Rain fell.", [], "Rain fell."),  # nothing to mark: unchanged
        ("Rain fell.", [(3, 3)], "Rain fell."),  # an empty span is dropped
        (
            "Joe Biden spoke.",
            [(0, 9), (4, 9)],
            f"{OPEN} Joe Biden {CLOSE} spoke.",
        ),  # overlap dropped
        ("Biden", [(0, 99)], f"{OPEN} Biden {CLOSE}"),  # clipped to the text
    ],
)
def test_stance_model_mark_target(text, spans, expected):
    assert mark_target(text, spans) == expected


@pytest.mark.parametrize(
    ("text", "mention", "expected"),
    [
        ("Trump and trump, not Trumpism.", "Trump", [(0, 5), (10, 15)]),
        ("Mr. Trump spoke.", "Mr. Trump", [(0, 9)]),
        ("Rain fell.", "NATO", []),
        ("Rain fell.", "  ", []),
    ],
)
def test_stance_model_find_spans_whole_words(text, mention, expected):
    assert find_spans(text, mention) == expected


def test_stance_model_window_keeps_short_text_and_cuts_long_text_around_the_mention():
    assert window("Putin spoke.", [(0, 5)]) == ("Putin spoke.", [(0, 5)])
    text = "word " * 300 + "Putin lied. " + "word " * 300
    start = text.index("Putin")
    cut, spans = window(text, [(start, start + 5)], max_chars=200)
    assert len(cut) <= 200
    ((a, b),) = spans
    assert cut[a:b] == "Putin"
    assert not cut.startswith(" ") and not cut.endswith(" ")  # cut at word boundaries


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('He said "no deal" today', [(9, 16)]),
        ("\u201cTrump lied,\u201d she said.", [(1, 12)]),
        ('"open quote runs on', [(1, 19)]),
        ("It's Putin's war.", []),  # apostrophes are not quotes
        ("No quotes here.", []),
    ],
)
def test_stance_quote_regions(text, expected):
    assert quote_regions(text) == expected


def _p(against: float, neutral: float, favor: float) -> dict[str, float]:
    return {"AGAINST": against, "NEUTRAL": neutral, "FAVOR": favor}


@pytest.mark.parametrize(
    ("probs", "label", "evidence"),
    [
        ([], "NEUTRAL", []),  # no sentence: neutral, no evidence
        ([_p(0.1, 0.2, 0.7)], "FAVOR", [0]),  # one sentence: its own label
        # one clear condemnation among three neutral mentions still decides
        ([_p(0.05, 0.9, 0.05)] * 3 + [_p(0.9, 0.05, 0.05)], "AGAINST", [3]),
        # only neutral sentences: neutral, evidence in text order
        ([_p(0.1, 0.8, 0.1), _p(0.2, 0.7, 0.1)], "NEUTRAL", [0, 1]),
        # evidence is the agreeing sentences, most probable first
        ([_p(0.6, 0.3, 0.1), _p(0.1, 0.8, 0.1), _p(0.9, 0.05, 0.05)], "AGAINST", [2, 0]),
        # a sure FAVOR sentence outweighs a weak AGAINST one
        ([_p(0.4, 0.35, 0.25), _p(0.02, 0.03, 0.95)], "FAVOR", [1]),
    ],
)
def test_stance_aggregate_sentence_probabilities(probs, label, evidence):
    got_label, score, got_evidence = aggregate(probs)
    assert (got_label, got_evidence) == (label, evidence)
    assert 0.0 <= score <= 1.0


def test_stance_aggregate_score_is_a_probability_of_the_weighted_mean():
    probs = [_p(0.1, 0.2, 0.7), _p(0.05, 0.9, 0.05)]
    label, score, _ = aggregate(probs, neutral_weight=0.25)
    w = [0.25 + 0.8, 0.25 + 0.1]
    assert label == "FAVOR"
    assert score == pytest.approx((w[0] * 0.7 + w[1] * 0.05) / sum(w), abs=1e-4)


def test_stance_aggregate_caps_evidence():
    assert len(aggregate([_p(0.9, 0.05, 0.05)] * 5, max_evidence=3)[2]) == 3


def test_stance_model_softmax_temperature_keeps_argmax_and_flattens():
    logits = [2.0, 0.0, -1.0]
    sharp, flat = softmax(logits, 1.0), softmax(logits, 3.0)
    assert sum(sharp) == pytest.approx(1.0) and sum(flat) == pytest.approx(1.0)
    assert sharp.index(max(sharp)) == flat.index(max(flat)) == 0
    assert max(flat) < max(sharp)


def test_stance_model_fit_temperature_cools_an_overconfident_model():
    # logits that are always very sure, but right only 60% of the time: T must rise above 1
    logits = [[6.0, 0.0, 0.0]] * 10
    gold = [0] * 6 + [1] * 2 + [2] * 2
    t = fit_temperature(logits, gold)
    assert t > 1.5
    assert softmax(logits[0], t)[0] == pytest.approx(0.6, abs=0.05)
    # a model right every time with moderate logits wants to be sharper (T < 1)
    assert fit_temperature([[2.0, 0.0, 0.0]] * 10, [0] * 10) < 1.0


def _leaning_to_neutral(favor_gap: float) -> tuple[list[list[float]], list[str]]:
    """100 pairs of each label (AGAINST, NEUTRAL, FAVOR logits): AGAINST and NEUTRAL pairs
    clear, FAVOR pairs with NEUTRAL `favor_gap` above FAVOR (and AGAINST 1 below it)."""
    logits = [[3.0, 0.0, 0.0]] * 100 + [[0.0, 3.0, 1.0]] * 100 + [[-1.0, favor_gap, 0.0]] * 100
    return [list(row) for row in logits], ["AGAINST"] * 100 + ["NEUTRAL"] * 100 + ["FAVOR"] * 100


def test_stance_model_class_bias_moves_the_pairs_a_model_leans_away_from():
    """FAVOR pairs 0.25 under NEUTRAL: every one predicted NEUTRAL (macro-F1 0.56). Offsets of
    FAVOR from +0.3 to +1.0 put all 300 right; the smoothed choice is the plateau's first
    point whose neighbours are all on it (+0.4), AGAINST left at 0 (the smaller offsets)."""
    logits, gold = _leaning_to_neutral(0.25)
    offsets, before, after = fit_class_bias(logits, gold)
    assert offsets == {"AGAINST": 0.0, "NEUTRAL": 0.0, "FAVOR": 0.4}
    assert before == pytest.approx(macro_f1(gold, ["AGAINST"] * 100 + ["NEUTRAL"] * 200))
    assert after == 1.0 > before


def test_stance_model_class_bias_leaves_a_model_that_needs_none():
    logits, gold = _leaning_to_neutral(-3.0)  # FAVOR pairs clear too
    offsets, before, after = fit_class_bias(logits, gold)
    assert offsets == {"AGAINST": 0.0, "NEUTRAL": 0.0, "FAVOR": 0.0}
    assert before == after == 1.0
    with pytest.raises(ValueError, match="two labels besides"):
        fit_class_bias([[0.0, 0.0]], ["NEUTRAL"], labels=("NEUTRAL", "FAVOR"))


def test_stance_model_macro_f1_counts_a_label_never_predicted_as_zero():
    assert macro_f1(["FAVOR", "AGAINST", "NEUTRAL"], ["FAVOR", "AGAINST", "NEUTRAL"]) == 1.0
    assert macro_f1(["FAVOR", "AGAINST"], ["FAVOR", "FAVOR"]) == pytest.approx((2 / 3) / 3)


@pytest.mark.parametrize(
    ("confidences", "correct", "ece"),
    [
        ([0.9] * 10, [True] * 9 + [False], 0.0),  # 90% sure, 90% right: calibrated
        ([0.9] * 10, [True] * 5 + [False] * 5, 0.4),  # 90% sure, 50% right
        ([0.55, 0.95], [False, True], (0.55 + 0.05) / 2),  # two bins, weighted by share
    ],
)
def test_stance_model_reliability_ece(confidences, correct, ece):
    table, got = reliability(confidences, correct, bins=10)
    assert got == pytest.approx(ece, abs=1e-9)
    assert sum(b.count for b in table) == len(confidences)
    assert len(table) == 10 and math.isclose(table[-1].high, 1.0)


@pytest.mark.parametrize(
    ("stance_threads", "omp_threads", "expected"),
    [
        ("3", "1", 3),  # named for the stance session: wins
        (None, "1", 1),  # a Dask worker process: one core each
        ("", "2", 2),  # empty is unset
        ("0", None, "cpus"),  # not a positive count: the CPUs this process may use
        ("many", None, "cpus"),
        (None, None, "cpus"),
    ],
)
def test_stance_session_threads_follow_the_worker_environment(
    monkeypatch, stance_threads, omp_threads, expected
):
    import os

    for name, value in (
        ("CORPUSFLOW_STANCE_THREADS", stance_threads),
        ("OMP_NUM_THREADS", omp_threads),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    cpus = len(os.sched_getaffinity(0))
    assert session_threads() == (cpus if expected == "cpus" else expected)
