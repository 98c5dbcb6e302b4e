# One kind of unary call, N times, on one channel (for bench/callgrind/run.sh).
#
# The server runs under callgrind with instrumentation off: this waits
# until its health check says SERVING (the registry loads first; until then
# Check answers UNAVAILABLE and health NOT_SERVING, which must not be
# counted), turns instrumentation on, then makes the calls. So every run,
# the empty one included, counts the same thing: N calls and the shutdown.
import subprocess, sys, time, grpc
target, pid, kind, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ch = grpc.insecure_channel(target)
grpc.channel_ready_future(ch).result(timeout=120)
ident = lambda b: b
health = ch.unary_unary('/grpc.health.v1.Health/Check', request_serializer=ident, response_deserializer=ident)
SERVING = b'\x08\x01'  # HealthCheckResponse { status: SERVING }
deadline = time.monotonic() + 120
while health(b'', timeout=30) != SERVING:
    if time.monotonic() > deadline:
        sys.exit("the server did not become SERVING within 120 s")
    time.sleep(0.2)
subprocess.run(["callgrind_control", "--instr=on", pid], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if kind == "health":
    call, reqs = health, [b'']
elif kind == "http-check":
    # The HTTP/JSON twin of Check MX, on one kept-alive HTTP/1.1 connection.
    import http.client
    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    def call(path, timeout=None):
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"GET {path}: {resp.status} {body[:200]!r}")
    reqs = ["/v1/lists/cyber/check/MX"]
elif kind == "batch":
    # BatchCheck of 100 items: the cyber list and 100 countries (members,
    # removed and never listed).
    call = ch.unary_unary('/eligibility.v1.EligibilityService/BatchCheck', request_serializer=ident, response_deserializer=ident)
    codes = [b'FR', b'MX', b'CN', b'DE', b'US', b'JP', b'AE', b'IN', b'BR', b'GB']
    codes = [codes[i % 10] for i in range(100)]
    reqs = [b''.join(b'\x0a\x0b\x0a\x05cyber\x12\x02' + c for c in codes)]
else:
    call = ch.unary_unary('/eligibility.v1.EligibilityService/Check', request_serializer=ident, response_deserializer=ident)
    # "check": FR, MX and CN in turn; "check-cn": never listed (the
    # smallest answer); "check-mx": removed, with its deciding change.
    codes = {"check": (b'FR', b'MX', b'CN'), "check-cn": (b'CN',), "check-mx": (b'MX',)}.get(kind, (b'FR',))
    reqs = [b'\n\x05cyber\x12\x02' + c for c in codes]
if kind != "none":
    for i in range(n):
        call(reqs[i % len(reqs)], timeout=30)
print(kind, n, "done")
