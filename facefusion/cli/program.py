"""The command line: FaceFusion 3.5.0's commands and options (same names, choices, defaults) plus this engine's own.

`build_config(argv)` is the one way in: it parses argv, merges the --config-path INI file under it (command line
wins), checks the combinations argparse cannot check alone, and returns a frozen RunConfig whose field names are the
option dests. Every bad value ends in argparse's usual error and exit code 2, before any work starts.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from facefusion import choices, logger
from facefusion.cli import ini_config
from facefusion.config import RunConfig, default_models_path
from facefusion.errors import FaceFusionError
from facefusion.metadata import COMPATIBLE_VERSION, NAME, VERSION

PROGRAM_NAME = 'facefusion.py'
# new options of this engine; kept here until choices.py grows them
face_swapper_batchings: List[str] = ['auto', 'always', 'never']
face_swapper_trt_max_batch_range: Tuple[int, int] = (1, 64)
ui_workflows: List[str] = ['instant_runner', 'job_runner', 'job_manager']
ui_layouts: List[str] = ['benchmark', 'default', 'jobs', 'webcam']


# ---- value types: each raises ArgumentTypeError with a message argparse prints as is -----------------------------

def int_range(low: int, high: int) -> Callable[[str], int]:
	def convert(text: str) -> int:
		try:
			value = int(text)
		except ValueError:
			raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
		if not low <= value <= high:
			raise argparse.ArgumentTypeError(f'{value} is out of range (allowed: {low} to {high})')
		return value
	convert.__name__ = 'int'
	return convert


def float_range(low: float, high: float) -> Callable[[str], float]:
	# any value in range is accepted, not only 3.5.0's 0.05 steps: a superset, so every 3.5.0 command still works
	def convert(text: str) -> float:
		try:
			value = float(text)
		except ValueError:
			raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
		if not low <= value <= high:
			raise argparse.ArgumentTypeError(f'{value:g} is out of range (allowed: {low:g} to {high:g})')
		return value
	convert.__name__ = 'float'
	return convert


def non_negative_int(text: str) -> int:
	try:
		value = int(text)
	except ValueError:
		raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
	if value < 0:
		raise argparse.ArgumentTypeError(f'{value} must not be negative')
	return value


def device_id(text: str) -> str:
	# kept as strings like 3.5.0 (3.5.1 switched to ints); checked so a typo fails here, not inside a provider
	if not text.isdigit():
		raise argparse.ArgumentTypeError(f'{text!r} is not a device id (a whole number such as 0)')
	return text


def range_metavar(low: float, high: float) -> str:
	return f'[{low:g}..{high:g}]'


def size_key(size: str) -> int:
	return int(size.split('x')[0])


def union_of(sets: Dict[str, List[str]]) -> List[str]:
	return sorted({item for items in sets.values() for item in items}, key=size_key)


def swapper_model_size(model: str) -> int:
	"""The model's own crop size, from its name (hyperswap_1a_256 → 256, inswapper_128_fp16 → 128)."""
	match = re.search(r'_(\d+)(?:_fp16)?$', model)
	return int(match.group(1)) if match else 0


def valid_pixel_boosts(model: str) -> List[str]:
	model_size = swapper_model_size(model)
	return [boost for boost in choices.face_swapper_set[model] if model_size and size_key(boost) % model_size == 0]


def expand_sides(values: Sequence[int], option: str) -> Tuple[int, int, int, int]:
	"""CSS-style: 1 value for all sides, 2 = vertical horizontal, 3 = top horizontal bottom, 4 = top right bottom left."""
	values = list(values)
	if not 1 <= len(values) <= 4:
		raise ValueError(f'{option} takes 1 to 4 values, got {len(values)}')
	if len(values) == 1:
		values = values * 4
	elif len(values) == 2:
		values = values * 2
	elif len(values) == 3:
		values = values + [values[1]]
	return values[0], values[1], values[2], values[3]


# ---- execution providers ----------------------------------------------------------------------------------------

def execution_provider_choices() -> Tuple[List[str], List[str]]:
	"""(choices, default): the providers the installed onnxruntime offers as short names, and the first of them."""
	from facefusion.inference.installed_providers import installed_providers
	installed = set(installed_providers())
	available = [short for short, long in choices.execution_provider_names.items() if long in installed]
	# cpu stays a valid choice even on an exotic build, so `--execution-providers cpu` always parses
	if 'cpu' not in available:
		available.append('cpu')
	return available, available[:1]


# ---- help formatting -------------------------------------------------------------------------------------------

def describe_default(value: Any) -> str:
	if value is None:
		return 'none'
	if isinstance(value, bool):
		return 'on' if value else 'off'
	if isinstance(value, (list, tuple)):
		return ' '.join(str(item) for item in value) or 'none'
	return str(value)


