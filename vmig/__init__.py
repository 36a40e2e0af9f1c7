"""The `.vmig.jsonl` interchange format: schema, reader, writer, sidecar, validation.

Pure Python + pyarrow + orjson; knows nothing of Prefect or of any store.
"""

from vmig.schema import FORMAT_VERSION, RECORD_SCHEMA

__all__ = ["FORMAT_VERSION", "RECORD_SCHEMA"]
