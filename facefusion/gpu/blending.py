"""How a swapped face goes back into its frame: feather (3.5.0), multi-band, colour matching, linear light.

The math is written once against the array module of its inputs (NumPy on the CPU, CuPy on the GPU, where every
step stays on the device); on the CPU the pyramid steps call cv2.pyrDown / cv2.pyrUp, which compute the same
filters several times faster (`reference=True` runs the array-module versions instead).

- feather: region * (1 - m) + crop * m with the warped combined mask m, truncated (3.5.0's paste, `kernels.paste_into`).
- multi-band: Burt & Adelson's Laplacian-pyramid blend inside the paste box. By linearity the blended pyramid is the
  frame's pyramid plus the mask-weighted pyramid of (crop - frame), so the frame is only ever changed by a delta:
  where the mask is zero at every level the frame stays as it was, bit for bit. Low frequencies (skin tone, light)
  blend over a band about 2^levels pixels wide, fine detail over a band of a pixel or two.
- colour match: the swapped crop is moved towards the target crop's colour before compositing, in CIE L*a*b*
  (perceptually even enough that a mean / spread shift does not tint, and it separates light from chroma), with
  statistics weighted by the combined face mask so that the background inside the box does not count.
- linear light: the blend runs on linear sRGB values (decoded, blended, encoded), which does not draw the dark fringe a
  gamma-space blend draws where a bright and a dark side meet at a soft edge.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from facefusion.gpu import kernels
from facefusion.gpu.device import Array, array_module_of, is_device_array, to_device
from facefusion.types import Matrix

BLEND_MODES: Tuple[str, ...] = ('feather', 'multi-band')
COLOR_MATCHES: Tuple[str, ...] = ('none', 'mean-std', 'histogram')
MAX_BLEND_LEVELS = 8
# the coarsest pyramid level keeps at least this many pixels on the box's short side (0 levels = by box size)
COARSEST_SIZE = 16
# per-channel spread ratios are held to this range: a flat or noisy region must not blow the swap's contrast up
SPREAD_RATIO_RANGE = (0.5, 2.0)
# the lightness spread is held closer: scaling L scales the swap's texture, which carries its identity
LIGHTNESS_SPREAD_RANGE = (0.97, 1.03)
HISTOGRAM_BINS = 128
# L* 0..100, a* b* about -128..127 for sRGB colours
LAB_RANGES: Tuple[Tuple[float, float], ...] = ((0.0, 100.0), (-128.0, 128.0), (-128.0, 128.0))
# colour statistics read a grid of about this many pixels per side of a crop
STATISTICS_SIDE = 128
# the weight of the newest frame in a track's running statistics (an exponential moving average, ~4 frames)
TEMPORAL_WEIGHT = 0.25

# sRGB primaries, D65 white (IEC 61966-2-1), for linear RGB -> XYZ; rows X, Y, Z, columns R, G, B
RGB_TO_XYZ = np.array([
	[0.4124564, 0.3575761, 0.1804375],
	[0.2126729, 0.7151522, 0.0721750],
	[0.0193339, 0.1191920, 0.9503041]
], dtype=np.float64)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
D65_WHITE = RGB_TO_XYZ.sum(axis=1)
LAB_EPSILON = 216.0 / 24389.0
LAB_KAPPA = 24389.0 / 27.0


def srgb_table() -> np.ndarray:
	scaled = np.arange(256, dtype=np.float64) / 255
	return np.where(scaled <= 0.04045, scaled / 12.92, ((scaled + 0.055) / 1.055) ** 2.4).astype(np.float32)


SRGB_TO_LINEAR_TABLE = srgb_table()


@dataclass(frozen=True)
class BlendSettings:
	"""The looks options of one run; the default is 3.5.0's paste."""
	mode: str = 'feather'
	# 0 = chosen from the paste box size (levels_for_box)
	levels: int = 0
	color_match: str = 'none'
	color_match_strength: float = 1.0
	linear_light: bool = False

	@property
	def is_feather(self) -> bool:
		"""Nothing but 3.5.0's paste: the compositor takes its exact path."""
		return self.mode == 'feather' and not self.matches_color and not self.linear_light

	@property
	def matches_color(self) -> bool:
		return self.color_match != 'none' and self.color_match_strength > 0


