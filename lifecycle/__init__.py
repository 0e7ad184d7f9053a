"""The core of the guest lifecycle product: models, rules, planners and handlers.

Nothing in this package (outside ``adapters`` and ``app.bootstrap``) imports an Azure or
Microsoft Graph SDK; it talks to the ports in ``lifecycle.ports``.
"""
