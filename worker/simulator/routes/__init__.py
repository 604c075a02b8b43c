"""The simulator's HTTP handlers, one module per endpoint family."""
