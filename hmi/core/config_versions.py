"""Configuration versions: what a version is, how it differs, who must approve it.

A version is the whole configuration set, file name → text, hashed as the
SHA-256 of its canonical JSON. Its life is a list of chained events
(``ConfigVersionEntry``): ``baseline`` or ``proposed`` (with the text),
``signed`` per approval signature, then ``approved`` or ``rejected``. The
state of a version is folded from these events here; nothing stores it.

The approved configuration is the version of the latest ``baseline`` or
``approved`` event. A proposal is made against that version; once another
version is approved it is ``stale`` and must be submitted again, so nobody
approves a diff against a configuration that is no longer the running one.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hmi.core.change_policy import RECORDS_KEYS, ChangeControlPolicy, file_kind
from hmi.core.errors import ConfigError
from hmi.core.records import ConfigVersionEntry

FileSet = dict[str, str]

QA, ADMIN = "qa", "admin"


def canonical(files: FileSet) -> str:
    return json.dumps(files, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def set_digest(files: FileSet) -> str:
    return hashlib.sha256(canonical(files).encode("utf-8")).hexdigest()


def changed_files(old: FileSet, new: FileSet) -> list[str]:
    return sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))


def diff_sets(old: FileSet, new: FileSet) -> str:
    """Unified diff of every changed file (an absent file diffs as empty)."""
    out: list[str] = []
    for name in changed_files(old, new):
        for line in difflib.unified_diff(
            old.get(name, "").splitlines(keepends=True),
            new.get(name, "").splitlines(keepends=True),
            fromfile=f"a/{name}" if name in old else "/dev/null",
            tofile=f"b/{name}" if name in new else "/dev/null",
        ):
            out.append(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n")
    return "".join(out)


def _table(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def key_changes(old: str | None, new: str | None) -> list[str]:
    """Top-level TOML keys added, removed or changed between two texts of a file."""
    a = {} if old is None else _table(old)
    b = {} if new is None else _table(new)
    if a is None or b is None:
        return ["(not valid TOML)"]
    out = [f"+{k}" for k in sorted(set(b) - set(a))]
    out += [f"-{k}" for k in sorted(set(a) - set(b))]
    out += [f"~{k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return out or ["(whitespace or comments only)"]


def describe_differences(approved: FileSet, disk: FileSet) -> list[str]:
    """One line per differing file: the top-level keys added (+), removed (-), changed (~)."""
    lines = []
    for name in changed_files(approved, disk):
        if name not in approved:
            lines.append(f"{name}: not in the approved version (added on disk)")
        elif name not in disk:
            lines.append(f"{name}: missing on disk (the approved version has it)")
        else:
            lines.append(f"{name}: keys {', '.join(key_changes(approved[name], disk[name]))}")
    return lines


def policy_of(files: FileSet) -> ChangeControlPolicy:
    """The ``[change_control]`` policy of a configuration set (defaults if absent)."""
    table = _table(files.get("plant.toml", "")) or {}
    try:
        return ChangeControlPolicy.model_validate(table.get("change_control", {}))
    except ValueError as exc:
        raise ConfigError(f"plant.toml: change_control: {exc}") from exc


def required_approvals(old: FileSet, new: FileSet, policy: ChangeControlPolicy) -> tuple[str, ...]:
    """Roles that must approve the change from ``old`` to ``new``, besides its author."""
    need: set[str] = set()
    for name in changed_files(old, new):
        kind = file_kind(name)
        if kind in policy.qa_approval_for:
            need.add(QA)
        if kind == "security":
            need.update((QA, ADMIN))
        records = RECORDS_KEYS.get(name, ())
        before, after = _table(old.get(name, "")) or {}, _table(new.get(name, "")) or {}
        if any(before.get(k) != after.get(k) for k in records):
            need.update((QA, ADMIN))
    return tuple(r for r in (QA, ADMIN) if r in need)


@dataclass(frozen=True)
class Approval:
    role: str
    actor_id: str
    actor_name: str
    signature_ids: tuple[str, ...]


@dataclass
class ConfigVersion:
    version: int
    files: FileSet
    sha256: str
    author_id: str | None
    author_name: str | None
    reason: str | None
    created: datetime | None
    base_version: int | None = None
    restores_version: int | None = None
    required: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    diff: str = ""
    signature_ids: tuple[str, ...] = ()
    approvals: list[Approval] = field(default_factory=list)
    state: str = "proposed"
    """``proposed``, ``stale``, ``approved`` (the running one), ``superseded``, ``rejected``."""
    decided_seq: int = 0
    baseline: bool = False
    signed_now: tuple[str, ...] = ()
    """Manifestations of the signature given by the call that returned this (not stored)."""
    effect: str = ""
    """What a running system did on approval, in words (not stored; empty: next start)."""

    @property
    def missing(self) -> tuple[str, ...]:
        signed = {a.role for a in self.approvals}
        return tuple(r for r in self.required if r not in signed)

    def summary(self) -> str:
        files = ", ".join(self.changed) or "(whole configuration)"
        return f"version {self.version} ({self.state}): {files}"


def fold(events: Iterable[ConfigVersionEntry]) -> list[ConfigVersion]:
    """Every version with its state, oldest first."""
    versions: dict[int, ConfigVersion] = {}
    current: ConfigVersion | None = None
    for e in events:
        if e.event in ("baseline", "proposed"):
            files = json.loads(e.files_json or "{}")
            v = ConfigVersion(
                e.version,
                files,
                e.config_sha256,
                e.actor_id,
                e.actor_name,
                e.reason,
                e.ts,
                base_version=e.base_version,
                restores_version=e.restores_version,
                required=tuple(filter(None, (e.required or "").split(","))),
                changed=tuple(filter(None, (e.changed_files or "").split(","))),
                diff=e.diff or "",
                signature_ids=e.signature_ids,
                baseline=e.event == "baseline",
            )
            versions[e.version] = v
            if e.event == "baseline":
                v.state = "approved"
                if current is not None:
                    current.state = "superseded"
                current = v
            continue
        v2 = versions.get(e.version)
        if v2 is None:
            continue
        if e.event == "signed":
            v2.approvals.append(
                Approval(e.actor_role or "", e.actor_id or "", e.actor_name or "", e.signature_ids)
            )
        elif e.event == "approved":
            v2.state = "approved"
            v2.decided_seq = e.seq or 0
            if current is not None and current is not v2:
                current.state = "superseded"
            current = v2
        elif e.event == "rejected":
            v2.state = "rejected"
            v2.decided_seq = e.seq or 0
    for v in versions.values():
        if v.state == "proposed" and (current is None or v.base_version != current.version):
            v.state = "stale"
    return sorted(versions.values(), key=lambda x: x.version)


def current_version(versions: Sequence[ConfigVersion]) -> ConfigVersion | None:
    """The approved (running) version; None for data written before change control."""
    return next((v for v in versions if v.state == "approved"), None)
