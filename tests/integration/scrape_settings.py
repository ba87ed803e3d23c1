"""Settings for tests that scrape fixture boorus: PAKTUM_SCRAPE_SOURCES entries, in-process and for a child."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from paktum_common.settings import Settings, SourceOverride


def with_sources(settings: Settings, sources: dict[str, dict[str, Any]]) -> Settings:
    """`settings` with these PAKTUM_SCRAPE_SOURCES entries, validated (model_copy alone does not validate)."""
    overrides = {name: SourceOverride.model_validate(entry) for name, entry in sources.items()}
    return settings.model_copy(update={"scrape_sources": overrides})


def sources_env(settings: Settings) -> str:
    """PAKTUM_SCRAPE_SOURCES for a child process: the entries as JSON, credentials in clear."""
    entries = {name: entry.model_dump(exclude_none=True) for name, entry in settings.scrape_sources.items()}
    return json.dumps(
        entries, default=lambda value: value.get_secret_value() if isinstance(value, SecretStr) else value
    )
