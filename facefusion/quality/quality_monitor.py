"""The quality monitor: per output frame and per tracked face, how the output compares with the input, with alerts,
a CSV report, a plot and a summary in the log.

It is a tap on the video pipeline (its own stage after the processors, one thread, in frame order): it reads the
input and output frames and the analyse stage's faces, never writes them, and the frames go on to the encoder
unchanged. Off (no --quality-report, no --quality-plot) it is not in the pipeline at all.

Per face and frame (CSV columns in ``records.CSV_COLUMNS``): PSNR / SSIM outside the paste boxes (must be
lossless), PSNR / SSIM inside the face box, temporal PSNR of the face box between this frame and the previous
one with the camera motion undone (the tracker's flow) for the output and the input, the landmark jitter of the
track, swapped or not, the detector score, keyframe or not. Alerts, each kind printed once and all counted: a
tPSNR drop of the output below the input's by more than --quality-alert-tpsnr-drop dB, flicker (a continuing
track swapped on one frame and not on the next, or the other way round), pixels changed outside the paste boxes,
SSIM inside a swapped face below --quality-alert-face-ssim.
"""
from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, TextIO

import numpy as np

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.quality import measures
from facefusion.quality.records import CSV_COLUMNS, TPSNR_CAP, Alert, FaceRow, FrameObservation, PlotSeries, QualitySummary
from facefusion.types import Face

# the summary of the last monitored run that finished in this process, for the benchmark's table
LAST_SUMMARY: Optional[QualitySummary] = None


@dataclass(frozen=True)
class QualitySettings:
	report_path: Optional[str] = None
	plot_path: Optional[str] = None
	tpsnr_drop: float = 16.0
	face_ssim: float = 0.2

	@classmethod
	def from_config(cls, config: RunConfig) -> 'QualitySettings':
		return cls(config.quality_report or None, config.quality_plot or None, float(config.quality_alert_tpsnr_drop), float(config.quality_alert_face_ssim))

	def enabled(self) -> bool:
		return bool(self.report_path or self.plot_path)


def monitor_enabled(config: RunConfig) -> bool:
	return QualitySettings.from_config(config).enabled()


@dataclass
class TrackState:
	"""What the monitor remembers of a track from its previous frame."""
	frame: int
	swapped: bool
	# the aligner's five points of the last two frames (older first)
	points: List[np.ndarray] = field(default_factory=list)


