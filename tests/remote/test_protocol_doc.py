"""docs/protocol.md lists exactly the methods the server answers, as the code declares them."""

from __future__ import annotations

from pathlib import Path

from hmi.remote.methods import METHODS, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_the_method_table_is_the_codes() -> None:
    text = DOC.read_text()
    assert markdown_table() in text, "regenerate with: python -m hmi.remote.methods"
    for name in METHODS:
        assert f"| `{name}` |" in text


def test_the_services_behind_the_api_are_not_methods() -> None:
    assert not any(
        name.split(".")[0] in {"identity", "commands", "table", "approvals", "captures"}
        for name in METHODS
    )
    assert not any(part.startswith("_") for name in METHODS for part in name.split("."))


def test_only_login_is_callable_without_a_session() -> None:
    """Anything else is done for someone; a runtime hook that takes no session (the
    config desk's ``now_approved``) must not be reachable from a terminal."""
    sessionless = sorted(n for n, m in METHODS.items() if "session" not in m.injects)
    assert sessionless == ["login"]
    assert "config.now_approved" not in METHODS and "config.files" in METHODS
