"""Custom CUDA kernels for the compositor, each with the NumPy reference that pins its arithmetic.

The references reproduce OpenCV's `warpAffine` (INTER_LINEAR) exactly as 4.x computes it, which is what
`face_helper` uses: the inverse map is evaluated in fixed point (the row part and the column part each rounded to
1/1024 px, their sum shifted to 1/32 px), so the bilinear weights are multiples of 1/32. uint8 images use integer
weights that sum to 2^15 and round half up; float32 images use float weights summed left to right. Written that way
the reference equals cv2.warpAffine bit for bit on uint8 and on 3-channel float images (1-channel float within one
unit in the last place: OpenCV vectorises that case differently), and the CUDA kernels equal the reference bit for
bit because they use the same integer math and round-to-nearest float intrinsics (no fused multiply-add).

On the CPU the dispatchers call cv2.warpAffine itself (the same numbers, several times faster than NumPy gathers);
`reference=True` runs the NumPy reference instead. The CUDA sources are compiled by CuPy (NVRTC) on first use.

Matrices follow OpenCV: `matrix` maps source pixels to destination pixels (2×3), as cv2.warpAffine takes it.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from facefusion.gpu.device import Array, is_device_array
from facefusion.types import Matrix

DSize = Tuple[int, int]

# OpenCV's fixed-point constants (imgproc): 1/32 px bilinear tables, 1/1024 px affine accumulation
INTER_BITS = 5
INTER_TAB_SIZE = 1 << INTER_BITS
AB_BITS = 10
AB_SCALE = 1 << AB_BITS
ROUND_DELTA = AB_SCALE // INTER_TAB_SIZE // 2
REMAP_COEF_BITS = 15
BORDERS = ('constant', 'replicate')
BLOCK = (32, 8, 1)


# --- NumPy references ----------------------------------------------------------------------------------------------


def invert_affine(matrix: Matrix) -> np.ndarray:
	"""cv2.invertAffineTransform's formula in float64 (a singular matrix inverts to zeros, as OpenCV does)."""
	m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
	determinant = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
	determinant = 1.0 / determinant if determinant != 0 else 0.0
	a11 = m[1, 1] * determinant
	a22 = m[0, 0] * determinant
	a12 = -m[0, 1] * determinant
	a21 = -m[1, 0] * determinant
	b1 = -a11 * m[0, 2] - a12 * m[1, 2]
	b2 = -a21 * m[0, 2] - a22 * m[1, 2]
	return np.array([[a11, a12, b1], [a21, a22, b2]], dtype=np.float64)


def fixed_point_coordinates(inverse: np.ndarray, dsize: DSize) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
	"""For every destination pixel: the integer source pixel (ix, iy) and the 1/32 fractions (fx, fy), as OpenCV's
	WarpAffineInvoker computes them from the destination -> source matrix."""
	width, height = int(dsize[0]), int(dsize[1])
	m = np.asarray(inverse, dtype=np.float64).reshape(2, 3)
	columns = np.arange(width, dtype=np.float64)
	rows = np.arange(height, dtype=np.float64)
	column_x = np.rint(m[0, 0] * columns * AB_SCALE).astype(np.int64)
	column_y = np.rint(m[1, 0] * columns * AB_SCALE).astype(np.int64)
	row_x = np.rint((m[0, 1] * rows + m[0, 2]) * AB_SCALE).astype(np.int64) + ROUND_DELTA
	row_y = np.rint((m[1, 1] * rows + m[1, 2]) * AB_SCALE).astype(np.int64) + ROUND_DELTA
	source_x = (row_x[:, None] + column_x[None, :]) >> (AB_BITS - INTER_BITS)
	source_y = (row_y[:, None] + column_y[None, :]) >> (AB_BITS - INTER_BITS)
	return source_x >> INTER_BITS, source_y >> INTER_BITS, source_x & (INTER_TAB_SIZE - 1), source_y & (INTER_TAB_SIZE - 1)


