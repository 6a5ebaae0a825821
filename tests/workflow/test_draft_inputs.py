"""Typed work in progress is stored as it is typed (one row per consultation, replaced on each
save) and an unsigned consultation with something in it is listed as unfinished."""

from __future__ import annotations

import pytest

from clarke_desktop.store import AppStore
from clarke_desktop.uk_format import local_time


def test_inputs_are_replaced_not_appended_and_read_back(store: AppStore) -> None:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    assert store.inputs(cid) is None
    store.save_inputs(cid, transcript="first words", aside="")
    store.save_inputs(cid, transcript="first words and more", aside="BP 142/88", transcript_origin="asr")
    saved = store.inputs(cid)
    assert saved is not None
    assert (saved.transcript, saved.aside, saved.transcript_origin) == (
        "first words and more",
        "BP 142/88",
        "asr",
    )
    assert store.db.query("SELECT count(*) AS n FROM draft_inputs")[0]["n"] == 1


def test_unfinished_lists_consultations_with_something_to_come_back_to(store: AppStore) -> None:
    empty = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    typed = store.create_consultation("pt-002", clinician="Dr S. Chen").id
    blank = store.create_consultation("pt-003", clinician="Dr S. Chen").id
    store.save_inputs(typed, transcript="Doctor: how are you?", aside="")
    store.save_inputs(blank, transcript="   ", aside="\n")
    ids = [r.id for r in store.unfinished() if r.id in {empty, typed, blank}]
    assert ids == [typed]
    assert empty not in ids and blank not in ids


@pytest.mark.parametrize(
    ("stored", "tz", "shown"),
    [
        ("2026-12-07T04:00:06Z", "Europe/London", "07/12/2026 04:00"),  # GMT
        ("2026-07-07T09:00:00Z", "Europe/London", "07/07/2026 10:00"),  # BST
        ("2026-07-07T09:00:00+00:00", "Asia/Kolkata", "07/07/2026 14:30"),
        ("2026-07-07", "Europe/London", "07/07/2026"),
        ("not a time", "Europe/London", "not a time"),
    ],
)
def test_stored_instants_are_shown_in_local_time(stored: str, tz: str, shown: str, monkeypatch) -> None:
    import time

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert local_time(stored) == shown
    finally:
        monkeypatch.undo()
        time.tzset()
