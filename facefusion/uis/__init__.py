"""The Gradio UI of `python facefusion.py run`: option controls derived from the CLI's parser, a one-frame preview,
and Start / Stop of a `headless-run` subprocess (the same workflows, the same validation, the same messages)."""
