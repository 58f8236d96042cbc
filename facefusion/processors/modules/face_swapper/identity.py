"""How each of the seven swapper types of 3.5.0 takes its identity (the model's `source` input): a cropped source
image (blendswap, uniface) or an embedding, in the arcface space or converted into the model's own, mixed with the
target face's embedding by the identity weight. Pure array functions; sessions are called elsewhere.

Arithmetic follows 3.5.0 step by step so the tensors fed to a model equal 3.5.0's to the last bit, not merely to a
tolerance.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from facefusion.types import Embedding

# fed a cropped source image instead of an identity embedding
IMAGE_SOURCE_TYPES = frozenset({'blendswap', 'uniface'})
# the arcface embedding goes through a crossface_* converter into the model's own identity space
CONVERTED_SOURCE_TYPES = frozenset({'ghost', 'hififace', 'simswap'})
# the identity weight mixes in the target's embedding L2-normalised for these, raw for ghost
NORMALISED_TARGET_TYPES = frozenset({'hififace', 'hyperswap', 'inswapper', 'simswap'})


def uses_source_image(swapper_type: str) -> bool:
	return swapper_type in IMAGE_SOURCE_TYPES


def uses_converter(swapper_type: str) -> bool:
	return swapper_type in CONVERTED_SOURCE_TYPES


def prepare_source_embedding(
	swapper_type: str,
	embedding: Embedding,
	embedding_norm: Embedding,
	converted: Optional[Embedding] = None,
	emap: Optional[np.ndarray] = None
) -> np.ndarray:
	"""The 1×512 identity fed as `source`, before the identity weight.

	ghost: the converter's output as is; hififace, simswap: the converter's output L2-normalised;
	hyperswap: the normalised arcface embedding; inswapper: (embedding · emap) / ‖embedding‖.
	"""
	if swapper_type == 'hyperswap':
		return embedding_norm.reshape(1, -1).astype(np.float32)
	if swapper_type == 'inswapper':
		if emap is None:
			raise ValueError('inswapper needs the emap matrix of its model file')
		raw = embedding.reshape(1, -1)
		return (np.dot(raw, emap) / np.linalg.norm(raw)).astype(np.float32)
	if swapper_type in CONVERTED_SOURCE_TYPES:
		if converted is None:
			raise ValueError(swapper_type + ' needs the output of its embedding converter')
		converted = converted.ravel()
		if swapper_type == 'ghost':
			return converted.reshape(1, -1).astype(np.float32)
		return (converted / np.linalg.norm(converted)).reshape(1, -1).astype(np.float32)
	raise ValueError(swapper_type + ' takes a source image, not an embedding')


def identity_weight(weight: float) -> np.float32:
	"""--face-swapper-weight 0..1 -> the mixing factor w, 0.35..-0.35 (0.5 -> 0: the source identity alone)."""
	return np.interp(weight, [0.0, 1.0], [0.35, -0.35]).astype(np.float32)


def balance_source_embedding(
	swapper_type: str,
	source_embedding: np.ndarray,
	target_embedding: Embedding,
	weight: float
) -> np.ndarray:
	"""source·(1 − w) + target·w: w > 0 pulls the identity toward the target face, w < 0 pushes it away."""
	mix = identity_weight(weight)
	target = target_embedding.reshape(1, -1)
	if swapper_type in NORMALISED_TARGET_TYPES:
		target = target / np.linalg.norm(target)
	balanced = source_embedding.reshape(1, -1) * (1 - mix) + target * mix
	return balanced.astype(np.float32)
