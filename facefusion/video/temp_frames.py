"""The disk strategy (``--workflow-strategy disk``): 3.5.0's temp-frame workflow, kept as the baseline.

extract_frames writes every frame of the (trimmed) target to
``<temp-path>/facefusion/<target name>.<pid>.<random>/%08d.<format>`` (numbered from 00000001 as 3.5.0 does; the
folder is this run's alone), the processors rewrite the files in place, merge_frames encodes them back with the
same encoder flags the streaming writer uses and checks that every frame made it, and clear_temp_directory removes
the folder unless --keep-temp. The trim, scale, fps and colour decisions are the streaming reader's (video_io.plan_read), so both
strategies produce the same frames; only the extraction flags follow 3.5.0 (``-q:v 0``, rgb24 since 3.5.3).

This is slow by design (PNG writing runs at about 7-13 fps at 720p on the 2-core machines we measure on); the memory strategy
(video_io pipes) is the default.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from facefusion import choices, partial_files
from facefusion.errors import InputError, ProcessingError
from facefusion.logger import get_logger
from facefusion.video import ffmpeg
from facefusion.video.io import build_encode_arguments, build_encode_filter, choose_pixel_format, fps_text, plan_read, temporary_path
from facefusion.video.probe import VideoInfo, probe_video

# what each temp format is written as: png / tiff as 3.5.3 does (rgb24), bmp in its native order, jpeg in full
# chroma (the encoder's 4:2:0 default would blur colour edges before the swap even starts)
TEMP_FRAME_PIXEL_FORMATS: Dict[str, str] = {'png': 'rgb24', 'tiff': 'rgb24', 'bmp': 'bgr24', 'jpeg': 'yuvj444p'}


def temp_root(temp_path: Union[str, Path]) -> Path:
	"""``<temp-path>/facefusion``, where every disk-workflow run keeps its own folder."""
	return Path(temp_path) / 'facefusion'


def create_temp_directory(temp_path: Union[str, Path], target_path: Union[str, Path]) -> Path:
	"""A new, empty temp directory for this run: ``<temp-path>/facefusion/<target name>.<pid>.<random>``.

	3.5.0 used ``<target name>`` alone, so two runs on one target (or on two targets with the same file name) wiped
	and overwrote each other's frames. mkdtemp creates the folder atomically under a name no other run holds; the
	pid in the name lets a later run remove the folder of a run that was killed."""
	root = temp_root(temp_path)
	prefix = partial_files.temp_folder_prefix(Path(target_path).stem)
	# a finishing run removes an empty <temp-path>/facefusion (clear_temp_directory) between our mkdir and mkdtemp:
	# then make it again
	for attempt in range(5):
		try:
			root.mkdir(parents=True, exist_ok=True)
			if attempt == 0:
				partial_files.remove_stale_temp_folders(root)
			return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
		except FileNotFoundError:
			continue
		except OSError as exception:
			raise InputError('Cannot create a temp directory in {}: {}'.format(root, exception.strerror or exception))
	raise InputError('Cannot create a temp directory in {}: it keeps disappearing'.format(root))


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


def check_frame_files(directory: Union[str, Path], temp_frame_format: str, expected_frames: int) -> None:
	"""Every extracted frame is still there, numbered 1..N without a gap (ffmpeg's image reader stops at the first
	missing number, which would make a short video that still exits 0)."""
	frame_paths = list_temp_frames(directory, temp_frame_format)
	last_number = int(frame_paths[-1].stem) if frame_paths else 0
	if len(frame_paths) != expected_frames or last_number != expected_frames:
		raise ProcessingError('The temp frames in {} changed during the run: {} of {} frames are there (was the folder modified by another program?)'.format(directory, len(frame_paths), expected_frames))


def merge_frames(directory: Union[str, Path], temp_frame_format: str, frame_size: Tuple[int, int], fps: Union[float, str], output_path: Union[str, Path], encoder: str, quality: int = 80, preset: str = 'veryfast', output_size: Optional[Tuple[int, int]] = None, color_matrix: str = 'bt709', output_fps: Optional[Union[float, str]] = None, expected_frames: Optional[int] = None, source_pix_fmt: Optional[str] = None) -> Path:
	"""Encode the temp frames into a silent video at a temporary name beside output_path and return that name
	(hand it to audio.finalize_output, which moves it into place). With expected_frames (what extract_frames
	wrote), a frame missing before or after encoding is an error, never a shorter video."""
	if expected_frames is not None:
		check_frame_files(directory, temp_frame_format, expected_frames)
	temp_path = temporary_path(ffmpeg.local_path(output_path))
	pixel_format = choose_pixel_format(encoder, source_pix_fmt)
	video_filter, _ = build_encode_filter(frame_size[0], frame_size[1], encoder, output_size, color_matrix, output_fps, pixel_format)
	arguments = ['-y', '-framerate', fps_text(fps), '-start_number', '1', '-i', temp_frame_pattern(directory, temp_frame_format)]
	arguments += ['-map', '0:v:0', '-vf', video_filter] + build_encode_arguments(encoder, quality, preset, output_path, pixel_format) + [str(temp_path)]
	try:
		ffmpeg.run_ffmpeg(arguments, what='Merging the frames into {}'.format(Path(output_path).name))
		# a changed frame rate duplicates or drops frames on purpose; otherwise the encoded count is the extracted one
		if expected_frames is not None and output_fps is None:
			merged_frames = probe_video(str(temp_path)).frame_count
			if merged_frames != expected_frames:
				raise ProcessingError('Merging the frames into {} failed: {} of {} frames were encoded'.format(Path(output_path).name, merged_frames, expected_frames))
	except BaseException:
		temp_path.unlink(missing_ok=True)
		raise
	return temp_path


def clear_temp_directory(directory: Union[str, Path], keep_temp: bool = False) -> Path:
	"""Remove this run's folder; with keep_temp, keep it under a name without the pid (``<target name>.<random>.kept``),
	which a later run does not take for a killed run's leftover. Returns where the frames are (or were)."""
	directory = Path(directory)
	if keep_temp:
		kept = directory
		kept_name = partial_files.kept_temp_folder_name(directory.name)
		if kept_name is not None:
			try:
				kept = directory.rename(directory.with_name(kept_name))
			except OSError:
				kept = directory
		get_logger().info('Keeping the temp frames in %s', kept)
		return kept
	shutil.rmtree(directory, ignore_errors=True)
	parent = Path(directory).parent
	# remove <temp>/facefusion too once the last run's folder is gone, leaving the temp path as it was
	try:
		parent.rmdir()
	except OSError:
		pass
	return directory
