"""The human side of the corpus: Label Studio through `label-studio-sdk` (projects, labeling
config, push of machine labels as predictions, collect of human annotations, the adjudication
project, webhooks)."""

from review.adjudication import ADJUDICATION_SUFFIX, AdjudicationItem, adjudication_title
from review.client import (
    WEBHOOK_ACTIONS,
    WEBHOOK_SECRET_HEADER,
    CollectedTask,
    CollectedTasks,
    LabelStudioClient,
    LabelStudioError,
    PushReport,
    WebhookInfo,
)
from review.config import adjudication_config, instructions_html, label_config
from review.results import from_result, to_import_task, to_prediction, to_result, to_task

__all__ = [
    "ADJUDICATION_SUFFIX",
    "WEBHOOK_ACTIONS",
    "WEBHOOK_SECRET_HEADER",
    "AdjudicationItem",
    "CollectedTask",
    "CollectedTasks",
    "LabelStudioClient",
    "LabelStudioError",
    "PushReport",
    "WebhookInfo",
    "adjudication_config",
    "adjudication_title",
    "from_result",
    "instructions_html",
    "label_config",
    "to_import_task",
    "to_prediction",
    "to_result",
    "to_task",
]
