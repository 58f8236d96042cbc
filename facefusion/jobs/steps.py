"""A step's args (3.5.0's "step keys": every option of one processing step, paths included) from a RunConfig, and
back: a RunConfig for running a step, the step's options laid over the running command's own (execution, memory,
download, log level, temp path).

Reading goes through the same argparse options as the command line, so a value in a job file is checked exactly like
the same value typed after `headless-run` (choices, ranges, combinations), whoever wrote the file.
"""
from __future__ import annotations

import argparse
import os
from functools import lru_cache
from typing import Any, Dict, List, NoReturn, Optional

from facefusion import logger
from facefusion.cli import program
from facefusion.config import RunConfig
from facefusion.errors import InputError

MEDIA_PATH_KEYS: List[str] = ['source_paths', 'target_path', 'output_path']
# step keys of 3.5.0 this engine has no option for, with 3.5.0's defaults: written into every new step so that 3.5.0
# can run the job (its common pre-check reads the voice extractor model even when no lip syncer runs)
FOREIGN_STEP_DEFAULTS: Dict[str, Any] = {'voice_extractor_model': 'kim_vocal_2'}


class StepArgsError(InputError):
	"""A step whose args this engine cannot run."""


class RaisingParser(argparse.ArgumentParser):
	"""argparse that raises instead of printing usage and exiting: a bad step fails that step, not the command."""

	def error(self, message: str) -> NoReturn:
		raise StepArgsError(message)


def build_step_parser() -> argparse.ArgumentParser:
	parser = RaisingParser(prog='job step', add_help=False)
	program.add_path_arguments(parser, with_media_paths=True)
	program.add_step_arguments(parser)
	return parser


@lru_cache(maxsize=1)
def step_path_keys() -> List[str]:
	"""Step options that name a file (landmark export, reports ...), besides the media paths."""
	parser = argparse.ArgumentParser(add_help=False)
	program.add_step_arguments(parser)
	return [action.dest for action in parser._actions if action.metavar == 'PATH' and action.nargs is None]


@lru_cache(maxsize=1)
def step_keys() -> List[str]:
	"""The option dests that belong to a step: the media paths and every processing option (not execution, memory,
	download or logging, which belong to the command that runs the job)."""
	parser = argparse.ArgumentParser(add_help=False)
	program.add_step_arguments(parser)
	keys = list(MEDIA_PATH_KEYS)
	keys += [action.dest for action in parser._actions if action.dest not in keys]
	return keys


def json_value(value: Any) -> Any:
	if isinstance(value, tuple):
		return list(value)
	return value


def resolve_output_path(output_path: Optional[str], target_path: Optional[str]) -> Optional[str]:
	"""Absolute, and an existing folder resolved to the target's name in it, as a run would: the step files are
	named after the output file."""
	if not output_path:
		return output_path
	if os.path.isdir(output_path) and target_path:
		output_path = os.path.join(output_path, os.path.basename(target_path))
	return os.path.abspath(output_path)


def step_args_from_config(config: RunConfig) -> Dict[str, Any]:
	"""The args of a new step: every step key with its value, paths made absolute (a job may run from another
	folder), and the encoders this engine picks at run time written out, because 3.5.0 needs them named."""
	from facefusion.video.encoders import default_audio_encoder, default_video_encoder

	args: Dict[str, Any] = {}
	for key in step_keys():
		if hasattr(config, key):
			args[key] = json_value(getattr(config, key))
	for key, value in FOREIGN_STEP_DEFAULTS.items():
		args.setdefault(key, value)
	args['source_paths'] = [os.path.abspath(path) for path in config.source_paths]
	args['target_path'] = os.path.abspath(config.target_path) if config.target_path else None
	args['output_path'] = resolve_output_path(config.output_path, config.target_path)
	for key in step_path_keys():
		if isinstance(args.get(key), str) and args[key]:
			args[key] = os.path.abspath(args[key])
	if args.get('output_video_encoder') is None:
		args['output_video_encoder'] = default_video_encoder()
	if args.get('output_audio_encoder') is None:
		args['output_audio_encoder'] = default_audio_encoder(os.path.splitext(args['output_path'] or '.mp4')[1])
	return args


def option_name(action: argparse.Action) -> str:
	long_names = [name for name in action.option_strings if name.startswith('--')]
	return long_names[0] if long_names else action.option_strings[0]


def step_tokens(args: Dict[str, Any], parser: argparse.ArgumentParser) -> List[str]:
	"""The command line that gives these values (None and empty lists leave the option at its default)."""
	tokens: List[str] = []
	actions = {action.dest: action for action in parser._actions if action.option_strings}
	for key in step_keys():
		if key not in args or key not in actions or args[key] is None:
			continue
		action, value = actions[key], args[key]
		name = option_name(action)
		if isinstance(action, argparse._StoreTrueAction):
			if not isinstance(value, bool):
				raise StepArgsError(f'{key} must be true or false, not {value!r}')
			if value:
				tokens.append(name)
		elif action.nargs == '+':
			items = value if isinstance(value, list) else [value]
			if items:
				tokens += [name] + [str(item) for item in items]
		else:
			# name=value, so a value that starts with '-' is not taken for an option
			tokens.append(f'{name}={value}')
	return tokens


def config_from_step_args(args: Dict[str, Any], job_config: RunConfig, label: str) -> RunConfig:
	"""The RunConfig of one step: its args over the running command's options. StepArgsError names what is wrong."""
	parser = build_step_parser()
	ignored = sorted(key for key in args if key not in step_keys())
	if ignored:
		logger.get_logger().debug(f'{label}: options this engine does not have, ignored: {", ".join(ignored)}')
	try:
		namespace = parser.parse_args(step_tokens(args, parser))
		values = program.namespace_values(namespace)
	except (StepArgsError, ValueError) as exception:
		raise StepArgsError(f'{label} cannot run here: {exception}') from exception
	errors = program.validate_values(values)
	if errors:
		raise StepArgsError(f'{label} cannot run here: {errors[0]}')
	fields = set(RunConfig.field_names())
	changes = {key: values[key] for key in step_keys() if key in values and key in fields}
	return job_config.with_changes(**changes)
