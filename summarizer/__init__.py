"""The summarizer role: drafts (timelines, postmortems, ticket replies) grounded in facts and retrieved runbooks.

Entry point: ``summarizer.worker.run`` (the role's consumer loop; ``worker.Summarizer`` makes one draft).

Drafts -- the model only phrases a little prose; facts are filled in deterministically:

* ``facts`` -- Event, IncidentFacts, TicketFacts, Draft; formatting; incident_sources / ticket_sources
* ``timeline`` -- build_timeline
* ``postmortem`` -- build_postmortem, postmortem_template
* ``ticket_reply`` -- build_ticket_reply
* ``guard`` -- what the model writes is sanitized, its citations checked and its prose grounded
* ``checker`` -- the grounding checker: claims must be in the sources
* ``prompts`` -- prompt text and the postmortem template

Models and retrieval: ``llm`` (load_generator, ModelUnavailable, TextGenerator), ``cpukernels``,
``embeddings``, ``onnxquery``, ``index`` and ``retrieval``. ``config``: settings for callers that pass none,
and offline mode for the Hugging Face libraries.

This file imports nothing, so importing one module does not load torch or FAISS.
"""
