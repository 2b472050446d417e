"""The classical tracker (optical flow and appearance models, no learned weights).

Modules: ``config`` (settings), ``state`` (per-video state, working-size frames),
``motion`` (the flow cue), ``appearance`` (colour cues), ``fusion`` (the cues'
competition and the boundary), ``recovery`` (lost objects), ``tracker`` (the
Tracker that runs them frame after frame).
"""
from tam.track.classical.config import ClassicalTrackerConfig
from tam.track.classical.state import ClassicalTrackerState
from tam.track.classical.tracker import ClassicalTracker

__all__ = ["ClassicalTracker", "ClassicalTrackerConfig", "ClassicalTrackerState"]
