"""The engineering side of the Terminal API: configuration files, checked and submitted.

What an engineer sees is the approved configuration version. A proposed
text is checked with the rest of the configuration (``hmi.core.config_check``)
and compared with the approved one; submitting it records a new proposed
configuration version (``hmi.core.change_control``) signed with the meaning
``authored``. It takes effect only when the approvals the policy asks for are
recorded; the desk itself never changes the running configuration.

Without change control (a desk built for a check only) submitting records a
signed ``config_change_requested`` audit row instead: the proposed text itself
while it is at most ``KEEP_LIMIT`` bytes, else the diff if that fits, else
only the digests and sizes (docs/engineer-guide.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from hmi.core.api_refusals import record_refusal
from hmi.core.api_types import (
    ConfigCheck,
    ConfigDiff,
    ConfigFile,
    ConfigRequest,
    ConfigVersionView,
)
from hmi.core.change_control import APPROVE_PERMISSION, ChangeControl
from hmi.core.commands import Credentials
from hmi.core.config_apply import file_set_for
from hmi.core.config_check import FIXED_FILES, check_name, check_text, diff_text, read_files
from hmi.core.config_versions import ConfigVersion
from hmi.core.errors import ConfigError, HmiError
from hmi.core.esign import ESignService, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, Origin
from hmi.core.terminals import TerminalConfig, check_terminal

EDIT_PERMISSION = "edit_configuration"
REQUEST_ACTION = "config_change_requested"
REQUEST_MEANING = "authored"
KEEP_LIMIT = 32 * 1024
"""Bytes of proposed text (or diff) kept in the audit record's detail."""


