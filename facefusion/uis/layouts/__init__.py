"""UI layouts by name (--ui-layouts); this build has `default`."""
