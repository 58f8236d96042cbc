"""--face-landmarks-export: the raw and the smoothed 5-point landmarks of every tracked face in every frame, as JSON
or CSV (chosen by the file extension), for plotting jitter or checking what the aligner was given.

Rows are streamed to a temporary file next to the output and renamed into place on close, so memory stays flat on
long videos and a run that dies half-way never leaves a half-written file under the requested name.

JSON: {"format": "facefusion-landmarks", "version": 1, "landmark_kind": "5/68", "points": [...names...],
"frames": [{"frame": 0, "keyframe": true, "reason": "first", "faces": [{"track": 1, "raw": [[x, y] x5],
"smoothed": [[x, y] x5]}]}, ...]} -- every processed frame is listed, also those without faces.
CSV: one row per face and frame: frame, track, keyframe, reason, raw_x0, raw_y0 .. raw_x4, raw_y4, smoothed_x0 ..
smoothed_y4.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from facefusion.errors import InputError
from facefusion.types import Points

EXPORT_FORMAT = 'facefusion-landmarks'
EXPORT_VERSION = 1
EXPORT_EXTENSIONS: Tuple[str, ...] = ('.json', '.csv')
LANDMARK_KIND = '5/68'
POINT_NAMES: Tuple[str, ...] = ('left-eye', 'right-eye', 'nose', 'left-mouth', 'right-mouth')
# a thousandth of a pixel is finer than any detector or flow, and it keeps the files small
DECIMALS = 3


@dataclass
class ExportedFace:
	track: int
	raw: Points
	smoothed: Points


@dataclass
class ExportedFrame:
	frame: int
	keyframe: bool
	reason: Optional[str]
	faces: List[ExportedFace] = field(default_factory=list)


def check_export_path(path: Union[str, Path]) -> Path:
	"""The export path as a Path; raises InputError for an unknown extension or a missing folder."""
	export_path = Path(path)
	if export_path.suffix.lower() not in EXPORT_EXTENSIONS:
		raise InputError('the landmarks export needs a .json or .csv file name: ' + str(path))
	if not export_path.parent.is_dir():
		raise InputError('the folder of the landmarks export does not exist: ' + str(export_path.parent))
	return export_path


def csv_header() -> List[str]:
	columns = ['frame', 'track', 'keyframe', 'reason']
	for prefix in ('raw', 'smoothed'):
		for index in range(len(POINT_NAMES)):
			columns += [prefix + '_x' + str(index), prefix + '_y' + str(index)]
	return columns


def rounded(points: Points) -> List[List[float]]:
	return [[round(float(x), DECIMALS), round(float(y), DECIMALS)] for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2)]


class LandmarkExporter:
	"""Collects frames with add_frame() and writes them as it goes; close() puts the file in place."""

	def __init__(self, path: Union[str, Path], fps: Optional[float] = None) -> None:
		self.path = check_export_path(path)
		self.kind = self.path.suffix.lower()
		self.fps = fps
		self.partial_path = self.path.with_name(self.path.name + '.partial')
		self.handle: Optional[IO[str]] = None
		self.writer: Any = None
		self.frame_count = 0
		self.closed = False

	def open(self) -> None:
		self.handle = open(self.partial_path, 'w', encoding='utf-8', newline='')
		if self.kind == '.csv':
			self.writer = csv.writer(self.handle)
			self.writer.writerow(csv_header())
			return
		header = {'format': EXPORT_FORMAT, 'version': EXPORT_VERSION, 'landmark_kind': LANDMARK_KIND, 'points': list(POINT_NAMES), 'fps': self.fps}
		# the header is written as an object whose last member, "frames", stays open while frames stream in
		self.handle.write(json.dumps(header)[:-1] + ', "frames": [\n')

	def add_frame(self, frame: ExportedFrame) -> None:
		if self.closed:
			raise ValueError('the landmarks export is already closed')
		if self.handle is None:
			self.open()
		if self.kind == '.csv':
			for face in frame.faces:
				row: List[Any] = [frame.frame, face.track, int(frame.keyframe), frame.reason or '']
				row += [value for point in rounded(face.raw) for value in point]
				row += [value for point in rounded(face.smoothed) for value in point]
				self.writer.writerow(row)
		else:
			record = {
				'frame': frame.frame,
				'keyframe': frame.keyframe,
				'reason': frame.reason,
				'faces': [{'track': face.track, 'raw': rounded(face.raw), 'smoothed': rounded(face.smoothed)} for face in frame.faces]
			}
			self.handle.write((',\n' if self.frame_count else '') + json.dumps(record))
		self.frame_count += 1

	def close(self) -> Path:
		"""Finish the file and move it into place (an export with no frames is still a valid, empty file)."""
		if self.closed:
			return self.path
		if self.handle is None:
			self.open()
		if self.kind == '.json':
			self.handle.write('\n]}\n')
		self.handle.close()
		os.replace(self.partial_path, self.path)
		self.closed = True
		return self.path

	def abort(self) -> None:
		"""Drop what was written (a failed run leaves no export behind)."""
		if self.handle is not None and not self.closed:
			self.handle.close()
			self.partial_path.unlink(missing_ok=True)
		self.closed = True


def read_landmark_export(path: Union[str, Path]) -> List[ExportedFrame]:
	"""Parse an export back (JSON or CSV). CSV only holds frames that had faces."""
	export_path = Path(path)
	if export_path.suffix.lower() == '.json':
		data = json.loads(export_path.read_text(encoding='utf-8'))
		if data.get('format') != EXPORT_FORMAT:
			raise ValueError('not a landmarks export: ' + str(path))
		return [
			ExportedFrame(item['frame'], bool(item['keyframe']), item['reason'], [
				ExportedFace(int(face['track']), np.array(face['raw'], dtype=np.float64), np.array(face['smoothed'], dtype=np.float64))
				for face in item['faces']
			])
			for item in data['frames']
		]
	frames: Dict[int, ExportedFrame] = {}
	with open(export_path, encoding='utf-8', newline='') as handle:
		for row in csv.DictReader(handle):
			index = int(row['frame'])
			frame = frames.setdefault(index, ExportedFrame(index, row['keyframe'] == '1', row['reason'] or None))
			frame.faces.append(ExportedFace(int(row['track']), read_points(row, 'raw'), read_points(row, 'smoothed')))
	return [frames[index] for index in sorted(frames)]


def read_points(row: Dict[str, str], prefix: str) -> Points:
	return np.array([[float(row[prefix + '_x' + str(index)]), float(row[prefix + '_y' + str(index)])] for index in range(len(POINT_NAMES))], dtype=np.float64)


def export_as_arrays(frames: Sequence[ExportedFrame]) -> Dict[int, Dict[str, np.ndarray]]:
	"""track -> {'frames': (T,), 'raw': (T, 5, 2), 'smoothed': (T, 5, 2)}: one time series per track, for plotting."""
	series: Dict[int, Dict[str, list]] = {}
	for frame in frames:
		for face in frame.faces:
			entry = series.setdefault(face.track, {'frames': [], 'raw': [], 'smoothed': []})
			entry['frames'].append(frame.frame)
			entry['raw'].append(face.raw)
			entry['smoothed'].append(face.smoothed)
	return {track: {key: np.array(values) for key, values in entry.items()} for track, entry in series.items()}
