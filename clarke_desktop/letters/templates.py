"""The section layout of each document type (`resources/templates/documents.json`) and the
finished document laid out as text (`letters/*.j2`, rendered by `clarke_desktop.templates`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from clarke_desktop.schemas import DOCUMENT_TYPES, ClinicalDocument, DocumentType
from clarke_desktop.templates import TemplateError, render_template, templates_dir


@dataclass(frozen=True)
class SectionSpec:
    key: str
    heading: str
    kind: Literal["facts", "narrative"]
    guidance: str = ""
    renderer: str | None = None


@dataclass(frozen=True)
class DocumentSpec:
    doc_type: DocumentType
    label: str
    voice: str
    sections: tuple[SectionSpec, ...]

    def section(self, key: str) -> SectionSpec:
        for spec in self.sections:
            if spec.key == key:
                return spec
        raise KeyError(f"A {self.doc_type} document has no section {key!r}.")


def render_document(doc: ClinicalDocument) -> str:
    """The finished document as text, laid out by `letters/<doc_type>.j2`."""
    return render_template(f"letters/{doc.doc_type}.j2", doc=doc).strip() + "\n"


def document_spec(doc_type: str) -> DocumentSpec:
    if doc_type not in DOCUMENT_TYPES:
        raise TemplateError(f"Unknown document type {doc_type!r}; choose one of {', '.join(DOCUMENT_TYPES)}.")
    path = templates_dir() / "documents.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))[doc_type]
        sections = tuple(
            SectionSpec(
                key=s["key"],
                heading=s["heading"],
                kind=s["kind"],
                guidance=s.get("guidance", ""),
                renderer=s.get("renderer"),
            )
            for s in raw["sections"]
        )
        return DocumentSpec(doc_type=doc_type, label=raw["label"], voice=raw["voice"], sections=sections)
    except FileNotFoundError as exc:
        raise TemplateError(f"{path} is missing.") from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise TemplateError(f"{path} is malformed for {doc_type!r}: {exc}") from exc
