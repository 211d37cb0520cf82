"""MediaBundle and TrackData: what on_media(bundle) receives."""

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["MediaBundle", "TrackData"]


@dataclass
class TrackData:
    """One input track's data in a media event: ``data`` is a NumPy copy
    ((H, W, 3) uint8 for video, (N,) int16 for audio) the model may keep."""
    name: str
    kind: str  # "video" or "audio"
    data: np.ndarray
    capture_time: float  # seconds since the epoch
    sample_rate: int = 0


class MediaBundle:
    """One inbound media event: a TrackData for each input track that had
    data in it."""

    def __init__(self, entries):
        self._entries = {e.name: e for e in entries}

    def get_track(self, name) -> Optional[TrackData]:
        """The named track's data in this event, or None."""
        return self._entries.get(name)

    @property
    def tracks(self):
        return list(self._entries)

    def __repr__(self):
        return f"<MediaBundle {self.tracks}>"
