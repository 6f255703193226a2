//! One module per `wsctl` subcommand (or family), each with its arguments and its
//! human and JSON output.

pub mod camera;
pub mod dispense;
pub mod faults;
pub mod fleet;
pub mod logs;
pub mod maintenance;
pub mod registers;
pub mod sensors;
pub mod status;
pub mod stock;
pub mod watch;

use dispense_proto::client::Authorized;

/// What every command gets: the connection and whether to print JSON.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub channel: Authorized,
    pub json: bool,
}

impl Ctx {
    pub fn maintenance(&self) -> dispense_proto::v1::maintenance_service_client::MaintenanceServiceClient<Authorized> {
        dispense_proto::v1::maintenance_service_client::MaintenanceServiceClient::new(self.channel.clone())
    }

    pub fn monitoring(&self) -> dispense_proto::v1::monitoring_service_client::MonitoringServiceClient<Authorized> {
        dispense_proto::v1::monitoring_service_client::MonitoringServiceClient::new(self.channel.clone())
    }

    pub fn stock(&self) -> dispense_proto::v1::stock_service_client::StockServiceClient<Authorized> {
        dispense_proto::v1::stock_service_client::StockServiceClient::new(self.channel.clone())
    }

    pub fn trace(&self) -> dispense_proto::v1::trace_service_client::TraceServiceClient<Authorized> {
        dispense_proto::v1::trace_service_client::TraceServiceClient::new(self.channel.clone())
    }

    pub fn dispensing(&self) -> dispense_proto::v1::dispensing_service_client::DispensingServiceClient<Authorized> {
        dispense_proto::v1::dispensing_service_client::DispensingServiceClient::new(self.channel.clone())
    }
}
