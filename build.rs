//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and feeds
//! the descriptors to tonic's code generator and to pbjson-build, which
//! generates the proto3 canonical JSON mapping (serde) of every message
//! from the same descriptors. The encoded descriptor set is written beside
//! the generated code for server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] =
    &["eligibility/v1/types.proto", "eligibility/v1/eligibility.proto", "eligibility/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let encoded = fds.encode_to_vec();
    fs::write(out.join("eligibility_v1_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The well-known types with their JSON mapping (a Timestamp is
        // RFC 3339 text in JSON).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        // Default values are written out: `"eligible": false` is an answer,
        // not an absence.
        .emit_fields()
        .build(&[".eligibility.v1"])?;
    Ok(())
}