class QualityMonitor:
	def __init__(self, settings: QualitySettings) -> None:
		self.settings = settings
		self.summary = QualitySummary()
		self.series = PlotSeries()
		self.tracks: Dict[int, TrackState] = {}
		self.previous: Optional[FrameObservation] = None
		self.warned: Set[str] = set()
		self.sums: Dict[str, List[float]] = {name: [0.0, 0] for name in ('face_psnr', 'face_ssim', 'tpsnr_in', 'tpsnr_out', 'jitter')}
		self.csv_file: Optional[TextIO] = None
		self.csv_writer = None
		if settings.report_path:
			self.partial_path = settings.report_path + '.partial'
			self.csv_file = open(self.partial_path, 'w', newline='', encoding='utf-8')
			self.csv_writer = csv.writer(self.csv_file)
			self.csv_writer.writerow(CSV_COLUMNS)

	# ------------------------------------------------------------ per frame

	def observe(self, observation: FrameObservation) -> List[FaceRow]:
		"""Measure one output frame (frames must come in order); returns its rows (also written to the report)."""
		started = time.perf_counter()
		target, output = observation.target, observation.output
		boxes = [] if observation.paste_boxes is None else [box for box in (measures.clip_region(box, target.shape) for box in observation.paste_boxes) if box is not None]
		if observation.paste_boxes is None:
			outside = (math.nan, math.nan, 0)
		else:
			outside = measures.outside_psnr_ssim(output, target, boxes)
			self.summary.outside_checked += 1
			self.summary.outside_lossless += int(outside[2] == 0)
		previous = self.previous if self.previous is not None and self.previous.index == observation.index - 1 else None
		swapped_tokens = set(observation.swapped_tokens)
		rows = []
		for face in observation.faces:
			rows.append(self.measure_face(observation, previous, face, face.track_token in swapped_tokens, outside))
		if not rows:
			rows.append(FaceRow(observation.index, None, observation.keyframe, math.nan, False, outside[0], outside[1], outside[2]))
		if outside[2] > 0:
			self.alert(rows[0], Alert('outside-changed', observation.index, rows[0].track, f'{outside[2]} pixels changed outside the paste boxes (PSNR {outside[0]:.2f} dB there)'))
		live = {face.track_token for face in observation.faces}
		self.tracks = {token: state for token, state in self.tracks.items() if token in live}
		self.previous = observation
		self.record(observation.index, rows)
		self.summary.seconds += time.perf_counter() - started
		return rows

	def measure_face(self, observation: FrameObservation, previous: Optional[FrameObservation], face: Face, swapped: bool, outside: tuple) -> FaceRow:
		target, output = observation.target, observation.output
		token = face.track_token
		row = FaceRow(observation.index, token, observation.keyframe, float(face.score_set.detector), swapped, outside[0], outside[1], outside[2])
		region = measures.clip_region(face.bounding_box, target.shape)
		if region is not None:
			row.face_psnr, row.face_ssim = measures.region_psnr_ssim(output, target, region)
		state = self.tracks.get(token) if token is not None else None
		continues = state is not None and previous is not None and state.frame == previous.index
		if continues and region is not None:
			motion = observation.motions.get(token)
			row.motion = 'tracker'
			if motion is None:
				motion = measures.estimate_motion(previous.target, target, region)
				row.motion = 'estimated' if motion is not None else 'none'
			row.tpsnr_in = measures.temporal_psnr(previous.target, target, region, motion)
			row.tpsnr_out = measures.temporal_psnr(previous.output, output, region, motion)
			row.tpsnr_drop = min(row.tpsnr_in, TPSNR_CAP) - min(row.tpsnr_out, TPSNR_CAP)
		points = np.asarray(face.landmark_set.five_68, np.float64).copy()
		history = (state.points if continues else []) + [points]
		if len(history) == 3:
			row.jitter = measures.second_difference_rms(*history)
		if token is not None:
			self.tracks[token] = TrackState(observation.index, swapped, history[-2:])
		settings = self.settings
		if continues and state.swapped != swapped:
			change = 'swapped on frame {} and not on {}' if state.swapped else 'not swapped on frame {} but on {}'
			self.alert(row, Alert('flicker', observation.index, token, 'track ' + str(token) + ' ' + change.format(previous.index, observation.index)))
		if math.isfinite(row.tpsnr_drop) and row.tpsnr_drop > settings.tpsnr_drop:
			self.alert(row, Alert('tpsnr-drop', observation.index, token, f'face tPSNR {row.tpsnr_out:.2f} dB, {row.tpsnr_drop:.2f} dB below the input ({row.tpsnr_in:.2f} dB)'))
		if swapped and math.isfinite(row.face_ssim) and row.face_ssim < settings.face_ssim:
			self.alert(row, Alert('low-face-ssim', observation.index, token, f'SSIM {row.face_ssim:.3f} inside the face'))
		return row

	def alert(self, row: FaceRow, alert: Alert) -> None:
		row.alerts.append(alert.kind)
		self.summary.alerts[alert.kind] = self.summary.alerts.get(alert.kind, 0) + 1
		self.series.alerts.append(alert)
		if alert.kind not in self.warned:
			self.warned.add(alert.kind)
			logger.get_logger().warning(f'quality alert {alert.kind} at frame {alert.frame}: {alert.detail} (further ones are counted in the summary)')

	def record(self, frame_index: int, rows: List[FaceRow]) -> None:
		summary = self.summary
		summary.frames += 1
		for row in rows:
			if row.track is None:
				continue
			summary.face_rows += 1
			summary.swapped_faces += int(row.swapped)
			for name in self.sums:
				value = getattr(row, name)
				if math.isfinite(value):
					self.sums[name][0] += value
					self.sums[name][1] += 1
			summary.lowest_tpsnr_out.offer(row.tpsnr_out, row.frame, row.track, True)
			summary.largest_tpsnr_drop.offer(row.tpsnr_drop, row.frame, row.track, False)
			summary.largest_jitter.offer(row.jitter, row.frame, row.track, False)
			if row.swapped:
				summary.lowest_face_ssim.offer(row.face_ssim, row.frame, row.track, True)
		if self.csv_writer is not None:
			self.csv_writer.writerows(row.cells() for row in rows)
		faces = [row for row in rows if row.track is not None]
		self.series.frames.append(frame_index)
		self.series.tpsnr_in.append(finite_mean([min(row.tpsnr_in, TPSNR_CAP) for row in faces]))
		self.series.tpsnr_out.append(finite_mean([min(row.tpsnr_out, TPSNR_CAP) for row in faces]))
		self.series.jitter.append(max([row.jitter for row in faces if math.isfinite(row.jitter)], default=math.nan))

	# ------------------------------------------------------------ end of run

	def close(self, success: bool = True) -> QualitySummary:
		"""Finish the report (renamed into place) and the plot, and log the summary; after a failed run the partial
		report is removed and nothing is drawn."""
		summary = self.summary
		for name, (total, count) in self.sums.items():
			setattr(summary, 'mean_' + name, total / count if count else math.nan)
		if self.csv_file is not None:
			self.csv_file.close()
			self.csv_file = None
			if success:
				os.replace(self.partial_path, self.settings.report_path)
			elif os.path.exists(self.partial_path):
				os.remove(self.partial_path)
		if not success:
			return summary
		if self.settings.plot_path:
			from facefusion.quality.plot import draw_quality_plot
			draw_quality_plot(self.series, self.settings.tpsnr_drop, self.settings.face_ssim, self.settings.plot_path)
		global LAST_SUMMARY
		LAST_SUMMARY = summary
		for line in summary.lines():
			logger.get_logger().info(line)
		if self.settings.report_path:
			logger.get_logger().info(f'quality report written to {self.settings.report_path}')
		if self.settings.plot_path:
			logger.get_logger().info(f'quality plot written to {self.settings.plot_path}')
		return summary


def last_summary() -> Optional[QualitySummary]:
	return LAST_SUMMARY


def finite_mean(values: List[float]) -> float:
	finite = [value for value in values if math.isfinite(value)]
	return sum(finite) / len(finite) if finite else math.nan
