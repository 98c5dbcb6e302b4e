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

use crate::{
    fields,
    limits::{Limits, text_limits},
    reads::request::{ENTRIES_TOKEN, HISTORY_TOKEN},
    routes::{self, Doc, Op, Route, Surface},
};

/// The document of a server with these limits (the largest batch, page
/// and changeset are stated in it).
pub fn document(limits: &Limits) -> Value {
    let mut paths = Map::new();
    for (route, doc) in documented() {
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.verb.to_ascii_lowercase()] = operation(route, doc, limits);
    }
    let mut schemas = schemas(limits);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Export eligibility service: HTTP/JSON API",
            "version": "v1",
            "description": "The eligibility.v1 RPCs at resource paths, on the gRPC port. JSON is the proto3 canonical mapping of the same messages. Errors are RFC 9457 problem details carrying the gRPC code. The schemas state every rule of a request's form the server enforces (patterns, lengths, counts, parameters that exclude each other); what depends on the data is answered as documented per operation: a revision past the head is OUT_OF_RANGE (400), a list that does not exist NOT_FOUND (404), a write whose If-Match or expectedRevision is not the head ABORTED (412). Rules across fields that JSON Schema cannot state are in the descriptions: one change per list and country in a changeset, each country once in a membership, a body's listId equal to the path's, Idempotency-Key equal to options.requestId and If-Match to options.expectedRevision when both are given."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        },
        "security": [ {}, { "bearer": [] } ]
    })
}

/// A list id, as [`eligibility::ListId::parse`] accepts it (unanchored).
const LIST_ID: &str = "[a-z0-9][a-z0-9._-]{0,62}";

/// A revision written as text, as [`fields::revision_digits`] reads it.
fn revision_digits() -> String {
    format!("[0-9]{{1,{}}}", fields::REVISION_DIGITS)
}

/// Every country code [`eligibility::Country::parse`] accepts (alpha-2,
/// alpha-3, numeric; letters in any case), as one regular expression
/// without flags (JSON Schema patterns have none).
static COUNTRY: LazyLock<String> = LazyLock::new(|| {
    let any_case = |code: &str| -> String {
        code.chars()
            .map(|c| if c.is_ascii_alphabetic() { format!("[{c}{}]", c.to_ascii_lowercase()) } else { c.to_string() })
            .collect()
    };
    let codes: Vec<String> = eligibility::Country::accepted_codes().iter().map(|c| any_case(c)).collect();
    format!("(?:{})", codes.join("|"))
});

fn country_schema() -> Value {
    json!({ "type": "string", "pattern": format!("^{}$", *COUNTRY), "description": "An ISO 3166-1 code: alpha-2, alpha-3 or numeric, letters in any case (officially assigned, and XK)" })
}

fn list_id_schema() -> Value {
    json!({ "type": "string", "pattern": format!("^{LIST_ID}$") })
}

/// A body's list id beside the path's: empty (the path's) or the same id.
fn body_list_id() -> Value {
    json!({ "type": "string", "pattern": format!("^({LIST_ID})?$"), "description": "Empty, or the list id of the path" })
}

fn revision_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX })
}

/// The schema of a query parameter, by its name (the names mean the same
/// on every route).
fn query_schema(name: &str, op: Op, limits: &Limits) -> Value {
    match name {
        "as_of" | "from" | "to" => json!({ "type": "string", "format": "date-time" }),
        "at_revision" | "min_revision" | "from_revision" | "to_revision" | "after_revision" => revision_schema(),
        "page_size" => {
            json!({ "type": "integer", "minimum": 0, "maximum": limits.max_page_size, "description": "0 or absent: the default page" })
        }
        "page_token" if op == Op::ListEntries => {
            json!({ "type": "string", "pattern": format!("^({ENTRIES_TOKEN}{})?$", *COUNTRY), "description": "next_page_token of the previous page" })
        }
        "page_token" => {
            json!({ "type": "string", "pattern": format!("^({HISTORY_TOKEN}{})?$", revision_digits()), "description": "next_page_token of the previous page" })
        }
        // History's country filter: empty is no filter.
        "country" if op == Op::History => json!({ "type": "string", "pattern": format!("^{}?$", *COUNTRY) }),
        "country" => country_schema(),
        "list_id" => list_id_schema(),
        "snapshot" => {
            json!({ "type": "string", "enum": ["true", "false", ""], "description": "true (or empty): the lists' members first" })
        }
        _ => json!({ "type": "string" }),
    }
}

