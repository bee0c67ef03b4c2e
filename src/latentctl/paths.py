"""Where latentctl keeps data and models: ``$LATENTCTL_HOME``, else a per-user data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def home() -> Path:
    """Return latentctl's home directory (not created here)."""
    configured = os.environ.get("LATENTCTL_HOME")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "latentctl"


def data_dir(name: str) -> Path:
    """Return the default folder of dataset ``name`` (e.g. ``mnist``)."""
    return home() / "data" / name


def model_dir(name: str) -> Path:
    """Return the default folder of model ``name`` (e.g. ``cgan-mnist``)."""
    return home() / "models" / name
