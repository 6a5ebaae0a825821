"""The chart assistant's approval card shows the complete proposed resource, one element a line, as
plain text; a refused proposal is shown with its reasons and cannot be approved."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from PySide6.QtCore import Qt
from scripted_engine import ScriptedEngine

from clarke_desktop.agent.assistant import ChartAssistant
from clarke_desktop.session.service import _proposal_view
from clarke_desktop.session.views import AssistantAnswer, Proposal

pytestmark = pytest.mark.gui

ORDER: dict[str, Any] = {
    "resourceType": "MedicationRequest", "status": "active", "intent": "order",
    "medicationCodeableConcept": {"text": "Amlodipine 5 mg tablets"},
    "dosageInstruction": [
        {"text": "One tablet daily", "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]},
        {"text": "<b>then</b> as needed", "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]},
    ],
    "note": [{"text": "Review <span style='display:none'>hidden</span> in 2 weeks"}],
}  # fmt: skip


def _view(resource: dict[str, Any]) -> Proposal:
    """The card's values exactly as the service makes them from the assistant's proposal."""
    assistant = ChartAssistant(None, ScriptedEngine([]), "pt-001")  # type: ignore[arg-type]
    return _proposal_view(assistant.make_proposal(resource["resourceType"], copy.deepcopy(resource)))


@pytest.fixture
def panel(qapp):
    from clarke_desktop.gui.screens.assistant import AssistantPanel

    p = AssistantPanel()
    p.set_patient("Margaret Thompson")
    yield p
    p.deleteLater()


def test_the_card_shows_every_element_as_plain_text(panel) -> None:
    view = _view(ORDER)
    assert view.status == "pending" and view.digest and len(view.lines) == 10
    panel.set_answer(AssistantAnswer(text="Proposed.", proposals=[view]))
    card = panel.proposals[view.id]
    assert card.details.text() == "\n".join(view.lines)
    assert card.details.textFormat() == Qt.TextFormat.PlainText  # markup in a value never hides text
    shown = card.details.text()
    for line in ("Dosage 1 › Dose: 5 mg", "Dosage 2 › Dose: 50 mg", "Dosage 2: <b>then</b> as needed",
                 "Note: Review <span style='display:none'>hidden</span> in 2 weeks",
                 "Patient: Patient/pt-001", "Medication: Amlodipine 5 mg tablets"):  # fmt: skip
        assert line in shown.splitlines()
    assert view.digest[:12] in card.seal.text() and not card.seal.isHidden()
    assert card.approve.isEnabled() and not card.approve.isHidden() and card.refusals.isHidden()


def test_a_refused_proposal_is_shown_with_why_and_cannot_be_approved(panel) -> None:
    hidden = {**copy.deepcopy(ORDER), "extension": [{"url": "http://x.org/dose", "valueString": "ten"}],
              "text": {"status": "generated", "div": "<div>Amlodipine 10 mg</div>"}}  # fmt: skip
    view = _view(hidden)
    assert view.status == "refused"
    panel.set_answer(AssistantAnswer(text="Proposed.", proposals=[view]))
    card = panel.proposals[view.id]
    assert card.approve.isHidden() and card.reject.isHidden()
    assert card.state.text().startswith("Refused")
    assert "MedicationRequest.extension[0]: extensions are not accepted" in card.refusals.text()
    assert "MedicationRequest.text: a narrative" in card.refusals.text() and not card.refusals.isHidden()
    assert "Extension › Value: ten" in card.details.text()  # the refused elements are shown too
    assert card.seal.isHidden()


def test_a_proposal_that_cannot_be_shown_cannot_be_approved(panel) -> None:
    panel.set_answer(AssistantAnswer(text="?", proposals=[Proposal("p9", "Something", "Observation")]))
    card = panel.proposals["p9"]
    assert not card.approve.isEnabled() and "could not be shown" in card.approve.toolTip()
    assert "could not be shown" in card.details.text()


def test_a_decision_updates_the_card(panel) -> None:
    view = _view(ORDER)
    panel.set_answer(AssistantAnswer(text="Proposed.", proposals=[view]))
    panel.proposal_decided(Proposal(view.id, view.summary, view.resource_type, "approved", view.lines,
                                    digest=view.digest))  # fmt: skip
    card = panel.proposals[view.id]
    assert card.state.text().startswith("Approved") and card.approve.isHidden()


def test_a_long_proposal_is_never_cut_off(panel, qtbot) -> None:
    long = {**copy.deepcopy(ORDER), "note": [{"text": f"Note number {i}"} for i in range(60)]}
    view = _view(long)
    assert view.status == "pending" and len(view.lines) > 60
    panel.resize(360, 480)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_answer(AssistantAnswer(text="Proposed.", proposals=[view]))
    card = panel.proposals[view.id]
    qtbot.waitUntil(lambda: card.details.height() > 0)
    details = card.details
    assert details.height() >= details.heightForWidth(details.width())  # every line laid out
    bar = panel.proposals_area.verticalScrollBar()
    assert bar.maximum() > 0  # taller than the panel: it scrolls to the last line
    panel.proposals_area.ensureWidgetVisible(card.approve)
    assert bar.value() > 0
