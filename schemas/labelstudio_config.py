"""The Label Studio labeling config, generated from the label schema (schemas/labeling.py), and
the control names parsed back from it so that no from_name/to_name is written down twice.

Stance is annotated on evidence regions: an annotator marks a sentence with the one
`stance_evidence` label, then fills the region's target (the canonical name) and its stance.
Per-region controls keep every piece of evidence visible in the text and correctable on its own;
a document-level choice per target could not show which sentence supports it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from xml.sax.saxutils import escape, quoteattr

from schemas.labeling import DOCUMENT_FLAGS, ENTITY_LABELS, STANCE_LABELS

EVIDENCE_LABEL = "STANCE_EVIDENCE"

# Colours for entity highlights; cycled when there are more labels than colours.
_COLOURS = (
    "#FFA39E",
    "#D4380D",
    "#FFC069",
    "#AD8B00",
    "#D3F261",
    "#389E0D",
    "#5CDBD3",
    "#096DD9",
    "#ADC6FF",
    "#9254DE",
    "#F759AB",
)

# Shown in the labeling interface (a collapsible panel) and, as HTML, as the project's
# instructions (see instructions_html).
INSTRUCTIONS: tuple[str, ...] = (
    "The model has labelled this document: correct its work rather than starting afresh.",
    "Entities: fix, delete or add spans. Pick a label, then select exactly the name "
    "(no surrounding punctuation, no articles that are not part of it).",
    "Stance: each evidence sentence is a highlighted region. Select it, check that the target "
    "box holds the canonical name of the person, organisation, place or group the sentence "
    "takes a stance on, and pick FAVOR, AGAINST or NEUTRAL. Add a region for every sentence "
    "that takes a stance on a target; delete regions that do not.",
    "Flags: tick the ones that apply to the whole document, then still submit.",
    "Skip a document only when you cannot judge it: skipped documents are counted, not used.",
)


# The adjudication project's instructions: its task shows each annotator's version.
ADJUDICATION_INSTRUCTIONS: tuple[str, ...] = (
    "Annotators disagreed on this document. Their versions and the disputed items are listed "
    "above the text; the labels pre-filled in the text are annotator-1's version.",
    "Make the text hold the final labels: entities, stance evidence regions with target and "
    "stance, and flags. What you submit is final for the whole document.",
)


def adjudication_instructions_html() -> str:
    """The adjudication instructions as HTML, for the adjudication project's dialog."""
    items = "".join(f"<li>{escape(line)}</li>" for line in ADJUDICATION_INSTRUCTIONS)
    return f"<h3>corpusflow adjudication</h3><ol>{items}</ol>"


def adjudication_config() -> str:
    """The labeling config of adjudication tasks: the review config (same controls, so the
    same result <-> records conversion) plus a read-only panel with the annotators' versions
    and the disputes, from the task's `versions` field."""
    panel = """  <View style="background: #FFF7E6; padding: 6px">
    <Header value="Annotators' versions and disputes" size="5"/>
    <Text name="versions" value="$versions" granularity="word" selectionEnabled="false"/>
  </View>
"""
    config = label_config()
    anchor = '  <Text name="source"'
    return config.replace(anchor, panel + anchor, 1)


def instructions_html() -> str:
    """The instructions as HTML, for the project's instruction dialog."""
    items = "".join(f"<li>{escape(line)}</li>" for line in INSTRUCTIONS)
    return f"<h3>corpusflow review</h3><ol>{items}</ol>"


def _attr(value: str) -> str:
    return quoteattr(value)


def label_config() -> str:
    """Return the labeling config XML for the current label schema."""
    entity_labels = "\n".join(
        f"    <Label value={_attr(label)} background={_attr(_COLOURS[i % len(_COLOURS)])}/>"
        for i, label in enumerate(ENTITY_LABELS)
    )
    stance_choices = "\n".join(f"      <Choice value={_attr(label)}/>" for label in STANCE_LABELS)
    instructions = "\n".join(
        f'      <Header value={_attr(f"{i}. {line}")} size="6"/>'
        for i, line in enumerate(INSTRUCTIONS, 1)
    )
    flag_choices = "\n".join(
        f"    <Choice value={_attr(flag)} hint={_attr(hint)}/>"
        for flag, hint in DOCUMENT_FLAGS.items()
    )
    return f"""<View>
  <Header value="$title"/>
  <Text name="source" value="$source" granularity="word" selectionEnabled="false"/>
  <Collapse>
    <Panel value="Instructions">
{instructions}
    </Panel>
  </Collapse>
  <Labels name="entities" toName="text" showInline="true">
{entity_labels}
  </Labels>
  <Labels name="stance_evidence" toName="text" showInline="true">
    <Label value="{EVIDENCE_LABEL}" background="#FADB14"/>
  </Labels>
  <Text name="text" value="$text" granularity="symbol"/>
  <View visibleWhen="region-selected" whenTagName="stance_evidence">
    <Header value="Stance target (canonical name) and stance" size="5"/>
    <TextArea name="stance_target" toName="text" perRegion="true" editable="true"
              maxSubmissions="1" rows="1" placeholder="e.g. European Union"/>
    <Choices name="stance" toName="text" perRegion="true" choice="single-radio">
{stance_choices}
    </Choices>
  </View>
  <Header value="Document flags" size="5"/>
  <Choices name="flags" toName="text" choice="multiple" showInline="true">
{flag_choices}
  </Choices>
</View>"""


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
    """Read the control names back from a config, by role rather than by name:
    the Labels with EVIDENCE_LABEL is the evidence control, the other Labels the entities; the
    per-region TextArea the target; the per-region Choices the stance; the other Choices the
    flags; the Text they all point at the text."""
    root = ET.fromstring(config)
    entities = evidence = stance_target = stance = flags = None
    to_names: set[str] = set()
    for node in root.iter():
        name = node.get("name")
        if name is None:
            continue
        if node.tag == "Labels":
            values = {label.get("value") for label in node.iter("Label")}
            if EVIDENCE_LABEL in values:
                evidence = name
            else:
                entities = name
            to_names.add(node.get("toName", ""))
        elif node.tag == "TextArea" and node.get("perRegion") == "true":
            stance_target = name
        elif node.tag == "Choices":
            if node.get("perRegion") == "true":
                stance = name
            else:
                flags = name
    if None in (entities, evidence, stance_target, stance, flags) or len(to_names) != 1:
        raise ValueError("labeling config lacks one of the controls corpusflow needs")
    assert entities and evidence and stance_target and stance and flags  # for the type checker
    return ControlNames(
        text=to_names.pop(),
        entities=entities,
        evidence=evidence,
        stance_target=stance_target,
        stance=stance,
        flags=flags,
    )


@cache
def controls() -> ControlNames:
    """The control names of the config this version of corpusflow generates."""
    return parse_controls(label_config())


CONTROLS = controls()
TEXT = CONTROLS.text
ENTITIES = CONTROLS.entities
EVIDENCE = CONTROLS.evidence
STANCE_TARGET = CONTROLS.stance_target
STANCE = CONTROLS.stance
FLAGS = CONTROLS.flags

__all__ = [
    "ADJUDICATION_INSTRUCTIONS",
    "CONTROLS",
    "ENTITIES",
    "EVIDENCE",
    "EVIDENCE_LABEL",
    "FLAGS",
    "INSTRUCTIONS",
    "STANCE",
    "STANCE_TARGET",
    "TEXT",
    "ControlNames",
    "adjudication_config",
    "adjudication_instructions_html",
    "controls",
    "instructions_html",
    "label_config",
    "parse_controls",
]
