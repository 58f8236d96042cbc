"""The UI's option controls, derived from the headless-run parser's actions, so a new CLI option appears in the UI
without UI code; and the way back: control values → a command line → RunConfig through the same parser (every value
is checked exactly as on the command line, and a bad one gives the CLI's message)."""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from facefusion.cli import program
from facefusion.config import RunConfig

# option groups shown as controls, in the order of the accordions; paths come from uploads, and download / misc
# belong to the command that started the UI
UI_GROUPS: List[str] = [
	'processors', 'face detector', 'face landmarker', 'face selector', 'face masker', 'frame extraction',
	'output creation', 'workflow', 'face tracker', 'quality monitor', 'execution', 'memory'
]
# options that name a file: the UI writes them next to the output, with these suffixes, when switched on
PATH_SUFFIXES: Dict[str, str] = {
	'quality_report': '.quality.csv',
	'quality_plot': '.quality.png',
	'face_landmarks_export': '.landmarks.json'
}
RANGE_PATTERN = re.compile(r'^\[(-?[\d.]+)\.\.(-?[\d.]+)\]$')


class OptionError(ValueError):
	"""A value the CLI refuses; the message is the CLI's own one line."""


@dataclass(frozen=True)
class OptionSpec:
	"""One control: what kind of widget it is and what it maps back to."""
	dest: str
	flag: str
	group: str
	kind: str
	help: str
	default: Any = None
	choices: Tuple[str, ...] = ()
	low: Optional[float] = None
	high: Optional[float] = None
	is_int: bool = False


@dataclass
class OptionGroup:
	title: str
	specs: List[OptionSpec] = field(default_factory=list)


def long_flag(action: argparse.Action) -> str:
	names = [name for name in action.option_strings if name.startswith('--')]
	return names[0] if names else action.option_strings[0]


def spec_of(action: argparse.Action, group: str) -> OptionSpec:
	"""The widget kind from what argparse knows: flags are checkboxes, choices dropdowns, ranges sliders."""
	flag = long_flag(action)
	help_text = (action.help or '').replace('%%', '%')
	type_name = getattr(action.type, '__name__', '')
	if isinstance(action, argparse._StoreTrueAction):
		return OptionSpec(action.dest, flag, group, 'bool', help_text, bool(action.default))
	if action.dest in PATH_SUFFIXES or action.metavar == 'PATH':
		return OptionSpec(action.dest, flag, group, 'path', help_text, False)
	if action.choices:
		kind = 'multi' if action.nargs == '+' else 'choice'
		return OptionSpec(action.dest, flag, group, kind, help_text, action.default, tuple(str(choice) for choice in action.choices), is_int=type_name == 'int')
	if action.nargs == '+':
		return OptionSpec(action.dest, flag, group, 'list', help_text, action.default)
	match = RANGE_PATTERN.match(str(action.metavar or ''))
	if match and action.default is not None:
		return OptionSpec(action.dest, flag, group, 'slider', help_text, action.default, low=float(match.group(1)), high=float(match.group(2)), is_int=type_name == 'int')
	if type_name in ('int', 'float', 'non_negative_int') or match:
		return OptionSpec(action.dest, flag, group, 'number', help_text, action.default, is_int=type_name != 'float')
	return OptionSpec(action.dest, flag, group, 'text', help_text, action.default)


def option_groups() -> List[OptionGroup]:
	"""The controls of headless-run, grouped as its --help groups them."""
	parser = program.create_program().commands['headless-run']
	groups = {title: OptionGroup(title) for title in UI_GROUPS}
	for action_group in parser._action_groups:
		if action_group.title not in groups:
			continue
		for action in action_group._group_actions:
			if action.option_strings:
				groups[action_group.title].specs.append(spec_of(action, action_group.title))
	return [group for group in groups.values() if group.specs]


def all_specs(groups: Sequence[OptionGroup]) -> List[OptionSpec]:
	return [spec for group in groups for spec in group.specs]


def initial_value(spec: OptionSpec, config: RunConfig) -> Any:
	"""The control's starting value: what the `run` command line (and its INI file) set, as the widget shows it."""
	value = getattr(config, spec.dest, spec.default)
	if spec.kind == 'path':
		return bool(value)
	if spec.kind == 'multi':
		return [str(item) for item in (value or [])]
	if spec.kind == 'list':
		return ' '.join(str(item) for item in (value or []))
	if spec.kind == 'choice':
		return None if value is None else str(value)
	return value


def same_value(spec: OptionSpec, value: Any) -> bool:
	default = spec.default
	if spec.kind == 'multi':
		return [str(item) for item in (value or [])] == [str(item) for item in (default or [])]
	if spec.kind == 'list':
		return str(value or '').split() == [str(item) for item in (default or [])]
	if spec.kind in ('slider', 'number') and value is not None and default is not None:
		return float(value) == float(default)
	return value == default or (value in (None, '') and default is None)


def number_text(spec: OptionSpec, value: Any) -> str:
	try:
		number = float(str(value).strip())
	except ValueError:
		raise OptionError(f'{spec.flag} takes a number, not {value!r}') from None
	if spec.is_int:
		if number != int(number):
			raise OptionError(f'{spec.flag} takes a whole number, not {value}')
		return str(int(number))
	return f'{number:g}'


def option_tokens(specs: Sequence[OptionSpec], values: Dict[str, Any], output_path: Optional[str]) -> List[str]:
	"""The command-line tokens that give these control values; controls left at the parser's default add nothing."""
	tokens: List[str] = []
	for spec in specs:
		if spec.dest not in values:
			continue
		value = values[spec.dest]
		if spec.kind == 'path':
			if value and output_path:
				tokens.append(f'{spec.flag}={os.path.splitext(output_path)[0]}{PATH_SUFFIXES.get(spec.dest, ".txt")}')
			continue
		if same_value(spec, value):
			continue
		if spec.kind == 'bool':
			if value:
				tokens.append(spec.flag)
		elif spec.kind == 'multi':
			if value:
				tokens += [spec.flag] + [str(item) for item in value]
		elif spec.kind == 'list':
			items = str(value or '').split()
			if items:
				tokens += [spec.flag] + items
		elif value in (None, ''):
			continue
		elif spec.kind in ('slider', 'number'):
			tokens.append(f'{spec.flag}={number_text(spec, value)}')
		else:
			# name=value, so a value that starts with '-' is not taken for an option
			tokens.append(f'{spec.flag}={value}')
	return tokens


def parse_error_line(text: str) -> str:
	"""argparse's own message without the usage lines: 'facefusion.py headless-run: error: X' → 'X'."""
	lines = [line for line in text.strip().splitlines() if line.strip()]
	for line in reversed(lines):
		if ': error: ' in line:
			return line.split(': error: ', 1)[1].strip()
	return lines[-1].strip() if lines else 'the options could not be read'


def build_run_config(arguments: Sequence[str]) -> RunConfig:
	"""headless-run arguments → RunConfig through the CLI's build_config; a refused value raises OptionError with the
	message the CLI prints."""
	stderr = io.StringIO()
	try:
		with contextlib.redirect_stderr(stderr):
			return program.build_config(['headless-run', *arguments])
	except SystemExit:
		raise OptionError(parse_error_line(stderr.getvalue())) from None
