//! The OpenAPI 3.1 document of the HTTP/JSON API, served at
//! `GET /v1/openapi.json`. The schemas are generated from the same
//! descriptors as the JSON mapping (proto3 canonical JSON: lowerCamelCase
//! names, enums by name, 64-bit integers as strings, timestamps as RFC
//! 3339), so the document cannot drift from what the routes answer; the
//! paths and their documentation come from the route table that the server
//! routes, guards and counts by ([`crate::routes::ROUTES`]).

use std::sync::LazyLock;

use prost::Message;
use prost_types::{
    FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use serde_json::{Map, Value, json};

use crate::routes::{self, Doc, Op, Route, Surface};

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

fn document() -> Value {
    let mut paths = Map::new();
    for (route, doc) in documented() {
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.verb.to_ascii_lowercase()] = operation(route, doc);
    }
    let mut schemas = schemas();
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Export eligibility service: HTTP/JSON API",
            "version": "v1",
            "description": "The eligibility.v1 RPCs at resource paths, on the gRPC port. JSON is the proto3 canonical mapping of the same messages. Errors are RFC 9457 problem details carrying the gRPC code."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        },
        "security": [ {}, { "bearer": [] } ]
    })
}

/// The HTTP routes, with their documentation.
fn documented() -> impl Iterator<Item = (&'static Route, &'static Doc)> {
    routes::of(Surface::Http).filter_map(|r| r.doc.as_ref().map(|d| (r, d)))
}

fn operation(route: &Route, r: &Doc) -> Value {
    let rpc = route.op.name();
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    for (name, kind, repeat) in r.query {
        let schema = match *kind {
            "date-time" => json!({ "type": "string", "format": "date-time" }),
            "integer" => json!({ "type": "integer", "minimum": 0 }),
            other => json!({ "type": other }),
        };
        let schema = if *repeat { json!({ "type": "array", "items": schema }) } else { schema };
        params.push(json!({ "name": name, "in": "query", "required": false, "schema": schema, "explode": true }));
    }
    if r.answer.is_some() && r.body.is_none() {
        params.push(
            json!({ "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" } }),
        );
    }
    if r.body.is_some() {
        for header in ["Idempotency-Key", "If-Match"] {
            params.push(json!({ "name": header, "in": "header", "required": false, "schema": { "type": "string" } }));
        }
    }
    if route.op == Op::Watch {
        params.push(json!({ "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string", "pattern": "^[0-9]+$" } }));
    }
    let ok = match (r.answer, route.op) {
        (Some(msg), _) => {
            json!({ "description": "The answer", "content": { "application/json": { "schema": reference(msg) } } })
        }
        (None, Op::Watch) => json!({
            "description": "Server-sent events: changeset, progress, snapshot_list, snapshot_end; each event's data is the JSON of the WatchEvent member it names (Changeset, Progress, SnapshotList, SnapshotEnd)",
            "content": { "text/event-stream": { "schema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "id": { "type": "string", "pattern": "^[0-9]+$", "description": "The revision the event completes (absent on snapshot_list)" },
                    "event": { "type": "string", "enum": ["changeset", "progress", "snapshot_list", "snapshot_end"] },
                    "data": { "type": "string", "contentMediaType": "application/json" }
                }
            } } }
        }),
        (None, _) => {
            json!({ "description": "The OpenAPI document", "content": { "application/json": { "schema": { "type": "object" } } } })
        }
    };
    let mut responses = json!({
        "200": ok,
        "default": { "description": "A problem (RFC 9457) with the gRPC code", "content": { "application/problem+json": { "schema": reference("Problem") } } }
    });
    if r.answer.is_some() && r.body.is_none() {
        responses["304"] = json!({ "description": "Not modified since the ETag given in If-None-Match" });
    }
    if r.query.iter().any(|(name, ..)| *name == "min_revision") || route.op == Op::BatchCheck || r.body.is_some() {
        responses["503"] = json!({
            "description": "Not yet: this replica has not reached min_revision within the wait, or the store is unavailable; retry",
            "content": { "application/problem+json": { "schema": reference("Problem") } }
        });
    }
    let mut op = json!({ "operationId": rpc, "summary": r.summary, "parameters": params, "responses": responses });
    if let Some(msg) = r.body {
        op["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": reference(msg) } } });
    }
    op
}

