"""The parts of a layout, one concern each: media inputs, option controls, preview, run controls."""
