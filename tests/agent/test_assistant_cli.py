"""`clarke-desktop ask` lists every element of a proposal, and a refused one with its reasons."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from scripted_engine import ScriptedEngine

from clarke_desktop.agent.proposal_policy import resource_digest
from clarke_desktop.cli import cli
from clarke_desktop.fhir.local import LocalFhirClient

ORDER = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": "HbA1c"},
         "occurrenceDateTime": "2027-02-22", "note": [{"text": "Fasting\nsample"}]}  # fmt: skip


def test_ask_lists_every_element_of_each_proposal(writable_fhir, monkeypatch: pytest.MonkeyPatch) -> None:
    import clarke_desktop.cli.llm as llm_cli
    import clarke_desktop.session.letter as letter

    hidden = {**ORDER, "extension": [{"url": "http://x.org/e", "valueString": "stat"}]}
    engine = ScriptedEngine([
        json.dumps({"action": "propose_write", "resource_type": "ServiceRequest", "resource": ORDER}),
        json.dumps({"action": "propose_write", "resource_type": "ServiceRequest", "resource": hidden}),
        json.dumps({"action": "finish", "answer": "Proposed."}),
    ])  # fmt: skip
    monkeypatch.setattr(llm_cli, "_engine", lambda role: engine)
    monkeypatch.setattr(letter, "open_record", lambda: LocalFhirClient(writable_fhir.store))
    result = CliRunner().invoke(cli, ["ask", "--patient", "pt-001", "Order an HbA1c"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    first = out.index("Proposed change (not applied; approve it in the app): "
                      "ServiceRequest/(new): HbA1c; status active; 2027-02-22")  # fmt: skip
    assert out[first + 1 : first + 8] == [
        "    Resource: ServiceRequest", "    Status: active", "    Intent: order", "    Code: HbA1c",
        "    Due: 2027-02-22", "    Note: Fasting", "      sample",
    ]  # fmt: skip
    sealed = {**ORDER, "subject": {"reference": "Patient/pt-001"}}
    assert out[first + 9] == f"    (sha256 of the resource: {resource_digest(sealed)})"
    refused = out.index("Refused proposal (not offered for approval): "
                        "ServiceRequest/(new): HbA1c; status active; 2027-02-22")  # fmt: skip
    assert out[refused + 1].startswith(
        "  not accepted: ServiceRequest.extension[0]: extensions are not accepted"
    )
    assert "    Extension › Value: stat" in out[refused:]
