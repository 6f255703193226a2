//! Who may call what: the four roles and the role matrix over every gRPC method.
//! One table, so the matrix the tests check is the one the server enforces.

use serde::Deserialize;
use std::fmt;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The clinic's software: orders, confirmations, traces.
    Clinic,
    /// Stock-in, recalls, quarantine and release of holds.
    Pharmacist,
    /// The maintenance crew: diagnostics and motions in maintenance mode.
    Maintenance,
    /// Dashboards: reads states and streams, never changes anything.
    Observer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Clinic, Role::Pharmacist, Role::Maintenance, Role::Observer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinic => "clinic",
            Role::Pharmacist => "pharmacist",
            Role::Maintenance => "maintenance",
            Role::Observer => "observer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller, as handlers see it (inserted into the request's
/// extensions by [`crate::api::auth::layer`]); `name` is the actor journalled for what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

use Role::{Clinic as C, Maintenance as M, Observer as O, Pharmacist as P};

const EVERYONE: &[Role] = &[C, P, M, O];

/// Every method of `dispense.v1` and who may call it. Reads that show no patient
/// data are open to every role; patient data to clinic and pharmacist; changes to
/// the one role whose job they are.
pub const MATRIX: &[(&str, &[Role])] = &[
    ("dispense.v1.DispensingService/StartDispense", &[C]),
    ("dispense.v1.DispensingService/CancelDispense", &[C]),
    ("dispense.v1.DispensingService/ConfirmValidation", &[C]),
    ("dispense.v1.DispensingService/ConfirmAdministration", &[C]),
    ("dispense.v1.DispensingService/GetDispense", &[C, P, O]),
    ("dispense.v1.DispensingService/WatchDispense", &[C, P, O]),
    ("dispense.v1.DispensingService/ListQueue", &[C, P, O]),
    ("dispense.v1.StockService/ListStock", EVERYONE),
    ("dispense.v1.StockService/CountStock", EVERYONE),
    ("dispense.v1.StockService/StockIn", &[P]),
    ("dispense.v1.StockService/RecallBatch", &[P]),
    ("dispense.v1.StockService/QuarantineUnit", &[P]),
    ("dispense.v1.StockService/ReleaseHold", &[P]),
    ("dispense.v1.TraceService/GetUnitTrace", &[C, P, M]),
    ("dispense.v1.TraceService/GetPatientTrace", &[C, P]),
    ("dispense.v1.TraceService/ExportImmunization", &[C, P]),
    ("dispense.v1.MonitoringService/WatchWorkstation", EVERYONE),
    ("dispense.v1.MonitoringService/WatchTemperatures", EVERYONE),
    ("dispense.v1.MonitoringService/WatchBooths", EVERYONE),
    ("dispense.v1.MonitoringService/ListTemperatures", EVERYONE),
    ("dispense.v1.MaintenanceService/GetStatus", EVERYONE),
    ("dispense.v1.MaintenanceService/ListFaults", EVERYONE),
    ("dispense.v1.MaintenanceService/ClearFault", &[M]),
    ("dispense.v1.MaintenanceService/EnterMaintenance", &[M]),
    ("dispense.v1.MaintenanceService/ExitMaintenance", &[M]),
    ("dispense.v1.MaintenanceService/Home", &[M]),
    ("dispense.v1.MaintenanceService/Jog", &[M]),
    ("dispense.v1.MaintenanceService/SelfTest", &[M]),
    ("dispense.v1.MaintenanceService/ReadRegisters", &[M]),
    ("dispense.v1.MaintenanceService/CameraSnapshot", &[M]),
    ("dispense.v1.MaintenanceService/ExportLogs", &[M]),
];

/// What a request's path (`/package.Service/Method`) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: the standard health check, which load balancers and probes call.
    Nobody,
    /// Any authenticated caller (server reflection).
    AnyRole,
    /// One of these roles.
    OneOf(&'static [Role]),
    /// A path this server does not serve: refused before it reaches a handler.
    Unknown,
}

pub fn needs(path: &str) -> Needs {
    let method = path.trim_start_matches('/');
    if method.starts_with("grpc.health.v1.Health/") {
        return Needs::Nobody;
    }
    if method.starts_with("grpc.reflection.v1.ServerReflection/") {
        return Needs::AnyRole;
    }
    MATRIX.iter().find(|(m, _)| *m == method).map_or(Needs::Unknown, |(_, roles)| Needs::OneOf(roles))
}

/// Whether `role` may call `path`.
pub fn allowed(role: Role, path: &str) -> bool {
    match needs(path) {
        Needs::Nobody | Needs::AnyRole => true,
        Needs::OneOf(roles) => roles.contains(&role),
        Needs::Unknown => false,
    }
}

/// The streaming methods (ours, the health watch and reflection), whose open
/// streams count against a caller's limit.
pub fn is_stream(path: &str) -> bool {
    let method = path.trim_start_matches('/');
    method == "grpc.health.v1.Health/Watch"
        || method == "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        || method.ends_with("/WatchDispense")
        || method.starts_with("dispense.v1.MonitoringService/")
        || method.ends_with("/SelfTest")
        || method.ends_with("/ExportLogs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_names_every_method_of_the_contract_once() {
        let descriptor = <prost_types::FileDescriptorSet as prost::Message>::decode(dispense_proto::v1::FILE_DESCRIPTOR_SET).expect("descriptor");
        let mut contract: Vec<String> = descriptor
            .file
            .iter()
            .flat_map(|f| f.service.iter().flat_map(move |s| s.method.iter().map(move |m| format!("{}.{}/{}", f.package(), s.name(), m.name()))))
            .collect();
        contract.sort();
        let mut matrix: Vec<String> = MATRIX.iter().map(|(m, _)| (*m).to_owned()).collect();
        matrix.sort();
        assert_eq!(matrix, contract);
    }

    #[test]
    fn the_ones_the_issue_names() {
        assert!(!allowed(Role::Clinic, "/dispense.v1.MaintenanceService/Jog"), "a clinic token cannot jog the belt");
        assert!(!allowed(Role::Observer, "/dispense.v1.DispensingService/StartDispense"), "an observer cannot dispense");
        assert!(allowed(Role::Maintenance, "/dispense.v1.MaintenanceService/Jog"));
        assert!(!allowed(Role::Maintenance, "/dispense.v1.DispensingService/StartDispense"));
        assert!(!allowed(Role::Observer, "/dispense.v1.TraceService/GetPatientTrace"), "no patient data to dashboards");
        assert!(!allowed(Role::Clinic, "/dispense.v1.Nope/Nothing"));
        assert_eq!(needs("/grpc.health.v1.Health/Check"), Needs::Nobody);
    }
}
