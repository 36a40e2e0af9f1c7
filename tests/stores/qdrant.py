from tests.stores import StoreContext, StoreKind


def _local(ctx: StoreContext) -> dict[str, str]:
    return {"path": str(ctx.tmp_path / "qdrant"), "collection": ctx.name}


# Qdrant normalises vectors for the cosine metric; the round trip compares against that form.
KINDS = [StoreKind(id="qdrant-local", store="qdrant", options=_local, tolerance=1e-6, one_process=True)]
