"""The Label Studio labeling configs (review and adjudication), built from the label schema
(schemas/labeling.py) as a tag tree with `label_studio_sdk.label_interface` and checked by its
`LabelInterface`, and the control names read back from a config, so that no from_name/to_name
is written down twice.

Layout, for a person working in it: the article first (title, then a small source line, then the
text with entity labels shown on the spans; the title is shown above the text only when the
text does not open with it, as cleaned articles do, so that it is not read twice), and beside
the text a column that stays in view while the text scrolls, holding what is decided per
evidence region (target and stance, shown when an evidence region is selected) and the
document flags. Stance is annotated on evidence regions: a sentence marked with the one
`STANCE_EVIDENCE` label, with its target and stance as per-region controls, so every piece of
evidence stays visible in the text and correctable on its own (a document-level choice per
target could not show which sentence supports it)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from label_studio_sdk.label_interface import LabelInterface
from label_studio_sdk.label_interface.create import tree_from_tuples, tree_to_string

from schemas.labeling import DOCUMENT_FLAGS, ENTITY_LABELS, STANCE_LABELS

EVIDENCE_LABEL = "STANCE_EVIDENCE"
# Evidence is blue and no entity colour is: a sentence-long stance highlight must not be taken
# for an entity, and entity spans inside it stay readable.
EVIDENCE_COLOUR = "#69B1FF"
# One colour per entity label, warm and green hues only (see EVIDENCE_COLOUR); cycled if the
# schema grows past them.
_ENTITY_COLOURS = (
    "#FF7875",  # red
    "#FFA940",  # orange
    "#FFD666",  # gold
    "#95DE64",  # green
    "#B7EB8F",  # light green
    "#D3ADF7",  # lavender
    "#FF85C0",  # pink
    "#E6A57E",  # tan
    "#D4B106",  # olive
    "#FFBB96",  # peach
    "#87E8DE",  # teal
)
# Keyboard shortcuts: a letter per entity label (its initial where free), `s` for evidence,
# 1-3 for the stance of the selected region. Label Studio's own single-key shortcut is `u`
# (unselect), which none of these takes.
_ENTITY_HOTKEYS = {
    "PERSON": "p",
    "NORP": "n",
    "ORG": "o",
    "GPE": "g",
    "LOC": "l",
    "FAC": "f",
    "EVENT": "e",
    "LAW": "w",
    "PRODUCT": "r",
    "DATE": "d",
    "MONEY": "m",
}
EVIDENCE_HOTKEY = "s"
_STANCE_HOTKEYS = ("1", "2", "3")

# Shown in the project's instruction dialog and, shortened, where they are needed.
INSTRUCTIONS: tuple[str, ...] = (
    "The model has labelled this article: correct its work rather than starting afresh.",
    "Entities: fix, delete or add spans. Press the label's key (shown next to it), then select "
    "exactly the name (no surrounding punctuation, no articles that are not part of it).",
    "Stance: each blue region is one sentence taking a stance on one target. Click it; in the "
    "Stance box beside the text check the target (the canonical name of the person, "
    "organisation, place or group) and pick FAVOR, AGAINST or NEUTRAL (keys 1, 2, 3). Mark "
    "another sentence with S to add evidence; delete regions that take no stance. A sentence "
    "with several targets holds one region per target: pick them in the Regions list.",
    "Flags: tick the ones that apply to the whole document, then still submit.",
    "Skip a document only when you cannot judge it: skipped documents are counted, not used.",
)
_STANCE_HINT = "Click a blue evidence sentence to set its target and stance."

# The adjudication project's own instructions: the adjudicator decides, the draft never does.
ADJUDICATION_INSTRUCTIONS: tuple[str, ...] = (
    "Annotators disagreed on this article. The table above the text lists every disputed item "
    "with what each annotator (by pseudonym) said.",
    "The text is pre-filled only with what the annotators agreed on. Nothing disputed is "
    "pre-filled: for every row, add the label you decide in the text (an entity span, or a blue "
    "evidence sentence with target and stance), or leave it out if no version is right.",
    "Change agreed items only where they are plainly wrong. What you submit is final for the "
    "whole document.",
)

# Page layout. Label Studio's <Style> takes CSS; its <View> takes inline styles.
_CSS = """
.cf-meta { color: #595959; font-size: 13px; margin: -4px 0 8px 0; }
.cf-meta a { color: #1677ff; }
.cf-row { display: flex; gap: 20px; align-items: flex-start; }
.cf-article { flex: 1 1 auto; min-width: 0; font-size: 16px; line-height: 1.7; }
.cf-side { flex: 0 0 300px; position: sticky; top: 0; align-self: flex-start;
  background: #F0F5FF; border: 1px solid #ADC6FF; border-radius: 6px; padding: 10px; }
.cf-side h1, .cf-side h2, .cf-side h3, .cf-side h4, .cf-side h5, .cf-side h6 {
  margin: 6px 0 4px 0; }
.cf-hint h1, .cf-hint h2, .cf-hint h3, .cf-hint h4, .cf-hint h5, .cf-hint h6 {
  color: #595959; font-size: 13px !important; font-weight: normal; }
.cf-disputes table { border-collapse: collapse; width: 100%; font-size: 13px; }
.cf-disputes th, .cf-disputes td { border: 1px solid #d9d9d9; padding: 4px 6px;
  vertical-align: top; text-align: left; }
.cf-disputes th { background: #FFF1B8; }
"""

_Tag = tuple[str, dict[str, str], tuple[Any, ...]]


def _tag(name: str, attrs: dict[str, str] | None = None, *children: _Tag) -> _Tag:
    """A tag as label_interface.create builds trees from: (tag, attributes, children)."""
    return (name, dict(attrs or {}), children)


def _header(value: str, size: int) -> _Tag:
    return _tag("Header", {"value": value, "size": str(size)})


def _instructions_panel(title: str, lines: tuple[str, ...]) -> _Tag:
    return _tag(
        "Collapse",
        {},
        _tag(
            "Panel",
            {"value": title},
            *(_header(f"{i}. {line}", 6) for i, line in enumerate(lines, 1)),
        ),
    )


def _article(top: tuple[_Tag, ...] = ()) -> _Tag:
    """The left column: entity and evidence label pickers, then the text."""
    entity_labels = tuple(
        _tag(
            "Label",
            {
                "value": label,
                "background": _ENTITY_COLOURS[i % len(_ENTITY_COLOURS)],
                **({"hotkey": _ENTITY_HOTKEYS[label]} if label in _ENTITY_HOTKEYS else {}),
            },
        )
        for i, label in enumerate(ENTITY_LABELS)
    )
    evidence_label = _tag(
        "Label",
        {"value": EVIDENCE_LABEL, "background": EVIDENCE_COLOUR, "hotkey": EVIDENCE_HOTKEY},
    )
    return _tag(
        "View",
        {"className": "cf-article"},
        *top,
        _tag(
            "Labels", {"name": "entities", "toName": "text", "showInline": "true"}, *entity_labels
        ),
        _tag(
            "Labels",
            {"name": "stance_evidence", "toName": "text", "showInline": "true"},
            evidence_label,
        ),
        _tag(
            "Text",
            {
                "name": "text",
                "value": "$text",
                "granularity": "symbol",
                "showLabels": "true",  # entity and evidence labels written on the spans
            },
        ),
    )


def _side() -> _Tag:
    """The right column, kept in view: the selected region's target and stance, the flags."""
    stance_choices = tuple(
        _tag("Choice", {"value": label, "hotkey": key})
        for label, key in zip(STANCE_LABELS, _STANCE_HOTKEYS, strict=True)
    )
    flag_choices = tuple(
        _tag("Choice", {"value": flag, "hint": hint}) for flag, hint in DOCUMENT_FLAGS.items()
    )
    return _tag(
        "View",
        {"className": "cf-side"},
        _header("Stance", 5),
        _tag("View", {"className": "cf-hint"}, _header(_STANCE_HINT, 6)),
        _tag(
            "View",
            {"visibleWhen": "region-selected", "whenTagName": "stance_evidence"},
            _header("Target (canonical name)", 6),
            _tag(
                "TextArea",
                {
                    "name": "stance_target",
                    "toName": "text",
                    "perRegion": "true",
                    "editable": "true",
                    "maxSubmissions": "1",
                    "rows": "1",
                    "placeholder": "e.g. European Union",
                },
            ),
            _header("Stance of this sentence", 6),
            _tag(
                "Choices",
                {
                    "name": "stance",
                    "toName": "text",
                    "perRegion": "true",
                    "choice": "single-radio",
                },
                *stance_choices,
            ),
        ),
        _header("Document flags", 6),
        _tag("Choices", {"name": "flags", "toName": "text", "choice": "multiple"}, *flag_choices),
    )


def _head() -> tuple[_Tag, ...]:
    """Title (when the text does not open with it: `review.results.heading`), then a small
    source line (HTML: a link where the source is a URL)."""
    return (
        _tag("Style", {}),  # filled in _render (CSS is text, not attributes)
        _tag("Header", {"value": "$heading", "size": "3"}),
        _tag(
            "View",
            {"className": "cf-meta"},
            _tag("HyperText", {"name": "byline", "value": "$byline", "inline": "true"}),
        ),
    )


def _render(*tags: _Tag) -> str:
    tree = tree_from_tuples(*tags)
    style = tree.find("Style")
    if style is not None:
        style.text = _CSS
    config = tree_to_string(tree, pretty=True).strip()
    LabelInterface(config).validate()  # schema, unique names, toName targets
    return config


@cache
def label_config() -> str:
    """The review project's labeling config for the current label schema."""
    return _render(
        *_head(),
        _tag(
            "View",
            {"className": "cf-row"},
            _article((_instructions_panel("How to review", INSTRUCTIONS),)),
            _side(),
        ),
    )


@cache
def adjudication_config() -> str:
    """The adjudication project's config: the review controls (same names, so the same
    result <-> records conversion) with the disputes table, read only, above the text."""
    disputes = _tag(
        "View",
        {"className": "cf-disputes"},
        _tag("HyperText", {"name": "disputes", "value": "$disputes_html", "inline": "true"}),
    )
    return _render(
        *_head(),
        disputes,
        _tag(
            "View",
            {"className": "cf-row"},
            _article((_instructions_panel("How to adjudicate", ADJUDICATION_INSTRUCTIONS),)),
            _side(),
        ),
    )


def _html(title: str, lines: tuple[str, ...]) -> str:
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<h3>{escape(title)}</h3><ol>{items}</ol>"


def instructions_html() -> str:
    """The review instructions as HTML, for the project's instruction dialog."""
    return _html("corpusflow review", INSTRUCTIONS)


def adjudication_instructions_html() -> str:
    """The adjudication instructions as HTML, for the adjudication project's dialog."""
    return _html("corpusflow adjudication", ADJUDICATION_INSTRUCTIONS)


@dataclass(frozen=True)
class ControlNames:
    """from_name/to_name of each control, as read from a labeling config."""

    text: str
    entities: str
    evidence: str
    stance_target: str
    stance: str
    flags: str


def parse_controls(config: str) -> ControlNames:
    """Read the control names back from a config (through LabelInterface), by role rather than
    by name: the Labels holding EVIDENCE_LABEL is the evidence control, the other Labels the
    entities; the per-region TextArea the target; the per-region Choices the stance; the other
    Choices the flags; the object they all point at the text."""
    interface = LabelInterface(config)
    found: dict[str, str] = {}
    to_names: set[str] = set()
    for control in interface.controls:
        per_region = str(control.attr.get("perRegion", "")).lower() == "true"
        tag = control.tag.lower()
        if tag == "labels":
            role = "evidence" if EVIDENCE_LABEL in (control.labels or []) else "entities"
        elif tag == "textarea" and per_region:
            role = "stance_target"
        elif tag == "choices":
            role = "stance" if per_region else "flags"
        else:
            continue
        if role in found:
            raise ValueError(f"labeling config has two {role} controls")
        found[role] = control.name
        to_names.update(control.to_name or [])
    roles = ("entities", "evidence", "stance_target", "stance", "flags")
    if any(role not in found for role in roles) or len(to_names) != 1:
        raise ValueError("labeling config lacks one of the controls corpusflow needs")
    return ControlNames(text=to_names.pop(), **{role: found[role] for role in roles})


@cache
def controls() -> ControlNames:
    """The control names of the config this version of corpusflow generates."""
    return parse_controls(label_config())


CONTROLS = controls()

__all__ = [
    "ADJUDICATION_INSTRUCTIONS",
    "CONTROLS",
    "EVIDENCE_COLOUR",
    "EVIDENCE_LABEL",
    "INSTRUCTIONS",
    "ControlNames",
    "adjudication_config",
    "adjudication_instructions_html",
    "controls",
    "instructions_html",
    "label_config",
    "parse_controls",
]
