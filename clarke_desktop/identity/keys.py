"""The keys that protect patient data at rest, and how each account reaches them.

One random 256-bit **data key** protects everything (each use gets its own subkey through HKDF:
the app database, the FHIR database, files). Nobody types it. It is kept only *wrapped*:
- for each account, sealed to the account's X25519 public key; the account's private key is itself
  sealed with a key derived from its password by argon2id. So an admin can grant (or re-grant after
  a rotation) the data key to any account without knowing its password, and a password unlocks only
  its own account's copy;
- once for the IT **recovery key** (256 random bits shown once at setup), so a forgotten password
  never loses data.
AES-256-GCM throughout; the associated data binds each sealed blob to what it is for, so a blob
copied into another account's row does not open there.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clarke_desktop.errors import ClarkeError

KEY_BYTES = 32
NONCE_BYTES = 12


class WrongKey(ClarkeError):
    """A sealed key did not open: wrong password or recovery key, or the blob was altered."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """argon2id cost, kept with each account so it can be raised later without locking anyone out.
    The default follows RFC 9106's second recommendation (64 MiB, 3 passes)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 2

    def as_text(self) -> str:
        return f"argon2id:t={self.time_cost},m={self.memory_kib},p={self.parallelism}"

    @classmethod
    def from_text(cls, text: str) -> KdfParams:
        kind, _, rest = text.partition(":")
        if kind != "argon2id":
            raise WrongKey(f"unknown key derivation {kind!r}")
        values = dict(part.split("=") for part in rest.split(","))
        return cls(int(values["t"]), int(values["m"]), int(values["p"]))


def password_key(password: str, salt: bytes, params: KdfParams) -> bytes:
    """A 256-bit key from a password (argon2id, memory-hard: slow to guess offline)."""
    return hash_secret_raw(
        password.encode("utf-8"), salt, time_cost=params.time_cost, memory_cost=params.memory_kib,
        parallelism=params.parallelism, hash_len=KEY_BYTES, type=Type.ID,
    )  # fmt: skip


def subkey(data_key: bytes, purpose: str) -> bytes:
    """An independent key for one use of the data key ("app-db", "fhir-db", "files")."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(
        data_key
    )


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as e:
        raise WrongKey("the key does not open this (wrong password or key, or the data was changed)") from e


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


# --- account key pairs ---------------------------------------------------------------------------


def new_keypair() -> tuple[bytes, bytes]:
    """(private, public) raw X25519 keys."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw_private, public_of(raw_private)


def public_of(raw_private: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(raw_private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def seal_to(public: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Seal for the holder of `public`'s private key (an ephemeral X25519 exchange, then AES-GCM)."""
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    eph_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = HKDF(hashes.SHA256(), KEY_BYTES, salt=eph_public + public, info=b"clarke seal").derive(shared)
    return eph_public + seal(key, plaintext, aad)


def open_sealed(private: bytes, blob: bytes, aad: bytes) -> bytes:
    eph_public, rest = blob[:32], blob[32:]
    own = X25519PrivateKey.from_private_bytes(private)
    shared = own.exchange(X25519PublicKey.from_public_bytes(eph_public))
    key = HKDF(hashes.SHA256(), KEY_BYTES, salt=eph_public + public_of(private), info=b"clarke seal").derive(
        shared
    )
    return unseal(key, rest, aad)


# --- recovery key ---------------------------------------------------------------------------------


def new_recovery_key() -> str:
    """256 random bits in groups IT can copy and type: 'ABCD-EFGH-…' (base32, 13 groups of 4)."""
    text = base64.b32encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def recovery_key_bytes(text: str) -> bytes:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError as e:
        raise WrongKey("That is not a recovery key (expected groups of letters and digits).") from e
    if len(raw) != KEY_BYTES:
        raise WrongKey("That is not a recovery key (wrong length).")
    return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=b"clarke recovery").derive(raw)
