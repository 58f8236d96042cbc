"""Records shared across the engine: faces, frames and small value types."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

# An image as OpenCV holds it: uint8, H x W x 3, BGR.
VisionFrame = np.ndarray
# A float32 H x W mask in [0, 1].
Mask = np.ndarray
# A 2 x 3 float affine matrix.
Matrix = np.ndarray
# N x 2 float32 points.
Points = np.ndarray
# x1, y1, x2, y2 float32.
BoundingBox = np.ndarray
Embedding = np.ndarray
Size = Tuple[int, int]
Padding = Tuple[int, int, int, int]

LANDMARK_KINDS: Tuple[str, ...] = ('5', '5/68', '68', '68/5')


@dataclass
class FaceLandmarkSet:
	"""The four landmark sets of a face, named as FaceFusion names them.

	five: the detector's 5 points; five_68: 5 points derived from the 68 (or the detector's when the landmarker
	did not run or scored low); sixty_eight: the 68-point landmarker result (or sixty_eight_5 when it did not
	run); sixty_eight_5: 68 points estimated from the 5 detector points (fan_68_5).
	"""
	five: Points
	five_68: Points
	sixty_eight: Points
	sixty_eight_5: Points

	def get(self, kind: str) -> Points:
		return {'5': self.five, '5/68': self.five_68, '68': self.sixty_eight, '68/5': self.sixty_eight_5}[kind]


@dataclass
class FaceScoreSet:
	detector: float
	landmarker: float = 0.0


# eq=False: faces hold arrays, so they compare by identity (list.index / `in` stay usable)
@dataclass(eq=False)
class Face:
	bounding_box: BoundingBox
	score_set: FaceScoreSet
	landmark_set: FaceLandmarkSet
	angle: int = 0
	# filled on demand by the recognizer (raw and L2-normalised, each 512 float32)
	embedding: Optional[Embedding] = None
	embedding_norm: Optional[Embedding] = None
	# filled on demand by the classifier
	gender: Optional[str] = None
	age: Optional[range] = None
	race: Optional[str] = None
	# stable identity of the face across video frames (set by the tracker; None for images / per-frame analysis)
	track_token: Optional[int] = None


@dataclass
class Frame:
	"""One video or image frame travelling through the pipeline."""
	index: int
	pixels: VisionFrame
	# the tracker's per-frame cues (tracking/tracker.FrameCues) when a stage made them ahead of the analysis
	cues: Optional[Any] = None


@dataclass
class SourceIdentity:
	"""Everything the swapper needs about the source, computed once per run."""
	face: Face
	frames: List[VisionFrame] = field(default_factory=list)
	extras: Dict[str, np.ndarray] = field(default_factory=dict)
