"""Built-in scoring schemes, registered exactly as a third-party plugin would be."""
