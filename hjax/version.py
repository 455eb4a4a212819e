"""The hjax version (its own module so that run files can record it without importing the package)."""

__version__ = "0.7.0"