class HelpFormatter(argparse.HelpFormatter):
	"""Appends '(default: ...)' to every option, lists shown space-separated as they are typed."""

	def __init__(self, prog: str) -> None:
		super().__init__(prog, max_help_position=40)

	def _get_help_string(self, action: argparse.Action) -> str:
		text = action.help or ''
		if not action.option_strings or action.default is argparse.SUPPRESS or '(default:' in text:
			return text
		if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
			return text
		# argparse %-formats help strings, so a literal % in a default must be doubled
		shown = describe_default(action.default).replace('%', '%%')
		return f'{text} (default: {shown})'.strip()


# ---- option groups (titles and order follow 3.5.0's --help) -------------------------------------------------------

def add_config_path_argument(group: Any) -> None:
	# default None so an explicitly named file can be told apart from the default one (which may be absent)
	group.add_argument(
		'--config-path', dest='config_path', default=None, metavar='PATH',
		help=f'INI file with option values; command-line values win (default: {ini_config.DEFAULT_CONFIG_PATH})'
	)


def add_models_path_argument(group: Any) -> None:
	group.add_argument(
		'--models-path', dest='models_path', default=default_models_path(), metavar='PATH',
		help='folder holding the model files (also set by the FACEFUSION_MODELS_PATH environment variable)'
	)


def add_path_arguments(parser: argparse.ArgumentParser, with_media_paths: bool, with_target_path: bool = True) -> None:
	group = parser.add_argument_group('paths')
	add_config_path_argument(group)
	group.add_argument('--temp-path', dest='temp_path', default=tempfile.gettempdir(), metavar='PATH', help='folder for temporary files')
	group.add_argument('--jobs-path', dest='jobs_path', default='.jobs', metavar='PATH', help='folder for job files')
	add_models_path_argument(group)
	if with_media_paths:
		group.add_argument('-s', '--source-paths', '--source', dest='source_paths', nargs='+', default=[], metavar='PATH', help='source image(s) whose face is used')
		if with_target_path:
			group.add_argument('-t', '--target-path', '--target', dest='target_path', default=None, metavar='PATH', help='target image or video')
		group.add_argument('-o', '--output-path', '--output', dest='output_path', default=None, metavar='PATH', help='output file (a bare file name writes to the current folder)')


def add_pattern_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('patterns', 'glob patterns; the output pattern takes {index}, {source_name}, {target_name} and {target_extension} (with its dot)')
	group.add_argument('-s', '--source-pattern', dest='source_pattern', default=None, metavar='PATTERN', help='source images, e.g. "sources/*.jpg"')
	group.add_argument('-t', '--target-pattern', dest='target_pattern', default=None, metavar='PATTERN', help='targets, e.g. "targets/*.mp4"')
	group.add_argument('-o', '--output-pattern', dest='output_pattern', default=None, metavar='PATTERN', help='outputs, e.g. "outputs/{index}-{target_name}{target_extension}"')


def add_face_detector_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('face detector')
	group.add_argument('--face-detector-model', choices=choices.face_detector_models, default='yolo_face', help='face detection model')
	group.add_argument('--face-detector-size', choices=union_of(choices.face_detector_set), default='640x640', help='detection size; must be offered by the chosen model')
	group.add_argument('--face-detector-margin', nargs='+', type=int_range(0, 100), default=[0, 0, 0, 0], metavar='[0..100]', help='margin around the frame for detection, 1 to 4 values like CSS (top right bottom left)')
	group.add_argument('--face-detector-angles', nargs='+', type=int, choices=choices.face_detector_angles, default=[0], metavar='{0,90,180,270}', help='also detect in frames rotated by these angles')
	group.add_argument('--face-detector-score', type=float_range(0.0, 1.0), default=0.5, metavar=range_metavar(0, 1), help='minimum detection score')


def add_face_landmarker_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('face landmarker')
	group.add_argument('--face-landmarker-model', choices=choices.face_landmarker_models, default='2dfan4', help='68-point landmark model')
	group.add_argument('--face-landmarker-score', type=float_range(0.0, 1.0), default=0.5, metavar=range_metavar(0, 1), help='minimum landmarker score to use its 68 points (0 skips the landmarker)')


