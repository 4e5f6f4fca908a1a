"""bigtop: a process and socket manager for Unix, compatible with Circus 0.19."""

__version__ = "0.1.0"

__all__ = ["__version__"]
