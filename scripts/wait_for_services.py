"""Exit non-zero, with a clear message, unless PostgreSQL and Redis answer within a few seconds."""

from __future__ import annotations

import sys
import time


def _postgres(url: str) -> None:
    import psycopg

    psycopg.connect(url.replace("postgres://", "postgresql://", 1), connect_timeout=3).close()


def _redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=3).ping()


def main(database_url: str, redis_url: str) -> int:
    failures = []
    for name, check, url in (("PostgreSQL", _postgres, database_url), ("Redis", _redis, redis_url)):
        for attempt in range(5):
            try:
                check(url)
                print(f"    {name} OK ({url.split('@')[-1]})")
                break
            except Exception as exc:  # noqa: BLE001 - report any failure, then retry
                last = exc
                time.sleep(1 + attempt)
        else:
            failures.append(f"{name} unreachable at {url.split('@')[-1]}: {last}")
    for failure in failures:
        print(f"!! {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