def add_face_selector_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('face selector')
	group.add_argument('--face-selector-mode', choices=choices.face_selector_modes, default='reference', help='which target faces are processed')
	group.add_argument('--face-selector-order', choices=choices.face_selector_orders, default='large-small', help='order of the detected faces')
	group.add_argument('--face-selector-age-start', type=int_range(0, 100), default=None, metavar='[0..100]', help='only faces at least this old')
	group.add_argument('--face-selector-age-end', type=int_range(0, 100), default=None, metavar='[0..100]', help='only faces at most this old')
	group.add_argument('--face-selector-gender', choices=choices.face_selector_genders, default=None, help='only faces of this gender')
	group.add_argument('--face-selector-race', choices=choices.face_selector_races, default=None, help='only faces of this race')
	group.add_argument('--reference-face-position', type=non_negative_int, default=0, metavar='INDEX', help='position of the reference face in the reference frame')
	group.add_argument('--reference-face-distance', type=float_range(0.0, 1.0), default=0.3, metavar=range_metavar(0, 1), help='how similar a face must be to the reference face')
	group.add_argument('--reference-frame-number', type=non_negative_int, default=0, metavar='FRAME', help='frame of a video target the reference face is taken from')


def add_face_masker_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('face masker')
	group.add_argument('--face-occluder-model', choices=choices.face_occluder_models, default='xseg_1', help='occlusion mask model')
	group.add_argument('--face-parser-model', choices=choices.face_parser_models, default='bisenet_resnet_34', help='region mask model')
	group.add_argument('--face-mask-types', nargs='+', choices=choices.face_mask_types, default=['box'], metavar='TYPE', help=f'masks combined on the face: {", ".join(choices.face_mask_types)}')
	group.add_argument('--face-mask-areas', nargs='+', choices=choices.face_mask_areas, default=list(choices.face_mask_areas), metavar='AREA', help=f'areas of the area mask: {", ".join(choices.face_mask_areas)}')
	group.add_argument('--face-mask-regions', nargs='+', choices=choices.face_mask_regions, default=list(choices.face_mask_regions), metavar='REGION', help=f'regions of the region mask: {", ".join(choices.face_mask_regions)}')
	group.add_argument('--face-mask-blur', type=float_range(0.0, 1.0), default=0.3, metavar=range_metavar(0, 1), help='blur of the box mask edge')
	group.add_argument('--face-mask-padding', nargs='+', type=int_range(0, 100), default=[0, 0, 0, 0], metavar='[0..100]', help='box mask padding in percent, 1 to 4 values like CSS (top right bottom left)')


def add_frame_extraction_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('frame extraction')
	group.add_argument('--trim-frame-start', type=non_negative_int, default=None, metavar='FRAME', help='first frame of the video to process')
	group.add_argument('--trim-frame-end', type=non_negative_int, default=None, metavar='FRAME', help='frame of the video where processing stops')
	group.add_argument('--temp-frame-format', choices=choices.temp_frame_formats, default='png', help='image format of temporary frames (disk workflow)')
	group.add_argument('--keep-temp', action='store_true', default=False, help='keep temporary files after the run')


def add_output_creation_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('output creation')
	group.add_argument('--output-image-quality', type=int_range(0, 100), default=80, metavar='[0..100]', help='image quality (jpeg, webp)')
	group.add_argument('--output-image-scale', type=float_range(0.25, 8.0), default=1.0, metavar=range_metavar(0.25, 8), help='image size relative to the target')
	group.add_argument('--output-audio-encoder', choices=choices.output_audio_encoders, default=None, help='audio encoder (default: the first available that works in the output container)')
	group.add_argument('--output-audio-quality', type=int_range(0, 100), default=80, metavar='[0..100]', help='audio quality')
	group.add_argument('--output-audio-streams', choices=choices.output_audio_streams, default='all', help="which of the target's audio streams the output keeps (all: every language track, first: only the first)")
	group.add_argument('--output-audio-volume', type=int_range(0, 100), default=100, metavar='[0..100]', help='audio volume in percent (0 drops the audio)')
	group.add_argument('--output-video-encoder', choices=choices.output_video_encoders, default=None, help='video encoder (default: the first available that works in the output container)')
	group.add_argument('--output-video-preset', choices=choices.output_video_presets, default='veryfast', help='encoder speed preset')
	group.add_argument('--output-video-pixel-format', choices=choices.output_video_pixel_formats, default='auto', help='auto: a 4:4:4 or 10-bit target keeps its chroma and depth where the encoder can; yuv420p: always 8-bit 4:2:0 (as 3.5.0)')
	group.add_argument('--output-video-quality', type=int_range(0, 100), default=80, metavar='[0..100]', help='video quality')
	group.add_argument('--output-video-scale', type=float_range(0.25, 8.0), default=1.0, metavar=range_metavar(0.25, 8), help='video size relative to the target')
	group.add_argument('--output-video-fps', type=float_range(1.0, 60.0), default=None, metavar=range_metavar(1, 60), help="output frame rate (default: the target's fps)")


