"""The configuration hash shared by IQ and configuration change control (SUP-12, OPS-4)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hmi.core.config_check import read_files
from hmi.core.config_hash import config_files, config_hash
from hmi.core.config_versions import set_digest
from hmi.core.errors import ConfigError


def tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return root


def test_hash_is_sha256_of_sorted_relative_names_and_text(tmp_path: Path) -> None:
    root = tree(tmp_path / "c", {"plant.toml": "a = 1\n", "procedures/p.toml": "b = 2\n"})
    expected = json.dumps(
        {"plant.toml": "a = 1\n", "procedures/p.toml": "b = 2\n"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert config_hash(root) == hashlib.sha256(expected.encode()).hexdigest()


def test_files_that_are_not_configuration_do_not_change_it(tmp_path: Path) -> None:
    plain = tree(tmp_path / "u", {"plant.toml": "a = 1\nb = 2\n"})
    busy = tree(
        tmp_path / "w",
        {
            "plant.toml": "a = 1\nb = 2\n",
            "camera-drop/img.png": "x",
            "notes.txt": "y",
            "old/tags.toml": "z = 1\n",
        },
    )
    assert config_hash(plain) == config_hash(busy)
    assert sorted(config_files(busy)) == ["plant.toml"]


def test_it_is_the_digest_change_control_gives_the_same_files(tmp_path: Path) -> None:
    root = tree(tmp_path / "c", {"plant.toml": "a = 1\r\n", "procedures/p.toml": "b = 2\n"})
    assert config_hash(root) == set_digest(read_files(root))


def test_any_change_to_a_configuration_file_changes_it(tmp_path: Path) -> None:
    root = tree(tmp_path / "c", {"plant.toml": "a = 1\n", "tags.toml": "t = 1\n"})
    before = config_hash(root)
    (root / "tags.toml").write_text("t = 2\n")
    assert config_hash(root) != before
    (root / "tags.toml").rename(root / "tags2.toml")
    assert config_hash(root) != before


def test_a_missing_directory_or_binary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        config_hash(tmp_path / "nope")
    root = tree(tmp_path / "c", {})
    (root / "tags.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config_hash(root)
