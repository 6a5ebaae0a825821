"""Templates (jinja2) in `resources/templates/`: `prompts/*.j2` (what the models are asked) and
`letters/*.j2` (how a finished document is laid out). Below the agent and the letter writer, which
both render prompts. The prompt template version recorded in every ClinicalDocument is a hash of
the prompt files, so a changed prompt can never pass as the old one."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import jinja2

from clarke_desktop.errors import ClarkeError
from clarke_desktop.paths import resources_dir


class TemplateError(ClarkeError):
    """A template file is missing or malformed (names the file)."""


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


def render_template(relative: str, **variables: object) -> str:
    root = templates_dir()
    try:
        return _environment(root).get_template(relative).render(**variables)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"Template {root / (exc.name or relative)} is missing.") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"Template {root / relative} failed: {exc}") from exc


def render_prompt(name: str, **variables: object) -> str:
    """Render `prompts/<name>`. Callers pass untrusted text already neutralised."""
    return render_template(f"prompts/{name}", **variables).strip()


def prompt_template_version() -> str:
    """`prompts-v<VERSION>-<sha256 of the prompt files, 12 hex>`."""
    prompts = templates_dir() / "prompts"
    digest = hashlib.sha256()
    for path in sorted(prompts.glob("*.j2")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    version = (prompts / "VERSION").read_text().strip() if (prompts / "VERSION").exists() else "0"
    return f"prompts-v{version}-{digest.hexdigest()[:12]}"
