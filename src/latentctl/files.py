"""Files written whole or not at all, and read back with one-line errors: JSON, safetensors, checksums.

Every file latentctl writes goes through :func:`atomic_path`: a crash, a full disk or Ctrl-C leaves the
previous file intact and no temporary file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from latentctl.errors import LatentctlError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` in one rename.

    A crash, a full disk or Ctrl-C leaves the previous file intact and no temporary file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary_path, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(temporary_path, path)
    except OSError as error:
        if error.filename in (temporary, str(temporary_path)):  # say which file could not be written
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    finally:
        temporary_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def file_sha256(path: Path) -> str:
    """Return the sha256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

def write_json(path: Path, document: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing or unparsable file is a LatentctlError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LatentctlError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LatentctlError(f"{path} is not valid JSON ({error})",
                             hint="the file is corrupted; restore or retrain the model") from None


def save_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Write tensors to a safetensors file atomically; the same tensors and metadata give the same bytes."""
    from safetensors.torch import save_file

    contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
    with atomic_path(path) as temporary:
        save_file(contiguous, str(temporary), metadata=metadata)
        if metadata and len(metadata) > 1:
            _sort_metadata(temporary)


def _sort_metadata(path: Path) -> None:
    """safetensors writes the metadata in a hash map's order, which changes from process to process: sort it in
    place. The header keeps its length (the same JSON in another order), so the tensors stay where they are."""
    with open(path, "r+b") as file:
        length = int.from_bytes(file.read(8), "little")
        written = file.read(length)
        header = json.loads(written)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= length and not written[len(text):].strip(b" "):  # else not the layout expected: leave it
            file.seek(8)
            file.write(text.ljust(length, b" "))


def load_tensors(path: Path) -> dict[str, Any]:
    """Read every tensor of a safetensors file onto the CPU; a torn or foreign file is a LatentctlError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise LatentctlError(f"{path} does not exist", hint="is this a latentctl model folder?")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise LatentctlError(f"{path} is corrupted or not a safetensors file ({error})",
                             hint="restore it from where you got it, or retrain") from None
