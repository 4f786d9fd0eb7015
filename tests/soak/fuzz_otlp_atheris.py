"""Coverage-guided fuzzing of the OTLP/HTTP decoder and the normalizer with atheris (libFuzzer). Not run in CI.

    pip install atheris    # 3.0.0 has manylinux wheels for CPython 3.11: no clang needed
    python tests/soak/fuzz_otlp_atheris.py -max_total_time=600 [corpus_dir ...]

Each input picks protobuf or OTLP/JSON and plain or gzip, then goes through what /v1/traces runs: decompress, parse,
normalize, price, validate. The fuzzer stops and saves the input on any exception other than `OtlpError` (what the
API answers with a 4xx), on a refusal that isn't a 4xx with a message, and on a row that would not fit its column.
Without a corpus directory it starts from valid protobuf and JSON requests. The hypothesis tests
(tests/collector/test_fuzz_otlp.py, tests/collector/test_fuzz_normalize.py) are the CI counterpart; add what this
finds there as examples.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere: the repository root

with atheris.instrument_imports(include=["collector"]):  # coverage feedback from our code, not the libraries'
    from collector.receive import otlp
    from tests.collector.test_fuzz_normalize import assert_rejection_message, assert_storable, ingest, span_count
    from tests.collector.test_fuzz_otlp import VALID_JSON, VALID_PROTOBUF

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmledger import diagnostics

LIMIT = 1024 * 1024
diagnostics.strict = True  # the normalizer re-raises its own errors instead of rejecting the span


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    kind = otlp.PROTOBUF if provider.ConsumeBool() else otlp.JSON
    compressed = provider.ConsumeBool()
    body = provider.ConsumeBytes(provider.remaining_bytes())
    if compressed:
        body = gzip.compress(body, compresslevel=1)
    try:
        request = otlp.parse(
            ExportTraceServiceRequest(), otlp.decompress(body, "gzip" if compressed else None, LIMIT), kind
        )
    except otlp.OtlpError as error:
        if not (400 <= error.status < 500 and error.message and len(error.message) <= 500):
            raise AssertionError(f"refused without a clear 4xx: {error.status} {error.message[:200]!r}") from None
        return
    rows, rejected, non_llm = ingest(request)
    if len(rows) + len(rejected) + non_llm != span_count(request):
        raise AssertionError("a span was neither stored, rejected nor counted as non-LLM")
    for row in rows:
        assert_storable(row)
    for message in rejected:
        assert_rejection_message(message)


def _seed_corpus() -> str:
    folder = Path(tempfile.mkdtemp(prefix="otlp-atheris-corpus-"))
    # The first two bytes are the choices above (protobuf?, gzip?); ConsumeBool reads a byte's lowest bit.
    (folder / "protobuf").write_bytes(b"\x01\x00" + VALID_PROTOBUF)
    (folder / "json").write_bytes(b"\x00\x00" + VALID_JSON)
    (folder / "protobuf-gzip").write_bytes(b"\x01\x01" + VALID_PROTOBUF)
    return str(folder)


def main() -> None:
    argv = list(sys.argv)
    if not any(not argument.startswith("-") for argument in argv[1:]):
        argv.append(_seed_corpus())
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
