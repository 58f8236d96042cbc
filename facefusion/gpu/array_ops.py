"""Per-pixel pre- and postprocessing of the swapper, written once against the array module of its inputs.

These are the swapper's only implementation (`processors/modules/face_swapper/model_types.py` and `pixel_boost.py`
call them); under CuPy they run the same operations on the GPU. Bit equality across the two modules holds because every step is a
separate elementwise operation with IEEE rounding (no fused multiply-add): float64 for the input preparation as
3.5.0 does, float32 for the output. `prepare_crops(..., exact=False)` trades that for float32 math (at most one
unit in the last place apart), which is cheaper on consumer GPUs with slow float64.

Layouts: crops are N×H×W×3 BGR (uint8 0..255, or float 0..255), model tensors N×3×H×W RGB float32.
"""
from __future__ import annotations

from functools import reduce
from typing import Any, Sequence, Tuple, Union

import numpy as np

from facefusion.errors import FaceFusionError
from facefusion.gpu.device import array_module_of

Array = Any
Size = Tuple[int, int]


def bgr_to_rgb(frames: Array) -> Array:
	"""Reverses the last axis (a view; BGR and RGB are each other's reverse)."""
	return frames[..., ::-1]


def rgb_to_bgr(frames: Array) -> Array:
	return frames[..., ::-1]


def to_nchw(batch: Array) -> Array:
	"""N×H×W×C -> N×C×H×W, contiguous (what a model input must be)."""
	xp = array_module_of(batch)
	return xp.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def to_nhwc(batch: Array) -> Array:
	xp = array_module_of(batch)
	return xp.ascontiguousarray(batch.transpose(0, 2, 3, 1))


def stack_crops(crops: Sequence[Array]) -> Array:
	"""A list of H×W×3 crops (all on one device) -> N×H×W×3."""
	xp = array_module_of(*crops)
	return xp.stack([xp.asarray(crop) for crop in crops])


def divide_by_255(values: Array) -> Array:
	"""values / 255.0 with NumPy's promotion spelled out, so CuPy cannot differ: integers divide in float64, floats
	in their own precision (NumPy 2 treats the Python 255.0 as a weak scalar)."""
	# dtypes are NumPy dtypes under both modules, so NumPy answers the type questions
	if np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_:
		return values.astype(np.float64) / np.float64(255)
	return values / values.dtype.type(255)


def prepare_crops(crops: Array, mean: Sequence[float], std: Sequence[float], exact: bool = True) -> Array:
	"""N×H×W×3 BGR crops (0..255) -> N×3×H×W float32 model input: RGB, / 255, (x - mean) / std."""
	xp = array_module_of(crops)
	if exact:
		# the order and precision of model_types.prepare_target: divide, subtract, divide in float64, then float32
		values = divide_by_255(crops[..., ::-1])
		values = (values - xp.asarray(mean, dtype=xp.float64)) / xp.asarray(std, dtype=xp.float64)
		return xp.ascontiguousarray(values.transpose(0, 3, 1, 2), dtype=xp.float32)
	scale = xp.float32(1.0 / 255.0)
	values = crops[..., ::-1].astype(xp.float32) * scale
	values = (values - xp.asarray(mean, dtype=xp.float32)) / xp.asarray(std, dtype=xp.float32)
	return xp.ascontiguousarray(values.transpose(0, 3, 1, 2))


def prepare_source_image(crop: Array) -> Array:
	"""One BGR source crop -> 1×3×H×W float32 RGB / 255 (blendswap, uniface: no mean / std)."""
	xp = array_module_of(crop)
	values = divide_by_255(crop[..., ::-1])
	return xp.ascontiguousarray(values.transpose(2, 0, 1)[xp.newaxis], dtype=xp.float32)


def normalize_outputs(outputs: Array, denormalise: bool, mean: Sequence[float], std: Sequence[float]) -> Array:
	"""N×3×H×W model output -> N×H×W×3 float32 BGR 0..255, not rounded (paste-back truncates once, at the end).

	denormalise: the output is in the input's (x - mean) / std space (ghost, hififace, hyperswap, uniface); the other
	models return 0..1 directly."""
	xp = array_module_of(outputs)
	values = outputs.astype(xp.float32, copy=False).transpose(0, 2, 3, 1)
	if denormalise:
		# two separate operations, as NumPy evaluates them: a fused multiply-add would round differently
		values = values * xp.asarray(std, dtype=xp.float32)
		values = values + xp.asarray(mean, dtype=xp.float32)
	values = xp.clip(values, xp.float32(0), xp.float32(1))
	return xp.ascontiguousarray(values[..., ::-1] * xp.float32(255))


