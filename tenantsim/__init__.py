"""tenantsim: a loopback simulator of a Microsoft Entra tenant's Graph API, for tests and local runs."""
