//! `StockService`: listing, stock-in, recall, quarantine, release and the stock
//! count, over the dispatcher's stock methods; changes are journalled with the caller.

use crate::api::auth::extract::caller;
use crate::api::convert::{optional, parse_date};
use crate::api::errors::{bad_request, to_status};
use crate::api::pages;
use crate::dispatch::Dispatcher;
use crate::rules::inventory::{Hold, StockRecord, UnitState};
use crate::journal::StockFilter;
use crate::ops::stock::{Delivery, Discrepancy};
use dispense_proto::v1 as pb;
use dispense_proto::v1::stock_service_server::{StockService, StockServiceServer};
use tonic::{Request, Response, Status};

/// Most units one ListStock page returns.
const MAX_PAGE: usize = 1000;
/// Most codes one delivery may carry.
const MAX_DELIVERY: usize = 2000;

#[derive(Debug, Clone)]
pub struct StockApi {
    dispatcher: Dispatcher,
}

impl StockApi {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }

    pub fn into_server(self) -> StockServiceServer<Self> {
        StockServiceServer::new(self)
    }
}

/// A stock record as the API shows it, with its product's id.
pub(crate) fn stock_unit(catalog: &crate::rules::catalog::Catalog, r: StockRecord) -> pb::StockUnit {
    let product_id = catalog.product_with_gtin(&r.gtin).map(|p| p.id.clone()).unwrap_or_default();
    let (hold, hold_reason) = r.hold.map_or((pb::HoldKind::Unspecified, String::new()), |(h, why)| (hold_kind(h), why));
    pb::StockUnit {
        code: r.code,
        gtin: r.gtin,
        product_id,
        lot: r.lot,
        expiry: r.expiry.to_string(),
        slot: r.slot.to_string(),
        state: unit_state(r.state) as i32,
        hold: hold as i32,
        hold_reason,
        dispense_id: r.dispense_id.unwrap_or_default(),
        heat_budget_used: r.heat_consumed,
    }
}

pub(crate) fn unit_state(s: UnitState) -> pb::UnitState {
    match s {
        UnitState::InStore => pb::UnitState::InStore,
        UnitState::Picked => pb::UnitState::Picked,
        UnitState::Delivered => pb::UnitState::Delivered,
        UnitState::Administered => pb::UnitState::Administered,
        UnitState::Rejected => pb::UnitState::Rejected,
    }
}

fn hold_kind(h: Hold) -> pb::HoldKind {
    match h {
        Hold::Recalled => pb::HoldKind::Recalled,
        Hold::Quarantined => pb::HoldKind::Quarantined,
        Hold::ColdChain => pb::HoldKind::ColdChain,
        Hold::FreezeExposed => pb::HoldKind::FreezeExposed,
        Hold::HeatBudget => pb::HoldKind::HeatBudget,
    }
}

/// The units a request asks for (whichever page); unknown products and malformed
/// fields are named.
fn filter(dispatcher: &Dispatcher, req: &pb::ListStockRequest) -> Result<StockFilter, Status> {
    let gtins = match optional(req.product_id.clone()) {
        None => None,
        Some(id) => Some(dispatcher.catalog().product(&id).ok_or_else(|| bad_request("product_id", format!("{id:?} is not in the catalog")))?.gtins.clone()),
    };
    let state = match pb::UnitState::try_from(req.state) {
        Ok(pb::UnitState::Unspecified) => None,
        Ok(pb::UnitState::InStore) => Some(UnitState::InStore),
        Ok(pb::UnitState::Picked) => Some(UnitState::Picked),
        Ok(pb::UnitState::Delivered) => Some(UnitState::Delivered),
        Ok(pb::UnitState::Administered) => Some(UnitState::Administered),
        Ok(pb::UnitState::Rejected) => Some(UnitState::Rejected),
        Err(_) => return Err(bad_request("state", format!("{} is not a unit state", req.state))),
    };
    let expires_by = optional(req.expires_by.clone()).map(|d| parse_date("expires_by", &d)).transpose()?;
    Ok(StockFilter { gtins, lot: optional(req.lot.clone()), expires_by, state, held_only: req.held_only })
}

