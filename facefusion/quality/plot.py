"""The --quality-plot picture: tPSNR of the face regions in and out, the landmark jitter, and the alerts, over the
frames. matplotlib with the Agg backend (no display needed), imported only when a plot is asked for."""
from __future__ import annotations

import os

from facefusion.quality.records import ALERT_KINDS, PlotSeries

ALERT_COLOURS = {'tpsnr-drop': 'tab:red', 'flicker': 'tab:purple', 'outside-changed': 'black', 'low-face-ssim': 'tab:orange'}


def draw_quality_plot(series: PlotSeries, tpsnr_drop: float, face_ssim: float, path: str) -> None:
	import matplotlib
	matplotlib.use('Agg')
	from matplotlib import pyplot

	figure, (top, middle, bottom) = pyplot.subplots(3, 1, figsize=(10, 7), sharex=True, gridspec_kw={'height_ratios': [3, 2, 1]})
	top.plot(series.frames, series.tpsnr_in, label='tPSNR in', color='tab:blue', linewidth=1)
	top.plot(series.frames, series.tpsnr_out, label='tPSNR out', color='tab:green', linewidth=1)
	top.set_ylabel('face tPSNR (dB)')
	top.legend(loc='best')
	top.grid(alpha=0.3)
	middle.plot(series.frames, series.jitter, color='tab:gray', linewidth=1)
	middle.set_ylabel('jitter (px)')
	middle.grid(alpha=0.3)
	for row, kind in enumerate(ALERT_KINDS):
		frames = [alert.frame for alert in series.alerts if alert.kind == kind]
		bottom.scatter(frames, [row] * len(frames), marker='|', s=120, color=ALERT_COLOURS[kind])
	bottom.set_yticks(range(len(ALERT_KINDS)))
	bottom.set_yticklabels(ALERT_KINDS, fontsize=8)
	bottom.set_ylim(-0.5, len(ALERT_KINDS) - 0.5)
	bottom.set_xlabel('frame')
	figure.suptitle(f'quality: tPSNR drop alert at {tpsnr_drop:g} dB, face SSIM alert below {face_ssim:g}')
	figure.tight_layout()
	partial = path + '.partial.png'
	figure.savefig(partial, dpi=100)
	pyplot.close(figure)
	os.replace(partial, path)
