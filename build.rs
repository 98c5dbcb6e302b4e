//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and feeds
//! the descriptors to tonic's code generator. The encoded descriptor set is
//! written beside the generated code for server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] =
    &["eligibility/v1/types.proto", "eligibility/v1/eligibility.proto", "eligibility/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("eligibility_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
