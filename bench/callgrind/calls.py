# One kind of unary call, N times, on one channel (for bench/callgrind/run.sh).
import sys, grpc
target, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ch = grpc.insecure_channel(target)
grpc.channel_ready_future(ch).result(timeout=60)
ident = lambda b: b
if kind == "health":
    call = ch.unary_unary('/grpc.health.v1.Health/Check', request_serializer=ident, response_deserializer=ident)
    req = b''
else:
    call = ch.unary_unary('/eligibility.v1.EligibilityService/Check', request_serializer=ident, response_deserializer=ident)
    # "check": FR, MX and CN in turn; "check-cn": never listed (the
    # smallest answer); "check-mx": removed, with its deciding change.
    codes = {"check": (b'FR', b'MX', b'CN'), "check-cn": (b'CN',), "check-mx": (b'MX',)}.get(kind, (b'FR',))
    reqs = [b'\n\x05cyber\x12\x02' + c for c in codes]
for i in range(n):
    call(b'' if kind == "health" else reqs[i % len(reqs)], timeout=30) if kind != "none" else None
print(kind, n, "done")
