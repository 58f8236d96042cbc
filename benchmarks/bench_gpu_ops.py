"""Per-frame swap work outside the model, NumPy/OpenCV against CuPy, at 1080p; and the model call with and without
IO binding on ONNX Runtime's CPU provider (fed from host arrays, and from CuPy arrays where a GPU works).

	python benchmarks/bench_gpu_ops.py [--faces 4] [--boost 512] [--repeats 20] [--markdown FILE] [--json FILE]

Stages per frame (F faces, inswapper size 128, pixel boost P -> k² = (P/128)² tiles per face):
warp (crop every face from the frame), pre (implode + colour order + normalisation + NCHW), post (NHWC + clip +
×255 + explode), paste (mask-weighted blend of every face back), and the frame's upload + download on the GPU.
Each GPU result is checked against the CPU one (max absolute difference in the table). Runs without a GPU too: the
CuPy column then says why it is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facefusion import face_helper  # noqa: E402
from facefusion.gpu import array_ops, device  # noqa: E402
from facefusion.gpu.compositor import Compositor, PasteJob  # noqa: E402
from facefusion.processors.modules.face_swapper import pixel_boost  # noqa: E402

MODEL_SIZE = (128, 128)
FRAME_SIZE = (1920, 1080)


@dataclass
class Row:
	stage: str
	cpu_ms: Optional[float]
	gpu_ms: Optional[float]
	max_difference: Optional[float]
	note: str = ''

	def speed_up(self) -> str:
		if self.cpu_ms is None or self.gpu_ms is None or self.gpu_ms <= 0:
			return 'n/a'
		return format(self.cpu_ms / self.gpu_ms, '.1f') + 'x'


def time_ms(function: Callable[[], Any], repeats: int, synchronize: Callable[[], None] = lambda: None) -> float:
	"""Median wall time of repeats calls after two warm-up calls (kernel compilation, caches)."""
	for _ in range(2):
		function()
	synchronize()
	samples = []
	for _ in range(repeats):
		started = time.perf_counter()
		function()
		synchronize()
		samples.append((time.perf_counter() - started) * 1000)
	return statistics.median(samples)


def make_frame(seed: int = 0) -> np.ndarray:
	"""A 1080p frame with texture and edges (a real photo tiled when the test data is there)."""
	photo_path = Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'obama_and_biden.jpg'
	photo = cv2.imread(str(photo_path)) if photo_path.is_file() else None
	if photo is not None:
		return cv2.resize(photo, FRAME_SIZE, interpolation=cv2.INTER_LINEAR)
	generator = np.random.default_rng(seed)
	return cv2.GaussianBlur(generator.integers(0, 256, (FRAME_SIZE[1], FRAME_SIZE[0], 3), dtype=np.uint8), (0, 0), 2)


def make_affines(count: int, crop_size: int, seed: int = 1) -> List[np.ndarray]:
	"""Faces of about 300 px spread over the frame, slightly rotated."""
	generator = np.random.default_rng(seed)
	template = np.array([[0.36, 0.40], [0.64, 0.40], [0.50, 0.56], [0.39, 0.72], [0.61, 0.72]])
	affines = []
	for index in range(count):
		centre = np.array([300 + (index % 4) * 440, 300 + (index // 4) * 450], np.float64)
		angle = generator.uniform(-0.3, 0.3)
		rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
		points = ((template - 0.5) * 300) @ rotation.T + centre
		affines.append(face_helper.estimate_matrix_by_face_landmark_5(points.astype(np.float32), 'arcface_128', (crop_size, crop_size)))
	return affines


def feather_mask(size: int) -> np.ndarray:
	mask = np.zeros((size, size), np.float32)
	border = size // 10
	mask[border:-border, border:-border] = 1
	return cv2.GaussianBlur(mask, (0, 0), size / 25)


def cpu_stages(frame: np.ndarray, affines: List[np.ndarray], boost: int) -> Dict[str, Callable[[], Any]]:
	mask = feather_mask(boost)
	crops = np.stack([cv2.warpAffine(frame, affine, (boost, boost), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA) for affine in affines])
	tiles = array_ops.prepare_crops(pixel_boost.implode_batch(crops, MODEL_SIZE), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
	swapped = pixel_boost.explode_batch(array_ops.normalize_outputs(tiles, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (boost, boost))

	def paste() -> np.ndarray:
		result = frame
		for crop, affine in zip(swapped, affines):
			result = face_helper.paste_back(result, crop, mask, affine)
		return result

	return {
		'warp': lambda: [cv2.warpAffine(frame, affine, (boost, boost), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA) for affine in affines],
		'pre': lambda: array_ops.prepare_crops(pixel_boost.implode_batch(crops, MODEL_SIZE), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
		'post': lambda: pixel_boost.explode_batch(array_ops.normalize_outputs(tiles, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (boost, boost)),
		'paste': paste
	}


def gpu_stages(frame: np.ndarray, affines: List[np.ndarray], boost: int) -> Dict[str, Callable[[], Any]]:
	import cupy
	compositor = Compositor(prefer_gpu=True)
	device_frame = compositor.upload(frame)
	mask = compositor.upload(feather_mask(boost))
	crops = compositor.warp_crops(device_frame, affines, (boost, boost))
	tiles = array_ops.prepare_crops(pixel_boost.implode_batch(crops, MODEL_SIZE), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
	swapped = pixel_boost.explode_batch(array_ops.normalize_outputs(tiles, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (boost, boost))
	jobs = [PasteJob(crop, [mask], affine) for crop, affine in zip(swapped, affines)]
	working = device_frame.copy()
	host_frame = np.empty_like(frame)

	def transfer() -> None:
		uploaded = cupy.asarray(frame)
		uploaded.get(out=host_frame)

	return {
		'warp': lambda: compositor.warp_crops(device_frame, affines, (boost, boost)),
		'pre': lambda: array_ops.prepare_crops(pixel_boost.implode_batch(crops, MODEL_SIZE), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
		'post': lambda: pixel_boost.explode_batch(array_ops.normalize_outputs(tiles, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (boost, boost)),
		# in place on a scratch frame: a real run pastes into the frame it is about to encode
		'paste': lambda: compositor.paste_all(working, jobs, in_place=True),
		'paste (copy)': lambda: compositor.paste_all(device_frame, jobs),
		'upload + download': transfer
	}


def max_difference(cpu_value: Any, gpu_value: Any) -> float:
	if isinstance(cpu_value, list):
		cpu_value = np.stack(cpu_value)
	host = device.to_host(gpu_value)
	return float(np.max(np.abs(np.asarray(cpu_value, np.float64) - np.asarray(host, np.float64))))


def bench_pixels(faces: int, boost: int, repeats: int) -> List[Row]:
	frame = make_frame()
	affines = make_affines(faces, boost)
	cpu = cpu_stages(frame, affines, boost)
	rows: Dict[str, Row] = {}
	for stage, function in cpu.items():
		rows[stage] = Row(stage, time_ms(function, repeats), None, None)
	info = device.detect_device()
	if not info.available:
		rows['warp'].note = 'no GPU: ' + info.reason
		return list(rows.values())
	gpu = gpu_stages(frame, affines, boost)
	for stage, function in gpu.items():
		milliseconds = time_ms(function, repeats, device.synchronize)
		if stage in rows:
			rows[stage].gpu_ms = milliseconds
			rows[stage].max_difference = max_difference(cpu[stage](), function())
		else:
			rows[stage] = Row(stage, None, milliseconds, None, 'GPU only')
	if 'paste' in rows:
		# the in-place paste ran over and over on one frame: compare a single paste on a fresh copy instead
		rows['paste'].max_difference = max_difference(cpu['paste'](), gpu['paste (copy)']())
	total_cpu = sum(rows[stage].cpu_ms or 0.0 for stage in ('warp', 'pre', 'post', 'paste'))
	total_gpu = sum(rows[stage].gpu_ms or 0.0 for stage in ('warp', 'pre', 'post', 'paste', 'upload + download'))
	rows['frame total (no model)'] = Row('frame total (no model)', total_cpu, total_gpu, None, 'GPU includes the frame upload + download')
	return list(rows.values())


def bench_io_binding(faces: int, boost: int, repeats: int) -> List[Row]:
	"""The stand-in inswapper (small) at the frame's batch on ONNX Runtime's CPU provider: plain run vs IO binding,
	and IO binding fed from CuPy arrays (copied to the host by the runner) where a GPU works."""
	from facefusion.inference.batch_conversion import ensure_dynamic_batch
	from facefusion.inference.io_binding import BoundRunner
	from facefusion.inference.providers import provider_list
	from facefusion.inference.session import create_session
	from facefusion.testing.standin_models import write_standin_models
	batch = faces * (boost // MODEL_SIZE[0]) ** 2
	directory = Path(tempfile.mkdtemp(prefix='bench_io_binding_'))
	path = ensure_dynamic_batch(write_standin_models(directory, ['inswapper_128'])[0])
	session = create_session('inswapper_128', path, provider_list(['cpu']), thread_count=min(8, os.cpu_count() or 1))
	generator = np.random.default_rng(3)
	feed = {'target': generator.random((batch, 3, 128, 128), dtype=np.float32), 'source': generator.standard_normal((batch, 512)).astype(np.float32)}
	runner = BoundRunner(session, device='cpu')
	plain_ms = time_ms(lambda: session.run(feed), repeats)
	bound_ms = time_ms(lambda: runner.run(feed), repeats)
	difference = max_difference(session.run(feed)[0], runner.run(feed)[0])
	rows = [
		Row('model, session.run (CPU EP, batch ' + str(batch) + ')', plain_ms, None, None, 'stand-in inswapper, small'),
		Row('model, IO binding (CPU EP, batch ' + str(batch) + ')', bound_ms, None, difference, 'max diff vs session.run')
	]
	if device.gpu_available():
		import cupy
		device_feed = {name: cupy.asarray(value) for name, value in feed.items()}
		fed_ms = time_ms(lambda: runner.run(device_feed), repeats, device.synchronize)
		rows.append(Row('model, IO binding fed from CuPy (CPU EP)', None, fed_ms, max_difference(session.run(feed)[0], runner.run(device_feed)[0]), 'includes the device -> host copy'))
	return rows


def markdown(rows: List[Row], title: str) -> str:
	lines = ['### ' + title, '', '| stage | NumPy / OpenCV ms | CuPy ms | speed-up | max abs diff | note |', '|---|---:|---:|---:|---:|---|']
	for row in rows:
		cpu = format(row.cpu_ms, '.2f') if row.cpu_ms is not None else 'n/a'
		gpu = format(row.gpu_ms, '.2f') if row.gpu_ms is not None else 'n/a'
		difference = format(row.max_difference, '.3g') if row.max_difference is not None else ''
		lines.append('| ' + ' | '.join([row.stage, cpu, gpu, row.speed_up(), difference, row.note]) + ' |')
	return '\n'.join(lines) + '\n'


def main(arguments: Optional[List[str]] = None) -> int:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument('--faces', type=int, default=4)
	parser.add_argument('--boost', type=int, default=512, choices=[128, 256, 512, 768, 1024])
	parser.add_argument('--repeats', type=int, default=20)
	parser.add_argument('--skip-model', action='store_true', help='leave out the IO binding rows')
	parser.add_argument('--markdown', type=Path)
	parser.add_argument('--json', type=Path)
	options = parser.parse_args(arguments)
	info = device.detect_device()
	title = '1080p, ' + str(options.faces) + ' faces, pixel boost ' + str(options.boost) + ' (' + info.describe() + ')'
	rows = bench_pixels(options.faces, options.boost, options.repeats)
	if not options.skip_model:
		rows += bench_io_binding(options.faces, options.boost, max(3, options.repeats // 4))
	table = markdown(rows, title)
	print(table)
	if options.markdown:
		options.markdown.write_text(table, encoding='utf-8')
	if options.json:
		options.json.write_text(json.dumps({'title': title, 'rows': [asdict(row) for row in rows]}, indent=1), encoding='utf-8')
	return 0


if __name__ == '__main__':
	sys.exit(main())