#[tonic::async_trait]
impl StockService for StockApi {
    async fn list_stock(&self, request: Request<pb::ListStockRequest>) -> Result<Response<pb::ListStockResponse>, Status> {
        let req = request.into_inner();
        let filter = filter(&self.dispatcher, &req)?;
        let size = pages::size(req.page_size, MAX_PAGE, MAX_PAGE)?;
        // Units are listed by (expiry, code): the last one shown is where the next page starts.
        let after: Option<(chrono::NaiveDate, String)> = pages::after(&req.page_token, &filter)?;
        // One more than the page tells whether there is a next one.
        let records = self.dispatcher.journal().list_stock(&filter, after.as_ref(), size + 1).map_err(|e| crate::api::errors::internal("the journal failed listing stock", &e))?;
        let (records, next_page_token) = pages::page(records, size, &filter, |r| (r.expiry, r.code.clone()));
        Ok(Response::new(pb::ListStockResponse { units: records.into_iter().map(|r| stock_unit(self.dispatcher.catalog(), r)).collect(), next_page_token }))
    }

    async fn stock_in(&self, request: Request<pb::StockInRequest>) -> Result<Response<pb::StockInResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        if req.codes.len() > MAX_DELIVERY {
            return Err(bad_request("codes", format!("{} codes; one delivery carries at most {MAX_DELIVERY}", req.codes.len())));
        }
        if let Some(t) = req.arrival_celsius.filter(|t| !t.is_finite()) {
            return Err(bad_request("arrival_celsius", format!("{t} is not a temperature")));
        }
        if req.product_id.trim().is_empty() {
            return Err(bad_request("product_id", "is required".into()));
        }
        let delivery = Delivery {
            product_id: req.product_id,
            lot: req.lot,
            expiry: parse_date("expiry", &req.expiry)?,
            arrival_celsius: req.arrival_celsius,
            codes: req.codes,
            note: req.note,
        };
        let report = self.dispatcher.stock_in(&delivery, &actor).await.map_err(to_status)?;
        Ok(Response::new(pb::StockInResponse {
            accepted: report.accepted.into_iter().map(|(code, slot)| pb::AcceptedUnit { code, slot }).collect(),
            refused: report.rejected.into_iter().map(|(code, reason)| pb::RefusedUnit { code, reason }).collect(),
        }))
    }

    async fn recall_batch(&self, request: Request<pb::RecallBatchRequest>) -> Result<Response<pb::RecallBatchResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        let gtin = optional(req.gtin);
        let held = self.dispatcher.recall_batch(gtin.as_deref(), &req.lot, &req.reason, &actor).map_err(to_status)?;
        Ok(Response::new(pb::RecallBatchResponse { held: u32::try_from(held).unwrap_or(u32::MAX) }))
    }

    async fn quarantine_unit(&self, request: Request<pb::QuarantineUnitRequest>) -> Result<Response<pb::QuarantineUnitResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        self.dispatcher.quarantine_unit(&req.code, &req.reason, &actor).map_err(to_status)?;
        Ok(Response::new(pb::QuarantineUnitResponse {}))
    }

    async fn release_hold(&self, request: Request<pb::ReleaseHoldRequest>) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        self.dispatcher.release_hold(&req.code, &req.reason, &actor).map_err(to_status)?;
        Ok(Response::new(pb::ReleaseHoldResponse {}))
    }

    async fn count_stock(&self, request: Request<pb::CountStockRequest>) -> Result<Response<pb::CountStockResponse>, Status> {
        let warn_days = match request.into_inner().warn_days {
            0 => 30,
            d if d <= 3650 => i64::from(d),
            d => return Err(bad_request("warn_days", format!("{d} is more than ten years"))),
        };
        let report = self.dispatcher.stock_count(warn_days).await.map_err(to_status)?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(pb::CountStockResponse {
            day: report.day.to_string(),
            in_journal: count(report.in_journal),
            occupied: count(report.occupied),
            held: count(report.held),
            discrepancies: report
                .discrepancies
                .into_iter()
                .map(|d| match d {
                    Discrepancy::Missing { slot, code } => pb::Discrepancy { slot, code, kind: "missing".into() },
                    Discrepancy::Unrecorded { slot } => pb::Discrepancy { slot, code: String::new(), kind: "unrecorded".into() },
                })
                .collect(),
            expiring: report.expiring.into_iter().map(|e| pb::ExpiringUnit { code: e.code, slot: e.slot, expiry: e.expiry.to_string(), days_left: e.days_left }).collect(),
        }))
    }
}
