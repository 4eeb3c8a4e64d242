"""Writing many items to a DynamoDB table, for the demo data, the benchmark and the tests."""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

BATCH_LIMIT = 25  # items per BatchWriteItem request, the AWS limit


def batch_write(client: Any, table: str, items: Iterable[dict[str, Any]], workers: int = 1) -> None:
    """Put every item with BatchWriteItem, resending what DynamoDB leaves unprocessed; with
    `workers` above one, contiguous shares of the items are written from that many threads."""
    items = list(items)

    def write(chunk: list[dict[str, Any]]) -> None:
        for start in range(0, len(chunk), BATCH_LIMIT):
            batch = chunk[start : start + BATCH_LIMIT]
            request: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in batch]}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")

    if workers <= 1:
        write(items)
        return
    size = max(BATCH_LIMIT, -(-len(items) // workers // BATCH_LIMIT) * BATCH_LIMIT)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, chunks))
