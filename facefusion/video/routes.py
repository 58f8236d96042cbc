"""Hardware video decode (NVDEC) and encode (NVENC) with a graceful fall back to the CPU ffmpeg pipes.

Routes (facefusion.choices): --video-decoder auto | cpu | nvdec, --video-encoder-route auto | cpu | nvenc.

Decode, in order of preference on the nvdec / auto routes:
1. ffmpeg ``-hwaccel cuda`` (NVDEC inside ffmpeg, frames downloaded for the bgr24 pipe): keeps every VideoReader
   feature (frame-exact trim, scale, fps, autorotate, colour matrix). Needs an ffmpeg that lists the cuda hwaccel
   and a working CUDA driver, checked by decoding a tiny clip once per process.
2. PyNvVideoCodec (when importable and ffmpeg cannot): a simpler reader without scale / fps conversion.
Encode: h264_nvenc / hevc_nvenc when ffmpeg has them and a tiny real encode succeeds (cached). Listing the
encoder proves nothing: the bundled ffmpeg lists NVENC everywhere, and H100 / H200 GPUs have NVDEC but no NVENC.

Whatever is missing is said in ONE warning line per process (which part, why, what runs instead), and the CPU
pipes run; nothing raises because a GPU route is unavailable.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from facefusion.errors import ProcessingError
from facefusion.gpu.device import Array
from facefusion.logger import forget_warnings, get_logger, warn_once
from facefusion.types import Frame
from facefusion.video import encoders, ffmpeg
from facefusion.video.io import VideoReader, restrict_trim
from facefusion.video.probe import VideoInfo

NVENC_ENCODERS: Tuple[str, ...] = ('h264_nvenc', 'hevc_nvenc')
# the CPU encoder that produces the same codec as each hardware encoder
CPU_EQUIVALENTS = {'h264_nvenc': 'libx264', 'hevc_nvenc': 'libx265'}
NVENC_EQUIVALENTS = {'libx264': 'h264_nvenc', 'libx264rgb': 'h264_nvenc', 'libx265': 'hevc_nvenc'}
WARNING_KEY_PREFIX = 'video-route: '


@dataclass(frozen=True)
class DecoderChoice:
	route: str
	# 'ffmpeg' (CPU), 'ffmpeg-cuda' (NVDEC through ffmpeg) or 'pynvvideocodec'
	backend: str
	decoder_arguments: Tuple[str, ...] = ()
	reason: str = ''
	# the GPU PyNvVideoCodec decodes on (--execution-device-ids)
	device_id: int = 0


@dataclass(frozen=True)
class EncoderChoice:
	route: str
	encoder: str
	reason: str = ''


@dataclass(frozen=True)
class VideoRoutes:
	decoder: DecoderChoice
	encoder: EncoderChoice


def reset_caches() -> None:
	"""Forget probe results and warnings (tests; or after a driver was installed)."""
	cuda_driver_status.cache_clear()
	ffmpeg_cuda_decode_status.cache_clear()
	pynvvideocodec_status.cache_clear()
	nvenc_status.cache_clear()
	forget_warnings(WARNING_KEY_PREFIX)


@functools.lru_cache(maxsize=None)
def cuda_driver_status() -> Tuple[bool, str]:
	"""Whether the NVIDIA driver library loads and sees a GPU (without importing any CUDA Python package)."""
	library_name = 'nvcuda.dll' if sys.platform == 'win32' else 'libcuda.so.1'
	try:
		library = ctypes.CDLL(library_name)
	except OSError:
		return False, 'no CUDA driver, {} not found'.format(library_name)
	try:
		if library.cuInit(0) != 0:
			return False, 'the CUDA driver failed to initialise'
		count = ctypes.c_int(0)
		if library.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
			return False, 'the CUDA driver sees no GPU'
	except AttributeError:
		return False, 'the CUDA driver library is incomplete'
	return True, '{} GPU(s)'.format(count.value)


@functools.lru_cache(maxsize=None)
def pynvvideocodec_status() -> Tuple[bool, str]:
	"""Whether PyNvVideoCodec imports: installed is not enough, its import asks the driver for its video libraries
	(libnvidia-encode, libnvcuvid), which a container without the driver's video capability lacks."""
	if importlib.util.find_spec('PyNvVideoCodec') is None:
		return False, 'PyNvVideoCodec is not installed'
	try:
		import PyNvVideoCodec  # noqa: F401
	except Exception as exception:
		reason = str(exception).strip().splitlines()[0] if str(exception).strip() else type(exception).__name__
		return False, 'PyNvVideoCodec does not load: ' + reason
	return True, 'PyNvVideoCodec'


