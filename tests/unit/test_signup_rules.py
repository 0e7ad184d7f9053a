"""The sign-up decision: which domains continue, which are blocked, and the invitation code check."""

from __future__ import annotations

import pytest

from config.desired_state import parse_desired_state
from lifecycle.errors import DesiredStateError
from lifecycle.signup.codes import invitation_code
from lifecycle.signup.requests import SignUpFormat, SignUpRequest
from lifecycle.signup.rules import Code, Outcome, SignUpRules

SECRET = b"k" * 32
TIER = "extension_abc_PartnerTier"
CODE_ATTRIBUTE = "extension_abc_InvitationCode"


def _state(**sign_up: object):
    return parse_desired_state(
        {
            "tenant": {"id": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13", "primaryDomain": "contoso.onmicrosoft.com"},
            "partners": {
                "fabrikam": {"displayName": "Fabrikam", "domains": ["fabrikam.com", "fabrikam.co.uk"], "tier": "gold"},
                "adatum": {"displayName": "Adatum", "domains": ["adatum.com"]},
            },
            "signUp": {"blockedDomains": ["gmail.com"], "partnerTierAttribute": TIER, **sign_up},
        }
    )


def _rules(**sign_up: object) -> SignUpRules:
    return SignUpRules.from_desired_state(_state(**sign_up), SECRET)


def _submit(email: str | None, **attributes: object) -> SignUpRequest:
    return SignUpRequest(SignUpFormat.SUBMIT, email, attributes)


class TestDomains:
    def test_a_partner_domain_continues_with_the_partner_tier_claim(self):
        """An address at a partner domain continues and carries the partner's tier in the tier attribute."""
        decision = _rules().decide(_submit("Ana@Fabrikam.co.uk"))
        assert (decision.outcome, decision.code, decision.partner) == (Outcome.CONTINUE, Code.PARTNER, "fabrikam")
        assert decision.claims == {TIER: "gold"}

    def test_a_partner_without_a_tier_continues_without_claims(self):
        """A partner with no tier continues with nothing to write."""
        decision = _rules().decide(_submit("li@adatum.com"))
        assert (decision.outcome, decision.claims) == (Outcome.CONTINUE, {})

    def test_no_tier_attribute_configured_writes_nothing(self):
        """Without partnerTierAttribute the tier is not written even for a tiered partner."""
        decision = _rules(partnerTierAttribute=None).decide(_submit("ana@fabrikam.com"))
        assert (decision.outcome, decision.claims) == (Outcome.CONTINUE, {})

    def test_a_blocked_consumer_domain_is_blocked_with_a_message_and_code(self):
        """A domain on blockedDomains is blocked with a user message naming work addresses."""
        decision = _rules(unknownDomains="allow").decide(_submit("sam@gmail.com"))
        assert (decision.outcome, decision.code) == (Outcome.BLOCK, Code.BLOCKED_DOMAIN)
        assert "work address" in (decision.user_message or "")

    def test_a_subdomain_of_a_blocked_domain_is_blocked(self):
        """Blocking a domain blocks its subdomains too."""
        decision = _rules(unknownDomains="allow").decide(_submit("sam@mail.gmail.com"))
        assert decision.code == Code.BLOCKED_DOMAIN

    def test_a_blocked_domain_wins_over_a_partner_listing(self):
        """A domain both blocked and listed for a partner is blocked (fail closed on a config mistake)."""
        decision = _rules(blockedDomains=["fabrikam.com"]).decide(_submit("ana@fabrikam.com"))
        assert decision.code == Code.BLOCKED_DOMAIN

    def test_a_disposable_domain_is_blocked_even_when_unknown_domains_are_allowed(self):
        """Addresses at a disposable-mail domain from the shipped list are blocked."""
        decision = _rules(unknownDomains="allow").decide(_submit("x@mailinator.com"))
        assert (decision.outcome, decision.code) == (Outcome.BLOCK, Code.DISPOSABLE_DOMAIN)

    def test_disposable_domains_pass_when_the_policy_turns_the_check_off(self):
        """blockDisposableDomains: false lets a disposable domain fall through to unknownDomains."""
        decision = _rules(unknownDomains="allow", blockDisposableDomains=False).decide(_submit("x@mailinator.com"))
        assert (decision.outcome, decision.code) == (Outcome.CONTINUE, Code.UNKNOWN_ALLOWED)

    def test_an_unknown_domain_is_blocked_by_default(self):
        """unknownDomains defaults to block."""
        decision = _rules().decide(_submit("bo@example.org"))
        assert (decision.outcome, decision.code) == (Outcome.BLOCK, Code.UNKNOWN_DOMAIN)

    def test_an_unknown_domain_continues_when_allowed(self):
        """unknownDomains: allow lets other domains continue, with no tier claim."""
        decision = _rules(unknownDomains="allow").decide(_submit("bo@example.org"))
        assert (decision.outcome, decision.code, decision.claims) == (Outcome.CONTINUE, Code.UNKNOWN_ALLOWED, {})

    @pytest.mark.parametrize("email", [None, "", "no-at-sign", "two@@fabrikam.com", "@fabrikam.com", "a@not_a_domain"])
    def test_a_missing_or_malformed_email_is_blocked(self, email):
        """Without a readable address there is nothing to judge, so the sign-up is blocked."""
        assert _rules(unknownDomains="allow").decide(_submit(email)).code == Code.EMAIL_MISSING

    def test_the_same_request_gets_the_same_decision(self):
        """Deciding twice gives equal decisions: the rules keep no state."""
        rules = _rules()
        assert rules.decide(_submit("ana@fabrikam.com")) == rules.decide(_submit("ana@fabrikam.com"))


class TestInvitationCodes:
    def _rules(self, **extra: object) -> SignUpRules:
        return _rules(requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE, **extra)

    def test_the_partner_code_lets_a_partner_user_continue(self):
        """A partner user who types their partner's code continues."""
        code = invitation_code(SECRET, "fabrikam", 1)
        decision = self._rules().decide(_submit("ana@fabrikam.com", **{CODE_ATTRIBUTE: code.lower()}))
        assert decision.outcome == Outcome.CONTINUE

    def test_a_missing_code_is_a_validation_error_on_the_code_field(self):
        """No code keeps the user on the form with an error pinned to the code attribute."""
        decision = self._rules().decide(_submit("ana@fabrikam.com"))
        assert (decision.outcome, decision.code) == (Outcome.INVALID, Code.CODE_MISSING)
        assert set(decision.attribute_errors) == {CODE_ATTRIBUTE}

    def test_another_partners_code_is_refused(self):
        """A valid code of a different partner does not admit a partner user."""
        code = invitation_code(SECRET, "adatum", 1)
        decision = self._rules().decide(_submit("ana@fabrikam.com", **{CODE_ATTRIBUTE: code}))
        assert decision.code == Code.CODE_INVALID

    def test_a_code_of_an_older_generation_is_refused(self):
        """Raising invitationCodeGeneration revokes the codes handed out before."""
        old = invitation_code(SECRET, "fabrikam", 1)
        decision = self._rules(invitationCodeGeneration=2).decide(_submit("ana@fabrikam.com", **{CODE_ATTRIBUTE: old}))
        assert decision.code == Code.CODE_INVALID

    def test_a_guessed_code_is_refused(self):
        """A code of the right shape but wrong digest is refused."""
        decision = self._rules().decide(_submit("ana@fabrikam.com", **{CODE_ATTRIBUTE: "FABRIKAM-AAAA-AAAA-AAAA-AAAA"}))
        assert decision.code == Code.CODE_INVALID

    def test_an_allowed_unknown_domain_needs_some_partners_code(self):
        """With unknown domains allowed, any partner's valid code admits the user; none keeps them out."""
        rules = self._rules(unknownDomains="allow")
        code = invitation_code(SECRET, "adatum", 1)
        assert rules.decide(_submit("bo@example.org", **{CODE_ATTRIBUTE: code})).outcome == Outcome.CONTINUE
        assert rules.decide(_submit("bo@example.org")).code == Code.CODE_MISSING

    def test_the_code_is_not_asked_before_the_form_is_filled(self):
        """At attribute collection start the domain rules apply but the code is not yet required."""
        start = SignUpRequest(SignUpFormat.START, "ana@fabrikam.com")
        assert self._rules().decide(start).outcome == Outcome.CONTINUE

    def test_domain_blocks_come_before_the_code_check(self):
        """A blocked domain is blocked whatever code is typed."""
        code = invitation_code(SECRET, "fabrikam", 1)
        assert self._rules().decide(_submit("x@gmail.com", **{CODE_ATTRIBUTE: code})).code == Code.BLOCKED_DOMAIN

    def test_requiring_codes_without_a_secret_is_refused_at_start_up(self):
        """The connector refuses to start when codes are required but no secret is configured."""
        state = _state(requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE)
        with pytest.raises(DesiredStateError, match="INVITATION_CODE_SECRET"):
            SignUpRules.from_desired_state(state, None)

    def test_requiring_codes_without_an_attribute_is_an_invalid_desired_state(self):
        """requireInvitationCode without invitationCodeAttribute fails desired-state validation."""
        with pytest.raises(DesiredStateError, match="invitationCodeAttribute"):
            _state(requireInvitationCode=True)


def test_blocked_domains_must_be_domain_names():
    """A typo in blockedDomains is refused instead of silently never matching."""
    with pytest.raises(DesiredStateError, match="not a domain name"):
        _state(blockedDomains=["gmail"])
