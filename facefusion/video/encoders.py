"""Output encoders: which exist, which fit a container, and the ffmpeg flags for --output-*-quality / -preset.

The quality and preset mappings are 3.5.0's so the same option gives the same file size and look.
Where 3.5.0 breaks, this does better:

- the default audio encoder depends on the container (aac for mp4/mov/m4v/mkv/avi/wmv, libopus for webm,
  pcm_s16le for mxf, libmp3lame for mpeg) instead of 3.5.0's "first available" (flac), which ffmpeg 5.1
  refuses in mp4 so the audio was silently lost;
- every (container, audio encoder) pair that ffmpeg refuses was tried with the bundled ffmpeg 9 and is fixed up
  to one that works (mpeg takes mp3 not aac; mxf takes 48 kHz pcm_s16le only; mov/avi/wmv refuse opus ...);
- nvenc quality 100 maps to -cq 1, not 0 (which nvenc reads as "automatic", the opposite of what was asked).
"""
from __future__ import annotations

import functools
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from facefusion import choices
from facefusion.logger import get_logger
from facefusion.video import ffmpeg

# 3.5.0's own order for its "first available" default audio encoder (kept for reference and the CLI choices)
UPSTREAM_AUDIO_ENCODER_ORDER: Tuple[str, ...] = ('flac', 'aac', 'libmp3lame', 'libopus', 'libvorbis', 'pcm_s16le', 'pcm_s32le')
# the codec each video encoder produces: container fix-ups care about the codec, not the implementation
VIDEO_ENCODER_CODECS: Dict[str, str] = {
	'libx264': 'h264', 'libx264rgb': 'h264', 'h264_nvenc': 'h264', 'h264_amf': 'h264', 'h264_qsv': 'h264',
	'h264_videotoolbox': 'h264', 'libx265': 'hevc', 'hevc_nvenc': 'hevc', 'hevc_amf': 'hevc', 'hevc_qsv': 'hevc',
	'hevc_videotoolbox': 'hevc', 'libvpx-vp9': 'vp9', 'rawvideo': 'rawvideo'
}
# audio encoders each container takes, the first being the default; None = any
CONTAINER_AUDIO_ENCODERS: Dict[str, Optional[Tuple[str, ...]]] = {
	'.mp4': ('aac', 'libmp3lame', 'libopus', 'flac'),
	'.mov': ('aac', 'libmp3lame', 'pcm_s16le', 'pcm_s32le'),
	'.m4v': ('aac',),
	'.mkv': ('aac', 'libmp3lame', 'libopus', 'libvorbis', 'flac', 'pcm_s16le', 'pcm_s32le'),
	'.avi': ('aac', 'libmp3lame', 'libvorbis', 'flac', 'pcm_s16le', 'pcm_s32le'),
	'.webm': ('libopus', 'libvorbis'),
	'.mxf': ('pcm_s16le',),
	'.mpeg': ('libmp3lame',),
	'.mpg': ('libmp3lame',),
	'.wmv': ('aac', 'libmp3lame'),
}
# containers that only hold one video codec family (3.5.0: m4v/mpeg/mxf/wmv force libx264, webm forces vp9)
CONTAINER_VIDEO_CODECS: Dict[str, Tuple[str, ...]] = {
	'.m4v': ('h264',), '.mpeg': ('h264',), '.mpg': ('h264',), '.mxf': ('h264',), '.wmv': ('h264',), '.webm': ('vp9',),
	'.mp4': ('h264', 'hevc', 'vp9'), '.mkv': ('h264', 'hevc', 'vp9'), '.mov': ('h264', 'hevc', 'rawvideo')
}
CONTAINER_FALLBACK_VIDEO_ENCODER: Dict[str, str] = {'.webm': 'libvpx-vp9'}
# containers whose streams can start at different times (an edit list, per-packet timestamps), checked on 5.1 and
# 9.0: avi and mxf start every stream at zero, so audio before the first frame cannot be kept there in sync
STREAM_OFFSET_EXTENSIONS: Tuple[str, ...] = ('.mp4', '.mov', '.m4v', '.mkv', '.webm', '.wmv', '.mpeg', '.mpg')
# containers whose index goes to the front so playback can start before the download ends (3.7 does the same)
FASTSTART_EXTENSIONS: Tuple[str, ...] = ('.mp4', '.mov', '.m4v')
# the x264 preset names map onto each hardware family's own scale
NVENC_PRESETS: Dict[str, str] = {
	'ultrafast': 'fast', 'superfast': 'fast', 'veryfast': 'fast', 'faster': 'fast', 'fast': 'fast', 'medium': 'medium',
	'slow': 'slow', 'slower': 'slow', 'veryslow': 'slow'
}
AMF_QUALITIES: Dict[str, str] = {
	'ultrafast': 'speed', 'superfast': 'speed', 'veryfast': 'speed', 'faster': 'balanced', 'fast': 'balanced',
	'medium': 'balanced', 'slow': 'quality', 'slower': 'quality', 'veryslow': 'quality'
}
QSV_PRESETS: Dict[str, str] = {'ultrafast': 'veryfast', 'superfast': 'veryfast', 'veryfast': 'veryfast'}
# libvpx-vp9's speed knob (deadline, cpu-used). 3.5.0 passes none, leaving libvpx at its default (good, 1): about
# 3 fps at 720p on 2 cores. Measured here at 720p, 2 cores: realtime 8 = 45 fps, realtime 6 = 27 fps, good 4 = 8 fps,
# at about the same size for the same crf; the x264 names map onto that scale from fastest to slowest.
VP9_SPEEDS: Dict[str, Tuple[str, int]] = {
	'ultrafast': ('realtime', 8), 'superfast': ('realtime', 7), 'veryfast': ('realtime', 6), 'faster': ('realtime', 5),
	'fast': ('good', 4), 'medium': ('good', 3), 'slow': ('good', 2), 'slower': ('good', 1), 'veryslow': ('good', 0)
}


