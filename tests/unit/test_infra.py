"""The infrastructure's deliberate choices: queues, host.json, app settings, the Graph grant and its docs."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import uuid
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from config.errors import SettingsError
from config.settings import load_settings
from graph.permissions import GRANTED, GRAPH_APPLICATION_PERMISSIONS, RESET_GRANT, Deployment, required_names
from lifecycle.jobs import ALL_QUEUES, trigger_settings
from tenantsim.stack import ACCOUNT_KEY
from tests.builders import load_script

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
GRANT_SCRIPT = INFRA / "grant-graph-permissions"
QUEUES = json.loads((INFRA / "queues.json").read_text())
HOST = json.loads((ROOT / "host.json").read_text())
MAIN_BICEP = (INFRA / "main.bicep").read_text()
FUNCTION_APP_BICEP = (INFRA / "modules" / "functionapp.bicep").read_text()
README = (INFRA / "README.md").read_text()
EXPECTED_QUEUES = set(ALL_QUEUES)  # what the product consumes and sends to (lifecycle/jobs.py)


def _timespan_seconds(value: str) -> int:
    hours, minutes, seconds = (int(part) for part in value.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _iso_duration_seconds(value: str) -> int:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", value)
    assert match, f"not an ISO 8601 duration: {value}"
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# --- Bicep app settings -------------------------------------------------------------------------------

_BLOCK_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*):\s*(.+?)\s*$")


def _object_block(text: str, opening: str) -> dict[str, str]:
    """The ``KEY: expression`` lines of the Bicep object literal that starts right after ``opening``."""
    start = text.index(opening) + len(opening)
    body = text[start : text.index("\n}", start) if opening.startswith("var ") else text.index("})", start)]
    return dict(match.groups() for line in body.splitlines() if (match := _BLOCK_LINE.match(line)))


def _param_defaults() -> dict[str, str]:
    return dict(re.findall(r"^param (\w+) \w+ = '([^']*)'$", MAIN_BICEP, flags=re.MULTILINE))


# Values only Azure knows at deployment time, in the shape it produces them.
_DEPLOYMENT_TIME_VALUES = {
    "LIFECYCLE_TENANT_ID": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13",
    "LIFECYCLE_SIGNUP_TENANT_ID": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13",
    "LIFECYCLE_ADMIN_TENANT_ID": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13",
    "LIFECYCLE_TABLES_ENDPOINT": "https://stguestlcprodabc.table.core.windows.net",
    "LIFECYCLE_REPORTS_ENDPOINT": "https://stguestlcprodabc.blob.core.windows.net/",
    "LIFECYCLE_REPORTS_CONTAINER": "reports",
    "AzureWebJobsStorage__accountName": "stguestlcprodabc",
    "ServiceBusConnection__fullyQualifiedNamespace": "guestlc-prod-sb-abc.servicebus.windows.net",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "LIFECYCLE_AUDIT_INGESTION_ENDPOINT": "https://guestlc-prod-audit-dce-abcd.westeurope-1.ingest.monitor.azure.com",
    "LIFECYCLE_AUDIT_INGESTION_RULE_ID": "dcr-00000000000000000000000000000000",
    "LIFECYCLE_AUDIT_INGESTION_STREAM": "Custom-GuestLifecycleAudit",
}


APP_SETTINGS_UNION = (
    "properties: union(productSettings, empty(serviceBusFullyQualifiedNamespace) ? {} : serviceBusSettings, {"
)
RBAC_SIGNUP_BICEP = (INFRA / "modules" / "rbac-signup.bicep").read_text()


def _resolved(expressions: dict[str, str]) -> dict[str, str]:
    defaults = _param_defaults()
    settings: dict[str, str] = {}
    for name, expression in expressions.items():
        if literal := re.fullmatch(r"'([^']*)'", expression):
            # Bicep string interpolation of a parameter: '${queuePrefix}onboarding'.
            settings[name] = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], literal.group(1))
        elif expression in defaults:
            settings[name] = defaults[expression]
        else:
            settings[name] = _DEPLOYMENT_TIME_VALUES[name]
    return settings


def signup_app_settings() -> dict[str, str]:
    """The sign-up connector's function app settings: its own block plus the platform ones, no Service Bus."""
    expressions = _object_block(MAIN_BICEP, "var signupSettings = {") | _object_block(
        FUNCTION_APP_BICEP, APP_SETTINGS_UNION
    )
    return _resolved(expressions)


@cache
def deployed_app_settings() -> dict[str, str]:
    """The app settings main.bicep and functionapp.bicep give the function app, resolved to values."""
    expressions = (
        _object_block(MAIN_BICEP, "var productSettings = {")
        | _object_block(MAIN_BICEP, "var triggerSettings = {")
        | _object_block(FUNCTION_APP_BICEP, "var serviceBusSettings = {")
        | _object_block(FUNCTION_APP_BICEP, APP_SETTINGS_UNION)
    )
    return _resolved(expressions)


class TestAdminEndpointSettings:
    """The jobs app carries the admin endpoint's settings; the internet-facing sign-up app does not."""

    def test_the_deployed_settings_load_once_the_audiences_are_given(self):
        from config.admin import DEFAULT_ROLE, load_admin_settings

        deployed = deployed_app_settings()
        assert deployed["LIFECYCLE_ADMIN_TENANT_ID"] == deployed["LIFECYCLE_TENANT_ID"]
        settings = load_admin_settings({**deployed, "LIFECYCLE_ADMIN_AUDIENCES": "api://guest-lifecycle"})
        assert settings.role == DEFAULT_ROLE == deployed["LIFECYCLE_ADMIN_ROLE"]

    def test_an_undeployed_audience_leaves_the_endpoint_unconfigured(self):
        from config.admin import load_admin_settings

        with pytest.raises(SettingsError, match="LIFECYCLE_ADMIN_AUDIENCES"):
            load_admin_settings(deployed_app_settings())

    def test_the_sign_up_app_gets_no_admin_setting(self):
        assert not any(name.startswith("LIFECYCLE_ADMIN") for name in signup_app_settings())


class TestOperatorRoles:
    """The on-call group's own roles: readers of the product's state and queues, writers of one table only."""

    RBAC = (INFRA / "modules" / "rbac-operators.bicep").read_text()

    def _scopes(self) -> dict[str, tuple[str, str]]:
        sections = re.split(r"\n(?=resource |var |// )", self.RBAC)
        return {
            section.split()[1]: (
                re.search(r"scope: (\S+)", section).group(1),
                re.search(r"roles\.(\w+)\)", section).group(1),
            )
            for section in sections
            if "'Microsoft.Authorization/roleAssignments@" in section.split("\n", 1)[0]
        }

    def test_operators_read_the_tables_and_write_only_the_work_items_table(self):
        scopes = self._scopes()
        assert scopes["tableReader"] == ("storage", "storageTableDataReader")
        assert scopes["workItemsWriter"] == ("workItems", "storageTableDataContributor")
        assert "name: '${tablePrefix}workitems'" in self.RBAC
        assert [role for _, role in scopes.values()].count("storageTableDataContributor") == 1

    def test_operators_peek_the_consumed_queues_and_send_only_tickets(self):
        scopes = self._scopes()
        assert scopes["queueReceiver"] == ("consumedQueues[i]", "serviceBusDataReceiver")
        assert scopes["ticketSender"] == ("onboardingQueue", "serviceBusDataSender")
        assert "queue.name != 'sponsor-notices'" in self.RBAC
        assert "principalType: 'Group'" in self.RBAC and "ServicePrincipal" not in self.RBAC

    def test_the_group_is_optional_and_wired_to_the_deployments_names(self):
        assert _param_defaults()["operatorsGroupId"] == ""
        module = MAIN_BICEP.split("module operatorsRbac 'modules/rbac-operators.bicep' = ")[1].split("\n}\n")[0]
        assert module.startswith("if (!empty(operatorsGroupId))")
        assert "tablePrefix: tablePrefix" in module and "queuePrefix: queuePrefix" in module