@dataclass
class ColorStatistics:
	"""Mask-weighted statistics of a crop in L*a*b*: per-channel mean and spread, and (histogram mode) the normalised
	histogram of each channel over LAB_RANGES (3 × HISTOGRAM_BINS), all in the crop's array module."""
	mean: Array
	std: Array
	histogram: Optional[Array] = None


# ---- colour spaces -------------------------------------------------------------------------------------------------

def srgb_to_linear(values: Array) -> Array:
	"""sRGB-encoded 0..255 -> linear 0..1 (the IEC transfer curve, float32)."""
	xp = array_module_of(values)
	if values.dtype == np.uint8:
		# 256 values: a table is exact and cheaper than the power per pixel
		return xp.take(xp.asarray(SRGB_TO_LINEAR_TABLE), values)
	scaled = values.astype(xp.float32, copy=False) / xp.float32(255)
	return xp.where(scaled <= xp.float32(0.04045), scaled / xp.float32(12.92), ((scaled + xp.float32(0.055)) / xp.float32(1.055)) ** xp.float32(2.4))


def linear_to_srgb(values: Array) -> Array:
	"""linear 0..1 -> sRGB-encoded 0..255 (float32, not rounded)."""
	xp = array_module_of(values)
	clipped = xp.clip(values, xp.float32(0), xp.float32(1))
	encoded = xp.where(clipped <= xp.float32(0.0031308), clipped * xp.float32(12.92), xp.float32(1.055) * clipped ** xp.float32(1 / 2.4) - xp.float32(0.055))
	return encoded * xp.float32(255)


def bgr_to_lab(bgr: Array) -> Array:
	"""…×3 BGR 0..255 -> …×3 L*a*b* (D65), float32."""
	xp = array_module_of(bgr)
	linear = srgb_to_linear(bgr[..., ::-1])
	matrix = xp.asarray(RGB_TO_XYZ / D65_WHITE[:, None], dtype=xp.float32)
	xyz = linear @ matrix.T
	f = xp.where(xyz > xp.float32(LAB_EPSILON), xp.cbrt(xyz), (xp.float32(LAB_KAPPA) * xyz + xp.float32(16)) / xp.float32(116))
	lightness = xp.float32(116) * f[..., 1] - xp.float32(16)
	a = xp.float32(500) * (f[..., 0] - f[..., 1])
	b = xp.float32(200) * (f[..., 1] - f[..., 2])
	return xp.stack([lightness, a, b], axis=-1).astype(xp.float32, copy=False)


def lab_to_bgr(lab: Array) -> Array:
	"""…×3 L*a*b* -> …×3 BGR 0..255 (float32, clipped, not rounded)."""
	xp = array_module_of(lab)
	fy = (lab[..., 0] + xp.float32(16)) / xp.float32(116)
	fx = fy + lab[..., 1] / xp.float32(500)
	fz = fy - lab[..., 2] / xp.float32(200)
	f = xp.stack([fx, fy, fz], axis=-1)
	cubed = f * f * f
	xyz = xp.where(cubed > xp.float32(LAB_EPSILON), cubed, (xp.float32(116) * f - xp.float32(16)) / xp.float32(LAB_KAPPA))
	matrix = xp.asarray(XYZ_TO_RGB * D65_WHITE[None, :], dtype=xp.float32)
	linear = xyz @ matrix.T
	return linear_to_srgb(linear)[..., ::-1]


# ---- colour matching -----------------------------------------------------------------------------------------------

def to_lab(bgr: Array, reference: bool = False) -> Array:
	"""BGR 0..255 -> L*a*b*; on the CPU through OpenCV (the same formulas, its own sRGB curve: within 0.3 ΔE)."""
	if reference or is_device_array(bgr):
		return bgr_to_lab(bgr)
	import cv2
	return cv2.cvtColor(np.ascontiguousarray(bgr, dtype=np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab)


def from_lab(lab: Array, reference: bool = False) -> Array:
	if reference or is_device_array(lab):
		return lab_to_bgr(lab)
	import cv2
	return np.clip(cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2BGR), 0, 1) * np.float32(255)


