// A gRPC-Web client no one here wrote (connect-es, over HTTP/1.1) asks
// the demo server the 2021 questions. The service's description comes
// from the server's own descriptor set at run time: no generated code.
//
//   node check.mjs http://127.0.0.1:PORT descriptor-set.bin
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";

const [baseUrl, fdsPath] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(fdsPath)));
const service = registry.getService("eligibility.v1.EligibilityService");
const reason = (name) => registry.getEnum("eligibility.v1.DecisionReason").values.find((v) => v.name === name).number;
const client = createClient(service, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));

let failed = false;
function check(what, ok, detail) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${ok ? "" : `: ${detail}`}`);
  failed ||= !ok;
}

const now = await client.check({ listId: "cyber", country: "MX" });
check("MX is not eligible now", now.decision.eligible === false, `eligible=${now.decision.eligible}`);
check("because it was removed", now.decision.reason === reason("DECISION_REASON_REMOVED"), now.decision.reason);
check("by revision 3", now.decision.decidingChange?.revision === 3n, now.decision.decidingChange?.revision);
const then = await client.check({
  listId: "cyber",
  country: "MX",
  point: { asOf: timestampFromDate(new Date("2021-10-15T00:00:00Z")) },
});
check("MX was eligible on 2021-10-15", then.decision.eligible === true, `eligible=${then.decision.eligible}`);
const diff = await client.diff({
  listId: "cyber",
  from: { asOf: timestampFromDate(new Date("2021-10-15T00:00:00Z")) },
  to: { asOf: timestampFromDate(new Date("2021-11-02T00:00:00Z")) },
});
check("the cut removed AE MA MX SA", diff.removed.join(" ") === "AE MA MX SA", diff.removed.join(" "));
try {
  await client.check({ listId: "cyber", country: "ZZ" });
  check("a bad country is refused", false, "it was answered");
} catch (e) {
  check("a bad country is refused with INVALID_ARGUMENT", e.code === 3 && e.rawMessage.includes('"ZZ"'), `${e.code} ${e.rawMessage}`);
}
console.log(failed ? "grpc-web: FAILED" : "grpc-web: all checks passed");
process.exit(failed ? 1 : 0);