def gather_taps(src: np.ndarray, ix: np.ndarray, iy: np.ndarray, border: str, border_value: float) -> np.ndarray:
	"""src[iy, ix] with OpenCV's border rule for taps that fall outside (replicate: nearest edge pixel)."""
	height, width = src.shape[:2]
	clipped_x = np.clip(ix, 0, width - 1)
	clipped_y = np.clip(iy, 0, height - 1)
	values = src[clipped_y, clipped_x]
	if border == 'replicate':
		return values
	outside = (ix < 0) | (ix >= width) | (iy < 0) | (iy >= height)
	if values.ndim == 3:
		outside = outside[..., None]
	return np.where(outside, np.asarray(border_value).astype(src.dtype), values)


def warp_affine_reference(src: np.ndarray, matrix: Matrix, dsize: DSize, border: str = 'constant', border_value: float = 0.0) -> np.ndarray:
	"""cv2.warpAffine(src, matrix, dsize, flags=INTER_LINEAR, borderMode=...) in NumPy, for uint8 and float32."""
	if border not in BORDERS:
		raise ValueError('border must be one of ' + ', '.join(BORDERS))
	if src.dtype not in (np.uint8, np.float32):
		raise TypeError('warp_affine_reference takes uint8 or float32 images, got ' + str(src.dtype))
	ix, iy, fx, fy = fixed_point_coordinates(invert_affine(matrix), dsize)
	taps = [
		gather_taps(src, ix, iy, border, border_value),
		gather_taps(src, ix + 1, iy, border, border_value),
		gather_taps(src, ix, iy + 1, border, border_value),
		gather_taps(src, ix + 1, iy + 1, border, border_value)
	]
	if src.dtype == np.uint8:
		# integer weights of 1/32 × 1/32 steps scaled to 2^15: exact, and they sum to exactly 2^15
		scale = (1 << REMAP_COEF_BITS) // (INTER_TAB_SIZE * INTER_TAB_SIZE)
		weights = [(INTER_TAB_SIZE - fx) * (INTER_TAB_SIZE - fy) * scale, fx * (INTER_TAB_SIZE - fy) * scale, (INTER_TAB_SIZE - fx) * fy * scale, fx * fy * scale]
		if src.ndim == 3:
			weights = [weight[..., None] for weight in weights]
		total = sum(tap.astype(np.int64) * weight for tap, weight in zip(taps, weights))
		return np.clip((total + (1 << (REMAP_COEF_BITS - 1))) >> REMAP_COEF_BITS, 0, 255).astype(np.uint8)
	table = np.arange(INTER_TAB_SIZE, dtype=np.float32) / np.float32(INTER_TAB_SIZE)
	column_right = table[fx]
	column_left = np.float32(1) - column_right
	row_below = table[fy]
	row_above = np.float32(1) - row_below
	weights = [row_above * column_left, row_above * column_right, row_below * column_left, row_below * column_right]
	if src.ndim == 3:
		weights = [weight[..., None] for weight in weights]
	# summed left to right, each step rounded to float32, as OpenCV's remapBilinear loop does
	result = taps[0] * weights[0] + taps[1] * weights[1]
	result = result + taps[2] * weights[2]
	result = result + taps[3] * weights[3]
	return result.astype(np.float32)


