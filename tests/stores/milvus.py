from tests.stores import StoreContext, StoreKind


def _lite(ctx: StoreContext) -> dict[str, str]:
    return {"path": str(ctx.tmp_path / "milvus.db"), "collection": ctx.name}


# Milvus Lite, the real engine (pure Python, in-process): vectors come back exactly as written.
KINDS = [StoreKind(id="milvus-lite", store="milvus", options=_lite, one_process=True)]
