//! `MaintenanceService`: status, faults, maintenance mode, motions, self-test, raw
//! registers, camera snapshot and log export for the crew (wsctl). Every change is
//! journalled with the caller as the actor.

use crate::api::monitoring::{fault, workstation_state};
use crate::api::auth::extract::caller;
use crate::api::convert::{duration_seconds, optional, time_range, timestamp};
use crate::api::pages;
use crate::api::privacy::{self, Sight};
use futures::{StreamExt, TryStreamExt};
use crate::api::errors::{bad_request, to_status};
use crate::dispatch::{Dispatcher, MaintenanceLease};
use crate::ops::maintenance::{self, Outcome};
use chrono::Duration as Span;
use dispense_proto::v1 as pb;
use dispense_proto::v1::maintenance_service_server::{MaintenanceService, MaintenanceServiceServer};
use futures::Stream;
use std::pin::Pin;
use std::time::Duration;
use tonic::{Request, Response, Status};
use crate::journal::StepKind;

/// Lock timeout when the crew names none, and the longest they may ask for.
const DEFAULT_LOCK_S: u64 = 900;
const MAX_LOCK_S: u64 = 4 * 3600;
/// Bytes per exported chunk.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct MaintenanceApi {
    dispatcher: Dispatcher,
}

impl MaintenanceApi {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }

    pub fn into_server(self) -> MaintenanceServiceServer<Self> {
        MaintenanceServiceServer::new(self)
    }
}