class ConfigDesk:
    def __init__(
        self,
        identity: IdentityService,
        esign: ESignService,
        directory: Path | None,
        terminals: list[TerminalConfig],
        recorder: Recorder,
        change: ChangeControl | None = None,
    ) -> None:
        self.identity = identity
        self.change = change
        self.esign = esign
        self.directory = directory
        self.terminals = terminals
        self.recorder = recorder
        self.approved = read_files(directory)
        """File name → text, as read when the runtime started, then as approved."""
        self.revision = 0
        """Counts changes of ``approved``, so a remote terminal knows to fetch the files again."""

    def files(self, session: Session) -> list[ConfigFile]:
        """Every configuration file, with its approved text; absent ones are empty (defaults)."""
        self.identity.require_permission(session, EDIT_PERMISSION)
        names = [*FIXED_FILES, *sorted(n for n in self.approved if n not in FIXED_FILES)]
        return [ConfigFile(n, self.approved.get(n, ""), n in self.approved) for n in names]

    async def check(self, session: Session, file: str, new_text: str) -> ConfigCheck:
        """Problems of the whole configuration with ``file`` replaced by ``new_text``."""
        self.identity.require_permission(session, EDIT_PERMISSION)
        check_name(file)
        problems = await asyncio.to_thread(
            check_text, self.directory, self.approved, file, new_text
        )
        return ConfigCheck(file, not problems, tuple(problems))

    def diff(self, session: Session, file: str, new_text: str) -> ConfigDiff:
        """``new_text`` against the approved version of ``file``."""
        self.identity.require_permission(session, EDIT_PERMISSION)
        return diff_text(check_name(file), self.approved.get(file, ""), new_text)

    async def submit(
        self,
        session: Session,
        origin: Origin,
        file: str,
        new_text: str,
        reason: str,
        signature: Credentials,
        *,
        shown: str | None = None,
    ) -> ConfigRequest:
        """Validate, then record the signed request to change ``file``; nothing is applied.

        ``shown`` is the SHA-256 of the diff the signer looked at: if the diff
        differs now, the request is refused rather than signed.
        """
        target = f"config:{file}"
        try:
            current = self.identity.require_permission(session, EDIT_PERMISSION)
            check_terminal(self.terminals, current.origin, origin, EDIT_PERMISSION, None)
            diff = self.diff(session, file, new_text)
            if not diff.diff:
                raise HmiError(f"{file} is unchanged; there is nothing to submit.")
            if shown is not None and shown != diff.sha256:
                raise HmiError(f"The change to {file} is not the one shown; review it again.")
            checked = await self.check(session, file, new_text)
            if not checked.ok:
                first = checked.problems[0]
                raise ConfigError(
                    f"{len(checked.problems)} problem(s); first: {first.file}: {first.key}: "
                    f"{first.message}"
                )
            if self.change is not None:
                return await self._propose(session, origin, file, new_text, diff, reason, signature)
            return await self._record(session, origin, file, new_text, diff, reason, signature)
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, REQUEST_ACTION, target, exc, reason
            ) from None

    async def _propose(
        self,
        session: Session,
        origin: Origin,
        file: str,
        new_text: str,
        diff: ConfigDiff,
        reason: str,
        signature: Credentials,
    ) -> ConfigRequest:
        assert self.change is not None
        files = file_set_for(self.approved, file, new_text)
        version = await self.change.propose(
            session, origin, files, reason, signature.password, signature.user_id
        )
        if version.state == "approved":
            self.now_approved(version.files)
        text_sha = hashlib.sha256(new_text.encode("utf-8")).hexdigest()
        return ConfigRequest(
            file,
            diff.sha256,
            text_sha,
            True,
            version.signed_now,
            version.version,
            version.state,
            version.missing,
            version.effect,
        )

    async def _record(
        self,
        session: Session,
        origin: Origin,
        file: str,
        new_text: str,
        diff: ConfigDiff,
        reason: str,
        signature: Credentials,
    ) -> ConfigRequest:
        request = SignatureRequest(
            REQUEST_ACTION,
            f"config:{file}",
            REQUEST_MEANING,
            reason,
            new_value=f"diff sha256:{diff.sha256} ({diff.size} bytes)",
        )
        signed, entry = await self.esign.sign(
            session,
            request,
            signature.password,
            permission=EDIT_PERMISSION,
            user_id=signature.user_id,
        )
        text = new_text.encode("utf-8")
        text_sha = hashlib.sha256(text).hexdigest()
        detail: dict[str, object] = {
            "file": file,
            "diff_sha256": diff.sha256,
            "diff_bytes": diff.size,
            "text_sha256": text_sha,
            "text_bytes": len(text),
            "applied": False,
        }
        if len(text) <= KEEP_LIMIT:
            detail["text"] = new_text
        elif diff.size <= KEEP_LIMIT:
            detail["diff"] = diff.diff
        user = self.identity.require_session(session).user
        record = AuditEntry(
            REQUEST_ACTION,
            "done",
            user.user_id,
            user.full_name,
            origin,
            target=f"config:{file}",
            new_value=f"diff sha256:{diff.sha256} ({diff.size} bytes)",
            reason=reason,
            signature_ids=(signed.signature_id,),
            detail=json.dumps(detail, sort_keys=True),
        )
        await self.recorder.commit([entry, record])
        return ConfigRequest(
            file, diff.sha256, text_sha, "text" in detail, (signed.manifestation(),)
        )

    # -- versions: history, approval, rollback ---------------------------------------------

    def _change(self) -> ChangeControl:
        if self.change is None:
            raise HmiError("This terminal keeps no configuration versions.")
        return self.change

    async def versions(self, session: Session) -> list[ConfigVersionView]:
        """Every configuration version, newest first (engineers and approvers)."""
        current = self.identity.require_session(session)
        policy = self.identity.policy
        if not (
            policy.permitted(current.user.roles, EDIT_PERMISSION)
            or policy.permitted(current.user.roles, APPROVE_PERMISSION)
        ):
            self.identity.require_permission(session, APPROVE_PERMISSION)
        return [_view(v) for v in reversed(await self._change().versions())]

    async def approve(
        self, session: Session, origin: Origin, version: int, reason: str, signature: Credentials
    ) -> ConfigVersionView:
        """Sign approval of ``version``; the last approval needed makes it the approved one."""
        change = self._change()
        await self._terminal(
            session, origin, APPROVE_PERMISSION, "config_version_approved", version
        )
        out = await change.approve(
            session, origin, version, reason, signature.password, signature.user_id
        )
        return self._after(out)

    async def reject(
        self, session: Session, origin: Origin, version: int, reason: str, signature: Credentials
    ) -> ConfigVersionView:
        change = self._change()
        await self._terminal(
            session, origin, APPROVE_PERMISSION, "config_version_rejected", version
        )
        out = await change.reject(
            session, origin, version, reason, signature.password, signature.user_id
        )
        return _view(out)

    async def rollback(
        self, session: Session, origin: Origin, version: int, reason: str, signature: Credentials
    ) -> ConfigVersionView:
        """A new proposed version restoring ``version``'s text, signed ``authored``."""
        change = self._change()
        await self._terminal(session, origin, EDIT_PERMISSION, "config_version_rollback", version)
        out = await change.rollback(
            session, origin, version, reason, signature.password, signature.user_id
        )
        return self._after(out)

    async def _terminal(
        self, session: Session, origin: Origin, permission: str, action: str, version: int
    ) -> None:
        """Permission and terminal first; a refusal is recorded before it is raised."""
        try:
            current = self.identity.require_permission(session, permission)
            check_terminal(self.terminals, current.origin, origin, permission, None)
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, action, f"config:version {version}", exc
            ) from None

    def _after(self, version: ConfigVersion) -> ConfigVersionView:
        if version.state == "approved":
            self.now_approved(version.files)
        return _view(version)

    def now_approved(self, files: Mapping[str, str]) -> None:
        """A version was approved (here, or by ``hmi config approve`` over a link): what
        engineers see and diff against is its files from now on. Told once by the desk and
        once by the runtime after applying it; ``revision`` moves only when files change."""
        if dict(files) != self.approved:
            self.approved = dict(files)
            self.revision += 1


def _view(v: ConfigVersion) -> ConfigVersionView:
    return ConfigVersionView(
        v.version,
        v.state,
        f"{v.author_name} ({v.author_id})",
        v.reason or "",
        v.created,
        v.changed,
        v.missing if v.state == "proposed" else (),
        tuple(f"{a.role}: {a.actor_name} ({a.actor_id})" for a in v.approvals),
        v.diff,
        v.base_version,
        v.restores_version,
        v.signed_now,
        v.effect,
    )
