"""Settings, read once from the environment and validated with an error that names every bad setting.

The names are the app settings an operator sets on the Function App (see local.settings.sample.json and
infra/). ``ServiceBusConnection__*`` is shared with the Service Bus trigger binding, which reads the same
names, so the senders and the trigger can never point at different namespaces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from config.errors import SettingsError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DESIRED_STATE = ROOT / "config" / "desired-state.sample.yaml"

# Microsoft Graph's service roots: the global service and the national clouds (concepts/deployments.md).
# The managed identity's token goes only to the configured one, so nothing else is accepted in Azure.
GRAPH_HOSTS = frozenset(
    {"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}
)
# tenantsim on a local stack.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def graph_url_problem(url: str, version: str, environment: str) -> str | None:
    """Why ``url`` cannot be a Graph base URL for ``version`` (``v1.0``, ``beta``), or None.

    In Azure: https on a Microsoft Graph host, default port. Locally also http(s) on a loopback address (any
    port). Never user information, a query, a fragment, whitespace, or a path other than the version root.
    """
    if _URL_UNSAFE.search(url):
        return "holds whitespace, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return "must not carry user information, a query or a fragment"
    if parts.path.rstrip("/") != f"/{version}":
        return f"must end in the version root /{version}"
    if parts.scheme == "https" and host in GRAPH_HOSTS and port in (None, 443):
        return None
    if environment == "local" and parts.scheme in ("http", "https") and host in LOOPBACK_HOSTS:
        return None
    allowed = ", ".join(sorted(GRAPH_HOSTS))
    local = " (or a loopback address with LIFECYCLE_ENVIRONMENT=local)" if environment != "local" else ""
    return f"must be https on a Microsoft Graph host ({allowed}){local}"


# NCRONTAB (second minute hour day month day-of-week), UTC: each timer job's default schedule. The triggers
# read the deployed value of these settings (lifecycle/jobs.py), and the nightly jobs' run ids follow the
# same value, so a deployment that moves a schedule moves both together.
DEFAULT_SCHEDULES = {
    "LIFECYCLE_HOLD_RELEASE_SCHEDULE": "0 */5 * * * *",
    "LIFECYCLE_SWEEP_SCHEDULE": "0 0 2 * * *",
    "LIFECYCLE_DRIFT_SCHEDULE": "0 0 * * * *",
    "LIFECYCLE_GOVERNANCE_SCHEDULE": "0 30 2 * * *",
    "LIFECYCLE_RESET_SCHEDULE": "0 0 3 * * *",
    # After the night's sweep, governance and reset, so the report shows how they went.
    "LIFECYCLE_REPORT_SCHEDULE": "0 30 3 * * *",
}
NCRONTAB = r"^\S+ \S+ \S+ \S+ \S+ \S+$"


def schedule_hour(schedule: str) -> int:
    """The hour of a daily NCRONTAB schedule ('0 0 2 * * *' -> 2); 0 for one that fires every hour or more often."""
    hour = schedule.split()[2]
    return int(hour) if hour.isdigit() else 0


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    environment: Literal["local", "azure"] = Field("azure", alias="LIFECYCLE_ENVIRONMENT")
    tenant_id: str = Field(alias="LIFECYCLE_TENANT_ID", min_length=1)

    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="LIFECYCLE_GRAPH_BASE_URL")
    graph_beta_url: str = Field("https://graph.microsoft.com/beta", alias="LIFECYCLE_GRAPH_BETA_URL")
    # managed-identity: the function app. azure-cli: an operator's own sign-in (az login) for the read-only
    # commands, with the operator's Azure and directory roles, never the app's Graph permissions (README,
    # "Production runbook"). tenantsim: the local stack.
    graph_credential: Literal["managed-identity", "azure-cli", "tenantsim"] = Field(
        "managed-identity", alias="LIFECYCLE_GRAPH_CREDENTIAL"
    )
    graph_scope: str = Field("https://graph.microsoft.com/.default", alias="LIFECYCLE_GRAPH_SCOPE")
    managed_identity_client_id: str | None = Field(None, alias="AZURE_CLIENT_ID")

    tables_connection_string: SecretStr | None = Field(None, alias="LIFECYCLE_TABLES_CONNECTION_STRING")
    tables_endpoint: str | None = Field(None, alias="LIFECYCLE_TABLES_ENDPOINT")
    table_prefix: str = Field("lifecycle", alias="LIFECYCLE_TABLE_PREFIX", pattern=r"^[A-Za-z][A-Za-z0-9]{0,40}$")

    queue_transport: Literal["servicebus", "storage"] = Field("servicebus", alias="LIFECYCLE_QUEUE_TRANSPORT")
    servicebus_namespace: str | None = Field(None, alias="ServiceBusConnection__fullyQualifiedNamespace")
    servicebus_connection_string: SecretStr | None = Field(None, alias="ServiceBusConnection")
    queues_connection_string: SecretStr | None = Field(None, alias="LIFECYCLE_QUEUES_CONNECTION_STRING")
    queue_prefix: str = Field("", alias="LIFECYCLE_QUEUE_PREFIX", pattern=r"^[a-z0-9-]{0,20}$")

    desired_state_path: Path = Field(SAMPLE_DESIRED_STATE, alias="LIFECYCLE_DESIRED_STATE")

    sweep_mode: Literal["plan", "enforce"] = Field("plan", alias="LIFECYCLE_SWEEP_MODE")
    drift_mode: Literal["plan", "enforce"] = Field("plan", alias="LIFECYCLE_DRIFT_MODE")
    governance_mode: Literal["plan", "enforce"] = Field("plan", alias="LIFECYCLE_GOVERNANCE_MODE")
    reset_mode: Literal["plan", "enforce"] = Field("plan", alias="LIFECYCLE_RESET_MODE")
    # Redemption reset needs User.ReadWrite.All (infra/grant-graph-permissions --redemption-reset). Off: reset
    # tickets are rejected kind-not-available and the daily run only plans.
    reset_enabled: bool = Field(False, alias="LIFECYCLE_RESET_ENABLED")
    # The sign-up API connector's Basic password, sent to Graph when policy drift registers the connector
    # (desired state signUpRegistration). A Key Vault reference in Azure; never in the desired-state file.
    signup_connector_password: SecretStr | None = Field(None, alias="LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD")
    # The Google federation's client secret (desired state guestIdentityProviders.google): a Key Vault reference.
    google_client_secret: SecretStr | None = Field(None, alias="LIFECYCLE_GOOGLE_CLIENT_SECRET")
    # After `restore` (undo of a sweep run) the sweep leaves a restored guest alone this many days, then judges
    # it afresh: long enough for its sponsor to extend it or for it to sign in, short enough not to forget it.
    restore_cool_off_days: int = Field(7, alias="LIFECYCLE_RESTORE_COOL_OFF_DAYS", ge=1, le=90)
    # The sweep's guest pages expand each guest's sponsors (+1 resource unit a page, no call per guest) and the run
    # reports which guests have no sponsor, a deleted or disabled one, or one who is no longer a member.
    sweep_sponsor_coverage: bool = Field(True, alias="LIFECYCLE_SWEEP_SPONSOR_COVERAGE")

    hold_release_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_HOLD_RELEASE_SCHEDULE"], alias="LIFECYCLE_HOLD_RELEASE_SCHEDULE", pattern=NCRONTAB
    )
    sweep_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_SWEEP_SCHEDULE"], alias="LIFECYCLE_SWEEP_SCHEDULE", pattern=NCRONTAB
    )
    drift_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_DRIFT_SCHEDULE"], alias="LIFECYCLE_DRIFT_SCHEDULE", pattern=NCRONTAB
    )
    governance_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_GOVERNANCE_SCHEDULE"], alias="LIFECYCLE_GOVERNANCE_SCHEDULE", pattern=NCRONTAB
    )
    reset_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_RESET_SCHEDULE"], alias="LIFECYCLE_RESET_SCHEDULE", pattern=NCRONTAB
    )
    report_schedule: str = Field(
        DEFAULT_SCHEDULES["LIFECYCLE_REPORT_SCHEDULE"], alias="LIFECYCLE_REPORT_SCHEDULE", pattern=NCRONTAB
    )
    # Where the daily report lands: a blob container of the app's storage account (infra sets the endpoint).
    # Without an endpoint, a local stack writes to Azurite's blob service through the tables connection string.
    reports_endpoint: str | None = Field(None, alias="LIFECYCLE_REPORTS_ENDPOINT")
    reports_container: str = Field(
        "reports", alias="LIFECYCLE_REPORTS_CONTAINER", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
    )
    # What the queue triggers listen on (LIFECYCLE_<QUEUE>_QUEUE, set by infra); checked against the prefix.
    trigger_queues: dict[str, str] = Field(default_factory=dict, exclude=True)

    log_format: Literal["json", "console"] = Field("json", alias="LIFECYCLE_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LIFECYCLE_LOG_LEVEL")

    @field_validator("desired_state_path")
    @classmethod
    def _relative_to_package(cls, value: Path) -> Path:
        """A relative path is relative to the deployed package (the app root), not the working directory."""
        return value if value.is_absolute() else ROOT / value

    @model_validator(mode="after")
    def _one_source_per_resource(self) -> Settings:
        problems: list[str] = []
        if not (self.tables_connection_string or self.tables_endpoint):
            problems.append(
                "LIFECYCLE_TABLES_ENDPOINT: missing (or set LIFECYCLE_TABLES_CONNECTION_STRING for a local stack)"
            )
        if self.queue_transport == "servicebus" and not (
            self.servicebus_namespace or self.servicebus_connection_string
        ):
            problems.append(
                "ServiceBusConnection__fullyQualifiedNamespace: missing (required when "
                "LIFECYCLE_QUEUE_TRANSPORT=servicebus)"
            )
        if self.queue_transport == "storage" and not self.queues_connection_string:
            problems.append(
                "LIFECYCLE_QUEUES_CONNECTION_STRING: missing (required when LIFECYCLE_QUEUE_TRANSPORT=storage)"
            )
        url_problems = [
            f"{name}: {problem} (got {url!r})"
            for name, url, version in (
                ("LIFECYCLE_GRAPH_BASE_URL", self.graph_base_url, "v1.0"),
                ("LIFECYCLE_GRAPH_BETA_URL", self.graph_beta_url, "beta"),
            )
            if (problem := graph_url_problem(url, version, self.environment))
        ]
        problems.extend(url_problems)
        base, beta = urlsplit(self.graph_base_url), urlsplit(self.graph_beta_url)
        if not url_problems and (base.scheme, base.netloc.lower()) != (beta.scheme, beta.netloc.lower()):
            problems.append("LIFECYCLE_GRAPH_BETA_URL: not on the origin of LIFECYCLE_GRAPH_BASE_URL")
        for setting, name in self.trigger_queues.items():
            logical = setting.removeprefix("LIFECYCLE_").removesuffix("_QUEUE").lower().replace("_", "-")
            if name != self.queue_name(logical):
                problems.append(
                    f"{setting}: {name!r} is not where the senders write ({self.queue_name(logical)!r}, from "
                    "LIFECYCLE_QUEUE_PREFIX): the trigger would listen on a queue nothing sends to"
                )
        if self.environment == "azure" and self.graph_credential == "tenantsim":
            problems.append("LIFECYCLE_GRAPH_CREDENTIAL: tenantsim is for a local stack, not azure")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def queue_name(self, logical: str) -> str:
        return f"{self.queue_prefix}{logical}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment) or raise SettingsError."""
    source: dict[str, object] = dict(os.environ if environ is None else environ)
    source["trigger_queues"] = {
        name: value
        for name, value in source.items()
        if isinstance(value, str)
        and re.fullmatch(r"LIFECYCLE_[A-Z_]+_QUEUE", name)
        and name != "LIFECYCLE_QUEUE_PREFIX"
    }
    try:
        return Settings.model_validate(source)
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc, Settings, "invalid settings")) from None


def describe_settings_error(exc: ValidationError, model: type[BaseModel], title: str) -> str:
    """One line per bad setting, named by its app-setting name; values of secret settings are never shown."""
    alias_of = {name: (field.alias or name) for name, field in model.model_fields.items()}
    secret = {alias_of[name] for name, field in model.model_fields.items() if "SecretStr" in str(field.annotation)}
    lines = []
    for error in exc.errors():
        names = [alias_of.get(str(part), str(part)) for part in error["loc"]] or ["settings"]
        name = ".".join(names)
        if error["type"] == "missing":
            lines.append(f"{name}: missing")
        elif error["type"] == "value_error" and not error["loc"]:
            lines.extend(part.strip() for part in str(error["ctx"]["error"]).split(";"))
        else:
            shown = "(hidden)" if names[0] in secret else repr(error.get("input"))
            lines.append(f"{name}: {error['msg']} (got {shown})")
    return f"{title}:\n  " + "\n  ".join(lines)
