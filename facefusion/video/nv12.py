"""NV12 (what NVDEC produces) to BGR with an explicit colour matrix and range.

PyNvVideoCodec's own RGB output picks the matrix itself, which can differ from the one the CPU route uses
(`in_color_matrix` from the probe or the job): frames of one clip would then change colour with the decoder. The
NVDEC route takes the native NV12 planes and converts them here, with the job's matrix, on the device when the
planes are CuPy arrays (the same code runs under NumPy).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from facefusion.gpu.device import Array, array_module_of

# luma coefficients (Kr, Kb) per ffmpeg colour-matrix name
MATRIX_COEFFICIENTS: Dict[str, Tuple[float, float]] = {
	'bt709': (0.2126, 0.0722),
	'bt601': (0.299, 0.114),
	'bt470bg': (0.299, 0.114),
	'smpte170m': (0.299, 0.114),
	'fcc': (0.30, 0.11),
	'smpte240m': (0.212, 0.087),
	'bt2020': (0.2627, 0.0593),
	'bt2020nc': (0.2627, 0.0593),
}


def nv12_to_bgr(planes: Array, width: int, height: int, matrix: str = 'bt709', color_range: str = 'tv') -> Array:
	"""planes: (height * 3 / 2, width) uint8, the Y plane over the interleaved UV plane -> (height, width, 3) BGR."""
	xp = array_module_of(planes)
	kr, kb = MATRIX_COEFFICIENTS.get(matrix, MATRIX_COEFFICIENTS['bt709'])
	kg = 1.0 - kr - kb
	luma = planes[:height].astype(xp.float32)
	chroma = planes[height:height + height // 2].reshape(height // 2, width // 2, 2).astype(xp.float32)
	# 4:2:0 chroma to full size by repetition (what ffmpeg's default bilinear does at the sample sites)
	chroma = xp.repeat(xp.repeat(chroma, 2, axis=0), 2, axis=1)[:height, :width]
	if color_range in ('pc', 'full', 'jpeg'):
		y = luma
		u = chroma[..., 0] - 128.0
		v = chroma[..., 1] - 128.0
	else:
		y = (luma - 16.0) * (255.0 / 219.0)
		u = (chroma[..., 0] - 128.0) * (255.0 / 224.0)
		v = (chroma[..., 1] - 128.0) * (255.0 / 224.0)
	red = y + 2.0 * (1.0 - kr) * v
	blue = y + 2.0 * (1.0 - kb) * u
	green = (y - kr * red - kb * blue) / kg
	bgr = xp.stack([blue, green, red], axis=-1)
	return xp.clip(xp.rint(bgr), 0, 255).astype(np.uint8)
