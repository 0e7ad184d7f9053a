// Entra guest lifecycle automation: every Azure resource the function app needs, in one resource group.
// Deploy with `az deployment group create` (see infra/README.md); the Graph application permissions are
// granted afterwards by infra/grant-graph-permissions, because ARM cannot grant them.

targetScope = 'resourceGroup'

@description('Short environment name used in resource names, e.g. dev, test, prod.')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Prefix of every resource name.')
@minLength(2)
@maxLength(10)
param namePrefix string = 'guestlc'

param location string = resourceGroup().location

@description('Entra tenant whose guests the app manages (the tenant of this subscription by default).')
param tenantId string = tenant().tenantId

param tags object = {}

@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Premium messaging units (ignored on Standard).')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusPremiumCapacity int = 1

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@minValue(1)
@maxValue(365)
param storageSoftDeleteDays int = 7

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Scale-out ceiling of the app; together with host.json maxConcurrentCalls it bounds the Graph write concurrency (infra/README.md).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 4

@description('Always-ready instances for the HTTP functions (sign-up connector); 0 scales them to zero.')
@minValue(0)
@maxValue(10)
param httpAlwaysReady int = 0

@description('Prefix of the product queues (LIFECYCLE_QUEUE_PREFIX): lower-case letters, digits and dashes.')
@maxLength(20)
param queuePrefix string = ''

@description('Prefix of the product tables (LIFECYCLE_TABLE_PREFIX).')
param tablePrefix string = 'lifecycle'

@description('Path of the desired-state YAML inside the deployment package (LIFECYCLE_DESIRED_STATE).')
param desiredStatePath string = 'config/desired-state.yaml'

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

@allowed([
  'plan'
  'enforce'
])
param sweepMode string = 'plan'

@allowed([
  'plan'
  'enforce'
])
param driftMode string = 'plan'

@allowed([
  'plan'
  'enforce'
])
param governanceMode string = 'plan'

@allowed([
  'plan'
  'enforce'
])
param resetMode string = 'plan'

@description('Tenant whose tokens the sign-up connector accepts (LIFECYCLE_SIGNUP_TENANT_ID): the workforce tenant by default.')
param signupTenantId string = tenantId

@description('Comma-separated token audiences the sign-up connector accepts (LIFECYCLE_SIGNUP_AUDIENCES); empty leaves the connector unconfigured.')
param signupAudiences string = ''

@description('Comma-separated token audiences the admin endpoint accepts (LIFECYCLE_ADMIN_AUDIENCES): the product registration\'s App ID URI and application id, as infra/register-admin-app prints them; empty leaves the endpoint answering 503.')
param adminAudiences string = ''

@description('The app role an operator must hold on the product registration to call the admin endpoint (LIFECYCLE_ADMIN_ROLE).')
param adminRole string = 'Lifecycle.Operator'

@description('Object id of the Entra group of on-call operators: given, it gets the read-only runbook\'s roles on the storage and the queues (modules/rbac-operators.bicep); empty, nobody does.')
param operatorsGroupId string = ''

@description('Email addresses the on-call action group notifies (infra/README.md, "Alerts"); ignored when alertActionGroupId is set.')
param alertEmailAddresses array = []

@description('Resource id of an existing action group the alerts notify instead of creating one.')
param alertActionGroupId string = ''

@description('True when the workspace receives Entra\'s AuditLogs (the tenant\'s diagnostic setting): deploys the two audit rules that read them.')
param entraAuditLogsInWorkspace bool = false

@description('Object ids of the people or groups (e.g. the identity admins\' group) who read the daily guest report: Storage Blob Data Reader on the reports container only.')
param reportReaderPrincipalIds array = []

@description('The user name the sign-up API connector sends with its Basic password (not a secret); empty: Basic auth off.')
param signupBasicUsername string = ''

@description('The secrets an operator has stored in the apps\' Key Vaults (az keyvault secret set): each becomes a Key Vault reference in the app setting that names it. jobs vault: signup-connector-password, google-client-secret; sign-up vault: signup-basic-password, signup-invitation-code-secret.')
@allowed([
  'signup-connector-password'
  'google-client-secret'
  'signup-basic-password'
  'signup-invitation-code-secret'
])
param storedSecrets array = []

