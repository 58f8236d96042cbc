"""Reading and writing still images.

Every frame that leaves this module is uint8, H x W x 3, BGR, whatever the file held: grayscale, gray + alpha, BGRA,
16-bit or float. Paths may contain any unicode (bytes go through numpy, never through OpenCV's own path handling,
which breaks on non-ASCII paths on Windows). Writes are atomic: a half-written output never appears under the
output name, not even when the process is interrupted.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from facefusion.errors import InputError, ProcessingError
from facefusion.filesystem import PathLike, get_file_extension
from facefusion.logger import get_logger
from facefusion.partial_files import replace_atomically
from facefusion.types import Size, VisionFrame

# Refuse images beyond these limits before decoding: a 30000 x 30000 PNG is a few kilobytes on disk but 2.7 GB
# in memory, and every later stage (analysis, masks, paste-back) makes copies of the frame.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 200_000_000
# output formats that can carry an alpha channel through cv2.imencode
ALPHA_EXTENSIONS = ('.png', '.webp', '.tif', '.tiff')
# what cv2.imencode can write among the image extensions we accept
WRITABLE_EXTENSIONS = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')
# PNG is lossless: the quality option cannot change it, so use a compression level that is fast and still small
PNG_COMPRESSION = 3
# output formats that hold 16 bits per channel through cv2.imencode
DEEP_EXTENSIONS = ('.png', '.tif', '.tiff')
# output formats whose EXIF block we write (TIFF keeps its tags in its own directory, which cv2 writes itself)
EXIF_EXTENSIONS = ('.jpeg', '.jpg', '.png', '.webp')
EXIF_ORIENTATION_TAG = 0x0112
JPEG_EXIF_HEADER = b'Exif\x00\x00'


@dataclass
class ImageOriginal:
	"""What the 8-bit BGR frame the processors work on does not hold of the target file: its 16-bit pixels and
	its EXIF. write_image puts them back where the output format can hold them. frame / alpha are the 8-bit
	versions the processors were given, to tell which values a processor changed."""
	frame: VisionFrame
	alpha: Optional[np.ndarray] = None
	deep_frame: Optional[np.ndarray] = None
	deep_alpha: Optional[np.ndarray] = None
	# TIFF-structured EXIF (no 'Exif' header); without the orientation tag when the decoder turned the pixels
	exif: Optional[bytes] = None


def check_image_size(width: int, height: int, label: str) -> None:
	"""Raise InputError for an image too large to process (label names the file or the output)."""
	if width <= 0 or height <= 0:
		raise InputError(f'image has no pixels ({width}x{height}): {label}')
	if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
		megapixels = width * height / 1e6
		raise InputError(
			f'image is too large ({width}x{height}, {megapixels:.0f} MP; the limit is {MAX_IMAGE_SIDE} px per side '
			f'and {MAX_IMAGE_PIXELS // 1_000_000} MP): {label}'
		)


def _jpeg_size(data: bytes) -> Optional[Size]:
	# walk the marker segments up to the first start-of-frame, which holds height and width
	position = 2
	while position + 9 <= len(data):
		if data[position] != 0xff:
			return None
		marker = data[position + 1]
		if marker == 0xff:
			position += 1
			continue
		if marker in (0x01, 0xd8) or 0xd0 <= marker <= 0xd7:
			position += 2
			continue
		if 0xc0 <= marker <= 0xcf and marker not in (0xc4, 0xc8, 0xcc):
			height, width = struct.unpack('>HH', data[position + 5:position + 9])
			return width, height
		if marker in (0xd9, 0xda):
			return None
		segment_length = struct.unpack('>H', data[position + 2:position + 4])[0]
		position += 2 + segment_length
	return None


def image_header_size(data: bytes) -> Optional[Size]:
	"""Width and height as the file's header declares them (PNG, JPEG, BMP, WebP), None when unknown.

	Read before decoding so a huge image is refused without allocating it.
	"""
	if data.startswith(b'\x89PNG\r\n\x1a\n') and data[12:16] == b'IHDR' and len(data) >= 24:
		width, height = struct.unpack('>II', data[16:24])
		return width, height
	if data.startswith(b'\xff\xd8'):
		return _jpeg_size(data)
	if data.startswith(b'BM') and len(data) >= 26:
		header_size = struct.unpack('<I', data[14:18])[0]
		if header_size == 12:
			width, height = struct.unpack('<HH', data[18:22])
			return width, height
		width, height = struct.unpack('<ii', data[18:26])
		# a negative height means rows are stored top-down
		return abs(width), abs(height)
	if data.startswith(b'RIFF') and data[8:12] == b'WEBP' and len(data) >= 30:
		chunk = data[12:16]
		if chunk == b'VP8 ':
			width, height = struct.unpack('<HH', data[26:30])
			return width & 0x3fff, height & 0x3fff
		if chunk == b'VP8L':
			bits = struct.unpack('<I', data[21:25])[0]
			return (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1
		if chunk == b'VP8X':
			return int.from_bytes(data[24:27], 'little') + 1, int.from_bytes(data[27:30], 'little') + 1
	return None


def _to_uint8(image: np.ndarray) -> np.ndarray:
	if image.dtype == np.uint8:
		return image
	if image.dtype == np.uint16:
		# 65535 / 257 = 255 exactly, so the full range maps onto the full range
		return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
	if np.issubdtype(image.dtype, np.floating):
		# float images (EXR, float TIFF) are taken as 0..1
		return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
	return np.clip(image, 0, 255).astype(np.uint8)


def split_alpha(image: np.ndarray) -> Tuple[VisionFrame, Optional[np.ndarray]]:
	"""Any decoded image → (BGR uint8, alpha uint8 HxW or None when absent or fully opaque)."""
	return _split_channels(_to_uint8(image))


def _split_channels(image: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
	# gray, gray + alpha, BGR or BGRA of any depth → BGR and alpha of that depth (None when fully opaque)
	opaque = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
	alpha: Optional[np.ndarray] = None
	if image.ndim == 2:
		frame = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
	elif image.shape[2] == 1:
		frame = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
	elif image.shape[2] == 2:
		frame = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
		alpha = image[:, :, 1]
	elif image.shape[2] == 3:
		frame = image
	else:
		frame = image[:, :, :3]
		alpha = image[:, :, 3]
	if alpha is not None and bool(np.all(alpha == opaque)):
		alpha = None
	frame = np.ascontiguousarray(frame)
	if alpha is not None:
		alpha = np.ascontiguousarray(alpha)
	return frame, alpha


def composite_on_black(frame: VisionFrame, alpha: Optional[np.ndarray]) -> VisionFrame:
	"""What a viewer shows for a transparent image on a black background."""
	if alpha is None:
		return frame
	weighted = frame.astype(np.uint16) * alpha[:, :, np.newaxis].astype(np.uint16) + 127
	return (weighted // 255).astype(np.uint8)


def _read_bytes(path: PathLike) -> np.ndarray:
	if not os.path.exists(path):
		raise InputError(f'file not found: {path}')
	if os.path.isdir(path):
		raise InputError(f'expected a file but found a directory: {path}')
	try:
		data = np.fromfile(path, dtype=np.uint8)
	except OSError as exception:
		raise InputError(f'cannot read {path}: {exception.strerror or exception}') from exception
	if data.size == 0:
		raise InputError(f'image file is empty (0 bytes): {path}')
	return data


def read_image_with_alpha(path: PathLike) -> Tuple[VisionFrame, Optional[np.ndarray]]:
	"""The image as BGR uint8 plus its alpha channel (None when there is none or it is fully opaque).

	The BGR values are the file's own, not composited, so writing them back with the alpha restores the image.
	"""
	return split_alpha(_decode_image(path, _read_bytes(path)))


def read_image_with_original(path: PathLike) -> Tuple[VisionFrame, Optional[np.ndarray], ImageOriginal]:
	"""read_image_with_alpha, plus what the 8-bit frame loses: the 16-bit pixels of a 16-bit file and its EXIF."""
	data = _read_bytes(path)
	image = _decode_image(path, data)
	frame, alpha = split_alpha(image)
	original = ImageOriginal(frame, alpha)
	if image.dtype == np.uint16:
		deep_frame, deep_alpha = _split_channels(image)
		original.deep_frame = np.ascontiguousarray(deep_frame)
		# alpha is kept at 16 bits only where the 8-bit read keeps one (a 16-bit alpha within 1/510 of opaque is opaque)
		original.deep_alpha = deep_alpha if alpha is not None else None
	head = data[:16].tobytes()
	exif = read_exif(data.tobytes())
	if exif is not None and head.startswith(b'\xff\xd8'):
		# the JPEG decoder turned the pixels upright by this tag; kept, it would turn them a second time
		exif = remove_exif_tag(exif, EXIF_ORIENTATION_TAG)
	original.exif = exif
	return frame, alpha, original


def _decode_image(path: PathLike, data: np.ndarray) -> np.ndarray:
	head = data[:65536].tobytes()
	declared_size = image_header_size(head)
	if declared_size is not None:
		check_image_size(declared_size[0], declared_size[1], str(path))
	# JPEG is decoded in colour mode so its EXIF orientation is applied (as viewers do); it has no alpha anyway.
	# Everything else is decoded unchanged to keep alpha and bit depth for split_alpha to normalise.
	flags = cv2.IMREAD_COLOR if head.startswith(b'\xff\xd8') else cv2.IMREAD_UNCHANGED
	try:
		image = cv2.imdecode(data, flags)
	except cv2.error:
		image = None
	if image is None or image.size == 0:
		raise InputError(f'cannot decode image (corrupt or not an image): {path}')
	check_image_size(image.shape[1], image.shape[0], str(path))
	return image


def read_image(path: PathLike) -> VisionFrame:
	"""The image as uint8 H x W x 3 BGR; transparent pixels are composited on black."""
	frame, alpha = read_image_with_alpha(path)
	return composite_on_black(frame, alpha)


def scale_resolution(size: Size, scale: float) -> Size:
	"""(width, height) scaled and rounded to whole pixels, never to even numbers: images keep their exact size."""
	width, height = size
	return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def resize_frame(frame: np.ndarray, size: Size) -> np.ndarray:
	"""Resize to (width, height): area averaging to shrink (no aliasing), bicubic to enlarge."""
	height, width = frame.shape[:2]
	if (width, height) == tuple(size):
		return frame
	shrinking = size[0] * size[1] < width * height
	return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def encode_params(extension: str, quality: int) -> List[int]:
	quality = int(min(max(quality, 1), 100))
	if extension in ('.jpg', '.jpeg'):
		return [cv2.IMWRITE_JPEG_QUALITY, quality]
	if extension == '.webp':
		return [cv2.IMWRITE_WEBP_QUALITY, quality]
	if extension == '.png':
		return [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
	return []


def supports_alpha(path: PathLike) -> bool:
	return get_file_extension(path) in ALPHA_EXTENSIONS


def encode_image(extension: str, frame: VisionFrame, quality: int = 80, alpha: Optional[np.ndarray] = None) -> bytes:
	if extension not in WRITABLE_EXTENSIONS:
		raise InputError(f'cannot write images of type {extension or "(none)"}; use one of {", ".join(WRITABLE_EXTENSIONS)}')
	image = frame
	if alpha is not None and extension in ALPHA_EXTENSIONS:
		image = np.dstack([frame, alpha])
	ok, buffer = cv2.imencode(extension, image, encode_params(extension, quality))
	if not ok:
		raise ProcessingError(f'could not encode the image as {extension}')
	return buffer.tobytes()


def write_bytes_atomically(path: PathLike, content: bytes) -> None:
	"""Write a file so it appears complete or not at all: a temporary name in the same directory, then os.replace.

	The temporary file is removed on any failure, KeyboardInterrupt included.
	"""
	try:
		replace_atomically(path, content)
	except OSError as exception:
		raise InputError(f'cannot write {path}: {exception.strerror or exception}') from exception


def write_image(path: PathLike, frame: VisionFrame, quality: int = 80, alpha: Optional[np.ndarray] = None, original: Optional[ImageOriginal] = None) -> None:
	"""Encode in memory, then write atomically. The frame is written at its exact size.

	alpha (uint8 HxW) is kept for formats that carry it (png, webp, tiff) and dropped otherwise. original (the
	target's, from read_image_with_original) brings back its 16 bits per channel (png, tiff) and its EXIF (jpg,
	png, webp) where the output format holds them.
	"""
	extension = get_file_extension(path)
	if original is None:
		write_bytes_atomically(path, encode_image(extension, frame, quality, alpha))
		return
	image, image_alpha = frame, alpha
	if original.deep_frame is not None:
		if extension in DEEP_EXTENSIONS and original.deep_frame.shape == frame.shape:
			image = restore_depth(frame, original.frame, original.deep_frame)
			if alpha is not None:
				image_alpha = restore_depth(alpha, original.alpha, original.deep_alpha) if original.deep_alpha is not None and original.alpha is not None else alpha.astype(np.uint16) * 257
		else:
			get_logger().info(f'the target has 16 bits per channel; {extension} holds 8, so the output has 8: {path}')
	content = encode_image(extension, image, quality, image_alpha)
	if original.exif is not None:
		if extension in EXIF_EXTENSIONS:
			content = insert_exif(extension, content, original.exif, (frame.shape[1], frame.shape[0]), alpha is not None)
		else:
			get_logger().info(f'the EXIF data of the target is not written into {extension} outputs: {path}')
	write_bytes_atomically(path, content)


def restore_depth(frame: np.ndarray, original_frame: np.ndarray, deep_frame: np.ndarray) -> np.ndarray:
	"""16 bits per channel for an 8-bit result: a value the processors left as it was keeps the file's exact 16-bit
	value, a changed one is the 8-bit result scaled by 257 (0..255 onto 0..65535, both ends exact). Either way
	the 16-bit value rounds back to the 8-bit result, so the output is that result at 8 bits and loses no
	precision the untouched pixels had."""
	if frame.shape != deep_frame.shape or original_frame.shape != deep_frame.shape:
		return frame.astype(np.uint16) * 257
	deep = frame.astype(np.uint16) * 257
	unchanged = frame == original_frame
	deep[unchanged] = deep_frame[unchanged]
	return deep


# ---- EXIF: read from JPEG / PNG / WebP, the orientation tag removed, written into JPEG / PNG / WebP --------------

def read_exif(data: bytes) -> Optional[bytes]:
	"""The TIFF-structured EXIF block of a JPEG (APP1 'Exif'), PNG (eXIf) or WebP (EXIF chunk); None without one."""
	if data.startswith(b'\xff\xd8'):
		return _jpeg_exif(data)
	if data.startswith(b'\x89PNG\r\n\x1a\n'):
		for chunk_type, start, end in _png_chunks(data):
			if chunk_type == b'eXIf':
				return _valid_exif(data[start:end])
		return None
	if data.startswith(b'RIFF') and data[8:12] == b'WEBP':
		for chunk_type, start, end in _riff_chunks(data):
			if chunk_type == b'EXIF':
				return _valid_exif(data[start:end])
	return None


def _valid_exif(block: bytes) -> Optional[bytes]:
	if block.startswith(JPEG_EXIF_HEADER):
		block = block[len(JPEG_EXIF_HEADER):]
	return block if block[:4] in (b'II*\x00', b'MM\x00*') and len(block) >= 8 else None


def _jpeg_exif(data: bytes) -> Optional[bytes]:
	position = 2
	while position + 4 <= len(data) and data[position] == 0xff:
		marker = data[position + 1]
		if marker == 0xff:
			position += 1
			continue
		if marker in (0x01, 0xd8) or 0xd0 <= marker <= 0xd7:
			position += 2
			continue
		if marker in (0xd9, 0xda):
			return None
		length = struct.unpack('>H', data[position + 2:position + 4])[0]
		payload = data[position + 4:position + 2 + length]
		if marker == 0xe1 and payload.startswith(JPEG_EXIF_HEADER):
			return _valid_exif(payload)
		position += 2 + length
	return None


def _png_chunks(data: bytes) -> List[Tuple[bytes, int, int]]:
	chunks = []
	position = 8
	while position + 12 <= len(data):
		length = struct.unpack('>I', data[position:position + 4])[0]
		chunks.append((data[position + 4:position + 8], position + 8, position + 8 + length))
		position += 12 + length
	return chunks


def _riff_chunks(data: bytes) -> List[Tuple[bytes, int, int]]:
	chunks = []
	position = 12
	while position + 8 <= len(data):
		length = struct.unpack('<I', data[position + 4:position + 8])[0]
		chunks.append((data[position:position + 4], position + 8, position + 8 + length))
		position += 8 + length + (length & 1)
	return chunks


def remove_exif_tag(exif: bytes, tag: int) -> bytes:
	"""The EXIF block without one tag of its first directory. The entries after it move up by one; every offset
	in the block stays valid because the directory keeps its size (12 bytes of padding follow it)."""
	order = {b'II': '<', b'MM': '>'}.get(exif[:2])
	if order is None or len(exif) < 8:
		return exif
	directory = struct.unpack(order + 'I', exif[4:8])[0]
	if directory + 2 > len(exif):
		return exif
	count = struct.unpack(order + 'H', exif[directory:directory + 2])[0]
	end = directory + 2 + count * 12
	if end + 4 > len(exif):
		return exif
	entries = [exif[directory + 2 + index * 12:directory + 14 + index * 12] for index in range(count)]
	kept = [entry for entry in entries if struct.unpack(order + 'H', entry[:2])[0] != tag]
	if len(kept) == len(entries):
		return exif
	block = struct.pack(order + 'H', len(kept)) + b''.join(kept) + exif[end:end + 4]
	block += bytes(end + 4 - directory - len(block))
	return exif[:directory] + block + exif[end + 4:]


def insert_exif(extension: str, content: bytes, exif: bytes, size: Size, has_alpha: bool) -> bytes:
	"""The encoded image with the EXIF block added (cv2.imencode writes none)."""
	if extension in ('.jpg', '.jpeg'):
		payload = JPEG_EXIF_HEADER + exif
		if len(payload) + 2 > 0xffff:
			get_logger().info('the EXIF data of the target is too large for a JPEG segment; not written')
			return content
		position = 2
		# after the JFIF segment when there is one (JFIF wants to be first)
		if content[2:4] == b'\xff\xe0':
			position += 2 + struct.unpack('>H', content[4:6])[0]
		segment = b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload
		return content[:position] + segment + content[position:]
	if extension == '.png':
		# before the first IDAT, where the PNG extensions put eXIf
		first_data = next((start - 8 for chunk_type, start, _ in _png_chunks(content) if chunk_type == b'IDAT'), None)
		if first_data is None:
			return content
		chunk = struct.pack('>I', len(exif)) + b'eXIf' + exif + struct.pack('>I', zlib.crc32(b'eXIf' + exif))
		return content[:first_data] + chunk + content[first_data:]
	if extension == '.webp':
		return _webp_with_exif(content, exif, size, has_alpha)
	return content


def _webp_with_exif(content: bytes, exif: bytes, size: Size, has_alpha: bool) -> bytes:
	# the extended format (VP8X) announces the EXIF chunk with a flag; the simple formats have no place for it
	chunks = [(chunk_type, content[start:end]) for chunk_type, start, end in _riff_chunks(content)]
	if not chunks or chunks[0][0] != b'VP8X':
		flags = 0x10 if has_alpha else 0
		canvas = (size[0] - 1).to_bytes(3, 'little') + (size[1] - 1).to_bytes(3, 'little')
		chunks.insert(0, (b'VP8X', bytes([flags, 0, 0, 0]) + canvas))
	header = bytearray(chunks[0][1])
	header[0] |= 0x08
	chunks[0] = (b'VP8X', bytes(header))
	chunks = [chunk for chunk in chunks if chunk[0] != b'EXIF'] + [(b'EXIF', exif)]
	body = b'WEBP' + b''.join(chunk_type + struct.pack('<I', len(data)) + data + bytes(len(data) & 1) for chunk_type, data in chunks)
	return b'RIFF' + struct.pack('<I', len(body)) + body
