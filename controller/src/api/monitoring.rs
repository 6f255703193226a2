//! `MonitoringService`: server streams of the workstation's state and faults, the
//! temperatures and the booths. Each is a `watch` underneath: a subscriber gets the
//! picture now, then the newest picture after each change; a slow one skips
//! pictures rather than holding the workstation back.

use crate::api::dispensing::stage;
use crate::dispense::workstation::WorkstationState;
use crate::api::convert::timestamp;
use crate::dispatch::{BoothsPicture, Dispatcher};
use crate::ops::faultboard::ActiveFault;
use dispense_proto::v1 as pb;
use dispense_proto::v1::monitoring_service_server::{MonitoringService, MonitoringServiceServer};
use futures::Stream;
use std::pin::Pin;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct MonitoringApi {
    dispatcher: Dispatcher,
    /// The cold-chain alarm band (freeze limit, high limit), °C, shown with readings.
    band: (f64, f64),
}

impl MonitoringApi {
    pub fn new(dispatcher: Dispatcher, band: (f64, f64)) -> Self {
        Self { dispatcher, band }
    }

    pub fn into_server(self) -> MonitoringServiceServer<Self> {
        MonitoringServiceServer::new(self)
    }
}

pub(crate) fn workstation_state(state: WorkstationState) -> pb::WorkstationState {
    use pb::WorkstationState as W;
    match state {
        WorkstationState::Starting => W::Starting,
        WorkstationState::Homing => W::Homing,
        WorkstationState::Ready => W::Ready,
        WorkstationState::Dispensing => W::Dispensing,
        WorkstationState::Paused => W::Paused,
        WorkstationState::Faulted => W::Faulted,
        WorkstationState::Recovering => W::Recovering,
        WorkstationState::Maintenance => W::Maintenance,
    }
}

pub(crate) fn fault(f: ActiveFault) -> pb::Fault {
    pb::Fault {
        id: f.id,
        code: f.code,
        source: f.source,
        cause: f.cause,
        remedy: f.remedy,
        detail: f.detail,
        raised_at: Some(timestamp(f.raised_at)),
        cleared_at: f.cleared_at.map(timestamp),
        cleared_by: f.cleared_by.unwrap_or_default(),
    }
}

fn booths(picture: &BoothsPicture) -> pb::WatchBoothsResponse {
    pb::WatchBoothsResponse {
        changed_at: Some(timestamp(picture.changed_at)),
        booths: picture
            .booths
            .iter()
            .map(|v| {
                let (dispense_id, stage_now, patient_name) = match &v.holder {
                    Some((id, s, patient)) => (id.clone(), stage(*s), patient.clone()),
                    None => (String::new(), pb::DispenseStage::Unspecified, String::new()),
                };
                pb::Booth { booth: u32::from(v.booth.0), dispense_id, stage: stage_now as i32, patient_name, waiting: v.waiting }
            })
            .collect(),
    }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The value now, then after each change, mapped; ends when the sender goes.
/// Values mapped to `None` (nothing measured yet) are skipped.
fn changes<T, R, F>(rx: watch::Receiver<T>, map: F) -> impl Stream<Item = Result<R, Status>> + Send
where
    T: Send + Sync + 'static,
    R: Send + 'static,
    F: Fn(&T) -> Option<R> + Send + Sync + 'static,
{
    futures::stream::unfold((rx, true, map), |(mut rx, mut first, map)| async move {
        loop {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            first = false;
            let item = map(&rx.borrow_and_update());
            if let Some(item) = item {
                return Some((Ok(item), (rx, false, map)));
            }
        }
    })
}

#[tonic::async_trait]
impl MonitoringService for MonitoringApi {
    type WatchWorkstationStream = Boxed<pb::WatchWorkstationResponse>;
    type WatchTemperaturesStream = Boxed<pb::WatchTemperaturesResponse>;
    type WatchBoothsStream = Boxed<pb::WatchBoothsResponse>;

    async fn watch_workstation(&self, _request: Request<pb::WatchWorkstationRequest>) -> Result<Response<Self::WatchWorkstationStream>, Status> {
        let dispatcher = self.dispatcher.clone();
        let state = dispatcher.watch_state();
        let faults = dispatcher.telemetry().faults.subscribe();
        let stream = futures::stream::unfold((state, faults, true, dispatcher), |(mut state, mut faults, first, dispatcher)| async move {
            if !first {
                let changed = tokio::select! {
                    r = state.changed() => r,
                    r = faults.changed() => r,
                };
                changed.ok()?;
            }
            let name = *state.borrow_and_update();
            let active: Vec<pb::Fault> = faults.borrow_and_update().iter().cloned().map(fault).collect();
            let picture = pb::WatchWorkstationResponse {
                state: workstation_state(name) as i32,
                in_flight: u32::try_from(dispatcher.in_flight()).unwrap_or(u32::MAX),
                faults: active,
                at: Some(timestamp(dispatcher.now())),
            };
            Some((Ok(picture), (state, faults, false, dispatcher)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn watch_temperatures(&self, _request: Request<pb::WatchTemperaturesRequest>) -> Result<Response<Self::WatchTemperaturesStream>, Status> {
        let (low, high) = self.band;
        let stream = changes(self.dispatcher.telemetry().temperatures(), move |sample| {
            sample.as_ref().map(|s| pb::WatchTemperaturesResponse {
                at: Some(timestamp(s.at)),
                readings: s.readings.iter().map(|(probe, celsius)| pb::ProbeReading { probe: probe.clone(), celsius: *celsius }).collect(),
                low_alarm_celsius: low,
                high_alarm_celsius: high,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_temperatures(&self, request: Request<pb::ListTemperaturesRequest>) -> Result<Response<pb::ListTemperaturesResponse>, Status> {
        let req = request.into_inner();
        let to = self.dispatcher.now();
        let from = match &req.since {
            Some(t) => crate::api::convert::from_timestamp("since", t)?,
            None => to - chrono::Duration::hours(24),
        };
        if from >= to {
            return Err(crate::api::errors::bad_request("since", format!("{from} is not in the past")));
        }
        let points = match req.max_points {
            0 => 120,
            n if n <= 2000 => n,
            n => return Err(crate::api::errors::bad_request("max_points", format!("{n} is more than 2000"))),
        };
        let readings = self.dispatcher.journal().readings_between(from, to).map_err(|e| crate::api::errors::internal("the journal failed reading temperatures", &e))?;
        let (low, high) = self.band;
        Ok(Response::new(pb::ListTemperaturesResponse {
            buckets: crate::ops::telemetry::bucket(&readings, from, to, points)
                .into_iter()
                .map(|b| pb::TemperatureBucket {
                    probe: b.probe,
                    from: Some(timestamp(b.from)),
                    min_celsius: b.min,
                    mean_celsius: b.mean,
                    max_celsius: b.max,
                    readings: b.readings,
                    unread: b.unread,
                })
                .collect(),
            low_alarm_celsius: low,
            high_alarm_celsius: high,
        }))
    }

    async fn watch_booths(&self, _request: Request<pb::WatchBoothsRequest>) -> Result<Response<Self::WatchBoothsStream>, Status> {
        let stream = changes(self.dispatcher.watch_booths(), |views| Some(booths(views)));
        Ok(Response::new(Box::pin(stream)))
    }
}
