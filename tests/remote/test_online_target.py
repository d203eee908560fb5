"""``--online``: finding the runtime that serves a data directory from what it announced."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from hmi.cli.online import link_target
from hmi.serve import Listen, announce


def test_online_takes_the_announced_unix_socket(tmp_path: Path) -> None:
    path = announce(tmp_path, [Listen.parse("tls://127.0.0.1:4840"), Listen.parse("unix:s.sock")])
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert link_target(None, True, tmp_path) == f"unix:{Path('s.sock').absolute()}"
    assert link_target("tls://h:1", False, tmp_path) == "tls://h:1"
    assert link_target(None, False, tmp_path) is None


def test_online_says_why_it_cannot_connect(tmp_path: Path) -> None:
    with pytest.raises(click.ClickException, match="No runtime is serving"):
        link_target(None, True, tmp_path)
    announce(tmp_path, [Listen.parse("tls://127.0.0.1:4840")])
    with pytest.raises(
        click.ClickException, match=re.escape("listens only on tls://127.0.0.1:4840")
    ):
        link_target(None, True, tmp_path)
    with pytest.raises(click.UsageError, match="not both"):
        link_target("unix:x", True, tmp_path)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    (tmp_path / "serving.json").write_text(
        json.dumps({"pid": int(ended.stdout), "listen": ["unix:/x.sock"]})
    )
    with pytest.raises(click.ClickException, match="is not running"):
        link_target(None, True, tmp_path)
    (tmp_path / "serving.json").write_text("{")
    with pytest.raises(click.ClickException, match="Cannot read"):
        link_target(None, True, tmp_path)
