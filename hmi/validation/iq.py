"""Installation qualification: what is installed, where, and with which configuration.

The record lets a reviewer compare two installations (or one installation
over time) file by file: the Python interpreter, the platform, every
distribution the product depends on (walked from the product's own
requirements, recursively, with the versions actually installed), a SHA-256
of every file of the product's packages (``hmi``, ``drivers``) with one
combined hash, and the configuration hash (``hmi.core.config_hash``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import platform
import re
import sys
from pathlib import Path
from typing import Any

import drivers
import hmi
from hmi.core.config_hash import config_files, config_hash
from hmi.store.verify_images import file_sha256

PRODUCT = "custos"
PACKAGES = (hmi, drivers)
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, set[str], str] | None:
    """(name, extras asked for, marker) of a requirement string; None if unparsable."""
    match = _NAME.match(spec)
    if match is None:
        return None
    extras = {e.strip() for e in (match.group(2) or "[]")[1:-1].split(",") if e.strip()}
    marker = spec.split(";", 1)[1].strip() if ";" in spec else ""
    return match.group(1), extras, marker


def _applies(marker: str, extras: set[str]) -> bool:
    """Whether a requirement's marker holds here; extras markers hold only when asked for."""
    if not marker:
        return True
    wanted = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    if wanted:
        return any(_normal(w) in {_normal(e) for e in extras} for w in wanted)
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - packaging ships with pip's environments
        return True
    return bool(Marker(marker).evaluate())


def dependencies(root: str = PRODUCT) -> list[dict[str, Any]]:
    """Every distribution ``root`` needs at run time, recursively, as installed here.

    A requirement that is not installed is listed with ``version: null`` so the
    IQ shows it as missing rather than leaving it out.
    """
    seen: dict[str, dict[str, Any]] = {}
    queue: list[tuple[str, set[str], str]] = [(root, set(), "")]
    while queue:
        name, extras, required_by = queue.pop(0)
        key = _normal(name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            seen[key] = {"name": name, "version": None, "required_by": required_by}
            continue
        seen[key] = {
            "name": dist.metadata["Name"] or name,
            "version": dist.version,
            "required_by": required_by,
        }
        for spec in dist.requires or ():
            parsed = _requirement(spec)
            if parsed is None:
                continue
            dep, dep_extras, marker = parsed
            if _applies(marker, extras):
                queue.append((dep, dep_extras, seen[key]["name"]))
    product = seen.pop(_normal(root), None)
    rows = sorted(seen.values(), key=lambda r: _normal(r["name"]))
    return [product, *rows] if product else rows


def package_files() -> list[dict[str, Any]]:
    """SHA-256 and size of every file of the product's packages, by path from the package root.

    Read from where Python imports the packages, so an editable (source)
    install and a wheel install are both covered.
    """
    files = []
    for package in PACKAGES:
        root = Path(package.__file__ or "").resolve().parent
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root.parent)
            if not path.is_file() or SKIPPED_DIRS & set(rel.parts):
                continue
            if path.suffix in SKIPPED_SUFFIXES:
                continue
            sha, size = file_sha256(path)
            files.append({"path": rel.as_posix(), "sha256": sha, "size": size})
    return files


def combined_hash(files: list[dict[str, Any]]) -> str:
    """One SHA-256 over ``path  sha256`` lines in path order (like ``sha256sum`` output)."""
    lines = "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(files, key=lambda f: f["path"]))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def installation_qualification(config_dir: Path | None) -> dict[str, Any]:
    """The IQ record (plain JSON-ready data)."""
    files = package_files()
    deps = dependencies()
    config: dict[str, Any] = {"directory": None, "sha256": None, "files": []}
    if config_dir is not None:
        config = {
            "directory": str(config_dir.resolve()),
            "sha256": config_hash(config_dir),
            "files": sorted(config_files(config_dir)),
        }
    try:
        version = metadata.version(PRODUCT)
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {
        "product": {
            "name": PRODUCT,
            "version": version,
            "packages": {
                p.__name__: str(Path(p.__file__ or "").resolve().parent) for p in PACKAGES
            },
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "host": platform.node(),
        },
        "dependencies": deps,
        "missing_dependencies": [d["name"] for d in deps if d["version"] is None],
        "package_files": files,
        "package_hash": combined_hash(files),
        "configuration": config,
    }
