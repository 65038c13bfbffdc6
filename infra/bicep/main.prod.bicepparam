using './main.bicep'

param environmentName = 'prod'
param authIssuer = 'https://login.microsoftonline.com/<entra-tenant-id>/v2.0'
param authAudience = 'api://abonno-merchant'
param authJwksUrl = 'https://login.microsoftonline.com/<entra-tenant-id>/discovery/v2.0/keys'
param vippsUrl = 'https://api.vipps.no'
param swedbankPayUrl = 'https://api.payex.com'
