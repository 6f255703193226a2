//! `TraceService`: a unit's chain of custody, a patient's dispenses, and an
//! administered dose as a FHIR R4 Immunization, straight from the journal.

use crate::api::dispensing::dispense;
use crate::api::stock::stock_unit;
use crate::api::errors::{bad_request, internal, to_status};
use crate::api::privacy::{self, Sight};
use crate::dispatch::{DispatchError, Dispatcher};
use crate::journal::Entry;
use dispense_proto::v1 as pb;
use dispense_proto::v1::trace_service_server::{TraceService, TraceServiceServer};
use hal::codes::UnitCode;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct TraceApi {
    dispatcher: Dispatcher,
}

impl TraceApi {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }

    pub fn into_server(self) -> TraceServiceServer<Self> {
        TraceServiceServer::new(self)
    }
}

fn event(e: Entry) -> pb::TraceEvent {
    pb::TraceEvent {
        seq: e.seq,
        event_time: Some(crate::api::convert::timestamp(e.at)),
        dispense_id: e.dispense_id.unwrap_or_default(),
        unit_code: e.unit_code.unwrap_or_default(),
        kind: e.kind.as_str().to_owned(),
        step: e.step,
        detail: e.detail,
    }
}

fn journal_failed(e: crate::journal::JournalError) -> Status {
    internal("the journal failed reading a trace", &e)
}

#[tonic::async_trait]
impl TraceService for TraceApi {
    async fn get_unit_trace(&self, request: Request<pb::GetUnitTraceRequest>) -> Result<Response<pb::GetUnitTraceResponse>, Status> {
        let sight = Sight::of_request(&request);
        let text = request.into_inner().code;
        let code = UnitCode::parse(&text).map_err(|e| bad_request("code", e.to_string()))?.canonical();
        let journal = self.dispatcher.journal();
        let record = journal.stock_record(&code).map_err(journal_failed)?;
        let record = record.ok_or_else(|| to_status(DispatchError::NoSuchStock(format!("unit {code} is not in the journal"))))?;
        let mut events: Vec<pb::TraceEvent> = journal.unit_entries(&code).map_err(journal_failed)?.into_iter().map(event).collect();
        if sight == Sight::Pseudonyms {
            let dispense = record.dispense_id.as_deref().map(|id| journal.dispense(id)).transpose().map_err(journal_failed)?.flatten();
            let texts = dispense.as_ref().map(privacy::patient_texts).unwrap_or_default();
            for e in &mut events {
                e.detail = privacy::journal_line(&e.kind, &e.step, &e.detail, &texts);
            }
        }
        Ok(Response::new(pb::GetUnitTraceResponse { unit: Some(stock_unit(self.dispatcher.catalog(), record)), events }))
    }

    async fn get_patient_trace(&self, request: Request<pb::GetPatientTraceRequest>) -> Result<Response<pb::GetPatientTraceResponse>, Status> {
        let sight = Sight::of_request(&request);
        let patient = request.into_inner().patient_id;
        if patient.trim().is_empty() {
            return Err(bad_request("patient_id", "is required".into()));
        }
        let journal = self.dispatcher.journal();
        let dispenses = journal
            .patient_dispenses(&patient)
            .map_err(journal_failed)?
            .into_iter()
            .map(|status| {
                let events = journal.entries(&status.id)?.into_iter().map(event).collect();
                Ok(pb::DispenseTrace { dispense: Some(dispense(status, journal, sight)), events })
            })
            .collect::<Result<Vec<_>, crate::journal::JournalError>>()
            .map_err(journal_failed)?;
        Ok(Response::new(pb::GetPatientTraceResponse { dispenses }))
    }

    async fn export_immunization(&self, request: Request<pb::ExportImmunizationRequest>) -> Result<Response<pb::ExportImmunizationResponse>, Status> {
        let id = request.into_inner().dispense_id;
        let status = self.dispatcher.get(&id).map_err(to_status)?;
        let resource = crate::ops::trace::immunization(&status, self.dispatcher.catalog()).map_err(|e| {
            crate::api::errors::defined(tonic::Code::FailedPrecondition, "NOT_ADMINISTERED", e.to_string(), Default::default())
        })?;
        Ok(Response::new(pb::ExportImmunizationResponse { fhir_json: resource.to_string() }))
    }
}
