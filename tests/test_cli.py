"""The command line: options, defaults, INI merging, validation, routing and the image workflow's error handling.

Parsing is tested in-process (fast); what a user sees (exit code, one-line errors, files written or not) is tested
by running `python facefusion.py ...` as a real subprocess.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable, List, Tuple

import cv2
import numpy as np
import pytest

from facefusion import choices, core
from facefusion.cli import ini_config, program
from facefusion.config import RunConfig
from facefusion.errors import InputError, ProcessingError
from facefusion.processors import registry
from facefusion.processors.base import Processor
from facefusion.workflows.batch import plan_batch

from conftest import CliRunner


def parse_error(argv: List[str], capsys: pytest.CaptureFixture[str]) -> str:
	"""Parse argv expecting argparse's exit 2; return what it printed."""
	with pytest.raises(SystemExit) as raised:
		program.build_config(argv)
	assert raised.value.code == 2
	return capsys.readouterr().err


def error_lines(stderr: str) -> List[str]:
	return [line for line in stderr.splitlines() if line.strip()]


def write_faceless_source(directory: Path) -> Path:
	"""A plain gray picture: a source in which no face can be found."""
	path = directory / 'blank.png'
	cv2.imwrite(str(path), np.full((120, 120, 3), 128, np.uint8))
	return path


# ---- help and defaults --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', [command.name for command in program.COMMANDS])
def test_every_option_shows_its_default(command: str) -> None:
	command_parser = program.create_program().commands[command]
	formatter = command_parser._get_formatter()
	options = [action for action in command_parser._actions if action.option_strings and not isinstance(action, argparse._HelpAction)]
	assert options
	for action in options:
		assert '(default:' in formatter._get_help_string(action), action.option_strings


def test_headless_run_help_lists_defaults(run_cli: CliRunner) -> None:
	result = run_cli('headless-run', '--help')
	assert result.returncode == 0
	text = ' '.join(result.stdout.split())
	for expected in (
		'(default: yolo_face)', '(default: hyperswap_1a_256)', '(default: reference)', '(default: 8)',
		'(default: github huggingface)', '(default: memory)', '(default: auto)', '(default: 16)', '(default: strict)'
	):
		assert expected in text