/// Query parameters that exclude each other (`when`: only when the second
/// has one of these values).
const EXCLUSIVE: &[(&str, &str, Option<&[&str]>)] =
    &[("at_revision", "min_revision", None), ("after_revision", "snapshot", Some(&["true", ""]))];

/// The HTTP routes, with their documentation.
fn documented() -> impl Iterator<Item = (&'static Route, &'static Doc)> {
    routes::of(Surface::Http).filter_map(|r| r.doc.as_ref().map(|d| (r, d)))
}

fn operation(route: &Route, r: &Doc, limits: &Limits) -> Value {
    let rpc = route.op.name();
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "country" { country_schema() } else { list_id_schema() };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    // Parameters that exclude each other: said in both parameters'
    // descriptions (OpenAPI has no keyword for it across parameters; an
    // object parameter could say it but tools serialize it unreliably).
    for (name, _, repeat) in r.query {
        let schema = query_schema(name, route.op, limits);
        let schema = if *repeat { json!({ "type": "array", "items": schema }) } else { schema };
        let mut param = json!({ "name": name, "in": "query", "required": false, "schema": schema, "explode": true });
        let excludes: Vec<String> = EXCLUSIVE
            .iter()
            .filter_map(|(a, b, when)| {
                let other = if a == name {
                    b
                } else if b == name {
                    a
                } else {
                    return None;
                };
                r.query.iter().any(|(n, ..)| n == other).then(|| match when {
                    None => format!("Excludes {other}."),
                    Some(_) => format!("{a} excludes {b}=true."),
                })
            })
            .collect();
        if !excludes.is_empty() {
            param["description"] = json!(excludes.join(" "));
        }
        params.push(param);
    }
    if r.answer.is_some() && r.body.is_none() {
        params.push(
            json!({ "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" } }),
        );
    }
    // Writes only (BatchCheck has a body too, and reads no such header).
    // Idempotency-Key: the text a header value may be (visible ASCII, space
    // and tab), as the server reads it.
    if matches!(route.access, routes::Access::Role(role) if role != crate::identity::Role::Reader) {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "The request id (options.requestId; equal to it when both are given): a retry with the same key answers the first result",
            "schema": { "type": "string", "pattern": "^[\\t\\x20-\\x7E]*$", "maxLength": text_limits::REQUEST_ID }
        }));
        params.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The head revision this write expects (options.expectedRevision; equal to it when both are given): \"<revision>\" or an ETag of a read; otherwise ABORTED (412). Empty: no precondition",
            "schema": { "type": "string", "pattern": format!("^((W/)?\"([^\"]*:)?{}\")?$", revision_digits()) }
        }));
    }
    if route.op == Op::Watch {
        params.push(json!({ "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string", "pattern": format!("^{}$", revision_digits()) } }));
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
/// mapping writes them, with the rules the server enforces on requests
/// ([`rules`]). An enum's `*_UNSPECIFIED` is left out: the mapping never
/// writes a zero enum, and a request that gives one is refused.
fn schemas(limits: &Limits) -> Map<String, Value> {
    let set = FileDescriptorSet::decode(eligibility::FILE_DESCRIPTOR_SET).expect("the built-in descriptor set decodes");
    let mut out = Map::new();
    for file in set.file.iter().filter(|f| f.package() == "eligibility.v1") {
        for e in &file.enum_type {
            let names: Vec<&str> = e.value.iter().map(|v| v.name()).filter(|n| !n.ends_with("_UNSPECIFIED")).collect();
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
            let mut schema = json!({ "type": "object", "properties": props, "additionalProperties": false });
            // The members of a oneof exclude each other: no two given,
            // neither null (null is absent).
            let mut pairs = Vec::new();
            for (_, members) in super::ONEOFS.iter().filter(|(message, _)| message == m.name()) {
                for (k, a) in members.iter().enumerate() {
                    for b in &members[k + 1..] {
                        let given = json!({ "not": { "type": "null" } });
                        pairs.push(json!({ "required": [a, b], "properties": { a: given, b: given } }));
                    }
                }
            }
            if !pairs.is_empty() {
                schema["not"] = json!({ "anyOf": pairs });
            }
            rules(m.name(), &mut schema, limits);
            or_null(&mut schema);
            out.insert(m.name().to_owned(), schema);
        }
    }
    out
}

