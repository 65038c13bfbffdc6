// Abonno on Azure: a Flex Consumption function app that reaches storage and Service Bus
// with a user-assigned managed identity and role assignments, never with keys.
//
//   az group create -n rg-abonno-prod -l norwayeast
//   az deployment group create -g rg-abonno-prod -f infra/bicep/main.bicep \
//     -p environmentName=prod authIssuer=... authAudience=... authJwksUrl=...
//
// Names are deterministic (uniqueString of the resource group and environment), so a
// redeployment updates the same resources.

targetScope = 'resourceGroup'

@description('Short environment name (prod, test); part of every resource name')
@minLength(1)
@maxLength(12)
param environmentName string

param location string = resourceGroup().location

@description('Merchant API token issuer (Entra ID or B2C), e.g. https://login.microsoftonline.com/<tenant>/v2.0')
param authIssuer string

@description('Merchant API audience (the app registration\'s application ID URI or client id)')
param authAudience string

@description('The issuer\'s JWKS URL (its keys endpoint)')
param authJwksUrl string

@description('Token claim that carries the Abonno tenant id')
param authTenantClaim string = 'abonno_tenant'

@description('Upper bound of instances the invoice run may scale to')
param maximumInstanceCount int = 100

@description('Put Azure Front Door (Standard) with a WAF policy in front of the app: the global per-client rate limit and body size rule for the public sales poster')
param publicEdge bool = true

@description('Sales poster requests per client IP per minute at the edge (WAF rate-limit rule)')
param salesPosterRequestsPerMinute int = 60

@description('Per-instance token bucket of the sales poster in the app: "{burst}/{seconds}", 0 = off (README)')
param publicRateLimit string = '60/60'

@description('The app\'s public base URL (provider redirects, callbacks, webhooks); empty = the Front Door endpoint, or the app\'s own host without it')
param publicUrl string = ''

@description('Vipps MobilePay API base URL: https://apitest.vipps.no (test) or https://api.vipps.no (production)')
param vippsUrl string = 'https://apitest.vipps.no'

@description('Swedbank Pay API base URL: https://api.externalintegration.payex.com (test) or https://api.payex.com (production)')
param swedbankPayUrl string = 'https://api.externalintegration.payex.com'

@description('Subscribers\' identity providers per tenant (docs/identity.md): tenant id (or "*", with {tenant} substituted) -> {issuer, audience, jwks_url} of its Azure AD B2C or Entra External ID, and My page\'s sign-in: {authority, client_id, scope, graph_tenant}')
param subscriberIdentityProviders object = {}

var token = toLower(uniqueString(resourceGroup().id, environmentName))
var appName = 'func-abonno-${environmentName}-${token}'
var deploymentContainer = 'app-package-${take(token, 10)}'
var tags = { application: 'abonno', environment: environmentName }

// Built-in role definitions (ids are the same in every tenant)
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-abonno-${environmentName}-${token}'
  location: location
  tags: tags
}

// One account: Tables hold all billing state (one partition per subscriber), Blob the
// bank files and the deployment package, Queues the Functions host's own bookkeeping.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stabonno${take(token, 13)}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
  }
  resource blobs 'blobServices' = {
    name: 'default'
    resource package 'containers' = { name: deploymentContainer }
    resource inbound 'containers' = { name: 'inbound' }
    resource rejected 'containers' = { name: 'rejected' }
  }
}

// Service Bus Standard: per-subscriber-batch work and outbox events. Duplicate
// detection drops a re-sent outbox message (message id = event id).
resource bus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: 'sb-abonno-${environmentName}-${token}'
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: { disableLocalAuth: true, minimumTlsVersion: '1.2' }
  resource billingWork 'queues' = {
    name: 'run-work'
    properties: {
      lockDuration: 'PT5M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'PT1H'
      deadLetteringOnMessageExpiration: true
    }
  }
  resource events 'queues' = {
    name: 'abonno-events'
    properties: {
      lockDuration: 'PT1M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'P7D'
      deadLetteringOnMessageExpiration: true
    }
  }
  // reminders and "payment stop in N days" notices for notification_worker (D3)
  resource notices 'queues' = {
    name: 'notices'
    properties: {
      lockDuration: 'PT1M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'P7D'
      deadLetteringOnMessageExpiration: true
    }
  }
  // renewal charges to create at Vipps / Swedbank Pay (charges_worker, from the outbox)
  resource charges 'queues' = {
    name: 'charges'
    properties: {
      lockDuration: 'PT2M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'P7D'
      deadLetteringOnMessageExpiration: true
    }
  }
  // AccessChanged from the outbox of subscribers with logins or IP ranges: access_worker
  // recomputes their access rows and site entries (M1, docs/access.md)
  resource access 'queues' = {
    name: 'access'
    properties: {
      lockDuration: 'PT1M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'P7D'
      deadLetteringOnMessageExpiration: true
    }
  }
  // webhook and callback signals (vipps_webhook, swedbankpay_callback -> provider_worker);
  // the message id is the event's identity, so a redelivered webhook is dropped
  resource providerEvents 'queues' = {
    name: 'provider-events'
    properties: {
      lockDuration: 'PT1M'
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'P7D'
      deadLetteringOnMessageExpiration: true
    }
  }
}

