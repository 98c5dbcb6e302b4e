//! The OpenAPI 3.1 document of the HTTP/JSON API, served at
//! `GET /v1/openapi.json`. The schemas are generated from the same
//! descriptors as the JSON mapping (proto3 canonical JSON: lowerCamelCase
//! names, enums by name, 64-bit integers as strings, timestamps as RFC
//! 3339), so the document cannot drift from what the routes answer; the
//! paths come from the route table below, which a test holds against the
//! routes the server serves.

use std::sync::LazyLock;

use prost::Message;
use prost_types::{
    FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use serde_json::{Map, Value, json};

/// One documented route.
pub struct Route {
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path template, `{name}` for a path parameter.
    pub path: &'static str,
    /// The RPC it answers.
    pub rpc: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Query parameters: name, schema type (`string`, `integer`,
    /// `boolean`, `date-time`), repeatable.
    pub query: &'static [(&'static str, &'static str, bool)],
    /// The request body's message, if any.
    pub body: Option<&'static str>,
    /// The answer's message (`None`: an event stream).
    pub answer: Option<&'static str>,
}

const POINT: &[(&str, &str, bool)] =
    &[("as_of", "date-time", false), ("at_revision", "integer", false), ("min_revision", "integer", false)];

/// Every route of the HTTP API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/lists",
        rpc: "ListLists",
        summary: "Every list, with its mode and member count, at a read point",
        query: POINT,
        body: None,
        answer: Some("ListListsResponse"),
    },
    Route {
        method: "POST",
        path: "/v1/lists",
        rpc: "CreateList",
        summary: "Create a list (admin)",
        query: &[],
        body: Some("CreateListRequest"),
        answer: Some("WriteResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/lists/{list_id}",
        rpc: "GetList",
        summary: "One list's metadata and member count at a read point",
        query: POINT,
        body: None,
        answer: Some("GetListResponse"),
    },
    Route {
        method: "PATCH",
        path: "/v1/lists/{list_id}",
        rpc: "UpdateList",
        summary: "Change a list's metadata (admin)",
        query: &[],
        body: Some("UpdateListRequest"),
        answer: Some("WriteResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/lists/{list_id}/entries",
        rpc: "ListEntries",
        summary: "The members of a list at a read point, with their deciding change, paged",
        query: &[
            ("as_of", "date-time", false),
            ("at_revision", "integer", false),
            ("min_revision", "integer", false),
            ("page_size", "integer", false),
            ("page_token", "string", false),
        ],
        body: None,
        answer: Some("ListEntriesResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/lists/{list_id}/check/{country}",
        rpc: "Check",
        summary: "May COUNTRY receive items of LIST at a read point, and why?",
        query: POINT,
        body: None,
        answer: Some("CheckResponse"),
    },
    Route {
        method: "POST",
        path: "/v1/check:batch",
        rpc: "BatchCheck",
        summary: "Many checks at one snapshot",
        query: &[],
        body: Some("BatchCheckRequest"),
        answer: Some("BatchCheckResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/lists/{list_id}/history",
        rpc: "History",
        summary: "The changesets that touched a list (or one country on it), in revision order, paged",
        query: &[
            ("country", "string", false),
            ("at_revision", "integer", false),
            ("page_size", "integer", false),
            ("page_token", "string", false),
        ],
        body: None,
        answer: Some("HistoryResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/lists/{list_id}/diff",
        rpc: "Diff",
        summary: "Members added, removed and with changed conditions between two points",
        query: &[
            ("from", "date-time", false),
            ("to", "date-time", false),
            ("from_revision", "integer", false),
            ("to_revision", "integer", false),
        ],
        body: None,
        answer: Some("DiffResponse"),
    },
    Route {
        method: "PUT",
        path: "/v1/lists/{list_id}/members",
        rpc: "ReplaceMembers",
        summary: "Make a list's membership exactly this set (writer)",
        query: &[],
        body: Some("ReplaceMembersRequest"),
        answer: Some("WriteResponse"),
    },
    Route {
        method: "POST",
        path: "/v1/changesets",
        rpc: "Apply",
        summary: "Record one changeset of entry changes (writer)",
        query: &[],
        body: Some("ApplyRequest"),
        answer: Some("WriteResponse"),
    },
    Route {
        method: "GET",
        path: "/v1/watch",
        rpc: "Watch",
        summary: "The change stream as server-sent events (id = revision; resume with Last-Event-ID)",
        query: &[
            ("after_revision", "integer", false),
            ("snapshot", "boolean", false),
            ("list_id", "string", true),
            ("country", "string", true),
            ("store_id", "string", false),
        ],
        body: None,
        answer: None,
    },
    Route {
        method: "GET",
        path: "/v1/openapi.json",
        rpc: "OpenApi",
        summary: "This document",
        query: &[],
        body: None,
        answer: None,
    },
];

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.to_ascii_lowercase()] = operation(r);
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

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
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
    if r.rpc == "Watch" {
        params.push(json!({ "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string", "pattern": "^[0-9]+$" } }));
    }
    let ok = match (r.answer, r.rpc) {
        (Some(msg), _) => {
            json!({ "description": "The answer", "content": { "application/json": { "schema": reference(msg) } } })
        }
        (None, "Watch") => json!({
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
    if r.query.iter().any(|(name, ..)| *name == "min_revision") || r.rpc == "BatchCheck" || r.body.is_some() {
        responses["503"] = json!({
            "description": "Not yet: this replica has not reached min_revision within the wait, or the store is unavailable; retry",
            "content": { "application/problem+json": { "schema": reference("Problem") } }
        });
    }
    let mut op = json!({ "operationId": r.rpc, "summary": r.summary, "parameters": params, "responses": responses });
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
    use crate::layers::auth::HTTP_ROUTES;

    /// `/v1/lists/{list_id}` as the auth table writes it: `/v1/lists/{}`.
    fn shape(path: &str) -> String {
        path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_route_is_guarded() {
        for (method, path, rpc, _) in HTTP_ROUTES {
            assert!(
                ROUTES.iter().any(|r| r.method == *method && shape(r.path) == *path && r.rpc == *rpc),
                "{method} {path} ({rpc}) is guarded but not documented"
            );
        }
        for r in ROUTES {
            assert!(
                HTTP_ROUTES.iter().any(|(m, p, rpc, _)| *m == r.method && *p == shape(r.path) && *rpc == r.rpc),
                "{} {} is documented but not in the auth table",
                r.method,
                r.path
            );
            let op = &DOCUMENT["paths"][r.path][r.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], r.rpc);
            for msg in r.body.iter().chain(r.answer.iter()) {
                assert!(DOCUMENT["components"]["schemas"][*msg].is_object(), "{msg} has no schema");
            }
        }
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
