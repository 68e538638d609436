"""Self-checks of notebook 09: availability poisoning."""

from __future__ import annotations

__all__: list[str] = []
