//! The route table itself: every route the port serves, with its
//! documentation. What the fields mean, and how a request is resolved
//! against the table, is the parent module's.

use super::{Access, Doc, Op, Page, Route, Shape, Surface};
use crate::identity::Role;

const READ: Access = Access::Role(Role::Reader);
const WRITE: Access = Access::Role(Role::Writer);
const ADMIN: Access = Access::Role(Role::Admin);

pub(crate) const fn grpc(path: &'static str, op: Op, access: Access, label: &'static str, shape: Shape) -> Route {
    Route { surface: Surface::Grpc, verb: "POST", path, op, access, label, shape, framed: false, doc: None }
}

const fn framed(route: Route) -> Route {
    Route { framed: true, ..route }
}

const fn http(verb: &'static str, path: &'static str, op: Op, access: Access, label: &'static str, doc: Doc) -> Route {
    let shape = if matches!(op, Op::Watch) { Shape::ChangeStream } else { Shape::Unary };
    Route { surface: Surface::Http, verb, path, op, access, label, shape, framed: false, doc: Some(doc) }
}

const fn console(path: &'static str, op: Op, access: Access, label: &'static str) -> Route {
    Route {
        surface: Surface::Console,
        verb: "GET",
        path,
        op,
        access,
        label,
        shape: Shape::Unary,
        framed: false,
        doc: None,
    }
}

/// A read point's query parameters.
const POINT: &[(&str, &str, bool)] =
    &[("as_of", "date-time", false), ("at_revision", "integer", false), ("min_revision", "integer", false)];

