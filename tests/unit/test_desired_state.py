"""The desired-state file: the sample loads, and mistakes are refused with their location."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from app.schemas import SCHEMAS
from config.desired_state import load_desired_state, parse_desired_state
from config.settings import ROOT, SAMPLE_DESIRED_STATE
from lifecycle.errors import DesiredStateError


def _sample() -> dict:
    return yaml.safe_load(SAMPLE_DESIRED_STATE.read_text())


def test_the_sample_file_expresses_the_partners_and_the_locked_down_invitation_policy():
    """The sample has its partners, an allowlist of partner domains and admins-only invitations."""
    desired = load_desired_state(SAMPLE_DESIRED_STATE)
    assert set(desired.partners) >= {"fabrikam", "northwind", "woodgrove", "adatum"}
    assert desired.invitations.allow_invites_from == "adminsAndGuestInviters"
    assert desired.invitations.domains.mode == "allowlist"


def test_a_misspelled_key_is_refused_rather_than_ignored():
    """Unknown keys are errors: a typo must never silently mean "not configured"."""
    raw = _sample()
    raw["lifecycle"]["inactveDays"] = 30
    with pytest.raises(DesiredStateError, match="inactveDays"):
        parse_desired_state(raw)


def test_an_invalid_partner_domain_is_refused_with_its_path():
    """A malformed domain is reported with the partner it belongs to."""
    raw = _sample()
    raw["partners"]["fabrikam"]["domains"] = ["fabrikam..com"]
    with pytest.raises(DesiredStateError, match=r"partners\.fabrikam\.domains"):
        parse_desired_state(raw)


def test_a_missing_file_and_bad_yaml_are_clear_errors(tmp_path: Path):
    """Neither a missing file nor broken YAML escapes as a raw exception."""
    with pytest.raises(DesiredStateError, match="not found"):
        load_desired_state(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("partners: [unclosed")
    with pytest.raises(DesiredStateError, match="not valid YAML"):
        load_desired_state(broken)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_committed_json_schemas_match_the_models(name: str):
    """config/schemas/*.json are regenerated from the models (python -m lifecycle schema NAME --write)."""
    committed = json.loads((ROOT / "config" / "schemas" / f"{name}.schema.json").read_text())
    assert committed == SCHEMAS[name]()


def test_the_sample_desired_state_validates_against_its_json_schema():
    """Editors using the JSON Schema accept the sample file."""
    import jsonschema

    jsonschema.validate(_sample(), SCHEMAS["desired-state"]())
