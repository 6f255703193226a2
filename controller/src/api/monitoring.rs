//! `MonitoringService`: server streams of the workstation's state and faults, the
//! temperatures and the booths. Each is a `watch` underneath: a subscriber gets the
//! picture now, then the newest picture after each change; a slow one skips
//! pictures rather than holding the workstation back.

use crate::api::dispensing::stage;
use crate::dispense::workstation::WorkstationState;
use crate::api::convert::{time_range, timestamp};
use crate::api::pages;
use crate::api::privacy::{self, Sight};
use crate::journal::Journal;
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
        raise_time: Some(timestamp(f.raised_at)),
        clear_time: f.cleared_at.map(timestamp),
        cleared_by: f.cleared_by.unwrap_or_default(),
    }
}

fn booths(picture: &BoothsPicture, journal: &Journal, sight: Sight) -> pb::WatchBoothsResponse {
    pb::WatchBoothsResponse {
        change_time: Some(timestamp(picture.changed_at)),
        booths: picture
            .booths
            .iter()
            .map(|v| {
                let booth = match &v.holder {
                    Some(h) => pb::Booth {
                        dispense_id: h.dispense_id.clone(),
                        stage: stage(h.stage) as i32,
                        patient_name: h.patient_name.clone(),
                        patient_ref: journal.patient_ref(&h.patient_id),
                        ..Default::default()
                    },
                    None => pb::Booth::default(),
                };
                privacy::booth(pb::Booth { booth: u32::from(v.booth.0), waiting: v.waiting, ..booth }, sight)
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
                snapshot_time: Some(timestamp(dispatcher.now())),
            };
            Some((Ok(picture), (state, faults, false, dispatcher)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn watch_temperatures(&self, _request: Request<pb::WatchTemperaturesRequest>) -> Result<Response<Self::WatchTemperaturesStream>, Status> {
        let (low, high) = self.band;
        let stream = changes(self.dispatcher.telemetry().temperatures(), move |sample| {
            sample.as_ref().map(|s| pb::WatchTemperaturesResponse {
                sample_time: Some(timestamp(s.at)),
                readings: s.readings.iter().map(|(probe, celsius)| pb::ProbeReading { probe: probe.clone(), celsius: *celsius }).collect(),
                low_alarm_celsius: low,
                high_alarm_celsius: high,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_temperatures(&self, request: Request<pb::ListTemperaturesRequest>) -> Result<Response<pb::ListTemperaturesResponse>, Status> {
        let req = request.into_inner();
        let points = match req.max_points {
            0 => 120,
            n if n <= 2000 => n,
            n => return Err(crate::api::errors::bad_request("max_points", format!("{n} is more than 2000"))),
        };
        let size = pages::size(req.page_size, 500, 2000)?;
        let filter = (req.start_time, req.end_time, points, size);
        // The first page fixes the range (an unset end is "now" only once) and the
        // token carries it: (start, end, first stretch of the page).
        let (start, end, first) = match pages::after::<(i64, i64, u32)>(&req.page_token, &filter)? {
            Some((start, end, first)) => {
                let time = |ms| chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| crate::api::errors::bad_request("page_token", "holds no valid time".into()));
                (time(start)?, time(end)?, first.min(points))
            }
            None => {
                let (start, end) = time_range(filter.0.as_ref(), filter.1.as_ref(), self.dispatcher.now(), chrono::Duration::hours(24))?;
                (start, end, 0)
            }
        };
        // The page reads only the readings of its stretches, one at a time.
        let width_ms = (end - start).num_milliseconds().max(1) as f64 / f64::from(points);
        let edge = |k: u32| start + chrono::Duration::milliseconds((f64::from(k) * width_ms) as i64);
        let last = first.saturating_add(u32::try_from(size).unwrap_or(u32::MAX)).min(points);
        let until = if last >= points { end.checked_add_signed(chrono::Duration::nanoseconds(1)).unwrap_or(end) } else { edge(last) };
        let mut buckets = crate::ops::telemetry::Buckets::new(start, end, points);
        self.dispatcher
            .journal()
            .for_each_reading(edge(first), until, |at, probe, celsius| buckets.add(at, probe, celsius))
            .map_err(|e| crate::api::errors::internal("the journal failed reading temperatures", &e))?;
        let next_page_token = if last < points { pages::token(&filter, (start.timestamp_millis(), end.timestamp_millis(), last)) } else { String::new() };
        let (low, high) = self.band;
        Ok(Response::new(pb::ListTemperaturesResponse {
            buckets: buckets
                .finish()
                .into_iter()
                .map(|b| pb::TemperatureBucket {
                    probe: b.probe,
                    start_time: Some(timestamp(b.from)),
                    min_celsius: b.min,
                    mean_celsius: b.mean,
                    max_celsius: b.max,
                    readings: b.readings,
                    unread: b.unread,
                })
                .collect(),
            low_alarm_celsius: low,
            high_alarm_celsius: high,
            next_page_token,
        }))
    }

    async fn watch_booths(&self, request: Request<pb::WatchBoothsRequest>) -> Result<Response<Self::WatchBoothsStream>, Status> {
        let sight = Sight::of_request(&request);
        let journal = self.dispatcher.journal_handle();
        let stream = changes(self.dispatcher.watch_booths(), move |views| Some(booths(views, &journal, sight)));
        Ok(Response::new(Box::pin(stream)))
    }
}
