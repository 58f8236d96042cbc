"""Temporal consistency of the OUTPUT video: tracker + smoothing on (the default) against per-frame analysis (3.5.0).

Makes a clip from a real photo with a known camera path (pan, zoom, roll), swaps the face with the CLI twice, and
reports tPSNR: the PSNR between consecutive frames inside the face box, after undoing the known camera motion (so a
perfectly steady swap scores like the input does). Also prints it without motion compensation. Higher is steadier.

	python benchmarks/bench_temporal.py [--frames 120] [--width 640 --height 360] [--models-path DIR] [--out DIR]

Without --models-path, small stand-in models are generated (with the real YuNet detector from tests/data), so the
swap itself is a tint, but alignment jitter shows exactly as it would with a real model: the swapped face is warped
with the landmarks the aligner used.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from facefusion.config import RunConfig  # noqa: E402
from facefusion.face_analyser import FaceAnalyser  # noqa: E402
from facefusion.inference.manager import InferenceManager  # noqa: E402
from facefusion.testing.standin_models import write_standin_models  # noqa: E402
from facefusion.testing.synthetic_video import SyntheticClip, load_photo, make_synthetic_video  # noqa: E402
from facefusion.tracking.metrics import mean_finite, relative_motion, temporal_psnr  # noqa: E402
from facefusion.video.io import VideoReader  # noqa: E402

VARIANTS: Dict[str, List[str]] = {
	'per-frame analysis (3.5.0)': ['--face-tracker', 'none', '--temporal-smoothing', 'none'],
	'tracker + smoothing (default)': [],
}


def prepare_models(models_path: Path) -> Path:
	write_standin_models(models_path, ['fan_68_5', '2dfan4', 'arcface_w600k_r50', 'inswapper_128', 'nsfw_1', 'nsfw_2', 'nsfw_3'])
	for suffix in ('.onnx', '.hash'):
		shutil.copyfile(PROJECT_DIR / 'tests' / 'data' / ('yunet_2023_mar' + suffix), models_path / ('yunet_2023_mar' + suffix))
	return models_path


def photo_face_box(models_path: Path, photo_path: str) -> np.ndarray:
	config = RunConfig(models_path=str(models_path), face_detector_model='yunet', face_landmarker_score=0)
	faces = FaceAnalyser(config, InferenceManager(config)).get_many_faces(load_photo(photo_path))
	if not faces:
		raise SystemExit('no face found in ' + photo_path)
	return max(faces, key=lambda face: float(np.prod(face.bounding_box[2:] - face.bounding_box[:2]))).bounding_box


def frame_boxes(clip: SyntheticClip, photo_box: np.ndarray) -> List[np.ndarray]:
	corners = np.array([[photo_box[0], photo_box[1]], [photo_box[2], photo_box[1]], [photo_box[0], photo_box[3]], [photo_box[2], photo_box[3]]])
	boxes = []
	for index in range(clip.frame_count):
		points = clip.frame_points(index, corners)
		boxes.append(np.concatenate([points.min(axis=0), points.max(axis=0)]))
	return boxes


def tpsnr_values(frames: Sequence[np.ndarray], clip: SyntheticClip, boxes: Sequence[np.ndarray], compensate: bool) -> List[float]:
	values = []
	for index in range(1, len(frames)):
		motion = relative_motion(clip.transforms[index - 1], clip.transforms[index]) if compensate else None
		values.append(temporal_psnr(frames[index - 1], frames[index], boxes[index], motion))
	return values


def summarize(name: str, frames: Sequence[np.ndarray], clip: SyntheticClip, boxes: Sequence[np.ndarray]) -> tuple:
	compensated = tpsnr_values(frames, clip, boxes, True)
	return name, mean_finite(compensated), float(np.min(compensated)), mean_finite(tpsnr_values(frames, clip, boxes, False))


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument('--frames', type=int, default=120)
	parser.add_argument('--width', type=int, default=640)
	parser.add_argument('--height', type=int, default=360)
	parser.add_argument('--models-path', type=Path, default=None, help='real models (needs yunet, fan_68_5, arcface, inswapper_128, nsfw_1..3)')
	parser.add_argument('--out', type=Path, default=PROJECT_DIR / 'benchmarks' / 'results')
	arguments = parser.parse_args()

	work = Path(tempfile.mkdtemp(prefix='bench_temporal_'))
	try:
		models_path = arguments.models_path or prepare_models(work / 'models')
		clip = make_synthetic_video(work / 'clip.mp4', photos=('obama.jpg',), width=arguments.width, height=arguments.height, fps=25, frame_count=arguments.frames, audio=False)
		boxes = frame_boxes(clip, photo_face_box(models_path, clip.photo_paths[0]))
		input_frames = [frame.pixels for frame in VideoReader(str(clip.path))]
		rows = [summarize('input (no processing)', input_frames, clip, boxes)]
		environment = dict(os.environ, FACEFUSION_MODELS_PATH=str(models_path))
		for name, extra in VARIANTS.items():
			output = work / (str(len(rows)) + '.mp4')
			command = [
				sys.executable, str(PROJECT_DIR / 'facefusion.py'), 'headless-run', '-s', str(PROJECT_DIR / 'tests' / 'data' / 'biden.jpg'),
				'-t', str(clip.path), '-o', str(output), '--face-detector-model', 'yunet', '--face-selector-mode', 'one',
				'--face-swapper-model', 'inswapper_128', '--face-swapper-pixel-boost', '256x256', '--output-video-quality', '90', *extra
			]
			subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
			frames = [frame.pixels for frame in VideoReader(str(output))]
			rows.append(summarize(name, frames, clip, boxes))
	finally:
		shutil.rmtree(work, ignore_errors=True)

	lines = [
		f'tPSNR inside the face box, {arguments.frames} frames {arguments.width}x{arguments.height}, pan + zoom + roll (higher = steadier)',
		'',
		'| video | tPSNR, camera motion undone: mean (dB) | lowest frame (dB) | tPSNR, raw: mean (dB) |',
		'| --- | --- | --- | --- |',
	] + [f'| {name} | {compensated:.2f} | {lowest:.2f} | {raw:.2f} |' for name, compensated, lowest, raw in rows]
	print('\n'.join(lines))
	arguments.out.mkdir(parents=True, exist_ok=True)
	(arguments.out / 'temporal.md').write_text('\n'.join(lines) + '\n')
	(arguments.out / 'temporal.json').write_text(json.dumps([{'video': name, 'tpsnr_motion_compensated_db': compensated, 'lowest_db': lowest, 'tpsnr_raw_db': raw} for name, compensated, lowest, raw in rows], indent=2))


if __name__ == '__main__':
	main()
