"""Built-in sinks, one module each."""