/// Every route served. Order matters only for readers: gRPC paths are
/// exact, HTTP and console templates never overlap.
pub static ROUTES: &[Route] = &[
    // eligibility.v1.EligibilityService: reads.
    framed(grpc("/eligibility.v1.EligibilityService/Check", Op::Check, READ, "Check", Shape::Unary)),
    framed(grpc("/eligibility.v1.EligibilityService/BatchCheck", Op::BatchCheck, READ, "BatchCheck", Shape::Unary)),
    grpc("/eligibility.v1.EligibilityService/ListEntries", Op::ListEntries, READ, "ListEntries", Shape::Unary),
    grpc("/eligibility.v1.EligibilityService/ListLists", Op::ListLists, READ, "ListLists", Shape::Unary),
    grpc("/eligibility.v1.EligibilityService/GetList", Op::GetList, READ, "GetList", Shape::Unary),
    grpc("/eligibility.v1.EligibilityService/History", Op::History, READ, "History", Shape::Unary),
    grpc("/eligibility.v1.EligibilityService/Diff", Op::Diff, READ, "Diff", Shape::Unary),
    framed(grpc("/eligibility.v1.EligibilityService/Watch", Op::Watch, READ, "Watch", Shape::ChangeStream)),
    // eligibility.v1.AdminService: writes.
    grpc("/eligibility.v1.AdminService/CreateList", Op::CreateList, ADMIN, "CreateList", Shape::Unary),
    grpc("/eligibility.v1.AdminService/UpdateList", Op::UpdateList, ADMIN, "UpdateList", Shape::Unary),
    grpc("/eligibility.v1.AdminService/Apply", Op::Apply, WRITE, "Apply", Shape::Unary),
    grpc("/eligibility.v1.AdminService/ReplaceMembers", Op::ReplaceMembers, WRITE, "ReplaceMembers", Shape::Unary),
    // Standard services.
    grpc("/grpc.health.v1.Health/Check", Op::HealthCheck, Access::Public, "health.Check", Shape::Unary),
    grpc("/grpc.health.v1.Health/Watch", Op::HealthWatch, Access::Public, "health.Watch", Shape::Stream),
    grpc(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Op::Reflection,
        Access::Public,
        "ServerReflectionInfo",
        Shape::Stream,
    ),
    grpc(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Op::Reflection,
        Access::Public,
        "ServerReflectionInfo",
        Shape::Stream,
    ),
    // The HTTP/JSON API.
    http(
        "GET",
        "/v1/lists",
        Op::ListLists,
        READ,
        "http.ListLists",
        Doc {
            summary: "Every list, with its mode and member count, at a read point",
            query: POINT,
            body: None,
            answer: Some("ListListsResponse"),
        },
    ),
    http(
        "POST",
        "/v1/lists",
        Op::CreateList,
        ADMIN,
        "http.CreateList",
        Doc {
            summary: "Create a list (admin)",
            query: &[],
            body: Some("CreateListRequest"),
            answer: Some("WriteResponse"),
        },
    ),
    http(
        "GET",
        "/v1/lists/{list_id}",
        Op::GetList,
        READ,
        "http.GetList",
        Doc {
            summary: "One list's metadata and member count at a read point",
            query: POINT,
            body: None,
            answer: Some("GetListResponse"),
        },
    ),
    http(
        "PATCH",
        "/v1/lists/{list_id}",
        Op::UpdateList,
        ADMIN,
        "http.UpdateList",
        Doc {
            summary: "Change a list's metadata (admin)",
            query: &[],
            body: Some("UpdateListRequest"),
            answer: Some("WriteResponse"),
        },
    ),
    http(
        "GET",
        "/v1/lists/{list_id}/entries",
        Op::ListEntries,
        READ,
        "http.ListEntries",
        Doc {
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
    ),
    http(
        "GET",
        "/v1/lists/{list_id}/check/{country}",
        Op::Check,
        READ,
        "http.Check",
        Doc {
            summary: "May COUNTRY receive items of LIST at a read point, and why?",
            query: POINT,
            body: None,
            answer: Some("CheckResponse"),
        },
    ),
    http(
        "POST",
        "/v1/check:batch",
        Op::BatchCheck,
        READ,
        "http.BatchCheck",
        Doc {
            summary: "Many checks at one snapshot",
            query: &[],
            body: Some("BatchCheckRequest"),
            answer: Some("BatchCheckResponse"),
        },
    ),
    http(
        "GET",
        "/v1/lists/{list_id}/history",
        Op::History,
        READ,
        "http.History",
        Doc {
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
    ),
    http(
        "GET",
        "/v1/lists/{list_id}/diff",
        Op::Diff,
        READ,
        "http.Diff",
        Doc {
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
    ),
    http(
        "PUT",
        "/v1/lists/{list_id}/members",
        Op::ReplaceMembers,
        WRITE,
        "http.ReplaceMembers",
        Doc {
            summary: "Make a list's membership exactly this set (writer)",
            query: &[],
            body: Some("ReplaceMembersRequest"),
            answer: Some("WriteResponse"),
        },
    ),
    http(
        "POST",
        "/v1/changesets",
        Op::Apply,
        WRITE,
        "http.Apply",
        Doc {
            summary: "Record one changeset of entry changes (writer)",
            query: &[],
            body: Some("ApplyRequest"),
            answer: Some("WriteResponse"),
        },
    ),
    http(
        "GET",
        "/v1/watch",
        Op::Watch,
        READ,
        "http.Watch",
        Doc {
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
    ),
    http(
        "GET",
        "/v1/openapi.json",
        Op::OpenApi,
        Access::Public,
        "http.OpenApi",
        Doc { summary: "This document", query: &[], body: None, answer: None },
    ),
    // The web console.
    console("/", Op::Page(Page::Index), Access::Page, "console.page"),
    console("/lists/{id}", Op::Page(Page::List), Access::Page, "console.page"),
    console("/lists/{id}/diff", Op::Page(Page::Diff), Access::Page, "console.page"),
    console("/countries", Op::Page(Page::Countries), Access::Page, "console.page"),
    console("/countries/{code}", Op::Page(Page::Country), Access::Page, "console.page"),
    console("/history", Op::Page(Page::History), Access::Page, "console.page"),
    console("/console/assets/{name}", Op::Asset, Access::Public, "console.asset"),
];
