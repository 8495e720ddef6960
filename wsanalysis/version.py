"""The package's version, in a module of its own: every layer may name it without
importing the package's public face (`wsanalysis/__init__.py`)."""

__version__ = "0.1.0"
