"""What the enhancer models are fed and what comes back, written once against the array module of the crops.

In 3.5.0's order and precision: the crop goes in as RGB, x / 255 then (x - 0.5) / 0.5 in float64, cast to float32;
the output is clipped to -1..1, mapped to 0..1, times 255, rounded and cast to uint8 BGR in float32. `weight` is a
one-element float64 array whatever the batch (codeformer reads it as one fidelity for the whole call).
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from facefusion.gpu.array_ops import prepare_crops
from facefusion.gpu.device import Array, array_module_of, is_device_array

ENHANCER_MEAN = (0.5, 0.5, 0.5)
ENHANCER_STD = (0.5, 0.5, 0.5)


def prepare_enhancer_input(crops: Array) -> Array:
	"""N×S×S×3 BGR uint8 crops -> N×3×S×S float32 in -1..1, RGB."""
	return prepare_crops(crops, ENHANCER_MEAN, ENHANCER_STD)


def enhancer_weight_input(face_enhancer_weight: float) -> np.ndarray:
	"""The `weight` input: shape (1,), float64 (cast later to whatever the model declares)."""
	return np.array([face_enhancer_weight]).astype(np.float64)


def normalize_enhancer_output(outputs: Array) -> Array:
	"""N×3×S×S model output (-1..1) -> N×S×S×3 uint8 BGR, rounded half to even as NumPy's round."""
	xp = array_module_of(outputs)
	values = xp.clip(outputs.astype(xp.float32, copy=False), xp.float32(-1), xp.float32(1))
	values = (values + xp.float32(1)) / xp.float32(2)
	values = values.transpose(0, 2, 3, 1)
	values = xp.round(values * xp.float32(255))
	return xp.ascontiguousarray(values.astype(xp.uint8)[..., ::-1])


def blend_factors(face_enhancer_blend: int) -> Tuple[float, float]:
	"""(weight of the frame before, weight of the enhanced paste) as 3.5.0 derives them from the percentage."""
	enhanced = 1 - (1 - face_enhancer_blend / 100)
	return 1 - enhanced, enhanced


def blend_regions(before: Array, after: Array, face_enhancer_blend: int) -> Array:
	"""before × (1 - b) + after × b, rounded and saturated to uint8 (cv2.addWeighted's result on the CPU; under
	CuPy the same float32 formula, within one level of it)."""
	alpha, beta = blend_factors(face_enhancer_blend)
	if not is_device_array(before):
		return cv2.addWeighted(before, alpha, after, beta, 0)
	xp = array_module_of(before)
	values = before.astype(xp.float32) * xp.float32(alpha) + after.astype(xp.float32) * xp.float32(beta)
	return xp.clip(xp.rint(values), 0, 255).astype(xp.uint8)
