"""Where a plant's records live on disk.

``DATA/hmi.duckdb`` holds the records, ``DATA/keys/`` the chain and
checkpoint keys, ``DATA/anchors.log`` a copy of every signed checkpoint kept
outside the database (so that rows removed from the end of a table are
detected), and ``DATA/images/`` the write-once captures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hmi.core.errors import DataDirectoryError


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "hmi.duckdb"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def anchors(self) -> Path:
        return self.root / "anchors.log"

    @property
    def images(self) -> Path:
        return self.root / "images"

    def require_existing(self) -> None:
        if not self.database.is_file():
            raise DataDirectoryError(
                f"No records database at {self.database}. "
                f"Create one with `hmi init --data {self.root}`."
            )

    def require_new(self) -> None:
        if self.root.exists() and any(self.root.iterdir()):
            raise DataDirectoryError(
                f"{self.root} already exists and is not empty; `hmi init` never touches an "
                "existing "
                "data directory. Choose a new directory."
            )
