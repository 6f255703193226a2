//! `DispensingService`: orders as observable commands (start, watch, get, cancel,
//! queue) and the booth's confirmations.

use crate::api::auth::extract::caller;
use crate::api::convert::{optional, parse_date, timestamp};
use crate::api::errors::{bad_request, to_status};
use crate::api::pages;
use crate::api::privacy::{self, Sight};
use crate::journal::Journal;
use crate::dispatch::{Dispatcher, Watch};
use crate::rules::order::{PatientOrder, PriorDose};
use crate::dispense::status::{DispenseStatus, Stage};
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

/// Proto text that must be one of a few values; what is wrong is named.
pub(crate) fn booth_of(field: &str, booth: u32) -> Result<BoothId, Status> {
    u8::try_from(booth).map(BoothId).map_err(|_| bad_request(field, format!("{booth} is not a booth")))
}

/// The order as the domain sees it; what cannot be parsed is refused naming the field.
fn order_from_pb(order: pb::PatientOrder) -> Result<PatientOrder, Status> {
    let booth = booth_of("order.booth", order.booth)?;
    if order.birth_date.is_empty() {
        return Err(bad_request("order.birth_date", "is required (YYYY-MM-DD)".into()));
    }
    let birth_date = parse_date("order.birth_date", &order.birth_date)?;
    let dose_ul = match order.dose_ml {
        0.0 => None,
        d if d.is_finite() && d > 0.0 && d < 100.0 => Some((d * 1000.0).round() as u32),
        d => return Err(bad_request("order.dose_ml", format!("{d} is not a dose in mL"))),
    };
    let history = order
        .history
        .into_iter()
        .enumerate()
        .map(|(i, h)| Ok(PriorDose { product_id: h.product_id, dose_number: h.dose_number, date: parse_date(&format!("order.history[{i}].date"), &h.date)? }))
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(PatientOrder {
        patient_id: order.patient_id,
        patient_name: order.patient_name,
        product_id: order.product_id,
        booth,
        dose_number: order.dose_number,
        birth_date,
        specification: optional(order.specification),
        dose_ul,
        route: optional(order.route),
        site: optional(order.site),
        health_check_attested: order.health_check_attested,
        history,
    })
}