def interpolate(value: float, from_range: Sequence[float], to_range: Sequence[float]) -> float:
	"""Linear map of value from [a, b] to [c, d], clamped (numpy.interp for two points)."""
	start, stop = from_range
	ratio = min(max((value - start) / (stop - start), 0.0), 1.0)
	return to_range[0] + ratio * (to_range[1] - to_range[0])


def available_video_encoders() -> List[str]:
	"""3.5.0's list in its order, filtered by what the found ffmpeg offers."""
	offered = ffmpeg.available_encoders()
	return [name for name in choices.output_video_encoders if name in offered]


def available_audio_encoders() -> List[str]:
	offered = ffmpeg.available_encoders()
	return [name for name in choices.output_audio_encoders if name in offered]


def default_video_encoder() -> str:
	available = available_video_encoders()
	return available[0] if available else 'libx264'


def default_audio_encoder(extension: str) -> str:
	"""The first encoder the container takes that this ffmpeg has (aac for mp4; never flac-in-mp4)."""
	extension = _normalise_extension(extension)
	offered = ffmpeg.available_encoders()
	allowed = CONTAINER_AUDIO_ENCODERS.get(extension) or ('aac',)
	for name in allowed:
		if name in offered:
			return name
	return allowed[0]


def resolve_video_encoder(requested: Optional[str], output_path: str) -> str:
	"""The encoder that will really run: the request if this ffmpeg has it and the container takes its codec,
	else the best substitute (said once in a warning, never silently)."""
	extension = _normalise_extension(os.path.splitext(str(output_path))[1])
	offered = ffmpeg.available_encoders()
	encoder = requested or default_video_encoder()
	if encoder not in offered:
		substitute = default_video_encoder()
		get_logger().warning('Video encoder %s is not available in this ffmpeg, using %s', encoder, substitute)
		encoder = substitute
	codec = VIDEO_ENCODER_CODECS.get(encoder, encoder)
	allowed_codecs = CONTAINER_VIDEO_CODECS.get(extension)
	if allowed_codecs and codec not in allowed_codecs:
		substitute = CONTAINER_FALLBACK_VIDEO_ENCODER.get(extension, 'libx264')
		if requested:
			get_logger().warning('%s cannot hold %s video, using %s', extension, encoder, substitute)
		encoder = substitute
	return encoder


