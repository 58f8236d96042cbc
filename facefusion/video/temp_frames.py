"""The disk strategy (``--workflow-strategy disk``): 3.5.0's temp-frame workflow, kept as the baseline.

extract_frames writes every frame of the (trimmed) target to ``<temp-path>/facefusion/<target name>/%08d.<format>``
(numbered from 00000001 as 3.5.0 does), the processors rewrite the files in place, merge_frames encodes them back
with the same encoder flags the streaming writer uses, and clear_temp_directory removes the folder unless
--keep-temp. The trim, scale, fps and colour decisions are the streaming reader's (video_io.plan_read), so both
strategies produce the same frames; only the extraction flags follow 3.5.0 (``-q:v 0``, rgb24 since 3.5.3).

This is slow by design (PNG writing runs at about 7-13 fps at 720p on the 2-core machines we measure on); the memory strategy
(video_io pipes) is the default.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from facefusion import choices
from facefusion.video import ffmpeg
from facefusion.errors import InputError
from facefusion.logger import get_logger
from facefusion.video.io import build_encode_arguments, build_encode_filter, fps_text, plan_read, temporary_path
from facefusion.video.probe import VideoInfo

# what each temp format is written as: png / tiff as 3.5.3 does (rgb24), bmp in its native order, jpeg in full
# chroma (the encoder's 4:2:0 default would blur colour edges before the swap even starts)
TEMP_FRAME_PIXEL_FORMATS: Dict[str, str] = {'png': 'rgb24', 'tiff': 'rgb24', 'bmp': 'bgr24', 'jpeg': 'yuvj444p'}


def temp_directory(temp_path: Union[str, Path], target_path: Union[str, Path]) -> Path:
	"""``<temp-path>/facefusion/<target file name without extension>``, as 3.5.0 names it."""
	return Path(temp_path) / 'facefusion' / Path(target_path).stem


def create_temp_directory(temp_path: Union[str, Path], target_path: Union[str, Path]) -> Path:
	"""A fresh, empty temp directory for the target (an older run's frames are removed first)."""
	directory = temp_directory(temp_path, target_path)
	shutil.rmtree(directory, ignore_errors=True)
	try:
		directory.mkdir(parents=True, exist_ok=True)
	except OSError as exception:
		raise InputError('Cannot create the temp directory {}: {}'.format(directory, exception.strerror or exception))
	return directory


def temp_frame_pattern(directory: Union[str, Path], temp_frame_format: str) -> str:
	return str(Path(ffmpeg.local_path(directory)) / '%08d.{}'.format(_extension(temp_frame_format)))


def _extension(temp_frame_format: str) -> str:
	if temp_frame_format not in choices.temp_frame_formats:
		raise InputError('Unknown temp frame format {} (choose from {})'.format(temp_frame_format, ', '.join(choices.temp_frame_formats)))
	# the format name is the extension, as in 3.5.0 (00000001.jpeg, not .jpg)
	return temp_frame_format


def extract_frames(info: VideoInfo, directory: Union[str, Path], temp_frame_format: str = 'png', trim_start: Optional[int] = None, trim_end: Optional[int] = None, size: Optional[Tuple[int, int]] = None, fps: Optional[Union[float, str]] = None, decoder_arguments: Sequence[str] = ()) -> int:
	"""Write the frames as numbered images; returns how many were written."""
	plan = plan_read(info, trim_start, trim_end, size, fps)
	arguments = list(decoder_arguments) + plan.input_arguments + ['-i', info.path, '-map', '0:{}'.format(info.video_stream_index), '-an', '-sn', '-dn']
	arguments += ['-vf', plan.video_filter] + plan.output_arguments
	arguments += ['-q:v', '0', '-pix_fmt', TEMP_FRAME_PIXEL_FORMATS[temp_frame_format], '-start_number', '1', temp_frame_pattern(directory, temp_frame_format)]
	ffmpeg.run_ffmpeg(arguments, what='Extracting the frames of {}'.format(Path(info.path).name))
	count = len(list_temp_frames(directory, temp_frame_format))
	if count == 0:
		raise InputError('No frames could be extracted from {}'.format(Path(info.path).name))
	if plan.expected_frames is not None and count < plan.expected_frames and fps is None:
		get_logger().warning('Extracted %d of %d expected frames from %s', count, plan.expected_frames, Path(info.path).name)
	return count


def list_temp_frames(directory: Union[str, Path], temp_frame_format: str) -> List[Path]:
	"""The temp frames in frame order (zero-padded names sort correctly)."""
	return sorted(Path(directory).glob('[0-9]' * 8 + '.' + _extension(temp_frame_format)))


def merge_frames(directory: Union[str, Path], temp_frame_format: str, frame_size: Tuple[int, int], fps: Union[float, str], output_path: Union[str, Path], encoder: str, quality: int = 80, preset: str = 'veryfast', output_size: Optional[Tuple[int, int]] = None, color_matrix: str = 'bt709', output_fps: Optional[Union[float, str]] = None) -> Path:
	"""Encode the temp frames into a silent video at a temporary name beside output_path and return that name
	(hand it to audio.finalize_output, which moves it into place)."""
	temp_path = temporary_path(ffmpeg.local_path(output_path))
	video_filter, _ = build_encode_filter(frame_size[0], frame_size[1], encoder, output_size, color_matrix, output_fps)
	arguments = ['-y', '-framerate', fps_text(fps), '-start_number', '1', '-i', temp_frame_pattern(directory, temp_frame_format)]
	arguments += ['-map', '0:v:0', '-vf', video_filter] + build_encode_arguments(encoder, quality, preset, output_path) + [str(temp_path)]
	try:
		ffmpeg.run_ffmpeg(arguments, what='Merging the frames into {}'.format(Path(output_path).name))
	except Exception:
		temp_path.unlink(missing_ok=True)
		raise
	return temp_path


def clear_temp_directory(directory: Union[str, Path], keep_temp: bool = False) -> None:
	if keep_temp:
		get_logger().info('Keeping the temp frames in %s', directory)
		return
	shutil.rmtree(directory, ignore_errors=True)
	parent = Path(directory).parent
	# remove <temp>/facefusion too once the last run's folder is gone, leaving the temp path as it was
	try:
		parent.rmdir()
	except OSError:
		pass
