"""Which frames are keyframes (full analysis) and why.

A keyframe is the first frame, the first frame of a new shot (scene cut), every frame with --face-tracker none, a
frame ``detect_interval`` frames after the last keyframe, and a frame where a track's flow lost the face or became
unreliable. While a face was lost a moment ago, keyframes come more often than the interval until it is back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

from facefusion.tracking.flow import FlowResult

KEYFRAME_REASONS: Tuple[str, ...] = ('first', 'every-frame', 'interval', 'scene-cut', 'track-lost', 'flow-error')
# while a face is lost, keyframes come every this many frames (instead of the interval) until it is found again
RECOVERY_STEP = 2


@dataclass(frozen=True)
class KeyframeDecision:
	# one of KEYFRAME_REASONS, None for a frame the flow carries
	reason: Optional[str]
	# tracks whose flow failed, counted when their failure is what made the frame a keyframe
	flow_failures: int = 0

	@property
	def keyframe(self) -> bool:
		return self.reason is not None


class KeyframePolicy:
	def __init__(self, tracker: str, detect_interval: int) -> None:
		self.tracker = tracker
		self.detect_interval = detect_interval
		self.reset()

	def reset(self) -> None:
		self.last_keyframe_index: Optional[int] = None

	def decide(self, frame_index: int, first: bool, scene_cut: bool, lost_since: Sequence[int], flows: Mapping[int, FlowResult]) -> KeyframeDecision:
		"""first: no frame came before (since the last reset); lost_since: the frames the remembered lost tracks were
		lost at; flows: this frame's flow per track. A keyframe is remembered as the last one."""
		decision = self.reason(frame_index, first, scene_cut, lost_since, flows)
		if decision.keyframe:
			self.last_keyframe_index = frame_index
		return decision

	def reason(self, frame_index: int, first: bool, scene_cut: bool, lost_since: Sequence[int], flows: Mapping[int, FlowResult]) -> KeyframeDecision:
		if first:
			return KeyframeDecision('first')
		if scene_cut:
			return KeyframeDecision('scene-cut')
		if self.tracker == 'none':
			return KeyframeDecision('every-frame')
		since_keyframe = frame_index - self.last_keyframe_index if self.last_keyframe_index is not None else None
		if since_keyframe is None or since_keyframe >= self.detect_interval:
			return KeyframeDecision('interval')
		recovering = any(frame_index - index < self.detect_interval for index in lost_since)
		if recovering and since_keyframe >= RECOVERY_STEP:
			# a face was lost a moment ago: look for it more often than the interval until it is back
			return KeyframeDecision('track-lost')
		failed = [flow for flow in flows.values() if not flow.ok]
		if failed:
			reason = 'track-lost' if any(flow.reason == 'track-lost' for flow in failed) else 'flow-error'
			return KeyframeDecision(reason, len(failed))
		return KeyframeDecision(None)