fn reference(message: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{message}") })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "code": { "type": "string", "description": "The gRPC status code's name, e.g. INVALID_ARGUMENT" },
            "violations": { "type": "array", "items": { "type": "object", "properties": { "field": { "type": "string" }, "description": { "type": "string" } } } },
            "reason": { "type": "string" },
            "metadata": { "type": "object", "additionalProperties": { "type": "string" } }
        }
    })
}

/// A JSON schema per message and enum of `eligibility.v1`, as the JSON
/// mapping writes them.
fn schemas() -> Map<String, Value> {
    let set = FileDescriptorSet::decode(eligibility::FILE_DESCRIPTOR_SET).expect("the built-in descriptor set decodes");
    let mut out = Map::new();
    for file in set.file.iter().filter(|f| f.package() == "eligibility.v1") {
        for e in &file.enum_type {
            let names: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
            out.insert(e.name().to_owned(), json!({ "type": "string", "enum": names }));
        }
        for m in &file.message_type {
            let mut props = Map::new();
            for f in &m.field {
                let item = field_schema(f.r#type(), f.type_name());
                let schema =
                    if f.label() == Label::Repeated { json!({ "type": "array", "items": item }) } else { item };
                props.insert(f.json_name().to_owned(), schema);
            }
            out.insert(
                m.name().to_owned(),
                json!({ "type": "object", "properties": props, "additionalProperties": false }),
            );
        }
    }
    out
}

fn field_schema(kind: Type, type_name: &str) -> Value {
    match kind {
        Type::Bool => json!({ "type": "boolean" }),
        Type::String => json!({ "type": "string" }),
        Type::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
        Type::Uint32 | Type::Fixed32 => json!({ "type": "integer", "format": "int32", "minimum": 0 }),
        // 64-bit integers are strings in the JSON mapping.
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => json!({ "type": "string", "pattern": "^-?[0-9]+$" }),
        Type::Uint64 | Type::Fixed64 => json!({ "type": "string", "pattern": "^[0-9]+$" }),
        Type::Float | Type::Double => json!({ "type": "number" }),
        Type::Enum | Type::Message | Type::Group => match type_name {
            ".google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            name => reference(name.rsplit('.').next().unwrap_or(name)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_route_is_documented() {
        let mut n = 0;
        for r in routes::of(Surface::Http) {
            let doc = r.doc.as_ref().unwrap_or_else(|| panic!("{} {} is served but not documented", r.verb, r.path));
            let op = &DOCUMENT["paths"][r.path][r.verb.to_ascii_lowercase()];
            assert_eq!(op["operationId"], r.op.name());
            for msg in doc.body.iter().chain(doc.answer.iter()) {
                assert!(DOCUMENT["components"]["schemas"][*msg].is_object(), "{msg} has no schema");
            }
            n += 1;
        }
        let documented: usize =
            DOCUMENT["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, n, "the document has an operation for each HTTP route, and no other");
    }

    #[test]
    fn schemas_follow_the_json_mapping() {
        let s = &DOCUMENT["components"]["schemas"];
        assert_eq!(s["ResponseHeader"]["properties"]["revision"]["type"], "string", "uint64 as a string");
        assert_eq!(s["ResponseHeader"]["properties"]["asOf"]["format"], "date-time");
        assert_eq!(s["Decision"]["properties"]["reason"]["$ref"], "#/components/schemas/DecisionReason");
        assert!(s["DecisionReason"]["enum"].as_array().unwrap().iter().any(|v| v == "DECISION_REASON_REMOVED"));
        assert_eq!(s["BatchCheckRequest"]["properties"]["items"]["type"], "array");
        assert_eq!(s["List"]["properties"]["memberCount"]["type"], "integer");
    }
}
