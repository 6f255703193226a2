//! The gRPC face of the dispatcher: translates `dispense.v1` messages to domain
//! types and back, and dispatcher errors to gRPC status codes. The only module
//! that touches proto types.

use crate::dispatcher::{DispatchError, Dispatcher, Watch};
use crate::order::{DispenseStatus, PatientOrder, Stage};
use dispense_proto::v1 as pb;
use dispense_proto::v1::dispensing_service_server::{DispensingService, DispensingServiceServer};
use futures::Stream;
use hal::BoothId;
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// The DispensingService implementation.
#[derive(Debug, Clone)]
pub struct DispensingApi {
    dispatcher: Dispatcher,
}

impl DispensingApi {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }

    pub fn into_server(self) -> DispensingServiceServer<Self> {
        DispensingServiceServer::new(self)
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::WatchDispenseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DispensingService for DispensingApi {
    async fn start_dispense(&self, request: Request<pb::StartDispenseRequest>) -> Result<Response<pb::StartDispenseResponse>, Status> {
        let req = request.into_inner();
        let order = req.order.ok_or_else(|| Status::invalid_argument("order: is required"))?;
        let booth = u8::try_from(order.booth).map_err(|_| Status::invalid_argument(format!("order.booth: {} is not a booth", order.booth)))?;
        let order = PatientOrder {
            patient_id: order.patient_id,
            patient_name: order.patient_name,
            product_id: order.product_id,
            booth: BoothId(booth),
            dose_number: order.dose_number,
        };
        let started = self.dispatcher.start(&req.request_id, order).map_err(to_status)?;
        Ok(Response::new(pb::StartDispenseResponse { dispense_id: started.dispense_id, duplicate: started.duplicate }))
    }

    type WatchDispenseStream = ProgressStream;

    async fn watch_dispense(&self, request: Request<pb::WatchDispenseRequest>) -> Result<Response<Self::WatchDispenseStream>, Status> {
        let id = request.into_inner().dispense_id;
        let stream: ProgressStream = match self.dispatcher.watch(&id).map_err(to_status)? {
            Watch::Finished(status) => Box::pin(futures::stream::iter([Ok(progress(status))])),
            Watch::Live(rx) => Box::pin(futures::stream::unfold((rx, false, true), |(mut rx, done, first)| async move {
                if done {
                    return None;
                }
                // The current state first, then each change, ending after a final stage.
                if !first && rx.changed().await.is_err() {
                    return None;
                }
                let status = rx.borrow_and_update().clone();
                let finished = status.stage.is_final();
                Some((Ok(progress(status)), (rx, finished, false)))
            })),
        };
        Ok(Response::new(stream))
    }

    async fn get_dispense(&self, request: Request<pb::GetDispenseRequest>) -> Result<Response<pb::GetDispenseResponse>, Status> {
        let status = self.dispatcher.get(&request.into_inner().dispense_id).map_err(to_status)?;
        Ok(Response::new(pb::GetDispenseResponse { dispense: Some(dispense(status)) }))
    }

    async fn confirm_validation(&self, request: Request<pb::ConfirmValidationRequest>) -> Result<Response<pb::ConfirmValidationResponse>, Status> {
        self.dispatcher.confirm_validation(&request.into_inner().dispense_id).map_err(to_status)?;
        Ok(Response::new(pb::ConfirmValidationResponse {}))
    }

    async fn confirm_administration(
        &self,
        request: Request<pb::ConfirmAdministrationRequest>,
    ) -> Result<Response<pb::ConfirmAdministrationResponse>, Status> {
        let req = request.into_inner();
        self.dispatcher.confirm_administration(&req.dispense_id, &req.nurse_id).map_err(to_status)?;
        Ok(Response::new(pb::ConfirmAdministrationResponse {}))
    }
}

fn to_status(e: DispatchError) -> Status {
    match &e {
        DispatchError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
        DispatchError::NotFound(_) => Status::not_found(e.to_string()),
        DispatchError::RequestIdReused { .. } => Status::already_exists(e.to_string()),
        DispatchError::WrongStage { .. } => Status::failed_precondition(e.to_string()),
        DispatchError::NotReady(_) => Status::unavailable(e.to_string()),
        DispatchError::Journal(_) => {
            tracing::error!(error = %e, "journal error answering a request");
            Status::internal("the workstation's journal failed; the error is logged")
        }
    }
}

fn progress(status: DispenseStatus) -> pb::WatchDispenseResponse {
    pb::WatchDispenseResponse { dispense: Some(dispense(status)) }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

fn dispense(s: DispenseStatus) -> pb::Dispense {
    pb::Dispense {
        dispense_id: s.id,
        request_id: s.request_id,
        order: Some(pb::PatientOrder {
            patient_id: s.order.patient_id,
            patient_name: s.order.patient_name,
            product_id: s.order.product_id,
            booth: u32::from(s.order.booth.0),
            dose_number: s.order.dose_number,
        }),
        stage: stage(s.stage) as i32,
        finished: s.stage.is_final(),
        unit: s.unit.map(|u| pb::Unit { code: u.code, gtin: u.gtin, lot: u.lot, expiry: u.expiry.to_string(), slot: u.slot }),
        violations: s.violations.into_iter().map(|v| pb::Violation { id: v.id.as_str().to_owned(), message: v.message }).collect(),
        detail: s.detail,
        created_at: Some(timestamp(s.created_at)),
        at_booth_at: s.at_booth_at.map(timestamp),
        finished_at: s.finished_at.map(timestamp),
    }
}

fn stage(s: Stage) -> pb::DispenseStage {
    use pb::DispenseStage as P;
    match s {
        Stage::Queued => P::Queued,
        Stage::Picking => P::Picking,
        Stage::OnBelt => P::OnBelt,
        Stage::Scanning => P::Scanning,
        Stage::Verifying => P::Verifying,
        Stage::ToBooth => P::ToBooth,
        Stage::AwaitingValidation => P::AwaitingValidation,
        Stage::AwaitingAdministration => P::AwaitingAdministration,
        Stage::ToReject => P::ToReject,
        Stage::Administered => P::Administered,
        Stage::Rejected => P::Rejected,
        Stage::Failed => P::Failed,
    }
}
