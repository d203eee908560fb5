"""Configuration change control (SUP-12, 11.10(k)): submit, approve, reject, roll back.

Every change is a new version of the whole configuration set, signed by its
author (``authored``) and approved by the roles the approved policy names
(``hmi.core.change_policy``), each a different person from the author and
from each other, signing ``approved``. A version takes effect when its last
approval is recorded: its files are then written to the configuration
directory (temporary file + rename per file), so the directory always holds
the approved version. A rejection is signed ``reviewed``. A rollback is a
new version whose text is an earlier one's, reviewed like any change.

Every step and every refusal is recorded (audit rows ``config_version_*``)
in the same transaction as the version event and the signature.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from hmi.core.api_refusals import record_refusal
from hmi.core.config_apply import write_set
from hmi.core.config_check import check_files
from hmi.core.config_versions import (
    ConfigVersion,
    FileSet,
    canonical,
    changed_files,
    current_version,
    diff_sets,
    fold,
    policy_of,
    required_approvals,
    set_digest,
)
from hmi.core.errors import ConfigError, HmiError
from hmi.core.esign import ESignService, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, ConfigVersionEntry, Origin, Record

EDIT_PERMISSION = "edit_configuration"
APPROVE_PERMISSION = "approve_configuration"
AUTHORED, APPROVED, REVIEWED = "authored", "approved", "reviewed"


class ConfigVersionReader(Protocol):
    async def config_events(self) -> list[ConfigVersionEntry]:
        """Every version event, oldest first."""
        ...


class ChangeControl:
    def __init__(
        self,
        identity: IdentityService,
        esign: ESignService,
        recorder: Recorder,
        reader: ConfigVersionReader,
        directory: Path | None,
        *,
        on_approved: Callable[[ConfigVersion, ConfigVersion], Awaitable[str]] | None = None,
    ) -> None:
        self.identity = identity
        self.esign = esign
        self.recorder = recorder
        self.reader = reader
        self.directory = directory
        self.on_approved = on_approved
        self._lock = asyncio.Lock()

    async def versions(self) -> list[ConfigVersion]:
        return fold(await self.reader.config_events())

    async def approved(self) -> ConfigVersion:
        current = current_version(await self.versions())
        if current is None:
            raise ConfigError(
                "There is no approved configuration version yet: data from before change "
                "control records its configuration as version 1 when the runtime next starts."
            )
        return current

    async def version(self, number: int) -> ConfigVersion:
        for v in await self.versions():
            if v.version == number:
                return v
        raise HmiError(f"There is no configuration version {number}.")

    # -- submit and roll back -----------------------------------------------------------

    async def submit(
        self,
        session: Session,
        origin: Origin,
        files: FileSet,
        reason: str,
        password: str,
        user_id: str | None = None,
        *,
        restores: int | None = None,
    ) -> ConfigVersion:
        """Record ``files`` as a proposed version, signed ``authored``; approved at once if
        the policy needs nobody else's approval."""
        action = "config_version_rollback" if restores is not None else "config_version_proposed"
        try:
            return await self.propose(
                session, origin, files, reason, password, user_id, restores=restores
            )
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, action, "config", exc, reason
            ) from None

    async def propose(
        self,
        session: Session,
        origin: Origin,
        files: FileSet,
        reason: str,
        password: str,
        user_id: str | None = None,
        *,
        restores: int | None = None,
    ) -> ConfigVersion:
        """``submit`` without recording a refusal: for a caller that records its own."""
        action = "config_version_rollback" if restores is not None else "config_version_proposed"
        async with self._lock:
            self.identity.require_permission(session, EDIT_PERMISSION)
            base = await self.approved()
            if files == base.files:
                raise HmiError("The configuration is the approved one; nothing to submit.")
            problems = await asyncio.to_thread(check_files, self.directory, files)
            if problems:
                first = problems[0]
                raise ConfigError(
                    f"{len(problems)} problem(s); first: {first.file}: {first.key}: {first.message}"
                )
            return await self._propose(
                session, origin, base, files, reason, password, user_id, action, restores
            )

    async def rollback(
        self,
        session: Session,
        origin: Origin,
        number: int,
        reason: str,
        password: str,
        user_id: str | None = None,
    ) -> ConfigVersion:
        """A new proposed version restoring version ``number``'s text."""
        try:
            earlier = await self.version(number)
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, "config_version_rollback", "config", exc, reason
            ) from None
        return await self.submit(
            session, origin, earlier.files, reason, password, user_id, restores=number
        )

    async def _propose(
        self,
        session: Session,
        origin: Origin,
        base: ConfigVersion,
        files: FileSet,
        reason: str,
        password: str,
        user_id: str | None,
        action: str,
        restores: int | None,
    ) -> ConfigVersion:
        number = max(v.version for v in await self.versions()) + 1
        sha = set_digest(files)
        diff = diff_sets(base.files, files)
        changed = changed_files(base.files, files)
        required = required_approvals(base.files, files, policy_of(base.files))
        diff_sha = hashlib.sha256(diff.encode("utf-8")).hexdigest()
        new_value = f"sha256:{sha}; changes {', '.join(changed)}; diff sha256:{diff_sha}"
        if restores is not None:
            new_value = f"restores version {restores}; {new_value}"
        request = SignatureRequest(
            action,
            f"config:version {number}",
            AUTHORED,
            reason,
            old_value=f"version {base.version} sha256:{base.sha256}",
            new_value=new_value,
        )
        signed, sig_entry = await self.esign.sign(
            session, request, password, permission=EDIT_PERMISSION, user_id=user_id
        )
        user = self.identity.require_session(session).user
        entry = ConfigVersionEntry(
            number,
            "proposed",
            user.user_id,
            user.full_name,
            origin,
            sha,
            base_version=base.version,
            restores_version=restores,
            files_json=canonical(files),
            changed_files=",".join(changed),
            diff=diff,
            required=",".join(required),
            reason=reason,
            signature_ids=(signed.signature_id,),
        )
        audit = AuditEntry(
            action,
            "done",
            user.user_id,
            user.full_name,
            origin,
            target=f"config:version {number}",
            old_value=f"version {base.version}",
            new_value=new_value,
            reason=reason,
            signature_ids=(signed.signature_id,),
            detail=f"needs approval by: {', '.join(required) or 'nobody (policy)'}",
        )
        records: list[Record] = [sig_entry, entry, audit]
        if not required:
            records += self._approval_records(number, sha, user.user_id, user.full_name, origin)
        await self.recorder.commit(records)
        version = await self.version(number)
        version.signed_now = (signed.manifestation(),)
        if version.state == "approved":
            await self._apply(base, version)
        return version

    # -- approve and reject ---------------------------------------------------------------

    async def approve(
        self,
        session: Session,
        origin: Origin,
        number: int,
        reason: str,
        password: str,
        user_id: str | None = None,
    ) -> ConfigVersion:
        """Add the session user's approval; the last one needed makes the version effective."""
        target = f"config:version {number}"
        try:
            async with self._lock:
                current = self.identity.require_permission(session, APPROVE_PERMISSION)
                version = await self._pending(number)
                role = self._role_for(version, current)
                base = await self.approved()
                return await self._approve(
                    session, origin, base, version, role, reason, password, user_id
                )
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, "config_version_approved", target, exc, reason
            ) from None

    async def reject(
        self,
        session: Session,
        origin: Origin,
        number: int,
        reason: str,
        password: str,
        user_id: str | None = None,
    ) -> ConfigVersion:
        """Reject a proposed version (signed ``reviewed``); it can never take effect."""
        target = f"config:version {number}"
        try:
            async with self._lock:
                self.identity.require_permission(session, APPROVE_PERMISSION)
                version = await self.version(number)
                if version.state not in ("proposed", "stale"):
                    raise HmiError(
                        f"Version {number} is {version.state}; only a proposal can be rejected."
                    )
                request = SignatureRequest(
                    "config_version_rejected",
                    target,
                    REVIEWED,
                    reason,
                    new_value=f"rejected sha256:{version.sha256}",
                )
                signed, sig_entry = await self.esign.sign(
                    session, request, password, permission=APPROVE_PERMISSION, user_id=user_id
                )
                user = self.identity.require_session(session).user
                await self.recorder.commit(
                    [
                        sig_entry,
                        ConfigVersionEntry(
                            number,
                            "rejected",
                            user.user_id,
                            user.full_name,
                            origin,
                            version.sha256,
                            reason=reason,
                            signature_ids=(signed.signature_id,),
                        ),
                        AuditEntry(
                            "config_version_rejected",
                            "done",
                            user.user_id,
                            user.full_name,
                            origin,
                            target=target,
                            reason=reason,
                            signature_ids=(signed.signature_id,),
                        ),
                    ]
                )
                rejected = await self.version(number)
                rejected.signed_now = (signed.manifestation(),)
                return rejected
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, "config_version_rejected", target, exc, reason
            ) from None

    async def _pending(self, number: int) -> ConfigVersion:
        version = await self.version(number)
        if version.state == "stale":
            raise HmiError(
                f"Version {number} was made against version {version.base_version}, which is no "
                "longer the approved one; submit the change again."
            )
        if version.state != "proposed":
            raise HmiError(f"Version {number} is {version.state}; there is nothing to approve.")
        return version

    @staticmethod
    def _role_for(version: ConfigVersion, current: Session) -> str:
        user = current.user
        if user.user_id == version.author_id:
            raise HmiError(
                f"{user.full_name} authored version {version.version}; another "
                "person must approve it."
            )
        if any(a.actor_id == user.user_id for a in version.approvals):
            raise HmiError(
                f"{user.full_name} has already approved version {version.version}; "
                "the next approval must come from another person."
            )
        missing = version.missing
        for role in missing:
            if role in user.roles:
                return role
        raise HmiError(
            f"Version {version.version} still needs approval by: {', '.join(missing)}; "
            f"{user.full_name} holds {', '.join(user.roles)}."
        )

    async def _approve(
        self,
        session: Session,
        origin: Origin,
        base: ConfigVersion,
        version: ConfigVersion,
        role: str,
        reason: str,
        password: str,
        user_id: str | None,
    ) -> ConfigVersion:
        target = f"config:version {version.version}"
        request = SignatureRequest(
            "config_version_approved",
            target,
            APPROVED,
            reason,
            old_value=f"version {base.version} sha256:{base.sha256}",
            new_value=f"sha256:{version.sha256} as {role}",
        )
        signed, sig_entry = await self.esign.sign(
            session, request, password, permission=APPROVE_PERMISSION, user_id=user_id
        )
        user = self.identity.require_session(session).user
        records: list[Record] = [
            sig_entry,
            ConfigVersionEntry(
                version.version,
                "signed",
                user.user_id,
                user.full_name,
                origin,
                version.sha256,
                actor_role=role,
                reason=reason,
                signature_ids=(signed.signature_id,),
            ),
        ]
        last = version.missing == (role,)
        records.append(
            AuditEntry(
                "config_version_approved",
                "done",
                user.user_id,
                user.full_name,
                origin,
                target=target,
                new_value=f"sha256:{version.sha256}",
                reason=reason,
                signature_ids=(signed.signature_id,),
                detail=f"approved as {role}; "
                + ("version takes effect" if last else "awaiting further approval"),
            )
        )
        if last:
            records += self._approval_records(
                version.version, version.sha256, user.user_id, user.full_name, origin
            )
        await self.recorder.commit(records)
        updated = await self.version(version.version)
        updated.signed_now = (signed.manifestation(),)
        if last:
            await self._apply(base, updated)
        return updated

    @staticmethod
    def _approval_records(
        number: int, sha: str, actor_id: str, actor_name: str, origin: Origin
    ) -> list[Record]:
        return [
            ConfigVersionEntry(number, "approved", actor_id, actor_name, origin, sha),
        ]

    async def _apply(self, base: ConfigVersion, version: ConfigVersion) -> None:
        """Write the approved files to the configuration directory; tell the runtime, which
        says what took effect now (``on_approved``); without one, it is the next start."""
        if self.directory is not None:
            await asyncio.to_thread(write_set, self.directory, base.files, version.files)
        if self.on_approved is not None:
            version.effect = await self.on_approved(base, version)