class TestSignUpConnectorApp:
    """The internet-facing connector runs as its own function app whose identity holds nothing it does not use."""

    def test_each_app_indexes_its_own_function_set(self):
        assert deployed_app_settings()["LIFECYCLE_FUNCTIONS"] == "jobs"
        assert signup_app_settings()["LIFECYCLE_FUNCTIONS"] == "signup"

    def test_the_deployed_sign_up_settings_load_once_the_audience_is_given(self):
        from config.signup import load_signup_settings

        settings = load_signup_settings({**signup_app_settings(), "LIFECYCLE_SIGNUP_AUDIENCES": "api://signup"})
        assert settings.audiences == ("api://signup",)

    def test_the_sign_up_app_gets_no_state_queue_or_graph_setting(self):
        settings = signup_app_settings()
        assert not any(
            name.startswith(("ServiceBusConnection", "LIFECYCLE_TABLES", "LIFECYCLE_GRAPH")) for name in settings
        )
        assert settings["AzureWebJobsStorage__credential"] == "managedidentity"

    def test_the_sign_up_identity_holds_only_its_host_storage_and_telemetry(self):
        role_ids = set(re.findall(r"'([0-9a-f-]{36})'", RBAC_SIGNUP_BICEP))
        assert role_ids == {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "3913510d-42f4-4e42-8a64-420c390055eb"}
        module = MAIN_BICEP[MAIN_BICEP.index("module signupRbac") :]
        assert "storageAccountName: signupStorage.outputs.name" in module.split("\n}", 1)[0]
        app = MAIN_BICEP[MAIN_BICEP.index("module signupApp") :].split("\n}", 1)[0]
        assert "storageAccountName: signupStorage.outputs.name" in app and "serviceBus" not in app

    def test_the_grant_script_is_never_pointed_at_the_sign_up_app(self):
        """No Graph permission is granted to the connector's identity: the runbook names only the jobs app."""
        assert "signupAppPrincipalId" not in (INFRA / "grant-graph-permissions").read_text()


class TestAppSettings:
    def test_the_deployed_settings_load_as_an_azure_configuration(self):
        """The settings the Bicep deploys pass config/settings.py validation as-is."""
        settings = load_settings(deployed_app_settings())
        assert settings.environment == "azure"
        assert settings.graph_credential == "managed-identity"
        assert settings.queue_transport == "servicebus"
        assert settings.servicebus_namespace and settings.tables_endpoint

    def test_connections_are_identity_based(self):
        """Storage and Service Bus are reached through managed identity settings, never connection strings."""
        settings = deployed_app_settings()
        assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
        assert settings["ServiceBusConnection__credential"] == "managedidentity"
        assert "AzureWebJobsStorage" not in settings and "ServiceBusConnection" not in settings
        assert not any(
            name.endswith("_CONNECTION_STRING") for name in settings if not name.startswith("APPLICATIONINSIGHTS")
        )
        assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"

    def test_no_bicep_file_reads_or_writes_keys(self):
        """No template lists account keys or builds a key-based connection string."""
        for path in INFRA.rglob("*.bicep"):
            text = path.read_text()
            assert "listKeys" not in text and "AccountKey=" not in text and "SharedAccessKey" not in text, path

    def test_every_job_mode_is_deployed_and_defaults_to_plan(self):
        """Each job's mode setting is deployed, limited to plan|enforce, and plan unless a parameter says so."""
        settings = deployed_app_settings()
        for job in ("SWEEP", "DRIFT", "GOVERNANCE", "RESET"):
            assert settings[f"LIFECYCLE_{job}_MODE"] == "plan"
            param = job.lower() + "Mode"
            assert re.search(rf"@allowed\(\[\n  'plan'\n  'enforce'\n\]\)\nparam {param} string", MAIN_BICEP), param

    def test_parameter_files_only_set_declared_parameters(self):
        """Every parameter in the per-environment files exists in main.bicep, so a typo cannot pass silently."""
        declared = set(re.findall(r"^param (\w+) ", MAIN_BICEP, flags=re.MULTILINE))
        for path in [INFRA / "main.parameters.json", *sorted((INFRA / "env").glob("*.parameters.json"))]:
            parameters = json.loads(path.read_text())["parameters"]
            assert set(parameters) <= declared, f"{path.name}: {set(parameters) - declared}"
            assert "environmentName" in parameters, path.name

    def test_production_uses_zone_redundant_storage(self):
        """prod keeps state in zone-redundant storage, which the checkov skip for replication relies on."""
        prod = json.loads((INFRA / "env" / "prod.parameters.json").read_text())["parameters"]
        assert prod["storageSku"]["value"] == "Standard_ZRS"


# --- Service Bus queues ---------------------------------------------------------------------------------


