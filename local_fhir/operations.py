"""The `$validate` operation (R4 resource-operation-validate).

Input: a resource, or a Parameters resource with `resource` (the resource), `mode` (create, update,
delete) and `profile`. Output: an OperationOutcome listing every problem (`error` issues; a body
that is not a JSON object is `fatal`), or one `information` issue when there is none. The checks
are the ones every write makes (`validation.problems`), so a resource `$validate` passes is one the
store takes. Only the base R4 definitions are checked: a `profile` other than the type's own base
StructureDefinition is refused as not supported, and profiles the resource claims in
`meta.profile` are reported as not checked (a warning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local_fhir.errors import InvalidResource, NotFound, NotSupported, issue, operation_outcome
from local_fhir.validation import problems

if TYPE_CHECKING:
    from local_fhir.store import Store

MODES = ("create", "update", "delete")
BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"


def unwrap_parameters(body: Any) -> tuple[Any, str | None, str | None]:
    """(resource, mode, profile) from a `$validate` body: a Parameters resource whose parameters
    are the operation's (`resource`, `mode`, `profile`), or the resource itself."""
    if not (isinstance(body, dict) and body.get("resourceType") == "Parameters"):
        return body, None, None
    params = body.get("parameter")
    if not isinstance(params, list):
        return body, None, None
    names = {p.get("name") for p in params if isinstance(p, dict)}
    if not names or not names <= {"resource", "mode", "profile"}:
        return body, None, None  # a Parameters resource to validate as such
    resource, mode, profile = None, None, None
    for param in params:
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "resource":
            resource = param.get("resource")
        elif name == "mode":
            mode = param.get("valueCode") or param.get("valueString")
        elif name == "profile":
            profile = param.get("valueUri") or param.get("valueCanonical") or param.get("valueString")
    return resource, mode, profile


def validate_operation(store: Store, resource: Any, *, mode: str | None = None, rid: str | None = None,
                       profile: str | None = None, rtype: str | None = None) -> dict[str, Any]:  # fmt: skip
    """An OperationOutcome for `$validate` (see the module docstring). `rtype` and `rid` are the
    type and id of a type- or instance-level call."""
    if mode is not None and mode not in MODES:
        raise InvalidResource(f"$validate mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "delete":
        if rtype is None or rid is None:
            raise InvalidResource("$validate with mode=delete needs an instance: POST [type]/[id]/$validate")
        try:
            store.read(rtype, rid)
        except NotFound as exc:
            return operation_outcome([issue(str(exc), "not-found")])
        return operation_outcome([_ok(f"{rtype}/{rid} can be deleted")])
    if not isinstance(resource, dict):
        return operation_outcome([issue("the content to validate is not a JSON object (a FHIR resource)",
                                        "structure", severity="fatal")])  # fmt: skip
    kind = resource.get("resourceType")
    if rtype is not None and kind != rtype:
        raise InvalidResource(f"$validate on {rtype} was given a {kind!r}")
    if profile and profile.split("|", 1)[0] != f"{BASE_PROFILE}{kind}":
        raise NotSupported(
            f"$validate against the profile {profile!r} is not supported: only the base R4 definitions are checked"
        )
    found = problems(resource)
    if mode == "update" and not resource.get("id"):
        found.append(issue("an update needs the resource's id", "required", f"{kind}.id"))
    if rid is not None and resource.get("id") not in (None, rid):
        found.append(issue(f"the resource's id {resource.get('id')!r} differs from the url's {rid!r}", "invalid",
                           f"{kind}.id"))  # fmt: skip
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    for url in claimed if isinstance(claimed, list) else []:
        if isinstance(url, str) and url.split("|", 1)[0] != f"{BASE_PROFILE}{kind}":
            found.append(issue(f"profile {url} was not checked: only the base R4 definitions are", "not-supported",
                               f"{kind}.meta.profile", severity="warning"))  # fmt: skip
    if not any(i["severity"] in ("error", "fatal") for i in found):
        found.insert(0, _ok(f"{kind} is valid R4 (base definitions)"))
    return operation_outcome(found)


def _ok(message: str) -> dict[str, Any]:
    return issue(message, "informational", severity="information")
