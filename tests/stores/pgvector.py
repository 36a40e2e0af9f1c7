from tests.stores import StoreContext, StoreKind


def _native(ctx: StoreContext) -> dict[str, str]:
    server = ctx.fixture("pg_server")
    return {"url": server.dsn(), "table": ctx.name}


KINDS = [StoreKind(id="pgvector", store="pgvector", options=_native)]