/// The JSON mapping reads `null` as a field's default: any field that is
/// not required may be `null` in a request (the server reads it so,
/// `http::body`).
fn or_null(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(props) = schema["properties"].as_object_mut() {
        for (name, prop) in props.iter_mut() {
            if !required.contains(name) && prop.get("readOnly").is_none() {
                *prop = json!({ "anyOf": [prop.take(), { "type": "null" }] });
            }
        }
    }
}

/// The rules of a request message's form, as the server checks them
/// (`writes/request.rs`, `wire/`): ids and codes by pattern, text limits
/// in characters, counts, required members.
fn rules(message: &str, schema: &mut Value, limits: &Limits) {
    use text_limits::*;
    let props = &mut schema["properties"];
    let mut set = |field: &str, rule: Value| {
        if let (Some(target), Some(rule)) = (props[field].as_object_mut(), rule.as_object()) {
            target.extend(rule.clone());
        }
    };
    let text = |max: usize| json!({ "maxLength": max });
    let required: &[&str] = match message {
        "CheckItem" => {
            set("listId", list_id_schema());
            set("country", country_schema());
            &["listId", "country"]
        }
        "BatchCheckRequest" => {
            set("items", json!({ "minItems": 1, "maxItems": limits.max_batch }));
            &["items"]
        }
        "EntryChange" => {
            set("listId", list_id_schema());
            set("country", country_schema());
            set("conditions", text(CONDITIONS));
            schema["if"] =
                json!({ "properties": { "action": { "const": "ENTRY_ACTION_REMOVE" } }, "required": ["action"] });
            schema["then"] = json!({ "properties": { "conditions": { "maxLength": 0 } } });
            &["listId", "country", "action"]
        }
        "Member" => {
            set("country", country_schema());
            set("conditions", text(CONDITIONS));
            &["country"]
        }
        "List" => {
            set("id", list_id_schema());
            set("title", text(TITLE));
            set("description", text(DESCRIPTION));
            set("authority", text(AUTHORITY));
            // Answered, never read from a request.
            for output in ["createdRevision", "updatedRevision", "memberCount"] {
                set(output, json!({ "readOnly": true }));
            }
            &["id", "mode"]
        }
        "WriteOptions" => {
            set(
                "reason",
                json!({ "maxLength": REASON, "pattern": "\\S", "description": "Why this change is made (required, not blank)" }),
            );
            set("reference", text(REFERENCE));
            set("requestId", text(REQUEST_ID));
            set("actor", text(ACTOR));
            &["reason"]
        }
        "CreateListRequest" => &["list", "options"],
        "UpdateListRequest" => {
            set("listId", body_list_id());
            set("title", text(TITLE));
            set("description", text(DESCRIPTION));
            set("authority", text(AUTHORITY));
            &["options"]
        }
        "ApplyRequest" => {
            set(
                "changes",
                json!({ "minItems": 1, "maxItems": limits.max_changes, "description": "One change per list and country" }),
            );
            &["changes", "options"]
        }
        "ReplaceMembersRequest" => {
            set("listId", body_list_id());
            set("members", json!({ "description": "Each country once" }));
            &["options"]
        }
        _ => &[],
    };
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
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
        // The mapping writes a string and reads a string or a number.
        Type::Uint64 | Type::Fixed64 => json!({ "anyOf": [
            { "type": "string", "pattern": format!("^{}$", revision_digits()) },
            { "type": "integer", "minimum": 0, "maximum": u64::MAX }
        ] }),
        Type::Float | Type::Double => json!({ "type": "number" }),
        Type::Enum | Type::Message | Type::Group => match type_name {
            ".google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            name => reference(name.rsplit('.').next().unwrap_or(name)),
        },
    }
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
