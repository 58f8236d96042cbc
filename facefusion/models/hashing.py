"""FaceFusion's model integrity check: a ``.hash`` file beside each model holding the CRC32 of its bytes.

Format (3.5.0's): exactly 8 lowercase hex digits, no newline, nothing else. We are strict about it
when validating, because 3.5.0 is, and a folder of models should work for both engines.
"""
from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

PathLike = Union[str, 'os.PathLike[str]']

# streaming keeps memory flat for the 500 MB swappers (3.5.0 reads the whole file at once)
CHUNK_SIZE = 1 << 20
HASH_PATTERN = re.compile(r'[0-9a-f]{8}')
# the longest .hash worth reading: anything longer is malformed anyway
HASH_READ_LIMIT = 64

# crc by (path, size, mtime_ns): every run validates every model it needs (over 1 GB with the defaults), and a
# process that runs several jobs (benchmarks, the UI) should pay for that once per file version
_crc_cache: Dict[Tuple[str, int, int], str] = {}


def crc32_hex(path: PathLike) -> str:
	"""zlib CRC32 of the whole file as 8 lowercase hex digits (the content of a ``.hash`` file)."""
	crc = 0
	with open(path, 'rb') as file:
		for chunk in iter(lambda: file.read(CHUNK_SIZE), b''):
			crc = zlib.crc32(chunk, crc)
	return format(crc & 0xffffffff, '08x')


def hash_path_for(model_path: PathLike) -> Path:
	"""``.../scrfd_2.5g.onnx`` -> ``.../scrfd_2.5g.hash`` (only the last suffix is replaced)."""
	return Path(model_path).with_suffix('.hash')


def read_hash(hash_path: PathLike) -> Optional[str]:
	"""The CRC a ``.hash`` file holds, or None when it is missing, unreadable or not exactly 8 lowercase hex digits."""
	try:
		with open(hash_path, 'rb') as file:
			content = file.read(HASH_READ_LIMIT)
	except OSError:
		return None
	try:
		text = content.decode('ascii')
	except UnicodeDecodeError:
		return None
	if HASH_PATTERN.fullmatch(text):
		return text
	return None


def cached_crc32_hex(path: PathLike) -> str:
	"""crc32_hex, remembered per (path, size, mtime) for the life of the process."""
	stat = os.stat(path)
	key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
	crc = _crc_cache.get(key)
	if crc is None:
		crc = crc32_hex(path)
		_crc_cache[key] = crc
	return crc


def validate(model_path: PathLike, hash_path: Optional[PathLike] = None) -> bool:
	"""True iff the model exists and its CRC32 equals the content of its ``.hash`` (beside it unless given)."""
	expected = read_hash(hash_path if hash_path is not None else hash_path_for(model_path))
	if expected is None or not os.path.isfile(model_path):
		return False
	try:
		return cached_crc32_hex(model_path) == expected
	except OSError:
		return False
