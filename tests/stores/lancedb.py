from tests.stores import StoreContext, StoreKind


def _local(ctx: StoreContext) -> dict[str, str]:
    return {"path": str(ctx.tmp_path / "lancedb"), "table": ctx.name}


# LanceDB keeps float32 vectors as they are given: the round trip is exact.
KINDS = [StoreKind(id="lancedb-local", store="lancedb", options=_local)]