def container_takes(encoder: str, output_path: str) -> bool:
	"""Whether the output container can hold what this video encoder produces."""
	extension = _normalise_extension(os.path.splitext(str(output_path))[1])
	allowed_codecs = CONTAINER_VIDEO_CODECS.get(extension)
	return not allowed_codecs or VIDEO_ENCODER_CODECS.get(encoder, encoder) in allowed_codecs


def resolve_audio_encoder(requested: Optional[str], output_path: str) -> str:
	extension = _normalise_extension(os.path.splitext(str(output_path))[1])
	offered = ffmpeg.available_encoders()
	allowed = CONTAINER_AUDIO_ENCODERS.get(extension)
	if requested is None:
		return default_audio_encoder(extension)
	encoder = requested
	if encoder not in offered:
		substitute = default_audio_encoder(extension)
		get_logger().warning('Audio encoder %s is not available in this ffmpeg, using %s', encoder, substitute)
		return substitute
	# flac in mp4 became supported in ffmpeg 6; older builds refuse it (the 3.5.0 audio loss)
	if extension == '.mp4' and encoder == 'flac' and 0 < ffmpeg.ffmpeg_major_version() < 6:
		allowed = ('aac',)
	if allowed is not None and encoder not in allowed:
		substitute = default_audio_encoder(extension)
		get_logger().warning('%s cannot hold %s audio, using %s', extension, encoder, substitute)
		return substitute
	return encoder


def video_encoder_arguments(encoder: str, quality: int, preset: str) -> List[str]:
	"""The quality and speed flags for one encoder, mapped as 3.5.0 maps --output-video-quality/-preset."""
	if encoder in ('libx264', 'libx264rgb', 'libx265'):
		arguments = ['-crf', str(round(interpolate(quality, (0, 100), (51, 0)))), '-preset', preset]
		if encoder == 'libx265':
			# x265 prints a banner and per-frame stats at info level; keep ffmpeg's stderr for real errors
			arguments += ['-x265-params', 'log-level=error']
		return arguments
	if encoder == 'libvpx-vp9':
		deadline, speed = VP9_SPEEDS.get(preset, ('good', 2))
		# -b:v 0 makes -crf a constant-quality target instead of a cap on a default bitrate
		return ['-crf', str(round(interpolate(quality, (0, 100), (63, 0)))), '-b:v', '0', '-deadline', deadline, '-cpu-used', str(speed), '-row-mt', '1']
	if encoder in ('h264_nvenc', 'hevc_nvenc'):
		constant_quality = max(1, round(interpolate(quality, (0, 100), (51, 0))))
		return ['-cq', str(constant_quality), '-b:v', '0', '-preset', NVENC_PRESETS.get(preset, 'medium')]
	if encoder in ('h264_amf', 'hevc_amf'):
		quantizer = str(round(interpolate(quality, (0, 100), (51, 0))))
		return ['-rc', 'cqp', '-qp_i', quantizer, '-qp_p', quantizer, '-qp_b', quantizer, '-quality', AMF_QUALITIES.get(preset, 'balanced')]
	if encoder in ('h264_qsv', 'hevc_qsv'):
		return ['-qp', str(round(interpolate(quality, (0, 100), (51, 0)))), '-preset', QSV_PRESETS.get(preset, preset)]
	if encoder in ('h264_videotoolbox', 'hevc_videotoolbox'):
		return ['-b:v', '{}k'.format(round(interpolate(quality, (0, 100), (1024, 50512))))]
	return []


def video_pixel_format(encoder: str) -> str:
	"""The pixel format the encoder gets: 4:2:0 for everything that plays everywhere; RGB for the RGB encoders."""
	if encoder == 'libx264rgb':
		return 'bgr24'
	if encoder == 'rawvideo':
		return 'rgb24'
	if encoder in ('h264_qsv', 'hevc_qsv'):
		return 'nv12'
	return 'yuv420p'


# encoders that take the target's chroma and depth when the ffmpeg build lists the format for them
DEPTH_KEEPING_ENCODERS = ('libx264', 'libx265', 'libvpx-vp9')


def encoder_pixel_formats(encoder: str) -> Tuple[str, ...]:
	"""The pixel formats the running ffmpeg's encoder takes ('ffmpeg -h encoder=X'), empty when it cannot say."""
	return _encoder_pixel_formats(ffmpeg.find_ffmpeg(), encoder)