def blend_reference(region: np.ndarray, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
	"""region * (1 - mask) + crop * mask in float32, truncated to uint8 (face_helper.paste_back's rule; clipped first
	so that out-of-range floats cannot wrap)."""
	weights = mask[..., None] if mask.ndim == region.ndim - 1 else mask
	weights = weights.astype(np.float32, copy=False)
	blended = region * (np.float32(1) - weights) + crop * weights
	return np.clip(blended, 0, 255).astype(np.uint8)


def times_mask_host(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
	"""values (H×W×C, uint8 or float32) times a one-channel mask (H×W float32), pixel by pixel, in float32, through
	OpenCV with the mask spread over the channels (its scalars would only reach the first one): the same float32
	products as NumPy's broadcast, which walks the mask once per channel and is several times slower."""
	import cv2
	channels = int(values.shape[2]) if values.ndim == 3 else 1
	weights = np.ascontiguousarray(mask[:, :, 0] if mask.ndim == 3 else mask, dtype=np.float32)
	spread = cv2.merge([weights] * channels) if channels > 1 else weights
	return cv2.multiply(values.reshape(spread.shape), spread, dtype=cv2.CV_32F).reshape(values.shape)


def blend_host(region: np.ndarray, crop: np.ndarray, mask: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
	"""blend_reference's numbers through OpenCV: each multiply and add is one float32 operation per element, as in
	NumPy, so the result is the same bit for bit; OpenCV's loops are vectorised and release the GIL once per call
	(a face filling a 360p frame: 2.2 ms against 0.6 ms). out: where the blend goes (it may be region itself: the
	frame's box, written by the truncating cast without a uint8 copy in between)."""
	import cv2
	weights = np.ascontiguousarray(mask[:, :, 0] if mask.ndim == 3 else mask, dtype=np.float32)
	kept = times_mask_host(region, np.float32(1) - weights)
	blended = cv2.add(kept, times_mask_host(np.asarray(crop, dtype=np.float32).reshape(region.shape), weights), dst=kept)
	# clipped before the truncating cast, as the reference: an out-of-range crop must not wrap
	np.clip(blended, 0, 255, out=blended)
	if out is None:
		return blended.astype(np.uint8).reshape(region.shape)
	np.copyto(out, blended.reshape(out.shape), casting='unsafe')
	return out


def paste_matrix_for(affine: Matrix, box: Sequence[int]) -> np.ndarray:
	"""The crop -> box matrix: the inverse of the frame -> crop affine, shifted to the box's corner (face_helper)."""
	paste_matrix = invert_affine(affine)
	paste_matrix[0, 2] -= box[0]
	paste_matrix[1, 2] -= box[1]
	return paste_matrix


# --- CUDA sources --------------------------------------------------------------------------------------------------

CUDA_COMMON = r"""
#define INTER_BITS 5
#define INTER_TAB_SIZE 32
#define AB_BITS 10
#define AB_SCALE 1024.0
#define ROUND_DELTA 16
#define REMAP_COEF_BITS 15

/* OpenCV's warpAffine map in fixed point; the __d*_rn intrinsics forbid fused multiply-adds, which would round the
   row term differently from the NumPy reference and from OpenCV */
__device__ __forceinline__ void fixed_point_source(
	double m0, double m1, double m2, double m3, double m4, double m5, int x, int y,
	int* ix, int* iy, int* fx, int* fy)
{
	int row_x = __double2int_rn(__dmul_rn(__dadd_rn(__dmul_rn(m1, (double)y), m2), AB_SCALE)) + ROUND_DELTA;
	int row_y = __double2int_rn(__dmul_rn(__dadd_rn(__dmul_rn(m4, (double)y), m5), AB_SCALE)) + ROUND_DELTA;
	int column_x = __double2int_rn(__dmul_rn(__dmul_rn(m0, (double)x), AB_SCALE));
	int column_y = __double2int_rn(__dmul_rn(__dmul_rn(m3, (double)x), AB_SCALE));
	int source_x = (row_x + column_x) >> (AB_BITS - INTER_BITS);
	int source_y = (row_y + column_y) >> (AB_BITS - INTER_BITS);
	*ix = source_x >> INTER_BITS;
	*iy = source_y >> INTER_BITS;
	*fx = source_x & (INTER_TAB_SIZE - 1);
	*fy = source_y & (INTER_TAB_SIZE - 1);
}

__device__ __forceinline__ int clamp_index(int value, int high)
{
	return value < 0 ? 0 : (value > high ? high : value);
}

/* the four tap offsets (in elements) and whether each lies inside; replicate clamps, constant flags */
__device__ __forceinline__ void tap_offsets(
	int ix, int iy, int height, int width, int channels, int replicate, long long* offsets, bool* inside)
{
	int xs[2] = { ix, ix + 1 };
	int ys[2] = { iy, iy + 1 };
	for (int k = 0; k < 4; k++)
	{
		int x = xs[k & 1];
		int y = ys[k >> 1];
		inside[k] = replicate || (x >= 0 && x < width && y >= 0 && y < height);
		offsets[k] = ((long long)clamp_index(y, height - 1) * width + clamp_index(x, width - 1)) * channels;
	}
}

__device__ __forceinline__ unsigned char bilinear_u8(
	const unsigned char* src, const long long* offsets, const bool* inside, int channel, int fx, int fy, int border)
{
	int weights[4] = {
		(INTER_TAB_SIZE - fx) * (INTER_TAB_SIZE - fy) * 32, fx * (INTER_TAB_SIZE - fy) * 32,
		(INTER_TAB_SIZE - fx) * fy * 32, fx * fy * 32
	};
	int total = 0;
	for (int k = 0; k < 4; k++)
	{
		int value = inside[k] ? (int)src[offsets[k] + channel] : border;
		total += value * weights[k];
	}
	int rounded = (total + (1 << (REMAP_COEF_BITS - 1))) >> REMAP_COEF_BITS;
	return (unsigned char)(rounded < 0 ? 0 : (rounded > 255 ? 255 : rounded));
}

__device__ __forceinline__ float bilinear_f32(
	const float* src, const long long* offsets, const bool* inside, int channel, int fx, int fy, float border)
{
	float right = (float)fx / (float)INTER_TAB_SIZE;
	float below = (float)fy / (float)INTER_TAB_SIZE;
	float left = __fsub_rn(1.0f, right);
	float above = __fsub_rn(1.0f, below);
	float weights[4] = { __fmul_rn(above, left), __fmul_rn(above, right), __fmul_rn(below, left), __fmul_rn(below, right) };
	float total = 0.0f;
	for (int k = 0; k < 4; k++)
	{
		float value = inside[k] ? src[offsets[k] + channel] : border;
		float term = __fmul_rn(value, weights[k]);
		total = k == 0 ? term : __fadd_rn(total, term);
	}
	return total;
}

/* a batch of warps of one image: blockIdx.z picks the matrix (destination -> source, six doubles per item) */
extern "C" __global__ void warp_affine_u8(
	const unsigned char* src, int src_height, int src_width, int channels,
	const double* inverses, unsigned char* dst, int dst_height, int dst_width, int count,
	int replicate, float border_value)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;
	int n = blockIdx.z;
	if (x >= dst_width || y >= dst_height || n >= count) return;
	const double* m = inverses + 6 * n;
	int ix, iy, fx, fy;
	fixed_point_source(m[0], m[1], m[2], m[3], m[4], m[5], x, y, &ix, &iy, &fx, &fy);
	long long offsets[4];
	bool inside[4];
	tap_offsets(ix, iy, src_height, src_width, channels, replicate, offsets, inside);
	int border = __float2int_rn(border_value);
	long long out = (((long long)n * dst_height + y) * dst_width + x) * channels;
	for (int c = 0; c < channels; c++)
	{
		dst[out + c] = bilinear_u8(src, offsets, inside, c, fx, fy, border);
	}
}

extern "C" __global__ void warp_affine_f32(
	const float* src, int src_height, int src_width, int channels,
	const double* inverses, float* dst, int dst_height, int dst_width, int count,
	int replicate, float border_value)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;
	int n = blockIdx.z;
	if (x >= dst_width || y >= dst_height || n >= count) return;
	const double* m = inverses + 6 * n;
	int ix, iy, fx, fy;
	fixed_point_source(m[0], m[1], m[2], m[3], m[4], m[5], x, y, &ix, &iy, &fx, &fy);
	long long offsets[4];
	bool inside[4];
	tap_offsets(ix, iy, src_height, src_width, channels, replicate, offsets, inside);
	long long out = (((long long)n * dst_height + y) * dst_width + x) * channels;
	for (int c = 0; c < channels; c++)
	{
		dst[out + c] = bilinear_f32(src, offsets, inside, c, fx, fy, border_value);
	}
}

"""

# the fused paste: warp the crop (replicate) and the mask (constant 0, clipped) to the box and blend, in one pass;
# the crop's warp keeps its own type's rounding (a uint8 crop is rounded to uint8 before the blend, as in OpenCV)
CUDA_PASTE_TEMPLATE = r"""
extern "C" __global__ void paste_$NAME(
	unsigned char* frame, int frame_width, int channels, int x1, int y1, int box_width, int box_height,
	const $TYPE* crop, int crop_height, int crop_width, const float* mask, int mask_height, int mask_width,
	double m0, double m1, double m2, double m3, double m4, double m5)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;
	if (x >= box_width || y >= box_height) return;
	int ix, iy, fx, fy;
	fixed_point_source(m0, m1, m2, m3, m4, m5, x, y, &ix, &iy, &fx, &fy);
	long long offsets[4];
	bool inside[4];
	tap_offsets(ix, iy, mask_height, mask_width, 1, 0, offsets, inside);
	float weight = bilinear_f32(mask, offsets, inside, 0, fx, fy, 0.0f);
	weight = fminf(fmaxf(weight, 0.0f), 1.0f);
	float keep = __fsub_rn(1.0f, weight);
	tap_offsets(ix, iy, crop_height, crop_width, channels, 1, offsets, inside);
	long long pixel = ((long long)(y1 + y) * frame_width + (x1 + x)) * channels;
	for (int c = 0; c < channels; c++)
	{
		float sample = (float)$SAMPLE;
		float value = __fadd_rn(__fmul_rn((float)frame[pixel + c], keep), __fmul_rn(sample, weight));
		value = fminf(fmaxf(value, 0.0f), 255.0f);
		frame[pixel + c] = (unsigned char)value;
	}
}
"""
PASTE_VARIANTS: Dict[str, Tuple[str, str]] = {
	'u8': ('unsigned char', 'bilinear_u8(crop, offsets, inside, c, fx, fy, 0)'),
	'f32': ('float', 'bilinear_f32(crop, offsets, inside, c, fx, fy, 0.0f)')
}


def cuda_source() -> str:
	"""The whole CUDA translation unit (also what tests hand to NVRTC to check that it compiles)."""
	pastes = [
		CUDA_PASTE_TEMPLATE.replace('$NAME', name).replace('$TYPE', type_name).replace('$SAMPLE', sample)
		for name, (type_name, sample) in PASTE_VARIANTS.items()
	]
	return CUDA_COMMON + ''.join(pastes)


_module_lock = threading.Lock()
_modules: Dict[int, Any] = {}


def cuda_kernel(name: str) -> Any:
	"""A compiled kernel of the current device (compiled once per device, cached on disk by CuPy across runs)."""
	import cupy
	device_id = cupy.cuda.Device().id
	with _module_lock:
		module = _modules.get(device_id)
		if module is None:
			module = cupy.RawModule(code=cuda_source(), options=('--std=c++14',))
			_modules[device_id] = module
	return module.get_function(name)


def grid_for(width: int, height: int, depth: int = 1) -> Tuple[int, int, int]:
	return (width + BLOCK[0] - 1) // BLOCK[0], (height + BLOCK[1] - 1) // BLOCK[1], depth


# --- dispatchers: the same call on NumPy or CuPy arrays -------------------------------------------------------------


def warp_affine_batch(src: Array, matrices: Sequence[Matrix], dsize: DSize, border: str = 'constant', border_value: float = 0.0, reference: bool = False) -> Array:
	"""One image warped by N matrices -> N×h×w(×C) (the crops of every face of a frame in one launch on the GPU)."""
	if border not in BORDERS:
		raise ValueError('border must be one of ' + ', '.join(BORDERS))
	width, height = int(dsize[0]), int(dsize[1])
	if not is_device_array(src):
		warps = [warp_affine_host(src, matrix, dsize, border, border_value, reference) for matrix in matrices]
		if warps:
			return np.stack(warps)
		return np.zeros((0, height, width) + tuple(src.shape[2:]), dtype=src.dtype)
	import cupy
	if src.dtype not in (cupy.uint8, cupy.float32):
		raise TypeError('warp_affine takes uint8 or float32 images, got ' + str(src.dtype))
	source = cupy.ascontiguousarray(src)
	channels = 1 if source.ndim == 2 else int(source.shape[2])
	count = len(matrices)
	output = cupy.empty((count, height, width) + tuple(source.shape[2:]), dtype=source.dtype)
	if count == 0 or width == 0 or height == 0:
		return output
	# the destination -> source maps, computed on the host in float64 exactly as the reference does
	inverses = cupy.asarray(np.stack([invert_affine(matrix).ravel() for matrix in matrices]))
	name = 'warp_affine_u8' if source.dtype == cupy.uint8 else 'warp_affine_f32'
	cuda_kernel(name)(grid_for(width, height, count), BLOCK, (
		source, np.int32(source.shape[0]), np.int32(source.shape[1]), np.int32(channels), inverses, output,
		np.int32(height), np.int32(width), np.int32(count), np.int32(border == 'replicate'), np.float32(border_value)
	))
	return output


def warp_affine_host(src: np.ndarray, matrix: Matrix, dsize: DSize, border: str, border_value: float, reference: bool) -> np.ndarray:
	if reference:
		return warp_affine_reference(src, matrix, dsize, border, border_value)
	import cv2
	border_mode = cv2.BORDER_REPLICATE if border == 'replicate' else cv2.BORDER_CONSTANT
	return cv2.warpAffine(src, np.asarray(matrix, dtype=np.float64), (int(dsize[0]), int(dsize[1])), flags=cv2.INTER_LINEAR, borderMode=border_mode, borderValue=border_value)


def paste_into(frame: Array, crop: Array, mask: Array, affine: Matrix, box: Sequence[int], reference: bool = False) -> Array:
	"""Warp crop and mask back through the inverse of affine into box and blend, in place; returns frame.

	CPU: two warps and the blend (face_helper.paste_back's steps). GPU: one fused kernel, no intermediate arrays."""
	x1, y1, x2, y2 = (int(value) for value in box)
	if x2 <= x1 or y2 <= y1:
		return frame
	paste_matrix = paste_matrix_for(affine, box)
	flat_mask = mask[:, :, 0] if mask.ndim == 3 else mask
	if not is_device_array(frame):
		box_size = (x2 - x1, y2 - y1)
		box_mask = warp_affine_host(np.asarray(flat_mask, dtype=np.float32), paste_matrix, box_size, 'constant', 0.0, reference).clip(0, 1)
		box_crop = warp_affine_host(np.asarray(crop), paste_matrix, box_size, 'replicate', 0.0, reference)
		if box_crop.ndim == 2:
			box_crop = box_crop[:, :, None]
		region = frame[y1:y2, x1:x2]
		if reference:
			region[...] = blend_reference(region, box_crop, box_mask)
		else:
			blend_host(region, box_crop, box_mask, out=region)
		return frame
	import cupy
	require_frame(frame)
	device_crop = cupy.ascontiguousarray(cupy.asarray(crop))
	if device_crop.dtype not in (cupy.uint8, cupy.float32):
		device_crop = device_crop.astype(cupy.float32)
	device_mask = cupy.ascontiguousarray(cupy.asarray(flat_mask), dtype=cupy.float32)
	channels = int(frame.shape[2])
	crop_channels = 1 if device_crop.ndim == 2 else int(device_crop.shape[2])
	if crop_channels != channels:
		raise ValueError("paste needs a crop with the frame's " + str(channels) + ' channels, got ' + str(crop_channels))
	inverse = invert_affine(paste_matrix).ravel()
	name = 'paste_u8' if device_crop.dtype == cupy.uint8 else 'paste_f32'
	cuda_kernel(name)(grid_for(x2 - x1, y2 - y1), BLOCK, (
		frame, np.int32(frame.shape[1]), np.int32(channels), np.int32(x1), np.int32(y1), np.int32(x2 - x1), np.int32(y2 - y1),
		device_crop, np.int32(device_crop.shape[0]), np.int32(device_crop.shape[1]),
		device_mask, np.int32(device_mask.shape[0]), np.int32(device_mask.shape[1]),
		*[np.float64(value) for value in inverse]
	))
	return frame


def require_frame(frame: Array) -> None:
	"""The GPU kernels index the frame as a contiguous H×W×C uint8 block (they write into it in place)."""
	if frame.dtype.name != 'uint8' or frame.ndim != 3 or not frame.flags.c_contiguous:
		raise ValueError('GPU paste needs a C-contiguous H×W×C uint8 frame, got ' + str(frame.dtype) + ' ' + str(frame.shape))


def compile_check(arch: str = 'compute_90') -> Optional[str]:
	"""Compile the CUDA source to PTX with NVRTC alone (no device or driver needed); None when it compiles, else the
	compiler's message. CuPy's public compile call asks the device for its architecture, hence the program class."""
	try:
		from cupy.cuda import compiler
		program = compiler._NVRTCProgram(cuda_source(), 'facefusion_kernels.cu')
		program.compile(('--std=c++14', '-arch=' + arch))
	except Exception as exception:
		return type(exception).__name__ + ': ' + str(exception)
	return None
