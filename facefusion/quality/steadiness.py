"""Steadiness against the ceiling: on a clip with a known camera path, how steady a swapped face sits with the
tracker's landmarks compared with the true landmarks (the ceiling) and with per-frame detection (3.5.0).

The "swap" is a constant face picture pasted through each frame's alignment (``tracking.metrics.
paste_constant_face``), so the output's steadiness is down to the landmarks alone. The figure is the monitor's
face-region tPSNR (``measures.temporal_psnr``) of consecutive output frames inside the true face box, with the
true motion of the face's layer undone. Pairs where the camera (the face's true centre) moves less than
STILL_PIXELS are the still segments. Pairs across a cut and faces not fully in view are left out.

	python -m facefusion.quality.steadiness --models-path DIR    (a folder with yunet_2023_mar.onnx and its .hash)
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser
from facefusion.quality import measures
from facefusion.testing.camera_path import MemoryClip, locate_faces, make_memory_clip
from facefusion.tracking.metrics import match_faces_to_truth, paste_constant_face, relative_motion
from facefusion.tracking.track import TrackerOptions
from facefusion.tracking.tracker import FaceTracker

# a pair is "still" when the true face centre moves less than this (px) between the two frames
STILL_PIXELS = 0.3
MODES: Dict[str, Optional[TrackerOptions]] = {
	'ceiling (true landmarks)': None,
	'per-frame detection (3.5.0)': TrackerOptions(tracker='none', smoothing='none'),
	'default (optical-flow + one-euro)': TrackerOptions(),
}


@dataclass
class SteadinessRow:
	name: str
	mean: float
	still_mean: float
	lowest: float
	pairs: int
	still_pairs: int


def steadiness_clip(analyser: FaceAnalyser) -> MemoryClip:
	"""The tracker tests' clip (pan, zoom, roll, a face sliding in, a cut to two faces), truth located by YuNet."""
	clip = make_memory_clip()
	return locate_faces(clip, lambda frame: [(face.bounding_box, face.landmark_set.five) for face in analyser.get_many_faces(frame)])


def tracked_series(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser, options: TrackerOptions) -> Dict[str, List[Optional[np.ndarray]]]:
	"""Per true face, the aligner's five points the tracker handed out in each frame (None where unmatched)."""
	tracker = FaceTracker(config, analyser, fps=clip.fps, options=options)
	series: Dict[str, List[Optional[np.ndarray]]] = {key: [None] * clip.frame_count for key in clip.face_keys()}
	for index, frame in enumerate(clip.frames):
		faces = tracker.process(index, frame)
		points = [face.landmark_set.five_68 for face in faces]
		for key, face_index in match_faces_to_truth(clip.truth(index), points).items():
			series[key][index] = np.asarray(points[face_index], np.float64)
	return series


def true_series(clip: MemoryClip) -> Dict[str, List[Optional[np.ndarray]]]:
	series: Dict[str, List[Optional[np.ndarray]]] = {key: [None] * clip.frame_count for key in clip.face_keys()}
	for index in range(clip.frame_count):
		for key, points in clip.truth(index).items():
			series[key][index] = points
	return series


def pair_values(clip: MemoryClip, series: Dict[str, List[Optional[np.ndarray]]]) -> List[tuple]:
	"""(tPSNR, still) for every pair of consecutive frames where a face is fully in view in both."""
	values = []
	for key, points in series.items():
		layer, _ = clip.split_key(key)
		frames = paste_constant_face(clip.frames, points)
		for index in range(1, clip.frame_count):
			if points[index] is None or points[index - 1] is None or layer.transforms[index - 1] is None or layer.transforms[index] is None:
				continue
			if not (clip.is_fully_visible(key, index) and clip.is_fully_visible(key, index - 1)):
				continue
			region = measures.clip_region(clip.true_box(key, index), frames[index].shape)
			if region is None:
				continue
			motion = relative_motion(layer.transforms[index - 1], layer.transforms[index])
			centre_shift = float(np.linalg.norm(clip.true_points(key, index).mean(axis=0) - clip.true_points(key, index - 1).mean(axis=0)))
			values.append((measures.temporal_psnr(frames[index - 1], frames[index], region, motion), centre_shift < STILL_PIXELS))
	return values


def summarise(name: str, values: Sequence[tuple]) -> SteadinessRow:
	everything = np.array([min(value, 100.0) for value, _ in values], np.float64)
	still = np.array([min(value, 100.0) for value, is_still in values if is_still], np.float64)
	return SteadinessRow(
		name, float(everything.mean()) if len(everything) else math.nan, float(still.mean()) if len(still) else math.nan,
		float(everything.min()) if len(everything) else math.nan, len(everything), len(still)
	)


def measure_steadiness(config: RunConfig, analyser: FaceAnalyser, clip: Optional[MemoryClip] = None) -> List[SteadinessRow]:
	clip = clip or steadiness_clip(analyser)
	rows = []
	for name, options in MODES.items():
		series = true_series(clip) if options is None else tracked_series(clip, config, analyser, options)
		rows.append(summarise(name, pair_values(clip, series)))
	return rows


def format_rows(rows: Sequence[SteadinessRow]) -> str:
	ceiling = rows[0]
	lines = [
		'| landmarks | tPSNR mean (dB) | below ceiling (dB) | still pairs mean (dB) | still below ceiling (dB) | lowest pair (dB) | pairs (still) |',
		'| --- | --- | --- | --- | --- | --- | --- |'
	]
	for row in rows:
		lines.append(
			f'| {row.name} | {row.mean:.2f} | {ceiling.mean - row.mean:.2f} | {row.still_mean:.2f} | {ceiling.still_mean - row.still_mean:.2f} | '
			f'{row.lowest:.2f} | {row.pairs} ({row.still_pairs}) |'
		)
	return '\n'.join(lines)


def main() -> None:
	from facefusion.inference.manager import InferenceManager
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument('--models-path', required=True)
	arguments = parser.parse_args()
	config = RunConfig(models_path=arguments.models_path, face_detector_model='yunet', face_landmarker_score=0, face_selector_mode='many')
	analyser = FaceAnalyser(config, InferenceManager(config))
	print(format_rows(measure_steadiness(config, analyser)))


if __name__ == '__main__':
	main()
