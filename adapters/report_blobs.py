"""The report store on Azure Blob Storage: one private container (``reports``) in the app's storage account.

In Azure the container comes from Bicep (infra/modules/storage.bicep) and the app's managed identity writes
with the blob data role it holds on the account; people read with Storage Blob Data Reader on the container.
On a local stack the store uses the storage connection string (Azurite's, which names its blob endpoint too)
and creates the container on first use.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient

from adapters.sdk_options import sdk_client_options
from config.settings import Settings


class BlobReportStore:
    def __init__(self, container: ContainerClient, *, create_container: bool = False) -> None:
        self._container = container
        self._create = create_container

    @classmethod
    def from_settings(cls, settings: Settings, credential: Any = None) -> BlobReportStore | None:
        """The store the settings name: an endpoint with the app's credential, else the local connection
        string; None when neither is set (the report job then refuses to run and says why)."""
        if settings.reports_endpoint:
            client = ContainerClient(
                settings.reports_endpoint, settings.reports_container, credential=credential, **sdk_client_options()
            )
            return cls(client)
        if settings.tables_connection_string is not None:
            connection = settings.tables_connection_string.get_secret_value()
            if "BlobEndpoint=" not in connection and "UseDevelopmentStorage=true" not in connection:
                return None  # a connection string without a blob endpoint would point at the public cloud
            client = ContainerClient.from_connection_string(
                connection, settings.reports_container, **sdk_client_options()
            )
            return cls(client, create_container=True)
        return None

    @property
    def container_url(self) -> str:
        return self._container.url

    @property
    def creates_container(self) -> bool:
        """Whether the first write creates the container (local stacks; in Azure, Bicep provisions it)."""
        return self._create

    async def put(self, name: str, content: bytes, content_type: str) -> str:
        if self._create:
            with contextlib.suppress(ResourceExistsError):
                await self._container.create_container()
            self._create = False
        blob = self._container.get_blob_client(name)
        # no-cache: a browser that opened yesterday's latest.html asks again instead of showing it as today's.
        settings = ContentSettings(content_type=content_type, cache_control="no-cache")
        await blob.upload_blob(content, overwrite=True, content_settings=settings)
        return blob.url

    async def close(self) -> None:
        await self._container.close()


class MemoryReportStore:
    """The fake: documents by name with their content type; ``fail_on`` makes one name's write fail."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[str, bytes]] = {}
        self.fail_on: str | None = None

    async def put(self, name: str, content: bytes, content_type: str) -> str:
        if name == self.fail_on:
            raise OSError(f"storage refused {name}")
        self.documents[name] = (content_type, content)
        return f"memory://reports/{name}"

    async def close(self) -> None:
        return None
