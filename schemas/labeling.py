"""The label schema: which entity labels annotators see, the stance labels, and the flags an
annotator can raise on a document. The Label Studio config is generated from these."""

from __future__ import annotations

from schemas.records import STANCE_LABELS

# OntoNotes labels worth an annotator's time in news and analysis texts; numbers, ordinals and
# percentages are left out on purpose (cheap to get right, expensive to review).
ENTITY_LABELS: tuple[str, ...] = (
    "PERSON",
    "NORP",
    "ORG",
    "GPE",
    "LOC",
    "FAC",
    "EVENT",
    "LAW",
    "PRODUCT",
    "DATE",
    "MONEY",
)

# Entities that can be the target of a stance.
TARGET_LABELS: tuple[str, ...] = ("PERSON", "GPE", "ORG", "NORP")

# Flags an annotator can raise on the whole document.
DOCUMENT_FLAGS: dict[str, str] = {
    "cleaning_error": "Cleaning error (leftover noise, or article text missing)",
    "unusable": "Unusable document (not an article, wrong language, duplicate)",
}

__all__ = ["DOCUMENT_FLAGS", "ENTITY_LABELS", "STANCE_LABELS", "TARGET_LABELS"]
