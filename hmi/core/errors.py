"""Errors a person sees.

Every refusal the core makes is an ``HmiError`` whose message is written for
the person at the terminal: it says what was refused and, where it can, what
to do instead. The UI and the CLI show ``title`` and ``message`` as they are.
"""

from __future__ import annotations


class HmiError(Exception):
    """A refusal or failure explained in plain words."""

    title = "Not allowed"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(HmiError):
    """Configuration that cannot be used; the message names file, key path and reason."""

    title = "Configuration error"


class AuthenticationError(HmiError):
    """Wrong user ID or password, or an account that may not log in.

    The message never says whether the user ID exists.
    """

    title = "Not authenticated"


class PermissionDenied(HmiError):
    title = "Not permitted"


class PasswordPolicyError(HmiError):
    title = "Password not accepted"


class PasswordChangeRequired(HmiError):
    """The password is temporary or expired: it must be changed before anything else."""

    title = "Password change required"


class SessionEnded(HmiError):
    title = "Session ended"


class SignatureError(HmiError):
    title = "Signature not accepted"


class RecordError(HmiError):
    """A regulated record could not be written, so the action was not performed."""

    title = "Not recorded"


class DataDirectoryError(HmiError):
    title = "Data directory"


class QueryRefused(HmiError):
    title = "Query refused"


class BackupError(HmiError):
    """A backup could not be made, or a backup is refused for restore (the file is named)."""

    title = "Backup"


class PackageError(HmiError):
    """An inspection package could not be written, or cannot be read as one."""

    title = "Inspection package"