class TestQueues:
    def test_the_product_queues_are_declared(self):
        """infra/queues.json declares exactly the queues the product sends to and triggers on."""
        assert {queue["name"] for queue in QUEUES["queues"]} == EXPECTED_QUEUES

    def test_service_bus_roles_are_scoped_to_the_product_queues_not_the_namespace(self):
        """Sender and receiver are granted per product queue (a queue another app adds to the namespace is out
        of reach), and sponsor-notices, which the ticketing system reads, gets no receiver."""
        rbac = (INFRA / "modules" / "rbac.bicep").read_text()
        sections = re.split(r"\n(?=resource |var |// )", rbac)
        scopes = {
            section.split()[1]: re.search(r"scope: (\S+)", section).group(1)
            for section in sections
            if "'Microsoft.Authorization/roleAssignments@" in section.split("\n", 1)[0]
        }
        assert scopes["serviceBusSender"] == scopes["serviceBusReceiver"] == "productQueues[i]"
        assert "serviceBus" not in scopes.values()
        assert "for queue in queueConfig.queues" in rbac and "loadJsonContent('../queues.json')" in rbac
        assert re.search(r"sendOnlyQueues = \[\s*'sponsor-notices'\s*\]", rbac)
        assert "if (!contains(sendOnlyQueues, queue.name))" in rbac.split("resource serviceBusReceiver")[1]

    def test_every_service_bus_trigger_reads_a_declared_queue_through_the_identity_connection(self):
        """Each queue trigger in function_app.py names a deployed queue and the ServiceBusConnection setting."""
        script = textwrap.dedent(
            """
            import json
            from function_app import app
            triggers = [f.get_trigger() for f in app.get_functions()]
            print(json.dumps([
                {"queue": t.queue_name, "connection": t.connection}
                for t in triggers if t.get_binding_name() == "serviceBusTrigger"
            ]))
            """
        )
        output = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        triggers = json.loads(output.strip().splitlines()[-1])
        assert triggers, "function_app.py has no Service Bus trigger"
        deployed = deployed_app_settings()
        for trigger in triggers:
            setting = re.fullmatch(r"%(\w+)%", trigger["queue"])
            assert setting, f"{trigger['queue']}: a trigger reads its queue from an app setting"
            assert deployed[setting.group(1)] in EXPECTED_QUEUES
            assert trigger["connection"] == "ServiceBusConnection"

    def test_the_deployed_trigger_settings_are_the_registrys(self):
        """main.bicep deploys every queue and schedule setting the triggers read, with the registry's values."""
        deployed = deployed_app_settings()
        expected = trigger_settings(load_settings(deployed))
        assert {name: deployed[name] for name in expected} == expected

    def test_a_thrown_exception_dead_letters_after_a_moderate_number_of_deliveries(self):
        """maxDeliveryCount is 5: enough for a lost lock or a crash, few enough that bugs reach the DLQ fast."""
        assert QUEUES["properties"]["maxDeliveryCount"] == 5

    def test_duplicate_detection_catches_double_sends_within_ten_minutes(self):
        """Duplicate detection is on with a 10-minute window (retries use new message ids, so none is lost)."""
        properties = QUEUES["properties"]
        assert properties["requiresDuplicateDetection"] is True
        assert _iso_duration_seconds(properties["duplicateDetectionHistoryTimeWindow"]) == 600

    def test_lock_is_sized_for_one_graph_call_chain_and_renewed_by_the_host(self):
        """The lock lasts 2 minutes (Service Bus allows at most 5) and host renewal outlasts the function."""
        lock = _iso_duration_seconds(QUEUES["properties"]["lockDuration"])
        assert lock == 120 and lock <= 300
        service_bus = HOST["extensions"]["serviceBus"]
        assert _timespan_seconds(service_bus["maxAutoLockRenewalDuration"]) >= _timespan_seconds(
            HOST["functionTimeout"]
        )

    def test_expired_messages_are_dead_lettered_and_live_long_enough_for_retries(self):
        """Expiry dead-letters rather than drops, and the TTL spans at least a week of retries and backlog."""
        properties = QUEUES["properties"]
        assert properties["deadLetteringOnMessageExpiration"] is True
        assert _iso_duration_seconds(properties["defaultMessageTimeToLive"]) >= 7 * 86400

    def test_the_readme_documents_every_queue(self):
        """infra/README.md lists each declared queue."""
        for queue in EXPECTED_QUEUES:
            assert f"| `{queue}` |" in README


# --- host.json ------------------------------------------------------------------------------------------


class TestHostJson:
    def test_uses_the_v4_extension_bundle(self):
        """host.json is version 2.0 and pins the extension bundle to [4.*, 5.0.0)."""
        assert HOST["version"] == "2.0"
        assert HOST["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}

    def test_function_timeout_is_bounded_and_within_flex_limits(self):
        """functionTimeout is set (not unbounded) and at most the 60 minutes Flex guarantees on scale-in."""
        assert 0 < _timespan_seconds(HOST["functionTimeout"]) <= 3600

    def test_function_logs_are_kept_and_host_noise_is_not(self):
        """Function logs are at Information, everything else defaults to Warning, requests are never sampled."""
        levels = HOST["logging"]["logLevel"]
        assert levels["Function"] == "Information" and levels["default"] == "Warning"
        sampling = HOST["logging"]["applicationInsights"]["samplingSettings"]
        assert "Request" in sampling["excludedTypes"].split(";")

    def test_messages_complete_on_return_and_are_not_prefetched(self):
        """Returning completes the message, and no message is locked while it waits in a prefetch buffer."""
        service_bus = HOST["extensions"]["serviceBus"]
        assert service_bus["autoCompleteMessages"] is True
        assert service_bus["prefetchCount"] == 0

    def test_concurrency_keeps_the_budgets_busy_without_waiting_past_the_budgets_limit(self):
        """maxConcurrentCalls covers the invitation budget (30/s x 1.8 s a ticket) on one instance alone, and the
        wait limit app.bootstrap sizes from it lets one instance's full queue of writes wait its
        turn at its 1/n share of 20 writes/s, without reaching the limit's ceiling, as the README's arithmetic
        says."""
        from app.bootstrap import host_queue_slots
        from graph.budget import BudgetClass, ClassBudget, Quota, WaitLimit

        slots = HOST["extensions"]["serviceBus"]["maxConcurrentCalls"]
        assert host_queue_slots() == slots
        instances = 4  # maximumInstanceCount in production (main.bicep's default)
        assert slots >= math.ceil(30 * 1.8) == 54
        share = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock=lambda: 0.0, share=1 / instances)
        limit = WaitLimit(slots)
        assert slots / share.rate <= limit.seconds(share) < limit.ceiling
        most = limit.ceiling / limit.margin * (3000 / 150) / instances  # slots whose queue reaches the ceiling
        assert most == 400 and slots <= most
        assert f"| `extensions.serviceBus.maxConcurrentCalls` | {slots} |" in README
        assert "30 x 1.8 = **54 slots**" in README and f"`maxConcurrentCalls` is **{slots}**" in README
        assert "slots <= 1600 / n: **400 slots**" in README

    def test_host_queue_slots_is_none_without_a_host_json(self, tmp_path):
        """A command line run outside the app's folder has no host.json: the budget keeps its fixed wait limit."""
        from app.bootstrap import host_queue_slots

        assert host_queue_slots(tmp_path / "host.json") is None
        (tmp_path / "host.json").write_text('{"extensions": {}}')
        assert host_queue_slots(tmp_path / "host.json") is None

    def test_the_readme_states_the_values_host_json_has(self):
        """Each scalar host.json value named in the README table is the value host.json holds."""
        service_bus = HOST["extensions"]["serviceBus"]
        for key in ("prefetchCount", "maxAutoLockRenewalDuration", "autoCompleteMessages"):
            stated = re.search(rf"\| `extensions\.serviceBus\.{key}` \| ([^|]+) \|", README)
            assert stated and stated.group(1).strip() == str(service_bus[key]).lower(), key
        assert f"| `functionTimeout` | {HOST['functionTimeout']} |" in README


# --- packaging and local settings -------------------------------------------------------------------------


