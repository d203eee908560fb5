"""Password and account rules (11.300(b), 11.100(a)): pure functions of the policy."""

from __future__ import annotations

import re
import secrets
import string

from hmi.core.config import ROLES, SecurityPolicy
from hmi.core.errors import HmiError, PasswordPolicyError

_USER_ID = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")


def check_password_rules(policy: SecurityPolicy, user_id: str, password: str) -> None:
    rules = policy.password
    problems = []
    if len(password) < rules.min_length:
        problems.append(f"at least {rules.min_length} characters")
    if rules.require_letter and not any(c.isalpha() for c in password):
        problems.append("at least one letter")
    if rules.require_digit and not any(c.isdigit() for c in password):
        problems.append("at least one digit")
    if problems:
        raise PasswordPolicyError("The password needs " + ", ".join(problems) + ".")
    if user_id.lower() in password.lower():
        raise PasswordPolicyError("The password may not contain the user ID.")


def check_roles(roles: tuple[str, ...]) -> None:
    if not roles:
        raise HmiError("At least one role is required.")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise HmiError(f"Unknown role(s): {', '.join(unknown)}. Roles are {', '.join(ROLES)}.")


def check_new_user(user_id: str, full_name: str, roles: tuple[str, ...]) -> None:
    if not _USER_ID.match(user_id):
        raise HmiError(
            "A user ID is 2-32 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter."
        )
    if not full_name.strip():
        raise HmiError("A full name is required: it is printed with every signature.")
    check_roles(roles)


def temporary_password(policy: SecurityPolicy, user_id: str = "") -> str:
    """A random password that meets the policy, for an administrator to hand over once.

    It never contains the user ID (a short ID such as ``qa`` turns up in random
    text often enough), so it passes the same rules as a chosen password.
    """
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(
            secrets.choice(alphabet) for _ in range(policy.password.temporary_length)
        )
        if user_id and user_id.lower() in candidate.lower():
            continue
        if any(c.isalpha() for c in candidate) and any(c.isdigit() for c in candidate):
            return candidate
