// What pages the on-call engineer: an action group (or the deployment's existing one) and the alert rules
// on the Service Bus namespace and on Application Insights. Each rule and its query is listed in
// infra/README.md ("Alerts"); tests/unit/test_infra.py checks the queries against the product's log events.

param location string
param tags object
param namePrefix string

@description('Resource id of an existing action group to notify; empty creates one from alertEmailAddresses.')
param existingActionGroupId string = ''

@description('Email receivers of the created action group (ignored when existingActionGroupId is set).')
param alertEmailAddresses array = []

param appInsightsId string
param serviceBusNamespaceId string

@description('The jobs app\'s timer functions (lifecycle/jobs.py): a failed execution of any of them pages.')
param timerFunctions array

// --- who is told ---------------------------------------------------------------------------------------

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (empty(existingActionGroupId)) {
  name: '${namePrefix}-oncall-ag'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: take(namePrefix, 12)
    enabled: true
    emailReceivers: [
      for (address, index) in alertEmailAddresses: {
        name: 'oncall-${index}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroupId = empty(existingActionGroupId) ? actionGroup.id : existingActionGroupId

// --- dead letters --------------------------------------------------------------------------------------

// DeadletteredMessages is the namespace's per-entity gauge (dimension EntityName): split per queue, any
// message parked in a dead-letter queue raises one alert for that queue until an operator replays or purges.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages are in a product queue\'s dead-letter queue: python -m lifecycle failed, then replay or purge.'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    targetResourceType: 'Microsoft.ServiceBus/namespaces'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLettersPresent'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

// --- log alerts on Application Insights (classic table names: the rules are scoped to the component) ----

// The product logs structlog JSON through stdlib logging: each trace's message is one JSON object whose
// "event" names what happened (config/logging.py).
var brakeQuery = '''
traces
| where message has "braked"
| extend entry = parse_json(message)
| extend event = tostring(entry.event), reason = tostring(entry.reason)
| where event in ("sweep.braked", "reset.braked")
| project timestamp, event, reason, cloud_RoleName
'''

var failedJobQuery = '''
requests
| where operation_Name in (TIMER_FUNCTIONS)
| where success == false
| project timestamp, operation_Name, resultCode, cloud_RoleName
'''

// A heartbeat, not an error count: it fires when the nightly sweep has no successful execution in the last
// 26 hours (a missed schedule, a stopped app or a run that failed every time), which no failure alert sees.
var sweepHeartbeatQuery = '''
requests
| where timestamp > ago(26h)
| where operation_Name == "guest_sweep" and success == true
| summarize successfulRuns = count()
'''

// Graph's 403 reaches the logs as PermissionDeniedError, whose message carries Graph's error code
// (graph/errors.py), in the traces of the unhandled-message log and in the exceptions of a failed function.
var graphDeniedQuery = '''
union
    (traces | project timestamp, text = message, cloud_RoleName),
    (exceptions | project timestamp, text = strcat(type, " ", outerMessage, " ", innermostMessage), cloud_RoleName)
| where text has "Authorization_RequestDenied" or text has "PermissionDeniedError"
| project timestamp, text, cloud_RoleName
'''

var timerFunctionList = '"${join(timerFunctions, '", "')}"'

var logAlerts = [
  {
    key: 'deletion-brake'
    description: 'A sweep or redemption reset run tripped its deletion brake and waits for an operator: python -m lifecycle approve RUN_ID after review.'
    severity: 1
    frequency: 'PT15M'
    window: 'PT15M'
    query: brakeQuery
    operator: 'GreaterThan'
    threshold: 0
    aggregation: 'Count'
    measure: ''
  }
  {
    key: 'job-failed'
    description: 'A scheduled job execution failed: python -m lifecycle status and the function\'s exceptions.'
    severity: 2
    frequency: 'PT15M'
    window: 'PT15M'
    query: replace(failedJobQuery, 'TIMER_FUNCTIONS', timerFunctionList)
    operator: 'GreaterThan'
    threshold: 0
    aggregation: 'Count'
    measure: ''
  }
  {
    key: 'sweep-missed'
    description: 'No successful guest_sweep execution in 26 hours: the nightly sweep did not run or failed every time.'
    severity: 1
    frequency: 'PT1H'
    window: 'P2D'
    query: sweepHeartbeatQuery
    operator: 'LessThan'
    threshold: 1
    aggregation: 'Total'
    measure: 'successfulRuns'
  }
  {
    key: 'graph-permission-denied'
    description: 'Graph answered 403 Authorization_RequestDenied: a permission is missing (infra/grant-graph-permissions, python -m lifecycle doctor).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT15M'
    query: graphDeniedQuery
    operator: 'GreaterThan'
    threshold: 0
    aggregation: 'Count'
    measure: ''
  }
]

resource logAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logAlerts: {
    name: '${namePrefix}-${rule.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: '${namePrefix} ${rule.key}'
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        appInsightsId
      ]
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      autoMitigate: false
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.aggregation
            metricMeasureColumn: empty(rule.measure) ? null : rule.measure
            operator: rule.operator
            threshold: rule.threshold
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

output actionGroupId string = actionGroupId
