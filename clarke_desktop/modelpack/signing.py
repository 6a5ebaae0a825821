"""Signed model-pack manifests: IT's ed25519 keys, the keys this machine trusts, and IT's policy.

What is signed, and why this way:
- Each role's `manifest.json` (the list of its files with size and sha256, plus the model's name,
  precision and licence) is signed as the exact bytes written at pack time; the signature is
  detached, in `manifest.sig` beside it. A signature over the bytes as stored needs no canonical
  JSON: the verifier checks the very bytes it then parses, so no two JSON serialisers (or pydantic
  versions) can disagree about what was signed. `models install` copies both files verbatim into
  the installed role folder; install-time facts go to a separate, unsigned `install.json`.
- Per role rather than per pack: the app verifies and loads one role at a time, and a machine may
  hold roles from different packs.
- The signed message is `SIGNING_CONTEXT + manifest bytes`: a signature made with the same key
  over anything else can never pass for a manifest signature.
- `manifest.sig` is a small JSON document naming the key by fingerprint (SHA256:..., as
  `ssh-keygen -lf` prints it) and carrying the base64 signature. The fingerprint only picks the key
  and names it in messages; the signature alone decides.

Keys: the private key is PEM (PKCS#8) in a file only its owner can read, kept on IT's packing
machine; the public key is one line in OpenSSH format (`ssh-ed25519 AAAA... comment`), easy to
paste into a deployment script.

Trust and policy live in IT's machine configuration folder (`paths.machine_config_dir()`:
/etc/ClarkeDesktop on Linux, %ProgramData%\\Clarke\\ClarkeDesktop on Windows), never in a place or
an environment variable a user controls:
- `trusted_keys/*.pub`: the public keys whose signatures are accepted (one or more lines each);
- `model-policy.json`: `{"allow_unsigned_packs": false, "allow_user_packs": false}`; a missing
  file means both false. An unreadable or invalid policy also means both false (fail closed).
On POSIX a key or policy file (or the trusted_keys folder) that others may write, or that belongs
to another ordinary user, is ignored and reported. On Windows the installer restricts the folder's
ACL to administrators and SYSTEM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clarke_desktop import paths
from clarke_desktop.files import atomic_write
from clarke_desktop.modelpack.errors import ModelPackError

log = logging.getLogger(__name__)

SIGNATURE_FORMAT = "clarke-desktop-manifest-signature"
SIGNING_CONTEXT = b"clarke-desktop model-pack manifest v1\n"
TRUSTED_KEYS_DIR = "trusted_keys"
POLICY_FILE = "model-policy.json"
PUBLIC_SUFFIX = ".pub"


# -- keys ----------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_line(key: Ed25519PublicKey, comment: str = "") -> str:
    """The public key as one OpenSSH line: `ssh-ed25519 AAAA... comment`."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    comment = " ".join(comment.split())
    return f"{line} {comment}" if comment else line


def fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:<base64>` of the key's OpenSSH wire form, as `ssh-keygen -lf KEY.pub` prints it."""
    blob = base64.b64decode(public_key_line(key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_public_key(text: str, source: str = "public key") -> Ed25519PublicKey:
    """The ed25519 key on the first non-blank, non-comment line of `text` (OpenSSH format)."""
    keys = parse_public_keys(text, source)
    if not keys:
        raise ModelPackError(f"{source}: no public key found (expected a line `ssh-ed25519 AAAA...`)")
    return keys[0]


def parse_public_keys(text: str, source: str = "public key") -> list[Ed25519PublicKey]:
    keys: list[Ed25519PublicKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = serialization.load_ssh_public_key(line.encode("ascii"))
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
            raise ModelPackError(f"{source}, line {number}: not an OpenSSH public key ({exc})") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ModelPackError(f"{source}, line {number}: not an ed25519 key (use `models keygen`)")
        keys.append(key)
    return keys


def _restrict_windows_file(path: Path) -> None:  # pragma: no cover - Windows only
    user, domain = os.environ.get("USERNAME", ""), os.environ.get("USERDOMAIN", "")
    if not user:
        return
    who = f"{domain}\\{user}" if domain else user
    done = subprocess.run(
        ["icacls", str(path), "/inheritance:r", "/grant:r", f"{who}:F"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        log.warning("could not restrict %s to %s: %s", path, who, done.stderr.strip())


def write_new_keypair(out: Path, comment: str = "") -> tuple[Path, str]:
    """Create a signing key: the private key in `out` (PEM, readable by its owner only) and the
    public key line in `out`.pub. Refuses to overwrite either file. Returns (public path, line)."""
    out = Path(out)
    pub_path = out.with_name(out.name + PUBLIC_SUFFIX)
    for existing in (out, pub_path):
        if existing.exists() or existing.is_symlink():
            raise ModelPackError(f"{existing} already exists: a signing key is never overwritten")
    key = generate_private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(out, flags, 0o600)
    except FileExistsError as exc:
        raise ModelPackError(f"{out} already exists: a signing key is never overwritten") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        if os.name == "posix":
            os.chmod(out, 0o600)  # whatever the umask
        else:  # pragma: no cover - Windows only
            _restrict_windows_file(out)
        line = public_key_line(key.public_key(), comment)
        fd = os.open(pub_path, flags, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(line + "\n")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return pub_path, line


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The ed25519 private key in `path` (PEM PKCS#8, as `models keygen` writes, or OpenSSH)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelPackError(f"cannot read the signing key {path}: {exc}") from exc
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ModelPackError(
            f"{path} is not a usable private key ({exc}); create one with `clarke-desktop models keygen`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelPackError(f"{path} is not an ed25519 key; create one with `clarke-desktop models keygen`")
    return key


# -- signatures ----------------------------------------------------------------------------------


def sign_manifest(key: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    """The contents of `manifest.sig` for these exact manifest bytes."""
    document = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "ed25519",
        "key": fingerprint(key.public_key()),
        "signature": base64.b64encode(key.sign(SIGNING_CONTEXT + manifest_bytes)).decode(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _parse_signature(data: bytes, where: Path) -> tuple[str, bytes]:
    """(key fingerprint, raw 64-byte signature) from a `manifest.sig`."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelPackError(f"{where} is not a valid signature file: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT:
        raise ModelPackError(f"{where} is not a Clarke Desktop manifest signature")
    if document.get("algorithm") != "ed25519":
        raise ModelPackError(f"{where}: unsupported signature algorithm {document.get('algorithm')!r}")
    key, signature = document.get("key"), document.get("signature")
    if not isinstance(key, str) or not isinstance(signature, str):
        raise ModelPackError(f"{where}: the key or the signature is missing")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelPackError(f"{where}: the signature is not valid base64") from exc
    if len(raw) != 64:
        raise ModelPackError(f"{where}: an ed25519 signature has 64 bytes, this one {len(raw)}")
    return key, raw


# -- trust and policy (IT's machine configuration) ------------------------------------------------


def trusted_keys_dir() -> Path:
    return paths.machine_config_dir() / TRUSTED_KEYS_DIR


def policy_path() -> Path:
    return paths.machine_config_dir() / POLICY_FILE


def _unsafe(path: Path) -> str | None:
    """Why a file or folder of IT's configuration cannot be trusted here (POSIX), or None."""
    if os.name != "posix":
        return None
    st = os.stat(path)
    if st.st_mode & 0o022:
        return f"{path} can be written by other accounts (mode {st.st_mode & 0o777:o}); ignored"
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to another ordinary account (uid {st.st_uid}), not root; ignored"
    return None


@dataclass(frozen=True)
class TrustedKeys:
    directory: Path
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)  # by fingerprint
    problems: tuple[str, ...] = ()


def load_trusted_keys() -> TrustedKeys:
    """The public keys IT placed in `trusted_keys/` (read afresh on every call: a key IT removes is
    no longer trusted by a running app's next load)."""
    directory = trusted_keys_dir()
    keys: dict[str, Ed25519PublicKey] = {}
    problems: list[str] = []
    if not directory.is_dir():
        return TrustedKeys(directory)
    try:
        unsafe_dir = _unsafe(directory)
        if unsafe_dir:
            return TrustedKeys(directory, problems=(unsafe_dir,))
        files = sorted(p for p in directory.iterdir() if p.name.endswith(PUBLIC_SUFFIX) and p.is_file())
    except OSError as exc:
        return TrustedKeys(directory, problems=(f"cannot read {directory}: {exc}",))
    for path in files:
        try:
            unsafe = _unsafe(path)
            if unsafe:
                problems.append(unsafe)
                continue
            for key in parse_public_keys(path.read_text(encoding="utf-8"), str(path)):
                keys[fingerprint(key)] = key
        except (OSError, UnicodeDecodeError, ModelPackError) as exc:
            problems.append(f"{path}: {exc}")
    for problem in problems:
        log.warning("trusted model-pack key ignored: %s", problem)
    return TrustedKeys(directory, keys, tuple(problems))


def trust_public_key(text: str, directory: Path | None = None) -> tuple[Path, str]:
    """Add a public key to IT's trusted keys (an administrator's action). Returns (file, fingerprint)."""
    key = parse_public_key(text)
    fp = fingerprint(key)
    directory = Path(directory) if directory else trusted_keys_dir()
    name = re.sub(r"[^A-Za-z0-9_-]", "_", fp.removeprefix("SHA256:"))[:43] + PUBLIC_SUFFIX
    first = next(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
    parts = first.split(None, 2)
    line = public_key_line(key, parts[2] if len(parts) > 2 else "")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            os.chmod(directory, 0o755)
        target = directory / name
        atomic_write(target, line + "\n", mode=0o644)
    except OSError as exc:
        raise ModelPackError(
            f"cannot write to {directory}: {exc}; trusting a key is for an administrator (sudo, or an "
            "elevated prompt on Windows)"
        ) from exc
    return target, fp


@dataclass(frozen=True)
class Policy:
    """IT's model-pack policy. The defaults are the safe ones."""

    source: Path
    allow_unsigned_packs: bool = False
    allow_user_packs: bool = False
    problems: tuple[str, ...] = ()


_POLICY_KEYS = ("allow_unsigned_packs", "allow_user_packs")


def load_policy() -> Policy:
    """IT's policy from `model-policy.json`; missing means the defaults, a bad file the defaults too."""
    path = policy_path()
    if not path.is_file():
        return Policy(path)
    try:
        unsafe = _unsafe(path)
        if unsafe:
            raise ModelPackError(unsafe)
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ModelPackError(f"{path} must hold a JSON object")
        unknown = sorted(set(data) - set(_POLICY_KEYS))
        if unknown:
            raise ModelPackError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        values = {k: data.get(k, False) for k in _POLICY_KEYS}
        for k, v in values.items():
            if not isinstance(v, bool):
                raise ModelPackError(f"{path}: {k} must be true or false")
    except (OSError, ValueError, ModelPackError) as exc:
        problem = f"model-pack policy ignored, the safe defaults apply: {exc}"
        log.warning("%s", problem)
        return Policy(path, problems=(problem,))
    return Policy(path, values["allow_unsigned_packs"], values["allow_user_packs"])


# -- checking a manifest -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    detail: str
    key: str | None = None  # fingerprint of the key that signed, when it verified

    @property
    def signed(self) -> bool:
        return self.key is not None


def check_signature(
    manifest_path: Path,
    manifest_bytes: bytes,
    signature_path: Path,
    trusted: TrustedKeys | None = None,
    policy: Policy | None = None,
) -> SignatureCheck:
    """Whether `manifest_bytes` (read from `manifest_path`) may be used, by its signature and IT's policy.

    An unsigned manifest passes only where IT's policy allows unsigned packs; a signature that does
    not verify, or one made by a key this machine does not trust, never passes.
    """
    trusted = trusted if trusted is not None else load_trusted_keys()
    policy = policy if policy is not None else load_policy()
    try:
        signature_data: bytes | None = signature_path.read_bytes()
    except FileNotFoundError:
        signature_data = None
    except OSError as exc:
        return SignatureCheck(False, f"cannot read {signature_path}: {exc}")
    if signature_data is None:
        if policy.allow_unsigned_packs:
            return SignatureCheck(True, f"unsigned, allowed by IT policy ({policy.source})")
        where = (
            f"{len(trusted.keys)} trusted key(s) in {trusted.directory}"
            if trusted.keys
            else f"no trusted keys are configured in {trusted.directory}"
        )
        return SignatureCheck(
            False,
            f"{manifest_path} is not signed ({signature_path.name} is missing; {where}): IT signs packs "
            "with `clarke-desktop models pack --sign-key KEYFILE`; unsigned packs are refused unless "
            f"IT allows them in {policy.source}",
        )
    try:
        key_id, raw = _parse_signature(signature_data, signature_path)
    except ModelPackError as exc:
        return SignatureCheck(False, f"{exc}; the pack cannot be trusted, reinstall it")
    key = trusted.keys.get(key_id)
    if key is None:
        ignored = f"; ignored: {'; '.join(trusted.problems)}" if trusted.problems else ""
        return SignatureCheck(
            False,
            f"{manifest_path} is signed by key {key_id}, which this machine does not trust "
            f"({len(trusted.keys)} trusted key(s) in {trusted.directory}{ignored}); IT adds its key "
            "with `clarke-desktop models trust KEYFILE.pub`",
        )
    try:
        key.verify(raw, SIGNING_CONTEXT + manifest_bytes)
    except InvalidSignature:
        return SignatureCheck(
            False,
            f"{manifest_path} does not match its signature (key {key_id}): it was changed after it was "
            "signed; reinstall the model pack",
        )
    return SignatureCheck(True, f"signed by trusted key {key_id}", key_id)
