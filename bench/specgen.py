"""Generate large specs for benchmarks and limit tests: N web services, N queues (each with a worker) and
N schedules. Workers use their own images (one runtime queue is allowed), and the API is the one runtime
web service."""

from __future__ import annotations

import argparse


def generate(n: int) -> str:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    lines = [
        "apiVersion: flowbuilder.dev/v1alpha1", "kind: App", "metadata: {name: big}", "spec:",
        "  region: us-east-1", f"  runtime: {{image: {image}/runtime:1}}", "  queues:",
        "    runtime-jobs: {visibilityTimeout: 15m}",
    ]
    lines += [f"    q{i}: {{visibilityTimeout: 15m}}" for i in range(n)]
    lines += ["  services:", "    api: {type: web, runtime: api, port: 8000, public: true}",
              "    runtime-worker: {type: worker, runtime: worker, queue: runtime-jobs}"]
    lines += [f"    w{i}: {{type: worker, image: {image}/w{i}:1, queue: q{i}}}" for i in range(n)]
    lines += [f"    s{i}: {{type: web, image: {image}/s{i}:1, port: 8080, public: true, path: /s{i}}}"
              for i in range(n)]
    lines.append("  schedules:")
    lines += [f"    c{i}: {{cron: \"{i % 60} * * * ? *\", workflow: w{i}}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int)
    print(generate(parser.parse_args().n), end="")


if __name__ == "__main__":
    main()
