from tests.stores import StoreContext, StoreKind


def _options(ctx: StoreContext) -> dict[str, str]:
    return {"path": str(ctx.tmp_path / f"{ctx.name}.vmig.jsonl")}


KINDS = [StoreKind(id="jsonl", store="jsonl", options=_options)]
