"""What the quality monitor is fed per frame, what it writes per face and frame (the CSV columns), its alerts and
its end-of-run summary."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from facefusion.types import Face, Matrix, VisionFrame

# the --quality-report columns, in order (documented in the README, checked by the tests)
CSV_COLUMNS: Tuple[str, ...] = (
	'frame', 'track', 'keyframe', 'detector_score', 'swapped', 'outside_psnr', 'outside_ssim', 'outside_changed_pixels',
	'face_psnr', 'face_ssim', 'tpsnr_in', 'tpsnr_out', 'tpsnr_drop', 'jitter', 'motion', 'alerts'
)
ALERT_KINDS: Tuple[str, ...] = ('tpsnr-drop', 'flicker', 'outside-changed', 'low-face-ssim')
# tPSNR of identical regions is infinite; a drop is computed with this ceiling so inf - x stays a number
TPSNR_CAP = 100.0


@dataclass
class FrameObservation:
	"""One output frame as the monitor sees it. The pictures are the pipeline's own arrays, only read.

	faces: every face the tracker handed out on this frame; swapped_tokens: the tracks the processors were given;
	motions: previous -> current similarity per track (the tracker's flow; missing where it has none);
	paste_boxes: the frame regions the processors may have written (None when a processor cannot say)."""
	index: int
	target: VisionFrame
	output: VisionFrame
	faces: List[Face]
	swapped_tokens: List[int]
	keyframe: Optional[bool] = None
	motions: Dict[int, Matrix] = field(default_factory=dict)
	paste_boxes: Optional[List[Tuple[int, int, int, int]]] = None


@dataclass
class FaceRow:
	"""One CSV row: a face on a frame (track None: a frame without faces). NaN = not measured."""
	frame: int
	track: Optional[int]
	keyframe: Optional[bool]
	detector_score: float
	swapped: bool
	outside_psnr: float
	outside_ssim: float
	outside_changed_pixels: int
	face_psnr: float = math.nan
	face_ssim: float = math.nan
	tpsnr_in: float = math.nan
	tpsnr_out: float = math.nan
	tpsnr_drop: float = math.nan
	jitter: float = math.nan
	# where the camera motion came from: tracker (its flow), estimated (the monitor's own), none (first frame of a track)
	motion: str = ''
	alerts: List[str] = field(default_factory=list)

	def cells(self) -> List[str]:
		return [
			str(self.frame), '' if self.track is None else str(self.track), format_flag(self.keyframe), format_number(self.detector_score),
			format_flag(self.swapped), format_number(self.outside_psnr), format_number(self.outside_ssim, 4), str(self.outside_changed_pixels),
			format_number(self.face_psnr), format_number(self.face_ssim, 4), format_number(self.tpsnr_in), format_number(self.tpsnr_out),
			format_number(self.tpsnr_drop), format_number(self.jitter, 3), self.motion, ';'.join(self.alerts)
		]


@dataclass
class Alert:
	kind: str
	frame: int
	track: Optional[int]
	detail: str


@dataclass
class PlotSeries:
	"""Per frame, for the plot: mean tPSNR in / out over the faces, the largest jitter, and the alerts."""
	frames: List[int] = field(default_factory=list)
	tpsnr_in: List[float] = field(default_factory=list)
	tpsnr_out: List[float] = field(default_factory=list)
	jitter: List[float] = field(default_factory=list)
	alerts: List[Alert] = field(default_factory=list)


@dataclass
class Worst:
	"""The frame (and track) where one figure was at its worst."""
	value: float = math.nan
	frame: Optional[int] = None
	track: Optional[int] = None

	def offer(self, value: float, frame: int, track: Optional[int], lower_is_worse: bool) -> None:
		if not math.isfinite(value):
			return
		if self.frame is None or (value < self.value if lower_is_worse else value > self.value):
			self.value, self.frame, self.track = value, frame, track


@dataclass
class QualitySummary:
	frames: int = 0
	face_rows: int = 0
	swapped_faces: int = 0
	# frames whose outside-the-paste-boxes check ran, and those of them that were lossless
	outside_checked: int = 0
	outside_lossless: int = 0
	mean_face_psnr: float = math.nan
	mean_face_ssim: float = math.nan
	mean_tpsnr_in: float = math.nan
	mean_tpsnr_out: float = math.nan
	mean_jitter: float = math.nan
	lowest_tpsnr_out: Worst = field(default_factory=Worst)
	largest_tpsnr_drop: Worst = field(default_factory=Worst)
	largest_jitter: Worst = field(default_factory=Worst)
	lowest_face_ssim: Worst = field(default_factory=Worst)
	alerts: Dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in ALERT_KINDS})
	# the monitor's own time (seconds, in its stage thread)
	seconds: float = 0.0

	def lines(self) -> List[str]:
		def worst(name: str, item: Worst, unit: str) -> str:
			if item.frame is None:
				return f'{name}: -'
			return f'{name}: {item.value:.2f}{unit} at frame {item.frame} (track {item.track})'

		lossless = f'{self.outside_lossless}/{self.outside_checked} frames lossless outside the paste boxes'
		return [
			f'quality: {self.frames} frames, {self.face_rows} face rows ({self.swapped_faces} swapped), {lossless}',
			f'quality: means: face PSNR {self.mean_face_psnr:.2f} dB, face SSIM {self.mean_face_ssim:.4f}, tPSNR in {self.mean_tpsnr_in:.2f} dB / out {self.mean_tpsnr_out:.2f} dB, jitter {self.mean_jitter:.3f} px',
			'quality: worst: ' + ', '.join([
				worst('lowest tPSNR out', self.lowest_tpsnr_out, ' dB'), worst('largest tPSNR drop', self.largest_tpsnr_drop, ' dB'),
				worst('largest jitter', self.largest_jitter, ' px'), worst('lowest face SSIM', self.lowest_face_ssim, '')
			]),
			'quality: alerts: ' + ', '.join(f'{kind} {count}' for kind, count in self.alerts.items()) + f'; monitor time {self.seconds:.2f}s'
		]

	def as_dict(self) -> Dict[str, object]:
		def worst(item: Worst) -> Dict[str, object]:
			return {'value': item.value, 'frame': item.frame, 'track': item.track}

		return {
			'frames': self.frames, 'face_rows': self.face_rows, 'swapped_faces': self.swapped_faces,
			'outside_checked': self.outside_checked, 'outside_lossless': self.outside_lossless,
			'mean_face_psnr': self.mean_face_psnr, 'mean_face_ssim': self.mean_face_ssim, 'mean_tpsnr_in': self.mean_tpsnr_in,
			'mean_tpsnr_out': self.mean_tpsnr_out, 'mean_jitter': self.mean_jitter,
			'lowest_tpsnr_out': worst(self.lowest_tpsnr_out), 'largest_tpsnr_drop': worst(self.largest_tpsnr_drop),
			'largest_jitter': worst(self.largest_jitter), 'lowest_face_ssim': worst(self.lowest_face_ssim),
			'alerts': dict(self.alerts), 'seconds': self.seconds
		}


def format_number(value: float, digits: int = 2) -> str:
	if value is None or (isinstance(value, float) and math.isnan(value)):
		return ''
	if math.isinf(value):
		return 'inf' if value > 0 else '-inf'
	return format(value, '.' + str(digits) + 'f')


def format_flag(value: Optional[bool]) -> str:
	if value is None:
		return ''
	return '1' if value else '0'
