"""Paths and media kinds: what a file is, judged by its extension AND its first bytes.

FaceFusion 3.5.0 decides image / video by extension alone, so a text file renamed `.jpg` reaches the decoder and
fails deep inside the pipeline. Here the first bytes must agree with the extension before a file counts as media;
whether the bytes then decode is vision.py's job (an image that does not decode is "unreadable").
"""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import List, Optional, Union

from facefusion import choices

PathLike = Union[str, 'os.PathLike[str]']

# how many leading bytes the signature check reads: enough for every signature below
HEAD_SIZE = 64

# container atoms that may open a QuickTime / MP4 file ('ftyp' in modern files, the others in old .mov files)
QUICKTIME_ATOMS = (b'ftyp', b'moov', b'mdat', b'wide', b'free', b'skip', b'pnot')
# ftyp brands that mean audio-only MPEG-4 (.m4a / .m4b)
AUDIO_BRANDS = (b'M4A ', b'M4B ')


def get_file_name(path: PathLike) -> str:
	"""The file name without directory and extension ('clip' for 'a/clip.mp4')."""
	return Path(path).stem


def get_file_extension(path: PathLike) -> str:
	"""The lower-case extension with its dot ('.jpg'), or '' when there is none (3.5.0's convention)."""
	return Path(path).suffix.lower()


def is_file(path: Optional[PathLike]) -> bool:
	return bool(path) and os.path.isfile(path)


def is_directory(path: Optional[PathLike]) -> bool:
	return bool(path) and os.path.isdir(path)


def parent_directory(path: PathLike) -> Path:
	"""The directory a file path lives in; a bare 'out.jpg' lives in the current directory (3.5.0 refused it)."""
	parent = Path(path).parent
	return parent if str(parent) else Path('.')


def same_file(first: PathLike, second: PathLike) -> bool:
	"""True when both paths name the same existing file (also through links or different spellings)."""
	try:
		return os.path.samefile(first, second)
	except OSError:
		return False


def read_head(path: PathLike, size: int = HEAD_SIZE) -> bytes:
	"""The first bytes of a file (raises OSError like open())."""
	with open(path, 'rb') as handle:
		return handle.read(size)


def sniff_media_kind(head: bytes) -> Optional[str]:
	"""'image', 'video' or 'audio' from a file's first bytes, None when no known signature matches."""
	if head.startswith(b'\xff\xd8\xff') or head.startswith(b'\x89PNG\r\n\x1a\n'):
		return 'image'
	if head.startswith(b'BM') or head.startswith(b'II*\x00') or head.startswith(b'MM\x00*'):
		return 'image'
	if head.startswith(b'RIFF') and len(head) >= 12:
		return {b'WEBP': 'image', b'AVI ': 'video', b'WAVE': 'audio'}.get(head[8:12])
	if head[4:8] in QUICKTIME_ATOMS:
		if head[4:8] == b'ftyp' and head[8:12] in AUDIO_BRANDS:
			return 'audio'
		return 'video'
	# Matroska / WebM (EBML), MPEG program stream, ASF (wmv), MXF
	if head.startswith((b'\x1a\x45\xdf\xa3', b'\x00\x00\x01\xba', b'\x00\x00\x01\xb3', b'\x30\x26\xb2\x75', b'\x06\x0e\x2b\x34')):
		return 'video'
	if head.startswith((b'ID3', b'fLaC', b'OggS')):
		return 'audio'
	# an MPEG audio frame or an ADTS (aac) header starts with 11 set sync bits
	if len(head) >= 2 and head[0] == 0xff and head[1] & 0xe0 == 0xe0:
		return 'audio'
	return None


def extension_kind(path: PathLike) -> Optional[str]:
	"""'image', 'video' or 'audio' by extension alone (the choices lists), None for anything else."""
	extension = get_file_extension(path)
	if extension in choices.image_extensions:
		return 'image'
	if extension in choices.video_extensions:
		return 'video'
	if extension in choices.audio_extensions:
		return 'audio'
	return None


def media_status(path: Optional[PathLike]) -> str:
	"""What a path is, as one word core turns into a message.

	'missing', 'directory', 'empty', 'unreadable' (cannot be opened), 'unsupported' (extension is no media kind),
	'mismatch' (the bytes do not match the extension), or the kind itself: 'image', 'video', 'audio'.
	"""
	if not path or not os.path.exists(path):
		return 'missing'
	if os.path.isdir(path):
		return 'directory'
	kind = extension_kind(path)
	try:
		if os.path.getsize(path) == 0:
			return 'empty'
		head = read_head(path)
	except OSError:
		return 'unreadable'
	if kind is None:
		return 'unsupported'
	if sniff_media_kind(head) != kind:
		return 'mismatch'
	return kind


def is_image(path: Optional[PathLike]) -> bool:
	return media_status(path) == 'image'


def resolve_file_pattern(pattern: Optional[str]) -> List[str]:
	"""The files a glob pattern matches, sorted so batch indices are stable from run to run."""
	if not pattern:
		return []
	return sorted(path for path in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(path))
