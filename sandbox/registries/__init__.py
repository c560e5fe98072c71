"""The sandbox's registries on 127.0.0.1: distribution, token realms, the upstream, ECR's endpoint, real clients."""
