"""Where a video may be split so that its parts, processed apart (one worker per device, or cluster workers) and
joined, give the frames a one-device run gives.

The tracker, the smoother and the swapper's colour statistics carry state from frame to frame, so a part cannot
start just anywhere. They drop all of it at a scene cut: tracks, lost tracks and identities are forgotten, the frame
is a keyframe, and smoothing and colour statistics restart with the new tracks. A part that starts at a scene cut
therefore begins exactly where a one-device run begins anew, and its frames are the same.

So the range is cut into equal chunks, and the part of chunk k runs from the first scene cut at or after the chunk's
start to the first scene cut at or after the next chunk's start (the first part from the range's start, the last to
its end). Each worker finds its own two cuts with the tracker's own test on the same decoded frames (the test
compares a frame with the one before, so a part decodes one frame before its chunk): it scans, without processing,
from its chunk's start to the first cut, and processes on past its chunk's end until the next cut. Every worker
sees the same cuts, so the parts meet exactly, and no pass over the whole video comes first. A chunk without a cut
gives an empty part (its frames belong to the part before). A run that carries no state across frames
(--face-tracker none, --temporal-smoothing none, no colour matching) cuts exactly at the chunk bounds.

A single shot under the default tracking stays one part: no warm-up makes the smoothing state after it exactly the
one-device state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional

from facefusion.config import RunConfig

if TYPE_CHECKING:
	from facefusion.types import Frame

# a part shorter than this costs more in fixed work (a seek, an encoder start, the first keyframe) than it saves
MIN_SEGMENT_FRAMES = 8
# parts per worker: a few more parts than workers keeps every worker busy to the end when shots differ in cost
SEGMENTS_PER_WORKER = 2


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


@dataclass(frozen=True)
class Part:
	"""Chunk [start, end) of the range; with search_start the part begins at the first scene cut at or after start
	(else at start), with search_end it ends at the first scene cut at or after end (else at end)."""
	index: int
	start: int
	end: int
	search_start: bool
	search_end: bool


def plan_parts(start: int, end: int, workers: int, stateful: bool, min_frames: int = MIN_SEGMENT_FRAMES) -> List[Part]:
	"""SEGMENTS_PER_WORKER equal chunks per worker (none shorter than min_frames), bounded by scene cuts when the run
	is stateful."""
	total = end - start
	count = max(1, min(workers * SEGMENTS_PER_WORKER, total // max(min_frames, 1))) if workers > 1 else 1
	bounds = [start + total * position // count for position in range(count + 1)]
	return [Part(index, bounds[index], bounds[index + 1], stateful and index > 0, stateful and index < count - 1) for index in range(count)]


class CutBoundedFrames:
	"""The frames of one part, out of a stream that starts one frame before the part's chunk (or at the range's
	start for the first part): frames before the first cut are only looked at, and the stream stops at the cut that
	begins the next part. first / count say which frames went through."""

	def __init__(self, part: Part) -> None:
		self.part = part
		self.first: Optional[int] = None
		self.count = 0

	def __call__(self, frames: Iterator['Frame']) -> Iterator['Frame']:
		from facefusion.tracking.smoother import SceneCutDetector
		part = self.part
		detector = SceneCutDetector()
		started = not part.search_start
		for frame in frames:
			index = frame.index
			if not started:
				is_cut = detector.update(frame.pixels)
				if index >= part.end:
					# no cut in the chunk: its frames are the part before's, this part is empty
					return
				if index < part.start or not is_cut:
					continue
				started = True
			elif index >= part.end - 1 and part.search_end:
				# the test needs the frame before the chunk's end as well
				if detector.update(frame.pixels) and index >= part.end:
					return
			elif index >= part.end and not part.search_end:
				return
			if self.first is None:
				self.first = index
			self.count += 1
			yield frame
