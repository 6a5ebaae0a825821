"""Letter and prompt templates (jinja2) and the section layout of each document type.

Everything lives in `resources/templates/`: `documents.json` (sections per type), `letters/*.j2`
(how a finished document is laid out as text) and `prompts/*.j2` (what the models are asked).
The prompt template version recorded in every ClinicalDocument is a hash of the prompt files, so
a changed prompt can never pass as the old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import jinja2

from clarke_desktop.paths import resources_dir
from clarke_desktop.schemas import ClinicalDocument, DocumentType

DOCUMENT_TYPES: tuple[DocumentType, ...] = ("clinic", "soap", "referral", "patient")


class TemplateError(Exception):
    """A template file is missing or malformed (names the file)."""


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


def templates_dir() -> Path:
    return resources_dir() / "templates"


@cache
def _environment(root: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )


def _render(relative: str, **variables: object) -> str:
    root = templates_dir()
    try:
        return _environment(root).get_template(relative).render(**variables)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"Template {root / (exc.name or relative)} is missing.") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"Template {root / relative} failed: {exc}") from exc


def render_prompt(name: str, **variables: object) -> str:
    """Render `prompts/<name>`. Callers pass untrusted text already neutralised."""
    return _render(f"prompts/{name}", **variables).strip()


def render_document(doc: ClinicalDocument) -> str:
    """The finished document as text, laid out by `letters/<doc_type>.j2`."""
    return _render(f"letters/{doc.doc_type}.j2", doc=doc).strip() + "\n"


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
        return DocumentSpec(doc_type=doc_type, label=raw["label"], voice=raw["voice"], sections=sections)  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        raise TemplateError(f"{path} is missing.") from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise TemplateError(f"{path} is malformed for {doc_type!r}: {exc}") from exc


def prompt_template_version() -> str:
    """`prompts-v<VERSION>-<sha256 of the prompt files, 12 hex>`."""
    prompts = templates_dir() / "prompts"
    digest = hashlib.sha256()
    for path in sorted(prompts.glob("*.j2")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    version = (prompts / "VERSION").read_text().strip() if (prompts / "VERSION").exists() else "0"
    return f"prompts-v{version}-{digest.hexdigest()[:12]}"
