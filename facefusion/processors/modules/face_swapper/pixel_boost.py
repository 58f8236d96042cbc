"""Pixel boost: run a model of size S on a face crop of size P = k·S by strided (polyphase) subsampling.

The P×P crop is split into k² sub-images of S×S; sub-image (i, j) holds the pixels at rows r·k + i and columns
c·k + j, so every sub-image is a slightly shifted, full-face, low-resolution view the model can swap. Exploding the
swapped sub-images re-interleaves them into P×P. This is 3.5.0's scheme; sub-image order is i·k + j.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from facefusion.errors import FaceFusionError
from facefusion.types import Size


def parse_size(value: Union[str, Size]) -> Size:
	"""'512x512' -> (512, 512); a (w, h) pair passes through."""
	if isinstance(value, str):
		width, _, height = value.lower().partition('x')
		return int(width), int(height or width)
	return int(value[0]), int(value[1])


def boost_factor(boost_size: Size, model_size: Size) -> int:
	"""k = P // S, refusing sizes the subsampling cannot split evenly (e.g. 3.5.0's 384x384 for a 256 model)."""
	boost_width, boost_height = boost_size
	model_width, model_height = model_size
	factor = boost_width // model_width
	if factor < 1 or boost_width != factor * model_width or boost_height != factor * model_height:
		raise FaceFusionError(
			'face swapper pixel boost ' + str(boost_width) + 'x' + str(boost_height) + ' is not a multiple of the model size '
			+ str(model_width) + 'x' + str(model_height)
		)
	return factor


def implode(crop: np.ndarray, model_size: Size) -> np.ndarray:
	"""P×P(×C) crop -> k²×S×S(×C) sub-images, sub-image i·k + j holding rows r·k + i and columns c·k + j."""
	model_width, model_height = model_size
	factor = boost_factor((crop.shape[1], crop.shape[0]), model_size)
	channels = crop.shape[2:]
	# axes after the reshape: (r, i, c, j, channels...) -> (i, j, r, c, channels...)
	grid = crop.reshape(model_height, factor, model_width, factor, *channels)
	order = (1, 3, 0, 2) + tuple(range(4, grid.ndim))
	return grid.transpose(order).reshape(factor * factor, model_height, model_width, *channels)


def explode(sub_images: Union[np.ndarray, Sequence[np.ndarray]], boost_size: Size) -> np.ndarray:
	"""k²×S×S(×C) sub-images -> the interleaved P×P(×C) crop (the inverse of implode)."""
	stacked = np.asarray(sub_images)
	model_height, model_width = stacked.shape[1:3]
	factor = boost_factor(boost_size, (model_width, model_height))
	if stacked.shape[0] != factor * factor:
		raise ValueError('explode needs ' + str(factor * factor) + ' sub-images, got ' + str(stacked.shape[0]))
	channels = stacked.shape[3:]
	# axes (i, j, r, c, channels...) -> (r, i, c, j, channels...)
	grid = stacked.reshape(factor, factor, model_height, model_width, *channels)
	order = (2, 0, 3, 1) + tuple(range(4, grid.ndim))
	return grid.transpose(order).reshape(model_height * factor, model_width * factor, *channels)


def sub_image_count(boost_size: Size, model_size: Size) -> int:
	return boost_factor(boost_size, model_size) ** 2