class TestPackagingAndLocalSettings:
    def test_funcignore_keeps_dev_and_test_files_out_of_the_package(self):
        """.funcignore excludes tests, the simulator, benchmarks, virtualenvs, node_modules, infra and secrets."""
        ignored = set((ROOT / ".funcignore").read_text().split())
        for entry in ("tests/", "tenantsim/", "bench/", "node_modules/", ".venv/", ".venv-checkov/", ".stack/",
                      "infra/", "local.settings.json", "requirements-dev.txt"):  # fmt: skip
            assert entry in ignored, entry

    def test_local_sample_loads_and_holds_no_secret(self):
        """The sample's settings load, and its only key is Azurite's published development key."""
        values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
        settings = load_settings(values)
        assert settings.environment == "local"
        keys = re.findall(r"AccountKey=([^;]+)", json.dumps(values))
        assert keys and set(keys) == {ACCOUNT_KEY}
        assert not any("PASSWORD" in name or "SECRET" in name for name in values)

    def test_local_sample_names_every_product_setting_the_bicep_deploys(self):
        """A setting deployed to Azure is also named in the local sample, so local runs see the same knobs."""
        values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
        product = {name for name in deployed_app_settings() if name.startswith("LIFECYCLE_")}
        assert product - {"LIFECYCLE_TABLES_ENDPOINT"} <= set(values)


# --- checkov skips --------------------------------------------------------------------------------------


def test_every_checkov_skip_carries_a_written_reason():
    """Each inline checkov skip in the Bicep names a check and explains itself in a sentence."""
    skips = [
        line.strip()
        for path in INFRA.rglob("*.bicep")
        for line in path.read_text().splitlines()
        if "checkov:skip" in line
    ]
    assert skips
    for skip in skips:
        assert re.fullmatch(r"// checkov:skip=CKV2?_AZURE_\d+: \S.{24,}", skip), skip


# --- the Graph permission grant -------------------------------------------------------------------------


@cache
def grant_module() -> ModuleType:
    return load_script(GRANT_SCRIPT, "grant_graph_permissions")


GRAPH_SP_ID = "9028d19c-26a9-4809-8e3f-20ff73e2d75e"
OTHER_API_SP_ID = "c6b5a2f0-1111-4c1e-9d55-0a0b0c0d0e0f"
EXTRA_ROLES = ("Directory.ReadWrite.All", "Mail.Send")


def role_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph-app-role:{name}"))


PLAN_READS = required_names(Deployment()) - GRANTED
GRAPH_ROLES = {name: role_id(name) for name in sorted(GRANTED | RESET_GRANT | PLAN_READS | set(EXTRA_ROLES))}
MODE_SETTINGS = ("LIFECYCLE_SWEEP_MODE", "LIFECYCLE_DRIFT_MODE", "LIFECYCLE_GOVERNANCE_MODE", "LIFECYCLE_RESET_MODE")


class TestGrantPlan:
    def test_a_fresh_identity_is_granted_exactly_the_list(self):
        """With no assignments, the plan grants every permission of graph/permissions.py and nothing else."""
        module = grant_module()
        plan = module.plan_grants(GRANTED, GRAPH_ROLES, [], revoke_extra=False)
        assert {grant.permission for grant in plan.grant} == GRANTED
        assert {grant.app_role_id for grant in plan.grant} == {GRAPH_ROLES[name] for name in GRANTED}
        assert not plan.keep and not plan.revoke and not plan.extra_kept

    def test_existing_grants_are_kept_not_repeated(self):
        """Permissions already assigned are kept; only the missing ones are granted."""
        module = grant_module()
        held = [module.Assignment(id="a1", app_role_id=GRAPH_ROLES["User.Read.All"])]
        plan = module.plan_grants(GRANTED, GRAPH_ROLES, held, revoke_extra=False)
        assert plan.keep == ("User.Read.All",)
        assert {grant.permission for grant in plan.grant} == GRANTED - {"User.Read.All"}

    def test_extra_permissions_are_reported_and_revoked_only_on_request(self):
        """A Graph role beyond the list is kept and reported by default, and revoked with revoke_extra."""
        module = grant_module()
        held = [module.Assignment(id="x1", app_role_id=GRAPH_ROLES["Directory.ReadWrite.All"])]
        reported = module.plan_grants(GRANTED, GRAPH_ROLES, held, revoke_extra=False)
        assert reported.extra_kept == ("Directory.ReadWrite.All",) and not reported.revoke
        revoked = module.plan_grants(GRANTED, GRAPH_ROLES, held, revoke_extra=True)
        assert revoked.revoke == (module.Revoke("Directory.ReadWrite.All", "x1"),) and not revoked.extra_kept

    def test_a_permission_graph_does_not_define_stops_the_plan(self):
        """A misspelt permission fails the plan with its name instead of granting a partial set."""
        module = grant_module()
        with pytest.raises(module.GrantError, match=r"User\.Reed\.All"):
            module.plan_grants({"User.Reed.All"}, GRAPH_ROLES, [], revoke_extra=False)

    def test_the_script_plans_from_graph_permissions_not_a_copy(self):
        """--list prints exactly GRANTED, read from graph/permissions.py."""
        output = subprocess.run(
            [sys.executable, str(GRANT_SCRIPT), "--list", "--all-enforce"], capture_output=True, text=True, check=True
        )
        assert set(output.stdout.split()) == GRANTED

    def test_the_redemption_reset_permissions_are_listed_only_on_request(self):
        """--list omits User.ReadWrite.All; --list --redemption-reset adds exactly the reset's permissions."""
        base_command = [sys.executable, str(GRANT_SCRIPT), "--list", "--all-enforce"]
        base = subprocess.run(base_command, capture_output=True, text=True, check=True)
        command = [*base_command, "--redemption-reset"]
        with_reset = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "User.ReadWrite.All" not in base.stdout.split()
        assert set(with_reset.stdout.split()) == GRANTED | RESET_GRANT == GRANTED | {"User.ReadWrite.All"}

    def test_the_readme_permission_table_is_generated_from_the_list(self):
        """infra/README.md's permission table is exactly what --markdown-table prints for the current list."""
        table = re.search(r"<!-- permissions-table:start -->\n(.*?)\n<!-- permissions-table:end -->", README, re.S)
        assert table, "infra/README.md lost its permission table markers"
        assert table.group(1) == grant_module().markdown_table()
        for permission in GRAPH_APPLICATION_PERMISSIONS:
            assert f"| `{permission.name}` | {grant_module()._jobs(permission)} |" in table.group(1)


FAKE_AZ = '''\
"""A stand-in for the az CLI: serves `az rest` Graph calls and `functionapp identity show` from a JSON file."""
import json, os, re, sys, uuid

STATE = os.environ["FAKE_AZ_STATE"]
GRAPH = "https://graph.microsoft.com/v1.0"
ASSIGNMENTS = re.escape(GRAPH) + r"/servicePrincipals/([^/?]+)/appRoleAssignments(?:/([^/?]+))?(?:\\?skip=(\\d+))?"
PAGE = 2


def option(name):
    args = sys.argv[1:]
    return args[args.index(name) + 1] if name in args else None


with open(STATE) as handle:
    state = json.load(handle)
state["calls"].append(sys.argv[1:])
url, method = option("--url"), option("--method")
out = None
if sys.argv[1:3] == ["functionapp", "identity"]:
    out = state["functionApps"].get(option("--resource-group") + "/" + option("--name"), "")
elif sys.argv[1:4] == ["functionapp", "config", "appsettings"]:
    settings = state["appSettings"].get(option("--resource-group") + "/" + option("--name"), {})
    out = json.dumps([{"name": name, "value": value, "slotSetting": False} for name, value in settings.items()])
elif url and url.startswith(GRAPH + "/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')"):
    out = json.dumps(state["graph"])
elif url and (match := re.fullmatch(ASSIGNMENTS, url)):
    principal, assignment_id, skip = match.groups()
    held = state["assignments"].setdefault(principal, [])
    if method == "GET":
        start = int(skip or 0)
        page = {"value": held[start:start + PAGE]}
        if start + PAGE < len(held):
            page["@odata.nextLink"] = f"{GRAPH}/servicePrincipals/{principal}/appRoleAssignments?skip={start + PAGE}"
        out = json.dumps(page)
    elif method == "POST":
        body = json.loads(option("--body"))
        created = {"id": str(uuid.uuid4()), **body}
        held.append(created)
        out = json.dumps(created)
    elif method == "DELETE":
        state["assignments"][principal] = [item for item in held if item["id"] != assignment_id]
        out = ""
if out is None:
    print("ERROR: unexpected call " + " ".join(sys.argv[1:]), file=sys.stderr)
    sys.exit(1)
with open(STATE, "w") as handle:
    json.dump(state, handle)
print(out)
'''


