"""Weaviate, against the local fake of its REST and gRPC API (tests/fakes/weaviate.py): no Weaviate server installs
here. Both namespace modes: the `namespace` property, and a tenant per namespace."""

from tests.stores import StoreContext, StoreKind


def _options(ctx: StoreContext, mode: str) -> dict[str, str]:
    fake = ctx.fixture("weaviate_fake")
    return {
        "url": fake.url,
        "grpc_port": str(fake.grpc_port),
        "api_key": fake.api_key,
        "collection": ctx.name[:1].upper() + ctx.name[1:] + ("_mt" if mode == "tenant" else ""),
        "namespace_mode": mode,
    }


KINDS = [
    StoreKind(id="weaviate-fake", store="weaviate", options=lambda ctx: _options(ctx, "property")),
    StoreKind(id="weaviate-fake-tenants", store="weaviate", options=lambda ctx: _options(ctx, "tenant")),
]