def add_processor_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('processors')
	group.add_argument('--processors', nargs='+', choices=choices.processors, default=['face_swapper'], metavar='PROCESSOR', help=f'processors to run in order: {", ".join(choices.processors)}')
	group.add_argument('--face-debugger-items', nargs='+', choices=choices.face_debugger_items, default=['face-landmark-5/68', 'face-mask'], metavar='ITEM', help=f'what the face debugger draws: {", ".join(choices.face_debugger_items)}')
	group.add_argument('--face-swapper-model', choices=choices.face_swapper_models, default='hyperswap_1a_256', help='face swap model')
	group.add_argument(
		'--face-swapper-pixel-boost', choices=union_of(choices.face_swapper_set), default=None,
		help="swap resolution; must be offered by the chosen model (default: the model's first choice, e.g. 256x256 for hyperswap_1a_256)"
	)
	group.add_argument('--face-swapper-weight', type=float_range(0.0, 1.0), default=0.5, metavar=range_metavar(0, 1), help='source identity weight (0.5 = pure source)')
	group.add_argument('--face-swapper-batching', choices=face_swapper_batchings, default='auto', help="batch faces and pixel-boost tiles into few model calls (never = 3.5.0's one call per tile)")
	group.add_argument('--face-swapper-use-trt', action='store_true', default=False, help='run the swapper through a TensorRT engine when TensorRT is available')
	low, high = face_swapper_trt_max_batch_range
	group.add_argument('--face-swapper-trt-max-batch', type=int_range(low, high), default=16, metavar=range_metavar(low, high), help='largest batch the TensorRT engine is built for')
	group.add_argument('--face-swapper-blend-mode', choices=choices.face_swapper_blend_modes, default='multi-band', help="how the swapped face is pasted: multi-band (Laplacian-pyramid blend) or feather (3.5.0's mask blend; with --face-swapper-color-match none it is 3.5.0's paste)")
	low, high = choices.face_swapper_blend_levels_range
	group.add_argument('--face-swapper-blend-levels', type=int_range(low, high), default=0, metavar=range_metavar(low, high), help='pyramid levels of the multi-band blend (0 = by paste box size)')
	group.add_argument('--face-swapper-color-match', choices=choices.face_swapper_color_matches, default='mean-std', help="move the swapped face's colour towards the target face's (L*a*b*, over the face mask)")
	group.add_argument('--face-swapper-color-match-strength', type=float_range(0.0, 1.0), default=1.0, metavar=range_metavar(0, 1), help='how far the colour match moves the swapped face (0 = not at all)')
	group.add_argument('--face-swapper-linear-light', action='store_true', default=False, help='blend in linear light (no dark fringe at soft edges)')
	group.add_argument('--face-enhancer-model', choices=choices.face_enhancer_models, default='gfpgan_1.4', help='face enhancer model')
	blend_low, blend_high = choices.face_enhancer_blend_range
	group.add_argument('--face-enhancer-blend', type=int_range(blend_low, blend_high), default=80, metavar=range_metavar(blend_low, blend_high), help='how much of the enhanced face is blended in (percent)')
	group.add_argument('--face-enhancer-weight', type=float_range(0.0, 1.0), default=0.5, metavar=range_metavar(0, 1), help='fidelity weight, fed to models with a weight input (codeformer)')
	group.add_argument('--face-enhancer-use-trt', action='store_true', default=False, help='run the enhancer through a TensorRT engine when TensorRT is available')
	low, high = face_swapper_trt_max_batch_range
	group.add_argument('--face-enhancer-trt-max-batch', type=int_range(low, high), default=8, metavar=range_metavar(low, high), help="largest batch the enhancer's TensorRT engine is built for")


def add_workflow_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('workflow')
	group.add_argument('--workflow-strategy', choices=choices.workflow_strategies, default='memory', help='memory streams frames through pipes; disk writes temporary frames like 3.5.0')
	group.add_argument('--video-decoder', choices=choices.video_decoders, default='auto', help='video decoding route (nvdec needs an NVIDIA GPU)')
	group.add_argument('--video-encoder-route', choices=choices.video_encoder_routes, default='auto', help='video encoding route (nvenc needs an NVIDIA GPU)')


