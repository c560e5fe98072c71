"""The OCI distribution client: the one place Pullthrough speaks HTTP to a registry.

Upstream credential checks and ECR warming both use it, with different credentials. It discovers how a registry
authenticates from `/v2/` (none, Basic, or a Bearer token realm as Docker Hub does), asks for manifests with every
media type ECR pull-through cache serves, streams blobs without keeping them, and turns every failure into a
`pullthrough.errors.RegistryError` that names the registry, the repository and the HTTP status, never a secret.

One concern per module, as go-containerregistry lays out its transport: `headers` (WWW-Authenticate, rate limits,
Retry-After, Link), `transport` (send, retry, redirects, connection errors), `auth` (credentials, the challenge, the
token cache), `failures` (an answer as the error it stands for), `client` (the operations), `manifests` (the
documents), `dockerhub` (the Docker Hub API, for rotations). Nothing is re-exported here: a function that only
reads manifests (prune, through aws/ecr.py) imports `manifests`, not the client (bench/README.md, cold start).
"""