fn lease(l: MaintenanceLease) -> pb::MaintenanceLease {
    pb::MaintenanceLease { holder: l.holder, reason: l.reason, expire_time: Some(timestamp(l.expires_at)) }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl MaintenanceService for MaintenanceApi {
    type SelfTestStream = Boxed<pb::SelfTestResponse>;
    type ExportLogsStream = Boxed<pb::ExportLogsResponse>;

    async fn get_status(&self, _request: Request<pb::GetStatusRequest>) -> Result<Response<pb::GetStatusResponse>, Status> {
        let d = &self.dispatcher;
        let interlocks = match d.devices().interlocks.read().await {
            Ok(i) => pb::Interlocks { estop_pressed: i.estop_pressed, restock_door_open: i.restock_door_open, light_curtain_broken: i.light_curtain_broken, readable: true },
            Err(_) => pb::Interlocks { readable: false, ..Default::default() },
        };
        let devices = maintenance::device_reports(d)
            .await
            .into_iter()
            .map(|r| pb::DeviceStatus {
                name: r.name,
                transport: r.transport,
                firmware: r.firmware,
                serial_number: r.serial_number,
                map_version: u32::from(r.map_version),
                alive: r.alive,
                last_heartbeat_time: r.last_heartbeat.map(timestamp),
                requests: r.stats.requests,
                retries: r.stats.retries,
                failures: r.stats.timeouts + r.stats.exceptions,
                reconnects: r.stats.reconnects,
                homed: r.homed,
                busy: r.busy,
                alarms: r.alarms,
                error: r.error.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::GetStatusResponse {
            state: workstation_state(d.workstation_state()) as i32,
            in_flight: u32::try_from(d.in_flight()).unwrap_or(u32::MAX),
            faults: d.telemetry().faults.active().into_iter().map(fault).collect(),
            interlocks: Some(interlocks),
            devices,
            maintenance: d.maintenance_lease().map(lease),
            controller_version: env!("CARGO_PKG_VERSION").to_owned(),
            event_feed: d.telemetry().feed().map(|feed| {
                let backlog = d.journal().outbox_backlog().unwrap_or_default();
                pb::EventFeed {
                    connected: feed.connected,
                    waiting_events: backlog.events,
                    oldest_waiting_time: backlog.oldest.map(crate::api::convert::timestamp),
                    acknowledged_sequence: feed.acknowledged,
                    last_failure: feed.last_failure.unwrap_or_default(),
                }
            }),
        }))
    }

    async fn list_faults(&self, request: Request<pb::ListFaultsRequest>) -> Result<Response<pb::ListFaultsResponse>, Status> {
        let req = request.into_inner();
        let board = &self.dispatcher.telemetry().faults;
        let size = pages::size(req.page_size, 100, 1000)?;
        let (start, _) = time_range(req.start_time.as_ref(), None, self.dispatcher.now(), Span::hours(24))?;
        // The filter a token belongs to: the start is fixed by the first page.
        let filter = (req.include_past, start);
        let (past, next_page_token) = if req.include_past {
            let before: Option<i64> = pages::after(&req.page_token, &filter)?;
            let rest = board.past_page(start, before, size + 1).map_err(|e| crate::api::errors::internal("the journal failed listing faults", &e))?;
            let (shown, next) = pages::page(rest, size, &filter, |(seq, _)| *seq);
            (shown.into_iter().map(|(_, f)| fault(f)).collect(), next)
        } else {
            (Vec::new(), String::new())
        };
        Ok(Response::new(pb::ListFaultsResponse { active: board.active().into_iter().map(fault).collect(), past, next_page_token }))
    }

    async fn clear_fault(&self, request: Request<pb::ClearFaultRequest>) -> Result<Response<pb::ClearFaultResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        let reason = optional(req.reason).ok_or_else(|| bad_request("reason", "is required: say what was done".into()))?;
        let board = &self.dispatcher.telemetry().faults;
        let Some(active) = board.active().into_iter().find(|f| f.id == req.fault_id) else {
            let known: Vec<String> = board.active().into_iter().map(|f| f.id).collect();
            return Err(crate::api::errors::defined(
                tonic::Code::NotFound,
                "FAULT_NOT_ACTIVE",
                format!("fault {:?} is not active (active: {})", req.fault_id, if known.is_empty() { "none".into() } else { known.join(", ") }),
                Default::default(),
            ));
        };
        // A device's latched alarm is reset on the device; if its cause is still
        // there the device latches it again and the board shows it again. Only the
        // crew member holding the machine in maintenance mode may (H-09): a reset
        // while patients are served could restart a device a dispense relies on.
        if let Ok(device) = maintenance::field_device(&self.dispatcher, &active.source) {
            self.dispatcher.require_lease(&actor).map_err(to_status)?;
            device.reset_alarms().await.map_err(|e| to_status(e.into()))?;
        }
        let cleared = board.clear(&active.id, Some((&actor, &reason))).ok_or_else(|| Status::not_found("the fault cleared meanwhile"))?;
        Ok(Response::new(pb::ClearFaultResponse { fault: Some(fault(cleared)) }))
    }

    async fn enter_maintenance(&self, request: Request<pb::EnterMaintenanceRequest>) -> Result<Response<pb::EnterMaintenanceResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        let timeout_s = match req.timeout.as_ref().map(|d| duration_seconds("timeout", d)).transpose()?.unwrap_or(0) {
            0 => DEFAULT_LOCK_S,
            s if s <= MAX_LOCK_S => s,
            s => return Err(bad_request("timeout", format!("{s} s is longer than {MAX_LOCK_S} s"))),
        };
        let entered = self.dispatcher.enter_maintenance(&actor, &req.reason, Duration::from_secs(timeout_s), req.force).map_err(to_status)?;
        Ok(Response::new(pb::EnterMaintenanceResponse { lease: Some(lease(entered)) }))
    }

    async fn exit_maintenance(&self, request: Request<pb::ExitMaintenanceRequest>) -> Result<Response<pb::ExitMaintenanceResponse>, Status> {
        let actor = caller(&request)?.name;
        let state = self.dispatcher.exit_maintenance(&actor, "work done").map_err(to_status)?;
        Ok(Response::new(pb::ExitMaintenanceResponse { state: workstation_state(state) as i32 }))
    }

    async fn home(&self, request: Request<pb::HomeRequest>) -> Result<Response<pb::HomeResponse>, Status> {
        let actor = caller(&request)?.name;
        self.dispatcher.maintenance_home(&actor).await.map_err(to_status)?;
        Ok(Response::new(pb::HomeResponse {}))
    }

    async fn jog(&self, request: Request<pb::JogRequest>) -> Result<Response<pb::JogResponse>, Status> {
        let actor = caller(&request)?.name;
        let req = request.into_inner();
        let axis = match pb::Axis::try_from(req.axis) {
            Ok(pb::Axis::Belt) => None,
            Ok(pb::Axis::PickerX) => Some(hal::PickerAxis::X),
            Ok(pb::Axis::PickerY) => Some(hal::PickerAxis::Y),
            Ok(pb::Axis::PickerZ) => Some(hal::PickerAxis::Z),
            _ => return Err(bad_request("axis", format!("{} is not an axis (BELT, PICKER_X, PICKER_Y, PICKER_Z)", req.axis))),
        };
        self.dispatcher.jog(&actor, axis, req.distance_mm).await.map_err(to_status)?;
        Ok(Response::new(pb::JogResponse {}))
    }

    async fn self_test(&self, request: Request<pb::SelfTestRequest>) -> Result<Response<Self::SelfTestStream>, Status> {
        let actor = caller(&request)?.name;
        // Refuse at once (not mid-stream) when the caller may not move things.
        self.dispatcher.require_lease(&actor).map_err(to_status)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let dispatcher = self.dispatcher.clone();
        tokio::spawn(async move {
            if let Err(e) = maintenance::self_test(&dispatcher, &actor, tx).await {
                tracing::warn!("self-test stopped: {e}");
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let stream = futures::StreamExt::map(stream, |r| {
            Ok(pb::SelfTestResponse { step: r.step, steps: r.steps, name: r.name, passed: r.outcome == Outcome::Passed, skipped: r.outcome == Outcome::Skipped, detail: r.detail })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn read_registers(&self, request: Request<pb::ReadRegistersRequest>) -> Result<Response<pb::ReadRegistersResponse>, Status> {
        let req = request.into_inner();
        let holding = match pb::RegisterTable::try_from(req.table) {
            Ok(pb::RegisterTable::Unspecified | pb::RegisterTable::Input) => false,
            Ok(pb::RegisterTable::Holding) => true,
            Err(_) => return Err(bad_request("table", format!("{} is not a register table", req.table))),
        };
        let address = u16::try_from(req.address).map_err(|_| bad_request("address", format!("{} is past register 65535", req.address)))?;
        let count = u16::try_from(req.count.max(1)).map_err(|_| bad_request("count", format!("{} registers is too many", req.count)))?;
        let values = maintenance::read_registers(&self.dispatcher, &req.device, holding, address, count).await.map_err(to_status)?;
        Ok(Response::new(pb::ReadRegistersResponse { values: values.into_iter().map(u32::from).collect() }))
    }

    async fn camera_snapshot(&self, _request: Request<pb::CameraSnapshotRequest>) -> Result<Response<pb::CameraSnapshotResponse>, Status> {
        let shot = maintenance::snapshot(&self.dispatcher).await.map_err(to_status)?;
        let region = shot.region.map_or_else(Vec::new, |(x, y, w, h)| [x, y, w, h].iter().map(|&v| u32::try_from(v).unwrap_or(u32::MAX)).collect());
        Ok(Response::new(pb::CameraSnapshotResponse { png: shot.png, width: shot.width, height: shot.height, code: shot.code.unwrap_or_default(), detail: shot.detail, region }))
    }

    async fn export_logs(&self, request: Request<pb::ExportLogsRequest>) -> Result<Response<Self::ExportLogsStream>, Status> {
        let actor = caller(&request)?.name;
        let sight = Sight::of_request(&request);
        let req = request.into_inner();
        let (start, end) = time_range(req.start_time.as_ref(), req.end_time.as_ref(), self.dispatcher.now(), Span::hours(24))?;
        let journal = self.dispatcher.journal_handle();
        journal.note(None, StepKind::Maintenance, "logs exported", &format!("{start} to {end}; by {actor}")).map_err(|e| crate::api::errors::internal("the journal failed", &e))?;
        let log = crate::ops::logbook::between(start, end).join("\n");
        // The journal's lines a page at a time (a long range is never held whole),
        // then the controller's log.
        let journal_csv = futures::stream::try_unfold(Some(ExportPage::first()), move |page| {
            let journal = journal.clone();
            async move {
                let Some(mut page) = page else { return Ok(None) };
                let (text, more) = page.next(&journal, start, end, sight).map_err(|e| crate::api::errors::internal("the journal failed exporting", &e))?;
                Ok(Some((chunks("journal.csv", text), more.then_some(page))))
            }
        });
        let rest = futures::stream::iter([Ok::<_, Status>(chunks("controller.log", log))]);
        Ok(Response::new(Box::pin(journal_csv.chain(rest).map_ok(|c| futures::stream::iter(c.into_iter().map(Ok))).try_flatten())))
    }
}

/// Journal lines per page of an export.
const EXPORT_PAGE: usize = 2000;

/// Where an export of the journal stands: the last line sent, and each dispense's
/// patient reference and withheld texts (see [`crate::api::privacy`]) once looked up.
struct ExportPage {
    after_seq: i64,
    patients: std::collections::HashMap<String, (String, Vec<String>)>,
}

impl ExportPage {
    fn first() -> Self {
        Self { after_seq: 0, patients: Default::default() }
    }

    /// The next page as CSV text (the header first), and whether more may follow.
    fn next(&mut self, journal: &crate::journal::Journal, start: chrono::DateTime<chrono::Utc>, end: chrono::DateTime<chrono::Utc>, sight: Sight) -> Result<(String, bool), crate::journal::JournalError> {
        let entries = journal.entries_page(start, end, self.after_seq, EXPORT_PAGE)?;
        let mut text = if self.after_seq == 0 { crate::ops::trace::CSV_HEADER.to_owned() } else { String::new() };
        let more = entries.len() == EXPORT_PAGE;
        for entry in entries {
            self.after_seq = entry.seq;
            let mut event = crate::ops::trace::TraceEvent::from(entry);
            if let Some(id) = event.dispense_id.clone() {
                if !self.patients.contains_key(&id) {
                    let found = journal.dispense(&id)?.map(|d| (journal.patient_ref(&d.order.patient_id), privacy::patient_texts(&d))).unwrap_or_default();
                    self.patients.insert(id.clone(), found);
                }
                let (patient_ref, texts) = &self.patients[&id];
                event.patient_ref = Some(patient_ref.clone()).filter(|r| !r.is_empty());
                if sight == Sight::Pseudonyms {
                    event.detail = privacy::journal_line(&event.kind, &event.step, &event.detail, texts);
                }
            }
            text.push_str(&crate::ops::trace::csv_row(&event));
        }
        Ok((text, more))
    }
}

/// A file's text as export chunks (one empty chunk for an empty text, so the file is named).
fn chunks(name: &str, text: String) -> Vec<pb::ExportLogsResponse> {
    let bytes = text.into_bytes();
    if bytes.is_empty() {
        return vec![pb::ExportLogsResponse { file_name: name.into(), data: Vec::new() }];
    }
    bytes.chunks(CHUNK).map(|part| pb::ExportLogsResponse { file_name: name.into(), data: part.to_vec() }).collect()
}
