"""What the guest-posture report shows beyond counts: each guest with the rule that will act on it next, the
night's job outcomes, drift by partner name, deep links into the admin center, and where the daily copy goes.

lifecycle.report assembles the report from these parts; lifecycle.reporting.entry is its timer job.
"""
