"""Where a model's files lie in the models folder (3.5.0's layout): ``<file>.onnx`` with ``<file>.hash`` beside it,
and ``<file>.onnx.part`` while a download fills it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from facefusion.models.registry import ModelSpec

PathLike = Union[str, 'os.PathLike[str]']
PART_SUFFIX = '.part'


def model_path(models_path: PathLike, spec: ModelSpec) -> Path:
	return Path(models_path) / spec.file_name


def hash_path(models_path: PathLike, spec: ModelSpec) -> Path:
	return Path(models_path) / spec.hash_file_name


def part_path(path: Path) -> Path:
	return path.with_name(path.name + PART_SUFFIX)