var reportsContainerName = 'reports'
var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var baseName = '${namePrefix}-${environmentName}'
var storageAccountName = take(toLower(replace('st${namePrefix}${environmentName}${token}', '-', '')), 24)
var functionAppName = '${baseName}-func-${take(token, 6)}'
var signupAppName = '${baseName}-signup-${take(token, 6)}'
var signupStorageAccountName = take(toLower(replace('stsu${namePrefix}${environmentName}${token}', '-', '')), 24)
var deploymentContainerName = 'app-package-${take(token, 8)}'
var jobsVaultName = take(toLower(replace('kv${namePrefix}${environmentName}${token}', '-', '')), 24)
var signupVaultName = take(toLower(replace('kvsu${namePrefix}${environmentName}${token}', '-', '')), 24)
// Each stored secret becomes a Key Vault reference in the app setting that reads it; each app reads only its
// own vault. The sign-up connector's Basic password is the same value in both vaults: the jobs app registers it
// with Entra (signUpRegistration), the sign-up app checks it on every call.
var jobsSecretReferences = union(
  contains(storedSecrets, 'signup-connector-password') ? {
    LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD: '@Microsoft.KeyVault(VaultName=${jobsVaultName};SecretName=signup-connector-password)'
  } : {},
  contains(storedSecrets, 'google-client-secret') ? {
    LIFECYCLE_GOOGLE_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${jobsVaultName};SecretName=google-client-secret)'
  } : {}
)
var signupSecretReferences = union(
  contains(storedSecrets, 'signup-basic-password') ? {
    LIFECYCLE_SIGNUP_BASIC_PASSWORD: '@Microsoft.KeyVault(VaultName=${signupVaultName};SecretName=signup-basic-password)'
  } : {},
  contains(storedSecrets, 'signup-invitation-code-secret') ? {
    LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET: '@Microsoft.KeyVault(VaultName=${signupVaultName};SecretName=signup-invitation-code-secret)'
  } : {}
)
var allTags = union(tags, {
  application: 'entra-guest-lifecycle'
  environment: environmentName
})

// Every job's trigger settings (lifecycle/jobs.py): the queues a trigger listens on, with the same prefix the
// senders use, and the timer schedules (NCRONTAB, UTC), which the nightly jobs' run ids follow too.
var triggerSettings = {
  LIFECYCLE_QUEUE_PREFIX: queuePrefix
  LIFECYCLE_ONBOARDING_QUEUE: '${queuePrefix}onboarding'
  LIFECYCLE_GUEST_ACTIONS_QUEUE: '${queuePrefix}guest-actions'
  LIFECYCLE_HOLD_RELEASE_SCHEDULE: '0 */5 * * * *'
  LIFECYCLE_SWEEP_SCHEDULE: '0 0 2 * * *'
  LIFECYCLE_DRIFT_SCHEDULE: '0 0 * * * *'
  LIFECYCLE_GOVERNANCE_SCHEDULE: '0 30 2 * * *'
  LIFECYCLE_RESET_SCHEDULE: '0 0 3 * * *'
  LIFECYCLE_REPORT_SCHEDULE: '0 30 3 * * *'
}

var productSettings = {
  LIFECYCLE_FUNCTIONS: 'jobs'
  LIFECYCLE_ENVIRONMENT: 'azure'
  LIFECYCLE_TENANT_ID: tenantId
  LIFECYCLE_TABLES_ENDPOINT: storage.outputs.tablesEndpoint
  LIFECYCLE_TABLE_PREFIX: tablePrefix
  LIFECYCLE_REPORTS_ENDPOINT: storage.outputs.blobEndpoint
  LIFECYCLE_REPORTS_CONTAINER: storage.outputs.reportsContainerName
  LIFECYCLE_QUEUE_TRANSPORT: 'servicebus'
  LIFECYCLE_DESIRED_STATE: desiredStatePath
  LIFECYCLE_LOG_FORMAT: 'json'
  LIFECYCLE_LOG_LEVEL: logLevel
  LIFECYCLE_GRAPH_CREDENTIAL: 'managed-identity'
  LIFECYCLE_SWEEP_MODE: sweepMode
  LIFECYCLE_DRIFT_MODE: driftMode
  LIFECYCLE_GOVERNANCE_MODE: governanceMode
  LIFECYCLE_RESET_MODE: resetMode
  LIFECYCLE_AUDIT_INGESTION_ENDPOINT: auditStream.outputs.ingestionEndpoint
  LIFECYCLE_AUDIT_INGESTION_RULE_ID: auditStream.outputs.ruleImmutableId
  LIFECYCLE_AUDIT_INGESTION_STREAM: auditStream.outputs.streamName
  // The admin endpoint (POST /api/admin/{plan|apply}): an operator's token from this tenant for the product's
  // registration, with the operator app role; the endpoint validates it itself (README, "Production runbook").
  LIFECYCLE_ADMIN_TENANT_ID: tenantId
  LIFECYCLE_ADMIN_AUDIENCES: adminAudiences
  LIFECYCLE_ADMIN_ROLE: adminRole
}

// The sign-up connector is its own function app with its own identity (LIFECYCLE_FUNCTIONS=signup): it makes
// no Graph call and reads no product state, so its identity is granted nothing but its own host storage.
var signupSettings = {
  LIFECYCLE_FUNCTIONS: 'signup'
  LIFECYCLE_ENVIRONMENT: 'azure'
  LIFECYCLE_DESIRED_STATE: desiredStatePath
  LIFECYCLE_LOG_FORMAT: 'json'
  LIFECYCLE_LOG_LEVEL: logLevel
  LIFECYCLE_SIGNUP_TENANT_ID: signupTenantId
  LIFECYCLE_SIGNUP_AUDIENCES: signupAudiences
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    workspaceName: '${baseName}-log-${take(token, 6)}'
    appInsightsName: '${baseName}-appi-${take(token, 6)}'
    retentionInDays: logRetentionDays
  }
}

