//! Every request message, decoded from arbitrary bytes and handed to the
//! services' handlers (validation, conversion, the registry) over the demo
//! data, in process: each call answers with a status a client can act on
//! (never INTERNAL, UNKNOWN or UNIMPLEMENTED) or succeeds, and never panics.
#![no_main]

use std::{sync::OnceLock, time::Duration};

use eligibility::proto::v1::{
    self as pb, admin_service_server::AdminService as _, eligibility_service_server::EligibilityService as _,
};
use eligibility_server::{
    grpc::{AdminService, EligibilityService},
    server::{self, Config},
};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::{Code, Request};

struct World {
    rt: tokio::runtime::Runtime,
    query: EligibilityService,
    admin: AdminService,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config { data_dir: dir.path().to_owned(), demo: true, ..Config::default() };
        // Reads ahead of the head wait at most this long (not seconds per
        // input).
        config.limits.max_wait = Duration::from_millis(2);
        config.watch.resume_wait = Duration::from_millis(2);
        let app = rt.block_on(server::open(&config)).expect("open the demo store");
        World {
            query: EligibilityService::new(app.clone()),
            admin: AdminService::new(app),
            rt,
            _dir: dir,
        }
    })
}

fn answered<T>(what: &str, result: Result<T, tonic::Status>) {
    if let Err(s) = result {
        assert!(!matches!(s.code(), Code::Internal | Code::Unknown | Code::Unimplemented), "{what}: {s:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let w = world();
    w.rt.block_on(async {
        macro_rules! call {
            ($svc:expr, $method:ident, $request:ty) => {
                if let Ok(req) = <$request>::decode(body) {
                    answered(stringify!($method), $svc.$method(Request::new(req)).await.map(|_| ()));
                }
            };
        }
        match kind % 12 {
            0 => call!(w.query, check, pb::CheckRequest),
            1 => call!(w.query, batch_check, pb::BatchCheckRequest),
            2 => call!(w.query, list_entries, pb::ListEntriesRequest),
            3 => call!(w.query, list_lists, pb::ListListsRequest),
            4 => call!(w.query, get_list, pb::GetListRequest),
            5 => call!(w.query, history, pb::HistoryRequest),
            6 => call!(w.query, diff, pb::DiffRequest),
            7 => call!(w.query, watch, pb::WatchRequest),
            8 => call!(w.admin, create_list, pb::CreateListRequest),
            9 => call!(w.admin, update_list, pb::UpdateListRequest),
            10 => call!(w.admin, apply, pb::ApplyRequest),
            _ => call!(w.admin, replace_members, pb::ReplaceMembersRequest),
        }
    });
});
