"""What ``cnnvis resume`` hands to the command it runs again: the checkpoint format and the state.

Apart from :mod:`cnnvis.cli.runner` so that the image render (:func:`cnnvis.cli.runner.run_render`)
and the video frame loop (:mod:`cnnvis.cli.frames`) share them without importing each other.
"""

from __future__ import annotations

import contextvars

from cnnvis.io.checkpoint import CHECKPOINT_FORMAT  # noqa: F401  (the format, declared by its writer)

# Set by ``cnnvis resume`` around the recorded command: the render state to go on from.
RESUME_STATE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cnnvis_resume_state", default=None)
