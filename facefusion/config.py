"""The typed run configuration: one field per command-line option, named as the option without dashes.

The CLI (``facefusion/cli/program.py``) builds a RunConfig from argv and an optional INI file; every module reads
the options it needs from the RunConfig it is handed. Defaults equal FaceFusion 3.5.0's unless a comment says
why not.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, List, Optional, Tuple

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


def default_models_path() -> str:
	return os.environ.get('FACEFUSION_MODELS_PATH') or str(PROJECT_DIR / '.assets' / 'models')


@dataclass(frozen=True)
class RunConfig:
	command: str = 'headless-run'

	# paths
	config_path: str = 'facefusion.ini'
	temp_path: str = field(default_factory=tempfile.gettempdir)
	jobs_path: str = '.jobs'
	models_path: str = field(default_factory=default_models_path)
	source_paths: List[str] = field(default_factory=list)
	target_path: Optional[str] = None
	output_path: Optional[str] = None

	# batch-run patterns
	source_pattern: Optional[str] = None
	target_pattern: Optional[str] = None
	output_pattern: Optional[str] = None

	# face detector
	face_detector_model: str = 'yolo_face'
	face_detector_size: str = '640x640'
	face_detector_margin: Tuple[int, int, int, int] = (0, 0, 0, 0)
	face_detector_angles: List[int] = field(default_factory=lambda: [0])
	face_detector_score: float = 0.5

	# face landmarker
	face_landmarker_model: str = '2dfan4'
	face_landmarker_score: float = 0.5

	# face selector
	face_selector_mode: str = 'reference'
	face_selector_order: str = 'large-small'
	face_selector_age_start: Optional[int] = None
	face_selector_age_end: Optional[int] = None
	face_selector_gender: Optional[str] = None
	face_selector_race: Optional[str] = None
	reference_face_position: int = 0
	reference_face_distance: float = 0.3
	reference_frame_number: int = 0

	# face masker
	face_occluder_model: str = 'xseg_1'
	face_parser_model: str = 'bisenet_resnet_34'
	face_mask_types: List[str] = field(default_factory=lambda: ['box'])
	face_mask_areas: List[str] = field(default_factory=lambda: ['upper-face', 'lower-face', 'mouth'])
	face_mask_regions: List[str] = field(default_factory=lambda: [
		'skin', 'left-eyebrow', 'right-eyebrow', 'left-eye', 'right-eye', 'glasses', 'nose', 'mouth', 'upper-lip',
		'lower-lip'
	])
	face_mask_blur: float = 0.3
	face_mask_padding: Tuple[int, int, int, int] = (0, 0, 0, 0)

	# frame extraction
	trim_frame_start: Optional[int] = None
	trim_frame_end: Optional[int] = None
	temp_frame_format: str = 'png'
	keep_temp: bool = False

	# output creation
	output_image_quality: int = 80
	output_image_scale: float = 1.0
	# None = resolved at run time: the first encoder the ffmpeg found offers that also works in the container
	output_audio_encoder: Optional[str] = None
	output_audio_quality: int = 80
	output_audio_volume: int = 100
	# 'all': every audio stream of the target, 'first': only the first (3.5.0 kept only that one)
	output_audio_streams: str = 'all'
	output_video_encoder: Optional[str] = None
	output_video_preset: str = 'veryfast'
	output_video_quality: int = 80
	# 'auto': a 4:4:4 / 10-bit target keeps its chroma and depth where the encoder can; 'yuv420p': 8-bit 4:2:0 always
	output_video_pixel_format: str = 'auto'
	output_video_scale: float = 1.0
	# None = the target's fps
	output_video_fps: Optional[float] = None

	# processors
	processors: List[str] = field(default_factory=lambda: ['face_swapper'])
	face_debugger_items: List[str] = field(default_factory=lambda: ['face-landmark-5/68', 'face-mask'])
	face_swapper_model: str = 'hyperswap_1a_256'
	# None = the model's first pixel boost choice
	face_swapper_pixel_boost: Optional[str] = None
	face_swapper_weight: float = 0.5
	# new in this engine
	face_swapper_batching: str = 'auto'
	face_swapper_use_trt: bool = False
	face_swapper_trt_max_batch: int = 16
	# the looks of the paste, defaults by measurement (README, Looks); feather / none / gamma space is 3.5.0's paste
	face_swapper_blend_mode: str = 'multi-band'
	face_swapper_blend_levels: int = 0
	face_swapper_color_match: str = 'mean-std'
	face_swapper_color_match_strength: float = 1.0
	face_swapper_linear_light: bool = False
	face_enhancer_model: str = 'gfpgan_1.4'
	face_enhancer_blend: int = 80
	face_enhancer_weight: float = 0.5
	# new in this engine: TensorRT for the enhancer, apart from the swapper's switch
	face_enhancer_use_trt: bool = False
	face_enhancer_trt_max_batch: int = 8

	# video pipeline (new in this engine; workflow_strategy is the name upstream 3.8 uses)
	workflow_strategy: str = 'memory'
	video_decoder: str = 'auto'
	video_encoder_route: str = 'auto'

	# face tracking and temporal smoothing (video targets; new in this engine)
	face_tracker: str = 'optical-flow'
	face_tracker_detect_interval: int = 6
	face_tracker_flow_error: float = 1.0
	temporal_smoothing: str = 'one-euro'
	temporal_smoothing_min_cutoff: float = 0.5
	temporal_smoothing_beta: float = 1.0
	face_landmarks_export: Optional[str] = None

	# quality monitor (video targets; new in this engine): off unless a report or a plot path is given
	quality_report: Optional[str] = None
	quality_plot: Optional[str] = None
	quality_alert_tpsnr_drop: float = 16.0
	quality_alert_face_ssim: float = 0.2

	# execution
	execution_device_ids: List[str] = field(default_factory=lambda: ['0'])
	execution_providers: List[str] = field(default_factory=lambda: ['cpu'])
	execution_thread_count: int = 8

	# cluster (new in this engine): batch-run, job-run(-all) and videos on a Ray cluster; None runs here
	cluster_address: Optional[str] = None
	# CPU cores each cluster worker asks for when the models run on the CPU (a GPU worker asks for one GPU)
	cluster_worker_cpus: int = 1

	# download
	download_providers: List[str] = field(default_factory=lambda: ['github', 'huggingface'])
	download_scope: str = 'lite'

	# memory
	video_memory_strategy: str = 'strict'
	system_memory_limit: int = 0

	# misc
	log_level: str = 'info'
	halt_on_error: bool = False

	# the UI of `run` (3.5.0's uis options; only the default layout exists here)
	open_browser: bool = False
	ui_layouts: List[str] = field(default_factory=lambda: ['default'])
	ui_workflow: str = 'instant_runner'

	# job commands (the positional job id, status and step index of 3.5.0's job-* commands)
	job_id: Optional[str] = None
	job_status: Optional[str] = None
	step_index: Optional[int] = None

	# benchmark
	benchmark_mode: str = 'warm'
	benchmark_resolutions: List[str] = field(default_factory=lambda: ['240p'])
	benchmark_cycle_count: int = 5

	def with_changes(self, **changes: Any) -> 'RunConfig':
		return replace(self, **changes)

	@classmethod
	def field_names(cls) -> List[str]:
		return [item.name for item in fields(cls)]

	def swapper_pixel_boost(self) -> str:
		"""The effective pixel boost (the model's first choice when none was given)."""
		from facefusion import choices
		return self.face_swapper_pixel_boost or choices.face_swapper_set[self.face_swapper_model][0]
