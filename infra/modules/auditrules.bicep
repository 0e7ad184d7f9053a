// Analytics rules and the workbook over the audit stream (GuestLifecycleAudit_CL, modules/auditstream.bicep)
// and, where the workspace receives them, Entra's own AuditLogs. Listed in infra/README.md ("Audit stream").

param location string
param tags object
param namePrefix string
param workspaceName string
param actionGroupId string

@description('Object id of the jobs app\'s identity: its own changes in Entra\'s AuditLogs are not alerted on.')
param productPrincipalId string

@description('True when the workspace receives Entra\'s AuditLogs (a diagnostic setting of the tenant sending AuditLogs here): the two rules that read them are deployed only then.')
param entraAuditLogsInWorkspace bool = false

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

// The product's audit rows for a tripped brake (lifecycle/sweep/runner.py, lifecycle/reset/runs.py).
var brakeQuery = '''
GuestLifecycleAudit_CL
| where Action in ("sweep.braked", "redemption-reset.braked")
| project TimeGenerated, Action, RunId, Reason
'''

// A guest the sweep disabled ("guest.disabled" in the audit stream) enabled again in Entra by anyone but
// the product's identity: "Update user" setting AccountEnabled to true.
var reEnabledQuery = '''
let disabled = GuestLifecycleAudit_CL
    | where TimeGenerated > ago(90d)
    | where Action == "guest.disabled"
    | summarize disabledAt = max(TimeGenerated) by Target;
AuditLogs
| where OperationName == "Update user"
| where tostring(InitiatedBy.app.servicePrincipalId) != "PRODUCT_PRINCIPAL_ID"
| mv-expand resource = TargetResources
| mv-expand property = resource.modifiedProperties
| where tostring(property.displayName) == "AccountEnabled" and tostring(property.newValue) has "true"
| extend Target = tostring(resource.id), enabledAt = TimeGenerated
| extend enabledBy = coalesce(tostring(InitiatedBy.user.userPrincipalName), tostring(InitiatedBy.app.displayName))
| join kind=inner disabled on Target
| where enabledAt > disabledAt
| project enabledAt, Target, enabledBy, disabledAt
'''

// The cross-tenant access default changed in Entra by anyone but the product's identity (the product's
// own changes are its policy-drift rows on crossTenantAccessPolicy/default).
var crossTenantDefaultQuery = '''
AuditLogs
| where Category == "CrossTenantAccessSettings"
| where OperationName has "default"
| where tostring(InitiatedBy.app.servicePrincipalId) != "PRODUCT_PRINCIPAL_ID"
| extend changedBy = coalesce(tostring(InitiatedBy.user.userPrincipalName), tostring(InitiatedBy.app.displayName))
| project TimeGenerated, OperationName, changedBy, Result, TargetResources
'''

var alwaysRules = [
  {
    key: 'audit-brake-tripped'
    description: 'The audit stream recorded a braked sweep or redemption reset run.'
    query: brakeQuery
  }
]

var entraRules = [
  {
    key: 'guest-re-enabled'
    description: 'A guest the sweep disabled was enabled again in Entra by someone other than the product.'
    query: replace(reEnabledQuery, 'PRODUCT_PRINCIPAL_ID', productPrincipalId)
  }
  {
    key: 'cross-tenant-default-changed'
    description: 'The cross-tenant access default settings were changed by someone other than the product.'
    query: replace(crossTenantDefaultQuery, 'PRODUCT_PRINCIPAL_ID', productPrincipalId)
  }
]

var auditRules = concat(alwaysRules, entraAuditLogsInWorkspace ? entraRules : [])

resource auditRuleSet 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for auditRule in auditRules: {
    name: '${namePrefix}-${auditRule.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: '${namePrefix} ${auditRule.key}'
      description: auditRule.description
      severity: 2
      enabled: true
      scopes: [
        workspace.id
      ]
      evaluationFrequency: 'PT15M'
      windowSize: 'PT15M'
      autoMitigate: false
      // The custom table is created in the same deployment and has no row yet when the rule is validated.
      skipQueryValidation: true
      criteria: {
        allOf: [
          {
            query: auditRule.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroupId
        ]
      }
    }
  }
]

// The audit workbook (infra/workbooks/audit.workbook.json, a gallery template's serialized data).
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'audit-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: '${namePrefix} guest lifecycle audit'
    category: 'workbook'
    sourceId: workspace.id
    serializedData: string(loadJsonContent('../workbooks/audit.workbook.json'))
  }
}