class FakeTenant:
    """A tenant behind a fake `az` on PATH, holding the Graph service principal and role assignments."""

    PRINCIPAL = "5b6f3c1e-2d4a-4f8b-9c0d-1e2f3a4b5c6d"

    def __init__(self, directory: Path) -> None:
        self.state_path = directory / "az-state.json"
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        az = bin_dir / "az"
        az.write_text(f"#!{sys.executable}\n{FAKE_AZ}")
        az.chmod(0o755)
        self.env = os.environ | {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_AZ_STATE": str(self.state_path),
        }
        roles = [
            {"id": role, "value": name, "allowedMemberTypes": ["Application"], "isEnabled": True}
            for name, role in GRAPH_ROLES.items()
        ]
        roles.append(
            {"id": role_id("User.Read"), "value": "User.Read", "allowedMemberTypes": ["User"], "isEnabled": True}
        )
        self._write(
            {
                "graph": {"id": GRAPH_SP_ID, "appRoles": roles},
                "assignments": {self.PRINCIPAL: []},
                "functionApps": {"rg-prod/guestlc-prod-func": self.PRINCIPAL},
                "appSettings": {"rg-prod/guestlc-prod-func": dict.fromkeys(MODE_SETTINGS, "enforce")},
                "calls": [],
            }
        )

    def _write(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state))

    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def assign(self, name: str, resource: str = GRAPH_SP_ID) -> None:
        state = self.state()
        state["assignments"][self.PRINCIPAL].append(
            {"id": str(uuid.uuid4()), "principalId": self.PRINCIPAL, "resourceId": resource, "appRoleId": role_id(name)}
        )
        self._write(state)

    def granted(self) -> set[str]:
        names = {role: name for name, role in GRAPH_ROLES.items()}
        return {
            names[item["appRoleId"]]
            for item in self.state()["assignments"][self.PRINCIPAL]
            if item["resourceId"] == GRAPH_SP_ID
        }

    def set_settings(self, settings: dict[str, str]) -> None:
        state = self.state()
        state["appSettings"]["rg-prod/guestlc-prod-func"] = settings
        self._write(state)

    def writes(self) -> list[list[str]]:
        return [
            call for call in self.state()["calls"] if "--method" in call and call[call.index("--method") + 1] != "GET"
        ]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(GRANT_SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture(name="tenant")
def _tenant(tmp_path: Path) -> FakeTenant:
    return FakeTenant(tmp_path)


class TestGrantScriptAgainstAz:
    def test_dry_run_plans_exactly_the_list_and_changes_nothing(self, tenant: FakeTenant):
        """--dry-run --json lists every permission of graph/permissions.py as a grant and makes no write call."""
        result = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce", "--dry-run", "--json")
        assert result.returncode == 0, result.stderr
        plan = json.loads(result.stdout)
        assert {grant["permission"] for grant in plan["grant"]} == GRANTED
        assert plan["dryRun"] is True and not tenant.writes() and tenant.granted() == set()

    def test_a_grant_assigns_the_list_and_a_second_run_changes_nothing(self, tenant: FakeTenant):
        """The first run assigns exactly the list on Microsoft Graph; re-running it makes no further call."""
        first = tenant.run("--function-app", "guestlc-prod-func", "--resource-group", "rg-prod")
        assert first.returncode == 0, first.stderr
        assert tenant.granted() == GRANTED
        posts = len(tenant.writes())
        assert posts == len(GRANTED)
        second = tenant.run("--function-app", "guestlc-prod-func", "--resource-group", "rg-prod")
        assert second.returncode == 0 and "nothing to change" in second.stdout
        assert len(tenant.writes()) == posts

    def test_existing_assignments_across_pages_are_recognised(self, tenant: FakeTenant):
        """Assignments on later pages of appRoleAssignments count as held, and other APIs' roles are ignored."""
        for name in sorted(GRANTED)[:5]:
            tenant.assign(name)
        tenant.assign("Mail.Send", resource=OTHER_API_SP_ID)
        result = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce", "--dry-run", "--json")
        plan = json.loads(result.stdout)
        assert set(plan["keep"]) == set(sorted(GRANTED)[:5])
        assert {grant["permission"] for grant in plan["grant"]} == GRANTED - set(sorted(GRANTED)[:5])
        assert plan["extraKept"] == []

    def test_revoke_extra_removes_graph_roles_outside_the_list(self, tenant: FakeTenant):
        """An extra Graph role is reported by default and removed with --revoke-extra, leaving exactly the list."""
        tenant.assign("Directory.ReadWrite.All")
        reported = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce")
        assert "extra   Directory.ReadWrite.All" in reported.stdout
        assert tenant.granted() == GRANTED | {"Directory.ReadWrite.All"}
        revoked = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce", "--revoke-extra")
        assert revoked.returncode == 0 and "revoke  Directory.ReadWrite.All" in revoked.stdout
        assert tenant.granted() == GRANTED

    def test_the_reset_grant_is_added_with_its_flag_and_is_extra_without_it(self, tenant: FakeTenant):
        """--redemption-reset grants User.ReadWrite.All as well; a later run without it reports it as extra."""
        enabled = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce", "--redemption-reset")
        assert enabled.returncode == 0, enabled.stderr
        assert tenant.granted() == GRANTED | {"User.ReadWrite.All"}
        switched_off = tenant.run("--principal-id", tenant.PRINCIPAL, "--all-enforce", "--revoke-extra")
        assert "revoke  User.ReadWrite.All" in switched_off.stdout
        assert tenant.granted() == GRANTED

    def test_an_az_failure_exits_non_zero_with_the_reason(self, tenant: FakeTenant):
        """A function app unknown to az stops the grant with exit code 1 and a message naming the app."""
        result = tenant.run("--function-app", "no-such-app", "--resource-group", "rg-prod")
        assert result.returncode == 1
        assert "no-such-app" in result.stderr and not tenant.writes()


class _RecordingAz:
    def __init__(self, held: list[dict]) -> None:
        self.held, self.calls = held, []

    def get_all(self, url: str) -> list[dict]:
        self.calls.append(("GET", url, None))
        return self.held

    def rest(self, method: str, url: str, body: dict | None = None) -> dict:
        self.calls.append((method, url, body))
        return {}


def test_the_guest_inviter_role_is_assigned_once_by_its_template_id_over_the_whole_directory():
    """--assign-guest-inviter: the documented Guest Inviter template id, scope "/", and nothing when held."""
    grant = grant_module()
    az = _RecordingAz(held=[])
    assert grant.ensure_guest_inviter(az, "p-1", dry_run=True).startswith("would assign")
    assert [c[0] for c in az.calls] == ["GET"]
    assert grant.ensure_guest_inviter(az, "p-1", dry_run=False).startswith("assign")
    method, url, body = az.calls[-1]
    assert method == "POST" and url.endswith("/roleManagement/directory/roleAssignments")
    assert body == {
        "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
        "roleDefinitionId": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
        "principalId": "p-1",
        "directoryScopeId": "/",
    }
    held = _RecordingAz(held=[{"id": "x"}])
    assert grant.ensure_guest_inviter(held, "p-1", dry_run=False).startswith("keep")
    assert [c[0] for c in held.calls] == ["GET"]


class TestWritePermissionsFollowTheModes:
    """A job in plan mode only reads: its write permissions are granted only while it enforces."""

    WRITES = {
        "User.DeleteRestore.All",
        "Policy.ReadWrite.CrossTenantAccess",
        "Policy.ReadWrite.Authorization",
        "Policy.ReadWrite.B2BManagementPolicy",
        "IdentityProvider.ReadWrite.All",
        "AccessReview.ReadWrite.All",
    }

    def test_a_deployment_whose_jobs_all_plan_holds_no_job_write_permission(self):
        needs = required_names(Deployment())
        assert not needs & self.WRITES
        assert {"Policy.Read.B2BManagementPolicy", "IdentityProvider.Read.All", "AccessReview.Read.All"} <= needs
        # Onboarding has no plan mode: inviting, assigning and offboarding are always writes.
        assert {"User.Invite.All", "EntitlementManagement.ReadWrite.All", "User.EnableDisableAccount.All"} <= needs

    def test_enforcing_one_job_adds_exactly_its_writes(self):
        planning = required_names(Deployment())
        drift = required_names(Deployment({"policy-drift": "enforce"}))
        assert drift - planning == {
            "Policy.ReadWrite.CrossTenantAccess",
            "Policy.ReadWrite.Authorization",
            "Policy.ReadWrite.B2BManagementPolicy",
            "IdentityProvider.ReadWrite.All",
        }
        sweep = required_names(Deployment({"guest-sweep": "enforce"}))
        assert sweep - planning == {"User.DeleteRestore.All"}

    def test_the_reset_grant_needs_the_reset_switched_on_and_enforcing(self):
        assert "User.ReadWrite.All" not in required_names(Deployment({"redemption-reset": "enforce"}))
        assert "User.ReadWrite.All" not in required_names(Deployment(redemption_reset=True))
        on = Deployment({"redemption-reset": "enforce"}, redemption_reset=True)
        assert "User.ReadWrite.All" in required_names(on)

    def test_every_job_enforcing_is_the_whole_list(self):
        assert required_names(Deployment.all_enforcing()) == GRANTED
        assert required_names(Deployment.all_enforcing(redemption_reset=True)) == GRANTED | RESET_GRANT

    def test_the_script_reads_the_modes_from_the_function_apps_settings(self, tenant: FakeTenant):
        """Plan everywhere: the read-only grant. Sweep switched to enforce and the script run again: the delete
        permission is added. Back to plan with --revoke-extra: it is taken away."""
        app = ("--function-app", "guestlc-prod-func", "--resource-group", "rg-prod")
        tenant.set_settings(dict.fromkeys(MODE_SETTINGS, "plan"))
        assert tenant.run(*app).returncode == 0
        assert tenant.granted() == required_names(Deployment())
        tenant.set_settings({**dict.fromkeys(MODE_SETTINGS, "plan"), "LIFECYCLE_SWEEP_MODE": "enforce"})
        enforced = tenant.run(*app)
        assert "grant   User.DeleteRestore.All  <- guest-sweep (enforce)" in enforced.stdout
        assert tenant.granted() == required_names(Deployment()) | {"User.DeleteRestore.All"}
        tenant.set_settings(dict.fromkeys(MODE_SETTINGS, "plan"))
        revoked = tenant.run(*app, "--revoke-extra")
        assert "revoke  User.DeleteRestore.All" in revoked.stdout
        assert tenant.granted() == required_names(Deployment())

    def test_a_mode_the_script_does_not_know_is_refused(self, tenant: FakeTenant):
        result = tenant.run("--principal-id", tenant.PRINCIPAL, "--mode", "guest-sweep=yes")
        assert result.returncode == 1 and "JOB=plan|enforce" in result.stderr and not tenant.writes()


# --- on-call alerts (infra/modules/alerts.bicep) ---------------------------------------------------------

ALERTS_BICEP = (INFRA / "modules" / "alerts.bicep").read_text()
LIFECYCLE = ROOT / "lifecycle"


def _balanced(text: str, start: int) -> str:
    """The bracketed Bicep expression that opens at ``text[start]`` ('{' or '['), strings skipped."""
    closing = {"{": "}", "[": "]"}
    stack: list[str] = []
    index = start
    while index < len(text):
        if text.startswith("'''", index):
            index = text.index("'''", index + 3) + 3
            continue
        char = text[index]
        if char == "'":
            index += 1
            while text[index] != "'":
                index += 2 if text[index] == "\\" else 1
        elif char in closing:
            stack.append(closing[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return text[start : index + 1]
        index += 1
    raise AssertionError(f"unbalanced Bicep expression at {start}")


def _resource(text: str, symbol: str) -> str:
    """The body of ``resource <symbol> '<type>@<version>' = ...`` (condition or loop included)."""
    match = re.search(rf"^resource {symbol} '([^']+)' = ", text, flags=re.MULTILINE)
    assert match, f"no resource {symbol}"
    opening = re.compile(r"[\[{]").search(text, match.end())
    assert opening
    return f"{match.group(1)} {text[match.end() : opening.start()]}{_balanced(text, opening.start())}"


def _kql(name: str) -> str:
    match = re.search(rf"^var {name} = '''\n(.*?)'''", ALERTS_BICEP, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no query {name}"
    return match.group(1)


def _log_alerts() -> dict[str, dict[str, str]]:
    """``var logAlerts``: each rule's ``name: value`` lines, by its key."""
    start = ALERTS_BICEP.index("var logAlerts = [")
    array = _balanced(ALERTS_BICEP, ALERTS_BICEP.index("[", start))
    rules: dict[str, dict[str, str]] = {}
    index = array.index("{")
    while index != -1:
        body = _balanced(array, index)
        fields = dict(re.findall(r"^\s+(\w+): (.+?)\s*$", body, flags=re.MULTILINE))
        rules[fields["key"].strip("'")] = fields
        index = array.find("{", index + len(body))
    return rules


def _logged_events(suffix: str) -> set[str]:
    """Event names the core logs (``log.<level>("<name>"``) that end with ``suffix``."""
    pattern = re.compile(rf"log\.\w+\(\s*\"([a-z_.-]+{re.escape(suffix)})\"")
    return {name for path in LIFECYCLE.rglob("*.py") for name in pattern.findall(path.read_text())}


class TestOnCallAlerts:
    """Each alert exists, names what it watches, and notifies the deployment's action group."""

    def test_the_deployment_declares_the_alerts_module_with_its_receivers_from_parameters(self):
        module = MAIN_BICEP[MAIN_BICEP.index("module alerts 'modules/alerts.bicep'") :].split("\n}", 1)[0]
        assert "existingActionGroupId: alertActionGroupId" in module
        assert "alertEmailAddresses: alertEmailAddresses" in module
        assert "param alertEmailAddresses array = []" in MAIN_BICEP
        assert "param alertActionGroupId string = ''" in MAIN_BICEP
        # No receiver is hard-coded anywhere in the templates.
        for path in INFRA.rglob("*.bicep"):
            assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", path.read_text()), path

    def test_the_action_group_is_created_from_the_email_list_unless_an_existing_one_is_named(self):
        group = _resource(ALERTS_BICEP, "actionGroup")
        assert group.startswith("Microsoft.Insights/actionGroups@")
        assert "if (empty(existingActionGroupId))" in group
        assert "for (address, index) in alertEmailAddresses" in group and "emailAddress: address" in group
        assert "var actionGroupId = empty(existingActionGroupId) ? actionGroup.id : existingActionGroupId" in (
            ALERTS_BICEP
        )

    def test_dead_letters_alert_on_the_namespace_metric_per_queue(self):
        rule = _resource(ALERTS_BICEP, "deadLetters")
        assert rule.startswith("Microsoft.Insights/metricAlerts@")
        assert "serviceBusNamespaceId" in rule and "metricNamespace: 'Microsoft.ServiceBus/namespaces'" in rule
        assert "metricName: 'DeadletteredMessages'" in rule
        assert re.search(r"name: 'EntityName'\s+operator: 'Include'\s+values: \[\s+'\*'", rule)
        assert re.search(r"operator: 'GreaterThan'\s+threshold: 0", rule)
        assert re.search(r"actions: \[\s+\{\s+actionGroupId: actionGroupId", rule)

    def test_every_log_alert_is_a_scheduled_query_on_application_insights_wired_to_the_action_group(self):
        assert set(_log_alerts()) == {"deletion-brake", "job-failed", "sweep-missed", "graph-permission-denied"}
        rules = _resource(ALERTS_BICEP, "logAlertRules")
        assert rules.startswith("Microsoft.Insights/scheduledQueryRules@")
        assert "for rule in logAlerts" in rules and "query: rule.query" in rules
        assert re.search(r"scopes: \[\s+appInsightsId\s+\]", rules)
        assert re.search(r"actions: \{\s+actionGroups: \[\s+actionGroupId\s+\]", rules)
        assert "appInsightsId: monitoring.outputs.appInsightsId" in MAIN_BICEP

    def test_the_brake_alert_matches_exactly_the_brake_events_the_runs_log(self):
        rule = _log_alerts()["deletion-brake"]
        assert rule["query"] == "brakeQuery"
        queried = set(re.findall(r'"([a-z.-]+\.braked)"', _kql("brakeQuery")))
        assert queried == _logged_events(".braked") == {"sweep.braked", "reset.braked"}
        assert "parse_json(message)" in _kql("brakeQuery")  # structlog JSON: the event is a field, not text

    def test_the_failed_job_alert_covers_every_timer_function_of_the_registry(self):
        from lifecycle.jobs import JOBS

        block = _balanced(MAIN_BICEP, MAIN_BICEP.index("[", MAIN_BICEP.index("var timerFunctions = [")))
        assert set(re.findall(r"'(\w+)'", block)) == {job.function for job in JOBS if job.trigger == "timer"}
        assert "timerFunctions: timerFunctions" in MAIN_BICEP
        rule = _log_alerts()["job-failed"]
        assert "replace(failedJobQuery, 'TIMER_FUNCTIONS', timerFunctionList)" in rule["query"]
        query = _kql("failedJobQuery")
        assert "requests" in query and "operation_Name in (TIMER_FUNCTIONS)" in query and "success == false" in query

    def test_the_sweep_heartbeat_pages_when_no_run_succeeded_in_26_hours(self):
        rule = _log_alerts()["sweep-missed"]
        query = _kql("sweepHeartbeatQuery")
        assert "ago(26h)" in query and '"guest_sweep"' in query and "success == true" in query
        assert "summarize successfulRuns = count()" in query  # one row even when no run exists
        assert (rule["operator"], rule["threshold"], rule["measure"]) == ("'LessThan'", "1", "'successfulRuns'")
        assert _iso_duration_seconds(rule["window"].strip("'")) >= 26 * 3600
        from lifecycle.jobs import BY_FUNCTION

        assert BY_FUNCTION["guest_sweep"].trigger == "timer"

    def test_the_graph_denied_alert_looks_for_the_code_the_product_logs(self):
        from msgraph.generated.models.o_data_errors.main_error import MainError
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        from graph.errors import map_graph_error

        query = _kql("graphDeniedQuery")
        assert "traces" in query and "exceptions" in query
        # What a Graph 403 becomes in the product: its type name and message are what the logs carry.
        answer = ODataError(error=MainError(code="Authorization_RequestDenied", message="Insufficient privileges"))
        answer.response_status_code = 403
        error = map_graph_error(answer)
        assert f'"{type(error).__name__}"' in query and f'"{error.code}"' in query and error.code in str(error)

    def test_the_alerts_are_documented_for_on_call(self):
        root_readme = (ROOT / "README.md").read_text()
        runbook = root_readme[root_readme.index("## On-call runbook") :]
        for key in ("dead-letters", *_log_alerts()):
            assert f"`{key}`" in README, key
            assert f"`{key}`" in runbook.split("\n## ", 1)[0], key


# --- the audit stream (infra/modules/auditstream.bicep, auditrules.bicep) --------------------------------

AUDIT_STREAM_BICEP = (INFRA / "modules" / "auditstream.bicep").read_text()
AUDIT_RULES_BICEP = (INFRA / "modules" / "auditrules.bicep").read_text()
RBAC_BICEP = (INFRA / "modules" / "rbac.bicep").read_text()


def _audit_kql(name: str) -> str:
    match = re.search(rf"^var {name} = '''\n(.*?)'''", AUDIT_RULES_BICEP, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no query {name}"
    return match.group(1)


def _audited_actions() -> set[str]:
    """Audit actions the core writes as literals (``audit_run(services, run, "<action>"``, ``_audit(...``,
    ``audit_applied(..., "<action>"``)."""
    pattern = re.compile(r"(?:audit_run|_audit|_record|audit_applied)\([^()\"]*\"([a-z]+(?:[.-][a-z]+)+)\"")
    return {name for path in LIFECYCLE.rglob("*.py") for name in pattern.findall(path.read_text())}


class TestAuditStream:
    """The custom table, its data collection rule and the identity's right to send to it match the adapter."""

    def test_the_stream_declaration_has_the_columns_the_adapter_sends(self):
        from adapters.audit_stream import COLUMNS, DEFAULT_STREAM

        declared = AUDIT_STREAM_BICEP.index("var auditColumns")
        columns = _balanced(AUDIT_STREAM_BICEP, AUDIT_STREAM_BICEP.index("[", declared))
        assert tuple(re.findall(r"name: '(\w+)'", columns)) == COLUMNS
        assert f"var streamName = '{DEFAULT_STREAM}'" in AUDIT_STREAM_BICEP
        rule = _resource(AUDIT_STREAM_BICEP, "rule")
        assert "'${streamName}': {\n        columns: auditColumns" in rule
        assert "outputStream: 'Custom-${tableName}'" in rule and "dataCollectionEndpointId: endpoint.id" in rule
        table = _resource(AUDIT_STREAM_BICEP, "auditTable")
        assert "columns: auditColumns" in table and "var tableName = 'GuestLifecycleAudit_CL'" in AUDIT_STREAM_BICEP

    def test_the_app_settings_name_the_endpoint_the_rule_and_the_stream(self):
        from adapters.audit_stream import ENDPOINT_SETTING, RULE_ID_SETTING, STREAM_SETTING, AuditStreamTarget

        settings = _object_block(MAIN_BICEP, "var productSettings = {")
        assert settings[ENDPOINT_SETTING] == "auditStream.outputs.ingestionEndpoint"
        assert settings[RULE_ID_SETTING] == "auditStream.outputs.ruleImmutableId"
        assert settings[STREAM_SETTING] == "auditStream.outputs.streamName"
        assert "output ingestionEndpoint string = endpoint.properties.logsIngestion.endpoint" in AUDIT_STREAM_BICEP
        assert "output ruleImmutableId string = rule.properties.immutableId" in AUDIT_STREAM_BICEP
        target = AuditStreamTarget.from_environ(deployed_app_settings())
        assert target is not None and target.stream == "Custom-GuestLifecycleAudit"

    def test_the_jobs_identity_may_send_to_the_rule_and_nothing_more(self):
        grant = _resource(RBAC_BICEP, "auditStreamPublisher")
        assert "scope: auditRule" in grant and "roles.monitoringMetricsPublisher" in grant
        assert "dataCollectionRuleName: auditStream.outputs.ruleName" in MAIN_BICEP
        assert "dataCollectionRuleName" not in RBAC_SIGNUP_BICEP

    def test_the_audit_rules_read_the_actions_the_product_writes_and_page_the_action_group(self):
        written = _audited_actions()
        braked = set(re.findall(r'"([a-z.-]+\.braked)"', _audit_kql("brakeQuery")))
        assert braked == {"sweep.braked", "redemption-reset.braked"}
        assert braked <= written
        assert '"guest.disabled"' in _audit_kql("reEnabledQuery") and "guest.disabled" in written
        assert "PRODUCT_PRINCIPAL_ID" in _audit_kql("reEnabledQuery")
        assert "PRODUCT_PRINCIPAL_ID" in _audit_kql("crossTenantDefaultQuery")
        assert "productPrincipalId: functionApp.outputs.principalId" in MAIN_BICEP
        rules = _resource(AUDIT_RULES_BICEP, "auditRuleSet")
        assert rules.startswith("Microsoft.Insights/scheduledQueryRules@")
        assert re.search(r"actions: \{\s+actionGroups: \[\s+actionGroupId\s+\]", rules)
        assert "actionGroupId: alerts.outputs.actionGroupId" in MAIN_BICEP
        # The two rules over Entra's AuditLogs exist only where the workspace receives them.
        assert "concat(alwaysRules, entraAuditLogsInWorkspace ? entraRules : [])" in AUDIT_RULES_BICEP
        assert "param entraAuditLogsInWorkspace bool = false" in MAIN_BICEP

    def test_the_workbook_is_a_gallery_template_over_the_audit_table(self):
        workbook = json.loads((INFRA / "workbooks" / "audit.workbook.json").read_text())
        assert workbook["version"] == "Notebook/1.0"
        queries = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
        assert queries and all(query.startswith("GuestLifecycleAudit_CL") for query in queries)
        assert "loadJsonContent('../workbooks/audit.workbook.json')" in _resource(AUDIT_RULES_BICEP, "workbook")

    def test_the_audit_stream_is_documented(self):
        names = ("GuestLifecycleAudit_CL", "guest-re-enabled", "cross-tenant-default-changed", "audit-brake-tripped")
        for name in names:
            assert name in README, name


KEYVAULT_BICEP = (INFRA / "modules" / "keyvault.bicep").read_text()
KEYVAULT_REFERENCE = re.compile(
    r"([A-Z_]+): '@Microsoft\.KeyVault\(VaultName=\$\{(jobsVaultName|signupVaultName)\};SecretName=([a-z-]+)\)'"
)


class TestSecretsFromKeyVault:
    def test_each_stored_secret_becomes_a_reference_in_the_setting_its_app_reads(self):
        """A secret in the jobs vault feeds a jobs setting, one in the sign-up vault a sign-up setting, and every
        referenced setting is one the product's settings actually read (by alias)."""
        from config.settings import Settings
        from config.signup import SignUpSettings

        references = {setting: (vault, secret) for setting, vault, secret in KEYVAULT_REFERENCE.findall(MAIN_BICEP)}
        jobs_aliases = {f.alias for f in Settings.model_fields.values()}
        signup_aliases = {f.alias for f in SignUpSettings.model_fields.values()}
        assert references == {
            "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD": ("jobsVaultName", "signup-connector-password"),
            "LIFECYCLE_GOOGLE_CLIENT_SECRET": ("jobsVaultName", "google-client-secret"),
            "LIFECYCLE_SIGNUP_BASIC_PASSWORD": ("signupVaultName", "signup-basic-password"),
            "LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET": ("signupVaultName", "signup-invitation-code-secret"),
        }
        for setting, (vault, _) in references.items():
            assert setting in (jobs_aliases if vault == "jobsVaultName" else signup_aliases), setting
        allowed = re.search(r"@allowed\(\[([^\]]*)\]\)\nparam storedSecrets", MAIN_BICEP)
        assert allowed and set(re.findall(r"'([a-z-]+)'", allowed.group(1))) == {s for _, s in references.values()}

    def test_each_app_reads_only_its_own_vault_with_rbac_and_no_secret_lives_in_the_template(self):
        """The vault uses RBAC, keeps deleted secrets (purge protection), grants Key Vault Secrets User to the one
        app that reads it, and the template never writes a secret value."""
        assert "enableRbacAuthorization: true" in KEYVAULT_BICEP and "enablePurgeProtection: true" in KEYVAULT_BICEP
        assert "4633458b-17de-408a-b874-0445c86b69e6" in KEYVAULT_BICEP  # Key Vault Secrets User
        assert "Microsoft.KeyVault/vaults/secrets" not in KEYVAULT_BICEP + MAIN_BICEP
        readers = re.findall(
            r"vaultName: (\w+)\n(?:.*\n){1,2}?\s+readerPrincipalId: (\w+)\.outputs\.principalId", MAIN_BICEP
        )
        assert sorted(readers) == [("jobsVaultName", "functionApp"), ("signupVaultName", "signupApp")]
