from tam.track.base import TRACKERS, Tracker
from tam.track.propagation import count_frames, plan_segments, track

__all__ = ["TRACKERS", "Tracker", "count_frames", "plan_segments", "track"]