def normalize_outputs_for(outputs: Array, swapper_type: str, mean: Sequence[float], std: Sequence[float]) -> Array:
	"""normalize_outputs with the denormalisation decided by the swapper type, as model_types.normalize_output."""
	# imported here: the swapper package imports this module, so a top-level import would be circular
	from facefusion.processors.modules.face_swapper.model_types import DENORMALISED_OUTPUT_TYPES
	return normalize_outputs(outputs, swapper_type in DENORMALISED_OUTPUT_TYPES, mean, std)


def boost_factor(boost_size: Size, model_size: Size) -> int:
	"""k = P // S; the same refusal as pixel_boost.boost_factor for sizes that cannot be split evenly."""
	boost_width, boost_height = int(boost_size[0]), int(boost_size[1])
	model_width, model_height = int(model_size[0]), int(model_size[1])
	factor = boost_width // model_width
	if factor < 1 or boost_width != factor * model_width or boost_height != factor * model_height:
		raise FaceFusionError(
			'face swapper pixel boost ' + str(boost_width) + 'x' + str(boost_height) + ' is not a multiple of the model size '
			+ str(model_width) + 'x' + str(model_height)
		)
	return factor


def implode(crop: Array, model_size: Size) -> Array:
	"""P×P(×C) crop -> k²×S×S(×C) sub-images; sub-image i·k + j holds rows r·k + i and columns c·k + j."""
	model_width, model_height = int(model_size[0]), int(model_size[1])
	factor = boost_factor((crop.shape[1], crop.shape[0]), model_size)
	channels = tuple(crop.shape[2:])
	# axes after the reshape: (r, i, c, j, channels...) -> (i, j, r, c, channels...)
	grid = crop.reshape(model_height, factor, model_width, factor, *channels)
	order = (1, 3, 0, 2) + tuple(range(4, grid.ndim))
	return grid.transpose(order).reshape(factor * factor, model_height, model_width, *channels)


def explode(sub_images: Array, boost_size: Size) -> Array:
	"""k²×S×S(×C) sub-images -> the interleaved P×P(×C) crop (the inverse of implode)."""
	model_height, model_width = int(sub_images.shape[1]), int(sub_images.shape[2])
	factor = boost_factor(boost_size, (model_width, model_height))
	if sub_images.shape[0] != factor * factor:
		raise ValueError('explode needs ' + str(factor * factor) + ' sub-images, got ' + str(sub_images.shape[0]))
	channels = tuple(sub_images.shape[3:])
	# axes (i, j, r, c, channels...) -> (r, i, c, j, channels...)
	grid = sub_images.reshape(factor, factor, model_height, model_width, *channels)
	order = (2, 0, 3, 1) + tuple(range(4, grid.ndim))
	return grid.transpose(order).reshape(model_height * factor, model_width * factor, *channels)


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


def combine_masks(masks: Sequence[Array]) -> Array:
	"""Element-wise minimum, clipped to 0..1, float32: face_masker.combine_masks under any array module."""
	if not masks:
		raise ValueError('combine_masks needs at least one mask')
	xp = array_module_of(*masks)
	combined = reduce(xp.minimum, [xp.asarray(mask) for mask in masks])
	return xp.clip(combined, 0, 1).astype(xp.float32)


def as_uint8(values: Array) -> Array:
	"""Float pixels -> uint8 by truncation (paste-back's rule), clipped first so out-of-range floats cannot wrap."""
	xp = array_module_of(values)
	return xp.clip(values, 0, 255).astype(xp.uint8)


def pixel_count(frame_or_size: Union[Array, Size]) -> int:
	if isinstance(frame_or_size, tuple):
		return int(frame_or_size[0]) * int(frame_or_size[1])
	return int(frame_or_size.shape[0]) * int(frame_or_size.shape[1])