@functools.lru_cache(maxsize=None)
def _encoder_pixel_formats(binary: str, encoder: str) -> Tuple[str, ...]:
	# binary is part of the cache key only: a test that switches ffmpeg must not get the other one's answer
	del binary
	result = ffmpeg.run_ffmpeg(['-h', 'encoder={}'.format(encoder)], what='Listing the formats of {}'.format(encoder), quiet=False, check=False)
	for line in (result.stdout.decode('utf-8', errors='replace') + '\n' + result.stderr).splitlines():
		if 'Supported pixel formats:' in line:
			return tuple(line.split(':', 1)[1].split())
	return ()


def output_pixel_format(encoder: str, source_pix_fmt: Optional[str]) -> Tuple[str, Optional[str]]:
	"""The pixel format to encode a target of source_pix_fmt with, and a note on what is reduced (None: nothing).

	The frames are processed as 8-bit BGR, so 10-bit in comes out with 8-bit detail either way; encoding it at
	10 bits keeps the file what the user had (players, editing timelines), 4:4:4 keeps the chroma the swapped
	faces were rendered with. An encoder that cannot take the format gets 4:2:0 8-bit, and the note says so."""
	default = video_pixel_format(encoder)
	if not source_pix_fmt or default != 'yuv420p':
		return default, None
	match = re.match(r'(?:yuvj?|gbr)(420|422|444)?p(\d+)?(le|be)?$', source_pix_fmt)
	if not match:
		return default, None
	chroma = match.group(1) or '444'
	depth = int(match.group(2) or 8)
	if chroma == '420' and depth <= 8:
		return default, None
	wanted = 'yuv{}p{}'.format(chroma, '10le' if depth > 8 else '')
	offered = encoder_pixel_formats(encoder) if encoder in DEPTH_KEEPING_ENCODERS else ()
	if wanted in offered:
		note = None
		if depth > 8:
			note = 'the frames are processed at 8 bits, so the 10-bit output holds 8-bit detail'
		if depth > 10:
			note = 'the output is 10-bit (the most the encoders here take); ' + note
		return wanted, note
	return default, '{} cannot encode {}: the output is yuv420p (8-bit 4:2:0)'.format(encoder, wanted)


def keeps_stream_offsets(output_path: str) -> bool:
	"""Whether the output's container lets its audio start before or after its first frame."""
	return _normalise_extension(os.path.splitext(str(output_path))[1]) in STREAM_OFFSET_EXTENSIONS


def container_arguments(encoder: str, output_path: str) -> List[str]:
	extension = _normalise_extension(os.path.splitext(str(output_path))[1])
	arguments: List[str] = []
	if extension in FASTSTART_EXTENSIONS:
		arguments += ['-movflags', '+faststart']
		if VIDEO_ENCODER_CODECS.get(encoder) == 'hevc':
			# Apple players only open HEVC tagged hvc1 (ffmpeg's default tag is hev1)
			arguments += ['-tag:v', 'hvc1']
	return arguments


def audio_encoder_arguments(encoder: str, quality: int, output_path: str) -> List[str]:
	"""The quality flags for one audio encoder, plus what the container insists on."""
	extension = _normalise_extension(os.path.splitext(str(output_path))[1])
	arguments: List[str] = []
	if encoder == 'aac':
		arguments += ['-q:a', str(round(interpolate(quality, (0, 100), (0.1, 2.0)), 1))]
	elif encoder == 'libmp3lame':
		arguments += ['-q:a', str(round(interpolate(quality, (0, 100), (9, 0))))]
	elif encoder == 'libopus':
		arguments += ['-b:a', '{}k'.format(round(interpolate(quality, (0, 100), (64, 256))))]
	elif encoder == 'libvorbis':
		arguments += ['-q:a', str(round(interpolate(quality, (0, 100), (-1, 10)), 1))]
	if extension == '.mxf':
		# the mxf muxer only implements 48 kHz audio
		arguments += ['-ar', '48000']
	if encoder == 'libopus':
		# opus has no 44.1 kHz mode; ffmpeg would refuse other rates instead of resampling
		arguments += ['-ar', '48000']
	return arguments


def _normalise_extension(extension: str) -> str:
	extension = extension.lower()
	return extension if extension.startswith('.') or not extension else '.' + extension