def _probe_clip() -> str:
	"""A tiny H.264 clip (made once per process) to try hardware decoding on."""
	directory = tempfile.mkdtemp(prefix='facefusion-hwprobe-')
	path = os.path.join(directory, 'probe.mp4')
	ffmpeg.run_ffmpeg(['-y', '-f', 'lavfi', '-i', 'testsrc2=size=256x256:rate=25', '-frames:v', '5', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', path], what='Making the NVDEC probe clip')
	return path


@functools.lru_cache(maxsize=None)
def ffmpeg_cuda_decode_status(device_id: int = 0) -> Tuple[bool, str]:
	if 'cuda' not in ffmpeg.available_hwaccels():
		return False, 'this ffmpeg has no cuda hwaccel'
	driver_ok, driver_reason = cuda_driver_status()
	if not driver_ok:
		return False, driver_reason
	clip = _probe_clip()
	try:
		# warnings on: a failed hwaccel setup makes ffmpeg fall back to software and still exit 0
		result = ffmpeg.run_ffmpeg(['-loglevel', 'warning', '-hwaccel', 'cuda', '-hwaccel_device', str(device_id), '-i', clip, '-f', 'null', '-'], what='Probing NVDEC', check=False)
	finally:
		Path(clip).unlink(missing_ok=True)
		Path(clip).parent.rmdir()
	failed = result.returncode != 0 or any(word in result.stderr for word in ('Failed setup', 'hwaccel initialisation returned error', 'Device creation failed', 'Cannot load'))
	if failed:
		return False, 'NVDEC probe failed: {}'.format(ffmpeg.summarize_error(result.stderr, result.returncode))
	return True, 'ffmpeg -hwaccel cuda'


@functools.lru_cache(maxsize=None)
def nvenc_status(encoder: str = 'h264_nvenc', device_id: int = 0) -> Tuple[bool, str]:
	if encoder not in ffmpeg.available_encoders():
		return False, 'this ffmpeg has no {}'.format(encoder)
	driver_ok, driver_reason = cuda_driver_status()
	if not driver_ok:
		return False, driver_reason
	# a real two-frame encode: GPUs without the NVENC engine (H100, H200, A100) fail only here
	result = ffmpeg.run_ffmpeg(['-f', 'lavfi', '-i', 'color=black:size=256x256:rate=25', '-frames:v', '2', '-c:v', encoder, '-gpu', str(device_id), '-f', 'null', '-'], what='Probing {}'.format(encoder), check=False)
	if result.returncode != 0:
		return False, '{} probe failed: {}'.format(encoder, ffmpeg.summarize_error(result.stderr, result.returncode))
	return True, encoder


def _warn_once(message: str) -> None:
	# through the logger's own record, which device workers inherit: the driver's fallback line is not repeated
	warn_once(WARNING_KEY_PREFIX + message, message)


def select_decoder(route: str = 'auto', device_id: int = 0, warn: bool = True) -> DecoderChoice:
	"""The decode backend for a route; never raises for a missing GPU. A fall back is warned about once per
	process (warn=False leaves that to the caller, as select_video_routes does to say it in one line)."""
	if route == 'cpu':
		return DecoderChoice('cpu', 'ffmpeg', (), 'CPU decoding requested')
	cuda_ok, cuda_reason = ffmpeg_cuda_decode_status(device_id)
	if cuda_ok:
		return DecoderChoice('nvdec', 'ffmpeg-cuda', ('-hwaccel', 'cuda', '-hwaccel_device', str(device_id)), cuda_reason)
	if cuda_driver_status()[0]:
		codec_ok, codec_reason = pynvvideocodec_status()
		if codec_ok:
			return DecoderChoice('nvdec', 'pynvvideocodec', (), 'PyNvVideoCodec ({})'.format(cuda_reason), device_id)
		# ffmpeg's hwaccel and PyNvVideoCodec both failed: say why for each
		cuda_reason = cuda_reason + '; ' + codec_reason
	if warn:
		_warn_once('NVDEC unavailable ({}): decoding on the CPU'.format(cuda_reason))
	return DecoderChoice('cpu', 'ffmpeg', (), 'NVDEC unavailable: {}'.format(cuda_reason))


def select_encoder(route: str = 'auto', requested_encoder: Optional[str] = None, output_path: Union[str, Path] = 'output.mp4', device_id: int = 0, warn: bool = True) -> EncoderChoice:
	"""The video encoder for a route and the user's --output-video-encoder (None = not given).

	auto: NVENC when nothing else was asked and NVENC really works, else the CPU default (libx264);
	nvenc: the NVENC twin of the request (libx265 -> hevc_nvenc), CPU when NVENC fails;
	cpu: the CPU twin of a requested NVENC encoder. Container rules (encoders.resolve_video_encoder) apply last."""
	output_path = str(output_path)
	if route == 'cpu':
		encoder = CPU_EQUIVALENTS.get(requested_encoder or '', requested_encoder)
		return EncoderChoice('cpu', encoders.resolve_video_encoder(encoder, output_path), 'CPU encoding requested')
	wants_nvenc = route == 'nvenc' or requested_encoder in NVENC_ENCODERS or (route == 'auto' and requested_encoder is None)
	if not wants_nvenc:
		return EncoderChoice('cpu', encoders.resolve_video_encoder(requested_encoder, output_path), '{} requested'.format(requested_encoder))
	candidate = requested_encoder if requested_encoder in NVENC_ENCODERS else NVENC_EQUIVALENTS.get(requested_encoder or 'libx264', 'h264_nvenc')
	if not encoders.container_takes(candidate, output_path):
		# the container takes no H.264 / HEVC (webm): its own CPU encoder, no NVENC question to ask
		return EncoderChoice('cpu', encoders.resolve_video_encoder(None, output_path), 'container needs another codec')
	nvenc_ok, reason = nvenc_status(candidate, device_id)
	if nvenc_ok:
		return EncoderChoice('nvenc', candidate, reason)
	fallback = requested_encoder if requested_encoder and requested_encoder not in NVENC_ENCODERS else CPU_EQUIVALENTS[candidate]
	choice = EncoderChoice('cpu', encoders.resolve_video_encoder(fallback, output_path), 'NVENC unavailable: {}'.format(reason))
	if warn:
		_warn_once('NVENC unavailable ({}): encoding with {} on the CPU'.format(reason, choice.encoder))
	return choice


def select_video_routes(decoder_route: str = 'auto', encoder_route: str = 'auto', requested_encoder: Optional[str] = None, output_path: Union[str, Path] = 'output.mp4', device_id: int = 0) -> VideoRoutes:
	"""Both choices, with at most one warning line (per distinct situation, per process) for what fell back."""
	decoder = select_decoder(decoder_route, device_id, warn=False)
	encoder = select_encoder(encoder_route, requested_encoder, output_path, device_id, warn=False)
	decode_fallback = decoder_route != 'cpu' and decoder.route == 'cpu'
	encode_fallback = encoder_route != 'cpu' and encoder.route == 'cpu' and encoder.reason.startswith('NVENC unavailable')
	decode_reason = decoder.reason.replace('NVDEC unavailable: ', '')
	encode_reason = encoder.reason.replace('NVENC unavailable: ', '')
	message = None
	if decode_fallback and encode_fallback and decode_reason == encode_reason:
		message = 'NVDEC / NVENC unavailable ({}): decoding and encoding ({}) on the CPU'.format(decode_reason, encoder.encoder)
	elif decode_fallback or encode_fallback:
		parts = []
		if decode_fallback:
			parts.append('NVDEC unavailable ({}): decoding on the CPU'.format(decode_reason))
		if encode_fallback:
			parts.append('NVENC unavailable ({}): encoding with {} on the CPU'.format(encode_reason, encoder.encoder))
		message = '; '.join(parts)
	if message:
		_warn_once(message)
	get_logger().debug('video routes: decode %s (%s), encode %s (%s)', decoder.backend, decoder.reason, encoder.encoder, encoder.reason)
	return VideoRoutes(decoder, encoder)


# what open_reader gives: the ffmpeg pipe, or NVDEC through PyNvVideoCodec (both iterate Frames and close())
FrameReader = Union[VideoReader, 'PyNvVideoReader']


def open_reader(info: VideoInfo, decoder: DecoderChoice, trim_start: Optional[int] = None, trim_end: Optional[int] = None, size: Optional[Tuple[int, int]] = None, fps: Optional[Union[float, str]] = None, color_matrix: Optional[str] = None, threads: Optional[int] = None) -> FrameReader:
	"""A frame reader on the chosen backend. PyNvVideoCodec only serves plain reads (no scale, fps conversion or
	rotation); anything else, or any failure to open it, goes to the ffmpeg pipe."""
	if decoder.backend == 'pynvvideocodec' and size is None and fps is None and info.rotation == 0:
		try:
			return PyNvVideoReader(info, trim_start, trim_end, decoder.device_id, color_matrix)
		except Exception as exception:
			_warn_once('PyNvVideoCodec failed ({}): decoding on the CPU'.format(str(exception).splitlines()[0] if str(exception) else type(exception).__name__))
			decoder = DecoderChoice('cpu', 'ffmpeg')
	return VideoReader(info, trim_start, trim_end, size, fps, decoder.decoder_arguments, color_matrix, threads)


# DLPack's device type of host memory (kDLCPU); a decoded frame on any other device goes to CuPy
DLPACK_CPU = 1


def decoded_planes(decoded: object) -> Array:
	"""A decoded frame as an array on its own device: PyNvVideoCodec's frames in device memory export the CUDA array
	interface and DLPack and become CuPy arrays without a copy (the interface first: it needs no stream hand-shake);
	host frames become NumPy arrays (which export DLPack too, on the host)."""
	if hasattr(decoded, '__cuda_array_interface__'):
		import cupy
		return cupy.asarray(decoded)
	if hasattr(decoded, '__dlpack_device__') and int(decoded.__dlpack_device__()[0]) != DLPACK_CPU:
		import cupy
		return cupy.from_dlpack(decoded)
	return np.asarray(decoded)


class PyNvVideoReader:
	"""NVDEC through PyNvVideoCodec's sequential ThreadedDecoder (SimpleDecoder is the random-access one: indexing
	it frame by frame seeks), with the VideoReader interface. Frames come as native NV12 and are converted with the
	job's colour matrix and range (nv12_to_bgr), as the CPU route does; a decode failure mid-video says so loudly
	and decodes the rest on the CPU instead of failing the job.

	Only used where ffmpeg has no CUDA hwaccel; not exercised on the CPU-only development machine."""

	def __init__(self, info: VideoInfo, trim_start: Optional[int] = None, trim_end: Optional[int] = None, device_id: int = 0, color_matrix: Optional[str] = None) -> None:
		import PyNvVideoCodec as nvc
		self.info = info
		self.first_index, self._end = restrict_trim(info, trim_start, trim_end)
		self.width, self.height = info.width, info.height
		self.frame_shape = (self.height, self.width, 3)
		self.expected_frames = self._end - self.first_index
		self.frames_read = 0
		self.color_matrix = color_matrix or info.effective_color_matrix()
		self.color_range = info.effective_color_range()
		self.fallback: Optional[VideoReader] = None
		self._pending: list = []
		if hasattr(nvc, 'ThreadedDecoder'):
			self._decoder = nvc.ThreadedDecoder(info.path, buffer_size=16, gpu_id=device_id, use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE)
		else:
			self._decoder = nvc.SimpleDecoder(info.path, gpu_id=device_id, use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE)
		# sequential from the start: skip the frames before the trim
		skipped = 0
		while skipped < self.first_index and self._next_decoded() is not None:
			skipped += 1

	@property
	def frame_count(self) -> int:
		return self.expected_frames

	def _next_decoded(self) -> Optional[object]:
		"""The next decoded frame in order (batches from the sequential decoder), None at the end of the stream."""
		if not self._pending:
			self._pending = list(self._decoder.get_batch_frames(8))
			if not self._pending:
				return None
		return self._pending.pop(0)

	def _to_host(self, decoded: object) -> np.ndarray:
		"""A decoded frame's NV12 planes converted on their device, BGR copied to the host."""
		from facefusion.gpu.device import to_host
		from facefusion.video.nv12 import nv12_to_bgr
		planes = decoded_planes(decoded)
		rows = self.height * 3 // 2
		if planes.ndim == 2 and planes.shape[0] == rows and planes.shape[1] >= self.width:
			# a surface wider than the picture (its pitch): the picture is the left part of each row
			planes = planes[:, :self.width]
		else:
			planes = planes.reshape(rows, self.width)
		return to_host(nv12_to_bgr(planes, self.width, self.height, self.color_matrix, self.color_range))

	def readinto(self, buffer: np.ndarray) -> bool:
		if self.first_index + self.frames_read >= self._end:
			return False
		if self.fallback is None:
			try:
				decoded = self._next_decoded()
				if decoded is not None:
					buffer[...] = self._to_host(decoded)
			except Exception as exception:
				decoded = None
				self._fall_back(str(exception).splitlines()[0] if str(exception) else type(exception).__name__)
			if decoded is None and self.fallback is None:
				self._fall_back('the stream ended early')
		if self.fallback is not None and not self.fallback.readinto(buffer):
			return False
		self.frames_read += 1
		return True

	def _fall_back(self, reason: str) -> None:
		"""Decode the rest on the CPU from the first frame NVDEC did not deliver, and say so."""
		index = self.first_index + self.frames_read
		_warn_once('NVDEC failed at frame {} of {} ({}): decoding the rest on the CPU'.format(index, os.path.basename(self.info.path), reason))
		self._decoder = None
		self.fallback = VideoReader(self.info, index, self._end, color_matrix=self.color_matrix)

	def read(self) -> Optional[Frame]:
		pixels = np.empty(self.frame_shape, dtype=np.uint8)
		index = self.first_index + self.frames_read
		return Frame(index, pixels) if self.readinto(pixels) else None

	def __iter__(self) -> Iterator[Frame]:
		try:
			while True:
				frame = self.read()
				if frame is None:
					if self.frames_read < self.expected_frames:
						raise ProcessingError('NVDEC stopped after {} of {} frames of {}'.format(self.frames_read, self.expected_frames, os.path.basename(self.info.path)))
					return
				yield frame
		finally:
			self.close()

	def close(self) -> None:
		decoder, self._decoder = self._decoder, None
		# the threaded decoder decodes ahead in a thread of its own until told to end
		if decoder is not None and hasattr(decoder, 'end'):
			try:
				decoder.end()
			except Exception:
				pass
		if self.fallback is not None:
			self.fallback.close()

	def __enter__(self) -> 'PyNvVideoReader':
		return self

	def __exit__(self, *exception_info: object) -> None:
		self.close()
