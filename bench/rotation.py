"""6. Rotation: from a credentials-changed event to a validated rule.

Two paths, on the warm rule's secret (ecr-pullthroughcache/bench-warm), each with a token the upstream accepts:
- a new value put straight to AWSCURRENT: the CloudTrail PutSecretValue event (events/check_credentials/
  put_secret_value.json, the secret swapped in) goes through template.yaml's EventBridge rule to check_credentials,
  which proves the value upstream and validates the rule in ECR (ValidatePullThroughCacheRule authenticates against
  the upstream in the sandbox);
- a staged rotation: the value put as AWSPENDING, then rotate_credentials invoked for createSecret, setSecret,
  testSecret and finishSecret as Secrets Manager does; finishSecret promotes it and re-validates the rule.
The clock runs from the event (the first step) to the handler's return with the rule validated.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bench.harness import WARM_PREFIX, Rig, progress
from bench.table import Figure, seconds
from sandbox import lambdas

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _new_user(rig: Rig) -> tuple[str, str]:
    user, token = f"bench-rotated-{uuid.uuid4().hex[:6]}", f"dckr_pat_{uuid.uuid4().hex}"
    rig.sb.add_user(user, token)
    return user, token


def put_secret_value(rig: Rig, secret: str) -> tuple[float, dict[str, Any]]:
    """A new AWSCURRENT value, then its CloudTrail event through EventBridge; time and check_credentials' result."""
    user, token = _new_user(rig)
    secrets = rig.session.client("secretsmanager")
    arn = secrets.describe_secret(SecretId=secret)["ARN"]
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": user, "accessToken": token}))
    event = lambdas.sample_event("check_credentials", "put_secret_value")
    event["detail"]["requestParameters"]["secretId"] = secret
    event["detail"]["responseElements"]["arn"] = arn
    started = time.perf_counter()
    results = rig.put_event(event)
    elapsed = time.perf_counter() - started
    (result,) = [r for r in results if isinstance(r, dict) and "secrets" in r]
    if result["status"] != "OK" or result["counts"].get("valid", 0) < 2:
        raise RuntimeError(f"check_credentials did not validate the secret and the rule: {result}")
    return elapsed, result


def staged_rotation(rig: Rig, secret: str) -> tuple[float, dict[str, float]]:
    """AWSPENDING, then the four rotation steps; total time and each step's."""
    user, token = _new_user(rig)
    secrets = rig.session.client("secretsmanager")
    arn = secrets.describe_secret(SecretId=secret)["ARN"]
    request = str(uuid.uuid4())
    secrets.put_secret_value(
        SecretId=arn,
        ClientRequestToken=request,
        SecretString=json.dumps({"username": user, "accessToken": token}),
        VersionStages=["AWSPENDING"],
    )
    steps: dict[str, float] = {}
    started = time.perf_counter()
    for step in STEPS:
        began = time.perf_counter()
        rig.invoke("RotateCredentialsFunction", {"Step": step, "SecretId": arn, "ClientRequestToken": request})
        steps[step] = time.perf_counter() - began
    elapsed = time.perf_counter() - started
    current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["VersionId"]
    if current != request:
        raise RuntimeError("the staged rotation did not make the new value AWSCURRENT")
    return elapsed, steps


def run(rig: Rig) -> list[Figure]:
    """Both paths; the figures."""
    secret = f"ecr-pullthroughcache/{WARM_PREFIX}"
    rig.configure([])
    progress("rotation: PutSecretValue event -> check_credentials")
    direct, result = put_secret_value(rig, secret)
    progress("rotation: staged rotation, four steps")
    staged, steps = staged_rotation(rig, secret)
    section = "6 rotation (event -> validated rule)"
    return [
        Figure(
            section,
            "PutSecretValue event -> check_credentials, rule valid",
            f"{seconds(direct)} ({result['counts'].get('valid', 0)} valid: secret and rule)",
        ),
        Figure(
            section,
            "staged rotation, four steps -> finishSecret, rule valid",
            f"{seconds(staged)} (" + ", ".join(f"{name} {seconds(t)}" for name, t in steps.items()) + ")",
        ),
    ]
