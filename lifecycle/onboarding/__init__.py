"""Onboarding: the onboarding queue's tickets (handler routes each kind), the policy checks, the invitation and
access package steps, the guest tickets (extend, offboard), holds, bulk CSV and submission."""
