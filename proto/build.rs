//! Compiles the dispense.v1 protos with the protoc binary vendored from crates.io, so
//! no system protobuf compiler is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let well_known = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("dispense_v1_descriptor.bin"))
        .compile_with_config(
            config,
            &["dispensing", "stock", "trace", "monitoring", "maintenance"].map(|name| PathBuf::from(format!("proto/dispense/v1/{name}.proto"))),
            &[PathBuf::from("proto"), well_known],
        )?;
    Ok(())
}
