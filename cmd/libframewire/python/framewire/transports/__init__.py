"""Transport-side types models see (framewire.transports.media)."""
