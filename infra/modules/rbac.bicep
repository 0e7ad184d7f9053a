// Data-plane role assignments for the function app's managed identity. Least privilege: no Owner, no
// Contributor, no key access. Names are deterministic (guid of scope, principal and role), so a redeploy
// updates rather than duplicates.

param principalId string
param storageAccountName string
param serviceBusNamespaceName string
param appInsightsName string

@description('The audit stream\'s data collection rule (modules/auditstream.bicep): the identity sends audit rows to it.')
param dataCollectionRuleName string

@description('Prefix of the product queue names (LIFECYCLE_QUEUE_PREFIX).')
param queuePrefix string = ''

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource auditRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

// The Flex host keeps timer leases and keys in blobs and pulls its deployment package from a blob
// container, both through AzureWebJobsStorage__* with this identity.
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// Product state: ledger, runs, checkpoints, audit trail. Account scope: the role carries table data actions
// only, and the product creates its tables on first use (create_table_if_not_exists), which a per-table
// scope would refuse.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Service Bus roles are scoped to each product queue, not the namespace: a queue or topic added to the
// namespace later (another app's) is not readable or writable by this identity. The identity sends to every
// product queue (the sweep's fan-out, rescheduled retries, the operations replay tool, sponsor notices) and
// receives from the queues it consumes (the triggers and the dead-letter inspection of the operations tool);
// sponsor-notices is read by the ticketing system, so this identity only sends to it.
var queueConfig = loadJsonContent('../queues.json')
var sendOnlyQueues = [
  'sponsor-notices'
]

resource productQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [
  for queue in queueConfig.queues: {
    parent: serviceBus
    name: '${queuePrefix}${queue.name}'
  }
]

resource serviceBusSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in queueConfig.queues: {
    name: guid(productQueues[i].id, principalId, roles.serviceBusDataSender)
    scope: productQueues[i]
    properties: {
      principalId: principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    }
  }
]

resource serviceBusReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in queueConfig.queues: if (!contains(sendOnlyQueues, queue.name)) {
    name: guid(productQueues[i].id, principalId, roles.serviceBusDataReceiver)
    scope: productQueues[i]
    properties: {
      principalId: principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    }
  }
]

// Telemetry ingestion with Entra ID, since the component has local auth disabled.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// The Logs Ingestion API authorizes a caller on the data collection rule it posts to: the audit stream.
resource auditStreamPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(auditRule.id, principalId, roles.monitoringMetricsPublisher)
  scope: auditRule
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
