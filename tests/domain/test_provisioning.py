"""The provisioned directory over the policy file's (followthrough/domain/provisioning.py), and the
hand-over of a deprovisioned person's items (the identity provider's reassignment)."""

from __future__ import annotations

from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    IDENTITY_PROVIDER,
    ActionItemState,
    Reassignment,
    reassignment_refusal,
)
from followthrough.domain.provisioning import (
    Provisioned,
    ProvisionedPerson,
    ProvisionedTeam,
    manager_of,
    person_name,
    provisioned_policy,
    team_manager,
)
from tests.domain.test_postmortem import make_item


def test_scim_wins_for_the_people_and_teams_it_provisions(policy: Policy) -> None:
    provisioned = Provisioned(
        people=[
            ProvisionedPerson(person="zoe", email="zoe@corp.example", manager="maria"),
            ProvisionedPerson(person="yuri", manager="maria"),
            ProvisionedPerson(person="maria", active=False),  # payments' manager in the file
            ProvisionedPerson(person="grace", active=False),  # on the council
        ],
        teams=[ProvisionedTeam(name="payments", members=["zoe", "yuri", "maria"])],
    )
    effective = provisioned_policy(policy, provisioned)
    payments = effective.teams["payments"]
    # maria left and reported to no one: her team goes to its first member; she is on no list.
    assert payments.members == ["yuri", "zoe"] and payments.manager == "yuri"
    assert payments.wip_cap == policy.teams["payments"].wip_cap  # the file's, kept
    assert "maria" not in effective.people and "grace" not in effective.council
    assert effective.teams["platform"] == policy.teams["platform"]  # not provisioned: the file's
    assert effective.email_of("zoe") == "zoe@corp.example"
    assert effective.council == ["heidi"]
    # Off the restricted postmortems' groups too (the shipped security group: erin and grace).
    assert effective.groups["security"] == ["erin"]
    assert provisioned_policy(policy, Provisioned()) is policy


def test_a_teams_manager_is_whom_most_of_its_members_report_to(policy: Policy) -> None:
    assert team_manager(["a", "b", "c"], {"a": "m2", "b": "m1", "c": "m1"}, None) == "m1"
    assert team_manager(["a", "b"], {"a": "m2", "b": "m1"}, None) == "m1"  # a tie: alphabetical
    assert team_manager(["a"], {}, "file") == "file"
    provisioned = Provisioned(
        people=[ProvisionedPerson(person="ola"), ProvisionedPerson(person="pia")],
        teams=[ProvisionedTeam(name="data", members=["ola", "pia"])],
    )
    # No one reports to anyone and the file has no such team: not a team.
    assert "data" not in provisioned_policy(policy, provisioned).teams


def test_the_council_and_the_default_owner_are_never_left_empty(policy: Policy) -> None:
    everyone_gone = [
        ProvisionedPerson(person=p, active=False) for p in [*policy.council, policy.default_owner]
    ]
    effective = provisioned_policy(policy, Provisioned(people=everyone_gone))
    assert effective.council == policy.council  # kept: a council of no one decides nothing
    assert effective.default_owner == effective.council[0]
    assert effective.teams["sre"].manager == "erin"  # sam left: the team's first member


def test_person_names_come_from_the_email_at_the_policys_domain() -> None:
    assert person_name("Bob@Example.com", "bob@example.com", "example.com") == "bob"
    assert person_name("00u1ab", "ann.lee@example.com", "example.com") == "ann.lee"
    assert person_name("Ann Lee", "ann@elsewhere.org", "example.com") == "ann-lee"
    assert person_name("///", None, "example.com") == ""


def test_a_departed_owners_item_goes_to_whom_they_reported_to(policy: Policy) -> None:
    provisioned = Provisioned(
        people=[
            ProvisionedPerson(person="bob", manager="tess", active=False),
            ProvisionedPerson(person="tess"),
        ]
    )
    assert manager_of("bob", policy, provisioned, "payments") == "tess"
    gone_too = Provisioned(
        people=[
            ProvisionedPerson(person="bob", manager="tess", active=False),
            ProvisionedPerson(person="tess", active=False),
        ]
    )
    assert manager_of("bob", policy, gone_too, "payments") == "maria"  # the team's manager
    assert manager_of("maria", policy, Provisioned(), "payments") == "grace"  # the council


def test_the_identity_provider_may_hand_any_open_item_over(policy: Policy) -> None:
    item = make_item(ActionItemState.OPEN)  # bob's, in payments
    # tess is in no team of the item's policy: the provider's word is final all the same.
    handover = Reassignment(by=IDENTITY_PROVIDER, to="tess", reason="bob was deprovisioned")
    assert reassignment_refusal(item, handover, policy) is None
    again = Reassignment(by=IDENTITY_PROVIDER, to="bob")
    assert reassignment_refusal(item, again, policy) == f"bob already owns {item.id}"
    verified = make_item(ActionItemState.VERIFIED)
    assert reassignment_refusal(verified, handover, policy) is not None
    # Moving it to another team is a person's decision, checked as ever.
    elsewhere = Reassignment(by=IDENTITY_PROVIDER, to="tess", team="platform")
    assert reassignment_refusal(item, elsewhere, policy) is not None
