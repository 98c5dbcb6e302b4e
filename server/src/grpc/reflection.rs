//! gRPC server reflection, both protocol versions (`grpc.reflection.v1`
//! and `v1alpha`: older grpcurl, grpc_cli, Python's grpcio-reflection and
//! several GUI clients speak only the latter). A file is sent with every
//! file it imports, transitively, so a client never has to ask again by
//! name (what grpc-go and grpc-java do).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    pin::Pin,
    sync::Arc,
};

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_reflection::pb::{v1, v1alpha};

/// The descriptors served: files by name, and the file of every symbol.
#[derive(Debug, Default)]
pub struct Descriptors {
    files: HashMap<String, (Vec<u8>, Vec<String>)>,
    symbols: HashMap<String, String>,
    services: Vec<String>,
}

impl Descriptors {
    /// Indexes encoded `FileDescriptorSet`s.
    pub fn new(sets: &[&[u8]]) -> Result<Self, prost::DecodeError> {
        let mut d = Descriptors::default();
        for set in sets {
            for file in FileDescriptorSet::decode(*set)?.file {
                d.add(file);
            }
        }
        d.services.sort();
        Ok(d)
    }

    fn add(&mut self, file: FileDescriptorProto) {
        let name = file.name().to_owned();
        let package = file.package();
        let qualify = |n: &str| if package.is_empty() { n.to_owned() } else { format!("{package}.{n}") };
        for s in &file.service {
            let service = qualify(s.name());
            for m in &s.method {
                self.symbols.insert(format!("{service}.{}", m.name()), name.clone());
            }
            self.symbols.insert(service.clone(), name.clone());
            self.services.push(service);
        }
        for e in &file.enum_type {
            self.symbols.insert(qualify(e.name()), name.clone());
        }
        for m in &file.message_type {
            self.add_message(&qualify(m.name()), m, &name);
        }
        self.files.insert(name, (file.encode_to_vec(), file.dependency.clone()));
    }

    fn add_message(&mut self, full: &str, m: &DescriptorProto, file: &str) {
        self.symbols.insert(full.to_owned(), file.to_owned());
        for e in &m.enum_type {
            self.symbols.insert(format!("{full}.{}", e.name()), file.to_owned());
        }
        for nested in &m.nested_type {
            self.add_message(&format!("{full}.{}", nested.name()), nested, file);
        }
    }

    /// The file `name` first, then every file it imports, transitively,
    /// each once.
    fn file_with_imports(&self, name: &str) -> Result<Vec<Vec<u8>>, Status> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([name.to_owned()]);
        while let Some(next) = queue.pop_front() {
            if !seen.insert(next.clone()) {
                continue;
            }
            let Some((bytes, deps)) = self.files.get(&next) else {
                return Err(Status::not_found(format!("file {next:?} is not served here")));
            };
            out.push(bytes.clone());
            queue.extend(deps.iter().cloned());
        }
        Ok(out)
    }

    fn symbol_file(&self, symbol: &str) -> Result<Vec<Vec<u8>>, Status> {
        let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
        match self.symbols.get(symbol) {
            Some(file) => self.file_with_imports(file),
            None => Err(Status::not_found(format!("symbol {symbol:?} is not served here"))),
        }
    }
}

/// Implements one version's `ServerReflection` over [`Descriptors`]: the
/// two versions' messages are the same, in two packages.
macro_rules! reflection_service {
    ($name:ident, $pb:ident) => {
        /// Server reflection (`grpc.reflection.
        #[doc = stringify!($pb)]
        /// `).
        #[derive(Clone)]
        pub struct $name(pub Arc<Descriptors>);

        impl $name {
            fn answer(&self, req: $pb::ServerReflectionRequest) -> $pb::ServerReflectionResponse {
                use $pb::{
                    server_reflection_request::MessageRequest as Ask,
                    server_reflection_response::MessageResponse as Say,
                };
                let files = |r: Result<Vec<Vec<u8>>, Status>| match r {
                    Ok(file_descriptor_proto) => {
                        Say::FileDescriptorResponse($pb::FileDescriptorResponse { file_descriptor_proto })
                    }
                    Err(s) => Say::ErrorResponse($pb::ErrorResponse {
                        error_code: s.code() as i32,
                        error_message: s.message().to_owned(),
                    }),
                };
                let said = match &req.message_request {
                    Some(Ask::FileByFilename(name)) => files(self.0.file_with_imports(name)),
                    Some(Ask::FileContainingSymbol(symbol)) => files(self.0.symbol_file(symbol)),
                    // No extensions are declared here: the answer is empty
                    // (grpcurl expects a success).
                    Some(Ask::AllExtensionNumbersOfType(t)) => {
                        Say::AllExtensionNumbersResponse($pb::ExtensionNumberResponse {
                            base_type_name: t.clone(),
                            extension_number: Vec::new(),
                        })
                    }
                    Some(Ask::FileContainingExtension(_)) => {
                        files(Err(Status::not_found("no extensions are declared")))
                    }
                    Some(Ask::ListServices(_)) => Say::ListServicesResponse($pb::ListServiceResponse {
                        service: self
                            .0
                            .services
                            .iter()
                            .map(|name| $pb::ServiceResponse { name: name.clone() })
                            .collect(),
                    }),
                    None => files(Err(Status::invalid_argument("the request names nothing to reflect on"))),
                };
                $pb::ServerReflectionResponse {
                    valid_host: req.host.clone(),
                    original_request: Some(req),
                    message_response: Some(said),
                }
            }
        }

        #[tonic::async_trait]
        impl $pb::server_reflection_server::ServerReflection for $name {
            type ServerReflectionInfoStream =
                Pin<Box<dyn Stream<Item = Result<$pb::ServerReflectionResponse, Status>> + Send>>;

            async fn server_reflection_info(
                &self,
                req: Request<Streaming<$pb::ServerReflectionRequest>>,
            ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
                let service = self.clone();
                let answers = req.into_inner().map(move |r| r.map(|r| service.answer(r)));
                Ok(Response::new(Box::pin(answers)))
            }
        }
    };
}

reflection_service!(ReflectionV1, v1);
reflection_service!(ReflectionV1Alpha, v1alpha);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_comes_with_everything_it_imports() {
        let d = Descriptors::new(&[eligibility::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET]).unwrap();
        let names = |files: Vec<Vec<u8>>| -> Vec<String> {
            files.iter().map(|f| FileDescriptorProto::decode(&f[..]).unwrap().name().to_owned()).collect()
        };
        let got = names(d.symbol_file("eligibility.v1.EligibilityService").unwrap());
        assert_eq!(got[0], "eligibility/v1/eligibility.proto");
        for dep in ["eligibility/v1/types.proto", "google/protobuf/timestamp.proto"] {
            assert_eq!(got.iter().filter(|n| *n == dep).count(), 1, "{dep} once in {got:?}");
        }
        assert_eq!(
            names(d.symbol_file(".eligibility.v1.CheckRequest").unwrap())[0],
            "eligibility/v1/eligibility.proto"
        );
        assert!(d.symbol_file("eligibility.v1.EligibilityService.Check").is_ok(), "methods are symbols");
        assert!(d.symbol_file("eligibility.v1.Nope").is_err());
        assert!(d.services.contains(&"grpc.health.v1.Health".to_owned()));
    }
}
