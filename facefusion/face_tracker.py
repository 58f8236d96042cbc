"""The design card's name for the face tracker; it lives in facefusion/tracking/."""
from facefusion.tracking.tracker import FaceTracker  # noqa: F401
