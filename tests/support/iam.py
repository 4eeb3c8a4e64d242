"""What IAM authorises for each AWS operation the job calls, and a small policy evaluator.

The evaluator covers the policy language the job's policy uses: Allow statements, `Action` and
`Resource` with IAM wildcards (`*`, `?`), and `StringEquals`/`StringLike` conditions. Anything
else in the policy makes it fail loudly rather than guess.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any


@dataclass(frozen=True)
class Call:
    service: str
    region: str
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One authorisation IAM makes for a call: action on resource, with condition keys."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    call: str = ""


def _table(call: Call, account: str) -> list[str]:
    return [f"arn:aws:dynamodb:{call.region}:{account}:table/{call.params['TableName']}"]


def _table_or_index(call: Call, account: str) -> list[str]:
    """A Query is authorised on the table, or on the index it reads."""
    index = call.params.get("IndexName")
    return [f"{_table(call, account)[0]}/index/{index}" if index else _table(call, account)[0]]


def _batch_tables(call: Call, account: str) -> list[str]:
    return [
        f"arn:aws:dynamodb:{call.region}:{account}:table/{t}" for t in call.params["RequestItems"]
    ]


def _bucket(call: Call, _account: str) -> list[str]:
    return [f"arn:aws:s3:::{call.params['Bucket']}"]


def _object(call: Call, _account: str) -> list[str]:
    return [f"arn:aws:s3:::{call.params['Bucket']}/{call.params['Key']}"]


def _deleted_objects(call: Call, _account: str) -> list[str]:
    bucket = call.params["Bucket"]
    return [
        f"arn:aws:s3:::{bucket}/{o['Key']}"
        for o in call.params["Delete"]["Objects"]
        if "VersionId" not in o
    ]


def _deleted_versions(call: Call, _account: str) -> list[str]:
    bucket = call.params["Bucket"]
    return [
        f"arn:aws:s3:::{bucket}/{o['Key']}"
        for o in call.params["Delete"]["Objects"]
        if "VersionId" in o
    ]


def _sender_identity(call: Call, account: str) -> list[str]:
    domain = parseaddr(call.params["FromEmailAddress"])[1].partition("@")[2]
    return [f"arn:aws:ses:{call.region}:{account}:identity/{domain}"]


def _any(_call: Call, _account: str) -> list[str]:
    return ["*"]  # actions without resource-level permissions


def _list_prefix(call: Call) -> dict[str, str]:
    return {"s3:prefix": call.params["Prefix"]} if "Prefix" in call.params else {}


def _put_encryption(call: Call) -> dict[str, str]:
    """The server-side encryption a PutObject asks for, absent when it asks for none (AWS then
    applies the bucket's default, but the request carries no such header for a condition)."""
    sse = call.params.get("ServerSideEncryption")
    return {"s3:x-amz-server-side-encryption": sse} if sse else {}


def _from_address(call: Call) -> dict[str, str]:
    return {"ses:FromAddress": parseaddr(call.params["FromEmailAddress"])[1]}


Resources = Callable[[Call, str], list[str]]
Context = Callable[[Call], dict[str, str]]

# (service, operation) -> (IAM action, resources it is authorised on, condition keys); a
# DeleteObjects request is authorised per object: s3:DeleteObjectVersion for each one naming a
# version, s3:DeleteObject for the others (see EXTRA).
OPERATIONS: dict[tuple[str, str], tuple[str, Resources, Context | None]] = {
    ("dynamodb", "Scan"): ("dynamodb:Scan", _table, None),
    ("dynamodb", "GetItem"): ("dynamodb:GetItem", _table, None),
    ("dynamodb", "BatchGetItem"): ("dynamodb:BatchGetItem", _batch_tables, None),
    ("dynamodb", "UpdateItem"): ("dynamodb:UpdateItem", _table, None),
    ("dynamodb", "PutItem"): ("dynamodb:PutItem", _table, None),
    ("dynamodb", "DeleteItem"): ("dynamodb:DeleteItem", _table, None),
    ("dynamodb", "Query"): ("dynamodb:Query", _table_or_index, None),
    ("dynamodb", "BatchWriteItem"): ("dynamodb:BatchWriteItem", _batch_tables, None),
    ("dynamodb", "DescribeTable"): ("dynamodb:DescribeTable", _table, None),
    ("dynamodb", "ListTables"): ("dynamodb:ListTables", _any, None),
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets", _any, None),
    ("s3", "ListObjectsV2"): ("s3:ListBucket", _bucket, _list_prefix),
    ("s3", "ListObjects"): ("s3:ListBucket", _bucket, _list_prefix),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions", _bucket, _list_prefix),
    ("s3", "GetBucketVersioning"): ("s3:GetBucketVersioning", _bucket, None),
    ("s3", "DeleteObjects"): ("s3:DeleteObject", _deleted_objects, None),
    ("s3", "DeleteObject"): ("s3:DeleteObject", _object, None),
    ("s3", "PutObject"): ("s3:PutObject", _object, _put_encryption),
    ("s3", "GetObject"): ("s3:GetObject", _object, None),
    ("sesv2", "SendEmail"): ("ses:SendEmail", _sender_identity, _from_address),
    ("sesv2", "GetAccount"): ("ses:GetAccount", _any, None),
}


# Every operation requests_for maps: the single-item ones, and transactions.
MAPPED = {*OPERATIONS, ("dynamodb", "TransactWriteItems")}

# Called on the job's behalf by dagster-aws's S3 I/O manager (step outputs on S3), not named in
# the job's own code: a check of the step-outputs bucket when a step starts.
CALLED_BY_STEP_OUTPUTS = {("s3", "ListObjects")}


class UnknownOperation(LookupError):
    pass


# TransactWriteItems has no IAM action of its own: each action in it is authorised as the
# single-item operation it stands for, on its own table (ConditionCheck as ConditionCheckItem).
TRANSACTION_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def _transaction_requests(call: Call, account: str) -> list[Request]:
    name = f"{call.service}:{call.operation}"
    requests = []
    for entry in call.params["TransactItems"]:
        (kind, action), *_ = entry.items()
        table = f"arn:aws:dynamodb:{call.region}:{account}:table/{action['TableName']}"
        requests.append(Request(TRANSACTION_ACTIONS[kind], table, {}, name))
    return requests


def requests_for(call: Call, account: str) -> list[Request]:
    """Every authorisation the call needs; unknown operations are an error, never allowed."""
    if (call.service, call.operation) == ("dynamodb", "TransactWriteItems"):
        return _transaction_requests(call, account)
    try:
        action, resources, context = OPERATIONS[(call.service, call.operation)]
    except KeyError:
        raise UnknownOperation(
            f"{call.service}:{call.operation} is not in the IAM mapping; add it to OPERATIONS "
            "and, if the job really needs it, to deploy/iam-policy.json"
        ) from None
    keys = context(call) if context else {}
    name = f"{call.service}:{call.operation}"
    found = [Request(action, arn, keys, name) for arn in resources(call, account)]
    if (call.service, call.operation) == ("s3", "DeleteObjects"):
        versions = _deleted_versions(call, account)
        found += [Request("s3:DeleteObjectVersion", arn, keys, name) for arn in versions]
    return found


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters (including `/` and `:`), `?` one."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


_OPERATORS = {
    "StringEquals": lambda wanted, actual: wanted == actual,
    "StringLike": lambda wanted, actual: _glob(wanted, actual),
}
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements, after checking they use only what this evaluator implements."""
    assert policy.get("Version") == "2012-10-17", "policy language version"
    found = policy["Statement"]
    for statement in found:
        assert set(statement) <= _STATEMENT_KEYS, f"unsupported element in {statement}"
        assert statement["Effect"] == "Allow", f"only Allow statements are evaluated: {statement}"
        for operator in statement.get("Condition", {}):
            assert operator in _OPERATORS, f"unsupported condition operator {operator}"
    return found


def _conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        for key, wanted in keys.items():
            actual = context.get(key)
            if actual is None:
                return False  # a missing key never satisfies a condition
            if not any(_OPERATORS[operator](w, actual) for w in _as_list(wanted)):
                return False
    return True


def _matches(statement: dict[str, Any], request: Request, resource_pattern: str | None) -> bool:
    patterns = [resource_pattern] if resource_pattern else _as_list(statement["Resource"])
    return (
        any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"]))
        and any(_glob(p, request.resource) for p in patterns)
        and _conditions_hold(statement.get("Condition", {}), request.context)
    )


def allowed(policy: dict[str, Any], request: Request) -> bool:
    return any(_matches(s, request, None) for s in statements(policy))


def denied(policy: dict[str, Any], requests: Iterable[Request]) -> list[str]:
    """Each request the policy does not allow, said as the call and what it needs."""
    return [
        f"{r.call} needs {r.action} on {r.resource} {r.context}"
        for r in requests
        if not allowed(policy, r)
    ]


def unused_grants(policy: dict[str, Any], requests: Iterable[Request]) -> list[str]:
    """Each (statement, action, resource) the policy grants that no request needed."""
    requests = list(requests)
    unused = []
    for statement in statements(policy):
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                single = {**statement, "Action": action}
                if not any(_matches(single, r, resource) for r in requests):
                    unused.append(f"{statement.get('Sid')}: {action} on {resource}")
    return unused
