"""Warp, mask and paste every face of a frame on the frame's own device.

A frame that lives on the GPU (a CuPy array) stays there: the crops of all its faces come out of one batched warp
kernel, masks are combined with array-module code, and each face goes back through one fused warp + mask + blend
kernel that writes straight into the frame's paste box. A NumPy frame takes the same steps with OpenCV and the
NumPy references. Either way the result equals `face_helper.paste_back` applied face after face (bit for bit on
the CPU; on the GPU within one level, where OpenCV's vectorised 1-channel float warp of the mask rounds in another
order).

Faces are pasted in the order given, each onto the frame as the previous ones left it, as 3.5.0 does.

The blend itself follows the compositor's BlendSettings: the default (feather, no colour match, gamma space) is the
path above; multi-band blending, colour matching and linear light go through `gpu/blending.paste_face`, the same
array-module code on either device.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Optional, Sequence, Tuple

import numpy as np

from facefusion.face_helper import paste_box
from facefusion.gpu import kernels
from facefusion.gpu.array_ops import combine_masks
from facefusion.gpu.blending import BlendSettings, ColorStatistics, paste_face
from facefusion.gpu.device import Array, array_module_of, get_array_module, is_device_array, to_device, to_host
from facefusion.types import Matrix

Size = Tuple[int, int]


@dataclass
class PasteJob:
	"""One face on its way back: the swapped crop (float32 0..255 or uint8, S×S×3), its mask(s) (S×S float32 0..1;
	several are combined by their minimum) and the frame -> crop affine the crop was warped with (host, 2×3)."""
	crop: Array
	masks: Sequence[Array]
	affine: Matrix
	# the target face's colour statistics (colour matching); None pastes the crop's own colours
	target: Optional[ColorStatistics] = None

	def combined_mask(self) -> Array:
		if not self.masks:
			xp = array_module_of(self.crop)
			return xp.ones(self.crop.shape[:2], dtype=xp.float32)
		if len(self.masks) == 1:
			mask = self.masks[0]
			return mask[:, :, 0] if mask.ndim == 3 else mask
		return combine_masks([mask[:, :, 0] if mask.ndim == 3 else mask for mask in self.masks])


class Compositor:
	"""Frame-level warp / paste on one device. `prefer_gpu` picks CuPy when a GPU works (else it warns once and uses
	NumPy); calls then follow the device of the frame they are given, so one instance serves both."""

	def __init__(self, prefer_gpu: bool = False, device_id: int = 0, reference: bool = False, settings: Optional[BlendSettings] = None) -> None:
		self.xp = get_array_module(prefer_gpu, device_id)
		# the CPU path runs the NumPy references instead of OpenCV (tests, and to check the references themselves)
		self.reference = reference
		self.settings = settings or BlendSettings()

	@property
	def on_gpu(self) -> bool:
		return self.xp is not np

	def upload(self, array: Array) -> Array:
		"""An array on this compositor's device (the frame as decoded, a crop, a mask)."""
		device_array = to_device(array, self.xp)
		return self.xp.ascontiguousarray(device_array)

	@staticmethod
	def download(array: Array) -> np.ndarray:
		return to_host(array)

	def warp_crops(self, frame: Array, affines: Sequence[Matrix], crop_size: Size) -> Array:
		"""The aligned crops of every face: N×h×w×C in the frame's dtype, BORDER_REPLICATE, bilinear (what
		face_helper.warp_face_by_face_landmark_5 produces, one face at a time)."""
		return kernels.warp_affine_batch(frame, affines, crop_size, 'replicate', reference=self.reference)

	def paste_all(self, frame: Array, jobs: Sequence[PasteJob], in_place: bool = False) -> Array:
		"""Paste the faces in order; a copy of the frame unless in_place (a GPU frame must be C-contiguous uint8)."""
		result = frame if in_place else frame.copy()
		on_device = is_device_array(result)
		for job in jobs:
			crop = job.crop
			mask = job.combined_mask()
			if on_device:
				crop = to_device(crop, cupy_module())
				mask = to_device(mask, cupy_module())
			else:
				crop = to_host(crop)
				mask = to_host(mask)
			box = paste_box(result.shape, (int(crop.shape[1]), int(crop.shape[0])), job.affine)
			if self.settings.is_feather:
				kernels.paste_into(result, crop, mask, job.affine, box, reference=self.reference)
			else:
				paste_face(result, crop, mask, job.affine, box, self.settings, job.target, reference=self.reference)
		return result


def cupy_module() -> ModuleType:
	import cupy
	return cupy
