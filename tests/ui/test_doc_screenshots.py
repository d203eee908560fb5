"""The guides' screenshots are the snapshot tests' pictures, so they cannot go stale."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]
SNAPSHOTS = Path(__file__).parent / "__snapshots__"
SHOTS = ROOT / "docs" / "screenshots"


def sources() -> dict[str, Path]:
    """Each docs/screenshots/NAME.svg and the snapshot it is copied from (``make screenshots``)."""
    out = {}
    for svg in sorted(SNAPSHOTS.glob("*/*.svg")):
        stem = svg.stem.removeprefix("test_").replace("[", "-").replace("]", "")
        out[f"{stem.replace('_', '-')}.svg"] = svg
    return out


def test_every_snapshot_is_in_the_docs_as_it_is() -> None:
    stale = [
        name
        for name, source in sources().items()
        if not (SHOTS / name).is_file() or (SHOTS / name).read_bytes() != source.read_bytes()
    ]
    assert not stale, f"run `make screenshots`: {stale}"


def test_the_guides_show_screenshots_that_exist() -> None:
    shown = [
        line.split("](screenshots/", 1)[1].split(")", 1)[0]
        for guide in (ROOT / "docs").glob("*.md")
        for line in guide.read_text().splitlines()
        if "](screenshots/" in line
    ]
    assert shown, "no guide shows a screenshot"
    assert all((SHOTS / name).is_file() for name in shown), shown


if __name__ == "__main__":  # `make screenshots`
    SHOTS.mkdir(exist_ok=True)
    for stale in SHOTS.glob("*.svg"):
        stale.unlink()
    for name, source in sources().items():
        (SHOTS / name).write_bytes(source.read_bytes())