@pytest.mark.parametrize('command, expected', [
	('run', '(default: instant_runner)'),
	('batch-run', '{target_extension}'),
	('force-download', '(default: lite)'),
])
def test_command_help(run_cli: CliRunner, command: str, expected: str) -> None:
	result = run_cli(command, '--help')
	assert result.returncode == 0
	assert expected in ' '.join(result.stdout.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
	assert core.cli(['--version']) == 0
	assert '3.5.0' in capsys.readouterr().out


def test_defaults_match_3_5_0() -> None:
	config = program.build_config(['headless-run'])
	assert config.command == 'headless-run'
	assert config.face_detector_model == 'yolo_face'
	assert config.face_detector_size == '640x640'
	assert config.face_detector_margin == (0, 0, 0, 0)
	assert config.face_landmarker_model == '2dfan4'
	assert config.face_selector_mode == 'reference'
	assert config.face_mask_types == ['box']
	assert config.processors == ['face_swapper']
	assert config.face_swapper_model == 'hyperswap_1a_256'
	# resolved to the model's first choice, like 3.5.0's pre-parse
	assert config.face_swapper_pixel_boost == '256x256'
	assert config.face_swapper_weight == 0.5
	assert config.face_swapper_batching == 'auto'
	assert config.face_swapper_use_trt is False
	assert config.face_swapper_trt_max_batch == 16
	assert config.execution_thread_count == 8
	assert config.execution_providers == program.execution_provider_choices()[1]
	assert config.download_providers == ['github', 'huggingface']
	assert config.output_image_quality == 80
	assert config.log_level == 'info'
	assert config.config_path == 'facefusion.ini'


def test_models_path_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
	monkeypatch.setenv('FACEFUSION_MODELS_PATH', str(tmp_path))
	assert program.build_config(['headless-run']).models_path == str(tmp_path)
	assert program.build_config(['headless-run', '--models-path', 'elsewhere']).models_path == 'elsewhere'


def test_path_aliases() -> None:
	config = program.build_config(['headless-run', '--source', 'a.jpg', 'b.jpg', '--target', 't.jpg', '--output', 'o.jpg'])
	assert (config.source_paths, config.target_path, config.output_path) == (['a.jpg', 'b.jpg'], 't.jpg', 'o.jpg')
	config = program.build_config(['headless-run', '-s', 'a.jpg', '-t', 't.jpg', '-o', 'o.jpg'])
	assert (config.source_paths, config.target_path, config.output_path) == (['a.jpg'], 't.jpg', 'o.jpg')


def test_sides_expand_like_css() -> None:
	assert program.build_config(['headless-run', '--face-detector-margin', '10']).face_detector_margin == (10, 10, 10, 10)
	assert program.build_config(['headless-run', '--face-mask-padding', '10', '20']).face_mask_padding == (10, 20, 10, 20)
	assert program.build_config(['headless-run', '--face-mask-padding', '1', '2', '3']).face_mask_padding == (1, 2, 3, 2)


def test_config_fields_are_option_dests() -> None:
	fields = set(RunConfig.field_names())
	for command_parser in program.create_program().commands.values():
		for action in command_parser._actions:
			if action.option_strings and action.dest != 'help' and action.dest not in ('open_browser', 'ui_layouts', 'ui_workflow'):
				assert action.dest in fields, action.dest


# ---- invalid values → exit 2 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('argv, message', [
	(['headless-run', '--face-detector-model', 'bogus'], 'invalid choice'),
	(['headless-run', '--processors', 'frame_enhancer'], 'invalid choice'),
	(['headless-run', '--face-swapper-batching', 'sometimes'], 'invalid choice'),
	(['headless-run', '--face-swapper-weight', '1.5'], 'out of range'),
	(['headless-run', '--execution-thread-count', '0'], 'out of range'),
	(['headless-run', '--face-swapper-trt-max-batch', '65'], 'out of range'),
	(['headless-run', '--output-image-quality', 'high'], 'not a whole number'),
	(['headless-run', '--face-detector-margin', '1', '2', '3', '4', '5'], '1 to 4 values'),
	(['headless-run', '--face-detector-angles', '45'], 'invalid choice'),
	(['headless-run', '--execution-device-ids', 'gpu0'], 'not a device id'),
	(['headless-run', '--face-detector-size', '320x320'], 'not offered by yolo_face'),
	(['headless-run', '--face-swapper-pixel-boost', '128x128'], 'not offered by hyperswap_1a_256'),
	(['headless-run', '--face-selector-age-start', '50', '--face-selector-age-end', '20'], 'greater than'),
	(['headless-run', '--trim-frame-start', '10', '--trim-frame-end', '10'], 'lower than'),
	(['batch-run', '-t', '*.jpg'], 'output-pattern'),
	(['force-download', '--download-scope', 'everything'], 'invalid choice'),
	(['dance'], 'invalid choice'),
])
def test_invalid_values_exit_2(argv: List[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
	assert message in parse_error(argv, capsys)


def test_blendswap_384_is_refused_at_parse_time(capsys: pytest.CaptureFixture[str]) -> None:
	stderr = parse_error(['headless-run', '--face-swapper-model', 'blendswap_256', '--face-swapper-pixel-boost', '384x384'], capsys)
	assert 'multiple' in stderr and '256' in stderr
	# the other listed sizes work, and 384 works for inswapper (a multiple of 128)
	program.build_config(['headless-run', '--face-swapper-model', 'blendswap_256', '--face-swapper-pixel-boost', '512x512'])
	program.build_config(['headless-run', '--face-swapper-model', 'inswapper_128', '--face-swapper-pixel-boost', '384x384'])


def test_listed_pixel_boosts_that_cannot_work_are_refused() -> None:
	# 3.5.0 lists two sizes that are not whole multiples of the model size and fail inside its swap
	impossible = {('blendswap_256', '384x384'), ('simswap_unofficial_512', '768x768')}
	for model, boosts in choices.face_swapper_set.items():
		for boost in boosts:
			valid = boost in program.valid_pixel_boosts(model)
			assert valid == ((model, boost) not in impossible), (model, boost)


def test_cli_returns_2_for_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
	assert core.cli(['headless-run', '--log-level', 'loud']) == 2


# ---- INI config ---------------------------------------------------------------------------------------------------------

def write_ini(path: Path, text: str) -> Path:
	path.write_text(text, encoding='utf-8')
	return path


def test_ini_values_are_used_and_command_line_wins(tmp_path: Path) -> None:
	ini = write_ini(tmp_path / 'custom.ini', '\n'.join([
		'[paths]',
		'source_paths = a.jpg b.jpg',
		'target_path = target.jpg',
		'[face_detector]',
		'face_detector_model = yunet',
		'face_detector_angles = 0 90',
		'face_detector_margin = 5 6',
		'face_detector_score =',
		'[processors]',
		'processors = face_debugger face_swapper',
		'face_swapper_model = inswapper_128',
		'face_swapper_weight = 0.7',
		'face_swapper_use_trt = true',
		'[frame_extraction]',
		'keep_temp = true',
		'[execution]',
		'execution_thread_count = 4',
	]))
	config = program.build_config(['headless-run', '--config-path', str(ini), '--face-swapper-weight', '0.2', '-t', 'mine.jpg'])
	assert config.config_path == str(ini)
	assert config.source_paths == ['a.jpg', 'b.jpg']
	assert config.target_path == 'mine.jpg'
	assert config.face_detector_model == 'yunet'
	assert config.face_detector_angles == [0, 90]
	assert config.face_detector_margin == (5, 6, 5, 6)
	# empty value → default
	assert config.face_detector_score == 0.5
	assert config.processors == ['face_debugger', 'face_swapper']
	assert config.face_swapper_model == 'inswapper_128'
	# the INI's model decides the default pixel boost
	assert config.face_swapper_pixel_boost == '128x128'
	assert config.face_swapper_weight == 0.2
	assert config.face_swapper_use_trt is True
	assert config.keep_temp is True
	assert config.execution_thread_count == 4


def test_ini_in_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.chdir(tmp_path)
	assert program.build_config(['headless-run']).face_detector_model == 'yolo_face'
	write_ini(tmp_path / 'facefusion.ini', '[face_detector]\nface_detector_model = scrfd\n')
	assert program.build_config(['headless-run']).face_detector_model == 'scrfd'


def test_ini_keys_of_other_commands_are_ignored(tmp_path: Path) -> None:
	ini = write_ini(tmp_path / 'all.ini', '[download]\ndownload_scope = full\n[face_detector]\nface_detector_model = yunet\n')
	assert program.build_config(['force-download', '--config-path', str(ini)]).download_scope == 'full'
	assert program.build_config(['headless-run', '--config-path', str(ini)]).face_detector_model == 'yunet'


def test_upstream_ini_with_all_sections_parses(tmp_path: Path) -> None:
	# 3.5.0 ships a facefusion.ini with every key empty, including processors this engine lacks
	ini = write_ini(tmp_path / 'upstream.ini', '\n'.join([
		'[paths]', 'temp_path =', 'source_paths =', '[voice_extractor]', 'voice_extractor_model =',
		'[processors]', 'processors =', 'age_modifier_model =', 'face_enhancer_blend =', 'face_swapper_model =',
		'[uis]', 'open_browser =', '[misc]', 'log_level =', 'halt_on_error =',
	]))
	config = program.build_config(['headless-run', '--config-path', str(ini)])
	assert config.processors == ['face_swapper']


def test_explicit_missing_ini_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	assert 'config file not found' in parse_error(['headless-run', '--config-path', str(tmp_path / 'absent.ini')], capsys)


@pytest.mark.parametrize('text, message', [
	('[face_detector]\nface_detector_model = bogus\n', 'face_detector_model'),
	('[processors]\nface_swapper_weight = heavy\n', 'face_swapper_weight'),
	('[frame_extraction]\nkeep_temp = perhaps\n', 'keep_temp'),
	('no section header\n', 'cannot read config file'),
	('[processors]\nface_swapper_model = blendswap_256\nface_swapper_pixel_boost = 384x384\n', 'multiple'),
])
def test_bad_ini_values_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
	ini = write_ini(tmp_path / 'bad.ini', text)
	assert message in parse_error(['headless-run', '--config-path', str(ini)], capsys)


def test_unknown_ini_keys_are_reported_and_misplaced_keys_used(tmp_path: Path) -> None:
	ini = write_ini(tmp_path / 'odd.ini', '[face_detector]\nface_detektor_model = yunet\n[misc]\nface_detector_score = 0.7\n')
	ini_file = ini_config.read_ini(str(ini), explicit=True)
	assert any('face_detektor_model' in warning for warning in ini_file.warnings)
	assert any('belongs in [face_detector]' in warning for warning in ini_file.warnings)
	assert program.build_config(['headless-run', '--config-path', str(ini)]).face_detector_score == 0.7


# ---- processors registry ---------------------------------------------------------------------------------------------

def test_registry_names_without_importing() -> None:
	assert list(registry.PROCESSORS) == choices.processors
	with pytest.raises(ProcessingError, match='unknown processor'):
		registry.load_processor_class('frame_enhancer')


def test_registry_loads_processors() -> None:
	for name in choices.processors:
		processor_class = registry.PROCESSORS[name]
		assert issubclass(processor_class, Processor)
		assert processor_class.name == name
	assert 'hyperswap_1a_256' in registry.required_models(['face_swapper'], RunConfig())


# ---- routes --------------------------------------------------------------------------------------------------------------

def test_run_without_paths_opens_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
	from facefusion.uis import app
	seen: List[RunConfig] = []
	monkeypatch.setattr(app, 'launch', lambda config: seen.append(config) or 0)
	assert core.cli(['run', '--open-browser', '--ui-layouts', 'default']) == 0
	assert seen[0].command == 'run' and seen[0].open_browser and seen[0].ui_layouts == ['default']


def test_run_without_paths_with_a_bad_port_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
	# the UI's server address is checked before anything starts; the message is the usual one line
	monkeypatch.setenv('GRADIO_SERVER_PORT', 'not-a-port')
	assert core.cli(['run']) == 2
	lines = error_lines(capsys.readouterr().err)
	assert len(lines) == 1 and lines[0].startswith('[FACEFUSION]') and 'GRADIO_SERVER_PORT' in lines[0]


def test_run_with_paths_processes_like_headless_run(monkeypatch: pytest.MonkeyPatch) -> None:
	seen: List[RunConfig] = []
	monkeypatch.setattr(core, 'run_job', lambda config, engine=None: seen.append(config) or 0)
	assert core.cli(['run', '-t', 'target.jpg', '-o', 'out.jpg']) == 0
	assert seen[0].target_path == 'target.jpg'


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
	def interrupted(config: RunConfig, engine: object = None) -> int:
		raise KeyboardInterrupt
	monkeypatch.setattr(core, 'run_job', interrupted)
	assert core.cli(['headless-run', '-t', 't.jpg', '-o', 'o.jpg']) == 130
	assert 'interrupted' in capsys.readouterr().err


@pytest.mark.parametrize('log_level, traceback_shown', [('info', False), ('debug', True)])
def test_unexpected_error_is_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_level: str, traceback_shown: bool) -> None:
	def broken(config: RunConfig, engine: object = None) -> int:
		raise RuntimeError('boom')
	monkeypatch.setattr(core, 'run_job', broken)
	assert core.cli(['headless-run', '-t', 't.jpg', '-o', 'o.jpg', '--log-level', log_level]) == 1
	stderr = capsys.readouterr().err
	assert ('Traceback' in stderr) == traceback_shown
	assert error_lines(stderr)[-1] == '[FACEFUSION] unexpected error: RuntimeError: boom (run with --log-level debug for details)'


def test_error_exit_code_is_the_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
	def refused(config: RunConfig, engine: object = None) -> int:
		raise ProcessingError('refused\nfor a reason', exit_code=3)
	monkeypatch.setattr(core, 'run_job', refused)
	assert core.cli(['headless-run', '-t', 't.jpg', '-o', 'o.jpg']) == 3
	assert error_lines(capsys.readouterr().err) == ['[FACEFUSION] refused for a reason']


# ---- batch-run planning -----------------------------------------------------------------------------------------------

def make_files(directory: Path, names: List[str]) -> None:
	directory.mkdir(parents=True, exist_ok=True)
	for name in names:
		(directory / name).write_bytes(b'x')


def test_batch_plan_source_times_target(tmp_path: Path) -> None:
	make_files(tmp_path / 'sources', ['b.jpg', 'a.jpg'])
	make_files(tmp_path / 'targets', ['x.png', 'y.mp4'])
	config = program.build_config([
		'batch-run', '-s', str(tmp_path / 'sources' / '*.jpg'), '-t', str(tmp_path / 'targets' / '*'),
		'-o', str(tmp_path / 'out' / '{index}-{source_name}-{target_name}{target_extension}')
	])
	items = plan_batch(config)
	assert [(Path(item.source_paths[0]).name, Path(item.target_path).name, Path(item.output_path).name) for item in items] == [
		('a.jpg', 'x.png', '0-a-x.png'), ('a.jpg', 'y.mp4', '1-a-y.mp4'),
		('b.jpg', 'x.png', '2-b-x.png'), ('b.jpg', 'y.mp4', '3-b-y.mp4'),
	]
	assert all(item.command == 'batch-run' for item in items)


def test_batch_plan_targets_only(tmp_path: Path) -> None:
	make_files(tmp_path, ['one.jpg', 'two.jpg'])
	config = program.build_config(['batch-run', '-t', str(tmp_path / '*.jpg'), '-o', str(tmp_path / 'out-{target_name}.png')])
	assert [Path(item.output_path).name for item in plan_batch(config)] == ['out-one.png', 'out-two.png']
	assert all(item.source_paths == [] for item in plan_batch(config))


@pytest.mark.parametrize('output_pattern, message', [
	('out/{source_name}.jpg', '{source_name}'),
	('out/{nonsense}.jpg', '{nonsense}'),
	('out/same.jpg', 'same output path'),
])
def test_batch_plan_errors(tmp_path: Path, output_pattern: str, message: str) -> None:
	make_files(tmp_path, ['one.jpg', 'two.jpg'])
	config = program.build_config(['batch-run', '-t', str(tmp_path / '*.jpg'), '-o', output_pattern])
	with pytest.raises(InputError, match=message.replace('{', r'\{').replace('}', r'\}')):
		plan_batch(config)


def test_batch_plan_no_match(tmp_path: Path) -> None:
	config = program.build_config(['batch-run', '-t', str(tmp_path / '*.jpg'), '-o', 'out/{index}.jpg'])
	with pytest.raises(InputError, match='no file matches'):
		plan_batch(config)


# ---- bad input: one line, non-zero exit, nothing written (real subprocess) ---------------------------------------------------

def bad_source_missing(tmp_path: Path, data_dir: Path) -> List[str]:
	return ['-s', str(tmp_path / 'absent.jpg'), '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_target_missing(tmp_path: Path, data_dir: Path) -> List[str]:
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(tmp_path / 'absent.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_target_zero_bytes(tmp_path: Path, data_dir: Path) -> List[str]:
	(tmp_path / 'empty.jpg').write_bytes(b'')
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(tmp_path / 'empty.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_source_zero_bytes(tmp_path: Path, data_dir: Path) -> List[str]:
	(tmp_path / 'empty.png').write_bytes(b'')
	return ['-s', str(tmp_path / 'empty.png'), '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_target_undecodable(tmp_path: Path, data_dir: Path) -> List[str]:
	# a JPEG signature followed by garbage: looks like an image, does not decode
	(tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0' + bytes(range(256)) * 4)
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(tmp_path / 'broken.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_target_text_renamed(tmp_path: Path, data_dir: Path) -> List[str]:
	(tmp_path / 'notes.jpg').write_text('this is a text file, renamed', encoding='utf-8')
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(tmp_path / 'notes.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_target_unsupported(tmp_path: Path, data_dir: Path) -> List[str]:
	(tmp_path / 'notes.txt').write_text('plain text', encoding='utf-8')
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(tmp_path / 'notes.txt'), '-o', str(tmp_path / 'out' / 'result.jpg')]


def bad_output_directory_missing(tmp_path: Path, data_dir: Path) -> List[str]:
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'out' / 'absent' / 'result.jpg')]


def bad_output_extension(tmp_path: Path, data_dir: Path) -> List[str]:
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'out' / 'result.mp4')]


def bad_output_is_target(tmp_path: Path, data_dir: Path) -> List[str]:
	target = tmp_path / 'out' / 'target.png'
	cv2.imwrite(str(target), np.zeros((8, 8, 3), np.uint8))
	return ['-t', str(target), '-o', str(target), '--processors', 'face_debugger']


def bad_output_too_large(tmp_path: Path, data_dir: Path) -> List[str]:
	# biden.jpg is 970 x 2204: at scale 8 its long side would be 17632 px
	return ['-s', str(data_dir / 'biden.jpg'), '-t', str(data_dir / 'biden.jpg'), '-o', str(tmp_path / 'out' / 'big.jpg'), '--output-image-scale', '8']


def bad_target_missing_option(tmp_path: Path, data_dir: Path) -> List[str]:
	return ['-s', str(data_dir / 'biden.jpg'), '-o', str(tmp_path / 'out' / 'result.jpg')]


@pytest.mark.parametrize('build_arguments, message', [
	(bad_source_missing, 'source not found'),
	(bad_target_missing, 'target not found'),
	(bad_target_zero_bytes, 'empty file (0 bytes)'),
	(bad_source_zero_bytes, 'empty file (0 bytes)'),
	(bad_target_undecodable, 'cannot decode image'),
	(bad_target_text_renamed, 'does not match its .jpg extension'),
	(bad_target_unsupported, '.txt is not supported'),
	(bad_output_directory_missing, 'output directory does not exist'),
	(bad_output_extension, 'must end in one of'),
	(bad_output_is_target, 'would be overwritten'),
	(bad_output_too_large, 'too large'),
	(bad_target_missing_option, 'no target given'),
])
def test_bad_input_fails_with_one_line_and_writes_nothing(
	run_cli: CliRunner, tmp_path: Path, data_dir: Path, build_arguments: Callable[[Path, Path], List[str]], message: str
) -> None:
	(tmp_path / 'out').mkdir()
	arguments = build_arguments(tmp_path, data_dir)
	before = sorted(os.listdir(tmp_path / 'out'))
	result = run_cli('headless-run', *arguments)
	assert result.returncode != 0
	lines = error_lines(result.stderr)
	assert len(lines) == 1, result.stderr
	assert lines[0].startswith('[FACEFUSION] ')
	assert message in lines[0]
	assert sorted(os.listdir(tmp_path / 'out')) == before


def test_missing_models_fail_with_clear_error_and_write_nothing(run_cli: CliRunner, tmp_path: Path, data_dir: Path) -> None:
	result = run_cli('headless-run', '--processors', 'face_debugger', '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'out.jpg'))
	assert result.returncode != 0
	assert error_lines(result.stderr)[-1].startswith('[FACEFUSION] ')
	assert not (tmp_path / 'out.jpg').exists()


# ---- end to end with stand-in models --------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def flagging_models_dir(standin_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""The stand-ins, with content analysers that flag every image."""
	from facefusion.testing.standin_models import write_standin_models
	directory = tmp_path_factory.mktemp('flagging_models')
	for item in standin_models_dir.iterdir():
		(directory / item.name).write_bytes(item.read_bytes())
	write_standin_models(directory, ['nsfw_1', 'nsfw_2', 'nsfw_3'], nsfw_flagged=True)
	return directory


def test_face_debugger_with_bare_output_name(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path, data_dir: Path) -> None:
	result = run_cli(
		'headless-run', '--processors', 'face_debugger', '--face-detector-model', 'yunet', '-t', str(data_dir / 'obama.jpg'),
		'-o', 'obama.jpg', models_path=standin_models_dir, cwd=tmp_path
	)
	assert result.returncode == 0, result.stderr
	output = cv2.imread(str(tmp_path / 'obama.jpg'))
	# the exact target size (910 x 1137: 3.5.0 wrote one row less for odd sizes)
	assert output.shape == (1137, 910, 3)
	assert [path.name for path in tmp_path.iterdir()] == ['obama.jpg']


def test_face_swap_runs_end_to_end(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path, data_dir: Path) -> None:
	output_path = tmp_path / 'swapped.png'
	result = run_cli(
		'headless-run', '--face-detector-model', 'yunet', '-s', str(data_dir / 'biden.jpg'), '-t', str(data_dir / 'obama.jpg'),
		'-o', str(output_path), models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	target = cv2.imread(str(data_dir / 'obama.jpg'))
	output = cv2.imread(str(output_path))
	assert output.shape == target.shape
	assert np.abs(output.astype(np.int16) - target.astype(np.int16)).max() > 0


def test_target_without_faces_is_copied_with_a_warning(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path) -> None:
	target = tmp_path / 'plain.png'
	cv2.imwrite(str(target), np.full((97, 131, 3), 90, np.uint8))
	output_path = tmp_path / 'plain-out.png'
	result = run_cli(
		'headless-run', '--processors', 'face_debugger', '--face-detector-model', 'yunet', '-t', str(target),
		'-o', str(output_path), models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	assert 'no face found' in result.stderr
	np.testing.assert_array_equal(cv2.imread(str(output_path)), cv2.imread(str(target)))


def test_refused_content_writes_nothing(run_cli: CliRunner, flagging_models_dir: Path, tmp_path: Path, data_dir: Path) -> None:
	output_path = tmp_path / 'refused.jpg'
	result = run_cli(
		'headless-run', '--processors', 'face_debugger', '--face-detector-model', 'yunet', '-t', str(data_dir / 'obama.jpg'),
		'-o', str(output_path), models_path=flagging_models_dir
	)
	assert result.returncode != 0
	assert 'refused by the content analyser' in error_lines(result.stderr)[-1]
	assert not output_path.exists()


@pytest.mark.parametrize('devices', [('0',), ('0', '1')])
def test_a_refused_video_is_refused_before_anything_else_fails(run_cli: CliRunner, flagging_models_dir: Path, tmp_path: Path, devices: Tuple[str, ...]) -> None:
	"""The content check runs beside the processors' preparation (and on a worker when the video is split), yet its
	verdict comes first: here the source has no face either, and the refusal is what the user is told."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = make_synthetic_video(tmp_path / 'clip.mp4', frame_count=12, audio=False)
	faceless = write_faceless_source(tmp_path)
	output_path = tmp_path / 'out' / 'refused.mp4'
	output_path.parent.mkdir()
	result = run_cli(
		'headless-run', '--face-detector-model', 'yunet', '-s', str(faceless), '-t', str(clip.path), '-o', str(output_path),
		'--execution-device-ids', *devices, models_path=flagging_models_dir
	)
	assert result.returncode != 0
	assert 'refused by the content analyser' in error_lines(result.stderr)[-1]
	assert list(output_path.parent.iterdir()) == []


@pytest.mark.parametrize('options', [(), ('--output-video-fps', '10'), ('--workflow-strategy', 'disk')])
def test_a_refused_video_leaves_nothing(run_cli: CliRunner, flagging_models_dir: Path, tmp_path: Path, data_dir: Path, options: Tuple[str, ...]) -> None:
	"""A video that can be swapped but is flagged: checked on the pipeline's own frames (the default), or by a scan of
	its own before processing (a changed frame rate, the disk workflow); refused either way, no file left, no temp
	file either."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = make_synthetic_video(tmp_path / 'clip.mp4', frame_count=30, audio=False)
	output_path = tmp_path / 'out' / 'refused.mp4'
	output_path.parent.mkdir()
	result = run_cli(
		'headless-run', '--face-detector-model', 'yunet', '-s', str(data_dir / 'biden.jpg'), '-t', str(clip.path), '-o', str(output_path),
		*options, models_path=flagging_models_dir
	)
	assert result.returncode != 0
	assert 'refused by the content analyser' in error_lines(result.stderr)[-1]
	assert list(output_path.parent.iterdir()) == []


@pytest.mark.parametrize('models', ['standins', 'missing'])
def test_a_corrupt_video_is_reported_before_the_source_and_the_models(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path, models: str) -> None:
	"""The source face is prepared while the target is probed, yet a broken target is what the user hears first:
	before a source without a face, and before any model download is tried (an empty models folder here)."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = make_synthetic_video(tmp_path / 'clip.mp4', frame_count=12, audio=False)
	broken = tmp_path / 'broken.mp4'
	broken.write_bytes(clip.path.read_bytes()[:3000])
	faceless = write_faceless_source(tmp_path)
	models_path = standin_models_dir if models == 'standins' else tmp_path / 'no-models'
	result = run_cli(
		'headless-run', '--face-detector-model', 'yunet', '-s', str(faceless), '-t', str(broken), '-o', str(tmp_path / 'out.mp4'), models_path=models_path
	)
	assert result.returncode != 0
	last = error_lines(result.stderr)[-1]
	assert 'broken.mp4' in last and 'no face' not in last and 'download' not in last.lower(), result.stderr
	assert not (tmp_path / 'no-models').exists() or not any((tmp_path / 'no-models').iterdir())
	assert not (tmp_path / 'out.mp4').exists()


def test_a_decoder_started_beside_the_preparation_does_not_outlive_a_failed_run(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path) -> None:
	"""The decoder starts as soon as the target is probed, while the source face is still being prepared: when the
	source then has no face, the run fails with that, leaves no file and no ffmpeg behind."""
	import subprocess

	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = make_synthetic_video(tmp_path / 'decoder-check-clip.mp4', frame_count=60, audio=False)
	faceless = write_faceless_source(tmp_path)
	output_path = tmp_path / 'out' / 'none.mp4'
	output_path.parent.mkdir()
	result = run_cli(
		'headless-run', '--face-detector-model', 'yunet', '--face-selector-mode', 'many', '-s', str(faceless), '-t', str(clip.path),
		'-o', str(output_path), models_path=standin_models_dir
	)
	assert result.returncode != 0 and 'no face detected in source' in error_lines(result.stderr)[-1]
	assert list(output_path.parent.iterdir()) == []
	assert subprocess.run(['pgrep', '-f', str(clip.path)], capture_output=True).stdout == b''


def test_batch_run_end_to_end(run_cli: CliRunner, standin_models_dir: Path, tmp_path: Path, data_dir: Path) -> None:
	targets = tmp_path / 'targets'
	targets.mkdir()
	for name in ('obama.jpg', 'biden.jpg'):
		(targets / name).write_bytes((data_dir / name).read_bytes())
	(tmp_path / 'out').mkdir()
	result = run_cli(
		'batch-run', '--processors', 'face_debugger', '--face-detector-model', 'yunet', '-t', str(targets / '*.jpg'),
		'-o', str(tmp_path / 'out' / '{index}-{target_name}.png'), models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	assert sorted(path.name for path in (tmp_path / 'out').iterdir()) == ['0-biden.png', '1-obama.png']


def test_the_log_reaches_stderr_when_the_logger_has_other_handlers(capsys: pytest.CaptureFixture[str]) -> None:
	"""The engine's own line on stderr does not depend on the logger being bare: a UI, or a test runner (pytest 9.2
	captures non-propagating loggers by handlers of its own on them), may have put handlers there first. With the
	engine's handler left out, a failed job's reasons reached no terminal."""
	import logging

	from facefusion import logger
	engine_logger = logger.get_logger()
	other = logging.NullHandler()
	engine_logger.addHandler(other)
	try:
		logger.init('info')
		logger.init('info')
		engine_logger.error('step 0 failed: target not found')
	finally:
		engine_logger.removeHandler(other)
	assert capsys.readouterr().err.count('[FACEFUSION] step 0 failed: target not found') == 1
