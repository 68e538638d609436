"""Self-checks of notebook 06: model extraction."""

from __future__ import annotations

__all__: list[str] = []
