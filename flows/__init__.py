"""Prefect flows and tasks, and the `corpusflow` CLI: wiring only, the work is in the stages.

Prefect settings corpusflow needs are defaulted here, before Prefect is imported: no analytics
(this is often an offline machine) and a startup timeout for the ephemeral API server that a
loaded two-core machine can meet (its default, 20 s, is not always enough)."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
