"""Installation qualification: the dependency walk, the product file hashes (OPS-4)."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
from pathlib import Path

from hmi.validation.iq import combined_hash, dependencies, package_files


def test_dependencies_are_walked_recursively_without_the_test_extra() -> None:
    deps = dependencies()
    assert deps[0]["name"] == "custos" and deps[0]["required_by"] == ""
    by_name = {d["name"].lower().replace("_", "-"): d for d in deps}
    assert by_name["pydantic"]["required_by"] == "custos"
    assert by_name["pydantic-core"]["required_by"] == "pydantic"  # found through pydantic
    assert "pytest" not in by_name and "ruff" not in by_name  # the test extra is not run time
    for dep in deps:
        assert dep["version"] == metadata.version(dep["name"])
    assert len({d["name"].lower() for d in deps}) == len(deps)


def test_every_product_file_is_hashed_and_the_combined_hash_follows_them() -> None:
    files = package_files()
    paths = [f["path"] for f in files]
    assert "hmi/validation/iq.py" in paths and "drivers/base.py" in paths
    assert "hmi/store/migrations/0001_foundation.sql" in paths
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    root = Path(__file__).parents[2]
    one = next(f for f in files if f["path"] == "hmi/core/config_hash.py")
    data = (root / "hmi/core/config_hash.py").read_bytes()
    assert one == {
        "path": "hmi/core/config_hash.py",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert combined_hash(files) == combined_hash(list(reversed(files)))
    changed = [dict(f, sha256="0" * 64) if f is one else f for f in files]
    assert combined_hash(changed) != combined_hash(files)
