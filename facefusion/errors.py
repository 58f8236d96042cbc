"""Errors a user can cause: each carries a one-line message and the exit code the CLI returns."""
from __future__ import annotations


class FaceFusionError(Exception):
	exit_code: int = 1

	def __init__(self, message: str, exit_code: int | None = None) -> None:
		super().__init__(message)
		self.message = message
		if exit_code is not None:
			self.exit_code = exit_code


class InputError(FaceFusionError):
	"""A source, target or output path the engine cannot use."""


class ModelUnavailableError(FaceFusionError):
	"""A model file that is missing or fails its hash and cannot be downloaded."""


class ProcessingError(FaceFusionError):
	"""The job could not be done (e.g. no face in the source, content refused)."""
