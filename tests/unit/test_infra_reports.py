"""Infra for the daily guest report: a private container, its app settings, and a reader role no wider than it."""

from __future__ import annotations

from azure.identity.aio import ManagedIdentityCredential

from adapters.report_blobs import BlobReportStore
from config.settings import load_settings
from tests.unit.test_infra import INFRA, MAIN_BICEP, _object_block, _resource, deployed_app_settings

STORAGE_BICEP = (INFRA / "modules" / "storage.bicep").read_text()
READERS_BICEP = (INFRA / "modules" / "rbac-reports.bicep").read_text()
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


def test_the_jobs_storage_account_holds_a_private_reports_container():
    """The container exists only where asked (the jobs app's account, not the sign-up app's), never public."""
    container = _resource(STORAGE_BICEP, "reportsContainer")
    assert "if (!empty(reportsContainerName))" in container and "publicAccess: 'None'" in container
    assert "allowBlobPublicAccess: false" in STORAGE_BICEP and "allowSharedKeyAccess: false" in STORAGE_BICEP
    jobs_storage = MAIN_BICEP.split("module storage 'modules/storage.bicep'")[1].split("\nmodule ")[0]
    signup_storage = MAIN_BICEP.split("module signupStorage 'modules/storage.bicep'")[1].split("\nmodule ")[0]
    assert "reportsContainerName: reportsContainerName" in jobs_storage
    assert "reportsContainerName" not in signup_storage


async def test_the_app_settings_point_the_report_store_at_that_container_with_the_apps_identity():
    """The deployed settings name the blob endpoint and the container; the adapter uses the endpoint with the
    app's credential (no key, no connection string)."""
    settings = _object_block(MAIN_BICEP, "var productSettings = {")
    assert settings["LIFECYCLE_REPORTS_ENDPOINT"] == "storage.outputs.blobEndpoint"
    assert settings["LIFECYCLE_REPORTS_CONTAINER"] == "storage.outputs.reportsContainerName"
    deployed = load_settings(deployed_app_settings())
    credential = ManagedIdentityCredential()
    store = BlobReportStore.from_settings(deployed, credential=credential)
    try:
        assert store is not None and not store.creates_container  # Bicep made it; the app only writes blobs
        assert store.container_url == "https://stguestlcprodabc.blob.core.windows.net/reports"
    finally:
        if store is not None:
            await store.close()
        await credential.close()


def test_readers_get_storage_blob_data_reader_on_the_reports_container_only():
    """Identity admins read the report with their own sign-in, on that one container, no other data role."""
    readers = _resource(READERS_BICEP, "readers")
    assert "scope: container" in readers and "for principalId in readerPrincipalIds" in readers
    assert f"var storageBlobDataReader = '{STORAGE_BLOB_DATA_READER}'" in READERS_BICEP
    assert READERS_BICEP.count("roleDefinitions") == 1
    module = MAIN_BICEP.split("module reportReaders 'modules/rbac-reports.bicep'")[1].split("\nmodule ")[0]
    assert "readerPrincipalIds: reportReaderPrincipalIds" in module
    assert "containerName: storage.outputs.reportsContainerName" in module
