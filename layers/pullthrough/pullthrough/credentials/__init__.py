"""Upstream credentials: prove a secret's username and access token against the upstream before pulls depend on it.

`check_secret` goes through what ECR itself would trip over, in order: the secret exists in the registry's account
and region, its name starts with `ecr-pullthroughcache/`, its value is JSON with `username` and `accessToken`; then
it authenticates upstream through the registry client. The result names the secret and says why and what to do; it
never carries the token.

`handle` is the check_credentials function: on a Secrets Manager change (CloudTrail) it checks the changed secret,
on the daily schedule every secret, re-validates the ECR rules that use it, warns ahead of a known expiry, and
reports (loud on trouble, one line when all is well). `rotation` builds on the same pieces.

The package, one concern a module (import each name from its module: nothing is re-exported here, so a function
imports only the modules it uses, bench/README.md, cold start):
- verdict.py: `CredentialCheck`, the verdict on one secret, and its report line;
- value.py: a secret's name and its JSON value (read, refused, written);
- upstream.py: `check_credentials`, a username and token proved against the upstream;
- check.py: `check_secret` / `check_version`, a stored secret checked as ECR would read it, then upstream;
- usage.py: which rules use a secret (`SecretUse`, `Target`), from the config, ECR and the secret's tags;
- report.py: re-validation of ECR's rules, expiry warnings, the credentials report;
- events.py: the change events check_credentials takes; handler.py: its run;
- rotation/: Secrets Manager's four-step rotation.
"""