fn order_to_pb(o: PatientOrder, patient_ref: String) -> pb::PatientOrder {
    pb::PatientOrder {
        patient_ref,
        patient_id: o.patient_id,
        patient_name: o.patient_name,
        product_id: o.product_id,
        booth: u32::from(o.booth.0),
        dose_number: o.dose_number,
        birth_date: o.birth_date.to_string(),
        specification: o.specification.unwrap_or_default(),
        dose_ml: o.dose_ul.map_or(0.0, |ul| f64::from(ul) / 1000.0),
        route: o.route.unwrap_or_default(),
        site: o.site.unwrap_or_default(),
        health_check_attested: o.health_check_attested,
        history: o.history.into_iter().map(|h| pb::PriorDose { product_id: h.product_id, dose_number: h.dose_number, date: h.date.to_string() }).collect(),
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::WatchDispenseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DispensingService for DispensingApi {
    async fn start_dispense(&self, request: Request<pb::StartDispenseRequest>) -> Result<Response<pb::StartDispenseResponse>, Status> {
        let req = request.into_inner();
        let order = order_from_pb(req.order.ok_or_else(|| bad_request("order", "is required".into()))?)?;
        let started = self.dispatcher.start(&req.request_id, order).map_err(to_status)?;
        Ok(Response::new(pb::StartDispenseResponse { dispense_id: started.dispense_id, duplicate: started.duplicate }))
    }

    type WatchDispenseStream = ProgressStream;

    async fn watch_dispense(&self, request: Request<pb::WatchDispenseRequest>) -> Result<Response<Self::WatchDispenseStream>, Status> {
        let sight = Sight::of_request(&request);
        let id = request.into_inner().dispense_id;
        let journal = self.dispatcher.journal_handle();
        let stream: ProgressStream = match self.dispatcher.watch(&id).map_err(to_status)? {
            Watch::Finished(status) => Box::pin(futures::stream::iter([Ok(progress(status, &journal, sight))])),
            Watch::Live(rx) => Box::pin(futures::stream::unfold((rx, false, true), move |(mut rx, done, first)| {
                let journal = journal.clone();
                async move {
                if done {
                    return None;
                }
                // The current state first, then each change, ending after a final stage.
                if !first && rx.changed().await.is_err() {
                    return None;
                }
                let status = rx.borrow_and_update().clone();
                let finished = status.stage.is_final();
                Some((Ok(progress(status, &journal, sight)), (rx, finished, false)))
                }
            })),
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_dispense(&self, request: Request<pb::GetDispenseRequest>) -> Result<Response<pb::GetDispenseResponse>, Status> {
        let sight = Sight::of_request(&request);
        let status = self.dispatcher.get(&request.into_inner().dispense_id).map_err(to_status)?;
        Ok(Response::new(pb::GetDispenseResponse { dispense: Some(dispense(status, self.dispatcher.journal(), sight)) }))
    }

    async fn list_queue(&self, request: Request<pb::ListQueueRequest>) -> Result<Response<pb::ListQueueResponse>, Status> {
        let sight = Sight::of_request(&request);
        let req = request.into_inner();
        let size = pages::size(req.page_size, 100, 1000)?;
        // The queue has no filter and is in dispense order (a sequence that grows
        // with time), so the last dispense shown is where the next page starts.
        let order = |id: &str| (id.len(), id.to_owned());
        let after: Option<(usize, String)> = pages::after(&req.page_token, &())?;
        let rest: Vec<DispenseStatus> = self.dispatcher.queue().into_iter().filter(|s| after.as_ref().is_none_or(|a| order(&s.id) > *a)).take(size + 1).collect();
        let (shown, next_page_token) = pages::page(rest, size, &(), |s| order(&s.id));
        let journal = self.dispatcher.journal();
        Ok(Response::new(pb::ListQueueResponse { dispenses: shown.into_iter().map(|s| dispense(s, journal, sight)).collect(), next_page_token }))
    }

    async fn confirm_validation(&self, request: Request<pb::ConfirmValidationRequest>) -> Result<Response<pb::ConfirmValidationResponse>, Status> {
        let req = request.into_inner();
        let booth_scan = Some(req.booth_scan.trim()).filter(|s| !s.is_empty());
        self.dispatcher.confirm_validation(&req.dispense_id, booth_scan).map_err(to_status)?;
        Ok(Response::new(pb::ConfirmValidationResponse {}))
    }

    async fn confirm_administration(
        &self,
        request: Request<pb::ConfirmAdministrationRequest>,
    ) -> Result<Response<pb::ConfirmAdministrationResponse>, Status> {
        let req = request.into_inner();
        self.dispatcher.confirm_administration(&req.dispense_id, &req.nurse_id, optional(req.site).as_deref()).map_err(to_status)?;
        Ok(Response::new(pb::ConfirmAdministrationResponse {}))
    }

    async fn cancel_dispense(&self, request: Request<pb::CancelDispenseRequest>) -> Result<Response<pb::CancelDispenseResponse>, Status> {
        let actor = caller(&request)?.name;
        let sight = Sight::of_request(&request);
        let req = request.into_inner();
        let status = self.dispatcher.cancel(&req.dispense_id, &req.reason, &actor).await.map_err(to_status)?;
        Ok(Response::new(pb::CancelDispenseResponse { dispense: Some(dispense(status, self.dispatcher.journal(), sight)) }))
    }
}

fn progress(status: DispenseStatus, journal: &Journal, sight: Sight) -> pb::WatchDispenseResponse {
    pb::WatchDispenseResponse { dispense: Some(dispense(status, journal, sight)) }
}

/// A dispense as `sight` may see it (see [`crate::api::privacy`]).
pub(crate) fn dispense(s: DispenseStatus, journal: &Journal, sight: Sight) -> pb::Dispense {
    let patient_ref = journal.patient_ref(&s.order.patient_id);
    privacy::dispense(
        pb::Dispense {
            dispense_id: s.id,
            request_id: s.request_id,
            order: Some(order_to_pb(s.order, patient_ref)),
        stage: stage(s.stage) as i32,
        finished: s.stage.is_final(),
        unit: s.unit.map(|u| pb::Unit { code: u.code, gtin: u.gtin, lot: u.lot, expiry: u.expiry.to_string(), slot: u.slot }),
        violations: s.violations.into_iter().map(|v| pb::Violation { id: v.id.as_str().to_owned(), message: v.message }).collect(),
        detail: s.detail,
        create_time: Some(timestamp(s.created_at)),
        booth_arrival_time: s.at_booth_at.map(timestamp),
        finish_time: s.finished_at.map(timestamp),
        booth_scan_required: s.booth_scan_required,
        },
        sight,
    )
}

pub(crate) fn stage(s: Stage) -> pb::DispenseStage {
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
        Stage::Cancelled => P::Cancelled,
    }
}
