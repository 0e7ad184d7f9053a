"""The names policy drift gives the objects it plans, as plans, reports and the audit trail show them."""

POLICY = "crossTenantAccessPolicy"
DEFAULT = "crossTenantAccessPolicy/default"
PARTNERS = "crossTenantAccessPolicy/partners"
AUTHORIZATION = "authorizationPolicy"
DOMAIN_LIST = "b2bManagementPolicies"
FEDERATION = "directory/federationConfigurations"
