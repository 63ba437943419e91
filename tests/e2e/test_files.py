"""Every yellow era loads with counts that reconcile; every other kind of
file is refused with its own code and leaves no row (issue: data quality).

Expected counts are the real files' own: PROVENANCE.md of the shared data
lists, for instance, 11 zero distances and 5 pickups outside July in
2020-07_rides.csv, and one line cut short in the 2016-07 head."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from tests.conftest import FIXTURES
from tests.stack import wait_for

pytestmark = pytest.mark.e2e

YELLOW = {
    # file: (rows_in, rows_loaded, rejected_by_reason)
    "2025-01_head5_yellow_tripdata_sample.parquet": (5, 5, {}),
    "2025-01_head10000_yellow_tripdata_sample.parquet": (10_000, 9_859, {
        "duplicate_trip": 7, "non_positive_distance": 115, "passenger_count_range": 1,
        "pickup_outside_file_month": 18}),
    "yellow_2015-01.parquet": (100, 100, {}),
    "2018-01_yellow_tripdata_sample.csv": (8, 8, {}),
    "yellow_tripdata_2016-07_head1024B.csv": (10, 9, {"malformed_row": 1}),
    "sample_yellow_tripdata_2019-01.csv": (4_000, 3_906, {
        "negative_total": 1, "non_positive_distance": 28, "passenger_count_range": 65}),
    "yellow_tripdata_sample_2019-02.csv": (10_000, 8_348, {
        "negative_total": 12, "non_positive_distance": 73, "passenger_count_range": 1_567}),
    "2020-07_rides.csv": (266, 248, {
        "negative_total": 1, "non_positive_distance": 11, "passenger_count_range": 1,
        "pickup_outside_file_month": 5}),
}

WRONG_KIND = {
    "green_tripdata_2025-01.parquet": "green_trip_file",
    "2020-10_green_sample_data.parquet": "green_trip_file",
    "2018-01_green_tripdata_sample.csv": "green_trip_file",
    "sample_fhvhv_tripdata.csv": "hvfhv_trip_file",
    "yellow_tripdata_2009-01_head1024B.csv": "legacy_yellow_layout",
    "yellow_tripdata_2010-01_head1024B.csv": "legacy_yellow_layout",
    "yellow_tripdata_2014-01_head1024B.csv": "legacy_yellow_layout",
}


def _assert_failed_without_rows(stack, job, code, *words):
    assert job["status"] == "failed", job
    assert job["error"]["code"] == code, job["error"]
    for word in words:
        assert word in job["error"]["message"], job["error"]["message"]
    assert stack.rows_for(job["job_id"]) == 0
    assert job["counts"]["rows_loaded"] == 0


@pytest.mark.parametrize("name", sorted(YELLOW))
def test_every_yellow_era_loads_with_exact_counts(stack, name):
    rows_in, loaded, rejected = YELLOW[name]
    job = stack.wait_job(stack.upload_file(FIXTURES / name)["job_id"])
    assert job["status"] == "succeeded", job
    counts = job["counts"]
    assert (counts["rows_in"], counts["rows_loaded"]) == (rows_in, loaded)
    assert counts["rejected_by_reason"] == rejected
    assert counts["rows_in"] == counts["rows_loaded"] + sum(rejected.values())
    assert stack.rows_for(job["job_id"]) == loaded
    assert job["rules"][0] == "required_fields" and "duplicate_trip" in job["rules"]


@pytest.mark.parametrize("name", sorted(WRONG_KIND))
def test_other_kinds_are_refused_with_their_own_code(stack, name):
    job = stack.wait_job(stack.upload_file(FIXTURES / name)["job_id"])
    _assert_failed_without_rows(stack, job, WRONG_KIND[name], "Found columns")


def test_gzipped_csv_loads_like_the_plain_one(stack):
    data = gzip.compress((FIXTURES / "2020-07_rides.csv").read_bytes())
    job = stack.wait_job(stack.upload_bytes(data, "yellow_tripdata_2020-07.csv.gz")["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["counts"]["rows_in"], job["counts"]["rows_loaded"]) == (266, 248)


def test_rejected_rows_can_be_downloaded_with_their_reasons(stack):
    name = "2025-01_head10000_yellow_tripdata_sample.parquet"
    job = stack.wait_job(stack.upload_file(FIXTURES / name)["job_id"])
    answer = requests.get(f"{stack.api}/jobs/{job['job_id']}/rejects", timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["url"].startswith(stack.endpoint)
    rejects = pq.read_table(io.BytesIO(requests.get(body["url"], timeout=30).content))
    assert rejects.num_rows == job["counts"]["rows_rejected"] == body["rows"]
    reasons = rejects.column("reject_reason").value_counts().to_pylist()
    assert {r["values"]: r["counts"] for r in reasons} == job["counts"]["rejected_by_reason"]
    # The original values travel with the reason: the zero-distance rows
    # still show their zero distance.
    zero = rejects.filter(pa.compute.equal(rejects.column("reject_reason"),
                                           "non_positive_distance"))
    assert set(zero.column("trip_distance").to_pylist()) == {0.0}


def test_a_job_without_rejects_says_so(stack):
    job = stack.wait_job(stack.upload_file(FIXTURES / "yellow_2015-01.parquet")["job_id"])
    answer = requests.get(f"{stack.api}/jobs/{job['job_id']}/rejects", timeout=30)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "no_rejects"


def test_a_zero_row_yellow_file_succeeds_with_zero_rows(stack):
    table = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    sink = io.BytesIO()
    pq.write_table(table.slice(0, 0), sink)
    job = stack.wait_job(stack.upload_bytes(sink.getvalue(), "empty.parquet")["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["counts"]["rows_in"], job["counts"]["rows_loaded"]) == (0, 0)


def test_a_text_file_named_parquet_is_refused(stack):
    data = b"VendorID,tpep_pickup_datetime\n1,2025-01-01 00:00:00\n"
    job = stack.wait_job(stack.upload_bytes(data, "looks_right.parquet")["job_id"])
    _assert_failed_without_rows(stack, job, "not_parquet", "VendorID", "PAR1")


def test_a_truncated_parquet_file_is_refused(stack):
    data = (FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet").read_bytes()
    job = stack.wait_job(stack.upload_bytes(data[: len(data) // 2], "cut.parquet")["job_id"])
    _assert_failed_without_rows(stack, job, "corrupt_parquet", "upload it again")


def test_a_corrupt_parquet_body_is_refused(stack):
    data = bytearray((FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet").read_bytes())
    data[1000:60000] = bytes(59000)  # the footer is intact, the pages are not
    job = stack.wait_job(stack.upload_bytes(bytes(data), "damaged.parquet")["job_id"])
    _assert_failed_without_rows(stack, job, "corrupt_parquet")


def test_a_parquet_file_of_another_table_is_refused(stack):
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2], "name": ["a", "b"]}), sink)
    job = stack.wait_job(stack.upload_bytes(sink.getvalue(), "customers.parquet")["job_id"])
    _assert_failed_without_rows(stack, job, "unrecognised_columns", "id, name")


def test_text_in_the_fare_column_fails_the_job(stack):
    table = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    index = table.column_names.index("fare_amount")
    table = table.set_column(index, "fare_amount", pa.array(["7.2", "5.1", "n/a", "9", "3"]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    job = stack.wait_job(stack.upload_bytes(sink.getvalue(), "strings.parquet")["job_id"])
    _assert_failed_without_rows(stack, job, "invalid_column_type", "fare_amount", "'n/a'")


def test_a_zero_byte_object_uploaded_without_the_api_fails_clearly(stack):
    key = "raw/direct/empty.parquet"
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=b"")
    job = _job_for_key(stack, key)
    _assert_failed_without_rows(stack, job, "empty_file", "0 bytes")


@pytest.mark.parametrize("name", [
    "with space.parquet", "plus+sign.parquet", "100%.parquet", "trips (copy).parquet",
    "Zürich_Ünïcødé_月.parquet", "n" * 900 + ".parquet",
])
def test_objects_uploaded_without_the_api_load_whatever_their_name(stack, name):
    key = f"raw/direct/{name}"
    body = (FIXTURES / "yellow_2015-01.parquet").read_bytes()
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=body)
    job = _job_for_key(stack, key)
    assert job["status"] == "succeeded", job
    assert job["source"] == "event"
    assert job["key"] == key
    assert stack.rows_for(job["job_id"]) == 100


def _job_for_key(stack, key: str) -> dict:
    def find():
        jobs = requests.get(f"{stack.api}/jobs", params={"limit": 500}, timeout=30).json()
        for job in jobs["jobs"]:
            if job["key"] == key and job["status"] in ("succeeded", "failed"):
                return job
        return None

    return wait_for(find, 60, what=f"a finished job for {key!r}")


def test_text_postgres_cannot_store_costs_its_row(stack):
    # Postgres text cannot hold a NUL character; Arrow strings can. A flag
    # of 100,000 characters is no flag either.
    table = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    index = table.column_names.index("store_and_fwd_flag")
    table = table.set_column(index, "store_and_fwd_flag",
                             pa.array(["N", "N", "\x00", "Y" * 100_000, "N"],
                                      pa.large_string()))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    job = stack.wait_job(stack.upload_bytes(sink.getvalue(), "nul.parquet")["job_id"])
    assert job["status"] == "succeeded", job
    assert job["counts"]["rejected_by_reason"] == {"invalid_value": 2}
    assert job["counts"]["rows_loaded"] == 3 == stack.rows_for(job["job_id"])


def test_a_header_without_rows_is_zero_rows_however_it_ends(stack):
    header = (FIXTURES / "2020-07_rides.csv").read_text().splitlines()[0]
    for ending in ("", "\n"):
        session = stack.upload_bytes((header + ending).encode(), "yellow_tripdata_2020-07.csv")
        job = stack.wait_job(session["job_id"])
        assert job["status"] == "succeeded", job
        assert (job["counts"]["rows_in"], job["counts"]["rows_loaded"]) == (0, 0)


def test_an_object_deleted_before_the_worker_reads_it_fails_the_job(stack):
    data = (FIXTURES / "yellow_2015-01.parquet").read_bytes()
    response = stack.create_upload("vanishing.parquet", len(data))
    session = response.json()
    key = session["key"]
    stack.processes["bridge"].kill()
    try:
        requests.put(session["upload"]["url"], data=data, headers=session["upload"]["headers"],
                     timeout=30).raise_for_status()
        stack.s3().delete_object(Bucket=stack.bucket, Key=key)
    finally:
        stack.restart("bridge")
    job = stack.wait_job(session["job_id"])
    _assert_failed_without_rows(stack, job, "object_missing", "Upload the file again")


def test_a_failed_re_upload_clears_the_earlier_account(stack):
    session = stack.upload_file(FIXTURES / "yellow_2015-01.parquet", "reused_url.parquet")
    assert stack.wait_job(session["job_id"])["status"] == "succeeded"
    size = int(session["upload"]["headers"]["Content-Length"])
    requests.put(session["upload"]["url"], data=b"x" * size,
                 headers=session["upload"]["headers"], timeout=30).raise_for_status()
    job = wait_for(lambda: (j := stack.job(session["job_id"]))["status"] == "failed" and j, 60,
                   what="the garbage re-upload to fail")
    assert job["error"]["code"] == "not_parquet"
    assert job["counts"] == {"rows_in": None, "rows_loaded": 0, "rows_rejected": None,
                             "rejected_by_reason": {}}
    assert stack.rows_for(job["job_id"]) == 0


def test_one_bad_cell_costs_its_row_not_the_file(stack):
    table = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    index = table.column_names.index("passenger_count")
    table = table.set_column(index, "passenger_count", pa.array([1, 40_000, 1, 2, 1]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    job = stack.wait_job(stack.upload_bytes(sink.getvalue(), "one_bad_cell.parquet")["job_id"])
    assert job["status"] == "succeeded", job
    assert job["counts"]["rejected_by_reason"] == {"invalid_value": 1}
    assert job["counts"]["rows_loaded"] == 4 == stack.rows_for(job["job_id"])
