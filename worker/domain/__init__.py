"""Plain-Python domain: no I/O, no framework imports."""
