"""The fault proxy itself: it forwards, fails what its rules pick, as S3 would, and counts."""

import http.client
import os
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tools.s3_fault_proxy import FAULT_KINDS, FaultRule, S3FaultProxy

pytestmark = [pytest.mark.aws, pytest.mark.faults]

BUCKET = "fault-proxy"
BLOB = os.urandom(100_000)


@pytest.fixture
def s3(faulty_s3):
    """A bucket holding ``blob``, and a client that never retries: each answer is seen."""
    once = Config(retries={"mode": "standard", "total_max_attempts": 1})
    client = boto3.client("s3", config=once)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="blob", Body=BLOB, ACL="public-read")  # raw GETs
    faulty_s3.reset()
    return client


def raw_get(proxy: S3FaultProxy, path: str, method: str = "GET") -> tuple[bytes, str]:
    """Everything the proxy sends back on one connection, and how the connection ended."""
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {proxy.host}\r\n\r\n".encode())
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                _, sep, body = received.partition(b"\r\n\r\n")
                if sep and method == "GET" and len(body) >= len(BLOB):
                    return received, "complete"
        except ConnectionResetError:
            return received, "reset"
    return received, "closed"


class TestRules:
    def test_every_nth_matching_request(self):
        rule = FaultRule("slow_down", method="GET", every=3)
        picks = [rule.pick(method, "/b/k") for method in ["GET", "PUT"] * 6]
        assert [i for i, picked in enumerate(picks) if picked] == [4, 10]  # 3rd and 6th GET
        assert (rule.matched, rule.injected) == (6, 2)

    def test_listed_requests_up_to_a_limit(self):
        rule = FaultRule("reset", at=(1, 3, 4), limit=2)
        assert [rule.pick("GET", "/b/k") for _ in range(5)] == [True, False, True, False, False]

    def test_path_and_user_agent_filters(self):
        rule = FaultRule("truncate", path="/b/out/", agent="^GDAL/")
        assert rule.pick("GET", "/b/out/x.tif", "GDAL/3.10.3")
        assert not rule.pick("GET", "/b/out/x.tif", "Boto3/1.44 md/Botocore#1.44")
        assert not rule.pick("GET", "/b/in/x.tif", "GDAL/3.10.3")

    def test_persistent_fails_every_match(self):
        rule = FaultRule.persistent("internal_error", method="PUT")
        assert all(rule.pick("PUT", f"/b/{i}") for i in range(50))
        assert not rule.pick("GET", "/b/0")

    def test_parse(self):
        rule = FaultRule.parse("slow_down:method=GET|HEAD:every=3:limit=10:at=2,5")
        assert (rule.kind, rule.method, rule.every, rule.limit, rule.at) == (
            "slow_down", "GET|HEAD", 3, 10, (2, 5),
        )  # fmt: skip
        with pytest.raises(ValueError, match="unknown fault kind 'boom'"):
            FaultRule.parse("boom")
        with pytest.raises(ValueError, match="key=value"):
            FaultRule.parse("reset:often")
        with pytest.raises(ValueError, match="at least 1"):
            FaultRule("reset", every=0)


class TestProxy:
    def test_forwards_everything_without_rules(self, faulty_s3, s3):
        s3.put_object(Bucket=BUCKET, Key="dir/a", Body=b"a")
        assert s3.get_object(Bucket=BUCKET, Key="blob")["Body"].read() == BLOB
        assert s3.head_object(Bucket=BUCKET, Key="blob")["ContentLength"] == len(BLOB)
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/")["Contents"]
        assert [o["Key"] for o in listed] == ["dir/a"]
        counts = faulty_s3.counts()
        assert counts["requests"] == counts["forwarded"] == 4
        assert counts["faults"] == 0
        assert [s.method for s in faulty_s3.seen()] == ["PUT", "GET", "HEAD", "GET"]

    @pytest.mark.parametrize(
        ("kind", "status", "code"),
        [("internal_error", 500, "InternalError"), ("slow_down", 503, "SlowDown"),
         ("throttle", 429, "Throttling")],
    )  # fmt: skip
    def test_error_answers_are_s3s_and_never_reach_the_server(
        self, faulty_s3, s3, kind, status, code
    ):
        faulty_s3.set_rules([FaultRule(kind, method="GET", at=(1,))])
        with pytest.raises(ClientError) as info:
            s3.get_object(Bucket=BUCKET, Key="blob")
        error = info.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
            code, status,
        )  # fmt: skip
        assert s3.get_object(Bucket=BUCKET, Key="blob")["Body"].read() == BLOB  # only the 1st
        assert faulty_s3.counts() | {} == {
            **dict.fromkeys(FAULT_KINDS, 0), kind: 1, "faults": 1, "requests": 2, "forwarded": 1,
        }  # fmt: skip

    def test_reset_sends_part_of_the_answer_then_resets(self, faulty_s3, s3):
        faulty_s3.set_rules([FaultRule("reset", method="GET")])
        received, ending = raw_get(faulty_s3, f"/{BUCKET}/blob")
        head, _, body = received.partition(b"\r\n\r\n")
        assert ending == "reset"
        assert head.startswith(b"HTTP/1.1 200") or not received  # RST may drop what was unread
        assert len(body) < len(BLOB)
        assert faulty_s3.counts()["forwarded"] == 1  # the server did the work

    def test_truncate_announces_the_whole_body_and_closes_after_half(self, faulty_s3, s3):
        faulty_s3.set_rules([FaultRule("truncate", method="GET")])
        received, ending = raw_get(faulty_s3, f"/{BUCKET}/blob")
        head, _, body = received.partition(b"\r\n\r\n")
        assert ending == "closed"
        assert head.startswith(b"HTTP/1.1 200")
        assert f"Content-Length: {len(BLOB)}".encode() in head
        assert body == BLOB[: len(BLOB) // 2]

    def test_an_answer_without_body_has_its_status_line_cut(self, faulty_s3, s3):
        faulty_s3.set_rules([FaultRule("truncate", method="HEAD")])
        received, ending = raw_get(faulty_s3, f"/{BUCKET}/blob", method="HEAD")
        assert (received, ending) == (b"HTTP/1.1 20", "closed")
        faulty_s3.set_rules([FaultRule("truncate", method="PUT", at=(1,))])
        retrying = boto3.client("s3")
        retrying.put_object(Bucket=BUCKET, Key="put", Body=b"x")  # retried: not taken as done
        assert faulty_s3.counts()["truncate"] == 2 and faulty_s3.counts()["requests"] == 3

    def test_a_chunked_upload_is_forwarded_whole(self, faulty_s3, s3):
        connection = http.client.HTTPConnection(faulty_s3.host, faulty_s3.port, timeout=10)
        connection.request("PUT", f"/{BUCKET}/chunked", body=iter([b"abc", b"defg"]))
        assert connection.getresponse().status == 200
        assert s3.get_object(Bucket=BUCKET, Key="chunked")["Body"].read() == b"abcdefg"

    def test_a_retrying_client_gets_through_and_the_counts_show_the_retries(self, faulty_s3, s3):
        retrying = boto3.client("s3")  # the retry defaults of benchmark.data.retries
        faulty_s3.set_rules([FaultRule("slow_down", method="GET", every=2)])
        for _ in range(3):
            assert retrying.get_object(Bucket=BUCKET, Key="blob")["Body"].read() == BLOB
        counts = faulty_s3.counts()
        assert counts["slow_down"] == counts["requests"] - 3 > 0  # one retry per fault
