"""Register-unless-identical and `render --diff`, against a moto server over HTTP."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import context

from arbiter_ops.core.context import Context
from arbiter_ops.core.output import Output
from arbiter_ops.ecs.api import register_unless_identical


def _ctx(env: str = "production") -> Context:
    return context(env, Output("text"))


def _rendered(cli, tag: str) -> dict:
    r = cli("render", "backend", "--env", "production", "--image-tag", tag)
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_register_only_when_different(aws_env, cli) -> None:
    ctx = _ctx()
    v1 = _rendered(cli, "v1")
    arn1, registered = register_unless_identical(ctx, v1)
    assert registered and arn1.endswith("arbiter-backend:1")
    again, registered = register_unless_identical(ctx, _rendered(cli, "v1"))
    assert (again, registered) == (arn1, False)
    arn2, registered = register_unless_identical(ctx, _rendered(cli, "v2"))
    assert registered and arn2.endswith("arbiter-backend:2")
    assert ctx.aws.counter.count("RegisterTaskDefinition") == 2
    revisions = boto3.client("ecs").list_task_definitions(familyPrefix="arbiter-backend")["taskDefinitionArns"]
    assert len(revisions) == 2


def test_render_diff_shows_only_the_changed_image(aws_env, cli) -> None:
    register_unless_identical(_ctx(), _rendered(cli, "v1"))
    r = cli("render", "backend", "--env", "production", "--image-tag", "v2", "--diff")
    assert r.code == 0, r.err
    changed = [
        line for line in r.err.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend"
    assert [c.replace(" ", "") for c in changed] == [f'-"image":"{image}:v1",', f'+"image":"{image}:v2",']
    assert json.loads(r.out)["family"] == "arbiter-backend"  # stdout stays the task definition


def test_render_diff_with_nothing_live(aws_env, cli) -> None:
    r = cli("render", "backend", "--env", "production", "--image-tag", "v2", "--diff")
    assert r.code == 0
    assert "(not registered)" in r.err


def test_default_image_tag_is_the_one_the_live_service_runs(aws_env, cli) -> None:
    ctx = _ctx()
    arn, _ = register_unless_identical(ctx, _rendered(cli, "live7"))
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="arbiter-ai")
    ecs.create_service(cluster="arbiter-ai", serviceName="backend", taskDefinition=arn, desiredCount=1)
    r = cli("render", "backend", "--env", "production")
    assert r.code == 0, r.err
    assert json.loads(r.out)["containerDefinitions"][0]["image"].endswith(":live7")


@pytest.mark.parametrize("env_var", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_no_credentials_is_exit_3_with_a_hint(aws_env, cli, monkeypatch, tmp_path, env_var) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    r = cli("render", "backend", "--env", "production", "--image-tag", "v1", "--diff")
    assert r.code == 3
    assert "no AWS credentials" in r.err and "Traceback" not in r.err


def test_unknown_profile_is_exit_3(aws_env, cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    r = cli("render", "backend", "--env", "production", "--profile", "ghost", "--image-tag", "v1", "--diff")
    assert r.code == 3 and "profile 'ghost' not found" in r.err
