"""EHR context agent (`context`) and chart assistant (`assistant`).

- `context.build_context(fhir, patient_id, engine=...)`: the record as a PatientContext, every
  fact with its resource id and version; the EHR model adds only flags and a summary.
- `assistant.ask(fhir, engine, patient_id, question)`: an agent loop over the record whose
  writes are proposals applied only on approval (`assistant.apply_proposal`).
- `proposal_policy`: what a proposal may write (a whitelist per resource type), the complete
  readable display of a proposal, and the digest that makes the approved resource the written one.
"""