// The payment providers' credentials (per tenant, JSON; README "Payment rails"): secrets in
// Key Vault, which the app settings reference and the app reads with its identity. The
// secrets are set by an operator (never in a template or a parameter file):
//   az keyvault secret set --vault-name <vault> --name vipps-credentials --file vipps.json
//   az keyvault secret set --vault-name <vault> --name swedbankpay-credentials --file swedbankpay.json
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-abn-${take(environmentName, 5)}-${take(token, 10)}' // at most 24 characters
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

var vippsCredentialsSecret = 'vipps-credentials'
var swedbankPayCredentialsSecret = 'swedbankpay-credentials'
// My page's client secret per tenant and the API connector's HTTP Basic credentials per
// tenant (JSON, docs/identity.md, docs/access.md), set by an operator like the providers':
//   az keyvault secret set --vault-name <vault> --name mypage-client-secret --file mypage.json
//   az keyvault secret set --vault-name <vault> --name connector-credentials --file connector.json
var myPageClientSecret = 'mypage-client-secret'
var connectorCredentialsSecret = 'connector-credentials'
var edgeUrl = publicEdge ? 'https://${edgeEndpoint.properties.hostName}' : ''
var appUrl = !empty(publicUrl) ? publicUrl : (publicEdge ? edgeUrl : 'https://${app.properties.defaultHostName}')

// Blob events for ocr_blob_trigger (Event Grid is the only blob trigger source on Flex
// Consumption). The subscription to the function's webhook needs the app's
// blobs_extension key, which exists after the first code deployment: see README.
resource blobEvents 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: 'evgt-abonno-${environmentName}-${token}'
  location: location
  tags: tags
  properties: { source: storage.id, topicType: 'Microsoft.Storage.StorageAccounts' }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-abonno-${environmentName}-${token}'
  location: location
  tags: tags
  properties: { retentionInDays: 30, sku: { name: 'PerGB2018' } }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-abonno-${environmentName}-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: { Application_Type: 'web', WorkspaceResourceId: logs.id, DisableLocalAuth: true }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-abonno-${environmentName}-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identity.id}': {} } }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id // Key Vault references resolved with the app's own identity
    siteConfig: { minTlsVersion: '1.2' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id }
        }
      }
      scaleAndConcurrency: { instanceMemoryMB: 2048, maximumInstanceCount: maximumInstanceCount }
      runtime: { name: 'python', version: '3.11' }
    }
  }
  resource settings 'config' = {
    name: 'appsettings'
    properties: {
      AzureWebJobsStorage__accountName: storage.name
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      ServiceBusConnection__fullyQualifiedNamespace: '${bus.name}.servicebus.windows.net'
      ServiceBusConnection__credential: 'managedidentity'
      ServiceBusConnection__clientId: identity.properties.clientId
      AZURE_CLIENT_ID: identity.properties.clientId // DefaultAzureCredential in shared/bootstrap.py
      APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
      AUTH_ISSUER: authIssuer
      AUTH_AUDIENCE: authAudience
      AUTH_JWKS_URL: authJwksUrl
      AUTH_TENANT_CLAIM: authTenantClaim
      ABONNO_PUBLIC_RATE_LIMIT: publicRateLimit
      ABONNO_TRUST_FORWARDED_FOR: publicEdge ? 'true' : 'false' // Front Door puts the caller's address first
      ABONNO_PUBLIC_URL: appUrl // the payers' return pages and Swedbank Pay's callbacks are under it
      ABONNO_VIPPS_URL: vippsUrl
      ABONNO_VIPPS_CREDENTIALS: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${vippsCredentialsSecret})'
      ABONNO_SWEDBANKPAY_URL: swedbankPayUrl
      ABONNO_SWEDBANKPAY_CREDENTIALS: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${swedbankPayCredentialsSecret})'
      ABONNO_SUBSCRIBER_IDP: string(subscriberIdentityProviders) // issuers, audiences, JWKS and My page's client ids
      ABONNO_MYPAGE_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${myPageClientSecret})'
      ABONNO_CONNECTOR_CREDENTIALS: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${connectorCredentialsSecret})'
    }
    dependsOn: [vaultAccess] // the references resolve only once the identity may read the secrets
  }
}

var storageRoles = [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]

resource storageAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in storageRoles: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource busAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(bus.id, identity.id, roles.serviceBusDataOwner)
  scope: bus
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
  }
}

