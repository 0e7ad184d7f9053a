// The Service Bus namespace and the product's queues. Queue names and properties come from
// infra/queues.json, the one place the tests and the docs read them from (see infra/README.md for
// why each property has its value).

param location string
param tags object
param namespaceName string

@allowed([
  'Standard'
  'Premium'
])
param skuName string

@description('Messaging units; used only with the Premium tier.')
@allowed([
  1
  2
  4
  8
  16
])
param premiumCapacity int

@description('Prefix of every product queue name (LIFECYCLE_QUEUE_PREFIX), so two deployments can share a namespace.')
param queuePrefix string = ''

var queueConfig = loadJsonContent('../queues.json')

resource busNamespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: skuName == 'Premium' ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for queue in queueConfig.queues: {
    parent: busNamespace
    name: '${queuePrefix}${queue.name}'
    properties: queueConfig.properties
  }
]

output name string = busNamespace.name
output id string = busNamespace.id
// serviceBusEndpoint looks like https://<name>.servicebus.windows.net:443/ (the suffix differs per cloud).
output fullyQualifiedNamespace string = split(split(busNamespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
