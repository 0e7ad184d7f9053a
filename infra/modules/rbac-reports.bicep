// Who may open the daily guest report: Storage Blob Data Reader on the reports container, nothing wider.
// The jobs app writes it with the Storage Blob Data Owner role it already holds on the account for the
// Functions host (modules/rbac.bicep); readers get no other container, no table, no queue.

param storageAccountName string
param containerName string

@description('Object ids of users or groups (the identity admins) who read the report.')
param readerPrincipalIds array = []

var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource readers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in readerPrincipalIds: {
    name: guid(container.id, principalId, storageBlobDataReader)
    scope: container
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    }
  }
]
