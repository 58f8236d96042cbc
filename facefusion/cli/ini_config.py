"""The --config-path INI file, as in FaceFusion 3.5.0.

Sections mirror the option groups ([paths], [face_detector], [processors] ...) and keys are the option names without
dashes (`face_detector_model`). An empty value means "use the default". Values from the file replace the defaults;
values given on the command line replace both. A missing file at the default path is fine (most people have none);
a path given explicitly that does not exist is an error.

This module reads the file and converts values with the argparse action of the option they belong to, so an INI
value is checked exactly like the same value typed on the command line.
"""
from __future__ import annotations

import argparse
import configparser
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from facefusion.errors import FaceFusionError

DEFAULT_CONFIG_PATH = 'facefusion.ini'
TRUE_WORDS = ('true', 'yes', 'on', '1')
FALSE_WORDS = ('false', 'no', 'off', '0')

# Section of every key, following 3.5.0's facefusion.ini; keys new in this engine join the section of their group
# (workflow_strategy, video_decoder and video_encoder_route form a [workflow] section of their own).
SECTION_KEYS: Dict[str, List[str]] = {
	'paths': ['temp_path', 'jobs_path', 'models_path', 'source_paths', 'target_path', 'output_path'],
	'patterns': ['source_pattern', 'target_pattern', 'output_pattern'],
	'face_detector': [
		'face_detector_model', 'face_detector_size', 'face_detector_margin', 'face_detector_angles', 'face_detector_score'
	],
	'face_landmarker': ['face_landmarker_model', 'face_landmarker_score'],
	'face_selector': [
		'face_selector_mode', 'face_selector_order', 'face_selector_age_start', 'face_selector_age_end',
		'face_selector_gender', 'face_selector_race', 'reference_face_position', 'reference_face_distance',
		'reference_frame_number'
	],
	'face_masker': [
		'face_occluder_model', 'face_parser_model', 'face_mask_types', 'face_mask_areas', 'face_mask_regions',
		'face_mask_blur', 'face_mask_padding'
	],
	'frame_extraction': ['trim_frame_start', 'trim_frame_end', 'temp_frame_format', 'keep_temp'],
	'output_creation': [
		'output_image_quality', 'output_image_scale', 'output_audio_encoder', 'output_audio_quality',
		'output_audio_volume', 'output_audio_streams', 'output_video_encoder', 'output_video_preset', 'output_video_pixel_format', 'output_video_quality',
		'output_video_scale', 'output_video_fps'
	],
	'processors': [
		'processors', 'face_debugger_items', 'face_swapper_model', 'face_swapper_pixel_boost', 'face_swapper_weight',
		'face_swapper_batching', 'face_swapper_use_trt', 'face_swapper_trt_max_batch', 'face_enhancer_model',
		'face_enhancer_blend', 'face_enhancer_weight', 'face_enhancer_use_trt', 'face_enhancer_trt_max_batch',
		'face_swapper_blend_mode', 'face_swapper_blend_levels', 'face_swapper_color_match',
		'face_swapper_color_match_strength', 'face_swapper_linear_light'
	],
	'workflow': ['workflow_strategy', 'video_decoder', 'video_encoder_route'],
	'face_tracker': [
		'face_tracker', 'face_tracker_detect_interval', 'face_tracker_flow_error', 'temporal_smoothing',
		'temporal_smoothing_min_cutoff', 'temporal_smoothing_beta', 'face_landmarks_export'
	],
	'quality': ['quality_report', 'quality_plot', 'quality_alert_tpsnr_drop', 'quality_alert_face_ssim'],
	'uis': ['open_browser', 'ui_layouts', 'ui_workflow'],
	'download': ['download_providers', 'download_scope'],
	'benchmark': ['benchmark_mode', 'benchmark_resolutions', 'benchmark_cycle_count'],
	'execution': ['execution_device_ids', 'execution_providers', 'execution_thread_count'],
	'cluster': ['cluster_address', 'cluster_worker_cpus'],
	'memory': ['video_memory_strategy', 'system_memory_limit'],
	'misc': ['log_level', 'halt_on_error'],
}
KEY_SECTIONS: Dict[str, str] = {key: section for section, keys in SECTION_KEYS.items() for key in keys}
# keys 3.5.0's own facefusion.ini carries for processors and features this engine does not have: accepted quietly,
# so a FaceFusion user's INI file works unchanged
FOREIGN_KEYS = (
	'voice_extractor_model', 'age_modifier_', 'background_remover_', 'deep_swapper_', 'expression_restorer_',
	'face_editor_', 'frame_colorizer_', 'frame_enhancer_', 'lip_syncer_'
)