resource vaultAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource telemetryAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// The public edge: Front Door Standard with a WAF policy whose custom rules limit each
// client IP's rate on the sales poster (answered 429) and refuse bodies over 16 KiB by
// Content-Length, before a request
// reaches an instance. The app enforces both too (per instance; functions/salesposter_http).
resource edgeWaf 'Microsoft.Network/FrontDoorWebApplicationFirewallPolicies@2022-05-01' = if (publicEdge) {
  name: 'wafabonno${environmentName}${take(token, 8)}'
  location: 'Global'
  tags: tags
  sku: { name: 'Standard_AzureFrontDoor' }
  properties: {
    policySettings: {
      enabledState: 'Enabled'
      mode: 'Prevention'
      requestBodyCheck: 'Enabled'
      customBlockResponseStatusCode: 429 // what a rate-limited client is told (also for an oversized body)
    }
    customRules: {
      rules: [
        {
          name: 'SalesPosterRatePerClient'
          priority: 100
          enabledState: 'Enabled'
          ruleType: 'RateLimitRule'
          rateLimitDurationInMinutes: 1
          rateLimitThreshold: salesPosterRequestsPerMinute
          matchConditions: [
            {
              matchVariable: 'RequestUri'
              operator: 'Contains'
              negateCondition: false
              matchValue: [ '/api/salesposter/' ]
              transforms: [ 'Lowercase' ]
            }
          ]
          action: 'Block'
        }
        {
          name: 'SalesPosterBodySize'
          priority: 110
          enabledState: 'Enabled'
          ruleType: 'MatchRule'
          matchConditions: [
            {
              matchVariable: 'RequestUri'
              operator: 'Contains'
              negateCondition: false
              matchValue: [ '/api/salesposter/' ]
              transforms: [ 'Lowercase' ]
            }
            {
              matchVariable: 'RequestHeader'
              selector: 'Content-Length'
              operator: 'GreaterThan'
              negateCondition: false
              matchValue: [ '16384' ]
            }
          ]
          action: 'Block'
        }
      ]
    }
  }
}

resource edge 'Microsoft.Cdn/profiles@2023-05-01' = if (publicEdge) {
  name: 'afd-abonno-${environmentName}-${token}'
  location: 'global'
  tags: tags
  sku: { name: 'Standard_AzureFrontDoor' }
}

resource edgeEndpoint 'Microsoft.Cdn/profiles/afdEndpoints@2023-05-01' = if (publicEdge) {
  parent: edge
  name: 'abonno-${environmentName}-${take(token, 8)}'
  location: 'global'
  properties: { enabledState: 'Enabled' }
}

resource edgeOrigins 'Microsoft.Cdn/profiles/originGroups@2023-05-01' = if (publicEdge) {
  parent: edge
  name: 'functions'
  properties: {
    loadBalancingSettings: { sampleSize: 4, successfulSamplesRequired: 3, additionalLatencyInMilliseconds: 50 }
    healthProbeSettings: {
      probePath: '/api/openapi.json'
      probeRequestType: 'GET'
      probeProtocol: 'Https'
      probeIntervalInSeconds: 120
    }
  }
}

resource edgeOrigin 'Microsoft.Cdn/profiles/originGroups/origins@2023-05-01' = if (publicEdge) {
  parent: edgeOrigins
  name: 'function-app'
  properties: {
    hostName: app.properties.defaultHostName
    originHostHeader: app.properties.defaultHostName
    httpsPort: 443
    priority: 1
    weight: 1000
    enabledState: 'Enabled'
  }
}

resource edgeRoute 'Microsoft.Cdn/profiles/afdEndpoints/routes@2023-05-01' = if (publicEdge) {
  parent: edgeEndpoint
  name: 'api'
  dependsOn: [ edgeOrigin ]
  properties: {
    originGroup: { id: edgeOrigins.id }
    supportedProtocols: [ 'Https' ]
    patternsToMatch: [ '/api/*' ]
    forwardingProtocol: 'HttpsOnly'
    linkToDefaultDomain: 'Enabled'
    httpsRedirect: 'Disabled'
  }
}

resource edgeSecurity 'Microsoft.Cdn/profiles/securityPolicies@2023-05-01' = if (publicEdge) {
  parent: edge
  name: 'waf'
  properties: {
    parameters: {
      type: 'WebApplicationFirewall'
      wafPolicy: { id: edgeWaf.id }
      associations: [ { domains: [ { id: edgeEndpoint.id } ], patternsToMatch: [ '/*' ] } ]
    }
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output storageAccountName string = storage.name
output publicEndpoint string = publicEdge ? 'https://${edgeEndpoint.properties.hostName}' : ''
output serviceBusNamespace string = '${bus.name}.servicebus.windows.net'
output blobEventsTopic string = blobEvents.name
output keyVaultName string = vault.name
// Vipps' webhooks go to the app's own host, not through Front Door: the signature covers the
// Host header, which Front Door rewrites to the origin's (the function would refuse every one)
output vippsWebhookUrlTemplate string = 'https://${app.properties.defaultHostName}/api/vipps/{tenant}/webhook'
