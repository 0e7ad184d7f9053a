"""Everything that talks to Microsoft Graph: client construction, typed operations, error mapping."""
