from tests.stores import StoreContext, StoreKind


def _embedded(ctx: StoreContext) -> dict[str, str]:
    return {"path": str(ctx.tmp_path / "chroma"), "collection": ctx.name}


def _server(ctx: StoreContext) -> dict[str, str]:
    server = ctx.fixture("chroma_server")
    return {"url": server.url, "collection": ctx.name}


KINDS = [
    StoreKind(id="chroma-embedded", store="chroma", options=_embedded, tolerance=1e-5, one_process=True),
    StoreKind(id="chroma-server", store="chroma", options=_server, tolerance=1e-5),
]
