//! Reads: paging, read-your-writes with min_revision, health, reflection.

use std::time::Duration;

use eligibility::proto::v1::{self as pb, read_point::Consistency};
use eligibility_client::{EntryChange, Point, Revision, WriteOptions};
use eligibility_e2e::{AFTER_CUT, TestServer, cc, list};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[tokio::test]
async fn list_entries_pages_in_country_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    let mut token = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = q
            .list_entries(pb::ListEntriesRequest {
                list_id: "cyber".into(),
                point: None,
                page_size: 10,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(r.entries.len() <= 10);
        seen.extend(r.entries.into_iter().map(|e| e.country));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, AFTER_CUT.to_vec());
}

#[tokio::test]
async fn history_pages_by_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let mut q = server.client().await.raw_query();
    let r = q
        .history(pb::HistoryRequest { list_id: "cyber".into(), page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.changesets.iter().map(|c| c.revision).collect::<Vec<_>>(), [1, 2]);
    let r = q
        .history(pb::HistoryRequest {
            list_id: "cyber".into(),
            page_size: 2,
            page_token: r.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.changesets.iter().map(|c| c.revision).collect::<Vec<_>>(), [3]);
    assert!(r.next_page_token.is_empty());
    // As recorded at revision 2, the cut is not in the history yet.
    let r = q
        .history(pb::HistoryRequest { list_id: "cyber".into(), at_revision: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.changesets.len(), 2);
    assert_eq!(r.header.unwrap().revision, 2);
}

#[tokio::test]
async fn min_revision_waits_for_a_write_that_arrives_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), true).await;
    let client = server.client().await;
    let mut q = client.raw_query();
    let p = pb::ReadPoint { as_of: None, consistency: Some(Consistency::MinRevision(4)) };
    let mut req =
        tonic::Request::new(pb::CheckRequest { list_id: "cyber".into(), country: "MX".into(), point: Some(p) });
    req.set_timeout(Duration::from_secs(5));
    let waiting = tokio::spawn(async move { q.check(req).await });
    // The read is parked until revision 4 exists; write it.
    let w = client
        .apply(&[EntryChange::add(&list("cyber"), cc("MX"))], None, &WriteOptions::reason("reinstated"))
        .await
        .unwrap();
    assert_eq!(w.revision, Revision(4));
    let r = waiting.await.unwrap().unwrap().into_inner();
    assert_eq!(r.header.unwrap().revision, 4);
    assert!(r.decision.unwrap().eligible, "the read sees the write it waited for");
    // An already-reached min_revision answers at once at the latest.
    let a = client.check_at(&list("cyber"), cc("MX"), Point::latest().min_revision(Revision(2))).await.unwrap();
    assert_eq!(a.header.revision, Revision(4));
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "eligibility.v1.EligibilityService", "eligibility.v1.AdminService"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service}");
    }
    // Reflection lists our services.
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("{resp:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["eligibility.v1.EligibilityService", "eligibility.v1.AdminService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

#[tokio::test]
async fn reflection_v1alpha_sends_a_file_with_its_imports() {
    use prost::Message;
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), false).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut refl = ServerReflectionClient::new(channel);
    let ask = |m: MessageRequest| ServerReflectionRequest { host: String::new(), message_request: Some(m) };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol("eligibility.v1.AdminService".into())),
        ask(MessageRequest::FileContainingSymbol("eligibility.v1.NoSuchThing".into())),
    ];
    let answers: Vec<_> = refl
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = &answers[0].message_response else { panic!() };
    assert!(list.service.iter().any(|s| s.name == "eligibility.v1.AdminService"), "{list:?}");
    let Some(MessageResponse::FileDescriptorResponse(files)) = &answers[1].message_response else { panic!() };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|f| prost_types::FileDescriptorProto::decode(&f[..]).unwrap().name().to_owned())
        .collect();
    assert_eq!(
        names,
        ["eligibility/v1/admin.proto", "google/protobuf/timestamp.proto", "eligibility/v1/types.proto"],
        "the file, then what it imports (once each)"
    );
    let Some(MessageResponse::ErrorResponse(e)) = &answers[2].message_response else { panic!() };
    assert_eq!(e.error_code, tonic::Code::NotFound as i32);
    assert!(e.error_message.contains("NoSuchThing"), "{e:?}");
}
