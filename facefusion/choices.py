"""Option choices and ranges, kept apart from logic (names and values as in FaceFusion 3.5.0)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

face_detector_models: List[str] = ['many', 'retinaface', 'scrfd', 'yolo_face', 'yunet']
face_detector_set: Dict[str, List[str]] = {
	'many': ['640x640'],
	'retinaface': ['160x160', '320x320', '480x480', '512x512', '640x640'],
	'scrfd': ['160x160', '320x320', '480x480', '512x512', '640x640'],
	'yolo_face': ['640x640'],
	'yunet': ['640x640'],
}
face_detector_angles: List[int] = [0, 90, 180, 270]

face_landmarker_models: List[str] = ['many', '2dfan4', 'peppa_wutz']

face_selector_modes: List[str] = ['many', 'one', 'reference']
face_selector_orders: List[str] = [
	'left-right', 'right-left', 'top-bottom', 'bottom-top', 'small-large', 'large-small', 'best-worst', 'worst-best'
]
face_selector_genders: List[str] = ['female', 'male']
face_selector_races: List[str] = ['white', 'black', 'latino', 'asian', 'indian', 'arabic']

face_occluder_models: List[str] = ['many', 'xseg_1', 'xseg_2', 'xseg_3']
face_parser_models: List[str] = ['bisenet_resnet_18', 'bisenet_resnet_34']
face_mask_types: List[str] = ['box', 'occlusion', 'area', 'region']
face_mask_areas: List[str] = ['upper-face', 'lower-face', 'mouth']
face_mask_regions: List[str] = [
	'skin', 'left-eyebrow', 'right-eyebrow', 'left-eye', 'right-eye', 'glasses', 'nose', 'mouth', 'upper-lip', 'lower-lip'
]
# landmark indices of the 68-point layout that make up each area (convex hull is filled)
face_mask_area_set: Dict[str, List[int]] = {
	'upper-face': [0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17],
	'lower-face': [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31],
	'mouth': [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67],
}
# class indices of the face parser output for each region
face_mask_region_set: Dict[str, int] = {
	'skin': 1, 'left-eyebrow': 2, 'right-eyebrow': 3, 'left-eye': 4, 'right-eye': 5, 'glasses': 6,
	'nose': 10, 'mouth': 11, 'upper-lip': 12, 'lower-lip': 13,
}

face_debugger_items: List[str] = [
	'bounding-box', 'face-landmark-5', 'face-landmark-5/68', 'face-landmark-68', 'face-landmark-68/5', 'face-mask'
]

face_swapper_models: List[str] = [
	'blendswap_256', 'ghost_1_256', 'ghost_2_256', 'ghost_3_256', 'hififace_unofficial_256',
	'hyperswap_1a_256', 'hyperswap_1b_256', 'hyperswap_1c_256', 'inswapper_128', 'inswapper_128_fp16',
	'simswap_256', 'simswap_unofficial_512', 'uniface_256'
]
# pixel boost choices per swapper model; the first is the default. 3.5.0 lists 384x384 for blendswap_256, which
# cannot work (384 is not a multiple of 256): it stays a listed choice for compatibility and is refused with a clear
# message when the options are validated.
face_swapper_set: Dict[str, List[str]] = {
	'blendswap_256': ['256x256', '384x384', '512x512', '768x768', '1024x1024'],
	'ghost_1_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'ghost_2_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'ghost_3_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'hififace_unofficial_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'hyperswap_1a_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'hyperswap_1b_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'hyperswap_1c_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'inswapper_128': ['128x128', '256x256', '384x384', '512x512', '768x768', '1024x1024'],
	'inswapper_128_fp16': ['128x128', '256x256', '384x384', '512x512', '768x768', '1024x1024'],
	'simswap_256': ['256x256', '512x512', '768x768', '1024x1024'],
	'simswap_unofficial_512': ['512x512', '768x768', '1024x1024'],
	'uniface_256': ['256x256', '512x512', '768x768', '1024x1024'],
}

# the looks of the paste (new in this engine; feather with colour match none is 3.5.0's paste)
face_swapper_blend_modes: List[str] = ['feather', 'multi-band']
face_swapper_color_matches: List[str] = ['none', 'mean-std', 'histogram']
# 0 = chosen from the paste box size
face_swapper_blend_levels_range: Tuple[int, int] = (0, 8)

face_enhancer_models: List[str] = [
	'codeformer', 'gfpgan_1.2', 'gfpgan_1.3', 'gfpgan_1.4', 'gpen_bfr_256', 'gpen_bfr_512', 'gpen_bfr_1024',
	'gpen_bfr_2048', 'restoreformer_plus_plus'
]

processors: List[str] = ['face_swapper', 'face_debugger', 'face_enhancer']

execution_provider_names: Dict[str, str] = {
	'cuda': 'CUDAExecutionProvider',
	'tensorrt': 'TensorrtExecutionProvider',
	'cpu': 'CPUExecutionProvider',
}
video_memory_strategies: List[str] = ['strict', 'moderate', 'tolerant']
download_providers: List[str] = ['github', 'huggingface']
download_scopes: List[str] = ['lite', 'full']
log_levels: List[str] = ['error', 'warn', 'info', 'debug']
# the folders of a jobs path, as in 3.5.0
job_statuses: List[str] = ['drafted', 'queued', 'completed', 'failed']

temp_frame_formats: List[str] = ['bmp', 'jpeg', 'png', 'tiff']
workflow_strategies: List[str] = ['memory', 'disk']
output_audio_streams: List[str] = ['all', 'first']
output_video_pixel_formats: List[str] = ['auto', 'yuv420p']
output_audio_encoders: List[str] = ['aac', 'libmp3lame', 'libopus', 'libvorbis', 'flac', 'pcm_s16le', 'pcm_s32le']
output_video_encoders: List[str] = [
	'libx264', 'libx264rgb', 'libx265', 'libvpx-vp9', 'h264_nvenc', 'hevc_nvenc', 'h264_amf', 'hevc_amf',
	'h264_qsv', 'hevc_qsv', 'h264_videotoolbox', 'hevc_videotoolbox', 'rawvideo'
]
output_video_presets: List[str] = [
	'ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'
]
face_trackers: List[str] = ['optical-flow', 'none']
temporal_smoothings: List[str] = ['one-euro', 'none']
quality_alert_tpsnr_drop_range: Tuple[float, float] = (0.0, 100.0)
quality_alert_face_ssim_range: Tuple[float, float] = (0.0, 1.0)
video_decoders: List[str] = ['auto', 'cpu', 'nvdec']
video_encoder_routes: List[str] = ['auto', 'cpu', 'nvenc']

benchmark_modes: List[str] = ['warm', 'cold']
benchmark_resolutions: List[str] = ['240p', '360p', '540p', '720p', '1080p', '1440p', '2160p']

image_extensions: Tuple[str, ...] = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')
video_extensions: Tuple[str, ...] = ('.avi', '.m4v', '.mkv', '.mp4', '.mpeg', '.mpg', '.mov', '.mxf', '.webm', '.wmv')
audio_extensions: Tuple[str, ...] = ('.aac', '.flac', '.m4a', '.mp3', '.ogg', '.opus', '.wav')


def float_range(start: float, stop: float, step: float) -> List[float]:
	"""Inclusive range of floats rounded to the step's precision (argparse choices / UI sliders)."""
	count = int(round((stop - start) / step))
	return [round(start + index * step, 2) for index in range(count + 1)]


face_detector_score_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
face_landmarker_score_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
face_mask_blur_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
reference_face_distance_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
face_swapper_weight_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
face_enhancer_blend_range: Tuple[int, int] = (0, 100)
face_enhancer_weight_range: Sequence[float] = float_range(0.0, 1.0, 0.05)
output_image_scale_range: Sequence[float] = float_range(0.25, 8.0, 0.25)
output_video_scale_range: Sequence[float] = float_range(0.25, 8.0, 0.25)
execution_thread_count_range: Tuple[int, int] = (1, 32)
system_memory_limit_range: Tuple[int, int] = (0, 128)
