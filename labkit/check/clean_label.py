"""Self-checks of notebook 08: clean-label poisoning."""

from __future__ import annotations

__all__: list[str] = []