class IniError(FaceFusionError):
	"""A config file that cannot be used; the CLI reports it like a bad option (exit 2)."""
	exit_code = 2


@dataclass
class IniEntry:
	section: str
	key: str
	raw: str


@dataclass
class IniFile:
	path: Optional[str]
	entries: Dict[str, IniEntry] = field(default_factory=dict)
	warnings: List[str] = field(default_factory=list)


def resolve_config_path(given: Optional[str]) -> tuple[str, bool]:
	"""(path, explicit): the path to read and whether the user named it."""
	if given:
		return given, True
	return DEFAULT_CONFIG_PATH, False


def read_ini(path: str, explicit: bool) -> IniFile:
	"""The non-empty values of the file, keyed by option dest."""
	if not os.path.exists(path):
		if explicit:
			raise IniError(f'config file not found: {path}')
		return IniFile(path=None)
	if os.path.isdir(path):
		raise IniError(f'config path is a directory, not a file: {path}')
	parser = configparser.ConfigParser(interpolation=None)
	try:
		with open(path, encoding='utf-8') as handle:
			parser.read_file(handle)
	except (configparser.Error, UnicodeDecodeError, OSError) as exception:
		summary = ' '.join(str(exception).split())
		raise IniError(f'cannot read config file {path}: {summary}') from exception
	ini_file = IniFile(path=path)
	for section in parser.sections():
		for key, raw in parser.items(section):
			value = raw.strip()
			if not value:
				continue
			if key not in KEY_SECTIONS:
				if not key.startswith(FOREIGN_KEYS):
					ini_file.warnings.append(f'{path}: unknown option [{section}] {key} is ignored')
				continue
			if KEY_SECTIONS[key] != section:
				ini_file.warnings.append(f'{path}: {key} belongs in [{KEY_SECTIONS[key]}], not [{section}]; using it anyway')
			ini_file.entries[key] = IniEntry(section, key, value)
	return ini_file


def parse_bool(text: str) -> bool:
	word = text.strip().lower()
	if word in TRUE_WORDS:
		return True
	if word in FALSE_WORDS:
		return False
	raise ValueError(f'expected true or false, got {text!r}')


def _convert_one(action: argparse.Action, text: str) -> Any:
	value: Any = text
	if action.type is not None:
		try:
			value = action.type(text)
		except argparse.ArgumentTypeError as exception:
			raise ValueError(str(exception)) from exception
		except (TypeError, ValueError) as exception:
			raise ValueError(f'invalid value {text!r}') from exception
	if action.choices is not None and value not in action.choices:
		shown = ', '.join(str(choice) for choice in action.choices)
		raise ValueError(f'invalid choice {text!r} (choose from {shown})')
	return value


def convert_value(action: argparse.Action, raw: str) -> Any:
	"""An INI string → the value argparse would produce for the same text on the command line."""
	if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
		return parse_bool(raw)
	if action.nargs in ('+', '*') or isinstance(action.nargs, int):
		return [_convert_one(action, item) for item in raw.split()]
	return _convert_one(action, raw)


def ini_defaults(ini_file: IniFile, actions: Sequence[argparse.Action]) -> Dict[str, Any]:
	"""Converted values for the options the command has; keys of other commands are skipped (one file serves all)."""
	by_dest = {action.dest: action for action in actions if action.option_strings}
	defaults: Dict[str, Any] = {}
	for key, entry in ini_file.entries.items():
		action = by_dest.get(key)
		if action is None:
			continue
		try:
			defaults[key] = convert_value(action, entry.raw)
		except ValueError as exception:
			raise IniError(f'{ini_file.path}: [{entry.section}] {key}: {exception}') from exception
	return defaults