def add_face_tracker_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('face tracker', 'video targets: detect on keyframes, carry faces between them, smooth their landmarks')
	group.add_argument('--face-tracker', choices=choices.face_trackers, default='optical-flow', help='optical-flow: full analysis on keyframes only; none: full analysis on every frame (3.5.0)')
	group.add_argument('--face-tracker-detect-interval', type=int_range(1, 60), default=6, metavar=range_metavar(1, 60), help='frames between keyframes (scene cuts, lost tracks and flow errors add keyframes)')
	group.add_argument('--face-tracker-flow-error', type=float_range(0.1, 5.0), default=1.0, metavar=range_metavar(0.1, 5), help='forward-backward optical flow error (px) above which a keyframe is forced')
	group.add_argument('--temporal-smoothing', choices=choices.temporal_smoothings, default='one-euro', help='landmark and alignment smoothing per tracked face')
	group.add_argument('--temporal-smoothing-min-cutoff', type=float_range(0.05, 10.0), default=0.5, metavar=range_metavar(0.05, 10), help='One-Euro minimum cutoff in Hz (lower = steadier when still)')
	group.add_argument('--temporal-smoothing-beta', type=float_range(0.0, 20.0), default=1.0, metavar=range_metavar(0, 20), help='One-Euro speed coefficient (higher = less lag when moving)')
	group.add_argument('--face-landmarks-export', default=None, metavar='PATH', help='write the raw and smoothed 5-point landmarks per frame and track to a .json or .csv file')


def add_quality_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('quality monitor', 'video targets: per-frame PSNR / SSIM / temporal PSNR of the output against the input, with alerts')
	group.add_argument('--quality-report', default=None, metavar='PATH', help='write the per-frame, per-face quality figures to this .csv file')
	group.add_argument('--quality-plot', default=None, metavar='PATH', help='draw temporal PSNR in / out, jitter and alerts over time into this .png file')
	low, high = choices.quality_alert_tpsnr_drop_range
	group.add_argument('--quality-alert-tpsnr-drop', type=float_range(low, high), default=16.0, metavar=range_metavar(low, high), help='alert when the output face tPSNR falls this many dB below the input one')
	low, high = choices.quality_alert_face_ssim_range
	group.add_argument('--quality-alert-face-ssim', type=float_range(low, high), default=0.2, metavar=range_metavar(low, high), help='alert when the SSIM inside a face (output vs input) falls below this')


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
	# 3.5.0's UI options; only the default layout and the instant runner exist in this build (others are accepted)
	group = parser.add_argument_group('uis')
	group.add_argument('--open-browser', action='store_true', default=False, help='open the browser once the UI is ready')
	group.add_argument('--ui-layouts', nargs='+', choices=ui_layouts, default=['default'], metavar='LAYOUT', help=f'UI layouts: {", ".join(ui_layouts)}')
	group.add_argument('--ui-workflow', choices=ui_workflows, default='instant_runner', help='UI workflow')


def add_download_arguments(parser: argparse.ArgumentParser, with_scope: bool) -> None:
	group = parser.add_argument_group('download')
	group.add_argument('--download-providers', nargs='+', choices=choices.download_providers, default=list(choices.download_providers), metavar='PROVIDER', help=f'where models are downloaded from, in order: {", ".join(choices.download_providers)}')
	if with_scope:
		group.add_argument('--download-scope', choices=choices.download_scopes, default='lite', help='which models to download')


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('execution')
	provider_choices, provider_default = execution_provider_choices()
	low, high = choices.execution_thread_count_range
	group.add_argument('--execution-device-ids', nargs='+', type=device_id, default=['0'], metavar='ID', help='GPU device ids')
	group.add_argument('--execution-providers', nargs='+', choices=provider_choices, default=provider_default, metavar='PROVIDER', help=f'inference providers, in order of preference; available here: {", ".join(provider_choices)}')
	group.add_argument('--execution-thread-count', type=int_range(low, high), default=8, metavar=range_metavar(low, high), help='worker threads for frames')
	add_cluster_arguments(parser)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('cluster')
	group.add_argument('--cluster-address', default=None, metavar='ADDRESS', help='run batch-run items, job steps and video segments on a Ray cluster: auto, ray://HOST:PORT or HOST:PORT (needs pip install .[cluster])')
	group.add_argument('--cluster-worker-cpus', type=int_range(1, 256), default=1, metavar=range_metavar(1, 256), help='CPU cores each cluster worker asks for when the models run on the CPU (a GPU worker asks for one GPU)')


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('memory')
	low, high = choices.system_memory_limit_range
	group.add_argument('--video-memory-strategy', choices=choices.video_memory_strategies, default='strict', help='how eagerly models are released between stages (strict frees most)')
	group.add_argument('--system-memory-limit', type=int_range(low, high), default=0, metavar=range_metavar(low, high), help="limit of the process's memory in GiB (0 = no limit)")


