"""ai8x-nb."""
