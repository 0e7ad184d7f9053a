"""Connector settings from the environment, and the invitation code tool."""

from __future__ import annotations

import pytest

from config.signup import load_signup_settings
from lifecycle.errors import SettingsError
from lifecycle.signup.codes import InvitationCodes, invitation_code, main

TENANT = "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"
BASE = {"LIFECYCLE_SIGNUP_TENANT_ID": TENANT, "LIFECYCLE_SIGNUP_AUDIENCES": "c0ffee00-1234-4abc-9def-0123456789ab"}


def test_the_minimum_settings_give_the_workforce_issuer_and_metadata():
    """Tenant and audience alone give the workforce issuer, its metadata URL and safe defaults."""
    settings = load_signup_settings(BASE)
    assert settings.issuers == (f"https://login.microsoftonline.com/{TENANT}/v2.0",)
    assert settings.metadata_url == f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration"
    assert (settings.basic_auth_enabled, settings.max_body_bytes) == (False, 64 * 1024)


def test_an_external_tenant_adds_the_ciamlogin_issuer_and_uses_its_metadata():
    """A CIAM domain adds the ciamlogin issuer and reads keys from the ciamlogin authority."""
    settings = load_signup_settings({**BASE, "LIFECYCLE_SIGNUP_CIAM_DOMAIN": "contosoext"})
    assert f"https://contosoext.ciamlogin.com/{TENANT}/v2.0" in settings.issuers
    assert settings.metadata_url.startswith(f"https://contosoext.ciamlogin.com/{TENANT}/v2.0/")


def test_audiences_are_a_comma_separated_list():
    """Both the client id and the App ID URI can be configured as audiences."""
    settings = load_signup_settings({**BASE, "LIFECYCLE_SIGNUP_AUDIENCES": "abc, api://x/abc ,"})
    assert settings.audiences == ("abc", "api://x/abc")


def test_every_bad_setting_is_named_and_secrets_are_not_echoed():
    """One error lists each bad setting by its environment name, without printing secret values."""
    with pytest.raises(SettingsError) as caught:
        load_signup_settings(
            {
                "LIFECYCLE_SIGNUP_TENANT_ID": "not-a-guid",
                "LIFECYCLE_SIGNUP_MAX_BODY_BYTES": "10",
                "LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET": 123,
            }
        )
    message = str(caught.value)
    for name in (
        "LIFECYCLE_SIGNUP_TENANT_ID",
        "LIFECYCLE_SIGNUP_AUDIENCES: missing",
        "LIFECYCLE_SIGNUP_MAX_BODY_BYTES",
    ):
        assert name in message
    assert "123" not in message


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"LIFECYCLE_SIGNUP_BASIC_USERNAME": "connector"}, "set both or neither"),
        ({"LIFECYCLE_SIGNUP_BASIC_USERNAME": "c", "LIFECYCLE_SIGNUP_BASIC_PASSWORD": "short"}, "at least 16"),
        ({"LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET": "short"}, "at least 32"),
        ({"LIFECYCLE_SIGNUP_OIDC_METADATA_URL": "http://login.example/meta"}, "must be https"),
        ({"LIFECYCLE_SIGNUP_ISSUERS": "http://sts.example/"}, "https URLs"),
    ],
)
def test_inconsistent_or_weak_settings_are_refused(extra, named):
    """Half-configured Basic auth, short secrets and non-https endpoints are refused with a reason."""
    with pytest.raises(SettingsError, match=named):
        load_signup_settings({**BASE, **extra})


def test_basic_auth_is_enabled_by_setting_both_values():
    """Username and a long enough password turn the Basic fallback on."""
    settings = load_signup_settings(
        {**BASE, "LIFECYCLE_SIGNUP_BASIC_USERNAME": "c", "LIFECYCLE_SIGNUP_BASIC_PASSWORD": "p" * 16}
    )
    assert settings.basic_auth_enabled


class TestInvitationCodes:
    def test_a_code_names_its_partner_and_is_stable(self):
        """The same secret, partner and generation always derive the same readable code."""
        code = invitation_code(b"s" * 32, "north-wind", 3)
        assert code == invitation_code(b"s" * 32, "north-wind", 3)
        assert code.startswith("NORTH-WIND-") and len(code.split("-")) == 6

    def test_typed_codes_are_matched_regardless_of_case_and_spaces(self):
        """Users may type the code in lower case or with stray spaces."""
        codes = InvitationCodes(b"s" * 32, ["north-wind"], 1)
        typed = " " + invitation_code(b"s" * 32, "north-wind", 1).lower().replace("-", "- ", 1)
        assert codes.partner_of(typed) == "north-wind"

    @pytest.mark.parametrize("typed", ["", "FABRIKAM", "UNKNOWN-AAAA-BBBB-CCCC-DDDD", "A-B-C-D"])
    def test_malformed_or_foreign_codes_belong_to_nobody(self, typed):
        """Codes of unknown partners or the wrong shape match no partner."""
        assert InvitationCodes(b"s" * 32, ["fabrikam"], 1).partner_of(typed) is None

    def test_the_tool_prints_each_partners_code(self, monkeypatch, capsys):
        """python -m lifecycle.signup.codes prints one tab-separated line per partner."""
        monkeypatch.setenv("LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET", "s" * 32)
        assert main(["fabrikam", "adatum", "--generation", "2"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines == [f"{p}\t{invitation_code(b's' * 32, p, 2)}" for p in ("fabrikam", "adatum")]

    def test_the_tool_refuses_to_run_without_a_secret(self, monkeypatch, capsys):
        """Without a long enough secret the tool exits 2 and says why."""
        monkeypatch.delenv("LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET", raising=False)
        assert main(["fabrikam"]) == 2
        assert "LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET" in capsys.readouterr().err
