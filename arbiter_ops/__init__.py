"""arbiter-ops: deployment operations for Arbiter AI on AWS ECS Fargate."""

__version__ = "0.1.0"
