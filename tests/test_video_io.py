"""Video probe, pipe reader / writer, encoders, disk-strategy temp frames and GPU route fallback, on real files
encoded from real photos (facefusion.testing.synthetic_video) by the ffmpeg in use: CI runs this file with
Debian's ffmpeg 5.1 and with the bundled 9.0 (FACEFUSION_FFMPEG)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pytest

from facefusion import child_process
from facefusion.errors import FaceFusionError, InputError, ProcessingError
from facefusion.testing import synthetic_video
from facefusion.testing.synthetic_video import SyntheticClip
from facefusion.video import encoders, ffmpeg, isobmff, temp_frames
from facefusion.video import routes as video_routes
from facefusion.video.io import VideoReader, VideoWriter, plan_video_geometry, read_video_frame
from facefusion.video.probe import MediaHeader, PacketScan, parse_rotation, probe_video, read_header, scan_packets, scan_with_header

from conftest import clip_maker

CLIP_OPTIONS: Dict[str, dict] = {
	'basic.mp4': {},
	'odd.mp4': {'width': 321, 'height': 241, 'audio': False, 'frame_count': 10},
	'rotated.mp4': {'rotation': 90, 'audio': False, 'frame_count': 10},
	'vfr.mp4': {'variable_frame_rate': True, 'audio': False},
	'one.mp4': {'frame_count': 1, 'audio': False},
	'late_video.mp4': {'audio_offset': -0.5, 'frame_count': 30},
	'cut.mp4': {'photos': ('obama.jpg', 'biden.jpg'), 'cut_at': 12, 'audio': False, 'frame_count': 20},
}


@pytest.fixture(scope='module')
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SyntheticClip]:
	return clip_maker(tmp_path_factory, 'clips', CLIP_OPTIONS)


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
	return float(np.abs(first.astype(np.int16) - second.astype(np.int16)).mean())


def test_probe_reports_the_clip(clip: Callable[[str], SyntheticClip]) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	assert (info.width, info.height) == (320, 240)
	assert info.fps_fraction == '25/1' and info.fps == 25.0
	assert info.frame_count == 50 and info.frame_count_source == 'packets'
	assert info.duration == pytest.approx(2.0, abs=1e-6)
	assert info.codec == 'h264' and info.pix_fmt == 'yuv420p'
	assert info.has_audio and info.audio_codec == 'aac' and info.audio_sample_rate == 48000
	assert info.audio_start_offset == pytest.approx(0.0, abs=1e-3)
	assert not info.is_vfr and info.rotation == 0
	assert len(info.frame_times) == 50 and info.frame_time(10) == pytest.approx(0.4)
	assert probe_video(str(clip('basic.mp4').path), decode_count=True).frame_count == 50


def test_probe_sees_a_late_video_stream(clip: Callable[[str], SyntheticClip]) -> None:
	info = probe_video(str(clip('late_video.mp4').path))
	assert info.video_start_time == pytest.approx(0.5, abs=1e-3)
	assert info.audio_start_time == pytest.approx(0.0, abs=1e-3)
	assert info.audio_start_offset == pytest.approx(-0.5, abs=1e-3)


def same_scan(first: PacketScan, second: PacketScan) -> bool:
	plain = ('video_time_base', 'video_end', 'audio_start', 'audio_end', 'audio_last', 'returncode')
	# the error lines as a user reads them: each run's own '[mov @ 0x55...]' addresses left out
	errors = [[ffmpeg.clean_line(line) for line in scan.stderr.splitlines()] for scan in (first, second)]
	return np.array_equal(first.video_pts, second.video_pts) and all(getattr(first, name) == getattr(second, name) for name in plain) and errors[0] == errors[1]


def test_one_ffmpeg_run_reads_the_header_and_the_packets(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	"""The probe's one run gives the header ``ffmpeg -i`` prints and the packets (and errors) of a scan by stream
	index, also where a still picture comes first, a second audio track follows or the file is cut short; and
	probe_video starts no second run for them."""
	basic = clip('basic.mp4').path
	still_first = tmp_path / 'still_first.mkv'
	cover = tmp_path / 'cover.png'
	ffmpeg.run_ffmpeg(['-y', '-f', 'lavfi', '-i', 'color=c=red:size=64x64', '-frames:v', '1', str(cover)], what='Writing a still')
	ffmpeg.run_ffmpeg(['-y', '-i', str(cover), '-i', str(basic), '-i', str(basic), '-map', '0', '-map', '1:v', '-map', '1:a', '-map', '2:a', '-c', 'copy', str(still_first)], what='Remuxing')
	indexed = tmp_path / 'indexed.mp4'
	ffmpeg.run_ffmpeg(['-y', '-i', str(basic), '-c', 'copy', '-movflags', '+faststart', str(indexed)], what='Remuxing')
	cut = tmp_path / 'cut.mp4'
	cut.write_bytes(indexed.read_bytes()[:indexed.stat().st_size * 2 // 3])
	for path in (basic, clip('vfr.mp4').path, clip('late_video.mp4').path, still_first, cut):
		headers: List[MediaHeader] = []
		combined = scan_with_header(str(path), headers.append)
		assert combined is not None, path
		header = read_header(str(path))
		assert combined.header == header and headers == [header], path
		video, audio = header.first('Video'), header.first('Audio')
		assert combined.mapping == {0: video.index, **({1: audio.index} if audio else {})}, path
		assert same_scan(combined.scan, scan_packets(str(path), video.index, audio.index if audio else None)), path
	assert ffmpeg.has_error_lines(scan_with_header(str(cut), headers.append).scan.stderr)
	runs: List[List[str]] = []
	popen, run = child_process.popen, child_process.run

	def counted(start: Callable[..., object]) -> Callable[..., object]:
		def counting(arguments: List[str], *args: object, **kwargs: object) -> object:
			runs.append([str(argument) for argument in arguments])
			return start(arguments, *args, **kwargs)
		return counting
	child_process.popen, child_process.run = counted(popen), counted(run)
	try:
		info = probe_video(str(still_first))
	finally:
		child_process.popen, child_process.run = popen, run
	assert info.video_stream_index == 0 and [stream.index for stream in info.audio_streams] == [2, 3]
	# one run for the header and the packets, and one short decode per audio track for where its sound starts (the
	# first one asked by its place, before the header is read)
	assert sum('framecrc' in run and '-frames:a' not in run for run in runs) == 1
	assert sorted(run[run.index('-map') + 1] for run in runs if '-frames:a' in run) == ['0:3', '0:a:0']


def test_mp4_track_ends_come_from_the_edit_list(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	# the late-video clip: the video track starts 0.5 s in (an empty edit) and shows 30 frames, the sound is 1.7 s
	timings = isobmff.read_track_timings(str(clip('late_video.mp4').path))
	assert [track.handler for track in timings] == ['vide', 'soun']
	assert timings[0].edits[0].media_time == -1 and timings[0].presentation_end == pytest.approx(1.7, abs=1e-3)
	assert timings[1].presentation_end == pytest.approx(1.7, abs=1e-3)
	assert isobmff.read_track_timings(synthetic_video.resolve_photo('obama.jpg')) is None
	# the same 50 frames with the last one held for a second frame period, as a variable-rate recording ends: the
	# packets say 2.00 s (to every ffmpeg), the edit list and so every player 2.04 s
	held = tmp_path / 'held.mp4'
	data = bytearray(clip('basic.mp4').path.read_bytes())
	scale = isobmff.read_track_timings(str(clip('basic.mp4').path))[0].movie_timescale
	position = data.index(b'elst') + 4
	version = data[position]
	entry = position + 8
	old = int.from_bytes(data[entry:entry + (8 if version else 4)], 'big')
	data[entry:entry + (8 if version else 4)] = (old + scale // 25).to_bytes(8 if version else 4, 'big')
	held.write_bytes(bytes(data))
	info = probe_video(str(held))
	assert info.frame_count == 50 and info.duration == pytest.approx(2.04, abs=1e-3)
	assert info.frame_time(50) == pytest.approx(2.04, abs=1e-3) and info.frame_time(49) == pytest.approx(1.96, abs=1e-6)


def framecrc_packets(path: Path) -> int:
	result = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:v:0', '-c', 'copy', '-f', 'framecrc', '-'], what='Counting', check=False)
	return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(b'#'))


def test_mp4_sample_counts_say_what_the_file_holds(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	"""The check after a mux reads an MP4's sample table instead of starting ffmpeg: as many video samples as ffmpeg
	demuxes, an audio track beside them, and fewer for a file cut short (as a full disk leaves it). A container
	other than ISO media gives no answer (ffmpeg is asked then)."""
	path = clip('basic.mp4').path
	tracks = isobmff.read_track_samples(str(path))
	assert [track.handler for track in tracks] == ['vide', 'soun']
	assert tracks[0].listed == tracks[0].present == framecrc_packets(path) == 50
	assert tracks[1].present == tracks[1].listed > 0
	# the engine writes its MP4s with the index first (+faststart), so a file cut short keeps its index
	indexed = tmp_path / 'indexed.mp4'
	ffmpeg.run_ffmpeg(['-y', '-i', str(path), '-c', 'copy', '-movflags', '+faststart', str(indexed)], what='Remuxing')
	cut = tmp_path / 'cut.mp4'
	data = indexed.read_bytes()
	cut.write_bytes(data[:len(data) * 2 // 3])
	cut_tracks = isobmff.read_track_samples(str(cut))
	assert cut_tracks is not None and cut_tracks[0].listed == 50
	assert 0 < cut_tracks[0].present < 50 and cut_tracks[0].present <= framecrc_packets(cut)
	mkv = tmp_path / 'basic.mkv'
	ffmpeg.run_ffmpeg(['-y', '-i', str(path), '-c', 'copy', str(mkv)], what='Remuxing')
	assert isobmff.read_track_samples(str(mkv)) is None


def test_rotation_reads_the_same_from_every_ffmpeg_header() -> None:
	# how 5.1, 7.0 and 9.0 print a phone clip's display matrix (stored landscape, shown turned 90 degrees clockwise)
	for side_lines in (['displaymatrix: rotation of -90.00 degrees'], ['Side data:', 'displaymatrix: rotation of -90.00 degrees'], ['Display Matrix: rotation of -90.00 degrees']):
		assert parse_rotation(side_lines) == 90
	assert parse_rotation(['Display Matrix: rotation of 90.00 degrees']) == 270
	assert parse_rotation(['Display Matrix: rotation of -180.00 degrees']) == 180
	# the classic tag of files whose reader exported it instead
	assert parse_rotation(['rotate          : 90']) == 90


def test_synthetic_transforms_are_exact() -> None:
	# white squares on black at known photo positions land where the transform says, to a fraction of a pixel
	photo = np.zeros((1137, 910, 3), dtype=np.uint8)
	points = np.array([[480, 250], [520, 262], [450, 300]], dtype=np.float64)
	for x, y in points.astype(int):
		photo[y - 6:y + 7, x - 6:x + 7] = 255
	for progress in (0.0, 0.5, 1.0):
		matrix = synthetic_video.camera_transform((910, 1137), 'obama.jpg', (320, 240), synthetic_video.CameraPath(), progress)
		rendered = synthetic_video._render(photo, matrix, 320, 240)[:, :, 0].astype(np.float64)
		for expected in points @ matrix[:, :2].T + matrix[:, 2]:
			column, row = int(expected[0]), int(expected[1])
			window = rendered[row - 8:row + 9, column - 8:column + 9]
			rows, columns = np.mgrid[row - 8:row + 9, column - 8:column + 9]
			centroid = np.array([(columns * window).sum(), (rows * window).sum()]) / window.sum()
			assert np.linalg.norm(centroid - expected) < 0.25


def test_synthetic_clip_ground_truth_matches_a_real_detector(clip: Callable[[str], SyntheticClip]) -> None:
	import cv2
	synthetic = clip('cut.mp4')
	assert synthetic.cut_index == 12 and list(synthetic.photo_indices) == [0] * 12 + [1] * 8
	model = str(synthetic_video.TEST_DATA_DIR / 'yunet_2023_mar.onnx')

	def eyes(image: np.ndarray) -> np.ndarray:
		detector = cv2.FaceDetectorYN.create(model, '', (image.shape[1], image.shape[0]), 0.6)
		faces = detector.detect(image)[1]
		return faces[np.argmax(faces[:, -1])][4:8].reshape(2, 2)
	photo_eyes = [eyes(synthetic_video.load_photo(path)) for path in synthetic.photo_paths]
	frames = list(VideoReader(str(synthetic.path)))
	for index in (0, 11, 12, 19):
		expected = synthetic.frame_points(index, photo_eyes[synthetic.photo_indices[index]])
		# YuNet's own landmark noise is a few pixels; a wrong transform or photo would be far off
		assert np.abs(eyes(frames[index].pixels) - expected).max() < 0.25 * np.linalg.norm(expected[0] - expected[1])


def test_reader_returns_every_frame_at_its_size(clip: Callable[[str], SyntheticClip]) -> None:
	synthetic = clip('basic.mp4')
	frames = list(VideoReader(str(synthetic.path)))
	assert len(frames) == 50
	assert [frame.index for frame in frames] == list(range(50))
	assert all(frame.pixels.shape == (240, 320, 3) and frame.pixels.dtype == np.uint8 for frame in frames)
	# the decoded pictures are the rendered ground truth up to compression noise
	for index in (0, 25, 49):
		assert mean_difference(frames[index].pixels, synthetic.render_frame(index)) < 4.0


def test_one_decoder_thread_reads_the_same_frames(clip: Callable[[str], SyntheticClip]) -> None:
	"""The thread plan's single decoding thread (CPU providers): ffmpeg's threads are an input option, and the frames
	are those of the default decoder bit for bit, also scaled (the filter graph's threads)."""
	path = str(clip('basic.mp4').path)
	for size in (None, (160, 120)):
		single = VideoReader(path, size=size, threads=1)
		command = single._command()
		assert command.index('-threads') < command.index('-i') and command[command.index('-filter_threads') + 1] == '1'
		default = [frame.pixels for frame in VideoReader(path, size=size)]
		threaded = [frame.pixels for frame in single]
		assert len(threaded) == len(default) == 50
		assert all(np.array_equal(first, second) for first, second in zip(threaded, default))


def test_readinto_fills_a_preallocated_buffer(clip: Callable[[str], SyntheticClip]) -> None:
	reader = VideoReader(str(clip('basic.mp4').path))
	buffer = np.empty(reader.frame_shape, dtype=np.uint8)
	count = 0
	while reader.readinto(buffer):
		count += 1
	assert count == 50 == reader.frames_read
	with pytest.raises(ValueError):
		VideoReader(str(clip('basic.mp4').path)).readinto(np.empty((10, 10, 3), dtype=np.uint8))


def test_writer_round_trip_keeps_frames_fps_and_duration(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	source = list(VideoReader(info))
	output = tmp_path / 'round.mp4'
	with VideoWriter(output, info.display_width, info.display_height, info.fps_fraction, color_matrix=info.effective_color_matrix()) as writer:
		for frame in source:
			writer.write_frame(frame)
	result = probe_video(str(output))
	assert result.frame_count == 50 and result.fps_fraction == '25/1'
	assert result.duration == pytest.approx(info.duration, abs=1 / 25)
	assert not result.has_audio
	# the writer tagged the matrix it encoded with, so decoding it back gives the same colours
	assert result.color_matrix is not None
	back = list(VideoReader(result))
	assert max(mean_difference(first.pixels, second.pixels) for first, second in zip(source, back)) < 2.5


def test_one_encoder_thread_writes_the_same_frames(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	"""The thread plan's single encoding thread (small frames, CPU providers): x264's output does not depend on its
	threads, so the frames decode bit for bit as the default writer's; the colour conversion's filter threads are
	limited too (a global option, before the input)."""
	info = probe_video(str(clip('basic.mp4').path))
	source = list(VideoReader(info))
	decoded = []
	for threads in (None, 1):
		output = tmp_path / 'threads-{}.mp4'.format(threads)
		writer = VideoWriter(output, info.display_width, info.display_height, info.fps_fraction, color_matrix=info.effective_color_matrix(), threads=threads)
		if threads:
			command = writer._command
			assert command.index('-filter_threads') < command.index('-i') and command[command.index('-threads') + 1] == '1'
		with writer:
			for frame in source:
				writer.write_frame(frame)
		decoded.append([frame.pixels for frame in VideoReader(str(output))])
	assert len(decoded[0]) == len(decoded[1]) == 50
	assert all(np.array_equal(first, second) for first, second in zip(*decoded))


def test_trim_is_frame_exact(clip: Callable[[str], SyntheticClip]) -> None:
	for name in ('basic.mp4', 'late_video.mp4', 'vfr.mp4'):
		info = probe_video(str(clip(name).path))
		full = list(VideoReader(info))
		trimmed = list(VideoReader(info, trim_start=7, trim_end=19))
		assert [frame.index for frame in trimmed] == list(range(7, 19)), name
		for frame in trimmed:
			assert np.array_equal(frame.pixels, full[frame.index].pixels), (name, frame.index)
	info = probe_video(str(clip('basic.mp4').path))
	tail = list(VideoReader(info, trim_start=45))
	assert [frame.index for frame in tail] == list(range(45, 50))
	# out-of-range values clamp as 3.5.0 does; an empty range is a user error
	assert len(list(VideoReader(info, trim_start=-5, trim_end=500))) == 50
	with pytest.raises(InputError):
		VideoReader(info, trim_start=30, trim_end=30)


def test_read_video_frame_by_index(clip: Callable[[str], SyntheticClip]) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	full = list(VideoReader(info))
	assert np.array_equal(read_video_frame(info, 33), full[33].pixels)


def test_scale_and_fps_conversion(clip: Callable[[str], SyntheticClip]) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	frames = list(VideoReader(info, size=(160, 120)))
	assert len(frames) == 50 and frames[0].pixels.shape == (120, 160, 3)
	# the VFR clip (40 frames over 2 s, base rate 25) becomes 50 constant-rate frames
	vfr = probe_video(str(clip('vfr.mp4').path))
	assert vfr.is_vfr and vfr.fps_fraction == '25/1' and vfr.frame_count == 40
	assert vfr.average_fps == pytest.approx(20.0)
	assert len(list(VideoReader(vfr))) == 40
	converted = VideoReader(vfr, fps=vfr.fps_fraction)
	assert abs(len(list(converted)) - 50) <= 1


def test_geometry_follows_output_scale_and_fps(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	half = plan_video_geometry(info, 0.5)
	assert half.decode_size == half.frame_size == (160, 120) and half.output_size is None
	double = plan_video_geometry(info, 2.0)
	assert double.decode_size is None and double.frame_size == (320, 240) and double.output_size == (640, 480)
	slower = plan_video_geometry(info, 1.0, 10)
	assert slower.decode_fps == slower.frame_fps == '10/1' and slower.output_fps is None
	assert plan_video_geometry(probe_video(str(clip('vfr.mp4').path))).decode_fps == '25/1'
	faster = plan_video_geometry(info, 2.0, 50)
	assert faster.decode_fps is None and faster.frame_fps == '25/1' and faster.output_fps == '50/1'
	output = tmp_path / 'faster.mp4'
	reader = VideoReader(info, size=faster.decode_size, fps=faster.decode_fps)
	with VideoWriter(output, *faster.frame_size, faster.frame_fps, preset='ultrafast', output_size=faster.output_size, output_fps=faster.output_fps) as writer:
		for frame in reader:
			writer.write(frame.pixels)
	result = probe_video(str(output))
	assert result.display_size == (640, 480) and result.fps_fraction == '50/1' and result.frame_count == 100
	assert result.duration == pytest.approx(2.0, abs=1 / 50)


def test_odd_sizes_are_padded_not_cropped(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	info = probe_video(str(clip('odd.mp4').path))
	assert info.display_size == (321, 241)
	frames = list(VideoReader(info))
	assert frames[0].pixels.shape == (241, 321, 3)
	output = tmp_path / 'odd_out.mp4'
	writer = VideoWriter(output, 321, 241, info.fps_fraction)
	assert writer.encoded_size == (322, 242)
	for frame in frames:
		writer.write(frame.pixels)
	writer.finalize()
	back = list(VideoReader(str(output)))
	assert len(back) == 10 and back[0].pixels.shape == (242, 322, 3)
	# every source pixel is still there; the added row / column repeats the edge
	assert mean_difference(back[5].pixels[:241, :321], frames[5].pixels) < 3.0
	assert mean_difference(back[5].pixels[241], back[5].pixels[240]) < 3.0
	assert mean_difference(back[5].pixels[:, 321], back[5].pixels[:, 320]) < 3.0


def test_rotation_metadata_gives_upright_frames(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	synthetic = clip('rotated.mp4')
	info = probe_video(str(synthetic.path))
	assert info.rotation == 90 and (info.width, info.height) == (240, 320) and info.display_size == (320, 240)
	frames = list(VideoReader(info))
	assert frames[0].pixels.shape == (240, 320, 3)
	assert mean_difference(frames[3].pixels, synthetic.render_frame(3)) < 4.0
	output = tmp_path / 'upright.mp4'
	with VideoWriter(output, 320, 240, info.fps_fraction) as writer:
		for frame in frames:
			writer.write(frame.pixels)
	result = probe_video(str(output))
	assert result.rotation == 0 and (result.width, result.height) == (320, 240)
	# second generation: compression noise adds up (about 4.7 here), a sideways picture would be about 54 off
	assert mean_difference(next(iter(VideoReader(result))).pixels, synthetic.render_frame(0)) < 8.0


def test_one_frame_video(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	info = probe_video(str(clip('one.mp4').path))
	assert info.frame_count == 1 and info.duration == pytest.approx(0.04, abs=1e-6)
	frames = list(VideoReader(info))
	assert len(frames) == 1
	output = tmp_path / 'one_out.mp4'
	with VideoWriter(output, 320, 240, info.fps_fraction) as writer:
		writer.write(frames[0].pixels)
	assert probe_video(str(output)).frame_count == 1


def test_writer_uses_a_temporary_name_until_finalize(tmp_path: Path) -> None:
	output = tmp_path / 'final.mp4'
	frame = np.full((240, 320, 3), 128, dtype=np.uint8)
	writer = VideoWriter(output, 320, 240, 25)
	for _ in range(5):
		writer.write(frame)
	assert not output.exists()
	assert writer.temp_path.parent == tmp_path and writer.temp_path.name.startswith('.final.')
	assert writer.temp_path.suffix == '.mp4'
	writer.abort()
	assert not writer.temp_path.exists() and not output.exists()
	# an older output is left alone by an aborted run and replaced by a finished one
	output.write_bytes(b'previous')
	with pytest.raises(RuntimeError):
		with VideoWriter(output, 320, 240, 25) as failing:
			failing.write(frame)
			raise RuntimeError('processing failed')
	assert output.read_bytes() == b'previous'
	assert not failing.temp_path.exists()
	writer = VideoWriter(output, 320, 240, 25)
	writer.write(frame)
	assert writer.finalize() == output and probe_video(str(output)).frame_count == 1
	assert sorted(path.name for path in tmp_path.iterdir()) == ['final.mp4']
	with pytest.raises(ProcessingError):
		VideoWriter(tmp_path / 'empty.mp4', 320, 240, 25).finalize()
	with pytest.raises(ValueError):
		VideoWriter(tmp_path / 'bad.mp4', 320, 240, 25).write(np.zeros((10, 10, 3), dtype=np.uint8))
	with pytest.raises(InputError):
		VideoWriter(tmp_path / 'missing' / 'out.mp4', 320, 240, 25)


def test_corrupt_and_truncated_videos_fail_with_one_line(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	garbage = tmp_path / 'garbage.mp4'
	garbage.write_bytes(os.urandom(4096))
	data = clip('basic.mp4').path.read_bytes()
	# the index is at the end of this file (no faststart): cut it off
	no_index = tmp_path / 'no_index.mp4'
	no_index.write_bytes(data[:len(data) // 2])
	for path in (garbage, no_index, tmp_path / 'missing.mp4'):
		with pytest.raises(InputError) as error:
			probe_video(str(path))
		assert '\n' not in str(error.value) and path.name in str(error.value)
	# an index at the front but half the data gone
	faststart = tmp_path / 'faststart.mp4'
	ffmpeg.run_ffmpeg(['-y', '-i', str(clip('basic.mp4').path), '-c', 'copy', '-movflags', '+faststart', str(faststart)], what='Remuxing')
	cut = tmp_path / 'cut.mp4'
	cut.write_bytes(faststart.read_bytes()[:faststart.stat().st_size // 2])
	with pytest.raises(InputError) as error:
		probe_video(str(cut))
	assert 'truncated or corrupt' in str(error.value)
	# the file is damaged after it was probed: the reader notices, the writer leaves nothing behind
	info = probe_video(str(faststart))
	faststart.write_bytes(cut.read_bytes())
	output = tmp_path / 'result.mp4'
	with pytest.raises(FaceFusionError) as error:
		with VideoWriter(output, 320, 240, 25) as writer:
			for frame in VideoReader(info):
				writer.write(frame.pixels)
	assert '\n' not in str(error.value)
	assert not output.exists() and not any(path.name.startswith('.result') for path in tmp_path.iterdir())


def test_encoder_mappings_follow_upstream() -> None:
	assert encoders.video_encoder_arguments('libx264', 80, 'veryfast') == ['-crf', '10', '-preset', 'veryfast']
	assert encoders.video_encoder_arguments('libx265', 0, 'medium')[:4] == ['-crf', '51', '-preset', 'medium']
	assert encoders.video_encoder_arguments('libvpx-vp9', 80, 'veryfast')[:2] == ['-crf', '13']
	assert encoders.video_encoder_arguments('h264_nvenc', 80, 'veryfast') == ['-cq', '10', '-b:v', '0', '-preset', 'fast']
	assert encoders.video_encoder_arguments('hevc_nvenc', 100, 'slower')[:2] == ['-cq', '1']
	assert encoders.video_encoder_arguments('h264_nvenc', 50, 'medium')[-1] == 'medium'
	assert encoders.video_encoder_arguments('h264_qsv', 80, 'superfast') == ['-qp', '10', '-preset', 'veryfast']
	assert encoders.video_encoder_arguments('h264_videotoolbox', 100, 'fast') == ['-b:v', '50512k']
	assert encoders.audio_encoder_arguments('aac', 80, 'x.mp4') == ['-q:a', '1.6']
	assert encoders.audio_encoder_arguments('libmp3lame', 80, 'x.mkv') == ['-q:a', '2']
	assert encoders.audio_encoder_arguments('libopus', 80, 'x.webm') == ['-b:a', '218k', '-ar', '48000']
	assert encoders.audio_encoder_arguments('libvorbis', 80, 'x.mkv') == ['-q:a', '7.8']
	assert encoders.audio_encoder_arguments('pcm_s16le', 80, 'x.mxf') == ['-ar', '48000']


def test_encoder_choices_fit_ffmpeg_and_container() -> None:
	video = encoders.available_video_encoders()
	assert video[0] == 'libx264' and 'libvpx-vp9' in video
	assert video == [name for name in encoders.choices.output_video_encoders if name in video]
	assert 'aac' in encoders.available_audio_encoders()
	assert encoders.resolve_audio_encoder(None, 'x.mp4') == 'aac'
	assert encoders.resolve_audio_encoder(None, 'x.webm') == 'libopus'
	assert encoders.resolve_audio_encoder(None, 'x.mxf') == 'pcm_s16le'
	assert encoders.resolve_audio_encoder(None, 'x.mpeg') == 'libmp3lame'
	assert encoders.resolve_audio_encoder('libopus', 'x.mov') == 'aac'
	assert encoders.resolve_audio_encoder('aac', 'x.webm') == 'libopus'
	assert encoders.resolve_audio_encoder('libopus', 'x.mkv') == 'libopus'
	assert encoders.resolve_video_encoder(None, 'x.mp4') == 'libx264'
	assert encoders.resolve_video_encoder('libx264', 'x.webm') == 'libvpx-vp9'
	assert encoders.resolve_video_encoder('libx265', 'x.wmv') == 'libx264'
	assert encoders.resolve_video_encoder('rawvideo', 'x.mkv') == 'libx264'
	assert encoders.resolve_video_encoder('libvpx-vp9', 'x.mov') == 'libx264'
	assert encoders.resolve_video_encoder('libx265', 'x.mp4') == 'libx265'


def test_ffmpeg_capabilities_are_listed_once() -> None:
	first = ffmpeg.available_encoders()
	assert 'libx264' in first and first is ffmpeg.available_encoders()
	assert isinstance(ffmpeg.available_hwaccels(), frozenset)
	assert ffmpeg.ffmpeg_major_version() >= 5
	with pytest.raises(ProcessingError) as error:
		ffmpeg.run_ffmpeg(['-i', '/nonexistent/input.mp4', '-f', 'null', '-'], what='Reading a missing file')
	assert str(error.value).startswith('Reading a missing file failed: ') and '\n' not in str(error.value)


def test_disk_strategy_extracts_and_merges(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	info = probe_video(str(clip('basic.mp4').path))
	directory = temp_frames.create_temp_directory(tmp_path / 'temp', info.path)
	# this run's own folder under 3.5.0's <temp>/facefusion: <target name>.<pid>.<random>
	assert directory.parent == tmp_path / 'temp' / 'facefusion' and directory.name.startswith('basic.')
	count = temp_frames.extract_frames(info, directory, 'bmp', trim_start=5, trim_end=15)
	paths = temp_frames.list_temp_frames(directory, 'bmp')
	assert count == 10 and [path.name for path in paths][:2] == ['00000001.bmp', '00000002.bmp']
	reference = list(VideoReader(info, trim_start=5, trim_end=15))
	import cv2
	assert np.array_equal(cv2.imread(str(paths[0])), reference[0].pixels)
	assert temp_frames.extract_frames(info, temp_frames.create_temp_directory(tmp_path / 'temp2', info.path), 'jpeg', trim_end=3) == 3
	output = tmp_path / 'merged.mp4'
	silent = temp_frames.merge_frames(directory, 'bmp', (320, 240), info.fps_fraction, output, 'libx264', 80, 'ultrafast')
	assert silent.parent == tmp_path and not output.exists()
	os.replace(silent, output)
	assert probe_video(str(output)).frame_count == 10
	# kept under a name without the pid, so no later run removes it as a killed run's leftover
	kept = temp_frames.clear_temp_directory(directory, keep_temp=True)
	assert kept.is_dir() and kept.name.endswith('.kept') and len(temp_frames.list_temp_frames(kept, 'bmp')) == 10
	temp_frames.clear_temp_directory(kept)
	assert not kept.exists() and not (tmp_path / 'temp' / 'facefusion').exists()


@pytest.mark.skipif(video_routes.cuda_driver_status()[0], reason='a CUDA driver is present: the fallback is not what runs')
def test_gpu_routes_fall_back_to_cpu_with_one_warning() -> None:
	video_routes.reset_caches()
	logger = logging.getLogger('facefusion')
	records = []
	handler = logging.Handler(logging.WARNING)
	handler.emit = records.append
	logger.addHandler(handler)
	previous_level = logger.level
	logger.setLevel(logging.INFO)
	try:
		routes = video_routes.select_video_routes('auto', 'auto', None, 'out.mp4')
		assert routes.decoder.route == 'cpu' and routes.decoder.decoder_arguments == ()
		assert routes.encoder.route == 'cpu' and routes.encoder.encoder == 'libx264'
		assert len(records) == 1 and '\n' not in records[0].getMessage()
		assert 'CPU' in records[0].getMessage()
		# asked again in the same process: nothing new is said
		video_routes.select_video_routes('auto', 'auto', None, 'out.mp4')
		assert len(records) == 1
		# the single-route selectors say it once each when used on their own
		video_routes.reset_caches()
		assert video_routes.select_decoder('nvdec').backend == 'ffmpeg'
		assert video_routes.select_encoder('nvenc', 'h264_nvenc', 'out.mp4').encoder == 'libx264'
		video_routes.select_encoder('nvenc', 'h264_nvenc', 'out.mp4')
		assert len(records) == 3
	finally:
		logger.removeHandler(handler)
		logger.setLevel(previous_level)
	assert video_routes.select_encoder('nvenc', 'hevc_nvenc', 'out.mp4').encoder == 'libx265'
	assert video_routes.select_encoder('auto', 'libx264', 'out.mp4') == video_routes.EncoderChoice('cpu', 'libx264', 'libx264 requested')
	assert video_routes.select_encoder('cpu', 'h264_nvenc', 'out.mp4').encoder == 'libx264'
	assert video_routes.select_encoder('auto', None, 'out.webm').encoder == 'libvpx-vp9'
	assert video_routes.select_decoder('cpu').backend == 'ffmpeg'


def test_pynvvideocodec_counts_as_there_only_when_it_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""An installed PyNvVideoCodec whose import fails (its import asks the driver for libnvidia-encode, which a
	container without the driver's video capability lacks) is no NVDEC route: the reason is its error's first line."""
	import sys
	package = tmp_path / 'PyNvVideoCodec'
	package.mkdir()
	init = package / '__init__.py'
	init.write_text("raise RuntimeError('libnvidia-encode.so.1: cannot open shared object file\\n\\n=== TROUBLESHOOTING STEPS ===')\n")
	monkeypatch.syspath_prepend(str(tmp_path))
	monkeypatch.delitem(sys.modules, 'PyNvVideoCodec', raising=False)
	video_routes.pynvvideocodec_status.cache_clear()
	try:
		assert video_routes.pynvvideocodec_status() == (False, 'PyNvVideoCodec does not load: libnvidia-encode.so.1: cannot open shared object file')
		init.write_text('OutputColorType = None\n')
		monkeypatch.delitem(sys.modules, 'PyNvVideoCodec', raising=False)
		video_routes.pynvvideocodec_status.cache_clear()
		assert video_routes.pynvvideocodec_status() == (True, 'PyNvVideoCodec')
		monkeypatch.delitem(sys.modules, 'PyNvVideoCodec', raising=False)
		monkeypatch.setattr(sys, 'path', [entry for entry in sys.path if entry != str(tmp_path)])
		video_routes.pynvvideocodec_status.cache_clear()
		assert video_routes.pynvvideocodec_status() == (False, 'PyNvVideoCodec is not installed')
	finally:
		video_routes.pynvvideocodec_status.cache_clear()


def stored_yuv420_planes(path: Path, width: int, height: int) -> np.ndarray:
	"""The video's samples as stored, a row per frame (Y, then U and V), read without any colour conversion."""
	import subprocess
	raw = subprocess.run([ffmpeg.find_ffmpeg(), '-v', 'error', '-i', str(path), '-pix_fmt', 'yuv420p', '-f', 'rawvideo', '-'], check=True, capture_output=True).stdout
	return np.frombuffer(raw, np.uint8).reshape(-1, width * height * 3 // 2)


def test_untouched_pixels_come_back_through_the_decoder_and_the_writer(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	"""What keeps a colour step from showing between a pasted face and the rest of the picture: frames decoded to
	BGR and encoded again unchanged (losslessly, so only the two colour conversions count) give back the stored
	samples. On this clip 0.08 % of the luma samples move, and 0.15 % of the chroma samples move by more than one
	level. swscale's fast defaults moved 96 % of the luma samples (12 % by two or more); exact rounding without full
	chroma interpolation, 61 %."""
	path = clip('basic.mp4').path
	info = probe_video(str(path))
	output = tmp_path / 'lossless.mp4'
	with VideoWriter(output, info.display_width, info.display_height, info.fps_fraction, encoder='libx264', quality=100, color_matrix=info.effective_color_matrix()) as writer:
		for frame in VideoReader(info):
			writer.write_frame(frame)
	source = stored_yuv420_planes(path, info.display_width, info.display_height).astype(np.int16)
	back = stored_yuv420_planes(output, info.display_width, info.display_height).astype(np.int16)
	assert source.shape == back.shape and len(source) == 50
	luma_size = info.display_width * info.display_height
	luma = np.abs(source[:, :luma_size] - back[:, :luma_size])
	chroma = np.abs(source[:, luma_size:] - back[:, luma_size:])
	assert (luma > 0).mean() < 0.01 and (luma > 1).mean() < 0.001, ((luma > 0).mean(), (luma > 1).mean())
	assert (chroma > 1).mean() < 0.005, (chroma > 1).mean()
