"""Pinecone, against the local fake of its API (tests/fakes/pinecone.py): no Pinecone server installs here."""

from tests.stores import StoreContext, StoreKind


def _fake(ctx: StoreContext) -> dict[str, str]:
    fake = ctx.fixture("pinecone_fake")
    return {
        "index": ctx.name.replace("_", "-")[-45:].strip("-"),
        "api_key": fake.api_key,
        "controller_host": fake.url,
        "cloud": "aws",
        "region": "us-east-1",
    }


KINDS = [StoreKind(id="pinecone-fake", store="pinecone", options=_fake)]
