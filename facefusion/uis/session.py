"""The UI's event handlers as plain methods (no Gradio here, so tests call them directly): control values → the
CLI's RunConfig, the preview and the gallery, Start / Stop / status of the job. Every user error comes back as the
one-line message the CLI prints; nothing here raises into the server."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError
from facefusion.uis import options
from facefusion.uis.preview import PreviewEngine, frame_count_of
from facefusion.uis.runner import JobRefused, JobRunner, RunState
from facefusion.uis.uploads import UploadFolder

if TYPE_CHECKING:
	from facefusion.types import VisionFrame

NO_TARGET_MESSAGE = 'choose a target image or video first'


@dataclass
class JobRequest:
	"""A checked job: its RunConfig, the headless-run arguments that give it, and where its output goes."""
	config: RunConfig
	arguments: List[str]
	output_path: str


@dataclass
class StartResult:
	started: bool
	message: str


@dataclass
class UISession:
	launch_config: RunConfig
	uploads: UploadFolder
	groups: List[options.OptionGroup] = field(default_factory=options.option_groups)
	runner: JobRunner = field(default_factory=JobRunner)
	preview_engine: PreviewEngine = field(default_factory=PreviewEngine)

	@property
	def specs(self) -> List[options.OptionSpec]:
		return options.all_specs(self.groups)

	def initial_values(self) -> Dict[str, Any]:
		return {spec.dest: options.initial_value(spec, self.launch_config) for spec in self.specs}

	def default_output_folder(self) -> str:
		# 3.5.0's UI writes to the temp folder by default; an output folder given to `run` wins
		output_path = self.launch_config.output_path
		if output_path and os.path.isdir(output_path):
			return os.path.abspath(output_path)
		return os.path.abspath(self.launch_config.temp_path)

	# ---- values → RunConfig -------------------------------------------------------------------------------------

	def command_arguments(self) -> List[str]:
		"""What the job takes from the command that started the UI (paths, downloads, logging)."""
		config = self.launch_config
		arguments = [
			f'--temp-path={config.temp_path}', f'--jobs-path={config.jobs_path}', f'--models-path={config.models_path}',
			f'--log-level={config.log_level}', '--download-providers', *config.download_providers
		]
		if config.config_path and os.path.isfile(config.config_path):
			arguments.append(f'--config-path={os.path.abspath(config.config_path)}')
		return arguments

	def check_media(self, source_paths: Sequence[str], target_path: Optional[str]) -> None:
		for path in [*source_paths, *([target_path] if target_path else [])]:
			if not self.uploads.holds(path):
				raise FaceFusionError(f'the UI reads only its uploads; not an upload: {path}')

	def build_request(self, values: Dict[str, Any], source_paths: Sequence[str], target_path: Optional[str], output_folder: Optional[str]) -> JobRequest:
		"""The job these values describe, checked by the CLI's parser; FaceFusionError / OptionError with its line."""
		source_paths = [str(path) for path in source_paths or []]
		if not target_path:
			raise FaceFusionError(NO_TARGET_MESSAGE)
		self.check_media(source_paths, target_path)
		output_path = self.output_path_for(str(target_path), output_folder or self.default_output_folder())
		arguments = ['--target-path=' + str(target_path), '--output-path=' + output_path]
		if source_paths:
			arguments += ['--source-paths', *source_paths]
		arguments += self.command_arguments() + options.option_tokens(self.specs, values, output_path)
		return JobRequest(options.build_run_config(arguments), arguments, output_path)

	def preview_config(self, values: Dict[str, Any], source_paths: Sequence[str], target_path: Optional[str]) -> RunConfig:
		"""The options of a preview: the job's, without an output (nothing is written)."""
		if not target_path:
			raise FaceFusionError(NO_TARGET_MESSAGE)
		source_paths = [str(path) for path in source_paths or []]
		self.check_media(source_paths, target_path)
		arguments = ['--target-path=' + str(target_path)] + (['--source-paths', *source_paths] if source_paths else [])
		return options.build_run_config(arguments + self.command_arguments() + options.option_tokens(self.specs, values, None))

	@staticmethod
	def output_path_for(target_path: str, output_folder: str) -> str:
		"""A new name in the output folder: <target name>-facefusion[-N]<target extension>."""
		stem, extension = os.path.splitext(os.path.basename(target_path))
		candidate = Path(output_folder) / f'{stem}-facefusion{extension}'
		index = 1
		while candidate.exists():
			candidate = Path(output_folder) / f'{stem}-facefusion-{index}{extension}'
			index += 1
		return str(candidate.resolve())

	# ---- handlers -----------------------------------------------------------------------------------------------

	def frame_count(self, target_path: Optional[str]) -> Tuple[int, str]:
		"""(frames, message) of a new target; message is empty when it reads."""
		try:
			return frame_count_of(target_path), ''
		except FaceFusionError as error:
			return 0, error.message
		except Exception as exception:
			return 0, f'the target could not be read: {type(exception).__name__}: {exception}'

	def preview(self, values: Dict[str, Any], source_paths: Sequence[str], target_path: Optional[str], frame_number: int) -> Tuple[Optional['VisionFrame'], str]:
		"""(the processed frame in RGB, message): the frame with the current settings, or None and why not."""
		try:
			config = self.preview_config(values, source_paths, target_path)
			return self.preview_engine.render(config, config.source_paths, str(target_path), int(frame_number or 0)), ''
		except (FaceFusionError, options.OptionError) as error:
			return None, message_of(error)
		except Exception as exception:
			return None, f'the preview failed: {type(exception).__name__}: {exception}'

	def gallery(self, values: Dict[str, Any], target_path: Optional[str], frame_number: int) -> Tuple[List['VisionFrame'], str]:
		"""(face crops of the frame, message): the reference-face choices, indexed as --reference-face-position."""
		try:
			config = self.preview_config(values, [], target_path)
			return self.preview_engine.faces(config, str(target_path), int(frame_number or 0)), ''
		except (FaceFusionError, options.OptionError) as error:
			return [], message_of(error)
		except Exception as exception:
			return [], f'the faces could not be read: {type(exception).__name__}: {exception}'

	def start(self, values: Dict[str, Any], source_paths: Sequence[str], target_path: Optional[str], output_folder: Optional[str]) -> StartResult:
		if self.runner.is_running():
			return StartResult(False, 'a job is already running; press Stop or wait for it to finish')
		try:
			request = self.build_request(values, source_paths, target_path, output_folder)
		except (FaceFusionError, options.OptionError) as error:
			return StartResult(False, '[FACEFUSION] ' + message_of(error))
		try:
			self.runner.start(request.arguments, request.output_path)
		except JobRefused as refusal:
			return StartResult(False, str(refusal))
		return StartResult(True, f'started: {request.output_path}')

	def stop(self) -> str:
		if not self.runner.stop():
			return 'no job is running'
		return 'stopped; nothing partial was left' if not self.partial_left() else 'stopped'

	def partial_left(self) -> bool:
		state = self.runner.snapshot()
		return bool(state.output_path and os.path.exists(state.output_path) and state.exit_code not in (0, None))

	def status(self) -> RunState:
		return self.runner.snapshot()

	def close(self) -> None:
		self.runner.stop()
		self.preview_engine.close()
		self.uploads.remove()


def message_of(error: Exception) -> str:
	return error.message if isinstance(error, FaceFusionError) else str(error)


def describe_status(state: RunState) -> str:
	"""One line for the status box."""
	if state.running:
		return 'running: ' + (state.progress.describe() or 'starting')
	if state.exit_code is None:
		return 'idle'
	if state.exit_code == 0:
		return f'done: {state.output_path}'
	if state.stopped:
		return 'stopped; no partial output was written'
	return state.error_line()
