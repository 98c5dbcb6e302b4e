//! Tests of the OpenAPI document.

use super::*;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| document(&Limits::default()));

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
    let documented: usize = DOCUMENT["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, n, "the document has an operation for each HTTP route, and no other");
}

#[test]
fn schemas_follow_the_json_mapping() {
    let s = &DOCUMENT["components"]["schemas"];
    // A field that may be null is `anyOf: [its schema, null]`.
    let field = |m: &str, f: &str| {
        let p = &s[m]["properties"][f];
        if p["anyOf"][1]["type"] == "null" { p["anyOf"][0].clone() } else { p.clone() }
    };
    assert_eq!(field("ResponseHeader", "revision")["anyOf"][0]["type"], "string", "uint64 as a string");
    assert_eq!(field("ResponseHeader", "asOf")["format"], "date-time");
    assert_eq!(field("Decision", "reason")["$ref"], "#/components/schemas/DecisionReason");
    assert!(s["DecisionReason"]["enum"].as_array().unwrap().iter().any(|v| v == "DECISION_REASON_REMOVED"));
    assert_eq!(field("BatchCheckRequest", "items")["type"], "array");
    assert_eq!(field("List", "memberCount")["type"], "integer");
    assert_eq!(field("List", "memberCount")["readOnly"], true, "answered, not read");
}

#[test]
fn schemas_state_the_rules_the_server_enforces() {
    let s = &DOCUMENT["components"]["schemas"];
    assert!(!s["EntryAction"]["enum"].as_array().unwrap().iter().any(|v| v == "ENTRY_ACTION_UNSPECIFIED"));
    assert_eq!(s["ReadPoint"]["not"]["anyOf"][0]["required"], json!(["atRevision", "minRevision"]));
    assert_eq!(s["WriteOptions"]["required"], json!(["reason"]));
    assert_eq!(s["CheckItem"]["required"], json!(["listId", "country"]));
    assert_eq!(s["BatchCheckRequest"]["properties"]["items"]["maxItems"], Limits::default().max_batch);
    assert_eq!(s["EntryChange"]["then"]["properties"]["conditions"]["maxLength"], 0, "a removal has no conditions");
    let check = &DOCUMENT["paths"]["/v1/lists/{list_id}/check/{country}"]["get"]["parameters"];
    let at = check.as_array().unwrap().iter().find(|p| p["name"] == "at_revision").unwrap();
    assert_eq!(at["description"], "Excludes min_revision.");
    let batch = &DOCUMENT["paths"]["/v1/check:batch"]["post"]["parameters"];
    assert!(!batch.as_array().unwrap().iter().any(|p| p["name"] == "If-Match"), "a read takes no If-Match");
}

/// The country pattern accepts exactly what the server parses: every
/// code in any case, and nothing else among two- and three-character
/// strings of letters and digits.
#[test]
fn the_country_pattern_is_the_parser() {
    let pattern = format!("^{}$", *COUNTRY);
    let codes: std::collections::HashSet<String> = eligibility::Country::accepted_codes().into_iter().collect();
    // The pattern is alternatives of per-letter classes: expand it the
    // other way round and compare with the parser.
    let alternatives: Vec<&str> = pattern.trim_start_matches("^(?:").trim_end_matches(")$").split('|').collect();
    assert_eq!(alternatives.len(), codes.len());
    for alt in alternatives {
        let upper: String = alt
            .split(['[', ']'])
            .filter(|p| !p.is_empty())
            .map(|p| if p.bytes().all(|b| b.is_ascii_digit()) { p.to_owned() } else { p[..1].to_ascii_uppercase() })
            .collect();
        assert!(codes.contains(&upper), "{alt} is not an accepted code");
        assert!(eligibility::Country::parse(&upper.to_ascii_lowercase()).is_ok(), "{upper} in lower case");
    }
    for bad in ["QQ", "AAA", "000", "0", "XKK"] {
        assert!(eligibility::Country::parse(bad).is_err() && !codes.contains(bad), "{bad}");
    }
}
