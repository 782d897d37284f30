"""Write secrets so that no other user can read them at any moment."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(folder: Path) -> None:
    """Create `folder` (and missing parents) with mode 0700; tighten it to 0700 if it exists.

    The folder holds private keys, so an existing folder is tightened too; parents that
    already exist are left as they are.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        # exist_ok: another process may create the same folder at the same time.
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.chmod(path, PRIVATE_DIR_MODE)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a directory")
    os.chmod(folder, PRIVATE_DIR_MODE)


def write_file_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` via a temporary file created with `mode`, then rename it.

    `mkstemp` creates the file 0600 with O_EXCL, so the secret is never readable by
    others, and a reader never sees a half-written file. An existing file is replaced,
    not rewritten in place, so its old (maybe wider) mode does not carry over.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            if mode != PRIVATE_FILE_MODE:
                os.fchmod(tmp.fileno(), mode)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
