"""Temporal coherence for videos: optical flow (:mod:`.flow`) and the start image of each frame
(:mod:`.coherence`). The frame loop itself, which reads, renders and writes one frame at a time,
is the recipes' (:mod:`cnnvis.recipes.frames`); this package never reads or writes files."""

from cnnvis.video.coherence import COHERENCE_METHODS, Coherence
from cnnvis.video.flow import optical_flow, reliable, warp

__all__ = ["COHERENCE_METHODS", "Coherence", "optical_flow", "reliable", "warp"]
