"""reportgen: train or load two image classifiers and publish what they learned as a static site."""

__version__ = "0.1.0"
