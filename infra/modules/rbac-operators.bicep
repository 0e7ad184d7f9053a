// The on-call operators' own roles (README, "Production runbook"): they read the product's state and queues
// with their az login and change the tenant only through the jobs app's admin endpoint, so no role here
// reaches Graph or writes more than the one table the read-only commands update.

@description('Object id of the Entra group of on-call operators.')
param operatorsGroupId string
param storageAccountName string
param serviceBusNamespaceName string

@description('Prefix of the product table names (LIFECYCLE_TABLE_PREFIX).')
param tablePrefix string

@description('Prefix of the product queue names (LIFECYCLE_QUEUE_PREFIX).')
param queuePrefix string = ''

var roles = {
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

// The work items table, declared so a role can be scoped to it (the app creates the rest on first use and
// finds this one already there). status and failed record on it the dead letters Service Bus made.
resource workItems 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: '${tablePrefix}workitems'
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource tableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, operatorsGroupId, roles.storageTableDataReader)
  scope: storage
  properties: {
    principalId: operatorsGroupId
    principalType: 'Group'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
  }
}

resource workItemsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workItems.id, operatorsGroupId, roles.storageTableDataContributor)
  scope: workItems
  properties: {
    principalId: operatorsGroupId
    principalType: 'Group'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Peeking dead letters and reading queue counts on the queues the product consumes; sending tickets to the
// onboarding queue as a ticketing system does (every ticket still passes the app's checks).
var queueConfig = loadJsonContent('../queues.json')
var peekedQueues = filter(queueConfig.queues, queue => queue.name != 'sponsor-notices')

resource consumedQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [
  for queue in peekedQueues: {
    parent: serviceBus
    name: '${queuePrefix}${queue.name}'
  }
]

resource queueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in peekedQueues: {
    name: guid(consumedQueues[i].id, operatorsGroupId, roles.serviceBusDataReceiver)
    scope: consumedQueues[i]
    properties: {
      principalId: operatorsGroupId
      principalType: 'Group'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    }
  }
]

resource onboardingQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: '${queuePrefix}onboarding'
}

resource ticketSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(onboardingQueue.id, operatorsGroupId, roles.serviceBusDataSender)
  scope: onboardingQueue
  properties: {
    principalId: operatorsGroupId
    principalType: 'Group'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}
