"""Ticket replies a support lead would send (issue 19) and customer isolation (issue 16 part 4).

The unit tests run the reply builder over the real sample help centre with the real embeddings and FAISS; the
flow test runs every role on the real broker: two customers, an approved reply indexed as an exemplar, a
follow-up, a forged requester change, an approver's edit, and nothing of customer A anywhere near customer B.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from opsdraft.broker import free_port
from opsdraft.bus import read_topic
from opsdraft.models import Draft, Ticket
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import block_action_body, post_signed, view_submission_body
from summarizer.facts import TicketFacts
from summarizer.helpcentre import exemplar_doc, exemplar_text, help_docs, html_to_markdown
from summarizer.reply_checks import markup_in, plan_sentences
from summarizer.ticket_reply import ReplyPolicy, build_ticket_reply, questions
from tests.conftest import all_roles_running, runtime_on_broker, wait_until

HELPCENTRE = Path(__file__).resolve().parents[1] / "helpcentre"
RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
POLICY = ReplyPolicy(signoff="Best wishes,\nThe shop team", teams={"billing": "billing", "delivery": "delivery"})


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    from summarizer.embeddings import get_embedder
    from summarizer.index import VectorIndex, runbook_docs
    from summarizer.worker import REPLY_KINDS, REPLY_WEIGHTS

    index = VectorIndex(tmp_path_factory.mktemp("index"), get_embedder(), faiss_threads=1)
    index.upsert(help_docs(HELPCENTRE) + runbook_docs(RUNBOOKS))
    return lambda q: index.search(q, k=4, kinds=REPLY_KINDS, weights=REPLY_WEIGHTS)


def reply(search, subject, body, requester="<PERSON_1> <<EMAIL_1>>", tags=(), comments=(), generator=None):
    ticket = TicketFacts("T-9", subject, body, requester, list(tags), list(comments))
    return build_ticket_reply(ticket, search(f"{subject}\n{body}"), generator, search=search, policy=POLICY)


def test_help_centre_markdown_and_html_are_indexed_by_section():
    docs = {d.key: d for d in help_docs(HELPCENTRE)}
    assert len({k.split("#")[0] for k in docs}) >= 12 and all(d.kind == "help" for d in docs.values())
    html = docs["help:invoices.html#downloading-an-invoice"]
    assert "My account > Orders" in html.text and "<b>" not in html.text and "&gt;" not in html.text
    assert html_to_markdown("<h2>A</h2><script>x()</script><p>b &amp; c</p>") == "## A\n\nb & c\n"
    assert help_docs(HELPCENTRE / "missing") == []


def test_answer_is_clean_customer_prose_with_sources_kept_apart(search):
    d = reply(search, "Charged twice for order 55512", "My card was charged twice when checkout failed. "
              "Please refund one of the charges.")
    assert d.body.startswith("Hello <PERSON_1>,\n\n") and d.body.rstrip().endswith("Best wishes,\nThe shop team")
    assert markup_in(d.body, allow="<PERSON_1>") == [] and plan_sentences(d.body) == []
    assert "business days" in d.body and "55512" not in d.body
    assert d.citations and all(c["sentence"] in d.body for c in d.citations)
    assert {s["key"].split("#")[0] for c in d.citations for s in c["sources"]} == {"help:double-charges.md"}


def test_neutral_greeting_without_a_name(search):
    for requester in ("", "<EMAIL_1>", "   "):
        body = reply(search, "Express", "How long does express delivery take?", requester=requester).body
        assert body.startswith("Hello,\n\n") and "Hello ," not in body and "<EMAIL" not in body


def test_each_question_is_answered(search):
    d = reply(search, "Two questions", "How long does express delivery take? And can I pay with PayPal?")
    assert "1 to 2 business days" in d.body and "PayPal" in d.body
    assert {s["key"].split("#")[0] for c in d.citations for s in c["sources"]} == {
        "help:shipping.md", "help:payment-methods.md"}


def test_unanswerable_escalates_to_the_team_of_its_tag_and_invents_nothing(search):
    d = reply(search, "Wholesale", "Do you offer wholesale prices if I buy 500 lamps for my shop?", tags=["billing"])
    assert "passed it to our billing team, who will follow up" in d.body
    assert d.citations == [] and d.sources == [] and "500" not in d.body
    assert d.notes[0].startswith("No source answered this ticket")


def test_mixed_ticket_answers_what_it_can_and_hands_on_the_rest(search):
    d = reply(search, "Password and bulk order", "How long is the password reset link valid? Also, do you offer "
              "wholesale prices for 500 units?")
    assert "60 minutes" in d.body and "For the rest of your message" in d.body
    assert d.notes[0].startswith("1 of 2 questions had no source")


def test_the_follow_up_is_what_gets_answered(search):
    d = reply(search, "My order", "Hi, my order arrived today.", comments=[
        "Sorry, the box was crushed and the vase inside is broken. What should I do?"])
    assert "photo" in d.body or "replacement" in d.body
    assert questions(TicketFacts("T", "s", "Hi.", "", [], ["Can I cancel it?"]))[0][0] == "Can I cancel it?"


def test_model_plans_markup_and_invented_promises_never_reach_the_customer(search):
    class Planner:
        name = "planner"

        def generate(self, messages, max_new_tokens=256):
            return ("First, I will check the provider records [runbook:payment-provider-outage.md#diagnosis]. "
                    "As per the help article, see double-charges.md. We will refund you $500 today. "
                    "Your bank releases a pending charge on its own, usually within 3 to 5 business days.")

    d = reply(search, "Charged twice", "Is the second charge going to disappear?", generator=Planner())
    assert "Your bank releases a pending charge on its own, usually within 3 to 5 business days." in d.body
    for bad in ("First, I will", "[", ".md", "$500", "As per"):
        assert bad not in d.body
    assert d.model == "planner" and any("$500" in c for c in d.unsupported_claims)


def test_a_model_answer_that_drops_a_condition_or_negation_is_replaced_by_the_source(search):
    class Careless:
        name = "careless"

        def __init__(self, text):
            self.text = text

        def generate(self, messages, max_new_tokens=256):
            return self.text

    shipped = reply(search, "Address change after shipping", "My order has already shipped. Can you change the "
                    "delivery address now?", generator=Careless("Yes, you can change the delivery address now."))
    assert "Yes, you can" not in shipped.body and "no longer change" in shipped.body
    assert shipped.model == "none (deterministic)"
    twice = reply(search, "Charged twice", "Please refund one of the charges.", generator=Careless(
        "To refund one of the charges, reply with your order number and the last four digits of your card."))
    assert "5 business days" in twice.body


def test_exemplar_keeps_the_answer_and_drops_the_customer():
    body = ("Hello <PERSON_1>,\n\nYour order 7781234 was refunded to ingrid@example.no. Refunds take 5 to 10 "
            "business days to appear on your statement. Thanks, <PERSON_2>.\n\nBest wishes,\nThe shop team\n")
    assert exemplar_text(body, POLICY.signoff) == (
        "Refunds take 5 to 10 business days to appear on your statement.")
    doc = exemplar_doc(17, body, POLICY.signoff)
    assert doc.key == "exemplar:17" and doc.kind == "exemplar" and "7781234" not in doc.text
    assert exemplar_doc(18, "Hello <PERSON_1>,\n\nOrder 7781234 is fine.\n") is None


def test_ticket_update_keeps_its_requester_and_a_follow_up_asks_again(database, make_settings, redactor):
    from consumers.payloads import parse_ticket
    from consumers.service import Ingest
    from opsdraft.models import Outbox

    settings = make_settings()
    ingest = Ingest(settings, redactor)
    base = {"id": "T-5", "subject": "Refund", "body": "Where is my refund?", "created_at": "2026-11-20T14:00:00Z",
            "requester": {"name": "Jane Roe", "email": "jane.roe@example.com"}}
    with database.session() as s:
        ingest.apply_ticket(s, parse_ticket(base))
    with database.session() as s:
        before = s.scalar(select(Ticket.requester))
        ingest.apply_ticket(s, parse_ticket(base | {"requester": {"name": MALLORY, "email": "m@evil.example"},
                                                    "comment": "Any news?"}))
    with database.session() as s:
        assert s.scalar(select(Ticket.requester)) == before and before.startswith("<PERSON_1>")
        ids = s.scalars(select(Outbox.payload).where(Outbox.topic == settings.topics.draft_requests)).all()
        assert [p["request_id"].split(":", 3)[-1] for p in ids] == ["new", "comment:1"]


# ------------------------------------------------------------------ the flow, on the real broker

A = {"name": "Ingrid Halvorsen", "email": "ingrid.halvorsen@example.no", "order": "7781234"}
B = {"name": "Tomasz Wielgus", "email": "tomasz.wielgus@example.pl"}
MALLORY = "Mallory Evilman"
APPROVER = "U0APPROVER"


@pytest.mark.broker
async def test_customers_stay_apart_and_edits_publish_the_names_written(kafka_bootstrap, db_url, database,
                                                                        make_settings):
    with FakeSlack(token="xoxb-replies") as fake:
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="none",
                                 slack_api_url=fake.base_url, slack_bot_token="xoxb-replies",
                                 slack_signing_secret="replies-secret", slack_approvers=APPROVER,
                                 http_port=free_port(), redaction_restore_names=True)

        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _two_customers(rt, settings, fake)


async def _two_customers(rt, settings, fake):
    t, url = settings.topics, f"http://127.0.0.1:{settings.http_port}/slack/events"

    def ticket(external_id):
        with rt.db.session() as s:
            return s.scalar(select(Ticket).where(Ticket.external_id == external_id))

    def latest(external_id, *, posted=True):
        with rt.db.session() as s:
            tk = s.scalar(select(Ticket).where(Ticket.external_id == external_id))
            q = select(Draft).where(Draft.kind == "ticket_reply", Draft.subject_id == tk.id) if tk else None
            d = s.scalar(q.order_by(Draft.id.desc()).limit(1)) if q is not None else None
            return d if d is not None and (d.slack_ts or not posted) else None

    async def approve(d):
        body = block_action_body("draft_approve", str(d.id), APPROVER, d.slack_channel, d.slack_ts,
                                 message=fake.message(d.slack_channel, d.slack_ts))
        assert (await post_signed(url, settings.slack_signing_secret, body)).status_code == 200

    await rt.bus.send(t.tickets, {
        "id": "T-A1", "subject": "Charged twice", "created_at": "2026-11-20T14:05:00Z", "tags": ["billing"],
        "body": f"Hi, I am {A['name']}, order {A['order']}. My card was charged twice. Please refund one of the "
                "charges.", "requester": {"name": A["name"], "email": A["email"]}})
    a = await wait_until(lambda: latest("T-A1"), "customer A's reply draft in Slack")
    assert a.body.startswith("Hello <PERSON_1>,") and a.citations and "[" not in a.body
    slack_a = json.dumps(fake.message(a.slack_channel, a.slack_ts)["blocks"])
    assert "Sources of this reply" in slack_a and "help:double-charges.md" in slack_a  # shown to the agent
    await approve(a)
    (sent_a,) = await read_topic(rt.bus, t.ticket_replies, 1)
    assert sent_a["body"].startswith(f"Hello {A['name']},") and "help:" not in sent_a["body"]
    assert sent_a["sources"] and sent_a["sources"][0]["sources"][0]["key"].startswith("help:double-charges.md")
    await wait_until(lambda: "exemplar:" in _index_text(settings), "A's approved reply indexed as an exemplar")
    assert A["order"] not in _index_text(settings) and "Ingrid" not in _index_text(settings)

    await rt.bus.send(t.tickets, {
        "id": "T-B1", "subject": "Double charge", "created_at": "2026-11-20T15:00:00Z",
        "body": "I was charged twice for my order 5550123. Will the second charge go away?",
        "requester": {"name": B["name"], "email": B["email"]}})
    first_b = await wait_until(lambda: latest("T-B1"), "customer B's first draft")
    # a webhook update of B's ticket: a new requester is ignored, the comment is a follow-up
    await rt.bus.send(t.tickets, {
        "id": "T-B1", "subject": "Double charge", "created_at": "2026-11-20T15:00:00Z",
        "body": "I was charged twice for my order 5550123. Will the second charge go away?",
        "requester": {"name": MALLORY, "email": "mallory@evil.example"},
        "comment": "Also, how long do refunds take to show on my statement?"})
    b = await wait_until(lambda: (d := latest("T-B1")) and d.id != first_b.id and d, "the follow-up's new draft")
    assert "5 to 10 business days" in b.body
    with rt.db.session() as s:
        assert s.get(Draft, first_b.id).status == "superseded"
    assert "Mallory" not in ticket("T-B1").requester and ticket("T-B1").requester.startswith("<PERSON_1>")

    edited = (f"Hello {B['name']},\n\nOur agent Margaret Okonkwo checked it: refunds take 5 to 10 business days "
              "to appear on your statement.\n\nBest wishes,\nThe shop team")
    submit = view_submission_body("draft_edit_submit", str(b.id), {"body": {"body_input": {
        "type": "plain_text_input", "value": edited}}}, APPROVER)
    assert (await post_signed(url, settings.slack_signing_secret, submit)).status_code == 200
    v2 = await wait_until(lambda: (d := latest("T-B1")) and d.parent_id == b.id and d, "the edited version")
    assert B["name"] not in v2.body and "Margaret" not in v2.body  # stored with placeholders, as always
    await approve(v2)
    sent = await read_topic(rt.bus, t.ticket_replies, 2)
    sent_b = next(m for m in sent if m["ticket_id"] == "T-B1")
    assert sent_b["body"] == edited + "\n" or sent_b["body"] == edited  # exactly the names the approver wrote

    with rt.db.session() as s:
        b_drafts = s.scalars(select(Draft).where(Draft.subject_id == ticket("T-B1").id)).all()
    for_b = json.dumps([[d.body, d.sources, d.citations, d.notes] for d in b_drafts]) + json.dumps(sent_b)
    for_b += json.dumps([c for c in fake.calls if any(str(d.slack_ts) in json.dumps(c) for d in b_drafts)])
    for canary in (A["name"], "Ingrid", "Halvorsen", A["email"], A["order"], MALLORY, "mallory@"):
        assert canary not in for_b, canary


def _index_text(settings) -> str:
    path = settings.index_dir / "docs.json"
    return path.read_text(encoding="utf-8") if path.is_file() else ""
