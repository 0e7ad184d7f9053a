"""azure.yaml (Azure Developer CLI) deploys infra/main.bicep and both function apps main.bicep declares."""

from __future__ import annotations

import re

import yaml

from config.settings import ROOT

AZURE_YAML = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
MAIN_BICEP = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")


def _outputs() -> set[str]:
    return set(re.findall(r"^output (\w+) ", MAIN_BICEP, flags=re.MULTILINE))


def test_azure_yaml_names_the_bicep_module_that_exists():
    infra = AZURE_YAML["infra"]
    assert infra == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (ROOT / infra["path"] / f"{infra['module']}.bicep").is_file()
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", AZURE_YAML["name"])


def test_both_function_apps_deploy_from_the_project_directory_under_main_bicep_output_names():
    services = AZURE_YAML["services"]
    assert set(services) == {"jobs", "signup"}
    named = {}
    for service in services.values():
        assert service["host"] == "function" and service["language"] == "python"
        assert (ROOT / service["project"] / "function_app.py").is_file()
        (variable,) = re.fullmatch(r"\$\{(\w+)\}", service["resourceName"]).groups()
        named[variable] = next(o for o in _outputs() if o.upper() == variable)
    assert sorted(named.values()) == ["functionAppName", "signupAppName"]
