// One Key Vault per function app for the secrets its settings name, read through Key Vault references
// (@Microsoft.KeyVault(VaultName=...;SecretName=...)) with the app's own managed identity: the app holds
// Key Vault Secrets User on its own vault only, so the sign-up connector's identity cannot read the jobs app's
// secrets and the other way round. The secrets themselves are put there by a person (`az keyvault secret set`),
// never by this template and never in the desired-state file; the secrets the operator
// has stored become app settings that reference them (main.bicep, `storedSecrets`).

param location string
param tags object
param vaultName string
param tenantId string
@description('The managed identity (principal id) of the one app that reads this vault.')
param readerPrincipalId string
@description('Who stores and rotates the secrets (an operators group object id); empty: none assigned here.')
param officersPrincipalId string = ''

var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the Flex apps have no VNet integration, so their hosts resolve references over the public endpoint; access is Entra ID RBAC only (no access policies). VNet integration plus private endpoints is the hardening path (infra/README.md).
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109.
  // checkov:skip=CKV2_AZURE_32: same reason as CKV_AZURE_109: no private endpoint without VNet integration.
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(officersPrincipalId)) {
  name: guid(vault.id, officersPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: officersPrincipalId
    principalType: 'Group'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

output name string = vault.name
