from tests.stores import StoreContext, StoreKind


def _options(ctx: StoreContext) -> dict[str, str]:
    return {"db": str(ctx.tmp_path / f"{ctx.name}.db")}


KINDS = [StoreKind(id="vektor", store="vektor", options=_options)]
