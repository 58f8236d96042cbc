"""Test clips made from real photos with a known camera path, so tests know where every face is in every frame.

A clip is a virtual camera moving over a photo (pan, zoom and a small roll), optionally cutting hard to another
photo. For each frame the affine transform from photo pixels to displayed-frame pixels is returned, so landmarks
found once on the photo give the true landmarks of every frame (``SyntheticClip.frame_points``).

Options cover what the video path must survive: a sine-tone soundtrack with loud beeps at known video times (to
measure audio sync), audio that starts before or after the video, odd sizes, a variable frame rate, and rotation
metadata (the stored pixels are turned, a player / our reader turns them back upright).
"""
from __future__ import annotations

import math
import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from facefusion.config import PROJECT_DIR
from facefusion.video import ffmpeg
from facefusion.video.audio_timing import muxed_audio_delay

TEST_DATA_DIR = PROJECT_DIR / 'tests' / 'data'
# where each shipped photo's faces are: view centre (x, y as fractions of the photo size) and the view width as a
# fraction of the photo width, chosen (from YuNet detections) so the face fills about a third of the frame width
PHOTO_VIEWS: Dict[str, Tuple[float, float, float]] = {
	'obama.jpg': (0.538, 0.224, 0.75),
	'biden.jpg': (0.585, 0.167, 0.85),
	'obama_and_biden.jpg': (0.52, 0.35, 0.5),
}
AUDIO_SAMPLE_RATE = 48000


@dataclass(frozen=True)
class CameraPath:
	"""Camera motion over a clip (or over each shot after a cut): pan as fractions of the view width, zoom as a
	factor on the view, roll in degrees (counter-clockwise positive, as OpenCV counts)."""
	pan_start: Tuple[float, float] = (-0.08, -0.03)
	pan_end: Tuple[float, float] = (0.08, 0.03)
	zoom_start: float = 1.0
	zoom_end: float = 1.25
	angle_start: float = -4.0
	angle_end: float = 4.0


STILL_CAMERA = CameraPath((0.0, 0.0), (0.0, 0.0), 1.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class SyntheticClip:
	path: Path
	# the displayed (upright) size: what VideoReader returns
	width: int
	height: int
	fps: str
	frame_count: int
	# (frame_count, 2, 3): photo pixel (x, y, 1) -> displayed frame pixel, per frame
	transforms: np.ndarray = field(repr=False)
	# which photo each frame shows (index into photo_paths)
	photo_indices: np.ndarray = field(repr=False)
	photo_paths: Tuple[str, ...] = ()
	# presentation time of each frame from the first frame (uneven when variable_frame_rate)
	frame_times: np.ndarray = field(default=None, repr=False)
	has_audio: bool = False
	# audio start minus video start (negative: the audio begins earlier)
	audio_offset: float = 0.0
	tone_frequency: float = 440.0
	beep_frequency: float = 1000.0
	# video times (seconds from the first frame) at which a loud beep starts
	beep_times: Tuple[float, ...] = ()
	rotation: int = 0
	cut_index: Optional[int] = None
	duration: float = 0.0

	def frame_points(self, frame_index: int, photo_points: np.ndarray) -> np.ndarray:
		"""Photo pixel coordinates (N x 2) -> where they are in displayed frame ``frame_index``."""
		points = np.asarray(photo_points, dtype=np.float64).reshape(-1, 2)
		matrix = self.transforms[frame_index]
		return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

	def render_frame(self, frame_index: int) -> np.ndarray:
		"""The exact upright frame that was encoded (before compression): ground truth for pixel tests."""
		photo = load_photo(self.photo_paths[int(self.photo_indices[frame_index])])
		return _render(photo, self.transforms[frame_index], self.width, self.height)


def resolve_photo(photo: Union[str, Path]) -> str:
	path = Path(photo)
	if not path.is_file():
		path = TEST_DATA_DIR / str(photo)
	if not path.is_file():
		raise FileNotFoundError('Test photo {} not found (looked in {})'.format(photo, TEST_DATA_DIR))
	return str(path)


_photo_cache: Dict[str, np.ndarray] = {}


def load_photo(path: str) -> np.ndarray:
	if path not in _photo_cache:
		image = cv2.imread(path, cv2.IMREAD_COLOR)
		if image is None:
			raise FileNotFoundError('Cannot read test photo {}'.format(path))
		_photo_cache[path] = image
	return _photo_cache[path]


def _smoothstep(value: float) -> float:
	# ease in and out: a camera that accelerates and brakes, with no jump in velocity at the ends
	return value * value * (3.0 - 2.0 * value)


def camera_transform(photo_size: Tuple[int, int], photo_name: str, frame_size: Tuple[int, int], camera: CameraPath, progress: float) -> np.ndarray:
	"""The 2x3 affine (photo -> frame) at ``progress`` in 0..1 along the camera path."""
	photo_width, photo_height = photo_size
	width, height = frame_size
	centre_x, centre_y, view_fraction = PHOTO_VIEWS.get(os.path.basename(photo_name), (0.5, 0.5, 0.8))
	ease = _smoothstep(min(max(progress, 0.0), 1.0))
	view_width = photo_width * view_fraction
	pan_x = camera.pan_start[0] + (camera.pan_end[0] - camera.pan_start[0]) * ease
	pan_y = camera.pan_start[1] + (camera.pan_end[1] - camera.pan_start[1]) * ease
	zoom = camera.zoom_start + (camera.zoom_end - camera.zoom_start) * ease
	angle = math.radians(camera.angle_start + (camera.angle_end - camera.angle_start) * ease)
	centre = np.array([centre_x * photo_width + pan_x * view_width, centre_y * photo_height + pan_y * view_width])
	scale = width / view_width * zoom
	# image coordinates have y down, so this rotation turns the picture counter-clockwise on screen for angle > 0
	rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]) * scale
	translation = np.array([width / 2.0, height / 2.0]) - rotation @ centre
	return np.hstack([rotation, translation[:, None]])


