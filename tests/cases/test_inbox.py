"""What waits for a decision (``cases.inbox``): four-eyes requests for a second person only,
referrals and transfers for the receiving NGO, and the transfers a coordinator ordered."""

from app.db import session_scope
from app.identity import Actor
from cases import inbox
from tests.cases.factories import go


def _as(engine, person, read):
    with session_scope(engine) as s:
        return read(s, Actor(user=person.user))


def _plan_submitted(client, kit, world):
    code = kit.intake(world.caseworker_a).code
    go(client, world.coordinator, code, "verify")
    go(client, world.coordinator, code, "refer", organisation="NGO A")
    go(client, world.caseworker_a, code, "accept")
    go(client, world.caseworker_a, code, "submit_plan")
    return code


def test_a_plan_waits_for_anyone_who_may_approve_it_but_the_one_who_asked(client, kit, world, engine):
    code = _plan_submitted(client, kit, world)

    def approvals(s, actor):
        return {a.case.code: a for a in inbox.approvals(s, actor=actor)}

    assert code not in _as(engine, world.caseworker_a, approvals)  # own request
    assert code not in _as(engine, world.caseworker_b, approvals)  # another NGO's case
    seen = _as(engine, world.coordinator, approvals)[code]
    assert seen.requested_by == "cw_a" and seen.decisions == ["approve_plan", "reject_plan"]
    assert seen.case.pending_request.kind == "plan"
    assert _as(engine, world.monitor, approvals) == {}


def test_a_referral_waits_for_the_receiving_ngo_and_a_transfer_is_followed_by_the_coordinator(client, kit, world,
                                                                                            engine):
    code = kit.intake(world.caseworker_a).code
    go(client, world.coordinator, code, "verify")
    go(client, world.coordinator, code, "refer", organisation="NGO A")
    incoming_a = _as(engine, world.caseworker_a, lambda s, a: [c.code for c in inbox.incoming(s, actor=a)])
    assert incoming_a == [code]
    assert _as(engine, world.caseworker_b, lambda s, a: inbox.incoming(s, actor=a)) == []

    go(client, world.caseworker_a, code, "accept")
    go(client, world.caseworker_a, code, "submit_plan")
    go(client, world.coordinator, code, "approve_plan")
    go(client, world.coordinator, code, "transfer", organisation="NGO B")
    assert [c.allowed_actions for c in _as(engine, world.caseworker_b, lambda s, a: inbox.incoming(s, actor=a))] == [
        ["accept", "decline"]]
    ordered = _as(engine, world.coordinator, lambda s, a: inbox.transfers_ordered(s, actor=a))
    assert [(t.code, t.from_organisation, t.to_organisation, t.status) for t in ordered] == [
        (code, "NGO A", "NGO B", "transferred")]
    assert _as(engine, world.caseworker_a, lambda s, a: inbox.transfers_ordered(s, actor=a)) == []
