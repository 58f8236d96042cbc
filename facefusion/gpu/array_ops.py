"""Per-pixel pre- and postprocessing of the swapper, written once against the array module of its inputs.

These are the swapper's only implementation; under CuPy they run the same operations on the GPU. Bit equality across
the two modules holds because every step is a separate elementwise operation with IEEE rounding (no fused
multiply-add): float64 for the input preparation as 3.5.0 does, float32 for the output. `prepare_crops(...,
exact=False)` trades that for float32 math (at most one unit in the last place apart), which is cheaper on consumer
GPUs with slow float64.

Layouts: crops are N×H×W×3 BGR (uint8 0..255, or float 0..255), model tensors N×3×H×W RGB float32.
"""
from __future__ import annotations

from functools import reduce
from typing import Sequence

import numpy as np

from facefusion.gpu.device import Array, array_module_of


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
		# 3.5.0's order and precision: divide, subtract, divide in float64, then float32
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


def combine_masks(masks: Sequence[Array]) -> Array:
	"""A face's crop mask from its masks: the element-wise minimum (a pixel is pasted only as much as every requested
	mask allows), clipped to 0..1, float32, under any array module."""
	if not masks:
		raise ValueError('combine_masks needs at least one mask')
	xp = array_module_of(*masks)
	combined = reduce(xp.minimum, [xp.asarray(mask) for mask in masks])
	return xp.clip(combined, 0, 1).astype(xp.float32)
