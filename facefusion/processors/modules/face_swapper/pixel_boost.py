"""Pixel boost: run a model of size S on a face crop of size P = k·S by strided (polyphase) subsampling.

The P×P crop is split into k² sub-images of S×S; sub-image (i, j) holds the pixels at rows r·k + i and columns
c·k + j, so every sub-image is a slightly shifted, full-face, low-resolution view the model can swap. Exploding the
swapped sub-images re-interleaves them into P×P. This is 3.5.0's scheme; sub-image order is i·k + j.

Only reshapes and transposes: the same code runs on NumPy and CuPy arrays.
"""
from __future__ import annotations

from typing import Union

from facefusion.errors import FaceFusionError
from facefusion.gpu.device import Array
from facefusion.types import Size


def parse_size(value: Union[str, Size]) -> Size:
	"""'512x512' -> (512, 512); a (w, h) pair passes through."""
	if isinstance(value, str):
		width, _, height = value.lower().partition('x')
		return int(width), int(height or width)
	return int(value[0]), int(value[1])


def boost_factor(boost_size: Size, model_size: Size) -> int:
	"""k = P // S, refusing sizes that cannot be split evenly."""
	boost_width, boost_height = int(boost_size[0]), int(boost_size[1])
	model_width, model_height = int(model_size[0]), int(model_size[1])
	factor = boost_width // model_width
	if factor < 1 or boost_width != factor * model_width or boost_height != factor * model_height:
		raise FaceFusionError(
			'face swapper pixel boost ' + str(boost_width) + 'x' + str(boost_height) + ' is not a multiple of the model size '
			+ str(model_width) + 'x' + str(model_height)
		)
	return factor


def implode_batch(crops: Array, model_size: Size) -> Array:
	"""N×P×P(×C) crops -> (N·k²)×S×S(×C): face-major, then sub-image i·k + j (one reshape, one copy, any N)."""
	count = int(crops.shape[0])
	model_width, model_height = int(model_size[0]), int(model_size[1])
	factor = boost_factor((crops.shape[2], crops.shape[1]), model_size)
	channels = tuple(crops.shape[3:])
	# axes (n, r, i, c, j, channels...) -> (n, i, j, r, c, channels...)
	grid = crops.reshape(count, model_height, factor, model_width, factor, *channels)
	order = (0, 2, 4, 1, 3) + tuple(range(5, grid.ndim))
	return grid.transpose(order).reshape(count * factor * factor, model_height, model_width, *channels)


def explode_batch(sub_images: Array, boost_size: Size) -> Array:
	"""(N·k²)×S×S(×C) -> N×P×P(×C): the inverse of implode_batch."""
	model_height, model_width = int(sub_images.shape[1]), int(sub_images.shape[2])
	factor = boost_factor(boost_size, (model_width, model_height))
	if sub_images.shape[0] % (factor * factor):
		raise ValueError('explode_batch needs a multiple of ' + str(factor * factor) + ' sub-images, got ' + str(sub_images.shape[0]))
	count = int(sub_images.shape[0]) // (factor * factor)
	channels = tuple(sub_images.shape[3:])
	# axes (n, i, j, r, c, channels...) -> (n, r, i, c, j, channels...)
	grid = sub_images.reshape(count, factor, factor, model_height, model_width, *channels)
	order = (0, 3, 1, 4, 2) + tuple(range(5, grid.ndim))
	return grid.transpose(order).reshape(count, model_height * factor, model_width * factor, *channels)
