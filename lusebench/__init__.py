"""lusebench: language-queried binaural sound event extraction and localization benchmark."""

__version__ = "0.1.0"
