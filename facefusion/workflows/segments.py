"""Where a video may be split so that its parts, processed apart (one worker per device, or cluster workers) and
joined, give the frames a one-device run gives.

The tracker, the smoother and the swapper's colour statistics carry state from frame to frame, so a part cannot
start just anywhere. They drop all of it at a scene cut: tracks, lost tracks and identities are forgotten, the frame
is a keyframe, and smoothing and colour statistics restart with the new tracks. A part that starts at a scene cut
therefore begins exactly where a one-device run begins anew, and its frames are the same. So parts start only at
scene cuts, found with the tracker's own test on the same decoded frames (the test compares a frame with the one
before, so the scan itself splits into chunks that each decode one frame more). A run that carries no state across
frames (--face-tracker none, --temporal-smoothing none, no colour matching) may start a part at any frame.

A video with fewer cuts than workers gets fewer parts; a shot is never split, since no warm-up makes the smoothing
state after it exactly the one-device state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from facefusion.config import RunConfig

# a part shorter than this costs more in fixed work (a seek, an encoder start, the first keyframe) than it saves
MIN_SEGMENT_FRAMES = 8
# parts per worker: a few more parts than workers keeps every worker busy to the end when shots differ in cost
SEGMENTS_PER_WORKER = 2


@dataclass(frozen=True)
class Segment:
	"""Frames [start, end) of the target, the index-th part in order."""
	index: int
	start: int
	end: int

	@property
	def frame_count(self) -> int:
		return self.end - self.start


def carries_state(config: RunConfig) -> bool:
	"""Whether a frame's result depends on frames before it (tracking, smoothing, colour statistics per track)."""
	colour_per_track = config.face_swapper_color_match != 'none' and 'face_swapper' in config.processors
	return config.face_tracker != 'none' or config.temporal_smoothing != 'none' or colour_per_track


def why_not_split(config: RunConfig, decode_fps: Optional[str], output_fps: Optional[str]) -> Optional[str]:
	"""The reason a video of this run is processed as one part, or None when it may be split."""
	if decode_fps is not None or output_fps is not None:
		# frames are dropped or repeated by rate over the whole span: parts would round their own frame counts
		return 'the frame rate is converted (--output-video-fps or a variable-rate target)'
	if config.quality_report or config.quality_plot:
		return 'the quality monitor compares every frame with the one before it in one stream'
	if config.face_landmarks_export:
		return '--face-landmarks-export writes one file for the whole video'
	if config.workflow_strategy == 'disk':
		return '--workflow-strategy disk processes the video through one temp frame folder'
	return None


def plan_scan_chunks(start: int, end: int, chunks: int) -> List[Segment]:
	"""The frames [start, end) in about equal chunks for the scene-cut scan (each reports the cuts inside it)."""
	chunks = max(1, min(chunks, end - start))
	bounds = [start + (end - start) * position // chunks for position in range(chunks + 1)]
	return [Segment(index, bounds[index], bounds[index + 1]) for index in range(chunks) if bounds[index + 1] > bounds[index]]


def plan_segments(start: int, end: int, cuts: Optional[Sequence[int]], workers: int, min_frames: int = MIN_SEGMENT_FRAMES) -> List[Segment]:
	"""Parts of [start, end) for this many workers, each starting at start or at one of the cuts (None: any frame
	may start a part). Aims at SEGMENTS_PER_WORKER parts of equal length per worker, picks the allowed start nearest
	to each ideal boundary, and drops starts that would leave a part shorter than min_frames."""
	total = end - start
	wanted = max(1, min(workers * SEGMENTS_PER_WORKER, total // max(min_frames, 1)))
	if workers <= 1 or wanted <= 1:
		return [Segment(0, start, end)]
	allowed = sorted({cut for cut in cuts if start < cut < end}) if cuts is not None else None
	starts = [start]
	for position in range(1, wanted):
		ideal = start + total * position / wanted
		if allowed is None:
			candidate = int(round(ideal))
		elif allowed:
			candidate = min(allowed, key=lambda cut: (abs(cut - ideal), cut))
		else:
			break
		if candidate - starts[-1] >= min_frames and end - candidate >= min_frames:
			starts.append(candidate)
	bounds = starts + [end]
	return [Segment(index, bounds[index], bounds[index + 1]) for index in range(len(starts))]
