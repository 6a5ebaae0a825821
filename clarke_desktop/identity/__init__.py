"""Who is using Clarke: local accounts (argon2id passwords, lockout, roles) and the keys that keep
patient data unreadable without one of them."""

from clarke_desktop.identity.accounts import (
    ROLES,
    Account,
    AccountBook,
    NotAllowed,
    Role,
    Setup,
    SignInError,
    Unlocked,
)
from clarke_desktop.identity.keys import WrongKey, subkey

__all__ = [
    "ROLES", "Account", "AccountBook", "NotAllowed", "Role", "Setup", "SignInError", "Unlocked", "WrongKey",
    "subkey",
]  # fmt: skip
