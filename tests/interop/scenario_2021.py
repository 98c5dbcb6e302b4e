"""Interop check: a gRPC client built only from proto/ (Python grpcio, no
code from this project) runs the 2021 scenario against a demo server.

Usage: python scenario_2021.py HOST:PORT
Generates the stubs from ../../proto into a temporary directory first.
"""
import pathlib
import sys
import tempfile

from grpc_tools import protoc
import grpc


def generate(out: str) -> None:
    proto = pathlib.Path(__file__).resolve().parents[2] / "proto"
    import grpc_tools

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(proto)) for p in sorted(proto.rglob("*.proto"))]
    rc = protoc.main(["protoc", f"-I{proto}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files])
    if rc != 0:
        raise SystemExit(f"protoc failed: {rc}")


def main() -> None:
    target = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        generate(out)
        sys.path.insert(0, out)
        from eligibility.v1 import eligibility_pb2 as e
        from eligibility.v1 import eligibility_pb2_grpc as eg
        from eligibility.v1 import types_pb2 as t
        from google.protobuf.timestamp_pb2 import Timestamp

        stub = eg.EligibilityServiceStub(grpc.insecure_channel(target))
        kept = "AT AU BE BG CA CH CY CZ DE DK EE ES FI FR GB GR HR IE IN IS IT JP KR LI LT LU LV MT NL NO NZ PT RO SE SI SK US".split()
        removed = ["MX", "MA", "SA", "AE"]
        failures = 0

        def expect(cond: bool, what: str) -> None:
            nonlocal failures
            print(("ok   " if cond else "FAIL ") + what)
            failures += 0 if cond else 1

        for c in kept:
            r = stub.Check(e.CheckRequest(list_id="cyber", country=c))
            expect(r.decision.eligible and r.decision.reason == t.DECISION_REASON_LISTED, f"{c} eligible after the cut")
        for c in removed:
            r = stub.Check(e.CheckRequest(list_id="cyber", country=c))
            d = r.decision
            expect(not d.eligible and d.reason == t.DECISION_REASON_REMOVED, f"{c} not eligible after the cut")
            expect(d.deciding_change.revision == 3 and d.deciding_change.effective_at.ToJsonString().startswith("2021-11-01"), f"{c} decided by the cut (revision 3, effective 2021-11-01)")
            expect("102 to 37" in d.deciding_change.reason, f"{c} deciding reason names the cut")
        r = stub.Check(e.CheckRequest(list_id="cyber", country="CN"))
        expect(not r.decision.eligible and r.decision.reason == t.DECISION_REASON_NOT_LISTED, "CN never listed")
        before = Timestamp()
        before.FromJsonString("2021-10-15T00:00:00Z")
        for c in removed + kept:
            r = stub.Check(e.CheckRequest(list_id="cyber", country=c, point=t.ReadPoint(as_of=before)))
            expect(r.decision.eligible, f"{c} eligible as of 2021-10-15")
        r = stub.Check(e.CheckRequest(list_id="cyber", country="mar"))
        expect(r.decision.country == "MA", "alpha-3 input answers in alpha-2")
        try:
            stub.Check(e.CheckRequest(list_id="cyber", country="ZZ"))
            expect(False, "ZZ rejected")
        except grpc.RpcError as err:
            expect(err.code() == grpc.StatusCode.INVALID_ARGUMENT and "ZZ" in err.details(), "ZZ rejected with INVALID_ARGUMENT naming it")

        # The change stream, read by grpcio's own HTTP/2 and gRPC framing.
        stream = stub.Watch(e.WatchRequest(start=e.WatchStart(after_revision=0)), timeout=30)
        revisions = []
        for ev in stream:
            if ev.WhichOneof("event") == "changeset":
                revisions.append(ev.changeset.revision)
            if len(revisions) == 3:
                break
        stream.cancel()
        expect(revisions == [1, 2, 3], f"Watch from revision 0 replays 1, 2, 3 in order (got {revisions})")
        stream = stub.Watch(e.WatchRequest(start=e.WatchStart(snapshot=True), list_ids=["cyber"]), timeout=30)
        lists, members, end = [], 0, None
        for ev in stream:
            kind = ev.WhichOneof("event")
            if kind == "snapshot_list":
                lists.append(ev.snapshot_list.list.id)
                members += len(ev.snapshot_list.entries)
            elif kind == "snapshot_end":
                end = ev.snapshot_end
                break
        stream.cancel()
        expect(lists == ["cyber"] and members == len(kept), f"Watch snapshot: the cyber list with its {len(kept)} members (got {lists}, {members})")
        expect(end is not None and end.revision == 3 and end.store_id != "", "Watch snapshot ends at revision 3 with the store id")
        try:
            next(iter(stub.Watch(e.WatchRequest(list_ids=["no such list!"]), timeout=30)))
            expect(False, "Watch with a bad list id rejected")
        except grpc.RpcError as err:
            expect(err.code() == grpc.StatusCode.INVALID_ARGUMENT and "list_ids[0]" in err.details(), "Watch with a bad list id: INVALID_ARGUMENT naming list_ids[0]")
        print(f"{failures} failed" if failures else "interop: all checks passed")
        raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
