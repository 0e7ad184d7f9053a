// The audit stream: every audit row the product writes to Table Storage also goes to the custom Log
// Analytics table GuestLifecycleAudit_CL through the Logs Ingestion API (adapters/audit_stream.py), with
// the jobs app's identity (Monitoring Metrics Publisher on the rule, modules/rbac.bicep). The rules and the
// workbook that read the table are in modules/auditrules.bicep. infra/README.md ("Audit stream").

param location string
param tags object
param namePrefix string
param workspaceName string

// The columns of one audit row (lifecycle.models.AuditEntry), as adapters/audit_stream.py sends them.
var auditColumns = [
  {
    name: 'TimeGenerated'
    type: 'datetime'
  }
  {
    name: 'Action'
    type: 'string'
  }
  {
    name: 'Target'
    type: 'string'
  }
  {
    name: 'Reason'
    type: 'string'
  }
  {
    name: 'Actor'
    type: 'string'
  }
  {
    name: 'Key'
    type: 'string'
  }
  {
    name: 'RunId'
    type: 'string'
  }
  {
    name: 'Details'
    type: 'dynamic'
  }
]

var tableName = 'GuestLifecycleAudit_CL'
var streamName = 'Custom-GuestLifecycleAudit'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource auditTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    schema: {
      name: tableName
      columns: auditColumns
    }
  }
}

resource endpoint 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = {
  name: '${namePrefix}-audit-dce'
  location: location
  tags: tags
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource rule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: '${namePrefix}-audit-dcr'
  location: location
  tags: tags
  properties: {
    dataCollectionEndpointId: endpoint.id
    streamDeclarations: {
      '${streamName}': {
        columns: auditColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'workspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${tableName}'
      }
    ]
  }
  dependsOn: [
    auditTable
  ]
}

output ruleName string = rule.name
output ingestionEndpoint string = endpoint.properties.logsIngestion.endpoint
output ruleImmutableId string = rule.properties.immutableId
output streamName string = streamName
output tableName string = tableName
