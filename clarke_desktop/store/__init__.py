"""The application database (consultations, drafts, sign-offs) and its hash-chained audit log."""

from clarke_desktop.store.app import (
    AppStore,
    AudioRecord,
    ConsentRequired,
    ConsultationRecord,
    DraftInputs,
    ExportRecord,
    LetterVersion,
    NotFound,
    SignedOffError,
    SignOffRecord,
    UnresolvedDiscrepancies,
    context_resource_versions,
    document_sha256,
)
from clarke_desktop.store.audit import AuditEntry, AuditEvent, AuditProblem, VerifyReport
from clarke_desktop.store.db import Database, StoreError

__all__ = [
    "AppStore",
    "AudioRecord",
    "AuditEntry",
    "AuditEvent",
    "AuditProblem",
    "ConsentRequired",
    "ConsultationRecord",
    "Database",
    "ExportRecord",
    "DraftInputs",
    "LetterVersion",
    "NotFound",
    "SignOffRecord",
    "SignedOffError",
    "StoreError",
    "UnresolvedDiscrepancies",
    "VerifyReport",
    "context_resource_versions",
    "document_sha256",
]
