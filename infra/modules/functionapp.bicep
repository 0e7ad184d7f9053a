// The Flex Consumption (FC1) plan and the Python function app, with a system-assigned managed identity
// and identity-based connections only: no storage keys, no Service Bus SAS, no connection strings.

param location string
param tags object
param planName string
param appName string
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
@description('Service Bus namespace of the triggers and senders; empty for an app without Service Bus (the sign-up connector).')
param serviceBusFullyQualifiedNamespace string = ''
param appInsightsConnectionString string

@description('Product settings (LIFECYCLE_*), merged over the platform settings below.')
param productSettings object

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Always-ready instances for the HTTP functions (the sign-up connector must answer within the API connector timeout, which a cold start can exceed).')
@minValue(0)
@maxValue(10)
param httpAlwaysReady int

var serviceBusSettings = {
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
}

var httpAlwaysReadyInstances = [
  {
    name: 'http'
    instanceCount: httpAlwaysReady
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is available only in some regions; turn it on per region when deploying there (infra/README.md).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the sign-up API connector is called by Entra ID over the internet, so the app must stay reachable; every HTTP function checks the caller's Entra token.
  // checkov:skip=CKV_AZURE_17: callers authenticate with Entra bearer tokens, not client certificates.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per function; the HTTP group keeps warm instances through alwaysReady (parameter httpAlwaysReady), which this check does not read.
  // checkov:skip=CKV_AZURE_213: health check removes unhealthy instances from an HTTP load balancer; timer and Service Bus functions are not load-balanced and Flex replaces failed instances itself.
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: httpAlwaysReady > 0 ? httpAlwaysReadyInstances : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and friends as app settings: the runtime lives in
// functionAppConfig above. The Application Insights connection string only locates the ingestion
// endpoint; with local auth disabled on the component it is useless without the app's Entra token.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // The checks below are written for the 'web' site config; this resource is the 'appsettings' config.
  // checkov:skip=CKV_AZURE_13: App Service Authentication is not used: the HTTP functions validate the caller's Entra token themselves.
  // checkov:skip=CKV_AZURE_63: web server HTTP logs do not exist on Flex Consumption; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_65: detailed error pages are a web server feature; errors are traced in Application Insights.
  // checkov:skip=CKV_AZURE_66: failed request tracing is a web server feature; failures are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: the app runs Python 3.11, not .NET.
  // checkov:skip=CKV_AZURE_88: Flex Consumption has no content file share; the package comes from the blob deployment container.
  // checkov:skip=CKV_AZURE_222: not a network setting; public access of the app is covered on the site resource.
  parent: app
  name: 'appsettings'
  properties: union(productSettings, empty(serviceBusFullyQualifiedNamespace) ? {} : serviceBusSettings, {
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  })
}

output name string = app.name
output principalId string = app.identity.principalId
output defaultHostName string = app.properties.defaultHostName
