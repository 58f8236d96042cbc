"""Image reading and writing (facefusion/vision.py) and media-kind checks (facefusion/filesystem.py)."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion import filesystem, vision
from facefusion.errors import InputError


def write_png(path: Path, image: np.ndarray) -> Path:
	assert cv2.imwrite(str(path), image)
	return path


def gradient(height: int = 24, width: int = 32) -> np.ndarray:
	rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
	columns = np.linspace(0, 255, width, dtype=np.float32)[None, :]
	blue = (rows + 0 * columns).astype(np.uint8)
	green = (columns + 0 * rows).astype(np.uint8)
	red = np.full((height, width), 128, np.uint8)
	return np.dstack([blue, green, red])


# ---- reading -------------------------------------------------------------------------------------------------------

def test_read_color_image_as_bgr(data_dir: Path) -> None:
	frame = vision.read_image(data_dir / 'obama.jpg')
	assert frame.dtype == np.uint8
	assert frame.shape == (1137, 910, 3)


def test_grayscale_reads_as_three_channel_bgr(tmp_path: Path) -> None:
	gray = gradient()[:, :, 1]
	frame = vision.read_image(write_png(tmp_path / 'gray.png', gray))
	assert frame.shape == (24, 32, 3)
	assert frame.dtype == np.uint8
	for channel in range(3):
		np.testing.assert_array_equal(frame[:, :, channel], gray)


def test_rgba_reads_as_bgr_composited_on_black(tmp_path: Path) -> None:
	bgr = gradient()
	alpha = np.zeros(bgr.shape[:2], np.uint8)
	alpha[:, 16:] = 255
	alpha[:, 8:16] = 128
	frame = vision.read_image(write_png(tmp_path / 'rgba.png', np.dstack([bgr, alpha])))
	assert frame.shape == (24, 32, 3)
	np.testing.assert_array_equal(frame[:, 16:], bgr[:, 16:])
	assert not frame[:, :8].any()
	expected_half = (bgr[:, 8:16].astype(np.uint16) * 128 + 127) // 255
	np.testing.assert_array_equal(frame[:, 8:16], expected_half.astype(np.uint8))


def test_rgba_alpha_is_available_with_original_colours(tmp_path: Path) -> None:
	bgr = gradient()
	alpha = np.full(bgr.shape[:2], 200, np.uint8)
	frame, read_alpha = vision.read_image_with_alpha(write_png(tmp_path / 'rgba.png', np.dstack([bgr, alpha])))
	np.testing.assert_array_equal(frame, bgr)
	np.testing.assert_array_equal(read_alpha, alpha)


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
	bgr = gradient()
	alpha = np.full(bgr.shape[:2], 255, np.uint8)
	frame, read_alpha = vision.read_image_with_alpha(write_png(tmp_path / 'opaque.png', np.dstack([bgr, alpha])))
	assert read_alpha is None
	np.testing.assert_array_equal(frame, bgr)


def test_sixteen_bit_reads_as_eight_bit(tmp_path: Path) -> None:
	image = gradient().astype(np.uint16) * 257
	frame = vision.read_image(write_png(tmp_path / 'deep.png', image))
	assert frame.dtype == np.uint8
	np.testing.assert_array_equal(frame, gradient())


def test_unicode_path(tmp_path: Path) -> None:
	directory = tmp_path / 'fotos_ñandú_写真'
	directory.mkdir()
	path = directory / 'retrato_é.png'
	vision.write_image(path, gradient())
	np.testing.assert_array_equal(vision.read_image(path), gradient())


def test_missing_file_is_input_error(tmp_path: Path) -> None:
	with pytest.raises(InputError, match='not found'):
		vision.read_image(tmp_path / 'absent.png')


def test_zero_byte_file_is_input_error(tmp_path: Path) -> None:
	path = tmp_path / 'empty.jpg'
	path.write_bytes(b'')
	with pytest.raises(InputError, match='empty'):
		vision.read_image(path)


def test_undecodable_file_is_input_error(tmp_path: Path) -> None:
	path = tmp_path / 'broken.jpg'
	path.write_bytes(b'\xff\xd8\xff\xe0' + os.urandom(64))
	with pytest.raises(InputError, match='cannot decode') as raised:
		vision.read_image(path)
	assert '\n' not in raised.value.message


def test_huge_image_is_refused(tmp_path: Path) -> None:
	path = write_png(tmp_path / 'wide.png', np.zeros((4, vision.MAX_IMAGE_SIDE + 1, 3), np.uint8))
	with pytest.raises(InputError, match='too large'):
		vision.read_image(path)


def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
	# a tiny PNG whose header claims 30000 x 30000: refused from the header, nothing is allocated
	data = bytearray((write_png(tmp_path / 'small.png', gradient(2, 2))).read_bytes())
	data[16:24] = struct.pack('>II', 30000, 30000)
	data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
	path = tmp_path / 'liar.png'
	path.write_bytes(bytes(data))
	with pytest.raises(InputError, match='too large'):
		vision.read_image(path)


def test_pixel_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setattr(vision, 'MAX_IMAGE_PIXELS', 100)
	with pytest.raises(InputError, match='too large'):
		vision.read_image(write_png(tmp_path / 'many.png', gradient(11, 10)))


@pytest.mark.parametrize('extension', ['.png', '.jpg', '.bmp', '.webp', '.tif'])
def test_header_size_matches_decoder(tmp_path: Path, extension: str) -> None:
	path = tmp_path / ('image' + extension)
	assert cv2.imwrite(str(path), gradient(21, 37))
	size = vision.image_header_size(path.read_bytes()[:65536])
	if extension == '.tif':
		assert size is None
	else:
		assert size == (37, 21)


# ---- writing -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('extension', ['.png', '.jpg', '.bmp', '.webp', '.tiff'])
def test_write_keeps_exact_odd_size(tmp_path: Path, extension: str) -> None:
	path = tmp_path / ('odd' + extension)
	vision.write_image(path, gradient(661, 1127))
	assert cv2.imread(str(path)).shape == (661, 1127, 3)


def test_write_is_lossless_for_png_and_keeps_alpha(tmp_path: Path) -> None:
	path = tmp_path / 'alpha.png'
	alpha = np.full((24, 32), 90, np.uint8)
	vision.write_image(path, gradient(), alpha=alpha)
	frame, read_alpha = vision.read_image_with_alpha(path)
	np.testing.assert_array_equal(frame, gradient())
	np.testing.assert_array_equal(read_alpha, alpha)


def test_jpeg_quality_changes_size(tmp_path: Path, data_dir: Path) -> None:
	frame = vision.read_image(data_dir / 'obama.jpg')
	vision.write_image(tmp_path / 'low.jpg', frame, quality=10)
	vision.write_image(tmp_path / 'high.jpg', frame, quality=95)
	assert (tmp_path / 'low.jpg').stat().st_size < (tmp_path / 'high.jpg').stat().st_size


def test_write_leaves_no_temp_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	def failing_replace(source: str, destination: str) -> None:
		raise OSError(28, 'No space left on device')
	monkeypatch.setattr(os, 'replace', failing_replace)
	with pytest.raises(InputError, match='cannot write'):
		vision.write_image(tmp_path / 'out.png', gradient())
	assert list(tmp_path.iterdir()) == []


def test_write_leaves_no_temp_file_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	def interrupted_replace(source: str, destination: str) -> None:
		raise KeyboardInterrupt
	monkeypatch.setattr(os, 'replace', interrupted_replace)
	with pytest.raises(KeyboardInterrupt):
		vision.write_image(tmp_path / 'out.png', gradient())
	assert list(tmp_path.iterdir()) == []


def test_write_replaces_existing_file_whole(tmp_path: Path) -> None:
	path = tmp_path / 'out.png'
	path.write_bytes(b'old content')
	vision.write_image(path, gradient())
	np.testing.assert_array_equal(vision.read_image(path), gradient())
	assert [item.name for item in tmp_path.iterdir()] == ['out.png']


def test_write_unknown_extension_writes_nothing(tmp_path: Path) -> None:
	with pytest.raises(InputError, match='cannot write images'):
		vision.write_image(tmp_path / 'out.xyz', gradient())
	assert list(tmp_path.iterdir()) == []


def test_write_bare_file_name_goes_to_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.chdir(tmp_path)
	vision.write_image('bare.png', gradient())
	assert (tmp_path / 'bare.png').is_file()


def test_scale_resolution_never_rounds_to_even() -> None:
	assert vision.scale_resolution((1127, 661), 1.0) == (1127, 661)
	assert vision.scale_resolution((1127, 661), 2.0) == (2254, 1322)
	assert vision.scale_resolution((3, 3), 0.25) == (1, 1)


# ---- media kinds ----------------------------------------------------------------------------------------------------

def test_media_status(tmp_path: Path, data_dir: Path) -> None:
	assert filesystem.media_status(data_dir / 'obama.jpg') == 'image'
	assert filesystem.is_image(str(data_dir / 'obama.jpg'))
	assert filesystem.media_status(tmp_path / 'absent.jpg') == 'missing'
	assert filesystem.media_status(tmp_path) == 'directory'
	empty = tmp_path / 'empty.png'
	empty.write_bytes(b'')
	assert filesystem.media_status(empty) == 'empty'
	text = tmp_path / 'notes.jpg'
	text.write_text('not an image at all')
	assert filesystem.media_status(text) == 'mismatch'
	assert not filesystem.is_image(str(text))
	other = tmp_path / 'notes.txt'
	other.write_text('plain text')
	assert filesystem.media_status(other) == 'unsupported'


@pytest.mark.parametrize('head, kind', [
	(b'\xff\xd8\xff\xe0\x00\x10JFIF', 'image'),
	(b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR', 'image'),
	(b'RIFF\x00\x00\x00\x00WEBPVP8 ', 'image'),
	(b'\x00\x00\x00\x20ftypisom\x00\x00\x02\x00', 'video'),
	(b'\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00', 'audio'),
	(b'\x1a\x45\xdf\xa3\x9f\x42\x86\x81', 'video'),
	(b'RIFF\x00\x00\x00\x00AVI LIST', 'video'),
	(b'RIFF\x00\x00\x00\x00WAVEfmt ', 'audio'),
	(b'ID3\x04\x00\x00\x00\x00\x00\x00', 'audio'),
	(b'hello world, not media', None),
])
def test_sniff_media_kind(head: bytes, kind: str) -> None:
	assert filesystem.sniff_media_kind(head) == kind


def test_file_name_and_extension() -> None:
	assert filesystem.get_file_name('a/b/clip.final.MP4') == 'clip.final'
	assert filesystem.get_file_extension('a/b/clip.final.MP4') == '.mp4'
	assert filesystem.get_file_extension('noextension') == ''
	assert str(filesystem.parent_directory('out.jpg')) == '.'
