"""The guest expiry sweep: plan (rules per guest), brake, fan out, and re-checked actions per guest."""
