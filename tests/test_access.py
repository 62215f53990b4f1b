"""Personal tokens and one-click links, as pure functions: signing, reading, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from followthrough.domain.access import (
    LinkAction,
    LinkExpired,
    LinkRefused,
    OneClickLink,
    hash_token,
    link_nonce,
    read_link,
    sign_link,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SECRET = "s" * 32

links = st.builds(
    OneClickLink,
    action=st.sampled_from(LinkAction),
    action_item_id=st.from_regex(
        r"postmortem-[a-z]{1,10}-INC-[0-9]{1,6}-item-[1-9]", fullmatch=True
    ),
    person=st.text(min_size=1, max_size=20),
    expires_at=st.integers(min_value=1, max_value=10**6).map(
        lambda seconds: NOW + timedelta(seconds=seconds)
    ),
    nonce=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
)


@given(links)
def test_a_signed_link_reads_back_as_itself(link: OneClickLink) -> None:
    assert read_link(sign_link(link, SECRET), SECRET, NOW) == link


@given(links, st.data())
def test_any_changed_character_is_refused(link: OneClickLink, data: st.DataObject) -> None:
    token = sign_link(link, SECRET)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from("AbZ09-_.").filter(lambda c: c != token[at]))
    tampered = token[:at] + replacement + token[at + 1 :]
    # The signature is over the payload's text and compared as text: no change slips through.
    with pytest.raises(LinkRefused):
        read_link(tampered, SECRET, NOW)


@given(links)
def test_another_secret_or_the_expiry_refuses(link: OneClickLink) -> None:
    token = sign_link(link, SECRET)
    with pytest.raises(LinkRefused, match="signature does not match"):
        read_link(token, "another secret", NOW)
    with pytest.raises(LinkExpired, match="expired"):
        read_link(token, SECRET, link.expires_at)


def test_nonces_are_one_per_email_and_action_and_tokens_hash_stably() -> None:
    assert link_nonce("item-1/due/plan-1", LinkAction.ACKNOWLEDGE) == link_nonce(
        "item-1/due/plan-1", LinkAction.ACKNOWLEDGE
    )
    assert link_nonce("item-1/due/plan-1", LinkAction.ACKNOWLEDGE) != link_nonce(
        "item-1/due/plan-1", LinkAction.REQUEST_EXTENSION
    )
    assert link_nonce("item-1/due/plan-1", LinkAction.ACKNOWLEDGE) != link_nonce(
        "item-1/due/plan-2", LinkAction.ACKNOWLEDGE
    )
    assert hash_token("ft_abc") == hash_token("ft_abc") != hash_token("ft_abd")
    with pytest.raises(LinkRefused, match="not one Followthrough made"):
        read_link("no-dot-here", SECRET, NOW)


def test_a_non_ascii_token_is_refused_not_a_crash() -> None:
    """Found by the fuzzer: the token comes straight from a URL."""
    with pytest.raises(LinkRefused, match="signature does not match"):
        read_link(".\u0080", SECRET, NOW)
