"""The frame regions the processors may write for a frame's faces, asked of the processors read-only.

A processor that pastes crops back (the face swapper) can say where each face lands before or after it ran
(``predict_box(frame_shape, face)``: the paste box with its safety margin, from the face's landmarks alone). A
processor that cannot say (the face debugger draws anywhere) makes the answer None: nothing is then checked
outside the boxes for that run."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from facefusion.types import Face

if TYPE_CHECKING:
	from facefusion.processors.base import Processor

Box = Tuple[int, int, int, int]


def reports_paste_boxes(processors: Sequence['Processor']) -> bool:
	return all(callable(getattr(processor, 'predict_box', None)) for processor in processors)


def processor_paste_boxes(processors: Sequence['Processor'], frame_shape: Tuple[int, ...], faces: Sequence[Face]) -> Optional[List[Box]]:
	if not reports_paste_boxes(processors):
		return None
	return [tuple(int(value) for value in processor.predict_box(frame_shape, face)) for processor in processors for face in faces]
