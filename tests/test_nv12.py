"""The NVDEC route's NV12 -> BGR conversion, against ffmpeg's own conversion of the same NV12 planes: the colour
matrix and range the job uses must be the ones applied (PyNvVideoCodec's RGB output would pick its own)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from facefusion.video.ffmpeg import find_ffmpeg
from facefusion.video.nv12 import nv12_to_bgr

WIDTH, HEIGHT = 64, 48


def nv12_planes(path_stub: str) -> bytes:
	"""A colourful test pattern as raw NV12 (what NVDEC hands out)."""
	return subprocess.run(
		[find_ffmpeg(), '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=' + str(WIDTH) + 'x' + str(HEIGHT) + ':rate=1', '-frames:v', '1', '-pix_fmt', 'nv12', '-f', 'rawvideo', '-'],
		check=True, capture_output=True
	).stdout


def ffmpeg_bgr(planes: bytes, matrix: str, color_range: str) -> np.ndarray:
	"""ffmpeg's conversion of those planes with an explicit input matrix and range (the CPU route's filter)."""
	scale = 'scale=in_color_matrix=' + matrix + ':in_range=' + color_range + ':flags=accurate_rnd+full_chroma_int+neighbor'
	output = subprocess.run(
		[find_ffmpeg(), '-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'nv12', '-s', str(WIDTH) + 'x' + str(HEIGHT), '-i', '-', '-vf', scale, '-pix_fmt', 'bgr24', '-f', 'rawvideo', '-'],
		input=planes, check=True, capture_output=True
	).stdout
	return np.frombuffer(output, np.uint8).reshape(HEIGHT, WIDTH, 3)


@pytest.mark.parametrize('matrix, color_range', [('bt709', 'tv'), ('bt601', 'tv'), ('bt709', 'pc')])
def test_nv12_conversion_matches_ffmpeg_with_the_same_matrix(matrix: str, color_range: str) -> None:
	planes = nv12_planes('pattern')
	ours = nv12_to_bgr(np.frombuffer(planes, np.uint8).reshape(HEIGHT * 3 // 2, WIDTH), WIDTH, HEIGHT, matrix, color_range)
	reference = ffmpeg_bgr(planes, matrix, color_range)
	difference = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
	assert difference.max() <= 3, (matrix, color_range, int(difference.max()))
	# the matrix matters: converting with the other one is visibly off, so the test tells them apart
	other = nv12_to_bgr(np.frombuffer(planes, np.uint8).reshape(HEIGHT * 3 // 2, WIDTH), WIDTH, HEIGHT, 'bt601' if matrix == 'bt709' else 'bt709', color_range)
	assert np.abs(other.astype(np.int16) - reference.astype(np.int16)).max() > 10


class StandInDecoder:
	"""PyNvVideoCodec's ThreadedDecoder interface over ffmpeg's NV12 frames of a real clip (host arrays instead of
	device ones); raises at frame fail_at, as a hardware decode error would mid-video."""
	fail_at = 6

	def __init__(self, path: str, **options: object) -> None:
		self.options = options
		width, height = 64, 48
		raw = subprocess.run([find_ffmpeg(), '-v', 'error', '-i', path, '-pix_fmt', 'nv12', '-f', 'rawvideo', '-'], check=True, capture_output=True).stdout
		size = width * height * 3 // 2
		self.frames = [np.frombuffer(raw[start:start + size], np.uint8).reshape(height * 3 // 2, width) for start in range(0, len(raw), size)]
		self.position = 0

	def get_batch_frames(self, count: int) -> list:
		if self.position >= self.fail_at:
			raise RuntimeError('CUDA_ERROR_LAUNCH_FAILED')
		batch = self.frames[self.position:min(self.position + count, self.fail_at)]
		self.position += len(batch)
		return batch


def test_nvdec_reader_decodes_in_order_and_falls_back_loudly_mid_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	import sys
	from types import SimpleNamespace

	from facefusion.video import routes
	from facefusion.video.io import VideoReader
	from facefusion.video.probe import probe_video
	clip = tmp_path / 'clip.mp4'
	# a fixed seed: the gradients source picks random colours otherwise, and some put the edge difference near 2
	subprocess.run([find_ffmpeg(), '-v', 'error', '-f', 'lavfi', '-i', 'gradients=size=64x48:rate=25:speed=0.05:seed=7', '-frames:v', '12', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', str(clip)], check=True)
	monkeypatch.setitem(sys.modules, 'PyNvVideoCodec', SimpleNamespace(ThreadedDecoder=StandInDecoder, OutputColorType=SimpleNamespace(NATIVE='native', RGB='rgb')))
	warnings: list = []
	monkeypatch.setattr(routes, '_warn_once', warnings.append)
	info = probe_video(str(clip))
	reader = routes.PyNvVideoReader(info, 2, 12, device_id=0, color_matrix='bt709')
	frames = list(reader)
	with VideoReader(info, 2, 12, color_matrix='bt709') as cpu_reader:
		expected = list(cpu_reader)
	# every frame, in order, none lost at the failure; NVDEC's frames converted with the job's matrix
	assert [frame.index for frame in frames] == [frame.index for frame in expected] == list(range(2, 12))
	for frame, reference in zip(frames, expected):
		# both routes repeat each chroma sample over its 2x2 pixels: the same pixels up to the conversion's rounding
		# (interpolating chroma on the CPU, as before, put the mean difference at 0.57 with edges 3 levels apart)
		difference = np.abs(frame.pixels.astype(np.int16) - reference.pixels.astype(np.int16))
		assert difference.max() <= 3 and difference.mean() < 0.1, (int(difference.max()), float(difference.mean()))
	assert len(warnings) == 1 and 'NVDEC failed at frame 6' in warnings[0] and 'on the CPU' in warnings[0]


class PitchedStandInDecoder(StandInDecoder):
	"""Frames as an NVDEC surface hands them out: each row padded to a pitch wider than the picture."""
	fail_at = 10 ** 6

	def get_batch_frames(self, count: int) -> list:
		return [np.pad(frame, ((0, 0), (0, 16)), constant_values=255) for frame in super().get_batch_frames(count)]


def test_nvdec_reader_takes_the_picture_out_of_a_pitched_surface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	import sys
	from types import SimpleNamespace

	from facefusion.video import routes
	from facefusion.video.probe import probe_video
	clip = tmp_path / 'clip.mp4'
	subprocess.run([find_ffmpeg(), '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25', '-frames:v', '6', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', str(clip)], check=True)
	info = probe_video(str(clip))
	warnings: list = []
	monkeypatch.setattr(routes, '_warn_once', warnings.append)
	frames = {}
	for decoder in (StandInDecoder, PitchedStandInDecoder):
		monkeypatch.setitem(sys.modules, 'PyNvVideoCodec', SimpleNamespace(ThreadedDecoder=decoder, OutputColorType=SimpleNamespace(NATIVE='native')))
		frames[decoder] = list(routes.PyNvVideoReader(info, 0, 6, color_matrix='bt709'))
	assert warnings == [] and len(frames[PitchedStandInDecoder]) == 6
	for pitched, plain in zip(frames[PitchedStandInDecoder], frames[StandInDecoder]):
		assert pitched.index == plain.index and np.array_equal(pitched.pixels, plain.pixels)


def nvdec_ready() -> bool:
	from facefusion.gpu.device import gpu_available
	from facefusion.video import routes
	return gpu_available() and routes.cuda_driver_status()[0] and routes.pynvvideocodec_status()[0]


@pytest.mark.gpu
@pytest.mark.skipif(not nvdec_ready(), reason='needs a PyNvVideoCodec that loads, CuPy and a CUDA device')
def test_nvdec_decodes_a_real_clip_as_the_cpu_route_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""The real decoder on the device: every frame of the range, in order, with no fall back, within the
	conversion's rounding of the CPU route's frames (the same matrix, chroma repeated over 2x2 on both)."""
	from facefusion.video import routes
	from facefusion.video.io import VideoReader
	from facefusion.video.probe import probe_video
	clip = tmp_path / 'clip.mp4'
	subprocess.run([find_ffmpeg(), '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-frames:v', '30', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', str(clip)], check=True)
	warnings: list = []
	monkeypatch.setattr(routes, '_warn_once', warnings.append)
	info = probe_video(str(clip))
	assert routes.select_decoder('nvdec').route == 'nvdec'
	reader = routes.PyNvVideoReader(info, 3, 30, device_id=0, color_matrix='bt709')
	frames = list(reader)
	with VideoReader(info, 3, 30, color_matrix='bt709') as cpu_reader:
		expected = list(cpu_reader)
	assert warnings == [] and reader.fallback is None
	assert [frame.index for frame in frames] == [frame.index for frame in expected] == list(range(3, 30))
	for frame, reference in zip(frames, expected):
		difference = np.abs(frame.pixels.astype(np.int16) - reference.pixels.astype(np.int16))
		assert difference.max() <= 3 and difference.mean() < 0.1, (frame.index, int(difference.max()), float(difference.mean()))
