"""The outer ring: the composition roots (jobs and sign-up), the command line, the demo. The only package that
may import everything; the core (lifecycle/) imports none of it."""