def _render(photo: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
	# shrink the photo first (area filter) when the camera is far out, so the frame is not aliased
	scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
	factor = min(1.0, 1.5 * scale)
	source = photo
	local = matrix.copy()
	if factor < 1.0:
		source = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
		# cv2.resize maps pixel centres: small = (x + 0.5) * f - 0.5, so x = (small + 0.5) / f - 0.5
		factors = np.array([source.shape[1] / photo.shape[1], source.shape[0] / photo.shape[0]])
		local[:, :2] = matrix[:, :2] / factors
		local[:, 2] = matrix[:, 2] + matrix[:, :2] @ (0.5 / factors - 0.5)
	return cv2.warpAffine(source, local, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _write_audio(path: str, duration: float, audio_offset: float, tone_frequency: float, beep_frequency: float, beep_times: Sequence[float]) -> None:
	"""A quiet continuous tone with loud beeps; beep_times are video times, converted to the audio's own clock."""
	sample_count = max(1, int(round(duration * AUDIO_SAMPLE_RATE)))
	times = np.arange(sample_count) / AUDIO_SAMPLE_RATE
	signal = 0.1 * np.sin(2 * math.pi * tone_frequency * times)
	for beep_time in beep_times:
		start = beep_time - audio_offset
		mask = (times >= start) & (times < start + 0.1)
		signal[mask] += 0.8 * np.sin(2 * math.pi * beep_frequency * (times[mask] - start))
	samples = np.clip(signal * 32767, -32768, 32767).astype('<i2')
	with wave.open(path, 'wb') as handle:
		handle.setnchannels(1)
		handle.setsampwidth(2)
		handle.setframerate(AUDIO_SAMPLE_RATE)
		handle.writeframes(samples.tobytes())


def make_synthetic_video(path: Union[str, Path], photos: Sequence[str] = ('obama.jpg',), width: int = 320, height: int = 240, fps: int = 25, frame_count: int = 50, camera: CameraPath = CameraPath(), cut_at: Optional[int] = None, audio: bool = True, audio_offset: float = 0.0, tone_frequency: float = 440.0, beep_frequency: float = 1000.0, beep_times: Sequence[float] = (1.0,), rotation: int = 0, variable_frame_rate: bool = False, crf: int = 16, more_cuts: Sequence[int] = ()) -> SyntheticClip:
	"""Encode a clip and return its ground truth.

	photos: the first is shown until ``cut_at`` (a frame index), the second after it (hard cut, camera path
	restarts); more_cuts: further hard cuts after cut_at, the photos taken in turn for the shots. width / height are the displayed size; odd sizes are stored as yuv444p (4:2:0 cannot be odd).
	audio_offset: audio start minus video start in seconds (-0.5: the audio starts half a second earlier).
	rotation: clockwise degrees a player turns the stored picture (0/90/180/270); stored pixels are turned the
	other way so the displayed clip is upright. variable_frame_rate: every fifth frame is dropped (frames 3, 8,
	13, ...), so frame durations alternate between one and two frame periods (timestamps kept, not a constant
	rate); the last frame is always kept, because how long a dropped last frame's predecessor is held is written
	differently by different ffmpeg versions (1.96 s or 2.00 s for 50 frames).
	"""
	path = Path(path)
	photo_paths = tuple(resolve_photo(photo) for photo in photos)
	if cut_at is not None and len(photo_paths) < 2:
		raise ValueError('A cut needs two photos')
	if more_cuts and (cut_at is None or min(more_cuts) <= cut_at):
		raise ValueError('more_cuts come after cut_at')
	shot_starts = [0] + ([cut_at] if cut_at is not None else []) + sorted(more_cuts)
	rendered_indices = list(range(frame_count))
	if variable_frame_rate:
		rendered_indices = [index for index in range(frame_count) if index % 5 != 3]
	transforms, photo_indices = [], []
	for index in range(frame_count):
		shot_number = sum(1 for start in shot_starts if index >= start) - 1
		shot = shot_number % len(photo_paths)
		shot_start = shot_starts[shot_number]
		shot_end = (shot_starts[shot_number + 1] if shot_number + 1 < len(shot_starts) else frame_count) - 1
		progress = (index - shot_start) / max(shot_end - shot_start, 1)
		photo = load_photo(photo_paths[shot])
		transforms.append(camera_transform((photo.shape[1], photo.shape[0]), photo_paths[shot], (width, height), camera, progress))
		photo_indices.append(shot)
	frame_period = 1.0 / fps
	video_duration = frame_count * frame_period
	extension = path.suffix.lower()
	video_codec = ['-c:v', 'libvpx-vp9', '-crf', str(crf + 14), '-b:v', '0', '-deadline', 'realtime', '-cpu-used', '8'] if extension == '.webm' else ['-c:v', 'libx264', '-crf', str(crf), '-preset', 'veryfast']
	audio_codec = ['-c:a', 'libopus', '-b:a', '96k'] if extension == '.webm' else ['-c:a', 'aac', '-b:a', '128k']
	stored_width, stored_height = (height, width) if rotation in (90, 270) else (width, height)
	pixel_format = 'yuv420p' if stored_width % 2 == 0 and stored_height % 2 == 0 else 'yuv444p'
	with tempfile.TemporaryDirectory(prefix='facefusion-synthetic-') as scratch:
		# pass 1: encode the pictures; pass 2 (stream copy) adds rotation metadata, the stream offset and the audio,
		# because ffmpeg drops -itsoffset / -display_rotation given to a raw pipe input that is being encoded
		video_path = os.path.join(scratch, 'video' + extension)
		command = ffmpeg.base_command() + ['-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', '{}x{}'.format(stored_width, stored_height), '-r', str(fps), '-i', 'pipe:0']
		if variable_frame_rate:
			command += ['-vf', 'select=not(eq(mod(n\\,5)\\,3))', '-fps_mode', 'passthrough']
		command += video_codec + ['-pix_fmt', pixel_format, video_path]
		process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
		collector = ffmpeg.StderrCollector(process.stderr)
		try:
			for index in range(frame_count):
				frame = _render(load_photo(photo_paths[photo_indices[index]]), transforms[index], width, height)
				if rotation:
					# np.rot90 turns counter-clockwise; the player turns clockwise by `rotation` to undo it
					frame = np.ascontiguousarray(np.rot90(frame, rotation // 90))
				process.stdin.write(frame.tobytes())
			process.stdin.close()
		except BrokenPipeError:
			pass
		returncode = process.wait()
		collector.join()
		if returncode != 0:
			raise RuntimeError('Making {} failed: {}'.format(path.name, ffmpeg.summarize_error(collector.text(), returncode)))
		command = ['-y']
		legacy_rotation = 0 < ffmpeg.ffmpeg_major_version() < 6
		if rotation and not legacy_rotation:
			# the display matrix angle is counter-clockwise
			command += ['-display_rotation', str(-rotation)]
		if audio and audio_offset < 0:
			command += ['-itsoffset', '{:.6f}'.format(-audio_offset)]
		command += ['-i', video_path]
		if audio:
			audio_path = os.path.join(scratch, 'tone.wav')
			_write_audio(audio_path, video_duration - audio_offset, audio_offset, tone_frequency, beep_frequency, beep_times)
			# the audio is placed ahead of its muxer's error (ffmpeg 5.1 puts opus in WebM 6.5 ms early), so the
			# clip's sound is where its ground truth says on every ffmpeg
			audio_delay = max(audio_offset, 0.0) + muxed_audio_delay(audio_codec[1], str(path))
			if audio_delay != 0:
				command += ['-itsoffset', '{:.6f}'.format(audio_delay)]
			command += ['-i', audio_path, '-map', '0:v:0', '-map', '1:a:0'] + audio_codec
		else:
			command += ['-map', '0:v:0']
		if rotation and legacy_rotation:
			_write_with_rotate_tag(command, path, rotation)
		else:
			command += ['-c:v', 'copy', str(path)]
			ffmpeg.run_ffmpeg(command, what='Making {}'.format(path.name))
	kept = np.array(rendered_indices)
	return SyntheticClip(
		path=path,
		width=width,
		height=height,
		fps='{}/1'.format(fps),
		frame_count=len(kept),
		transforms=np.stack(transforms)[kept],
		photo_indices=np.array(photo_indices)[kept],
		photo_paths=photo_paths,
		frame_times=kept * frame_period,
		has_audio=audio,
		audio_offset=audio_offset if audio else 0.0,
		tone_frequency=tone_frequency,
		beep_frequency=beep_frequency,
		beep_times=tuple(beep_times) if audio else (),
		rotation=rotation,
		cut_index=(rendered_indices.index(cut_at) if cut_at in rendered_indices else None) if cut_at is not None else None,
		duration=video_duration
	)


def _write_with_rotate_tag(command: List[str], path: Path, rotation: int) -> None:
	"""ffmpeg before 6.0 has no -display_rotation, only the 'rotate' metadata key, and its sign is not the same
	in every version (4.x writes the clockwise turn a player makes, 5.x the counter-clockwise one). So write it,
	read the file's display matrix back, and write the other sign if the turn came out mirrored."""
	from facefusion.video.probe import parse_rotation, read_header
	for tag in (rotation, (360 - rotation) % 360):
		ffmpeg.run_ffmpeg(command + ['-metadata:s:v:0', 'rotate={}'.format(tag), '-c:v', 'copy', str(path)], what='Making {}'.format(path.name))
		video = read_header(str(path)).first('Video')
		if video is not None and parse_rotation(video.side_lines) == rotation:
			return
	raise RuntimeError('Making {} failed: this ffmpeg writes no {} degree rotation'.format(path.name, rotation))


def decode_audio(path: Union[str, Path], sample_rate: int = AUDIO_SAMPLE_RATE) -> Tuple[np.ndarray, float]:
	"""The first audio stream as mono float32 samples, and when its first sample plays relative to the first video
	frame (seconds; raw PCM output drops stream start offsets, so they are returned apart)."""
	from facefusion.video.probe import probe_video
	result = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:a:0', '-ac', '1', '-ar', str(sample_rate), '-f', 'f32le', '-'], what='Decoding the audio of {}'.format(Path(path).name))
	info = probe_video(str(path))
	return np.frombuffer(result.stdout, dtype='<f4'), float(info.audio_start_offset or 0.0)


def find_beep_onsets(samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE, threshold: float = 0.45, min_gap: float = 0.2) -> List[float]:
	"""Times (s) where the signal first rises above the beep threshold (the background tone stays near 0.1)."""
	loud = np.flatnonzero(np.abs(samples) > threshold)
	onsets: List[float] = []
	for position in loud:
		time = position / sample_rate
		if not onsets or time - onsets[-1] > min_gap:
			onsets.append(time)
	return onsets


def find_sound_start(samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE, threshold: float = 0.03) -> Optional[float]:
	"""When the background tone starts (after any silence put in front)."""
	audible = np.flatnonzero(np.abs(samples) > threshold)
	return float(audible[0] / sample_rate) if len(audible) else None
