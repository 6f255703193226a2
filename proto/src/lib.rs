//! The `dispense.v1` gRPC contract, generated from `proto/dispense/v1/*.proto` by
//! tonic/prost, and how a client connects. Only the controller's gRPC layer, the
//! CLI and clients use these types.

pub mod client;

/// Package `dispense.v1`.
pub mod v1 {
    #![allow(missing_debug_implementations, clippy::all)]
    tonic::include_proto!("dispense.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dispense_v1_descriptor");
}