def add_misc_arguments(parser: argparse.ArgumentParser, with_halt_on_error: bool = False) -> None:
	group = parser.add_argument_group('misc')
	group.add_argument('--log-level', choices=choices.log_levels, default='info', help='how much is logged')
	if with_halt_on_error:
		group.add_argument('--halt-on-error', action='store_true', default=False, help='stop at the first job that fails')


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
	"""The options of one processing step (everything but paths), shared by run, headless-run and batch-run."""
	add_face_detector_arguments(parser)
	add_face_landmarker_arguments(parser)
	add_face_selector_arguments(parser)
	add_face_masker_arguments(parser)
	add_frame_extraction_arguments(parser)
	add_output_creation_arguments(parser)
	add_processor_arguments(parser)
	add_workflow_arguments(parser)
	add_face_tracker_arguments(parser)
	add_quality_arguments(parser)


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
	"""Options of the running command rather than of a step (3.5.0's "job keys")."""
	add_execution_arguments(parser)
	add_download_arguments(parser, with_scope=False)
	add_memory_arguments(parser)
	add_misc_arguments(parser)


def build_run_parser(parser: argparse.ArgumentParser) -> None:
	add_path_arguments(parser, with_media_paths=True)
	add_step_arguments(parser)
	add_ui_arguments(parser)
	add_job_arguments(parser)


def build_headless_run_parser(parser: argparse.ArgumentParser) -> None:
	add_path_arguments(parser, with_media_paths=True)
	add_step_arguments(parser)
	add_job_arguments(parser)


def build_batch_run_parser(parser: argparse.ArgumentParser) -> None:
	add_path_arguments(parser, with_media_paths=False)
	add_pattern_arguments(parser)
	add_step_arguments(parser)
	add_job_arguments(parser)


