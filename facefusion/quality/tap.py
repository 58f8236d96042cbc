"""The monitor as a stage of the video pipeline: it takes what the process stage returns with the analysed window
(input frames, faces, the tracker's report) and hands the output frames on unchanged.

The window items are duck-typed (``frame``, ``faces``, ``tracked``, ``report``) so this building block does not
import the workflow that feeds it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

from facefusion.quality.paste_boxes import processor_paste_boxes, reports_paste_boxes
from facefusion.quality.quality_monitor import QualityMonitor
from facefusion.quality.records import FrameObservation

if TYPE_CHECKING:
	from facefusion.processors.base import Processor
	from facefusion.types import Frame


class QualityTap:
	def __init__(self, monitor: QualityMonitor, processors: Sequence['Processor']) -> None:
		from facefusion import logger
		self.monitor = monitor
		self.processors = list(processors)
		if not reports_paste_boxes(self.processors):
			logger.get_logger().info('quality: a processor does not report its paste boxes; the lossless check outside them is skipped')

	def __call__(self, processed: Tuple[List[Any], List['Frame']]) -> List['Frame']:
		from facefusion.stage_timer import STAGE_TIMER
		window, outputs = processed
		with STAGE_TIMER.measure('quality'):
			for analysed, output in zip(window, outputs):
				self.monitor.observe(self.observation(analysed, output))
		return outputs

	def observation(self, analysed: Any, output: 'Frame') -> FrameObservation:
		selected = list(analysed.faces)
		tracked = list(analysed.tracked) if analysed.tracked is not None else selected
		report = analysed.report
		pixels = analysed.frame.pixels
		return FrameObservation(
			index=analysed.frame.index,
			target=pixels,
			output=output.pixels,
			faces=tracked,
			swapped_tokens=[face.track_token for face in selected if face.track_token is not None],
			keyframe=None if report is None else bool(report.keyframe),
			motions={} if report is None else report.motions,
			paste_boxes=processor_paste_boxes(self.processors, pixels.shape, selected) if selected else []
		)