def color_statistics(crop: Array, weights: Array, with_histogram: bool = False, reference: bool = False) -> Optional[ColorStatistics]:
	"""Statistics of an S×S×3 BGR crop over the S×S mask weights (None when the mask is empty)."""
	return lab_statistics(to_lab(crop, reference), weights, with_histogram)


def lab_statistics(lab: Array, weights: Array, with_histogram: bool = False) -> Optional[ColorStatistics]:
	"""Statistics of an S×S×3 L*a*b* crop over S×S weights, from a grid of at most STATISTICS_SIDE² of its pixels (a
	mean and spread over thousands of pixels need no more, and the cost stays flat at large pixel boosts)."""
	xp = array_module_of(lab, weights)
	stride = max(1, int(lab.shape[0]) // STATISTICS_SIDE)
	flat_lab = xp.ascontiguousarray(lab[::stride, ::stride]).reshape(-1, 3)
	flat = xp.clip(xp.ascontiguousarray(weights[::stride, ::stride]).reshape(-1).astype(xp.float32, copy=False), 0, 1)
	total = flat.sum()
	if float(total) < 1.0:
		return None
	mean = (flat @ flat_lab) / total
	variance = (flat @ ((flat_lab - mean) ** 2)) / total
	histogram = weighted_histograms(flat_lab, flat, total) if with_histogram else None
	return ColorStatistics(mean, xp.sqrt(variance), histogram)


def weighted_histograms(lab: Array, weights: Array, total: Array) -> Array:
	xp = array_module_of(lab)
	rows = []
	for channel, (low, high) in enumerate(LAB_RANGES):
		index = ((lab[:, channel] - xp.float32(low)) * xp.float32(HISTOGRAM_BINS / (high - low))).astype(xp.int32)
		index = xp.clip(index, 0, HISTOGRAM_BINS - 1)
		rows.append(xp.bincount(index, weights=weights, minlength=HISTOGRAM_BINS)[:HISTOGRAM_BINS])
	return (xp.stack(rows) / total).astype(xp.float32)


def statistics_on(statistics: ColorStatistics, xp: ModuleType) -> ColorStatistics:
	"""The statistics under the array module xp (those of the analyse stage live on the host)."""
	histogram = None if statistics.histogram is None else to_device(statistics.histogram, xp)
	return ColorStatistics(to_device(statistics.mean, xp), to_device(statistics.std, xp), histogram)


def blend_statistics(previous: ColorStatistics, current: ColorStatistics, weight: float = TEMPORAL_WEIGHT) -> ColorStatistics:
	"""The running statistics of a track: an exponential moving average of mean, spread and histogram."""
	keep = 1.0 - weight
	histogram = None
	if previous.histogram is not None and current.histogram is not None:
		histogram = previous.histogram * keep + current.histogram * weight
	return ColorStatistics(previous.mean * keep + current.mean * weight, previous.std * keep + current.std * weight, histogram)


def match_colors(crop: Array, weights: Array, target: ColorStatistics, method: str, strength: float, reference: bool = False) -> Array:
	"""The swapped crop moved towards the target statistics in L*a*b*, by strength (0 = unchanged, 1 = matched).
	The crop's own statistics are taken over the same weights; the result is float32 BGR 0..255.

	Lightness is shifted to the target's mean with its spread held near the swap's own (texture and identity live
	there; a histogram specification of L would restretch the skin's detail); a* and b* take the target's spread
	(mean-std) or its whole distribution (histogram)."""
	xp = array_module_of(crop, weights)
	lab = to_lab(crop, reference)
	source = lab_statistics(lab, weights, with_histogram=method == 'histogram')
	if source is None or strength <= 0:
		return crop.astype(xp.float32, copy=False)
	low, high = SPREAD_RATIO_RANGE
	ratio = xp.clip(target.std / xp.maximum(source.std, xp.float32(1e-3)), low, high)
	ratio[0] = xp.clip(ratio[0], *LIGHTNESS_SPREAD_RANGE)
	matched = (lab - source.mean) * ratio + target.mean
	if method == 'histogram' and source.histogram is not None and target.histogram is not None:
		chroma = match_histograms(lab, source.histogram, target.histogram, channels=(1, 2))
		matched = xp.concatenate([matched[..., :1], chroma], axis=-1)
	if strength < 1:
		matched = lab + (matched - lab) * xp.float32(strength)
	return from_lab(matched.astype(xp.float32, copy=False), reference)


def match_histograms(lab: Array, source: Array, target: Array, channels: Sequence[int] = (0, 1, 2)) -> Array:
	"""The channels mapped through the source CDF and the inverse target CDF (classic histogram specification)."""
	xp = array_module_of(lab)
	mapped = []
	for channel in channels:
		low, high = LAB_RANGES[channel]
		edges = xp.linspace(low, high, HISTOGRAM_BINS + 1, dtype=xp.float32)
		source_cdf = xp.concatenate([xp.zeros(1, dtype=xp.float32), xp.cumsum(source[channel]).astype(xp.float32)])
		target_cdf = xp.concatenate([xp.zeros(1, dtype=xp.float32), xp.cumsum(target[channel]).astype(xp.float32)])
		# a strictly increasing target CDF, so that its inverse is a function (empty bins add a tiny slope)
		target_cdf = target_cdf + xp.linspace(0, 1e-6, HISTOGRAM_BINS + 1, dtype=xp.float32)
		quantiles = xp.interp(lab[..., channel], edges, source_cdf)
		mapped.append(xp.interp(quantiles, target_cdf, edges))
	return xp.stack(mapped, axis=-1).astype(xp.float32)


# ---- pyramids ------------------------------------------------------------------------------------------------------

def levels_for_box(width: int, height: int, requested: int = 0) -> int:
	"""Pyramid levels for a paste box: the requested count, at most what keeps the coarsest level COARSEST_SIZE px."""
	fitting = max(1, int(math.floor(math.log2(max(min(width, height), 2) / COARSEST_SIZE))) + 1)
	if requested > 0:
		return max(1, min(requested, fitting, MAX_BLEND_LEVELS))
	return max(1, min(fitting, MAX_BLEND_LEVELS))


def blur_down_axis(values: Array, axis: int) -> Array:
	"""The 5-tap binomial filter [1 4 6 4 1] / 16 along one axis with reflect-101 borders, keeping even samples."""
	xp = array_module_of(values)
	size = values.shape[axis]
	widths = [(0, 0)] * values.ndim
	widths[axis] = (2, 2)
	padded = xp.pad(values, widths, mode='reflect')

	def tap(offset: int) -> Array:
		index = [slice(None)] * values.ndim
		index[axis] = slice(offset, offset + size, 2)
		return padded[tuple(index)]
	return (tap(0) + tap(4) + (tap(1) + tap(3)) * xp.float32(4) + tap(2) * xp.float32(6)) * xp.float32(1 / 16)


def expand_axis(values: Array, axis: int, size: int) -> Array:
	"""cv2.pyrUp's upsampling along one axis: even outputs (s[i-1] + 6 s[i] + s[i+1]) / 8, odd (s[i] + s[i+1]) / 2,
	reflect-101 on the left border and replicate on the right (as OpenCV does), cut to size."""
	xp = array_module_of(values)
	count = values.shape[axis]

	def part(start: int, stop: int) -> Array:
		index = [slice(None)] * values.ndim
		index[axis] = slice(start, stop)
		return values[tuple(index)]
	previous = xp.concatenate([part(1, 2) if count > 1 else part(0, 1), part(0, count - 1)], axis=axis)
	following = xp.concatenate([part(1, count), part(count - 1, count)], axis=axis)
	even = (previous + following + values * xp.float32(6)) * xp.float32(1 / 8)
	odd = (values + following) * xp.float32(0.5)
	shape = list(values.shape)
	shape[axis] = count * 2
	interleaved = xp.stack([even, odd], axis=axis + 1).reshape(shape)
	index = [slice(None)] * values.ndim
	index[axis] = slice(0, size)
	return interleaved[tuple(index)]


def pyr_down(values: Array, reference: bool = False) -> Array:
	if not reference and not is_device_array(values):
		import cv2
		return cv2.pyrDown(values)
	return blur_down_axis(blur_down_axis(values, 0), 1)


def pyr_up(values: Array, shape: Tuple[int, int], reference: bool = False) -> Array:
	"""values upsampled to shape (height, width); a 3-channel image or a 2-D mask."""
	if not reference and not is_device_array(values):
		import cv2
		result = cv2.pyrUp(values, dstsize=(int(shape[1]), int(shape[0])))
		return result[:, :, None] if values.ndim == 3 and result.ndim == 2 else result
	return expand_axis(expand_axis(values, 0, int(shape[0])), 1, int(shape[1]))


def times_mask(values: Array, mask: Array, reference: bool = False) -> Array:
	"""values (H×W×C float32) times a one-channel mask (H×W float32), pixel by pixel; on the host through OpenCV
	(kernels.times_mask_host, the same numbers: NumPy's broadcast was most of the multi-band paste's time)."""
	if reference or is_device_array(values):
		return values * mask[..., None]
	return kernels.times_mask_host(values, mask)


def multi_band_delta(difference: Array, mask: Array, levels: int, reference: bool = False) -> Array:
	"""The collapsed pyramid of sum_k G_k(mask) * L_k(difference): what a multi-band blend adds to the frame."""
	xp = array_module_of(difference, mask)
	gaussians = [difference]
	masks = [mask]
	for _ in range(levels - 1):
		gaussians.append(pyr_down(gaussians[-1], reference))
		masks.append(pyr_down(masks[-1], reference))
	result = times_mask(gaussians[-1], masks[-1], reference)
	for level in range(levels - 2, -1, -1):
		shape = gaussians[level].shape[:2]
		laplacian = gaussians[level] - pyr_up(gaussians[level + 1], shape, reference)
		result = pyr_up(result, shape, reference) + times_mask(laplacian, masks[level], reference)
	return result.astype(xp.float32, copy=False)


def multi_band_blend_host(region: np.ndarray, box_crop: np.ndarray, box_mask: np.ndarray, levels: int) -> np.ndarray:
	"""The multi-band paste of a 3-channel uint8 region on the host: the numbers of the array-module steps in
	paste_face (the difference where the mask reaches, multi_band_delta, the rounded sum), bit for bit, with OpenCV
	writing in place where a buffer is not needed again, and with neither a float copy of the region nor NumPy's
	rounding passes. A face that fills a 1080p frame (a 1295×1080 box): 26 against 38 ms on one of these cores.
	Returns the blended region (uint8)."""
	import cv2

	def spread(mask: np.ndarray) -> np.ndarray:
		# OpenCV's products take a mask with the values' channels
		return cv2.merge([mask] * 3)
	shape = region.shape
	difference = cv2.subtract(box_crop.reshape(shape), region, dtype=cv2.CV_32F)
	# where the mask is 0 the difference is 0 (times 0.0, as times_mask gives it): the replicated border of the crop
	# must not bleed in at coarse levels
	reach = cv2.threshold(box_mask, 0, 1, cv2.THRESH_BINARY)[1]
	cv2.multiply(difference, spread(reach), dst=difference)
	pyramid = [difference]
	masks = [box_mask]
	for _ in range(levels - 1):
		pyramid.append(cv2.pyrDown(pyramid[-1]))
		masks.append(cv2.pyrDown(masks[-1]))
	# finest level first, each Laplacian (times its mask) in place of its Gaussian, which the next finer level has
	# already used
	for level in range(levels - 1):
		gaussian = pyramid[level]
		cv2.subtract(gaussian, cv2.pyrUp(pyramid[level + 1], dstsize=(gaussian.shape[1], gaussian.shape[0])), dst=gaussian)
		cv2.multiply(gaussian, spread(masks[level]), dst=gaussian)
	collapsed = cv2.multiply(pyramid[-1], spread(masks[-1]))
	for level in range(levels - 2, -1, -1):
		weighted = pyramid[level]
		upsampled = cv2.pyrUp(collapsed, dstsize=(weighted.shape[1], weighted.shape[0]))
		collapsed = cv2.add(upsampled, weighted, dst=upsampled)
	# the float32 sum first, then its rounding (half to even, saturated, as NumPy's rint and clip give): a sum straight
	# to uint8 is not rounded to float32 first and lands on the other side of a .5 now and then
	cv2.add(region, collapsed, dst=collapsed, dtype=cv2.CV_32F)
	return cv2.add(collapsed, 0.0, dtype=cv2.CV_8U)


# ---- the paste -----------------------------------------------------------------------------------------------------

def warp_to_box(values: Array, matrix: np.ndarray, size: Tuple[int, int], border: str, reference: bool) -> Array:
	if is_device_array(values):
		return kernels.warp_affine_batch(values, [matrix], size, border)[0]
	return kernels.warp_affine_host(np.asarray(values), matrix, size, border, 0.0, reference)


def paste_face(
	frame: Array,
	crop: Array,
	mask: Array,
	affine: Matrix,
	box: Sequence[int],
	settings: BlendSettings,
	target: Optional[ColorStatistics] = None,
	reference: bool = False
) -> Array:
	"""Paste one swapped crop (S×S×3, 0..255) into frame's box through its S×S mask, in place; returns frame.

	target: the target face's colour statistics for colour matching (none: no matching)."""
	xp = array_module_of(frame)
	x1, y1, x2, y2 = (int(value) for value in box)
	if x2 <= x1 or y2 <= y1:
		return frame
	crop = crop.astype(xp.float32, copy=False)
	if settings.matches_color and target is not None:
		crop = match_colors(crop, mask, statistics_on(target, xp), settings.color_match, settings.color_match_strength, reference)
	if settings.mode == 'feather' and not settings.linear_light:
		# 3.5.0's blend of the (colour-matched) crop
		return kernels.paste_into(frame, xp.ascontiguousarray(crop), mask, affine, box, reference=reference)
	paste_matrix = kernels.paste_matrix_for(affine, box)
	size = (x2 - x1, y2 - y1)
	box_mask = warp_to_box(xp.ascontiguousarray(mask, dtype=xp.float32), paste_matrix, size, 'constant', reference)
	# in place: the warp's output is a fresh array
	xp.clip(box_mask, 0, 1, out=box_mask)
	box_crop = warp_to_box(xp.ascontiguousarray(crop), paste_matrix, size, 'replicate', reference)
	region = frame[y1:y2, x1:x2]
	if settings.mode == 'multi-band' and not settings.linear_light and not reference and not is_device_array(frame) and region.ndim == 3 and region.shape[2] == 3 and region.dtype == np.uint8:
		frame[y1:y2, x1:x2] = multi_band_blend_host(region, box_crop, box_mask, levels_for_box(size[0], size[1], settings.levels))
		return frame
	if settings.linear_light:
		base, swapped = srgb_to_linear(region), srgb_to_linear(box_crop)
	else:
		base, swapped = region.astype(xp.float32), box_crop
	if settings.mode == 'multi-band':
		# the crop only counts where the mask reaches, so that the replicated border never bleeds in at coarse levels
		difference = times_mask(swapped - base, (box_mask > 0).astype(xp.float32), reference)
		blended = base + multi_band_delta(difference, box_mask, levels_for_box(size[0], size[1], settings.levels), reference)
	else:
		blended = base + (swapped - base) * box_mask[..., None]
	untouched = None
	if settings.linear_light:
		# pixels the blend did not change keep their value exactly (the transfer round trip is not exact in float32)
		untouched = xp.all(blended == base, axis=-1)
		blended = linear_to_srgb(blended)
	result = xp.clip(xp.rint(blended), 0, 255).astype(xp.uint8)
	if untouched is not None:
		result = xp.where(untouched[..., None], frame[y1:y2, x1:x2], result)
	frame[y1:y2, x1:x2] = result
	return frame


class TrackColors:
	"""The running target statistics of every track (video): smoothed over frames, forgotten with the track (a scene
	cut gives every face a new token). Thread-safe; the processor feeds it in frame order (the analyse stage)."""

	def __init__(self, weight: float = TEMPORAL_WEIGHT, capacity: int = 256) -> None:
		self.weight = weight
		self.capacity = capacity
		self.lock = threading.Lock()
		self.tracks: Dict[int, ColorStatistics] = {}

	def update(self, token: int, current: ColorStatistics) -> ColorStatistics:
		with self.lock:
			previous = self.tracks.pop(token, None)
			smoothed = current if previous is None else blend_statistics(previous, current, self.weight)
			self.tracks[token] = smoothed
			# tokens only grow: the oldest entries belong to tracks that ended
			while len(self.tracks) > self.capacity:
				self.tracks.pop(next(iter(self.tracks)))
			return smoothed
