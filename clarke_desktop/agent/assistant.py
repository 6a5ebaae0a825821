"""Chart assistant: a clinician's question answered from one patient's record by an agent loop.

Each round the model returns one schema-constrained action (search, read, propose_write,
finish). Reads and searches run at once, scoped to the patient in code (the model cannot reach
another patient's record). Writes are only *proposals*: only the elements `proposal_policy`
whitelists for the type are accepted (anything else is refused, naming the element, and the
proposal is never offered for approval); an accepted one is validated as FHIR R4, shown in full
(`Proposal.lines`) and sealed with the sha256 of its canonical JSON (`Proposal.digest`). It changes
the store only when the clinician approves it (`apply_proposal`), which writes exactly the approved
resource or nothing. Every round lands in a trace the GUI shows. The loop always ends, in at
most `max_rounds` rounds, with a stated reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, model_validator

from clarke_desktop.agent import fhir_text as ft
from clarke_desktop.agent import proposal_policy as policy
from clarke_desktop.agent.proposal_policy import Refusal
from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.errors import ClarkeError
from clarke_desktop.fhir.client import FhirClient, FhirError
from clarke_desktop.llm.base import InvalidModelOutput, LlmEngine, LlmError, Turn
from clarke_desktop.llm.prompt import neutralise
from clarke_desktop.schemas import ModelInfo, SourceRef, utc_now_iso
from clarke_desktop.templates import prompt_template_version, render_prompt

MAX_ROUNDS = 8
ACTION_MAX_TOKENS = 320
MAX_SEARCH_LINES = 20
ResourceType = Literal[
    "Patient",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Observation",
    "DiagnosticReport",
    "Encounter",
    "DocumentReference",
    "Procedure",
    "Immunization",
    "ServiceRequest",
    "Practitioner",
    "Organization",
    "Medication",
]
READ_ONLY_SHARED = ("Practitioner", "Organization", "Medication")  # not patient data: readable by id
# Searched, scoped to the patient: every type but the Patient itself and the shared ones.
SEARCH_TYPES = tuple(t for t in get_args(ResourceType) if t != "Patient" and t not in READ_ONLY_SHARED)
WRITE_TYPES = ("MedicationRequest", "Observation", "AllergyIntolerance", "ServiceRequest")


class AgentAction(BaseModel):
    """One step chosen by the model (flat, so the grammar stays small and fast)."""

    action: Literal["search", "read", "propose_write", "finish"]
    resource_type: ResourceType | None = None
    params: dict[str, str] | None = None
    id: str | None = None
    resource: dict[str, Any] | None = None
    reason: str | None = None
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_for_action(self) -> AgentAction:
        if self.action in {"search", "read", "propose_write"} and not self.resource_type:
            raise ValueError(f"{self.action} needs resource_type")
        if self.action == "read" and not self.id:
            raise ValueError("read needs id")
        if self.action == "propose_write" and not self.resource:
            raise ValueError("propose_write needs resource")
        if self.action == "finish" and not (self.answer or "").strip():
            raise ValueError("finish needs answer")
        return self


class TraceStep(BaseModel):
    round: int
    kind: Literal["search", "read", "propose_write", "finish", "error", "stopped"]
    summary: str  # one line for the clinician
    action: dict[str, Any] | None = None  # what the model asked for
    result: str | None = None  # what it was given back
    references: list[str] = Field(default_factory=list)
    duration_s: float = 0.0


class Proposal(BaseModel):
    id: str
    patient_id: str
    resource_type: str
    resource: dict[str, Any]
    reason: str = ""
    summary: str
    # "refused": it has elements the assistant may not write (`refusals`); never offered for approval.
    status: Literal["pending", "applied", "rejected", "refused"] = "pending"
    refusals: list[Refusal] = Field(default_factory=list)
    lines: list[str] = Field(default_factory=list)  # the complete resource, one element a line
    digest: str = ""  # sha256 of the resource's canonical JSON: what is shown is what is written
    model: ModelInfo | None = None  # the model that proposed it
    prompt_version: str | None = None  # the prompt templates it was asked with
    decided_by: str | None = None
    decided_at: str | None = None
    created: SourceRef | None = None
    written_digest: str | None = None  # sha256 of the stored resource without id and meta


StopReason = Literal["finished", "max_rounds", "invalid_output", "model_error", "cancelled", "context_full"]


class AssistantResult(BaseModel):
    patient_id: str
    question: str
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)
    unverified_citations: list[str] = Field(default_factory=list)  # cited but never retrieved
    proposals: list[Proposal] = Field(default_factory=list)
    trace: list[TraceStep] = Field(default_factory=list)
    stopped_reason: StopReason
    message: str = ""
    rounds: int = 0
    model: ModelInfo | None = None
    prompt_version: str | None = None


class ProposalError(ClarkeError):
    """A proposal cannot be applied (names why)."""


def _one_line(resource: dict[str, Any]) -> str:
    """A compact description of a resource for the model and the trace."""
    rtype = resource.get("resourceType", "")
    version = (resource.get("meta") or {}).get("versionId")
    head = f"{rtype}/{resource.get('id')}" + (f" (version {version})" if version else "")
    parts: list[str] = []
    for key in ("code", "medicationCodeableConcept", "type", "vaccineCode"):
        value = resource.get(key)
        concept = (value[0] if value else None) if isinstance(value, list) else value
        text = ft.concept_text(concept)
        if text:
            parts.append(text)
            break
    if resource.get("valueQuantity") or resource.get("component") or resource.get("valueString"):
        from clarke_desktop.agent.context import observation_value

        value, unit = observation_value(resource)
        if value:
            parts.append(f"{value} {unit or ''}".strip())
    dosage = (resource.get("dosageInstruction") or [{}])[0]
    if dosage.get("text"):
        parts.append(str(dosage["text"]))
    for key in ("status",):
        if resource.get(key):
            parts.append(f"status {resource[key]}")
    clinical = ft.status_code(resource.get("clinicalStatus"))
    if clinical:
        parts.append(f"clinical status {clinical}")
    when = ft.effective_date(resource)
    if when:
        parts.append(when[:10])
    if resource.get("conclusion"):
        parts.append(f"conclusion: {resource['conclusion']}")
    return head + ": " + "; ".join(parts) if parts else head


def _for_model(resource: dict[str, Any]) -> str:
    """A resource as compact JSON, without the XHTML narrative (the structured data says it all)."""
    slim = {k: v for k, v in resource.items() if k != "text"}
    return json.dumps(slim, ensure_ascii=False, separators=(",", ":"))


class ChartAssistant:
    def __init__(
        self,
        fhir: FhirClient,
        engine: LlmEngine,
        patient_id: str,
        *,
        max_rounds: int = MAX_ROUNDS,
        action_max_tokens: int = ACTION_MAX_TOKENS,
    ) -> None:
        if not 1 <= max_rounds <= MAX_ROUNDS:
            raise ValueError(f"max_rounds must be between 1 and {MAX_ROUNDS}")
        self.fhir = fhir
        self.engine = engine
        self.patient_id = patient_id
        self.max_rounds = max_rounds
        self.action_max_tokens = action_max_tokens
        self.proposals: dict[str, Proposal] = {}
        self.prompt_version = prompt_template_version()

    # -- the loop ------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        on_step: Callable[[TraceStep], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> AssistantResult:
        result = AssistantResult(
            patient_id=self.patient_id,
            question=question,
            stopped_reason="max_rounds",
            model=self.engine.info,
            prompt_version=self.prompt_version,
        )
        seen: set[str] = {f"Patient/{self.patient_id}"}
        turns = [
            Turn(
                "user",
                render_prompt(
                    "assistant.j2",
                    patient_id=self.patient_id,
                    question=neutralise(question),
                    search_types=", ".join(SEARCH_TYPES),
                    write_types="|".join(WRITE_TYPES),
                    max_rounds=self.max_rounds,
                ),
            )
        ]
        invalid_in_a_row = 0

        def record(step: TraceStep) -> None:
            result.trace.append(step)
            if on_step:
                on_step(step)

        for round_number in range(1, self.max_rounds + 1):
            result.rounds = round_number
            started = time.perf_counter()
            if self._prompt_size(turns) + self.action_max_tokens > self.engine.context_length:
                return self._stop(result, record, round_number, "context_full",
                                  "The conversation with the record no longer fits the model's context.")  # fmt: skip
            try:
                if cancel:
                    cancel.raise_if_cancelled()
                action = self.engine.generate_json(
                    turns, AgentAction, max_tokens=self.action_max_tokens, retries=1, cancel=cancel
                )
            except Cancelled:
                return self._stop(result, record, round_number, "cancelled", "Cancelled by the clinician.")
            except InvalidModelOutput as exc:
                invalid_in_a_row += 1
                record(TraceStep(round=round_number, kind="error", summary=f"The model's action was invalid: {exc}",
                                 duration_s=round(time.perf_counter() - started, 4)))  # fmt: skip
                if invalid_in_a_row >= 2:
                    return self._stop(result, record, round_number, "invalid_output",
                                      "The model did not produce valid actions; no answer was found.")  # fmt: skip
                continue
            except LlmError as exc:
                return self._stop(result, record, round_number, "model_error", f"The model failed: {exc}")
            invalid_in_a_row = 0
            step, observation = self._run(action, round_number, seen, result)
            step.duration_s = round(time.perf_counter() - started, 4)
            record(step)
            if action.action == "finish":
                result.stopped_reason = "finished"
                result.message = "Answered."
                return result
            turns += [
                Turn("model", action.model_dump_json(exclude_none=True)),
                Turn("user", f"<result>\n{neutralise(observation)}\n</result>"),
            ]
        result.message = f"No answer after {self.max_rounds} rounds."
        record(TraceStep(round=result.rounds, kind="stopped", summary=result.message))
        return result

    def _prompt_size(self, turns: list[Turn]) -> int:
        counter = getattr(self.engine, "prompt_tokens", None)
        if callable(counter):
            return len(counter(turns))
        return sum(self.engine.count_tokens(t.text) + 4 for t in turns)

    @staticmethod
    def _stop(
        result: AssistantResult,
        record: Callable[[TraceStep], None],
        round_number: int,
        reason: StopReason,
        message: str,
    ) -> AssistantResult:
        result.stopped_reason = reason
        result.message = message
        record(TraceStep(round=round_number, kind="stopped", summary=message))
        return result

    def _run(
        self, action: AgentAction, round_number: int, seen: set[str], result: AssistantResult
    ) -> tuple[TraceStep, str]:
        dumped = action.model_dump(exclude_none=True)
        if action.action == "search":
            return self._search(action, round_number, seen, dumped)
        if action.action == "read":
            return self._read(action, round_number, seen, dumped)
        if action.action == "propose_write":
            return self._propose(action, round_number, dumped, result)
        citations = list(dict.fromkeys(c.strip() for c in action.citations if c.strip()))
        result.answer = (action.answer or "").strip()
        result.citations = [c for c in citations if c in seen]
        result.unverified_citations = [c for c in citations if c not in seen]
        summary = "Answered" + (
            f", citing {', '.join(result.citations)}" if result.citations else " without citations"
        )
        if result.unverified_citations:
            summary += f"; cited but never retrieved: {', '.join(result.unverified_citations)}"
        step = TraceStep(round=round_number, kind="finish", summary=summary, action=dumped,
                         references=result.citations)  # fmt: skip
        return step, ""

    def _search(
        self, action: AgentAction, round_number: int, seen: set[str], dumped: dict[str, Any]
    ) -> tuple[TraceStep, str]:
        rtype = action.resource_type or ""
        if rtype not in SEARCH_TYPES:
            text = f"{rtype} cannot be searched here; searchable types: {', '.join(SEARCH_TYPES)}."
            return TraceStep(round=round_number, kind="error", summary=text, action=dumped, result=text), text
        params = {k: v for k, v in (action.params or {}).items() if k not in {"patient", "subject", "_count"}}
        params["patient"] = self.patient_id  # scoped in code: never another patient's record
        try:
            found = self.fhir.search_all(rtype, params)
        except FhirError as exc:
            text = f"The search failed: {exc}"
            return TraceStep(round=round_number, kind="error", summary=text, action=dumped, result=text), text
        found = [r for r in found if r.get("resourceType") == rtype]
        found.sort(key=lambda r: ft.effective_date(r) or "", reverse=True)
        shown = found[:MAX_SEARCH_LINES]
        refs = [f"{r['resourceType']}/{r.get('id')}" for r in shown]
        seen.update(refs)
        lines = [_one_line(r) for r in shown]
        if len(found) > len(shown):
            lines.append(
                f"({len(found) - len(shown)} older results not shown; add a code or date parameter to narrow.)"
            )
        text = "\n".join(lines) if lines else "No matching resources."
        query = "&".join(f"{k}={v}" for k, v in params.items())
        summary = f"Searched {rtype}?{query}: {len(found)} found"
        return TraceStep(round=round_number, kind="search", summary=summary, action=dumped, result=text,
                         references=refs), text  # fmt: skip

    def _read(
        self, action: AgentAction, round_number: int, seen: set[str], dumped: dict[str, Any]
    ) -> tuple[TraceStep, str]:
        rtype, rid = action.resource_type or "", action.id or ""
        rid = rid.rsplit("/", 1)[-1]  # tolerate "Observation/obs-1"
        try:
            resource = self.fhir.read(rtype, rid)
        except FhirError as exc:
            text = f"{rtype}/{rid} could not be read: {exc}"
            return TraceStep(round=round_number, kind="error", summary=text, action=dumped, result=text), text
        if rtype not in READ_ONLY_SHARED and not ft.references_patient(resource, self.patient_id):
            text = f"{rtype}/{rid} is not part of this patient's record."
            return TraceStep(round=round_number, kind="error", summary=text, action=dumped, result=text), text
        ref = f"{rtype}/{rid}"
        seen.add(ref)
        text = _for_model(resource)
        return TraceStep(round=round_number, kind="read", summary=f"Read {_one_line(resource)}", action=dumped,
                         result=text, references=[ref]), text  # fmt: skip

    def _propose(
        self, action: AgentAction, round_number: int, dumped: dict[str, Any], result: AssistantResult
    ) -> tuple[TraceStep, str]:
        try:
            proposal = self.make_proposal(
                action.resource_type or "", action.resource or {}, action.reason or ""
            )
        except ProposalError as exc:
            text = f"The proposal was refused: {exc}"
            return TraceStep(round=round_number, kind="error", summary=text, action=dumped, result=text), text
        self.proposals[proposal.id] = proposal
        result.proposals.append(proposal)
        if proposal.status == "refused":
            reasons = "; ".join(str(r) for r in proposal.refusals)
            text = (
                f"The proposal was refused and will not be offered for approval: {reasons}. "
                "Propose it again without those elements, or finish."
            )
            summary = f"Refused: {proposal.summary} ({len(proposal.refusals)} element(s) not accepted)"
            return TraceStep(round=round_number, kind="error", summary=summary, action=dumped,
                             result=text), text  # fmt: skip
        text = (
            f"Proposal {proposal.id} recorded ({proposal.summary}). It changes nothing until the clinician "
            "approves it. Finish with an answer that mentions it."
        )
        return TraceStep(round=round_number, kind="propose_write", summary=f"Proposed: {proposal.summary}",
                         action=dumped, result=text), text  # fmt: skip

    # -- proposals -----------------------------------------------------------------------------

    def make_proposal(self, resource_type: str, resource: dict[str, Any], reason: str = "") -> Proposal:
        """A proposed write for this patient; nothing is written.

        ProposalError: a type the assistant may not write, or (whitelisted elements only) not valid
        FHIR R4. A proposal with elements outside the type's whitelist comes back "refused", each
        element named in `refusals`: it is shown, never offered for approval. Otherwise "pending",
        with every element as a line (`lines`) and the sha256 of its canonical JSON (`digest`)."""
        if resource_type not in WRITE_TYPES:
            raise ProposalError(f"{resource_type} cannot be written here; allowed: {', '.join(WRITE_TYPES)}.")
        given_type = resource.get("resourceType", resource_type)
        if given_type != resource_type:
            raise ProposalError(f"The resource is a {given_type}, not the {resource_type} proposed.")
        resource = copy.deepcopy(resource)  # the proposal owns its resource: nothing else can change it
        resource["resourceType"] = resource_type
        reference = {"reference": f"Patient/{self.patient_id}"}  # the open patient, set in code
        resource["patient" if resource_type == "AllergyIntolerance" else "subject"] = reference
        try:
            digest = policy.resource_digest(resource)
        except (TypeError, ValueError) as exc:
            raise ProposalError(f"The resource cannot be written as JSON exactly: {exc}") from exc
        refused = policy.refusals(resource)
        if not refused:
            validate_r4(resource)
        return Proposal(
            id=f"proposal-{uuid.uuid4().hex[:8]}",
            patient_id=self.patient_id,
            resource_type=resource_type,
            resource=resource,
            reason=reason,
            summary=_one_line({**resource, "id": "(new)"}),
            status="refused" if refused else "pending",
            refusals=refused,
            lines=policy.describe(resource),
            digest=digest,
            model=self.engine.info,
            prompt_version=self.prompt_version,
        )


def validate_r4(resource: dict[str, Any]) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (ValidationError, KeyError, ValueError) as exc:
        raise ProposalError(f"not a valid FHIR R4 {resource.get('resourceType')}: {str(exc)[:400]}") from exc


def apply_proposal(
    fhir: FhirClient, proposal: Proposal, *, approved_by: str, approved_digest: str
) -> Proposal:
    """Write an approved proposal to the store; returns the proposal marked applied.

    `approved_digest` is the digest of the resource as it was shown to the clinician who approved
    it. The resource written is parsed from the very canonical JSON whose sha256 is checked against
    it, so it is exactly what was approved, or nothing is written (ProposalError): changed since it
    was shown, refused by the whitelist, or not valid FHIR R4. The record adds only its id, meta and
    a provenance tag naming the approver."""
    if proposal.status == "refused":
        reasons = "; ".join(str(r) for r in proposal.refusals)
        raise ProposalError(f"Proposal {proposal.id} was refused and cannot be approved: {reasons}")
    if proposal.status != "pending":
        raise ProposalError(f"Proposal {proposal.id} is already {proposal.status}.")
    if not approved_by.strip():
        raise ProposalError("A proposal needs the approving clinician's name.")
    try:
        payload = policy.canonical_json(proposal.resource)
    except (TypeError, ValueError) as exc:
        raise ProposalError(f"Proposal {proposal.id} cannot be written as JSON exactly: {exc}") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if not approved_digest or digest != approved_digest or digest != proposal.digest:
        raise ProposalError(
            f"Proposal {proposal.id} changed after it was shown for approval; nothing was written. "
            "Ask again to see the proposal as it is now."
        )
    resource: dict[str, Any] = json.loads(payload)
    refused = policy.refusals(resource)
    if refused:
        raise ProposalError(f"Proposal {proposal.id} has elements that may not be written: {refused[0]}")
    validate_r4(resource)
    tag = {
        "system": "https://clarke.local/provenance",
        "code": "assistant-proposal",
        "display": f"Proposed by the chart assistant, approved by {approved_by}",
    }
    resource.setdefault("meta", {}).setdefault("tag", []).append(tag)
    created = fhir.create(resource)
    return proposal.model_copy(
        update={
            "status": "applied",
            "decided_by": approved_by,
            "decided_at": utc_now_iso(),
            "created": ft.source_of(created),
            "written_digest": policy.resource_digest(policy.without_server_fields(created)),
        }
    )


def reject_proposal(proposal: Proposal, *, rejected_by: str) -> Proposal:
    if proposal.status != "pending":  # a refused proposal was never offered: nothing to decide
        raise ProposalError(f"Proposal {proposal.id} is already {proposal.status}.")
    return proposal.model_copy(
        update={"status": "rejected", "decided_by": rejected_by, "decided_at": utc_now_iso()}
    )


def ask(
    fhir: FhirClient,
    engine: LlmEngine,
    patient_id: str,
    question: str,
    *,
    max_rounds: int = MAX_ROUNDS,
    on_step: Callable[[TraceStep], None] | None = None,
    cancel: CancelToken | None = None,
    action_max_tokens: int = ACTION_MAX_TOKENS,
) -> AssistantResult:
    assistant = ChartAssistant(
        fhir, engine, patient_id, max_rounds=max_rounds, action_max_tokens=action_max_tokens
    )
    return assistant.ask(question, on_step=on_step, cancel=cancel)