def build_force_download_parser(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('paths')
	add_config_path_argument(group)
	add_models_path_argument(group)
	add_download_arguments(parser, with_scope=True)
	add_misc_arguments(parser)


# ---- benchmark (begin) ----
def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('benchmark')
	group.add_argument('-s', '--source-paths', '--source', dest='source_paths', nargs='+', default=[], metavar='PATH', help='source image(s) whose face is used (default: the bundled tests/data/obama.jpg)')
	group.add_argument('--benchmark-mode', choices=choices.benchmark_modes, default='warm', help='warm: one untimed run first, models stay loaded; cold: a fresh engine for every run')
	group.add_argument('--benchmark-resolutions', nargs='+', choices=choices.benchmark_resolutions, default=['240p'], metavar='RESOLUTION', help=f'example targets to run: {", ".join(choices.benchmark_resolutions)}')
	group.add_argument('--benchmark-cycle-count', type=int_range(1, 10), default=5, metavar=range_metavar(1, 10), help='timed runs per resolution')


def build_benchmark_parser(parser: argparse.ArgumentParser) -> None:
	add_path_arguments(parser, with_media_paths=False)
	add_benchmark_arguments(parser)
	add_step_arguments(parser)
	add_job_arguments(parser)
# ---- benchmark (end) ----


# ---- jobs (begin): 3.5.0's job commands; facefusion/jobs/ does the work ----
def add_jobs_path_only(parser: argparse.ArgumentParser) -> None:
	group = parser.add_argument_group('paths')
	group.add_argument('--jobs-path', dest='jobs_path', default='.jobs', metavar='PATH', help='folder for job files')


def add_job_id_argument(parser: argparse.ArgumentParser) -> None:
	parser.add_argument('job_id', metavar='JOB_ID', help='the job id (the name of its file: no / and no leading dot)')


def add_step_index_argument(parser: argparse.ArgumentParser) -> None:
	parser.add_argument('step_index', metavar='STEP_INDEX', type=int, help='index of a step, from 0 (negative counts from the end: -1 is the last)')


def build_job_list_parser(parser: argparse.ArgumentParser) -> None:
	parser.add_argument('job_status', metavar='JOB_STATUS', choices=choices.job_statuses, help=f'which jobs: {", ".join(choices.job_statuses)}')
	add_jobs_path_only(parser)
	add_misc_arguments(parser)


def build_job_id_parser(parser: argparse.ArgumentParser) -> None:
	add_job_id_argument(parser)
	add_jobs_path_only(parser)
	add_misc_arguments(parser)


def build_job_all_parser(parser: argparse.ArgumentParser) -> None:
	add_jobs_path_only(parser)
	add_misc_arguments(parser, with_halt_on_error=True)


def build_job_add_step_parser(parser: argparse.ArgumentParser) -> None:
	add_job_id_argument(parser)
	add_path_arguments(parser, with_media_paths=True)
	add_step_arguments(parser)
	add_misc_arguments(parser)


def build_job_remix_step_parser(parser: argparse.ArgumentParser) -> None:
	# no target: the remixed step's result is the target
	add_job_id_argument(parser)
	add_step_index_argument(parser)
	add_path_arguments(parser, with_media_paths=True, with_target_path=False)
	add_step_arguments(parser)
	add_misc_arguments(parser)


def build_job_insert_step_parser(parser: argparse.ArgumentParser) -> None:
	add_job_id_argument(parser)
	add_step_index_argument(parser)
	add_path_arguments(parser, with_media_paths=True)
	add_step_arguments(parser)
	add_misc_arguments(parser)


def build_job_remove_step_parser(parser: argparse.ArgumentParser) -> None:
	add_job_id_argument(parser)
	add_step_index_argument(parser)
	add_jobs_path_only(parser)
	add_misc_arguments(parser)


def build_job_run_parser(parser: argparse.ArgumentParser) -> None:
	add_job_id_argument(parser)
	add_path_arguments(parser, with_media_paths=False)
	add_execution_arguments(parser)
	add_download_arguments(parser, with_scope=False)
	add_memory_arguments(parser)
	add_misc_arguments(parser)


def build_job_run_all_parser(parser: argparse.ArgumentParser) -> None:
	add_path_arguments(parser, with_media_paths=False)
	add_execution_arguments(parser)
	add_download_arguments(parser, with_scope=False)
	add_memory_arguments(parser)
	add_misc_arguments(parser, with_halt_on_error=True)


JOB_COMMANDS: List[Tuple[str, str, Callable[[argparse.ArgumentParser], None], str]] = [
	('job-list', 'list the jobs of one status', build_job_list_parser, 'JOB_STATUS'),
	('job-create', 'create a drafted job', build_job_id_parser, 'JOB_ID'),
	('job-submit', 'submit a drafted job to the queue', build_job_id_parser, 'JOB_ID'),
	('job-submit-all', 'submit every drafted job', build_job_all_parser, ''),
	('job-delete', 'delete a job of any status', build_job_id_parser, 'JOB_ID'),
	('job-delete-all', 'delete every job', build_job_all_parser, ''),
	('job-add-step', 'add a step to a drafted job', build_job_add_step_parser, 'JOB_ID'),
	('job-remix-step', 'add a step whose target is the result of another step', build_job_remix_step_parser, 'JOB_ID STEP_INDEX'),
	('job-insert-step', 'insert a step into a drafted job before the step at STEP_INDEX', build_job_insert_step_parser, 'JOB_ID STEP_INDEX'),
	('job-remove-step', 'remove a step from a drafted job', build_job_remove_step_parser, 'JOB_ID STEP_INDEX'),
	('job-run', 'run a queued job', build_job_run_parser, 'JOB_ID'),
	('job-run-all', 'run every queued job', build_job_run_all_parser, ''),
	('job-retry', 'run a failed (or interrupted) job again, keeping the steps already done', build_job_run_parser, 'JOB_ID'),
	('job-retry-all', 'retry every failed job', build_job_run_all_parser, ''),
]
# ---- jobs (end) ----


@dataclass(frozen=True)
class Command:
	name: str
	help: str
	build: Callable[[argparse.ArgumentParser], None]
	# positional arguments shown in the usage line
	arguments: str = ''


# The commands in --help order. `benchmark` joins this list when the benchmarker lands: one Command entry here and a
# route in core.py; RunConfig already carries its fields (benchmark_mode, benchmark_resolutions, benchmark_cycle_count).
COMMANDS: List[Command] = [
	Command('run', 'run the program: the UI on 127.0.0.1:7860 (with -s/-t/-o it processes like headless-run)', build_run_parser),
	Command('headless-run', 'process a target without the UI', build_headless_run_parser),
	Command('batch-run', 'process every target (and source) a pattern matches', build_batch_run_parser),
	Command('force-download', 'download the models', build_force_download_parser),
	Command('benchmark', 'benchmark the pipeline on example targets made locally (resolutions, cycles, warm or cold)', build_benchmark_parser),
	*[Command(name, help_text, build, arguments) for name, help_text, build, arguments in JOB_COMMANDS],
]


@dataclass
class Program:
	parser: argparse.ArgumentParser
	commands: Dict[str, argparse.ArgumentParser] = field(default_factory=dict)


def create_program() -> Program:
	parser = argparse.ArgumentParser(
		prog=PROGRAM_NAME, description=f'{NAME} {VERSION}: {COMPATIBLE_VERSION}-compatible face swapping', formatter_class=HelpFormatter
	)
	parser.add_argument('-v', '--version', action='version', version=f'{NAME} {VERSION} (compatible with FaceFusion {COMPATIBLE_VERSION})')
	subparsers = parser.add_subparsers(dest='command', title='commands', metavar='COMMAND', required=True)
	program = Program(parser=parser)
	for command in COMMANDS:
		# a short usage line: the full one lists ~60 options and buries the error message argparse prints below it
		command_parser = subparsers.add_parser(
			command.name, help=command.help, description=command.help, usage=f'{PROGRAM_NAME} {command.name} {command.arguments + " " if command.arguments else ""}[options]',
			formatter_class=HelpFormatter
		)
		command.build(command_parser)
		program.commands[command.name] = command_parser
	return program


# ---- namespace → RunConfig ------------------------------------------------------------------------------------

def validate_values(values: Dict[str, Any]) -> List[str]:
	"""Checks that span several options (argparse checks one at a time). Returns messages, empty when fine."""
	errors: List[str] = []
	detector_model = values.get('face_detector_model')
	detector_size = values.get('face_detector_size')
	if detector_model and detector_size and detector_size not in choices.face_detector_set[detector_model]:
		offered = ', '.join(choices.face_detector_set[detector_model])
		errors.append(f'--face-detector-size {detector_size} is not offered by {detector_model} (choose from {offered})')

	swapper_model = values.get('face_swapper_model')
	pixel_boost = values.get('face_swapper_pixel_boost')
	if swapper_model and pixel_boost:
		usable = ', '.join(valid_pixel_boosts(swapper_model))
		model_size = swapper_model_size(swapper_model)
		if pixel_boost not in choices.face_swapper_set[swapper_model]:
			errors.append(f'--face-swapper-pixel-boost {pixel_boost} is not offered by {swapper_model} (choose from {usable})')
		elif pixel_boost not in valid_pixel_boosts(swapper_model):
			# 3.5.0 lists 384x384 for blendswap_256 and then fails inside the swap: refuse it up front
			errors.append(
				f'--face-swapper-pixel-boost {pixel_boost} cannot work with {swapper_model}: the boost size must be a '
				f"multiple of the model's {model_size} px (choose from {usable})"
			)

	age_start, age_end = values.get('face_selector_age_start'), values.get('face_selector_age_end')
	if age_start is not None and age_end is not None and age_start > age_end:
		errors.append(f'--face-selector-age-start {age_start} is greater than --face-selector-age-end {age_end}')

	trim_start, trim_end = values.get('trim_frame_start'), values.get('trim_frame_end')
	if trim_start is not None and trim_end is not None and trim_start >= trim_end:
		errors.append(f'--trim-frame-start {trim_start} must be lower than --trim-frame-end {trim_end}')

	if values.get('command') == 'batch-run':
		if not values.get('target_pattern'):
			errors.append('batch-run needs -t/--target-pattern')
		if not values.get('output_pattern'):
			errors.append('batch-run needs -o/--output-pattern')
	return errors


def namespace_values(namespace: argparse.Namespace) -> Dict[str, Any]:
	"""The parsed values shaped as RunConfig wants them (4-side tuples, resolved defaults)."""
	values = dict(vars(namespace))
	values['config_path'] = values.get('config_path') or ini_config.DEFAULT_CONFIG_PATH
	for key, option in (('face_detector_margin', '--face-detector-margin'), ('face_mask_padding', '--face-mask-padding')):
		if key in values:
			values[key] = expand_sides(values[key], option)
	# like 3.5.0's pre-parse: no explicit pixel boost means the chosen model's first (native) size
	if 'face_swapper_model' in values and not values.get('face_swapper_pixel_boost'):
		values['face_swapper_pixel_boost'] = choices.face_swapper_set[values['face_swapper_model']][0]
	return values


def to_config(values: Dict[str, Any]) -> RunConfig:
	known = set(RunConfig.field_names())
	return RunConfig(**{key: value for key, value in values.items() if key in known})


def build_config(argv: Optional[Sequence[str]] = None) -> RunConfig:
	"""argv (without the program name) → RunConfig. Exits with code 2 on any bad option, like argparse itself."""
	arguments = list(sys.argv[1:] if argv is None else argv)
	program = create_program()
	namespace = program.parser.parse_args(arguments)
	command_parser = program.commands[namespace.command]

	ini_warnings: List[str] = []
	if any(action.dest == 'config_path' for action in command_parser._actions):
		config_path, explicit = ini_config.resolve_config_path(namespace.config_path)
		try:
			ini_file = ini_config.read_ini(config_path, explicit)
			defaults = ini_config.ini_defaults(ini_file, command_parser._actions)
		except FaceFusionError as error:
			command_parser.error(error.message)
		ini_warnings = ini_file.warnings
		if defaults:
			# the file's values become the defaults, then argv is parsed again: whatever argv names wins
			command_parser.set_defaults(**defaults)
			namespace = program.parser.parse_args(arguments)

	try:
		values = namespace_values(namespace)
	except ValueError as exception:
		command_parser.error(str(exception))
	errors = validate_values(values)
	if errors:
		command_parser.error(errors[0])
	config = to_config(values)
	logger.init(config.log_level)
	for warning in ini_warnings:
		logger.get_logger().warning(warning)
	return config
