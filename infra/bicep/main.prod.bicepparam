using './main.bicep'

param environmentName = 'prod'
param authIssuer = 'https://login.microsoftonline.com/<entra-tenant-id>/v2.0'
param authAudience = 'api://abonno-merchant'
param authJwksUrl = 'https://login.microsoftonline.com/<entra-tenant-id>/discovery/v2.0/keys'
param vippsUrl = 'https://api.vipps.no'
param swedbankPayUrl = 'https://api.payex.com'
// Subscribers sign in with Entra External ID (or Azure AD B2C: issuer https://<t>.b2clogin.com/<tenant-id>/v2.0/,
// authority https://<t>.b2clogin.com/<t>.onmicrosoft.com/<policy>); one entry per tenant or "*" for all
param subscriberIdentityProviders = {
  '*': {
    issuer: 'https://<external-id-tenant-id>.ciamlogin.com/<external-id-tenant-id>/v2.0'
    audience: '<self-service-api-client-id>'
    jwks_url: 'https://<external-id-tenant>.ciamlogin.com/<external-id-tenant-id>/discovery/v2.0/keys'
    authority: 'https://<external-id-tenant>.ciamlogin.com/'
    client_id: '<my-page-client-id>'
    scope: 'api://<self-service-api-client-id>/access'
    graph_tenant: '<external-id-tenant-id>'
  }
}
