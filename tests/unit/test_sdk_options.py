"""The Azure SDK clients trust the environment only while it configures a proxy or a netrc file."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.sdk_options import environment_configures_http, sdk_client_options


def test_an_environment_without_proxy_or_netrc_skips_the_per_request_lookups(tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin", "NO_PROXY": "localhost", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert sdk_client_options(environ, tmp_path) == {"use_env_settings": False}


@pytest.mark.parametrize(
    "environ",
    [{"HTTPS_PROXY": "http://proxy.corp:8080"}, {"http_proxy": "http://proxy.corp:3128"}, {"NETRC": "/etc/netrc"}],
)
def test_a_configured_proxy_or_netrc_is_still_honoured(environ: dict[str, str], tmp_path: Path) -> None:
    assert environment_configures_http(environ, tmp_path)


def test_a_netrc_file_in_the_home_directory_is_still_honoured(tmp_path: Path) -> None:
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert sdk_client_options({}, tmp_path) == {"use_env_settings": True}
