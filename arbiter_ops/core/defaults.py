"""The built-in configuration: the AWS deployment guide's values (Steps 1, 3b, 3c and "Frontend Environment") and the
real app's (gndumbri/arbiter-ai), so that no `arbiter-ops.toml` is needed. `config.py` deep-merges a user's file
over these and validates the result.
"""

from __future__ import annotations

from typing import Any

LOCAL_ACCOUNT_ID = "123456789012"  # the sandbox's account (moto's default)

NODE_HEALTH_CHECK = (
    "node -e \"fetch('http://localhost:{port}{path}').then((r)=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))\""
)


def builtin_defaults() -> dict[str, Any]:
    """The guide's values (Steps 1, 3b, 3c and "Frontend Environment")."""
    backend_env = {
        "APP_MODE": "{app_mode}",
        "APP_ENV": "{app_env}",
        "AWS_REGION": "{region}",
        "LLM_PROVIDER": "bedrock",
        "EMBEDDING_PROVIDER": "bedrock",
        "VECTOR_STORE_PROVIDER": "pgvector",
        "RERANKER_PROVIDER": "flashrank",
        "TRUSTED_PROXY_HOPS": "1",
        "LOG_LEVEL": "INFO",
    }
    # Step 3c's five, plus what Step 1d stores and the go-live checklist requires. Never PINECONE_API_KEY.
    backend_secrets = {
        name: name
        for name in (
            "DATABASE_URL",
            "REDIS_URL",
            "NEXTAUTH_SECRET",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "STRIPE_PRICE_ID",
            "ALLOWED_ORIGINS",
            "APP_BASE_URL",
        )
    }
    return {
        "environments": {
            "local": {
                "app_mode": "sandbox",
                "app_env": "development",
                "account_id": LOCAL_ACCOUNT_ID,
                "base_url": "http://localhost:3000",
            },
            "sandbox": {
                "app_mode": "sandbox",
                "app_env": "development",
                "base_url": "https://sandbox.arbiter-ai.com",
            },
            "staging": {"app_mode": "sandbox", "app_env": "staging", "base_url": "https://staging.arbiter-ai.com"},
            "production": {
                "app_mode": "production",
                "app_env": "production",
                "base_url": "https://arbiter-ai.com",
            },
        },
        "services": {
            "backend": {
                "family": "arbiter-backend",
                "container": "backend",
                "ecs_service": "backend",
                "ecr_repository": "arbiter-ai/backend",
                "template": "backend-task-definition.json.j2",
                "cpu": 512,
                "memory": 1024,
                "port": 8000,
                "health_check_path": "/health",
                "desired_count": 2,
                "context": "./backend",
                "environment": backend_env,
                "secrets": backend_secrets,
                "required": [
                    "NEXTAUTH_SECRET",
                    "STRIPE_SECRET_KEY",
                    "STRIPE_WEBHOOK_SECRET",
                    "DATABASE_URL",
                    "REDIS_URL",
                ],
            },
            "frontend": {
                "family": "arbiter-frontend",
                "container": "frontend",
                "ecs_service": "frontend",
                "ecr_repository": "arbiter-ai/frontend",
                "template": "frontend-task-definition.json.j2",
                "cpu": 256,
                "memory": 512,
                "port": 3000,
                "health_check_path": "/",
                "health_check_command": NODE_HEALTH_CHECK,
                "desired_count": 2,
                "context": "./frontend",
                "environment": {"AUTH_TRUST_HOST": "true", "NEXTAUTH_URL": "{base_url}", "NODE_ENV": "production"},
                # AUTH_SECRET must equal the backend's NEXTAUTH_SECRET: same key. The frontend's DATABASE_URL
                # is a plain postgresql:// URL (a Node driver cannot use the asyncpg form).
                "secrets": {"AUTH_SECRET": "NEXTAUTH_SECRET", "DATABASE_URL": "FRONTEND_DATABASE_URL"},
                "required": ["AUTH_SECRET", "DATABASE_URL"],
            },
        },
    }
