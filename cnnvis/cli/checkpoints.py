"""What ``cnnvis resume`` hands to the command it runs again: the render state to go on from.

Apart from :mod:`cnnvis.cli.runner` so that the image render and the video run
(:mod:`cnnvis.cli.frames`) share it without importing each other.
"""

from __future__ import annotations

import contextvars

# Set by ``cnnvis resume`` around the recorded command: the render state to go on from.
RESUME_STATE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cnnvis_resume_state", default=None)