module auditStream 'modules/auditstream.bicep' = {
  name: 'auditstream'
  params: {
    location: location
    tags: allTags
    namePrefix: baseName
    workspaceName: monitoring.outputs.workspaceName
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: allTags
    accountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    reportsContainerName: reportsContainerName
    skuName: storageSku
    softDeleteDays: storageSoftDeleteDays
  }
}

module reportReaders 'modules/rbac-reports.bicep' = {
  name: 'rbac-reports'
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.reportsContainerName
    readerPrincipalIds: reportReaderPrincipalIds
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    queuePrefix: queuePrefix
    location: location
    tags: allTags
    namespaceName: '${baseName}-sb-${take(token, 6)}'
    skuName: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: allTags
    planName: '${baseName}-plan-${take(token, 6)}'
    appName: functionAppName
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    appInsightsConnectionString: monitoring.outputs.connectionString
    productSettings: union(productSettings, triggerSettings, jobsSecretReferences)
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpAlwaysReady: 0
  }
}

module signupStorage 'modules/storage.bicep' = {
  name: 'signup-storage'
  params: {
    location: location
    tags: allTags
    accountName: signupStorageAccountName
    deploymentContainerName: deploymentContainerName
    skuName: storageSku
    softDeleteDays: storageSoftDeleteDays
  }
}

module signupApp 'modules/functionapp.bicep' = {
  name: 'signup-functionapp'
  params: {
    location: location
    tags: allTags
    planName: '${baseName}-signup-plan-${take(token, 6)}'
    appName: signupAppName
    storageAccountName: signupStorage.outputs.name
    storageBlobEndpoint: signupStorage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    productSettings: union(
      signupSettings,
      empty(signupBasicUsername) ? {} : { LIFECYCLE_SIGNUP_BASIC_USERNAME: signupBasicUsername },
      signupSecretReferences
    )
    instanceMemoryMB: 512
    maximumInstanceCount: maximumInstanceCount
    httpAlwaysReady: httpAlwaysReady
  }
}

module jobsVault 'modules/keyvault.bicep' = {
  name: 'jobs-keyvault'
  params: {
    location: location
    tags: allTags
    vaultName: jobsVaultName
    tenantId: tenantId
    readerPrincipalId: functionApp.outputs.principalId
    officersPrincipalId: operatorsGroupId
  }
}

module signupVault 'modules/keyvault.bicep' = {
  name: 'signup-keyvault'
  params: {
    location: location
    tags: allTags
    vaultName: signupVaultName
    tenantId: tenantId
    readerPrincipalId: signupApp.outputs.principalId
    officersPrincipalId: operatorsGroupId
  }
}

module signupRbac 'modules/rbac-signup.bicep' = {
  name: 'signup-rbac'
  params: {
    principalId: signupApp.outputs.principalId
    storageAccountName: signupStorage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// The jobs app's timer functions (lifecycle/jobs.py): a failed execution of any of them pages on-call.
var timerFunctions = [
  'hold_release'
  'guest_sweep'
  'policy_drift'
  'governance'
  'redemption_reset'
  'guest_report'
]

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: allTags
    namePrefix: baseName
    existingActionGroupId: alertActionGroupId
    alertEmailAddresses: alertEmailAddresses
    appInsightsId: monitoring.outputs.appInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
    timerFunctions: timerFunctions
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    queuePrefix: queuePrefix
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    dataCollectionRuleName: auditStream.outputs.ruleName
  }
}

module operatorsRbac 'modules/rbac-operators.bicep' = if (!empty(operatorsGroupId)) {
  name: 'rbac-operators'
  params: {
    operatorsGroupId: operatorsGroupId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    tablePrefix: tablePrefix
    queuePrefix: queuePrefix
  }
}

module auditRules 'modules/auditrules.bicep' = {
  name: 'auditrules'
  params: {
    location: location
    tags: allTags
    namePrefix: baseName
    workspaceName: monitoring.outputs.workspaceName
    actionGroupId: alerts.outputs.actionGroupId
    productPrincipalId: functionApp.outputs.principalId
    entraAuditLogsInWorkspace: entraAuditLogsInWorkspace
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppPrincipalId string = functionApp.outputs.principalId
output functionAppHostName string = functionApp.outputs.defaultHostName
output storageAccountName string = storage.outputs.name
output tablesEndpoint string = storage.outputs.tablesEndpoint
output reportsUrl string = '${storage.outputs.blobEndpoint}${storage.outputs.reportsContainerName}/latest.html'
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output appInsightsName string = monitoring.outputs.appInsightsName
output alertActionGroupId string = alerts.outputs.actionGroupId
output signupAppName string = signupApp.outputs.name
output signupAppPrincipalId string = signupApp.outputs.principalId
output signupAppHostName string = signupApp.outputs.defaultHostName
output jobsKeyVaultName string = jobsVault.outputs.name
output signupKeyVaultName string = signupVault.outputs.name
