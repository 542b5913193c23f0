"""The embedded sandbox behind `--env local`: AWS (moto + an ECS overlay), Stripe and the Arbiter API.

Nothing here is imported by the CLI unless the local environment is used.
"""
