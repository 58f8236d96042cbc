"""Pixel boost: run a model of size S on a face crop of size P = k·S by strided (polyphase) subsampling.

The P×P crop is split into k² sub-images of S×S; sub-image (i, j) holds the pixels at rows r·k + i and columns
c·k + j, so every sub-image is a slightly shifted, full-face, low-resolution view the model can swap. Exploding the
swapped sub-images re-interleaves them into P×P. This is 3.5.0's scheme; sub-image order is i·k + j.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from facefusion.gpu import array_ops
# one implementation for NumPy and CuPy: k = P // S (refusing sizes that cannot be split) and the (i, j) layout
from facefusion.gpu.array_ops import boost_factor, explode_batch, implode, implode_batch
from facefusion.types import Size

__all__ = ['parse_size', 'boost_factor', 'implode', 'explode', 'implode_batch', 'explode_batch', 'sub_image_count']


def parse_size(value: Union[str, Size]) -> Size:
	"""'512x512' -> (512, 512); a (w, h) pair passes through."""
	if isinstance(value, str):
		width, _, height = value.lower().partition('x')
		return int(width), int(height or width)
	return int(value[0]), int(value[1])


def explode(sub_images: Union[np.ndarray, Sequence[np.ndarray]], boost_size: Size) -> np.ndarray:
	"""k²×S×S(×C) sub-images (an array or a list of them) -> the interleaved P×P(×C) crop."""
	return array_ops.explode(sub_images if hasattr(sub_images, 'shape') else np.asarray(sub_images), boost_size)


def sub_image_count(boost_size: Size, model_size: Size) -> int:
	return boost_factor(boost_size, model_size) ** 2
