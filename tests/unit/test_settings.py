"""Settings come from the environment and fail with a message naming every bad setting."""

from __future__ import annotations

import pytest

from config.settings import load_settings
from lifecycle.errors import SettingsError
from tests.builders import LOCAL_ENV

AZURE_ENV = {**LOCAL_ENV, "LIFECYCLE_ENVIRONMENT": "azure", "LIFECYCLE_GRAPH_CREDENTIAL": "managed-identity"}


def test_a_complete_local_environment_loads():
    """The local-stack settings load, with queue names unprefixed by default."""
    settings = load_settings(LOCAL_ENV)
    assert settings.queue_transport == "storage" and settings.queue_name("onboarding") == "onboarding"


def test_every_missing_setting_is_named_in_one_error():
    """An empty environment names the tenant, table and Service Bus settings at once."""
    with pytest.raises(SettingsError) as caught:
        load_settings({})
    text = str(caught.value)
    assert "LIFECYCLE_TENANT_ID: missing" in text


def test_resource_settings_are_all_reported_together():
    """Missing tables and Service Bus settings are both reported, by their app-setting names."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"LIFECYCLE_TENANT_ID": "t"})
    text = str(caught.value)
    assert "LIFECYCLE_TABLES_ENDPOINT: missing" in text
    assert "ServiceBusConnection__fullyQualifiedNamespace: missing" in text


def test_a_bad_value_names_the_setting_and_the_value():
    """A value outside the allowed set is reported with its setting name and what was given."""
    with pytest.raises(SettingsError) as caught:
        load_settings({**LOCAL_ENV, "LIFECYCLE_QUEUE_TRANSPORT": "kafka", "LIFECYCLE_LOG_LEVEL": "LOUD"})
    text = str(caught.value)
    assert "LIFECYCLE_QUEUE_TRANSPORT" in text and "'kafka'" in text
    assert "LIFECYCLE_LOG_LEVEL" in text


def test_the_simulator_credential_is_refused_in_azure():
    """The simulator's credential never reaches Azure (the app uses its managed identity, an operator az login)."""
    env = {**LOCAL_ENV, "LIFECYCLE_ENVIRONMENT": "azure"}
    with pytest.raises(SettingsError, match="LIFECYCLE_GRAPH_CREDENTIAL"):
        load_settings(env)


def test_a_relative_desired_state_path_is_resolved_against_the_app_root():
    """In Azure the working directory is not the package root; the file is found all the same."""
    settings = load_settings({**LOCAL_ENV, "LIFECYCLE_DESIRED_STATE": "config/desired-state.sample.yaml"})
    assert settings.desired_state_path.is_absolute() and settings.desired_state_path.exists()


def test_job_modes_default_to_plan_and_accept_enforce():
    """Every timer job plans by default; enforce must be asked for explicitly."""
    assert load_settings(LOCAL_ENV).sweep_mode == "plan"
    assert load_settings({**LOCAL_ENV, "LIFECYCLE_DRIFT_MODE": "enforce"}).drift_mode == "enforce"


def test_the_value_of_a_bad_secret_setting_is_never_echoed():
    """An invalid connection string is reported by name only: secrets do not reach logs through errors."""
    with pytest.raises(SettingsError) as caught:
        load_settings({**LOCAL_ENV, "LIFECYCLE_TABLES_CONNECTION_STRING": 12345})  # type: ignore[dict-item]
    assert "LIFECYCLE_TABLES_CONNECTION_STRING" in str(caught.value) and "12345" not in str(caught.value)
    assert "(hidden)" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.us/v1.0",
        "https://dod-graph.microsoft.us/v1.0/",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
    ],
)
def test_the_graph_base_url_accepts_the_global_service_and_the_national_clouds(url):
    """Microsoft Graph's service roots (concepts/deployments.md) load in Azure."""
    beta = url.rstrip("/").removesuffix("/v1.0") + "/beta"
    env = {**AZURE_ENV, "LIFECYCLE_GRAPH_BASE_URL": url, "LIFECYCLE_GRAPH_BETA_URL": beta}
    assert load_settings(env).graph_base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/v1.0",
        "https://graph.microsoft.com.evil.example/v1.0",
        "http://graph.microsoft.com/v1.0",
        "https://graph.microsoft.com:8443/v1.0",
        "https://user@graph.microsoft.com/v1.0",
        "https://graph.microsoft.com/beta",
        "https://graph.microsoft.com/v1.0?x=1",
        "https://graph.microsoft.com/v1.0 ",
    ],
)
def test_the_graph_base_url_refuses_anything_but_a_graph_host_in_azure(url):
    """The managed identity's token follows the base URL: in Azure only https on a Graph host, the default
    port, the /v1.0 root, nothing else in the URL; loopback is refused."""
    with pytest.raises(SettingsError, match="LIFECYCLE_GRAPH_BASE_URL"):
        load_settings({**AZURE_ENV, "LIFECYCLE_GRAPH_BASE_URL": url})


def test_a_loopback_graph_url_is_accepted_only_in_local_mode():
    """tenantsim on a loopback port is a local stack's Graph; the beta root must share its origin."""
    env = {
        **LOCAL_ENV,
        "LIFECYCLE_GRAPH_BASE_URL": "http://127.0.0.1:8765/v1.0",
        "LIFECYCLE_GRAPH_BETA_URL": "http://127.0.0.1:8765/beta",
    }
    assert load_settings(env).graph_base_url == "http://127.0.0.1:8765/v1.0"
    with pytest.raises(SettingsError, match="LIFECYCLE_GRAPH_BETA_URL: not on the origin"):
        load_settings({**env, "LIFECYCLE_GRAPH_BETA_URL": "http://127.0.0.1:9999/beta"})
    with pytest.raises(SettingsError, match="LIFECYCLE_GRAPH_BASE_URL"):
        load_settings({**env, "LIFECYCLE_GRAPH_BASE_URL": "http://10.0.0.5:8765/v1.0"})
