"""The aiohttp I/O shell around the sans-I/O core."""
