// The storage account: the Functions host's own storage (timer leases, host keys), the Flex deployment
// package container, the product's state in Table Storage and, on the jobs app's account, the daily guest
// report's container. Entra ID only: shared keys are off.

param location string
param tags object
param accountName string
param deploymentContainerName string

@description('Blob container for the daily guest-posture report (latest.html and a dated copy per day); empty: none.')
param reportsContainerName string = ''

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string

@minValue(1)
@maxValue(365)
param softDeleteDays int

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the Flex app has no VNet integration, so the host reaches storage over its public endpoint; access is Entra ID only (shared keys off). VNet integration plus private endpoints is the hardening path (infra/README.md).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public endpoint, Entra ID only, no anonymous or key access.
  // checkov:skip=CKV_AZURE_206: replication is a per-environment parameter (prod.parameters.json uses Standard_ZRS); checkov cannot read the parameter.
  // checkov:skip=CKV_AZURE_43: the name is computed in main.bicep (lower-case letters and digits, at most 24); checkov cannot evaluate a parameter.
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Private like every container here: identity admins read it with Storage Blob Data Reader on this container only
// (main.bicep reportReaderPrincipalIds), never with an account key or a public URL.
resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!empty(reportsContainerName)) {
  parent: blobService
  name: empty(reportsContainerName) ? 'unused' : reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output reportsContainerName string = reportsContainerName
output tablesEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
